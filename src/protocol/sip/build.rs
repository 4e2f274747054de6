//! Builds the messages ringside sends: responses to requests it received, and the few requests it
//! originates itself (SUBSCRIBE to dialog state, OPTIONS probes and other non-INVITE requests that
//! need no ACK).
//!
//! A response copies what RFC 3261 8.2.6 requires from the request — every Via in order, From, To,
//! Call-ID and CSeq — and stamps the top Via with `received` and `rport` from the packet's source
//! address (RFC 3261 18.2.1, RFC 3581 4), so the answer finds its way back through NAT. Values the
//! caller supplies are refused if they hold CR or LF, which would otherwise let a display name or a
//! reason phrase smuggle in a header of its own.

use std::net::SocketAddr;

use bytes::Bytes;
use thiserror::Error;

use super::headers::{HeaderError, NameAddr, ValueError, Via, list_elements};
use super::message::{Headers, Method, RequestLine, SipMessage, StartLine, StatusLine, Version};
use super::normalize::is_token_char;
use super::uri::Uri;

/// Why a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    #[error("a response can only be built for a request")]
    NotARequest,
    #[error("{0} is not a status code (100-699)")]
    InvalidStatus(u16),
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("a request needs {0}")]
    Missing(&'static str),
    #[error("{0:?} is not a valid header name")]
    InvalidHeaderName(String),
    #[error("a header value or reason phrase may not contain CR or LF")]
    LineBreak,
}

/// The reason phrase RFC 3261 (and RFC 6665 for 489) gives a status code.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirected",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// A random tag for From or To (RFC 3261 19.3: at least 32 bits of randomness).
pub fn generate_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A random branch with the RFC 3261 magic cookie.
pub fn generate_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

/// A random Call-ID qualified by `host`.
pub fn generate_call_id(host: &str) -> String {
    format!("{:032x}@{host}", rand::random::<u128>())
}

fn check_value(value: &str) -> Result<(), BuildError> {
    if value.contains(['\r', '\n']) {
        return Err(BuildError::LineBreak);
    }
    Ok(())
}

fn check_header(name: &str, value: &str) -> Result<(), BuildError> {
    if name.is_empty() || !name.chars().all(is_token_char) {
        return Err(BuildError::InvalidHeaderName(name.to_owned()));
    }
    check_value(value)
}

fn with_body(headers: &mut Headers, body: Option<(String, Bytes)>) -> Bytes {
    match body {
        Some((content_type, bytes)) => {
            headers.push("Content-Type", content_type);
            headers.push("Content-Length", bytes.len().to_string());
            bytes
        }
        None => {
            headers.push("Content-Length", "0");
            Bytes::new()
        }
    }
}

/// Adds `received` and `rport` to the Via a request arrived with (RFC 3261 18.2.1, RFC 3581 4).
pub fn stamp_received(via: &mut Via, source: SocketAddr) {
    let source_ip = source.ip().to_canonical();
    let asked_for_rport = via.has_rport();
    if asked_for_rport {
        via.params.set("rport", Some(source.port().to_string()));
    }
    let sent_by_is_source = via.host.ip().map(|ip| ip.to_canonical()) == Some(source_ip);
    // RFC 3581 requires `received` whenever `rport` is filled in, even if it repeats sent-by.
    if asked_for_rport || !sent_by_is_source {
        // RFC 3261 `via-received` takes an IPv6 address without brackets (RFC 5118 4.5).
        via.params.set("received", Some(source_ip.to_string()));
    }
}

/// Builds a response to a request. See [`ResponseBuilder::new`].
#[derive(Debug, Clone)]
pub struct ResponseBuilder<'a> {
    request: &'a SipMessage,
    status: u16,
    reason: Option<String>,
    to_tag: Option<String>,
    contacts: Vec<NameAddr>,
    source: Option<SocketAddr>,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
}

