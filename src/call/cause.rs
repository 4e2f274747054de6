//! Reads the hangup causes the sources report, so that an outbound call that was never answered can
//! be told apart as busy, unanswered or failed (the dialer's retry policy depends on it). Sources
//! spell causes differently: Q.850 numbers (AMI `Cause: 17`), FreeSWITCH names (`USER_BUSY`),
//! Asterisk dial statuses (`NOANSWER`), SIP status codes and `Reason` headers
//! (`Q.850;cause=16;text="..."`), or free words from a webhook (`no-answer`).

/// What a hangup cause says about why a call was not, or is no longer, connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CauseClass {
    /// The far end was busy.
    Busy,
    /// The far end rang out, did not respond, or the caller gave up ringing.
    NoAnswer,
    /// The far end declined the call.
    Rejected,
    /// The number or network could not be reached.
    Failed,
    /// An ordinary hangup, which says nothing about whether anyone answered.
    Normal,
}

/// Classifies a cause as a source reported it; `None` for causes it does not recognise.
pub fn classify_hangup_cause(cause: &str) -> Option<CauseClass> {
    let text = cause.trim().to_ascii_lowercase();
    if let Some(code) = cause_code(&text) {
        return classify_code(code);
    }
    let word: String = text
        .chars()
        .map(|c| if c == '-' || c == ' ' { '_' } else { c })
        .collect();
    classify_word(&word)
}

/// The numeric code in `17`, `486` or a `Reason` header value such as `q.850;cause=17;text="busy"`.
fn cause_code(text: &str) -> Option<u16> {
    let digits_from = match text.find("cause=") {
        Some(position) => &text[position + "cause=".len()..],
        None if text.chars().all(|c| c.is_ascii_digit()) => text,
        None => return None,
    };
    let digits: String = digits_from
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn classify_code(code: u16) -> Option<CauseClass> {
    match code {
        // Q.850 cause values.
        16 | 31 => Some(CauseClass::Normal),
        17 => Some(CauseClass::Busy),
        18 | 19 | 20 | 102 => Some(CauseClass::NoAnswer),
        21 => Some(CauseClass::Rejected),
        1..=15 | 22..=30 | 32..=99 => Some(CauseClass::Failed),
        // SIP status codes (a `Reason: SIP;cause=200` means answered by another branch).
        200 => Some(CauseClass::Normal),
        486 | 600 => Some(CauseClass::Busy),
        408 | 480 | 487 => Some(CauseClass::NoAnswer),
        603 | 607 | 608 => Some(CauseClass::Rejected),
        400..=699 => Some(CauseClass::Failed),
        _ => None,
    }
}

fn classify_word(word: &str) -> Option<CauseClass> {
    match word {
        "busy" | "user_busy" | "busy_everywhere" => Some(CauseClass::Busy),
        "no_answer"
        | "noanswer"
        | "no_user_response"
        | "timeout"
        | "cancel"
        | "originator_cancel"
        | "subscriber_absent"
        | "recovery_on_timer_expire"
        | "allotted_timeout"
        | "ring_timeout" => Some(CauseClass::NoAnswer),
        "rejected" | "call_rejected" | "decline" | "declined" | "dontcall" => {
            Some(CauseClass::Rejected)
        }
        "normal" | "normal_clearing" | "normal_unspecified" | "completed" | "answer"
        | "answered" | "hangup" => Some(CauseClass::Normal),
        "failed"
        | "failure"
        | "congestion"
        | "switch_congestion"
        | "chanunavail"
        | "channel_unavailable"
        | "unallocated_number"
        | "invalid_number_format"
        | "no_route_destination"
        | "no_route_transit_net"
        | "destination_out_of_order"
        | "network_out_of_order"
        | "normal_temporary_failure"
        | "incompatible_destination"
        | "number_changed"
        | "invalidargs"
        | "unreachable" => Some(CauseClass::Failed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q850_numbers_are_classified() {
        assert_eq!(classify_hangup_cause("17"), Some(CauseClass::Busy));
        assert_eq!(classify_hangup_cause("19"), Some(CauseClass::NoAnswer));
        assert_eq!(classify_hangup_cause(" 16 "), Some(CauseClass::Normal));
        assert_eq!(classify_hangup_cause("21"), Some(CauseClass::Rejected));
        assert_eq!(classify_hangup_cause("1"), Some(CauseClass::Failed));
        assert_eq!(classify_hangup_cause("34"), Some(CauseClass::Failed));
    }

    #[test]
    fn freeswitch_and_asterisk_names_are_classified() {
        assert_eq!(classify_hangup_cause("USER_BUSY"), Some(CauseClass::Busy));
        assert_eq!(
            classify_hangup_cause("NOANSWER"),
            Some(CauseClass::NoAnswer)
        );
        assert_eq!(
            classify_hangup_cause("NO_USER_RESPONSE"),
            Some(CauseClass::NoAnswer)
        );
        assert_eq!(
            classify_hangup_cause("CALL_REJECTED"),
            Some(CauseClass::Rejected)
        );
        assert_eq!(
            classify_hangup_cause("CONGESTION"),
            Some(CauseClass::Failed)
        );
        assert_eq!(
            classify_hangup_cause("UNALLOCATED_NUMBER"),
            Some(CauseClass::Failed)
        );
        assert_eq!(
            classify_hangup_cause("NORMAL_CLEARING"),
            Some(CauseClass::Normal)
        );
    }

    #[test]
    fn webhook_words_are_classified_whatever_their_separators() {
        assert_eq!(
            classify_hangup_cause("no-answer"),
            Some(CauseClass::NoAnswer)
        );
        assert_eq!(
            classify_hangup_cause("No Answer"),
            Some(CauseClass::NoAnswer)
        );
        assert_eq!(classify_hangup_cause("busy"), Some(CauseClass::Busy));
    }

    #[test]
    fn sip_codes_and_reason_headers_are_classified() {
        assert_eq!(classify_hangup_cause("486"), Some(CauseClass::Busy));
        assert_eq!(classify_hangup_cause("480"), Some(CauseClass::NoAnswer));
        assert_eq!(classify_hangup_cause("603"), Some(CauseClass::Rejected));
        assert_eq!(classify_hangup_cause("404"), Some(CauseClass::Failed));
        assert_eq!(
            classify_hangup_cause("Q.850;cause=17;text=\"User busy\""),
            Some(CauseClass::Busy)
        );
        assert_eq!(
            classify_hangup_cause("SIP;cause=200;text=\"Call completed elsewhere\""),
            Some(CauseClass::Normal)
        );
    }

    #[test]
    fn unknown_causes_are_not_guessed() {
        assert_eq!(classify_hangup_cause("something odd"), None);
        assert_eq!(classify_hangup_cause(""), None);
        assert_eq!(classify_hangup_cause("0"), None);
        assert_eq!(classify_hangup_cause("cause="), None);
    }
}
