//! Typed readings of the header values the transaction and call layers need: Via, From/To and other
//! name-addr headers, CSeq, Reason, Content-Type, Event, Subscription-State, and the caller-identity
//! headers PBXs use (P-Asserted-Identity, Remote-Party-ID, Privacy, Diversion, History-Info).
//!
//! Values are parsed on demand from the normalized text, following the RFC 3261 grammar with its
//! optional whitespace (`SWS`) around `/`, `:`, `;` and `=`, which RFC 4475 `wsinv` exercises.
//! `rsip` 0.4's typed headers cannot serve here: they go through its URI tokenizer and so fail on
//! every IPv6 sent-by and Contact (RFC 5118). Each reading names the header it failed on, so a
//! caller can put it in a 400's reason or a log line.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

use super::message::{Method, SipMessage};
use super::normalize::is_token_char;
use super::params::{Params, quote};
use super::uri::{Host, Uri, parse_ipv6};

/// Why one header value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn malformed<T>(reason: impl Into<String>) -> Result<T, ValueError> {
    Err(ValueError(reason.into()))
}

/// Why a header could not be read from a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header appears more than once")]
    Repeated(&'static str),
    #[error("the {header} header is malformed: {source}")]
    Malformed {
        header: &'static str,
        #[source]
        source: ValueError,
    },
}

/// A cursor over one header value.
struct Scanner<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, position: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.position..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.position += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    fn eat(&mut self, expected: char) -> bool {
        if self.peek() == Some(expected) {
            self.position += expected.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes `SWS expected SWS` (RFC 3261 SLASH, COLON, SEMI, EQUAL) or nothing at all.
    fn eat_separator(&mut self, expected: char) -> bool {
        let saved = self.position;
        self.skip_whitespace();
        if self.eat(expected) {
            self.skip_whitespace();
            true
        } else {
            self.position = saved;
            false
        }
    }

    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let length = rest.find(|c| !accept(c)).unwrap_or(rest.len());
        self.position += length;
        rest.get(..length).unwrap_or_default()
    }

    fn token(&mut self) -> Option<&'a str> {
        Some(self.take_while(is_token_char)).filter(|token| !token.is_empty())
    }

    /// Reads a quoted-string starting at the opening quote and returns its decoded content.
    fn quoted_string(&mut self) -> Result<String, ValueError> {
        if !self.eat('"') {
            return malformed("expected a quoted string");
        }
        let mut decoded = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((offset, c)) = chars.next() {
            match c {
                '"' => {
                    self.position += offset + 1;
                    return Ok(decoded);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => decoded.push(escaped),
                    None => break,
                },
                other => decoded.push(other),
            }
        }
        malformed("unterminated quoted string")
    }

    fn expect_end(&mut self) -> Result<(), ValueError> {
        self.skip_whitespace();
        match self.rest() {
            "" => Ok(()),
            rest => malformed(format!("unexpected text {rest:?}")),
        }
    }

    /// Reads `*( SEMI name [ EQUAL gen-value ] )`.
    fn header_params(&mut self) -> Result<Params, ValueError> {
        let mut params = Params::new();
        while self.eat_separator(';') {
            let Some(name) = self.token() else {
                return malformed("empty parameter");
            };
            let value = if self.eat_separator('=') {
                Some(if self.peek() == Some('"') {
                    self.quoted_string()?
                } else {
                    let value = self.take_while(|c| is_token_char(c) || ":[]".contains(c));
                    if value.is_empty() {
                        return malformed(format!("parameter {name} has an empty value"));
                    }
                    value.to_owned()
                })
            } else {
                None
            };
            params.push(name, value);
        }
        Ok(params)
    }
}

