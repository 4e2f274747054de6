//! Checks that a parsed message is one we may act on: the semantic rules that a syntax parser lets
//! through (RFC 3261 8.1.1, 8.2, 20; RFC 4475 3.1.2 and 3.3).
//!
//! Parsing keeps header values as text and reads them on demand, so a message whose CSeq method
//! disagrees with its request line, or whose From display name is malformed, still parses. These
//! functions read every header the transaction layer relies on and report the first fault, with
//! the status code to answer it with ([`ValidationError::status_code`]).
//!
//! Deliberately not checked, because RFC 4475 calls the messages valid or lets a receiver ignore
//! the field: a missing Max-Forwards (RFC 2543 peers, `inv2543`), a branch without the magic cookie
//! (`badbranch`), unknown URI schemes (`unkscm`, `novelsc`, `unksm2`), and the value of Expires
//! (an overlarge value is treated as absent by [`SipMessage::expires`] callers, per `scalar02`).

use thiserror::Error;

use super::headers::{HeaderError, ValueError, is_sip_date};
use super::message::{Method, SipMessage, Version};

/// Why a parsed message must not be acted on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("expected a request, got a response")]
    NotARequest,
    #[error("expected a response, got a request")]
    NotAResponse,
    #[error("{0} is not supported")]
    UnsupportedVersion(Version),
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the CSeq method {cseq} does not match the request method {request}")]
    CSeqMethodMismatch { request: Method, cseq: Method },
    #[error("the body has {actual} bytes but Content-Length says {declared}")]
    ContentLengthMismatch { declared: usize, actual: usize },
}

impl ValidationError {
    /// The status to answer a request that failed this check with: 505 for a version we do not
    /// speak, 400 for everything else.
    pub fn status_code(&self) -> u16 {
        match self {
            ValidationError::UnsupportedVersion(_) => 505,
            _ => 400,
        }
    }
}

/// Checks a request: SIP/2.0; exactly one To, From, Call-ID and CSeq; at least one Via; every Via,
/// From, To, Contact, Max-Forwards, Date and Content-Type readable; CSeq method equal to the request
/// method; Content-Length equal to the body length.
pub fn validate_request(message: &SipMessage) -> Result<(), ValidationError> {
    let Some(method) = message.method() else {
        return Err(ValidationError::NotARequest);
    };
    check_common(message)?;
    let cseq = message.cseq()?;
    if &cseq.method != method {
        return Err(ValidationError::CSeqMethodMismatch {
            request: method.clone(),
            cseq: cseq.method,
        });
    }
    single_optional(message, "Max-Forwards")?;
    message.max_forwards()?;
    message.contacts()?;
    if let Some(date) = message.header("Date")
        && !is_sip_date(date)
    {
        return Err(HeaderError::Malformed {
            header: "Date",
            source: ValueError("a SIP date is an RFC 1123 date in GMT".into()),
        }
        .into());
    }
    Ok(())
}

/// Checks a response: SIP/2.0; exactly one To, From, Call-ID and CSeq; at least one Via; every Via,
/// From, To and Content-Type readable; Content-Length equal to the body length.
pub fn validate_response(message: &SipMessage) -> Result<(), ValidationError> {
    if message.is_request() {
        return Err(ValidationError::NotAResponse);
    }
    check_common(message)?;
    message.cseq()?;
    Ok(())
}

fn check_common(message: &SipMessage) -> Result<(), ValidationError> {
    let version = message.version();
    if version != Version::SIP_2_0 {
        return Err(ValidationError::UnsupportedVersion(version));
    }
    // RFC 4475 multi01: these identify the transaction and dialog, so two of them make the
    // message ambiguous.
    for header in ["To", "From", "Call-ID", "CSeq"] {
        match message.headers().count(header) {
            0 => return Err(HeaderError::Missing(header).into()),
            1 => {}
            _ => return Err(HeaderError::Repeated(header).into()),
        }
    }
    message.vias()?;
    message.from_header()?;
    message.to_header()?;
    message.call_id()?;
    single_optional(message, "Content-Type")?;
    message.content_type()?;
    if let Some(declared) = message.header("Content-Length") {
        let declared = declared
            .trim()
            .parse()
            .map_err(|_| HeaderError::Malformed {
                header: "Content-Length",
                source: ValueError(format!("{declared:?} is not a number")),
            })?;
        let actual = message.body().len();
        if declared != actual {
            return Err(ValidationError::ContentLengthMismatch { declared, actual });
        }
    }
    Ok(())
}