impl<'a> ResponseBuilder<'a> {
    /// A response with `status` to `request`; the reason phrase defaults to the RFC's.
    pub fn new(request: &'a SipMessage, status: u16) -> Self {
        Self {
            request,
            status,
            reason: None,
            to_tag: None,
            contacts: Vec::new(),
            source: None,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    /// The tag to add to To when the request's To has none. RFC 3261 8.2.6.2 requires one on every
    /// response but 100 Trying; reuse the same tag for every response in one dialog.
    pub fn to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(tag.to_owned());
        self
    }

    /// Adds a Contact (for a 3xx, where to send the call instead).
    pub fn contact(mut self, contact: impl Into<NameAddr>) -> Self {
        self.contacts.push(contact.into());
        self
    }

    /// The address the request came from, to stamp `received`/`rport` on the top Via.
    pub fn received_from(mut self, source: SocketAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Adds a header after the ones copied from the request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_owned(), body));
        self
    }

    /// Fails only when the request lacks Via, From, To, Call-ID or CSeq, the status is not
    /// 100-699, or a supplied value is invalid; malformed request headers are copied as they are.
    pub fn build(self) -> Result<SipMessage, BuildError> {
        if !self.request.is_request() {
            return Err(BuildError::NotARequest);
        }
        if !(100..=699).contains(&self.status) {
            return Err(BuildError::InvalidStatus(self.status));
        }
        let reason = self
            .reason
            .unwrap_or_else(|| default_reason(self.status).to_owned());
        check_value(&reason)?;

        let request = self.request;
        let mut headers = Headers::new();

        // A response must be buildable for a malformed request too (that is what 400 is for), so
        // headers are copied as text; only what the response cannot exist without is required.
        let mut vias: Vec<String> = Vec::new();
        for value in request.headers().get_all("Via") {
            match list_elements(value) {
                Ok(elements) => vias.extend(elements.into_iter().map(str::to_owned)),
                Err(_) => vias.push(value.to_owned()),
            }
        }
        let Some(top) = vias.first_mut() else {
            return Err(HeaderError::Missing("Via").into());
        };
        // A top Via we cannot read is copied unchanged: the response then goes to its sent-by.
        if let (Some(source), Ok(mut via)) = (self.source, top.parse::<Via>()) {
            stamp_received(&mut via, source);
            *top = via.to_string();
        }
        for via in vias {
            headers.push("Via", via);
        }

        let mut to_value = request
            .header("To")
            .ok_or(HeaderError::Missing("To"))?
            .to_owned();
        // An unreadable To (RFC 4475 quotbal) gets no tag: there is no dialog to identify.
        let to = request.to_header().ok();
        let mut has_tag = to.as_ref().is_some_and(|to| to.tag().is_some());
        if let (Some(_), false, Some(tag)) = (&to, has_tag, &self.to_tag) {
            check_value(tag)?;
            to_value.push_str(";tag=");
            to_value.push_str(tag);
            has_tag = true;
        }

        // RFC 3261 12.1.1: a response that creates a dialog carries the request's Record-Route.
        if has_tag && (101..=299).contains(&self.status) {
            for route in request.headers().get_all("Record-Route") {
                headers.push("Record-Route", route);
            }
        }
        let required =
            |header: &'static str| request.header(header).ok_or(HeaderError::Missing(header));
        headers.push("From", required("From")?);
        headers.push("To", to_value);
        headers.push("Call-ID", required("Call-ID")?);
        headers.push("CSeq", required("CSeq")?);
        for contact in &self.contacts {
            let value = contact.to_string();
            check_value(&value)?;
            headers.push("Contact", value);
        }
        for (name, value) in &self.headers {
            check_header(name, value)?;
            headers.push(name, value.as_str());
        }
        if let Some((content_type, _)) = &self.body {
            check_value(content_type)?;
        }
        let body = with_body(&mut headers, self.body);

        Ok(SipMessage::new(
            StartLine::Response(StatusLine {
                version: Version::SIP_2_0,
                code: self.status,
                reason,
            }),
            headers,
            body,
        ))
    }
}

impl SipMessage {
    /// Starts a response to this request.
    pub fn response(&self, status: u16) -> ResponseBuilder<'_> {
        ResponseBuilder::new(self, status)
    }
}

impl From<Uri> for NameAddr {
    fn from(uri: Uri) -> Self {
        NameAddr::new(uri)
    }
}

/// Builds a request ringside originates. Only requests that need no ACK are meant here; an INVITE
/// client transaction is not something ringside runs.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: Method,
    request_uri: Uri,
    via: Option<Via>,
    from: Option<NameAddr>,
    to: Option<NameAddr>,
    call_id: Option<String>,
    cseq: u32,
    contact: Option<NameAddr>,
    max_forwards: u8,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
}

