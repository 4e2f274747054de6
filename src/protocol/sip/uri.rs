//! SIP, SIPS and tel URIs, with IPv6 references (RFC 3261 19.1, RFC 3966, RFC 5118).
//!
//! `rsip` 0.4's URI tokenizer rejects every bracketed IPv6 host (`sip:[2001:db8::10]`), reads a user
//! part containing `;` (RFC 4475 `semiuri`) or `%40` (`esc01`) as a host, and cannot parse `tel:`,
//! so URIs are parsed here. The parser follows the RFC 3261 grammar closely enough to reject what
//! RFC 4475 calls invalid (embedded whitespace, `<...>` around a Request-URI, an unbracketed IPv6
//! address) while accepting every valid torture message.
//!
//! Two leniencies, both from RFC 5118: an IPv6 reference written with the three-colon form that the
//! RFC 3261 ABNF accidentally allowed (`[2001:db8:::192.0.2.1]`, section 4.10) is read as the
//! two-colon form it was meant to be; and a `received` parameter may carry an IPv6 address with or
//! without brackets (section 4.5, see [`super::Via::received_ip`]).
//!
//! User parts, passwords, parameters and URI headers are stored as received, escapes included, so
//! a URI prints back the way it came; [`Uri::user`] decodes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use thiserror::Error;

use super::params::{Param, Params};

/// Why a URI could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("the URI has no scheme")]
    MissingScheme,
    #[error("the URI scheme is not valid")]
    InvalidScheme,
    #[error("the URI has nothing after its scheme")]
    Empty,
    #[error("the user part is not valid")]
    InvalidUser,
    #[error("the password is not valid")]
    InvalidPassword,
    #[error("{0:?} is not a valid host")]
    InvalidHost(String),
    #[error("{0:?} is not a valid port")]
    InvalidPort(String),
    #[error("a URI parameter is not valid")]
    InvalidParam,
    #[error("a URI header is not valid")]
    InvalidHeader,
    #[error("{0:?} is not a valid telephone number")]
    InvalidNumber(String),
    #[error("the URI contains a character that is not allowed")]
    InvalidCharacter,
}

/// The host of a SIP URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses a host as it appears in a URI or Via: a domain name, an IPv4 address, or a bracketed
    /// IPv6 reference.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let invalid = || UriError::InvalidHost(text.to_owned());
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(invalid)?;
            return parse_ipv6(inner).map(Host::Ipv6).ok_or_else(invalid);
        }
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return Err(invalid());
        }
        // A name whose last label is numeric can only be an IPv4 address (RFC 3261 `toplabel` starts
        // with a letter), so `256.1.1.1` or `2001` is rejected rather than taken as a domain.
        let last_label = text
            .trim_end_matches('.')
            .rsplit('.')
            .next()
            .unwrap_or(text);
        if !last_label.is_empty() && last_label.chars().all(|c| c.is_ascii_digit()) {
            return text.parse().map(Host::Ipv4).map_err(|_| invalid());
        }
        Ok(Host::Domain(text.to_owned()))
    }

    /// The address when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(v4) => Some(IpAddr::V4(*v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(*v6)),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Host::Ipv4(v4),
            IpAddr::V6(v6) => Host::Ipv6(v6),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ipv4(v4) => write!(f, "{v4}"),
            Host::Ipv6(v6) => write!(f, "[{v6}]"),
        }
    }
}

/// Parses the text of an IPv6 reference (without brackets), accepting the three-colon form of
/// RFC 5118 section 4.10.
pub(super) fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    if !text
        .chars()
        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    {
        return None;
    }
    text.parse()
        .ok()
        .or_else(|| text.replacen(":::", "::", 1).parse().ok())
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part as received, escapes included.
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// URI headers (`?name=value&...`), escapes included.
    pub headers: Vec<(String, String)>,
}

impl SipUri {
    /// A `sip:` URI for `host` with nothing else set.
    pub fn new(host: Host) -> Self {
        Self {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    /// Sets the user part, escaping what RFC 3261 does not allow there unescaped.
    pub fn with_user(mut self, user: &str) -> Self {
        self.user = Some(escape(user, is_user_char));
        self
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

/// A `tel:` URI (RFC 3966): the number as written, visual separators included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

/// Any other absolute URI (`http:`, `urn:`, `isbn:` ...), kept opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherUri {
    pub scheme: String,
    pub rest: String,
}

/// A URI as found in a Request-URI or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    Other(OtherUri),
}

impl Uri {
    /// The scheme in lower case for sip, sips and tel, as received otherwise.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(sip) if sip.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(other) => &other.scheme,
        }
    }

