//! Who is calling and whose phone rings, read from an INVITE's headers.
//!
//! PBXs and carriers put the caller in different places, with different trust: a network-asserted
//! identity (`P-Asserted-Identity`, RFC 3325) is what the carrier vouches for, the older
//! `Remote-Party-ID` carries the same for equipment that predates it, and `From` is whatever the
//! caller's device claims. So the caller is taken from the first of those that names one, in that
//! order. A caller who asked for privacy (`Privacy: id`, an RPID `privacy=full|uri`, or the
//! RFC 3323 anonymous URI) is reported as `anonymous`, which matching treats as withheld.
//!
//! The number the caller dialed (the DID or queue) is the original target of a diverted call:
//! the oldest `Diversion` entry (RFC 5806 lists the most recent first) or the first
//! `History-Info` entry (RFC 7044), else the `To` user. The ringing agent is found from the
//! Request-URI user (the extension the PBX forked to), else the `To` user.
//!
//! Everything here is pure and reads only the message.

use crate::protocol::sip::{NameAddr, SipMessage, Uri};

/// The raw caller reported when the caller withheld their number.
pub const WITHHELD: &str = "anonymous";

/// Longer "numbers" are garbage or an attack on the logs; they are cut.
const MAX_NUMBER_CHARS: usize = 64;

/// The caller as the source gave it (`anonymous` when withheld), or `None` when the message
/// names no caller at all.
pub fn caller(message: &SipMessage) -> Option<String> {
    if message.privacy().iter().any(|value| value == "id") {
        return Some(WITHHELD.to_owned());
    }
    let asserted = message.p_asserted_identities().unwrap_or_default();
    if let Some(number) = first_number(&asserted) {
        return Some(number);
    }
    let remote_party: Vec<NameAddr> = message
        .remote_party_ids()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| {
            entry
                .params
                .value("party")
                .is_none_or(|party| party.eq_ignore_ascii_case("calling"))
        })
        .collect();
    if let Some(entry) = remote_party.first() {
        let hidden = entry
            .params
            .value("privacy")
            .is_some_and(|privacy| matches!(privacy.to_ascii_lowercase().as_str(), "full" | "uri"));
        if hidden {
            return Some(WITHHELD.to_owned());
        }
        if let Some(number) = first_number(&remote_party) {
            return Some(number);
        }
    }
    let from = message.from_header().ok()?;
    number_of(&from).or_else(|| display_number(&from))
}

/// The number the caller dialed: the original target of a diversion, else the `To` user.
pub fn dialed(message: &SipMessage) -> Option<String> {
    let diverted = message
        .diversions()
        .ok()
        .and_then(|entries| entries.last().and_then(number_of));
    let history = || {
        message
            .history_info()
            .ok()
            .and_then(|entries| entries.first().and_then(number_of))
    };
    let to = || message.to_header().ok().as_ref().and_then(number_of);
    diverted.or_else(history).or_else(to)
}

/// The users that may name the ringing agent's extension, most specific first: the
/// Request-URI user, then the `To` user.
pub fn ringing_extensions(message: &SipMessage) -> Vec<String> {
    let mut users = Vec::with_capacity(2);
    for user in [
        message.request_uri().and_then(user_of),
        message.to_header().ok().and_then(|to| user_of(&to.uri)),
    ]
    .into_iter()
    .flatten()
    {
        if !users.contains(&user) {
            users.push(user);
        }
    }
    users
}

/// The user part of a URI as a number or extension: URI parameters in the user part
/// (`;isub=`, `;npdi`) cut off, length bounded; `anonymous` for the RFC 3323 anonymous URI.
pub fn user_of(uri: &Uri) -> Option<String> {
    if uri
        .host()
        .is_some_and(|host| host.to_string().eq_ignore_ascii_case("anonymous.invalid"))
    {
        return Some(WITHHELD.to_owned());
    }
    let user = uri.user()?;
    let number = user.split(';').next().unwrap_or_default().trim();
    if number.is_empty() {
        return None;
    }
    Some(number.chars().take(MAX_NUMBER_CHARS).collect())
}

fn number_of(entry: &NameAddr) -> Option<String> {
    user_of(&entry.uri)
}

/// The first entry with a user, preferring one that holds digits (a PAI may carry a sip URI with
/// a name and a tel URI with the number).
fn first_number(entries: &[NameAddr]) -> Option<String> {
    let users: Vec<String> = entries.iter().filter_map(number_of).collect();
    users
        .iter()
        .find(|user| user.chars().any(|c| c.is_ascii_digit()))
        .or_else(|| users.first())
        .cloned()
}