/// Splits a list header value at the commas that separate its elements, ignoring commas inside
/// quoted strings and `<...>`.
fn split_list(value: &str) -> Result<Vec<&str>, ValueError> {
    let mut elements = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut in_angle = false;
    for (index, c) in value.char_indices() {
        if in_quotes {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            ',' if !in_angle => {
                elements.push(value.get(start..index).unwrap_or_default());
                start = index + 1;
            }
            _ => {}
        }
    }
    if in_quotes {
        return malformed("unterminated quoted string");
    }
    elements.push(value.get(start..).unwrap_or_default());
    let elements: Vec<&str> = elements.into_iter().map(str::trim).collect();
    if elements.iter().any(|element| element.is_empty()) {
        return malformed("empty list element");
    }
    Ok(elements)
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, P-Asserted-Identity,
/// Remote-Party-ID, Diversion, History-Info entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, decoded (quotes and quoted-pairs removed).
    pub display_name: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        Self {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    pub fn with_display_name(mut self, name: &str) -> Self {
        self.display_name = Some(name.to_owned());
        self
    }

    pub fn with_tag(mut self, tag: &str) -> Self {
        self.params.set("tag", Some(tag.to_owned()));
        self
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// The decoded user part of the URI (number or extension).
    pub fn user(&self) -> Option<String> {
        self.uri.user()
    }
}

impl FromStr for NameAddr {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let rest = scanner.rest();
        let starts_quoted = rest.starts_with('"');
        // name-addr when the value opens with a quoted display name or a '<' comes before any
        // quote; a quote further in belongs to a parameter of an addr-spec.
        let is_name_addr = starts_quoted
            || rest
                .find(['<', '"'])
                .is_some_and(|at| rest.get(at..).is_some_and(|from| from.starts_with('<')));
        let (display_name, uri) = if is_name_addr {
            let display_name = if starts_quoted {
                let name = scanner.quoted_string()?;
                scanner.skip_whitespace();
                Some(name)
            } else {
                let before = scanner.take_while(|c| c != '<');
                let words: Vec<&str> = before
                    .split([' ', '\t'])
                    .filter(|w| !w.is_empty())
                    .collect();
                if words.iter().any(|word| !word.chars().all(is_token_char)) {
                    return malformed(format!("display name {:?} must be quoted", before.trim()));
                }
                (!words.is_empty()).then(|| words.join(" "))
            };
            if !scanner.eat('<') {
                return malformed("expected <URI> after the display name");
            }
            let inside = scanner.take_while(|c| c != '>');
            if !scanner.eat('>') {
                return malformed("unterminated <URI>");
            }
            let uri: Uri = inside
                .parse()
                .map_err(|error| ValueError(format!("URI {inside:?}: {error}")))?;
            (display_name, uri)
        } else {
            // addr-spec: without <>, a ';' starts header parameters and the URI may not hold
            // ',', '?' or ';' (RFC 3261 20.10).
            let uri_text = scanner
                .take_while(|c| c != ';')
                .trim_end_matches([' ', '\t']);
            if uri_text.contains(['?', ',']) {
                return malformed(format!("URI {uri_text:?} must be enclosed in <>"));
            }
            let uri: Uri = uri_text
                .parse()
                .map_err(|error| ValueError(format!("URI {uri_text:?}: {error}")))?;
            (None, uri)
        };
        let params = scanner.header_params()?;
        scanner.expect_end()?;
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>", self.uri)?;
        self.params.fmt_as_header_params(f)
    }
}

/// One Via entry (`via-parm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `SIP/2.0`.
    pub protocol: String,
    /// The transport in upper case: `UDP`, `TCP`, `TLS`, `SCTP`, `WS` ...
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// A `SIP/2.0` Via for a request we send.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Self {
        let mut params = Params::new();
        params.push("branch", Some(branch.to_owned()));
        Self {
            protocol: "SIP/2.0".to_owned(),
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        }
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// `host[:port]` as it would be written in the Via.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.to_string(),
        }
    }

    pub fn received(&self) -> Option<&str> {
        self.params.value("received")
    }

    /// The `received` address, with or without IPv6 brackets (RFC 5118 4.5).
    pub fn received_ip(&self) -> Option<IpAddr> {
        let text = self.received()?;
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(text);
        unbracketed
            .parse()
            .ok()
            .or_else(|| parse_ipv6(unbracketed).map(IpAddr::V6))
    }

    /// Whether `rport` is present, with or without a value (RFC 3581).
    pub fn has_rport(&self) -> bool {
        self.params.contains("rport")
    }

    pub fn rport(&self) -> Option<u16> {
        self.params
            .value("rport")
            .and_then(|port| port.parse().ok())
    }
}