    /// The user, decoded: the user part of a sip/sips URI (everything before `@`, so a
    /// `user=phone` number keeps any `;isub=`-style suffix), or the number of a tel URI.
    pub fn user(&self) -> Option<String> {
        match self {
            Uri::Sip(sip) => sip.user.as_deref().map(percent_decode),
            Uri::Tel(tel) => Some(tel.number.clone()),
            Uri::Other(_) => None,
        }
    }

    pub fn host(&self) -> Option<&Host> {
        match self {
            Uri::Sip(sip) => Some(&sip.host),
            _ => None,
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            Uri::Sip(sip) => sip.port,
            _ => None,
        }
    }

    /// The URI parameters of a sip/sips or tel URI.
    pub fn params(&self) -> Option<&Params> {
        match self {
            Uri::Sip(sip) => Some(&sip.params),
            Uri::Tel(tel) => Some(&tel.params),
            Uri::Other(_) => None,
        }
    }

    /// Whether a sip/sips URI carries `?headers`, which a Request-URI must not (RFC 3261 19.1.1).
    pub fn has_headers(&self) -> bool {
        matches!(self, Uri::Sip(sip) if !sip.headers.is_empty())
    }
}

impl From<SipUri> for Uri {
    fn from(sip: SipUri) -> Self {
        Uri::Sip(sip)
    }
}

impl FromStr for Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = text.split_once(':').ok_or(UriError::MissingScheme)?;
        let mut scheme_chars = scheme.chars();
        let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme_chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme_ok {
            return Err(UriError::InvalidScheme);
        }
        if rest.is_empty() {
            return Err(UriError::Empty);
        }
        if scheme.eq_ignore_ascii_case("sip") {
            parse_sip(rest, false).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            parse_sip(rest, true).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            parse_tel(rest).map(Uri::Tel)
        } else {
            let opaque_ok = rest
                .chars()
                .all(|c| c.is_ascii_graphic() && !"<>\"{}|\\^`".contains(c));
            if !opaque_ok {
                return Err(UriError::InvalidCharacter);
            }
            Ok(Uri::Other(OtherUri {
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            }))
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(sip) => {
                f.write_str(if sip.secure { "sips:" } else { "sip:" })?;
                if let Some(user) = &sip.user {
                    f.write_str(user)?;
                    if let Some(password) = &sip.password {
                        write!(f, ":{password}")?;
                    }
                    f.write_str("@")?;
                }
                write!(f, "{}", sip.host)?;
                if let Some(port) = sip.port {
                    write!(f, ":{port}")?;
                }
                sip.params.fmt_as_uri_params(f)?;
                for (index, (name, value)) in sip.headers.iter().enumerate() {
                    let separator = if index == 0 { '?' } else { '&' };
                    write!(f, "{separator}{name}={value}")?;
                }
                Ok(())
            }
            Uri::Tel(tel) => {
                write!(f, "tel:{}", tel.number)?;
                tel.params.fmt_as_uri_params(f)
            }
            Uri::Other(other) => write!(f, "{}:{}", other.scheme, other.rest),
        }
    }
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

fn is_user_char(c: char) -> bool {
    is_unreserved(c) || "&=+$,;?/".contains(c)
}

fn is_password_char(c: char) -> bool {
    is_unreserved(c) || "&=+$,".contains(c)
}

fn is_param_char(c: char) -> bool {
    is_unreserved(c) || "[]/:&+$".contains(c)
}

fn is_header_char(c: char) -> bool {
    is_unreserved(c) || "[]/?:+$".contains(c)
}

/// Whether every character of `text` is allowed by `allowed` or is part of a `%HH` escape.
fn is_escaped_text(text: &str, allowed: fn(char) -> bool) -> bool {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let escape_ok = bytes
                .get(index + 1..index + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
            if !escape_ok {
                return false;
            }
            index += 3;
        } else {
            // Multi-byte UTF-8 never passes `allowed`, which only admits ASCII.
            if !allowed(char::from(bytes[index])) || !bytes[index].is_ascii() {
                return false;
            }
            index += 1;
        }
    }
    true
}

/// Decodes `%HH` escapes; text that is not valid UTF-8 afterwards is decoded lossily.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn escape(text: &str, allowed: fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && allowed(c) {
            out.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