/// A display name that is a number, for a `From` whose URI has no user part.
fn display_number(entry: &NameAddr) -> Option<String> {
    let name = entry.display_name.as_deref()?.trim();
    let is_number = !name.is_empty()
        && name.chars().any(|c| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    is_number.then(|| name.chars().take(MAX_NUMBER_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sip::parse;

    fn invite(headers: &str) -> SipMessage {
        let text = format!(
            "INVITE sip:1001@ringside.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pbx.example.com;branch=z9hG4bK1\r\n\
             Call-ID: c1@pbx\r\nCSeq: 1 INVITE\r\n{headers}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_asserted_identity_wins_over_from() {
        let message = invite(
            "From: \"Spoofed\" <sip:999@evil.example.com>;tag=1\r\nTo: <sip:800@pbx>\r\n\
             P-Asserted-Identity: \"王建国\" <sip:+8613800138000@carrier.example.com>\r\n",
        );
        assert_eq!(caller(&message).as_deref(), Some("+8613800138000"));
    }

    #[test]
    fn a_tel_asserted_identity_is_preferred_over_a_sip_name() {
        let message = invite(
            "From: <sip:x@pbx>;tag=1\r\nTo: <sip:800@pbx>\r\n\
             P-Asserted-Identity: <sip:alice@carrier.example.com>, <tel:+86-138-0013-8000>\r\n",
        );
        assert_eq!(caller(&message).as_deref(), Some("+86-138-0013-8000"));
    }

    #[test]
    fn remote_party_id_is_used_when_there_is_no_asserted_identity() {
        let message = invite(
            "From: <sip:1@pbx>;tag=1\r\nTo: <sip:800@pbx>\r\n\
             Remote-Party-ID: <sip:5551234@pbx.example.com>;party=called,\
             \"Li\" <sip:13900139000@pbx.example.com>;party=calling;screen=yes\r\n",
        );
        assert_eq!(caller(&message).as_deref(), Some("13900139000"));
    }

    #[test]
    fn remote_party_id_privacy_withholds_the_caller() {
        let message = invite(
            "From: <sip:13900139000@pbx>;tag=1\r\nTo: <sip:800@pbx>\r\n\
             Remote-Party-ID: <sip:13900139000@pbx>;party=calling;privacy=full\r\n",
        );
        assert_eq!(caller(&message).as_deref(), Some(WITHHELD));
    }

    #[test]
    fn privacy_id_withholds_even_an_asserted_identity() {
        let message = invite(
            "From: <sip:13900139000@pbx>;tag=1\r\nTo: <sip:800@pbx>\r\nPrivacy: id\r\n\
             P-Asserted-Identity: <sip:13900139000@pbx>\r\n",
        );
        assert_eq!(caller(&message).as_deref(), Some(WITHHELD));
    }

    #[test]
    fn the_anonymous_uri_is_withheld() {
        let message = invite(
            "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=1\r\nTo: <sip:800@pbx>\r\n",
        );
        assert_eq!(caller(&message).as_deref(), Some(WITHHELD));
    }

    #[test]
    fn from_gives_sip_and_tel_users_with_user_parameters_cut() {
        let sip =
            invite("From: <sip:13800138000;npdi@pbx;user=phone>;tag=1\r\nTo: <sip:800@pbx>\r\n");
        assert_eq!(caller(&sip).as_deref(), Some("13800138000"));
        let tel =
            invite("From: <tel:+8613800138000;phone-context=x>;tag=1\r\nTo: <sip:800@pbx>\r\n");
        assert_eq!(caller(&tel).as_deref(), Some("+8613800138000"));
    }

    #[test]
    fn a_numeric_display_name_stands_in_for_a_missing_user() {
        let message =
            invite("From: \"138 0013 8000\" <sip:pbx.example.com>;tag=1\r\nTo: <sip:800@pbx>\r\n");
        assert_eq!(caller(&message).as_deref(), Some("138 0013 8000"));
        let named =
            invite("From: \"Front desk\" <sip:pbx.example.com>;tag=1\r\nTo: <sip:800@pbx>\r\n");
        assert_eq!(caller(&named), None);
    }

    #[test]
    fn the_dialed_number_is_the_original_diversion_target() {
        let message = invite(
            "From: <sip:1@pbx>;tag=1\r\nTo: <sip:1001@pbx>\r\n\
             Diversion: <sip:600@pbx>;reason=no-answer, <sip:4008001234@pbx>;reason=unconditional\r\n",
        );
        assert_eq!(dialed(&message).as_deref(), Some("4008001234"));
    }

    #[test]
    fn history_info_gives_the_dialed_number_without_diversion() {
        let message = invite(
            "From: <sip:1@pbx>;tag=1\r\nTo: <sip:1001@pbx>\r\n\
             History-Info: <sip:4008001234@pbx>;index=1, <sip:1001@pbx>;index=1.1\r\n",
        );
        assert_eq!(dialed(&message).as_deref(), Some("4008001234"));
    }

    #[test]
    fn without_diversion_the_dialed_number_is_the_to_user() {
        let message = invite("From: <sip:1@pbx>;tag=1\r\nTo: <sip:800@pbx>\r\n");
        assert_eq!(dialed(&message).as_deref(), Some("800"));
    }

    #[test]
    fn ringing_extensions_come_from_the_request_uri_then_to() {
        let message = invite("From: <sip:1@pbx>;tag=1\r\nTo: <sip:800@pbx>\r\n");
        assert_eq!(ringing_extensions(&message), vec!["1001", "800"]);
        let same = invite("From: <sip:1@pbx>;tag=1\r\nTo: <sip:1001@pbx>\r\n");
        assert_eq!(ringing_extensions(&same), vec!["1001"]);
    }

    #[test]
    fn overlong_users_are_cut() {
        let long = "9".repeat(500);
        let message = invite(&format!(
            "From: <sip:{long}@pbx>;tag=1\r\nTo: <sip:800@pbx>\r\n"
        ));
        assert_eq!(caller(&message).map(|c| c.len()), Some(MAX_NUMBER_CHARS));
    }
}