impl RequestBuilder {
    /// A request with CSeq 1 and Max-Forwards 70; Via, From (with tag), To and Call-ID must be set
    /// before [`RequestBuilder::build`].
    pub fn new(method: Method, request_uri: Uri) -> Self {
        Self {
            method,
            request_uri,
            via: None,
            from: None,
            to: None,
            call_id: None,
            cseq: 1,
            contact: None,
            max_forwards: 70,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A SUBSCRIBE to the dialog event package (RFC 4235) of `target`: Event `dialog`, Accept
    /// `application/dialog-info+xml`, and the Expires asked for (0 ends the subscription).
    pub fn subscribe_dialog(target: Uri, expires: u32) -> Self {
        Self::new(Method::Subscribe, target)
            .header("Event", "dialog")
            .header("Accept", "application/dialog-info+xml")
            .header("Expires", &expires.to_string())
    }

    pub fn via(mut self, via: Via) -> Self {
        self.via = Some(via);
        self
    }

    pub fn from(mut self, from: NameAddr) -> Self {
        self.from = Some(from);
        self
    }

    pub fn to(mut self, to: NameAddr) -> Self {
        self.to = Some(to);
        self
    }

    pub fn call_id(mut self, call_id: &str) -> Self {
        self.call_id = Some(call_id.to_owned());
        self
    }

    pub fn cseq(mut self, number: u32) -> Self {
        self.cseq = number;
        self
    }

    pub fn contact(mut self, contact: NameAddr) -> Self {
        self.contact = Some(contact);
        self
    }

    pub fn max_forwards(mut self, hops: u8) -> Self {
        self.max_forwards = hops;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((content_type.to_owned(), body));
        self
    }

    pub fn build(self) -> Result<SipMessage, BuildError> {
        let via = self.via.ok_or(BuildError::Missing("a Via"))?;
        if via.branch().is_none_or(str::is_empty) {
            return Err(BuildError::Missing("a Via branch"));
        }
        let from = self.from.ok_or(BuildError::Missing("From"))?;
        if from.tag().is_none_or(str::is_empty) {
            return Err(BuildError::Missing("a From tag"));
        }
        let to = self.to.ok_or(BuildError::Missing("To"))?;
        let call_id = self.call_id.ok_or(BuildError::Missing("a Call-ID"))?;
        if call_id.is_empty() || call_id.contains([' ', '\t']) {
            return Err(HeaderError::Malformed {
                header: "Call-ID",
                source: ValueError("a Call-ID is one word".into()),
            }
            .into());
        }

        let mut headers = Headers::new();
        let fixed = [
            ("Via", via.to_string()),
            ("Max-Forwards", self.max_forwards.to_string()),
            ("From", from.to_string()),
            ("To", to.to_string()),
            ("Call-ID", call_id),
            ("CSeq", format!("{} {}", self.cseq, self.method)),
        ];
        for (name, value) in fixed {
            check_value(&value)?;
            headers.push(name, value);
        }
        if let Some(contact) = self.contact {
            let value = contact.to_string();
            check_value(&value)?;
            headers.push("Contact", value);
        }
        for (name, value) in &self.headers {
            check_header(name, value)?;
            headers.push(name, value.as_str());
        }
        if let Some((content_type, _)) = &self.body {
            check_value(content_type)?;
        }
        let body = with_body(&mut headers, self.body);

        Ok(SipMessage::new(
            StartLine::Request(RequestLine {
                method: self.method,
                uri: self.request_uri,
                version: Version::SIP_2_0,
            }),
            headers,
            body,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, validate_request, validate_response};
    use super::*;

    const INVITE: &str = "INVITE sip:100@pbx.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pbx.example.com:5060;branch=z9hG4bKtop;rport\r\n\
        Via: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKmid, SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKlow\r\n\
        Record-Route: <sip:proxy.example.com;lr>\r\n\
        Max-Forwards: 69\r\n\
        From: \"Caller\" <sip:+8613800000000@pbx.example.com>;tag=abc\r\n\
        To: <sip:100@pbx.example.com>\r\n\
        Call-ID: call-1@pbx.example.com\r\n\
        CSeq: 7 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    fn invite_with_top_via(via: &str) -> SipMessage {
        let text = INVITE.replace(
            "SIP/2.0/UDP pbx.example.com:5060;branch=z9hG4bKtop;rport",
            via,
        );
        parse(text.as_bytes()).unwrap()
    }

    fn values<'a>(message: &'a SipMessage, name: &str) -> Vec<&'a str> {
        message.headers().get_all(name).collect()
    }

    #[test]
    fn a_response_copies_every_via_in_order_and_the_dialog_headers() {
        let request = parse(INVITE.as_bytes()).unwrap();
        let response = request.response(180).to_tag("srv1").build().unwrap();
        assert_eq!(response.status_code(), Some(180));
        assert_eq!(response.reason_phrase(), Some("Ringing"));
        assert_eq!(
            values(&response, "Via"),
            [
                "SIP/2.0/UDP pbx.example.com:5060;branch=z9hG4bKtop;rport",
                "SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKmid",
                "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKlow"
            ]
        );
        assert_eq!(response.header("From"), request.header("From"));
        assert_eq!(response.header("Call-ID"), Some("call-1@pbx.example.com"));
        assert_eq!(response.header("CSeq"), Some("7 INVITE"));
        assert_eq!(response.header("Content-Length"), Some("0"));
        assert_eq!(response.to_header().unwrap().tag(), Some("srv1"));
        assert_eq!(
            validate_response(&parse(&response.to_bytes()).unwrap()),
            Ok(())
        );
    }

    #[test]
    fn an_existing_to_tag_is_kept() {
        let request = parse(
            INVITE
                .replace(
                    "To: <sip:100@pbx.example.com>",
                    "To: <sip:100@pbx.example.com>;tag=old",
                )
                .as_bytes(),
        )
        .unwrap();
        let response = request.response(487).to_tag("new").build().unwrap();
        assert_eq!(
            response.header("To"),
            Some("<sip:100@pbx.example.com>;tag=old")
        );
    }

    #[test]
    fn trying_without_a_tag_leaves_to_alone_and_skips_record_route() {
        let request = parse(INVITE.as_bytes()).unwrap();
        let trying = request.response(100).build().unwrap();
        assert_eq!(trying.header("To"), Some("<sip:100@pbx.example.com>"));
        assert!(values(&trying, "Record-Route").is_empty());
        let ringing = request.response(180).to_tag("t").build().unwrap();
        assert_eq!(
            values(&ringing, "Record-Route"),
            ["<sip:proxy.example.com;lr>"]
        );
    }

    #[test]
    fn rport_is_filled_and_received_added_even_when_sent_by_matches() {
        let request = invite_with_top_via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKtop;rport");
        let response = request
            .response(200)
            .received_from("192.0.2.4:40000".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            response.header("Via"),
            Some("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKtop;rport=40000;received=192.0.2.4")
        );
    }

    #[test]
    fn received_is_added_when_sent_by_is_a_name() {
        let request = invite_with_top_via("SIP/2.0/UDP pbx.example.com;branch=z9hG4bKtop");
        let response = request
            .response(200)
            .received_from("192.0.2.4:5060".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            response.header("Via"),
            Some("SIP/2.0/UDP pbx.example.com;branch=z9hG4bKtop;received=192.0.2.4")
        );
    }

    #[test]
    fn nothing_is_added_when_sent_by_is_the_source_and_rport_was_not_asked() {
        let request = invite_with_top_via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKtop");
        let response = request
            .response(200)
            .received_from("192.0.2.4:5060".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            response.header("Via"),
            Some("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKtop")
        );
    }

    #[test]
    fn an_ipv6_source_is_written_without_brackets() {
        let request = invite_with_top_via("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKtop");
        let response = request
            .response(200)
            .received_from("[2001:db8::9:255]:5060".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            response.header("Via"),
            Some("SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKtop;received=2001:db8::9:255")
        );
    }

    #[test]
    fn an_ipv4_mapped_source_matches_an_ipv4_sent_by() {
        let request = invite_with_top_via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKtop");
        let response = request
            .response(200)
            .received_from("[::ffff:192.0.2.4]:5060".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            response.header("Via"),
            Some("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKtop")
        );
    }

    #[test]
    fn a_redirect_carries_the_contact_and_extra_headers() {
        let request = parse(INVITE.as_bytes()).unwrap();
        let target: Uri = "sip:8001@pbx.example.com".parse().unwrap();
        let response = request
            .response(302)
            .to_tag("r1")
            .contact(target)
            .header("Server", "ringside")
            .build()
            .unwrap();
        assert_eq!(response.reason_phrase(), Some("Moved Temporarily"));
        assert_eq!(
            response.header("Contact"),
            Some("<sip:8001@pbx.example.com>")
        );
        assert_eq!(response.header("Server"), Some("ringside"));
        let contacts = parse(&response.to_bytes()).unwrap().contacts().unwrap();
        assert_eq!(contacts[0].user().as_deref(), Some("8001"));
    }

    #[test]
    fn line_breaks_in_supplied_values_are_refused() {
        let request = parse(INVITE.as_bytes()).unwrap();
        assert_eq!(
            request
                .response(200)
                .header("Server", "x\r\nInjected: y")
                .build(),
            Err(BuildError::LineBreak)
        );
        assert_eq!(
            request.response(200).reason("OK\r\nInjected: y").build(),
            Err(BuildError::LineBreak)
        );
        assert_eq!(
            request.response(200).header("Bad Name", "x").build(),
            Err(BuildError::InvalidHeaderName("Bad Name".into()))
        );
    }

    #[test]
    fn a_body_sets_content_type_and_length() {
        let request = parse(INVITE.as_bytes()).unwrap();
        let response = request
            .response(200)
            .to_tag("t")
            .body("text/plain", Bytes::from_static(b"hello"))
            .build()
            .unwrap();
        assert_eq!(response.header("Content-Type"), Some("text/plain"));
        assert_eq!(response.header("Content-Length"), Some("5"));
        assert!(response.to_bytes().ends_with(b"\r\n\r\nhello"));
    }

    #[test]
    fn a_bad_request_can_be_answered_even_with_a_malformed_to() {
        let request = parse(
            INVITE
                .replace(
                    "To: <sip:100@pbx.example.com>",
                    "To: \"Mr. J. User <sip:j.user@example.com>",
                )
                .as_bytes(),
        )
        .unwrap();
        let response = request
            .response(400)
            .to_tag("t")
            .received_from("192.0.2.4:5060".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!(
            response.header("To"),
            Some("\"Mr. J. User <sip:j.user@example.com>")
        );
        assert_eq!(response.reason_phrase(), Some("Bad Request"));
    }

    #[test]
    fn responses_need_a_request_and_a_real_status() {
        let request = parse(INVITE.as_bytes()).unwrap();
        assert_eq!(
            request.response(99).build(),
            Err(BuildError::InvalidStatus(99))
        );
        let response = request.response(200).build().unwrap();
        assert_eq!(response.response(200).build(), Err(BuildError::NotARequest));
    }

    #[test]
    fn a_dialog_subscribe_is_a_valid_request() {
        let target: Uri = "sip:8001@pbx.example.com".parse().unwrap();
        let local: Uri = "sip:ringside@192.0.2.50:5060".parse().unwrap();
        let request = RequestBuilder::subscribe_dialog(target.clone(), 3600)
            .via(Via::new(
                "udp",
                "192.0.2.50".parse::<std::net::IpAddr>().unwrap().into(),
                Some(5060),
                &generate_branch(),
            ))
            .from(NameAddr::new(local.clone()).with_tag(&generate_tag()))
            .to(NameAddr::new(target))
            .call_id(&generate_call_id("192.0.2.50"))
            .cseq(4)
            .contact(NameAddr::new(local))
            .build()
            .unwrap();
        let reparsed = parse(&request.to_bytes()).unwrap();
        assert_eq!(validate_request(&reparsed), Ok(()));
        assert_eq!(reparsed.method(), Some(&Method::Subscribe));
        assert_eq!(reparsed.cseq().unwrap().number, 4);
        assert_eq!(reparsed.event().unwrap().unwrap().package, "dialog");
        assert_eq!(
            reparsed.header("Accept"),
            Some("application/dialog-info+xml")
        );
        assert_eq!(reparsed.expires(), Ok(Some(3600)));
        assert_eq!(reparsed.header("Max-Forwards"), Some("70"));
        assert!(
            reparsed
                .top_via()
                .unwrap()
                .branch()
                .unwrap()
                .starts_with("z9hG4bK")
        );
        assert_eq!(reparsed.header("Content-Length"), Some("0"));
    }

    #[test]
    fn a_request_without_from_tag_or_via_is_refused() {
        let target: Uri = "sip:8001@pbx.example.com".parse().unwrap();
        let via = Via::new(
            "UDP",
            "192.0.2.50".parse::<std::net::IpAddr>().unwrap().into(),
            None,
            "z9hG4bK1",
        );
        let base = RequestBuilder::new(Method::Options, target.clone())
            .to(NameAddr::new(target.clone()))
            .call_id("x@y");
        assert_eq!(
            base.clone()
                .via(via.clone())
                .from(NameAddr::new(target.clone()))
                .build(),
            Err(BuildError::Missing("a From tag"))
        );
        assert_eq!(
            base.from(NameAddr::new(target).with_tag("t")).build(),
            Err(BuildError::Missing("a Via"))
        );
    }

    #[test]
    fn generated_identifiers_differ_and_branches_carry_the_cookie() {
        assert_ne!(generate_tag(), generate_tag());
        assert!(generate_branch().starts_with("z9hG4bK"));
        assert!(generate_call_id("host").ends_with("@host"));
    }
}