impl FromStr for Via {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let name = scanner.token();
        let version = scanner
            .eat_separator('/')
            .then(|| scanner.token())
            .flatten();
        let transport = scanner
            .eat_separator('/')
            .then(|| scanner.token())
            .flatten();
        let (Some(name), Some(version), Some(transport)) = (name, version, transport) else {
            return malformed("sent-protocol must be name/version/transport");
        };
        scanner.skip_whitespace();
        let host_text = if scanner.peek() == Some('[') {
            let bracketed = scanner.take_while(|c| c != ']');
            if !scanner.eat(']') {
                return malformed("unterminated IPv6 reference");
            }
            format!("{bracketed}]")
        } else {
            scanner
                .take_while(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                .to_owned()
        };
        let host = Host::parse(&host_text).map_err(|error| ValueError(error.to_string()))?;
        let port = if scanner.eat_separator(':') {
            let digits = scanner.take_while(|c| c.is_ascii_digit());
            Some(
                digits
                    .parse()
                    .map_err(|_| ValueError(format!("{digits:?} is not a valid port")))?,
            )
        } else {
            None
        };
        let params = scanner.header_params()?;
        scanner.expect_end()?;
        Ok(Via {
            protocol: format!("{}/{version}", name.to_ascii_uppercase()),
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.sent_by())?;
        self.params.fmt_as_header_params(f)
    }
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub number: u32,
    pub method: Method,
}

impl FromStr for CSeq {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let digits = scanner.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return malformed("the sequence number is missing");
        }
        // RFC 3261 8.1.1.5: the number must fit 32 bits (RFC 4475 scalar02, scalarlg).
        let number = digits
            .parse()
            .map_err(|_| ValueError(format!("sequence number {digits} exceeds 2**32-1")))?;
        let after_number = scanner.position;
        scanner.skip_whitespace();
        if scanner.position == after_number {
            return malformed("the sequence number and method must be separated by whitespace");
        }
        let Some(method) = scanner.token() else {
            return malformed("the method is missing");
        };
        scanner.expect_end()?;
        let method = method
            .parse()
            .map_err(|_| ValueError(format!("{method:?} is not a method")))?;
        Ok(CSeq { number, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number, self.method)
    }
}

/// One Reason header value (RFC 3326), e.g. `SIP;cause=200;text="Call completed elsewhere"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `SIP`, `Q.850`, or another protocol token, as received.
    pub protocol: String,
    pub cause: Option<u16>,
    pub text: Option<String>,
    pub params: Params,
}

impl Reason {
    /// `SIP;cause=200`: the call was answered elsewhere (RFC 3326, used on CANCEL).
    pub fn is_answered_elsewhere(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("SIP") && self.cause == Some(200)
    }
}

impl FromStr for Reason {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let Some(protocol) = scanner.token() else {
            return malformed("the protocol is missing");
        };
        let params = scanner.header_params()?;
        scanner.expect_end()?;
        let cause = match params.value("cause") {
            Some(cause) => Some(
                cause
                    .parse()
                    .map_err(|_| ValueError(format!("cause {cause:?} is not a number")))?,
            ),
            None => None,
        };
        Ok(Reason {
            protocol: protocol.to_owned(),
            cause,
            text: params.value("text").map(str::to_owned),
            params,
        })
    }
}

/// A media type from Content-Type or Accept, type and subtype in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub kind: String,
    pub subtype: String,
    pub params: Params,
}

impl MediaType {
    /// `type/subtype` without parameters.
    pub fn essence(&self) -> String {
        format!("{}/{}", self.kind, self.subtype)
    }

