//! Rewrites a SIP header section into one canonical shape before anything reads it.
//!
//! The wire allows many spellings of the same header section: folded (continuation) lines,
//! whitespace before the colon (`Via  :`), compact names (`v:` for `Via`, RFC 3261 7.3.3 and the
//! IANA registry), and any letter case (`cseq`, `CaLl-Id`). Every reader after this one — our own
//! header parsers, the framer's Content-Length lookup, and `rsip` when a caller converts with
//! [`super::SipMessage::to_rsip`] — sees only `Full-Name: value`, one field per line. The body is
//! never touched: normalization works on the header section alone.
//!
//! What is rejected here is only what makes the section unreadable as a list of fields: a line with
//! no colon, a name that is not a token, a continuation line with nothing to continue, or a bare CR
//! or LF inside a line (which a lenient peer could read as a line break and so as a header we did
//! not send when we copy the value into a response).

use std::borrow::Cow;

use thiserror::Error;

/// Why a header section could not be normalized.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NormalizeError {
    #[error("the start line is empty")]
    EmptyStartLine,
    #[error("header line {line} is a continuation but no header precedes it")]
    OrphanContinuation { line: usize },
    #[error("header line {line} has no colon")]
    MissingColon { line: usize },
    #[error("header line {line} has a name that is not a token")]
    InvalidName { line: usize },
    #[error("line {line} holds a bare CR or LF")]
    BareLineBreak { line: usize },
}

/// One header field after normalization: the full, canonically spelled name and the value with
/// folding undone and surrounding whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: String,
    pub value: String,
}

/// A header section split into its start line and normalized fields, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedHead {
    pub start_line: String,
    pub fields: Vec<HeaderField>,
}

/// Compact forms from RFC 3261 7.3.3 and the IANA "Header Fields" registry.
const COMPACT_NAMES: &[(char, &str)] = &[
    ('a', "Accept-Contact"),
    ('b', "Referred-By"),
    ('c', "Content-Type"),
    ('d', "Request-Disposition"),
    ('e', "Content-Encoding"),
    ('f', "From"),
    ('i', "Call-ID"),
    ('j', "Reject-Contact"),
    ('k', "Supported"),
    ('l', "Content-Length"),
    ('m', "Contact"),
    ('n', "Identity-Info"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('s', "Subject"),
    ('t', "To"),
    ('u', "Allow-Events"),
    ('v', "Via"),
    ('x', "Session-Expires"),
    ('y', "Identity"),
];

/// Headers we spell canonically, so that `cseq` and `CSEQ` both come out as `CSeq`. Names not listed
/// keep the spelling they arrived with; lookups are case-insensitive either way.
const KNOWN_NAMES: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Diversion",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Remote-Party-ID",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// The full, canonically spelled name for `name`: compact forms are expanded and known headers get
/// their registered spelling. Unknown names are returned as given.
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    let mut chars = name.chars();
    if let (Some(only), None) = (chars.next(), chars.next()) {
        let lower = only.to_ascii_lowercase();
        if let Some((_, full)) = COMPACT_NAMES.iter().find(|(c, _)| *c == lower) {
            return Cow::Borrowed(full);
        }
    }
    match KNOWN_NAMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
    {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Borrowed(name),
    }
}

