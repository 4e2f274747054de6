//! The parsed SIP message: start line, normalized header fields in wire order, and the body.
//!
//! `rsip::SipMessage` cannot be the parsed form because `rsip` 0.4 refuses valid messages before a
//! caller sees them: its `Method` is a closed enum (RFC 4475 `intmeth`, `esc02` and every extension
//! method fail), and its Request-URI tokenizer rejects IPv6 references, escaped user parts and
//! user parts with `;`. So the start line is parsed here, header fields are kept as normalized text
//! (typed on demand, see `headers.rs`), and [`SipMessage::to_rsip`] converts for callers that want
//! `rsip`'s types on a message `rsip` can represent.

use std::fmt;
use std::str::FromStr;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::framer::{FramingError, declared_content_length, find_head_end};
use super::headers::NameAddr;
use super::normalize::{
    HeaderField, NormalizeError, canonical_name, is_token_char, normalize_head,
};
use super::uri::{Uri, UriError};

/// Why bytes could not be read as one SIP message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipParseError {
    #[error("the message is empty")]
    Empty,
    #[error(transparent)]
    Framing(#[from] FramingError),
    #[error("malformed header section: {0}")]
    Head(#[from] NormalizeError),
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    #[error("malformed Request-URI: {0}")]
    RequestUri(#[from] UriError),
    #[error("a Request-URI must not carry headers (RFC 3261 19.1.1)")]
    RequestUriHeaders,
}

/// A SIP method. Methods are case-sensitive (RFC 3261 7.1), so `invite` is an extension method,
/// not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Ack,
    Bye,
    Cancel,
    Info,
    Invite,
    Message,
    Notify,
    Options,
    Prack,
    Publish,
    Refer,
    Register,
    Subscribe,
    Update,
    Extension(String),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Info => "INFO",
            Method::Invite => "INVITE",
            Method::Message => "MESSAGE",
            Method::Notify => "NOTIFY",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Publish => "PUBLISH",
            Method::Refer => "REFER",
            Method::Register => "REGISTER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Update => "UPDATE",
            Method::Extension(name) => name,
        }
    }
}

/// The text is not a `token`, so it cannot be a method.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a valid method")]
pub struct InvalidMethod(pub String);

impl FromStr for Method {
    type Err = InvalidMethod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let method = match text {
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "INFO" => Method::Info,
            "INVITE" => Method::Invite,
            "MESSAGE" => Method::Message,
            "NOTIFY" => Method::Notify,
            "OPTIONS" => Method::Options,
            "PRACK" => Method::Prack,
            "PUBLISH" => Method::Publish,
            "REFER" => Method::Refer,
            "REGISTER" => Method::Register,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            other if !other.is_empty() && other.chars().all(is_token_char) => {
                Method::Extension(other.to_owned())
            }
            other => return Err(InvalidMethod(other.to_owned())),
        };
        Ok(method)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `SIP/major.minor` version. Only 2.0 is supported, but others parse so that the caller can
/// answer 505 (RFC 4475 `badvers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    pub const SIP_2_0: Version = Version { major: 2, minor: 0 };

    fn parse(text: &str) -> Option<Self> {
        let prefix = text.get(..4)?;
        if !prefix.eq_ignore_ascii_case("SIP/") {
            return None;
        }
        let (major, minor) = text.get(4..)?.split_once('.')?;
        let digits = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(Version {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub version: Version,
    pub code: u16,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request(RequestLine),
    Response(StatusLine),
}

/// Header fields in wire order. Lookups are case-insensitive and understand compact names, so
/// `get("i")`, `get("call-id")` and `get("Call-ID")` find the same field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<HeaderField>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// The values of every field called `name`, in wire order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let wanted = canonical_name(name).into_owned();
        self.0
            .iter()
            .filter(move |field| field.name.eq_ignore_ascii_case(&wanted))
            .map(|field| field.value.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// Appends a field; compact names are expanded.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(HeaderField {
            name: canonical_name(name).into_owned(),
            value: value.into(),
        });
    }

    /// Removes every field called `name`.
    pub fn remove(&mut self, name: &str) {
        let unwanted = canonical_name(name).into_owned();
        self.0
            .retain(|field| !field.name.eq_ignore_ascii_case(&unwanted));
    }