    /// Whether this is `essence` (`application/dialog-info+xml`), ignoring case and parameters.
    pub fn is(&self, essence: &str) -> bool {
        essence.split_once('/').is_some_and(|(kind, subtype)| {
            kind.eq_ignore_ascii_case(&self.kind) && subtype.eq_ignore_ascii_case(&self.subtype)
        })
    }
}

impl FromStr for MediaType {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let kind = scanner.token();
        let subtype = scanner
            .eat_separator('/')
            .then(|| scanner.token())
            .flatten();
        let (Some(kind), Some(subtype)) = (kind, subtype) else {
            return malformed("a media type is type/subtype");
        };
        let params = scanner.header_params()?;
        scanner.expect_end()?;
        Ok(MediaType {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            params,
        })
    }
}

/// The Event header (RFC 6665): a package name and parameters such as `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    pub package: String,
    pub params: Params,
}

impl EventHeader {
    pub fn id(&self) -> Option<&str> {
        self.params.value("id")
    }
}

impl FromStr for EventHeader {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let Some(package) = scanner.token() else {
            return malformed("the event package is missing");
        };
        let params = scanner.header_params()?;
        scanner.expect_end()?;
        Ok(EventHeader {
            package: package.to_owned(),
            params,
        })
    }
}

/// The state named by a Subscription-State header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    Active,
    Pending,
    Terminated,
    Other(String),
}

/// The Subscription-State header (RFC 6665).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub state: SubState,
    pub params: Params,
}

impl SubscriptionState {
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(|v| v.parse().ok())
    }

    pub fn reason(&self) -> Option<&str> {
        self.params.value("reason")
    }

    pub fn retry_after(&self) -> Option<u32> {
        self.params
            .value("retry-after")
            .and_then(|v| v.parse().ok())
    }
}

impl FromStr for SubscriptionState {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scanner = Scanner::new(text);
        scanner.skip_whitespace();
        let Some(state) = scanner.token() else {
            return malformed("the subscription state is missing");
        };
        let params = scanner.header_params()?;
        scanner.expect_end()?;
        let state = match state.to_ascii_lowercase().as_str() {
            "active" => SubState::Active,
            "pending" => SubState::Pending,
            "terminated" => SubState::Terminated,
            _ => SubState::Other(state.to_owned()),
        };
        Ok(SubscriptionState { state, params })
    }
}

/// Reads delta-seconds (Expires, Max-Forwards).
fn parse_delta(text: &str) -> Result<u32, ValueError> {
    let digits = text.trim();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return malformed(format!("{digits:?} is not a number"));
    }
    digits
        .parse()
        .map_err(|_| ValueError(format!("{digits} exceeds 2**32-1")))
}

/// Whether `text` is an RFC 1123 date in GMT, the only form SIP allows (RFC 3261 20.17,
/// RFC 4475 `baddate`).
pub(super) fn is_sip_date(text: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits =
        |part: &str, count: usize| part.len() == count && part.chars().all(|c| c.is_ascii_digit());
    let Some((day_name, rest)) = text.trim().split_once(", ") else {
        return false;
    };
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return false;
    };
    let time_ok = {
        let pieces: Vec<&str> = time.split(':').collect();
        pieces.len() == 3 && pieces.iter().all(|piece| digits(piece, 2))
    };
    DAYS.contains(&day_name)
        && digits(day, 2)
        && MONTHS.contains(month)
        && digits(year, 4)
        && time_ok
        && *zone == "GMT"
}

fn read<'a, T>(
    header: &'static str,
    value: &'a str,
    parse: impl FnOnce(&'a str) -> Result<T, ValueError>,
) -> Result<T, HeaderError> {
    parse(value).map_err(|source| HeaderError::Malformed { header, source })
}

impl SipMessage {
    fn required(&self, header: &'static str) -> Result<&str, HeaderError> {
        self.header(header).ok_or(HeaderError::Missing(header))
    }

    /// Every element of a list header, across all its fields, in order.
    fn list_elements(&self, header: &'static str) -> Result<Vec<&str>, HeaderError> {
        let mut elements = Vec::new();
        for value in self.headers().get_all(header) {
            elements.extend(read(header, value, split_list)?);
        }
        Ok(elements)
    }