/// RFC 3261 25.1 `token` characters.
pub(super) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Splits `head` (the start line and header lines, CRLF-separated, without the blank line that
/// ends the section) into a start line and normalized fields.
pub fn normalize_head(head: &str) -> Result<NormalizedHead, NormalizeError> {
    let mut lines = head.split("\r\n");
    let start_line = lines.next().unwrap_or_default();
    if start_line.trim().is_empty() {
        return Err(NormalizeError::EmptyStartLine);
    }
    if start_line.contains(['\r', '\n']) {
        return Err(NormalizeError::BareLineBreak { line: 0 });
    }

    let mut fields: Vec<HeaderField> = Vec::new();
    for (index, line) in lines.enumerate() {
        let line_number = index + 1;
        if line.contains(['\r', '\n']) {
            return Err(NormalizeError::BareLineBreak { line: line_number });
        }
        if line.starts_with([' ', '\t']) {
            // RFC 3261 7.3.1: a fold is equivalent to a single SP.
            let field = fields
                .last_mut()
                .ok_or(NormalizeError::OrphanContinuation { line: line_number })?;
            let continued = line.trim_matches([' ', '\t']);
            if !continued.is_empty() {
                if !field.value.is_empty() {
                    field.value.push(' ');
                }
                field.value.push_str(continued);
            }
            continue;
        }
        if line.is_empty() {
            // Only reachable when a caller hands us a section that still holds its blank line.
            continue;
        }
        let (raw_name, raw_value) = line
            .split_once(':')
            .ok_or(NormalizeError::MissingColon { line: line_number })?;
        // RFC 3261 7.3.1 allows any amount of whitespace between the name and the colon.
        let name = raw_name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err(NormalizeError::InvalidName { line: line_number });
        }
        fields.push(HeaderField {
            name: canonical_name(name).into_owned(),
            value: raw_value.trim_matches([' ', '\t']).to_owned(),
        });
    }

    // Values that were folded may still end in whitespace carried over from the folded line.
    for field in &mut fields {
        let trimmed = field.value.trim_end_matches([' ', '\t']).len();
        field.value.truncate(trimmed);
    }

    Ok(NormalizedHead {
        start_line: start_line.to_owned(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, value: &str) -> HeaderField {
        HeaderField {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    #[test]
    fn compact_names_expand_to_full_names() {
        let head = "INVITE sip:a@b SIP/2.0\r\ni: abc\r\nf: <sip:x@y>\r\nt: <sip:a@b>\r\nv: SIP/2.0/UDP h\r\n\
                    m: <sip:c@d>\r\nl: 0\r\nc: application/sdp\r\nk: timer\r\ns: hi\r\ne: gzip\r\n\
                    o: dialog\r\nr: <sip:r@s>\r\nb: <sip:b@s>\r\nu: dialog\r\nx: 90\r\ny: sig";
        let names: Vec<String> = normalize_head(head)
            .unwrap()
            .fields
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(
            names,
            [
                "Call-ID",
                "From",
                "To",
                "Via",
                "Contact",
                "Content-Length",
                "Content-Type",
                "Supported",
                "Subject",
                "Content-Encoding",
                "Event",
                "Refer-To",
                "Referred-By",
                "Allow-Events",
                "Session-Expires",
                "Identity"
            ]
        );
    }

    #[test]
    fn compact_names_are_case_insensitive() {
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("L"), "Content-Length");
    }

    #[test]
    fn known_names_get_their_registered_spelling() {
        assert_eq!(canonical_name("cseq"), "CSeq");
        assert_eq!(canonical_name("CaLl-Id"), "Call-ID");
        assert_eq!(canonical_name("MaX-fOrWaRdS"), "Max-Forwards");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
    }

    #[test]
    fn folded_lines_join_the_previous_value_with_one_space() {
        let head =
            "INVITE sip:a@b SIP/2.0\r\nSubject: first\r\n  second\r\n\tthird\r\nTo: <sip:a@b>";
        let normalized = normalize_head(head).unwrap();
        assert_eq!(
            normalized.fields,
            [
                field("Subject", "first second third"),
                field("To", "<sip:a@b>")
            ]
        );
    }

    #[test]
    fn a_value_that_starts_on_the_next_line_is_kept() {
        let head =
            "INVITE sip:a@b SIP/2.0\r\nTO :\r\n sip:vivekg@example.com ;   tag    = 1918181833n";
        let normalized = normalize_head(head).unwrap();
        assert_eq!(
            normalized.fields,
            [field(
                "To",
                "sip:vivekg@example.com ;   tag    = 1918181833n"
            )]
        );
    }

    #[test]
    fn whitespace_around_the_colon_is_tolerated() {
        let head = "INVITE sip:a@b SIP/2.0\r\nContent-Length   : 150\r\nVia\t:SIP/2.0/UDP h\r\ns :";
        let normalized = normalize_head(head).unwrap();
        assert_eq!(
            normalized.fields,
            [
                field("Content-Length", "150"),
                field("Via", "SIP/2.0/UDP h"),
                field("Subject", "")
            ]
        );
    }

    #[test]
    fn a_line_without_colon_is_rejected() {
        let head = "INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\nFoobar roobar";
        assert_eq!(
            normalize_head(head),
            Err(NormalizeError::MissingColon { line: 2 })
        );
    }

    #[test]
    fn a_continuation_right_after_the_start_line_is_rejected() {
        let head = "INVITE sip:a@b SIP/2.0\r\n To: <sip:a@b>";
        assert_eq!(
            normalize_head(head),
            Err(NormalizeError::OrphanContinuation { line: 1 })
        );
    }

    #[test]
    fn a_header_name_with_spaces_is_rejected() {
        let head = "INVITE sip:a@b SIP/2.0\r\nBad Name: x";
        assert_eq!(
            normalize_head(head),
            Err(NormalizeError::InvalidName { line: 1 })
        );
    }

    #[test]
    fn a_bare_line_feed_inside_a_value_is_rejected() {
        let head = "INVITE sip:a@b SIP/2.0\r\nSubject: a\nInjected: b";
        assert_eq!(
            normalize_head(head),
            Err(NormalizeError::BareLineBreak { line: 1 })
        );
    }
}