fn single_optional(message: &SipMessage, header: &'static str) -> Result<(), HeaderError> {
    if message.headers().count(header) > 1 {
        return Err(HeaderError::Repeated(header));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::parse;
    use super::*;

    const VALID: &str = "OPTIONS sip:user@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:user@example.com>\r\n\
        From: <sip:caller@example.com>;tag=1\r\n\
        Call-ID: abc@host\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";

    fn with(replace: &str, by: &str) -> SipMessage {
        parse(VALID.replace(replace, by).as_bytes()).unwrap()
    }

    #[test]
    fn a_well_formed_request_passes() {
        assert_eq!(validate_request(&parse(VALID.as_bytes()).unwrap()), Ok(()));
    }

    #[test]
    fn a_cseq_method_that_differs_from_the_request_is_rejected() {
        let message = with("CSeq: 1 OPTIONS", "CSeq: 1 INVITE");
        assert_eq!(
            validate_request(&message),
            Err(ValidationError::CSeqMethodMismatch {
                request: Method::Options,
                cseq: Method::Invite
            })
        );
    }

    #[test]
    fn missing_required_headers_are_named() {
        let message = with("Call-ID: abc@host\r\n", "");
        assert_eq!(
            validate_request(&message),
            Err(ValidationError::Header(HeaderError::Missing("Call-ID")))
        );
        let message = with(
            "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n",
            "",
        );
        assert_eq!(
            validate_request(&message),
            Err(ValidationError::Header(HeaderError::Missing("Via")))
        );
    }

    #[test]
    fn a_missing_max_forwards_is_accepted() {
        assert_eq!(validate_request(&with("Max-Forwards: 70\r\n", "")), Ok(()));
    }

    #[test]
    fn a_repeated_from_is_rejected() {
        let message = with("Call-ID", "From: <sip:other@example.com>;tag=2\r\nCall-ID");
        assert_eq!(
            validate_request(&message),
            Err(ValidationError::Header(HeaderError::Repeated("From")))
        );
    }

    #[test]
    fn another_sip_version_asks_for_505() {
        let error = validate_request(&with("SIP/2.0\r\n", "SIP/7.0\r\n")).unwrap_err();
        assert_eq!(error.status_code(), 505);
        assert_eq!(
            validate_request(&with("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"))
                .unwrap_err()
                .status_code(),
            400
        );
    }

    #[test]
    fn a_date_outside_gmt_is_rejected() {
        let message = with("Call-ID", "Date: Fri, 01 Jan 2010 16:00:00 EST\r\nCall-ID");
        assert!(matches!(
            validate_request(&message),
            Err(ValidationError::Header(HeaderError::Malformed {
                header: "Date",
                ..
            }))
        ));
    }

    #[test]
    fn a_content_length_that_differs_from_the_body_is_rejected() {
        let parsed = parse(VALID.as_bytes()).unwrap();
        let mut headers = parsed.headers().clone();
        headers.set("Content-Length", "5");
        let message = SipMessage::new(parsed.start_line().clone(), headers, Bytes::new());
        assert_eq!(
            validate_request(&message),
            Err(ValidationError::ContentLengthMismatch {
                declared: 5,
                actual: 0
            })
        );
    }

    #[test]
    fn requests_and_responses_are_not_confused() {
        let request = parse(VALID.as_bytes()).unwrap();
        assert_eq!(
            validate_response(&request),
            Err(ValidationError::NotAResponse)
        );
        let response = parse(
            VALID
                .replace("OPTIONS sip:user@example.com SIP/2.0", "SIP/2.0 200 OK")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(validate_response(&response), Ok(()));
        assert_eq!(
            validate_request(&response),
            Err(ValidationError::NotARequest)
        );
    }
}