fn parse_sip(rest: &str, secure: bool) -> Result<SipUri, UriError> {
    // Neither parameters nor headers may contain an unescaped '@', so the first one ends userinfo.
    let (userinfo, host_and_more) = match rest.split_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, rest),
    };

    let (user, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if user.is_empty() || !is_escaped_text(user, is_user_char) {
                return Err(UriError::InvalidUser);
            }
            if let Some(password) = password
                && !is_escaped_text(password, is_password_char)
            {
                return Err(UriError::InvalidPassword);
            }
            (Some(user.to_owned()), password.map(str::to_owned))
        }
    };

    let (host_text, after_host) = if host_and_more.starts_with('[') {
        let close = host_and_more
            .find(']')
            .ok_or_else(|| UriError::InvalidHost(host_and_more.to_owned()))?;
        host_and_more.split_at(close + 1)
    } else {
        let end = host_and_more
            .find([':', ';', '?'])
            .unwrap_or(host_and_more.len());
        host_and_more.split_at(end)
    };
    let host = Host::parse(host_text)?;

    let (port_text, after_port) = match after_host.strip_prefix(':') {
        Some(port_and_more) => {
            let end = port_and_more
                .find([';', '?'])
                .unwrap_or(port_and_more.len());
            let (port, more) = port_and_more.split_at(end);
            (Some(port), more)
        }
        None => (None, after_host),
    };
    let port = port_text.map(parse_port).transpose()?;

    let (params_text, headers_text) = match after_port.split_once('?') {
        Some((params, headers)) => (params, Some(headers)),
        None => (after_port, None),
    };
    let params = match params_text {
        "" => Params::new(),
        text => {
            let text = text.strip_prefix(';').ok_or(UriError::InvalidCharacter)?;
            parse_uri_params(text, is_param_char)?
        }
    };
    let headers = match headers_text {
        None => Vec::new(),
        Some(text) => parse_uri_headers(text)?,
    };

    Ok(SipUri {
        secure,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

fn parse_port(text: &str) -> Result<u16, UriError> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(UriError::InvalidPort(text.to_owned()));
    }
    text.parse()
        .map_err(|_| UriError::InvalidPort(text.to_owned()))
}

fn parse_uri_params(text: &str, allowed: fn(char) -> bool) -> Result<Params, UriError> {
    text.split(';')
        .map(|param| {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (param, None),
            };
            let name_ok = !name.is_empty() && is_escaped_text(name, allowed);
            let value_ok = value.is_none_or(|v| !v.is_empty() && is_escaped_text(v, allowed));
            if !name_ok || !value_ok {
                return Err(UriError::InvalidParam);
            }
            Ok(Param {
                name: name.to_owned(),
                value: value.map(str::to_owned),
            })
        })
        .collect()
}