    /// Replaces every field called `name` with one field holding `value`, where the first one was
    /// (or at the end).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let canonical = canonical_name(name).into_owned();
        let position = self
            .0
            .iter()
            .position(|field| field.name.eq_ignore_ascii_case(&canonical));
        self.remove(&canonical);
        let field = HeaderField {
            name: canonical,
            value: value.into(),
        };
        match position {
            Some(index) => self.0.insert(index.min(self.0.len()), field),
            None => self.0.push(field),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &HeaderField> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<HeaderField>> for Headers {
    fn from(fields: Vec<HeaderField>) -> Self {
        Self(fields)
    }
}

/// One SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    start_line: StartLine,
    headers: Headers,
    body: Bytes,
}

impl SipMessage {
    pub fn new(start_line: StartLine, headers: Headers, body: Bytes) -> Self {
        Self {
            start_line,
            headers,
            body,
        }
    }

    pub fn start_line(&self) -> &StartLine {
        &self.start_line
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start_line, StartLine::Request(_))
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start_line {
            StartLine::Request(line) => Some(&line.method),
            StartLine::Response(_) => None,
        }
    }

    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start_line {
            StartLine::Request(line) => Some(&line.uri),
            StartLine::Response(_) => None,
        }
    }

    /// The decoded user part of the Request-URI (the dialed number or extension).
    pub fn request_uri_user(&self) -> Option<String> {
        self.request_uri().and_then(Uri::user)
    }

    pub fn status_code(&self) -> Option<u16> {
        match &self.start_line {
            StartLine::Response(line) => Some(line.code),
            StartLine::Request(_) => None,
        }
    }

    pub fn reason_phrase(&self) -> Option<&str> {
        match &self.start_line {
            StartLine::Response(line) => Some(&line.reason),
            StartLine::Request(_) => None,
        }
    }

    pub fn version(&self) -> Version {
        match &self.start_line {
            StartLine::Request(line) => line.version,
            StartLine::Response(line) => line.version,
        }
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The value of the first header called `name` (case-insensitive, compact names understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The message as it goes on the wire. Headers are written as stored; builders in this module
    /// keep Content-Length equal to the body length.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(256 + self.body.len());
        let start = match &self.start_line {
            StartLine::Request(line) => {
                format!("{} {} {}\r\n", line.method, line.uri, line.version)
            }
            StartLine::Response(line) => {
                format!("{} {} {}\r\n", line.version, line.code, line.reason)
            }
        };
        out.extend_from_slice(start.as_bytes());
        for field in self.headers.iter() {
            out.extend_from_slice(field.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(field.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out.freeze()
    }

    /// Converts to `rsip`'s representation. Via, From, To and Contact values are rewritten in
    /// canonical form first (no whitespace around `/`, `;`, `=`; one Via per field), because `rsip`'s
    /// typed readings of those headers fail on the optional whitespace RFC 3261 allows (RFC 4475
    /// `wsinv`). Fails where `rsip` 0.4 cannot represent the message at all: extension methods,
    /// IPv6, escaped or `;`-bearing Request-URI users, unknown Request-URI schemes.
    pub fn to_rsip(&self) -> Result<rsip::SipMessage, rsip::Error> {
        let mut canonical = Headers::new();
        for field in self.headers.iter() {
            match field.name.as_str() {
                "Via" => match self.vias() {
                    Ok(vias) => {
                        if canonical.get("Via").is_none() {
                            for via in vias {
                                canonical.push("Via", via.to_string());
                            }
                        }
                    }
                    Err(_) => canonical.push("Via", field.value.clone()),
                },
                "From" | "To" | "Contact" => {
                    let rewritten = field.value.parse::<NameAddr>().map(|addr| addr.to_string());
                    canonical.push(
                        &field.name,
                        rewritten.unwrap_or_else(|_| field.value.clone()),
                    );
                }
                _ => canonical.push(&field.name, field.value.clone()),
            }
        }
        let rewritten = SipMessage::new(self.start_line.clone(), canonical, self.body.clone());
        rsip::SipMessage::try_from(rewritten.to_bytes())
    }
}

/// Parses one SIP message. Leading CRLFs are skipped (RFC 3261 7.5). When Content-Length is present
/// the body is that many bytes and any bytes after it are ignored, as for a datagram (RFC 3261 18.3);
/// a body shorter than Content-Length is an error. Without Content-Length the body is the rest.
///
/// A header section that is not UTF-8 is decoded lossily rather than rejected: PBXs send display
/// names in legacy encodings, and losing a display name is better than losing the call.
pub fn parse(bytes: &[u8]) -> Result<SipMessage, SipParseError> {
    let start = bytes
        .iter()
        .position(|byte| !matches!(byte, b'\r' | b'\n'))
        .ok_or(SipParseError::Empty)?;
    let message = bytes.get(start..).unwrap_or_default();
    let head_end = find_head_end(message).ok_or(FramingError::UnterminatedHeaders)?;
    let head = String::from_utf8_lossy(message.get(..head_end).unwrap_or_default());
    let after_head = message.get(head_end + 4..).unwrap_or_default();

    let normalized = normalize_head(&head)?;
    let start_line = parse_start_line(&normalized.start_line)?;
    let headers = Headers::from(normalized.fields);

    let body = match declared_content_length(headers.get_all("Content-Length"))? {
        Some(declared) => after_head
            .get(..declared)
            .ok_or(FramingError::TruncatedBody {
                declared,
                received: after_head.len(),
            })?,
        None => after_head,
    };

    Ok(SipMessage {
        start_line,
        headers,
        body: Bytes::copy_from_slice(body),
    })
}

fn parse_start_line(line: &str) -> Result<StartLine, SipParseError> {
    let first_word = line.split(' ').next().unwrap_or_default();
    // A method is a token and so never holds '/'; a status line starts with "SIP/".
    if first_word.contains('/') {
        parse_status_line(line).map(StartLine::Response)
    } else {
        parse_request_line(line).map(StartLine::Request)
    }
}

fn parse_request_line(line: &str) -> Result<RequestLine, SipParseError> {
    // Exactly one SP between the three elements and none at the end (RFC 4475 lwsstart, trws,
    // lwsruri).
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(SipParseError::StartLine(
            "a Request-Line is three elements separated by single spaces",
        ));
    };
    let method: Method = method
        .parse()
        .map_err(|_| SipParseError::StartLine("the method is not a token"))?;
    let uri: Uri = uri.parse()?;
    if uri.has_headers() {
        return Err(SipParseError::RequestUriHeaders);
    }
    let version =
        Version::parse(version).ok_or(SipParseError::StartLine("the SIP version is malformed"))?;
    Ok(RequestLine {
        method,
        uri,
        version,
    })
}

fn parse_status_line(line: &str) -> Result<StatusLine, SipParseError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts
        .next()
        .and_then(Version::parse)
        .ok_or(SipParseError::StartLine("the SIP version is malformed"))?;
    let code_text = parts.next().unwrap_or_default();
    if code_text.len() != 3 || !code_text.chars().all(|c| c.is_ascii_digit()) {
        return Err(SipParseError::StartLine(
            "the status code is not three digits",
        ));
    }
    let code: u16 = code_text
        .parse()
        .map_err(|_| SipParseError::StartLine("the status code is not three digits"))?;
    if !(100..=699).contains(&code) {
        return Err(SipParseError::StartLine(
            "the status code is outside 100-699",
        ));
    }
    Ok(StatusLine {
        version,
        code,
        reason: parts.next().unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:user@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n\
        To: <sip:user@example.com>\r\n\
        From: <sip:caller@example.com>;tag=1\r\n\
        i: abc@host\r\n\
        CSeq: 1 OPTIONS\r\n\
        l: 0\r\n\r\n";

    #[test]
    fn parses_a_request_line_and_headers() {
        let message = parse(OPTIONS).unwrap();
        assert_eq!(message.method(), Some(&Method::Options));
        assert_eq!(message.request_uri_user().as_deref(), Some("user"));
        assert_eq!(message.version(), Version::SIP_2_0);
        assert_eq!(message.header("call-id"), Some("abc@host"));
        assert_eq!(message.header("i"), Some("abc@host"));
        assert!(message.body().is_empty());
    }

    #[test]
    fn leading_crlfs_are_skipped() {
        let mut bytes = b"\r\n\r\n".to_vec();
        bytes.extend_from_slice(OPTIONS);
        assert!(parse(&bytes).is_ok());
    }

    #[test]
    fn extension_methods_parse_and_keep_their_case() {
        assert_eq!(
            "!interesting-Method0123456789_*+`.%indeed'~".parse::<Method>(),
            Ok(Method::Extension(
                "!interesting-Method0123456789_*+`.%indeed'~".into()
            ))
        );
        assert_eq!(
            "invite".parse::<Method>(),
            Ok(Method::Extension("invite".into()))
        );
        assert!("IN VITE".parse::<Method>().is_err());
    }

    #[test]
    fn a_status_line_with_empty_reason_parses() {
        let message = parse(b"SIP/2.0 100 \r\nCall-ID: x\r\n\r\n").unwrap();
        assert_eq!(message.status_code(), Some(100));
        assert_eq!(message.reason_phrase(), Some(""));
    }

    #[test]
    fn an_overlarge_status_code_is_rejected() {
        assert!(matches!(
            parse(b"SIP/2.0 4294967301 better not break\r\n\r\n"),
            Err(SipParseError::StartLine(_))
        ));
        assert!(matches!(
            parse(b"SIP/2.0 099 Low\r\n\r\n"),
            Err(SipParseError::StartLine(_))
        ));
    }

    #[test]
    fn double_spaces_in_the_request_line_are_rejected() {
        assert!(matches!(
            parse(b"INVITE  sip:a@b  SIP/2.0\r\n\r\n"),
            Err(SipParseError::StartLine(_))
        ));
        assert!(matches!(
            parse(b"OPTIONS sip:a@b SIP/2.0  \r\n\r\n"),
            Err(SipParseError::StartLine(_))
        ));
    }

    #[test]
    fn an_unknown_version_parses_so_it_can_be_answered() {
        let message = parse(b"OPTIONS sip:a@example.com SIP/7.0\r\n\r\n").unwrap();
        assert_eq!(message.version(), Version { major: 7, minor: 0 });
    }

    #[test]
    fn a_request_uri_with_headers_is_rejected() {
        assert_eq!(
            parse(b"INVITE sip:a@example.com?Route=%3Csip:x%3E SIP/2.0\r\n\r\n"),
            Err(SipParseError::RequestUriHeaders)
        );
    }

    #[test]
    fn content_length_cuts_the_body_and_ignores_what_follows() {
        let message = parse(b"MESSAGE sip:a@b.com SIP/2.0\r\nl: 5\r\n\r\nhello, and more").unwrap();
        assert_eq!(message.body().as_ref(), b"hello");
    }

    #[test]
    fn a_body_shorter_than_content_length_is_rejected() {
        assert_eq!(
            parse(b"MESSAGE sip:a@b.com SIP/2.0\r\nContent-Length: 50\r\n\r\nshort"),
            Err(SipParseError::Framing(FramingError::TruncatedBody {
                declared: 50,
                received: 5
            }))
        );
    }

    #[test]
    fn a_message_without_blank_line_is_rejected() {
        assert_eq!(
            parse(b"OPTIONS sip:a@b.com SIP/2.0\r\nCall-ID: x\r\n"),
            Err(SipParseError::Framing(FramingError::UnterminatedHeaders))
        );
    }

    #[test]
    fn non_utf8_header_bytes_are_decoded_lossily() {
        let message =
            parse(b"OPTIONS sip:a@b.com SIP/2.0\r\nFrom: \"\xd5\xc5\" <sip:c@d.com>\r\n\r\n")
                .unwrap();
        assert!(message.header("From").unwrap().ends_with("<sip:c@d.com>"));
    }

    #[test]
    fn serialization_round_trips_through_parse() {
        let message = parse(OPTIONS).unwrap();
        let again = parse(&message.to_bytes()).unwrap();
        assert_eq!(again, message);
        assert!(
            message
                .to_bytes()
                .starts_with(b"OPTIONS sip:user@example.com SIP/2.0\r\n")
        );
    }

    #[test]
    fn headers_set_replaces_every_occurrence_in_place() {
        let mut headers = Headers::new();
        headers.push("Via", "a");
        headers.push("To", "b");
        headers.push("v", "c");
        headers.set("Via", "d");
        let rendered: Vec<(&str, &str)> = headers
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(rendered, [("Via", "d"), ("To", "b")]);
    }

    #[test]
    fn whitespace_rich_headers_convert_to_rsip_typed_headers() {
        use rsip::prelude::*;
        let message = parse(
            b"OPTIONS sip:user@example.com SIP/2.0\r\n\
              Via  : SIP  /   2.0\r\n /UDP    192.0.2.2;branch=390skdjuw,SIP/2.0/TCP h2;branch=z9hG4bK2\r\n\
              from   : \"J Rosenberg\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
              To: sip:user@example.com\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
        )
        .unwrap();
        let converted = message.to_rsip().unwrap();
        let via = converted.via_header().unwrap().typed().unwrap();
        assert_eq!(via.branch().unwrap().to_string(), "390skdjuw");
        let from = converted.from_header().unwrap().typed().unwrap();
        assert_eq!(from.tag().unwrap().to_string(), "98asjd8");
    }

    #[test]
    fn a_plain_message_converts_to_rsip() {
        let message = parse(OPTIONS).unwrap();
        let converted = message.to_rsip().unwrap();
        assert!(converted.is_request());
    }
}