    fn name_addr_list(&self, header: &'static str) -> Result<Vec<NameAddr>, HeaderError> {
        self.list_elements(header)?
            .into_iter()
            .map(|element| read(header, element, NameAddr::from_str))
            .collect()
    }

    fn optional<T>(
        &self,
        header: &'static str,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Result<Option<T>, HeaderError> {
        self.header(header)
            .map(|value| read(header, value, parse))
            .transpose()
    }

    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let value = self.required("Call-ID")?;
        if value.is_empty() || value.contains([' ', '\t']) {
            return Err(HeaderError::Malformed {
                header: "Call-ID",
                source: ValueError("a Call-ID is one word".into()),
            });
        }
        Ok(value)
    }

    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        read("CSeq", self.required("CSeq")?, CSeq::from_str)
    }

    /// Every Via entry, top first.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let vias = self
            .list_elements("Via")?
            .into_iter()
            .map(|element| read("Via", element, Via::from_str))
            .collect::<Result<Vec<_>, _>>()?;
        if vias.is_empty() {
            return Err(HeaderError::Missing("Via"));
        }
        Ok(vias)
    }

    /// The topmost Via entry: its branch identifies the transaction (RFC 3261 17.2.3).
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let first_field = self.required("Via")?;
        let first = read("Via", first_field, split_list)?
            .into_iter()
            .next()
            .ok_or(HeaderError::Missing("Via"))?;
        read("Via", first, Via::from_str)
    }

    pub fn from_header(&self) -> Result<NameAddr, HeaderError> {
        read("From", self.required("From")?, NameAddr::from_str)
    }

    pub fn to_header(&self) -> Result<NameAddr, HeaderError> {
        read("To", self.required("To")?, NameAddr::from_str)
    }

    /// Contact entries; the REGISTER wildcard `*` yields none.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, HeaderError> {
        if self.headers().get_all("Contact").any(|value| value == "*") {
            return Ok(Vec::new());
        }
        self.name_addr_list("Contact")
    }

    pub fn content_type(&self) -> Result<Option<MediaType>, HeaderError> {
        self.optional("Content-Type", MediaType::from_str)
    }

    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.optional("Expires", parse_delta)
    }

    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        self.optional("Max-Forwards", |value| {
            let hops = parse_delta(value)?;
            u8::try_from(hops).map_err(|_| ValueError(format!("{hops} exceeds 255")))
        })
    }

    pub fn event(&self) -> Result<Option<EventHeader>, HeaderError> {
        self.optional("Event", EventHeader::from_str)
    }

    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, HeaderError> {
        self.optional("Subscription-State", SubscriptionState::from_str)
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.header("User-Agent")
    }

    /// P-Asserted-Identity entries (RFC 3325): at most one sip/sips and one tel URI.
    pub fn p_asserted_identities(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addr_list("P-Asserted-Identity")
    }

    /// Remote-Party-ID entries (draft-ietf-sip-privacy-04), with `party`, `screen` and `privacy`
    /// parameters.
    pub fn remote_party_ids(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addr_list("Remote-Party-ID")
    }

    /// Privacy values (RFC 3323) in lower case: `id`, `header`, `session`, `user`, `none`,
    /// `critical`.
    pub fn privacy(&self) -> Vec<String> {
        self.headers()
            .get_all("Privacy")
            .flat_map(|value| value.split([';', ',']))
            .map(|value| value.trim().to_ascii_lowercase())
            .filter(|value| !value.is_empty())
            .collect()
    }

    /// Diversion entries (RFC 5806), most recent diversion first.
    pub fn diversions(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addr_list("Diversion")
    }

    /// History-Info entries (RFC 7044) in header order; `index` is a parameter of each.
    pub fn history_info(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addr_list("History-Info")
    }

    /// Reason values (RFC 3326).
    pub fn reasons(&self) -> Result<Vec<Reason>, HeaderError> {
        self.list_elements("Reason")?
            .into_iter()
            .map(|element| read("Reason", element, Reason::from_str))
            .collect()
    }
}