fn parse_uri_headers(text: &str) -> Result<Vec<(String, String)>, UriError> {
    text.split('&')
        .map(|header| {
            let (name, value) = header.split_once('=').ok_or(UriError::InvalidHeader)?;
            if name.is_empty()
                || !is_escaped_text(name, is_header_char)
                || !is_escaped_text(value, is_header_char)
            {
                return Err(UriError::InvalidHeader);
            }
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

fn parse_tel(rest: &str) -> Result<TelUri, UriError> {
    let (number, params_text) = match rest.split_once(';') {
        Some((number, params)) => (number, Some(params)),
        None => (rest, None),
    };
    let has_digit = number.chars().any(|c| c.is_ascii_hexdigit());
    let chars_ok = number
        .chars()
        .all(|c| c.is_ascii_hexdigit() || "*#+-.()".contains(c));
    let plus_inside = number.get(1..).is_some_and(|tail| tail.contains('+'));
    if !has_digit || !chars_ok || plus_inside {
        return Err(UriError::InvalidNumber(number.to_owned()));
    }
    let params = match params_text {
        None => Params::new(),
        Some(text) => parse_uri_params(text, is_param_char)?,
    };
    Ok(TelUri {
        number: number.to_owned(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(text: &str) -> SipUri {
        match text.parse::<Uri>().unwrap() {
            Uri::Sip(sip) => sip,
            other => panic!("not a sip URI: {other:?}"),
        }
    }

    #[test]
    fn parses_user_host_port_and_params() {
        let uri = sip("sips:bob@biloxi.example.com:5061;transport=tls;lr");
        assert!(uri.secure);
        assert_eq!(uri.user.as_deref(), Some("bob"));
        assert_eq!(uri.host, Host::Domain("biloxi.example.com".into()));
        assert_eq!(uri.port, Some(5061));
        assert_eq!(uri.params.value("transport"), Some("tls"));
        assert!(uri.params.contains("lr"));
    }

    #[test]
    fn parses_a_bracketed_ipv6_host_with_and_without_port() {
        let without_port = sip("sip:[2001:db8::10]");
        assert_eq!(
            without_port.host,
            Host::Ipv6("2001:db8::10".parse().unwrap())
        );
        assert_eq!(without_port.port, None);

        let with_port = sip("sip:user@[2001:db8::10]:5070");
        assert_eq!(with_port.port, Some(5070));
    }

    #[test]
    fn a_colon_inside_the_brackets_is_not_a_port() {
        // RFC 5118 4.3: `[2001:db8::10:5070]` is an address, not an address and a port.
        let uri = sip("sip:[2001:db8::10:5070]");
        assert_eq!(uri.host, Host::Ipv6("2001:db8::10:5070".parse().unwrap()));
        assert_eq!(uri.port, None);
    }

    #[test]
    fn an_unbracketed_ipv6_host_is_rejected() {
        // RFC 5118 4.2: `2001` would be the host and `db8::10` the port.
        assert!("sip:2001:db8::10".parse::<Uri>().is_err());
    }

    #[test]
    fn the_three_colon_ipv6_form_is_read_as_two_colons() {
        let uri = sip("sip:user@[2001:db8:::192.0.2.1]");
        assert_eq!(uri.host, Host::Ipv6("2001:db8::192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_ipv6_hosts_parse() {
        let uri = sip("sip:ted@[::ffff:192.0.2.2]");
        assert_eq!(uri.host, Host::Ipv6("::ffff:192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn a_user_part_may_hold_semicolons_and_escapes() {
        let uri: Uri = "sip:user;par=u%40example.net@example.com".parse().unwrap();
        assert_eq!(uri.user().as_deref(), Some("user;par=u@example.net"));
        assert_eq!(uri.host(), Some(&Host::Domain("example.com".into())));
    }

    #[test]
    fn escaped_user_decodes_but_prints_back_escaped() {
        let text = "sip:sips%3Auser%40example.com@example.net";
        let uri: Uri = text.parse().unwrap();
        assert_eq!(uri.user().as_deref(), Some("sips:user@example.com"));
        assert_eq!(uri.to_string(), text);
    }

    #[test]
    fn the_wide_range_of_valid_user_characters_parses() {
        let text = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
        let uri = sip(text);
        assert_eq!(
            uri.user.as_deref(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            uri.password.as_deref(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!(Uri::Sip(uri).to_string(), text);
    }

    #[test]
    fn uri_headers_are_kept() {
        let uri = sip("sip:user@example.com?Route=%3Csip:sip.example.com%3E");
        assert_eq!(
            uri.headers,
            [("Route".to_owned(), "%3Csip:sip.example.com%3E".to_owned())]
        );
    }

    #[test]
    fn whitespace_anywhere_is_rejected() {
        assert!("sip:user@example.com; lr".parse::<Uri>().is_err());
        assert!("sip: user@example.com".parse::<Uri>().is_err());
        assert!("sip:user@example.com ".parse::<Uri>().is_err());
    }

    #[test]
    fn angle_brackets_are_not_part_of_a_uri() {
        assert!("<sip:user@example.com>".parse::<Uri>().is_err());
    }

    #[test]
    fn a_bad_escape_is_rejected() {
        assert_eq!(
            "sip:a%zz@example.com".parse::<Uri>(),
            Err(UriError::InvalidUser)
        );
    }

    #[test]
    fn tel_uris_keep_number_and_params() {
        let uri: Uri = "tel:+1-201-555-0123;phone-context=example.com"
            .parse()
            .unwrap();
        assert_eq!(uri.scheme(), "tel");
        assert_eq!(uri.user().as_deref(), Some("+1-201-555-0123"));
        assert_eq!(
            uri.params().unwrap().value("phone-context"),
            Some("example.com")
        );
        assert_eq!(
            uri.to_string(),
            "tel:+1-201-555-0123;phone-context=example.com"
        );
    }

    #[test]
    fn a_tel_uri_without_digits_is_rejected() {
        assert!("tel:+".parse::<Uri>().is_err());
        assert!("tel:12+34".parse::<Uri>().is_err());
    }

    #[test]
    fn unknown_schemes_are_kept_opaque() {
        let uri: Uri = "soap.beep://192.0.2.103:3002".parse().unwrap();
        assert_eq!(uri.scheme(), "soap.beep");
        assert_eq!(uri.user(), None);
        assert_eq!(uri.to_string(), "soap.beep://192.0.2.103:3002");
    }

    #[test]
    fn a_numeric_last_label_must_be_an_ipv4_address() {
        assert!(Host::parse("256.1.1.1").is_err());
        assert_eq!(
            Host::parse("192.0.2.1"),
            Ok(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert!(Host::parse("host1.example.com").is_ok());
    }

    #[test]
    fn a_port_that_does_not_fit_sixteen_bits_is_rejected() {
        assert!("sip:example.com:65536".parse::<Uri>().is_err());
    }

    #[test]
    fn building_a_uri_escapes_the_user() {
        let uri = Uri::Sip(SipUri::new(Host::Domain("example.com".into())).with_user("a b"));
        assert_eq!(uri.to_string(), "sip:a%20b@example.com");
    }
}