/// The elements of a list header value, for callers holding a raw value.
pub fn list_elements(value: &str) -> Result<Vec<&str>, ValueError> {
    split_list(value)
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn message(headers: &str) -> SipMessage {
        let text = format!("INVITE sip:100@pbx.example.com SIP/2.0\r\n{headers}\r\n\r\n");
        parse(text.as_bytes()).unwrap()
    }

    fn name_addr(text: &str) -> NameAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_quoted_display_name_is_decoded() {
        let from =
            name_addr(r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#);
        assert_eq!(from.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(from.tag(), Some("98asjd8"));
        assert_eq!(from.user().as_deref(), Some("jdrosen"));
    }

    #[test]
    fn control_characters_in_a_quoted_display_name_survive() {
        let to = name_addr("\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7F\" <sip:user@example.com>");
        assert_eq!(
            to.display_name.as_deref(),
            Some("BEL:\x07 NUL:\x00 DEL:\x7F")
        );
    }

    #[test]
    fn token_display_names_are_joined_with_single_spaces() {
        let from = name_addr(
            "token1~` token2'+_   token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.",
        );
        assert_eq!(
            from.display_name.as_deref(),
            Some("token1~` token2'+_ token3*%!.-")
        );
        assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    }

    #[test]
    fn a_display_name_may_touch_the_angle_bracket() {
        let from = name_addr("caller<sip:caller@example.com>;tag=323");
        assert_eq!(from.display_name.as_deref(), Some("caller"));
    }

    #[test]
    fn an_unquoted_display_name_with_a_comma_is_rejected() {
        assert!(
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43"
                .parse::<NameAddr>()
                .is_err()
        );
    }

    #[test]
    fn spaces_inside_angle_brackets_are_rejected() {
        assert!(r#""Watson, Thomas" < sip:t.watson@example.org >"#.parse::<NameAddr>().is_err());
    }

    #[test]
    fn an_unterminated_quote_is_rejected() {
        assert!(r#""Mr. J. User <sip:j.user@example.com>"#.parse::<NameAddr>().is_err());
    }

    #[test]
    fn an_addr_spec_with_uri_headers_must_use_angle_brackets() {
        assert!(
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
                .parse::<NameAddr>()
                .is_err()
        );
        assert!(
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"
                .parse::<NameAddr>()
                .is_ok()
        );
    }

    #[test]
    fn an_addr_spec_hands_its_parameters_to_the_header() {
        let to = name_addr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert_eq!(to.tag(), Some("1918181833n"));
        assert!(to.uri.params().unwrap().is_empty());
    }

    #[test]
    fn a_quoted_parameter_may_hold_angle_brackets() {
        let contact = name_addr(r#"sip:a@example.com;+sip.instance="<urn:uuid:1>""#);
        assert_eq!(contact.params.value("+sip.instance"), Some("<urn:uuid:1>"));
    }

    #[test]
    fn empty_parameters_are_rejected() {
        assert!(r#""Joe" <sip:joe@example.org>;;;;"#.parse::<NameAddr>().is_err());
    }

    #[test]
    fn name_addr_prints_in_angle_bracket_form() {
        let addr = NameAddr::new("sip:100@pbx.example.com".parse().unwrap())
            .with_display_name("Front \"Desk\"")
            .with_tag("abc");
        assert_eq!(
            addr.to_string(),
            r#""Front \"Desk\"" <sip:100@pbx.example.com>;tag=abc"#
        );
    }

    #[test]
    fn via_tolerates_whitespace_around_separators() {
        let via: Via = "SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw"
            .parse()
            .unwrap();
        assert_eq!(via.protocol, "SIP/2.0");
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.host, Host::Ipv4("192.0.2.2".parse().unwrap()));
        assert_eq!(via.branch(), Some("390skdjuw"));
    }

    #[test]
    fn via_reads_an_ipv6_sent_by_with_port() {
        let via: Via = "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport"
            .parse()
            .unwrap();
        assert_eq!(via.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(via.port, Some(5060));
        assert_eq!(via.sent_by(), "[2001:db8::1]:5060");
        assert!(via.has_rport());
        assert_eq!(via.rport(), None);
    }

    #[test]
    fn received_is_read_with_and_without_ipv6_brackets() {
        let expected: IpAddr = "2001:db8::9:255".parse().unwrap();
        for value in ["[2001:db8::9:255]", "2001:db8::9:255"] {
            let via: Via =
                format!("SIP/2.0/UDP [2001:db8::9:1];received={value};branch=z9hG4bKas3")
                    .parse()
                    .unwrap();
            assert_eq!(via.received_ip(), Some(expected), "{value}");
        }
    }

    #[test]
    fn via_prints_canonically() {
        let via: Via = "SIP / 2.0 / tcp  host.example.com : 5061 ; branch = z9hG4bK2"
            .parse()
            .unwrap();
        assert_eq!(
            via.to_string(),
            "SIP/2.0/TCP host.example.com:5061;branch=z9hG4bK2"
        );
    }

    #[test]
    fn extraneous_via_separators_are_rejected() {
        let message = message("Via: SIP/2.0/UDP 192.0.2.15;;,;,,");
        assert!(matches!(
            message.vias(),
            Err(HeaderError::Malformed { header: "Via", .. })
        ));
    }

    #[test]
    fn a_via_field_may_hold_several_entries() {
        let message = message(
            "Via: SIP/2.0/UDP first.example.com;branch=z9hG4bK1\r\n\
             v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n \
             SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239",
        );
        let branches: Vec<String> = message
            .vias()
            .unwrap()
            .iter()
            .map(|via| via.branch().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(branches, ["z9hG4bK1", "z9hG4bK9ikj8", "z9hG4bK30239"]);
        assert_eq!(message.top_via().unwrap().branch(), Some("z9hG4bK1"));
    }

    #[test]
    fn cseq_reads_number_and_method_across_whitespace() {
        let cseq: CSeq = "0009\t  INVITE".parse().unwrap();
        assert_eq!(
            cseq,
            CSeq {
                number: 9,
                method: Method::Invite
            }
        );
    }

    #[test]
    fn cseq_beyond_32_bits_is_rejected() {
        assert!("36893488147419103232 REGISTER".parse::<CSeq>().is_err());
        assert!("4294967295 REGISTER".parse::<CSeq>().is_ok());
    }

    #[test]
    fn cseq_needs_whitespace_and_a_method() {
        assert!("8INVITE".parse::<CSeq>().is_err());
        assert!("8".parse::<CSeq>().is_err());
        assert!("8 INVITE extra".parse::<CSeq>().is_err());
    }

    #[test]
    fn reason_reads_protocol_cause_and_text() {
        let message =
            message(r#"Reason: SIP ;cause=200 ;text="Call completed elsewhere", Q.850;cause=16"#);
        let reasons = message.reasons().unwrap();
        assert_eq!(reasons.len(), 2);
        assert!(reasons[0].is_answered_elsewhere());
        assert_eq!(reasons[0].text.as_deref(), Some("Call completed elsewhere"));
        assert_eq!(reasons[1].protocol, "Q.850");
        assert_eq!(reasons[1].cause, Some(16));
        assert!(!reasons[1].is_answered_elsewhere());
    }

    #[test]
    fn content_type_compares_without_case_or_parameters() {
        let message = message("c: Application/Dialog-Info+XML; charset=UTF-8");
        let media = message.content_type().unwrap().unwrap();
        assert!(media.is("application/dialog-info+xml"));
        assert_eq!(media.essence(), "application/dialog-info+xml");
        assert_eq!(media.params.value("charset"), Some("UTF-8"));
    }

    #[test]
    fn event_and_subscription_state_are_read() {
        let message = message(
            "o: dialog;id=7\r\nSubscription-State: terminated;reason=timeout;retry-after=30",
        );
        let event = message.event().unwrap().unwrap();
        assert_eq!(event.package, "dialog");
        assert_eq!(event.id(), Some("7"));
        let state = message.subscription_state().unwrap().unwrap();
        assert_eq!(state.state, SubState::Terminated);
        assert_eq!(state.reason(), Some("timeout"));
        assert_eq!(state.retry_after(), Some(30));
    }

    #[test]
    fn expires_and_max_forwards_are_bounded() {
        let message = message("Expires: 3600\r\nMax-Forwards: 70");
        assert_eq!(message.expires(), Ok(Some(3600)));
        assert_eq!(message.max_forwards(), Ok(Some(70)));
        let too_large = super::super::parse(
            b"OPTIONS sip:a@b.com SIP/2.0\r\nExpires: 10000000000000\r\nMax-Forwards: 300\r\n\r\n",
        )
        .unwrap();
        assert!(too_large.expires().is_err());
        assert!(too_large.max_forwards().is_err());
    }

    #[test]
    fn caller_identity_headers_are_read() {
        let message = message(
            "P-Asserted-Identity: \"Cullen Jennings\" <sip:fluffy@cisco.com>, <tel:+14085264000>\r\n\
             Remote-Party-ID: \"Front Desk\" <sip:+8610555@gw.example.com;user=phone>;party=calling;screen=yes;privacy=off\r\n\
             Privacy: id;header\r\n\
             Diversion: <sip:200@pbx.example.com>;reason=unconditional;counter=1\r\n\
             History-Info: <sip:100@pbx.example.com?Reason=SIP%3Bcause%3D302>;index=1, <sip:200@pbx.example.com>;index=1.1\r\n\
             User-Agent: FPBX-16.0(18.9)",
        );
        let identities = message.p_asserted_identities().unwrap();
        assert_eq!(
            identities[0].display_name.as_deref(),
            Some("Cullen Jennings")
        );
        assert_eq!(identities[1].user().as_deref(), Some("+14085264000"));

        let party = &message.remote_party_ids().unwrap()[0];
        assert_eq!(party.user().as_deref(), Some("+8610555"));
        assert_eq!(party.params.value("party"), Some("calling"));

        assert_eq!(message.privacy(), ["id", "header"]);

        let diversion = &message.diversions().unwrap()[0];
        assert_eq!(diversion.user().as_deref(), Some("200"));
        assert_eq!(diversion.params.value("reason"), Some("unconditional"));

        let history = message.history_info().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].params.value("index"), Some("1.1"));

        assert_eq!(message.user_agent(), Some("FPBX-16.0(18.9)"));
    }

    #[test]
    fn missing_headers_are_named() {
        let message = message("Max-Forwards: 70");
        assert_eq!(message.call_id(), Err(HeaderError::Missing("Call-ID")));
        assert_eq!(message.cseq(), Err(HeaderError::Missing("CSeq")));
        assert_eq!(message.from_header(), Err(HeaderError::Missing("From")));
        assert_eq!(message.top_via(), Err(HeaderError::Missing("Via")));
        assert_eq!(message.content_type(), Ok(None));
    }

    #[test]
    fn the_contact_wildcard_yields_no_entries() {
        assert_eq!(message("Contact: *").contacts(), Ok(Vec::new()));
    }

    #[test]
    fn sip_dates_must_be_rfc_1123_in_gmt() {
        assert!(is_sip_date("Sat, 15 Oct 2005 04:44:56 GMT"));
        assert!(!is_sip_date("Fri, 01 Jan 2010 16:00:00 EST"));
        assert!(!is_sip_date("Fri, 1 Jan 2010 16:00:00 GMT"));
        assert!(!is_sip_date("Fry, 01 Jan 2010 16:00:00 GMT"));
    }

    #[test]
    fn list_splitting_respects_quotes_and_brackets() {
        assert_eq!(
            list_elements(r#""a, b" <sip:x@y.com>, <sip:c,d@e.com>"#).unwrap(),
            [r#""a, b" <sip:x@y.com>"#, "<sip:c,d@e.com>"]
        );
        assert!(list_elements("a,,b").is_err());
        assert!(list_elements(r#""open"#).is_err());
    }
}
