//! The UAS core driven with hand-made messages and a virtual clock: what it answers, when it
//! retransmits, and which call events it reports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::call::{AgentId, Audience, CallEvent, EventKind};
use crate::protocol::sip::{SipMessage, Uri, parse, validate_request};
use crate::settings::{Settings, SipMode};

use super::counters::{DropReason, SipCounters};
use super::transaction::{ReplyPath, T2, TIMER_H, TIMER_J, TcpLink, TxnKey};
use super::uas::{
    Action, AgentLookup, MAX_INVITE_TRANSACTIONS, RINGING_REFRESH, RedirectDecision, Uas,
};

struct Extensions(HashMap<String, AgentId>);

impl AgentLookup for Extensions {
    fn agent_for(&self, extension: &str) -> Option<AgentId> {
        self.0.get(extension).copied()
    }
}

const PBX: &str = "192.0.2.1:5060";

fn pbx() -> SocketAddr {
    PBX.parse().unwrap()
}

fn uas_with(configure: impl FnOnce(&mut Settings)) -> (Uas, Arc<SipCounters>) {
    let mut settings = Settings::default();
    configure(&mut settings);
    let agents = Extensions(HashMap::from([
        ("1001".to_owned(), AgentId(1)),
        ("1002".to_owned(), AgentId(2)),
    ]));
    let counters = Arc::new(SipCounters::default());
    let uas = Uas::new(Arc::new(settings), Arc::new(agents), counters.clone(), None);
    (uas, counters)
}

fn fresh_uas() -> (Uas, Arc<SipCounters>) {
    uas_with(|_| {})
}

fn request(
    method: &str,
    uri: &str,
    branch: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> SipMessage {
    let text = format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:13800138000@pbx.example.com>;tag=from1\r\n\
         To: <sip:1001@ringside.example.com>\r\n\
         Call-ID: call-1@pbx\r\n\
         CSeq: {cseq} {method}\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let message = parse(text.as_bytes()).unwrap();
    validate_request(&message).unwrap();
    message
}

fn invite(extra: &str) -> SipMessage {
    request(
        "INVITE",
        "sip:1001@ringside.example.com",
        "z9hG4bKinv1",
        1,
        extra,
        "",
    )
}

fn cancel(extra: &str) -> SipMessage {
    request(
        "CANCEL",
        "sip:1001@ringside.example.com",
        "z9hG4bKinv1",
        1,
        extra,
        "",
    )
}

fn ack() -> SipMessage {
    let text = "ACK sip:1001@ringside.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKinv1\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:13800138000@pbx.example.com>;tag=from1\r\n\
         To: <sip:1001@ringside.example.com>;tag=whatever\r\n\
         Call-ID: call-1@pbx\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    parse(text.as_bytes()).unwrap()
}

fn udp() -> ReplyPath {
    ReplyPath::Udp(pbx())
}

fn tcp() -> (ReplyPath, mpsc::Receiver<bytes::Bytes>) {
    let (tx, rx) = mpsc::channel(16);
    let link = TcpLink {
        peer: pbx(),
        tx,
        closer: CancellationToken::new(),
    };
    (ReplyPath::Tcp(link), rx)
}

fn responses(actions: &[Action]) -> Vec<SipMessage> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Send { bytes, .. } => Some(parse(bytes).unwrap()),
            _ => None,
        })
        .collect()
}

fn statuses(actions: &[Action]) -> Vec<u16> {
    responses(actions)
        .iter()
        .map(|response| response.status_code().unwrap())
        .collect()
}

fn events(actions: &[Action]) -> Vec<CallEvent> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Submit(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn to_tag(response: &SipMessage) -> Option<String> {
    response.to_header().unwrap().tag().map(str::to_owned)
}

#[test]
fn options_is_answered_200_with_allow_and_accept() {
    let (mut uas, _) = fresh_uas();
    let options = request(
        "OPTIONS",
        "sip:ringside.example.com",
        "z9hG4bKopt",
        1,
        "",
        "",
    );
    let actions = uas.on_request(options, pbx(), udp(), Instant::now());
    let answer = &responses(&actions)[0];
    assert_eq!(answer.status_code(), Some(200));
    assert!(answer.header("Allow").unwrap().contains("INVITE"));
    assert!(answer.header("Allow").unwrap().contains("NOTIFY"));
    assert!(answer.header("Accept").unwrap().contains("application/sdp"));
    assert!(to_tag(answer).is_some());
    assert!(events(&actions).is_empty());
}

#[test]
fn an_invite_gets_trying_then_ringing_and_pops_the_extensions_agent() {
    let (mut uas, counters) = fresh_uas();
    let actions = uas.on_request(invite(""), pbx(), udp(), Instant::now());
    let sent = responses(&actions);
    assert_eq!(statuses(&actions), vec![100, 180]);
    assert_eq!(to_tag(&sent[0]), None, "100 Trying carries no To tag");
    assert!(to_tag(&sent[1]).is_some());
    let via = sent[1].top_via().unwrap();
    assert_eq!(
        via.received(),
        None,
        "sent-by already is the source address"
    );
    let events = events(&actions);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.call_id, "call-1@pbx");
    assert_eq!(
        event.caller.as_ref().unwrap().e164.as_deref(),
        Some("+8613800138000")
    );
    assert_eq!(
        event.kind,
        EventKind::Ringing {
            audience: Audience::Agents(vec![AgentId(1)])
        }
    );
    assert_eq!(counters.responses_out(1), 2);
}

#[test]
fn an_invite_for_an_unknown_extension_pops_nobody() {
    let (mut uas, _) = fresh_uas();
    let message = request("INVITE", "sip:7777@ringside", "z9hG4bKx", 1, "", "")
        .to_bytes()
        .to_vec();
    let text = String::from_utf8(message)
        .unwrap()
        .replace("To: <sip:1001@", "To: <sip:8888@");
    let actions = uas.on_request(
        parse(text.as_bytes()).unwrap(),
        pbx(),
        udp(),
        Instant::now(),
    );
    assert_eq!(
        events(&actions)[0].kind,
        EventKind::Ringing {
            audience: Audience::Agents(vec![])
        }
    );
}

#[test]
fn the_to_user_names_the_agent_when_the_request_uri_does_not() {
    let (mut uas, _) = fresh_uas();
    let message = request("INVITE", "sip:ringside.example.com", "z9hG4bKx", 1, "", "");
    let actions = uas.on_request(message, pbx(), udp(), Instant::now());
    assert_eq!(
        events(&actions)[0].kind,
        EventKind::Ringing {
            audience: Audience::Agents(vec![AgentId(1)])
        }
    );
}

#[test]
fn a_retransmitted_invite_gets_the_last_response_again_and_no_second_event() {
    let (mut uas, counters) = fresh_uas();
    let now = Instant::now();
    let first = uas.on_request(invite(""), pbx(), udp(), now);
    let again = uas.on_request(invite(""), pbx(), udp(), now + Duration::from_millis(500));
    assert_eq!(statuses(&again), vec![180]);
    assert_eq!(
        to_tag(&responses(&again)[0]),
        to_tag(&responses(&first)[1]),
        "the dialog keeps its To tag"
    );
    assert!(events(&again).is_empty());
    assert_eq!(counters.retransmissions_absorbed(), 1);
}

#[test]
fn cancel_gets_200_and_the_invite_487_with_one_to_tag_and_a_hangup() {
    let (mut uas, _) = fresh_uas();
    let now = Instant::now();
    let rung = uas.on_request(invite(""), pbx(), udp(), now);
    let tag = to_tag(&responses(&rung)[1]);
    let actions = uas.on_request(cancel(""), pbx(), udp(), now);
    let sent = responses(&actions);
    assert_eq!(statuses(&actions), vec![200, 487]);
    assert_eq!(sent[0].cseq().unwrap().method.as_str(), "CANCEL");
    assert_eq!(sent[1].cseq().unwrap().method.as_str(), "INVITE");
    assert_eq!(to_tag(&sent[0]), tag);
    assert_eq!(to_tag(&sent[1]), tag);
    assert_eq!(
        events(&actions)[0].kind,
        EventKind::Hangup {
            cause: Some("487".into()),
            answered_elsewhere: false
        }
    );
}

#[test]
fn a_cancel_with_reason_cause_200_is_answered_elsewhere() {
    let (mut uas, _) = fresh_uas();
    let now = Instant::now();
    uas.on_request(invite(""), pbx(), udp(), now);
    let actions = uas.on_request(
        cancel("Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n"),
        pbx(),
        udp(),
        now,
    );
    let EventKind::Hangup {
        answered_elsewhere,
        cause,
    } = &events(&actions)[0].kind
    else {
        panic!("a hangup expected");
    };
    assert!(answered_elsewhere);
    assert!(cause.as_deref().unwrap().starts_with("SIP;cause=200"));
}

#[test]
fn the_487_is_retransmitted_on_timer_g_until_the_ack() {
    let (mut uas, counters) = fresh_uas();
    let start = Instant::now();
    uas.on_request(invite(""), pbx(), udp(), start);
    uas.on_request(cancel(""), pbx(), udp(), start);
    let mut resent_at = Vec::new();
    let mut at = start;
    while at < start + Duration::from_millis(8000) {
        at += Duration::from_millis(50);
        let actions = uas.on_timer(at);
        if statuses(&actions).contains(&487) {
            resent_at.push(at.duration_since(start).as_millis());
        }
    }
    // T1, then doubling: 0.5 s, 1.5 s, 3.5 s, 7.5 s after the first 487.
    assert_eq!(resent_at, vec![500, 1500, 3500, 7500]);
    uas.on_request(ack(), pbx(), udp(), at);
    // A retransmitted ACK is absorbed while Timer I runs; afterwards the transaction is gone.
    uas.on_request(ack(), pbx(), udp(), at + Duration::from_secs(1));
    assert_eq!(counters.retransmissions_absorbed(), 1);
    assert!(
        statuses(&uas.on_timer(at + T2)).is_empty(),
        "the ACK stops Timer G"
    );
    uas.on_timer(at + Duration::from_secs(6));
    assert_eq!(uas.invite_transactions(), 0);
}

#[test]
fn without_an_ack_the_invite_transaction_ends_at_timer_h() {
    let (mut uas, _) = fresh_uas();
    let start = Instant::now();
    uas.on_request(invite(""), pbx(), udp(), start);
    uas.on_request(cancel(""), pbx(), udp(), start);
    let mut sends = 0;
    let mut at = start;
    while at <= start + TIMER_H + Duration::from_secs(5) {
        at += Duration::from_millis(100);
        sends += statuses(&uas.on_timer(at)).len();
    }
    // 0.5, 1.5, 3.5, 7.5, then every 4 s until 32 s: 10 retransmissions.
    assert_eq!(sends, 10);
    assert_eq!(uas.invite_transactions(), 0);
}

#[test]
fn over_tcp_the_487_is_sent_once_and_the_ack_ends_the_transaction() {
    let (mut uas, _) = fresh_uas();
    let (path, _rx) = tcp();
    let start = Instant::now();
    uas.on_request(invite(""), pbx(), path.clone(), start);
    let actions = uas.on_request(cancel(""), pbx(), path.clone(), start);
    assert_eq!(statuses(&actions), vec![200, 487]);
    assert!(statuses(&uas.on_timer(start + Duration::from_secs(10))).is_empty());
    uas.on_request(ack(), pbx(), path, start + Duration::from_secs(10));
    assert_eq!(uas.invite_transactions(), 0);
    assert_eq!(uas.non_invite_transactions(), 0, "no Timer J over TCP");
}

#[test]
fn a_cancel_for_an_unknown_transaction_gets_481() {
    let (mut uas, _) = fresh_uas();
    let actions = uas.on_request(cancel(""), pbx(), udp(), Instant::now());
    assert_eq!(statuses(&actions), vec![481]);
    assert!(events(&actions).is_empty());
}

#[test]
fn a_retransmitted_cancel_gets_the_same_200_and_no_second_hangup() {
    let (mut uas, _) = fresh_uas();
    let now = Instant::now();
    uas.on_request(invite(""), pbx(), udp(), now);
    let first = uas.on_request(cancel(""), pbx(), udp(), now);
    let again = uas.on_request(cancel(""), pbx(), udp(), now + Duration::from_millis(500));
    assert_eq!(statuses(&again), vec![200]);
    assert_eq!(responses(&again)[0], responses(&first)[0]);
    assert!(events(&again).is_empty());
    // After Timer J the CANCEL is new again, but its INVITE is already completed: 200, no event.
    let late = uas.on_request(cancel(""), pbx(), udp(), now + TIMER_J);
    uas.on_timer(now + TIMER_J + Duration::from_millis(1));
    let later = uas.on_request(
        cancel(""),
        pbx(),
        udp(),
        now + TIMER_J + Duration::from_millis(2),
    );
    assert!(events(&late).is_empty() && events(&later).is_empty());
}

#[test]
fn bye_outside_a_dialog_gets_481_and_other_methods_405_with_allow() {
    let (mut uas, _) = fresh_uas();
    let now = Instant::now();
    let bye = request("BYE", "sip:1001@ringside", "z9hG4bKbye", 2, "", "");
    assert_eq!(statuses(&uas.on_request(bye, pbx(), udp(), now)), vec![481]);
    let register = request("REGISTER", "sip:ringside", "z9hG4bKreg", 1, "", "");
    let actions = uas.on_request(register, pbx(), udp(), now);
    assert_eq!(statuses(&actions), vec![405]);
    assert!(responses(&actions)[0].header("Allow").is_some());
}

#[test]
fn require_of_an_unknown_extension_gets_420_with_unsupported() {
    let (mut uas, _) = fresh_uas();
    let options = request(
        "OPTIONS",
        "sip:ringside",
        "z9hG4bKreq",
        1,
        "Require: nothingSupportedHere\r\n",
        "",
    );
    let actions = uas.on_request(options, pbx(), udp(), Instant::now());
    assert_eq!(statuses(&actions), vec![420]);
    assert_eq!(
        responses(&actions)[0].header("Unsupported"),
        Some("nothingSupportedHere")
    );
}

#[test]
fn an_invite_with_an_unreadable_body_gets_415_and_no_pop() {
    let (mut uas, _) = fresh_uas();
    let message = request(
        "INVITE",
        "sip:1001@ringside",
        "z9hG4bKbody",
        1,
        "Content-Type: application/unknownformat\r\n",
        "hello",
    );
    let actions = uas.on_request(message, pbx(), udp(), Instant::now());
    assert_eq!(statuses(&actions), vec![100, 415]);
    assert!(events(&actions).is_empty());
}

#[test]
fn an_unknown_request_uri_scheme_gets_416() {
    let (mut uas, _) = fresh_uas();
    let options = request(
        "OPTIONS",
        "soap.beep://192.0.2.103:3002",
        "z9hG4bKs",
        1,
        "",
        "",
    );
    assert_eq!(
        statuses(&uas.on_request(options, pbx(), udp(), Instant::now())),
        vec![416]
    );
}

#[test]
fn monitor_mode_never_answers_an_invite_with_2xx_or_6xx() {
    let (mut uas, _) = fresh_uas();
    let start = Instant::now();
    let mut seen = Vec::new();
    seen.extend(statuses(&uas.on_request(invite(""), pbx(), udp(), start)));
    seen.extend(statuses(&uas.on_request(invite(""), pbx(), udp(), start)));
    seen.extend(statuses(&uas.on_timer(start + RINGING_REFRESH)));
    let cancelled = uas.on_request(cancel(""), pbx(), udp(), start + RINGING_REFRESH);
    seen.extend(
        responses(&cancelled)
            .iter()
            .filter(|r| r.cseq().unwrap().method.as_str() == "INVITE")
            .map(|r| r.status_code().unwrap()),
    );
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|status| !(200..300).contains(status) && *status < 600),
        "{seen:?}"
    );
}

#[test]
fn a_long_ringing_invite_is_reminded_with_180_every_minute() {
    let (mut uas, _) = fresh_uas();
    let start = Instant::now();
    uas.on_request(invite(""), pbx(), udp(), start);
    assert!(statuses(&uas.on_timer(start + Duration::from_secs(59))).is_empty());
    assert_eq!(statuses(&uas.on_timer(start + RINGING_REFRESH)), vec![180]);
    assert_eq!(
        statuses(&uas.on_timer(start + RINGING_REFRESH * 2)),
        vec![180]
    );
}

#[test]
fn a_full_transaction_table_answers_503() {
    let (mut uas, counters) = fresh_uas();
    let now = Instant::now();
    for n in 0..MAX_INVITE_TRANSACTIONS {
        let branch = format!("z9hG4bKfill{n}");
        uas.on_request(
            request("INVITE", "sip:9@r", &branch, 1, "", ""),
            pbx(),
            udp(),
            now,
        );
    }
    let actions = uas.on_request(
        request("INVITE", "sip:9@r", "z9hG4bKone-more", 1, "", ""),
        pbx(),
        udp(),
        now,
    );
    assert_eq!(statuses(&actions), vec![503]);
    assert!(responses(&actions)[0].header("Retry-After").is_some());
    assert_eq!(counters.drops(DropReason::TransactionsFull), 1);
}

#[test]
fn the_caller_comes_from_the_asserted_identity_and_privacy_withholds_it() {
    let (mut uas, _) = fresh_uas();
    let asserted = invite("P-Asserted-Identity: <tel:+8613900139000>\r\n");
    let actions = uas.on_request(asserted, pbx(), udp(), Instant::now());
    assert_eq!(
        events(&actions)[0].caller.as_ref().unwrap().e164.as_deref(),
        Some("+8613900139000")
    );
    let (mut uas, _) = fresh_uas();
    let private = invite("Privacy: id\r\nP-Asserted-Identity: <tel:+8613900139000>\r\n");
    let actions = uas.on_request(private, pbx(), udp(), Instant::now());
    let caller = events(&actions)[0].caller.clone().unwrap();
    assert_eq!(caller.raw, "anonymous");
    assert_eq!(caller.e164, None);
}

#[test]
fn the_dialed_number_comes_from_diversion() {
    let (mut uas, _) = fresh_uas();
    let diverted = invite("Diversion: <sip:4008001234@pbx>;reason=unconditional\r\n");
    let actions = uas.on_request(diverted, pbx(), udp(), Instant::now());
    assert_eq!(
        events(&actions)[0].dialed.as_ref().unwrap().raw,
        "4008001234"
    );
}

fn redirect_uas() -> (Uas, Arc<SipCounters>) {
    uas_with(|settings| {
        settings.sip.mode = SipMode::Redirect;
        settings.sip.redirect_fallback_status = 480;
    })
}

fn lookup_key(actions: &[Action]) -> TxnKey {
    actions
        .iter()
        .find_map(|action| match action {
            Action::LookupRedirect { key, .. } => Some(key.clone()),
            _ => None,
        })
        .expect("a redirect lookup")
}

#[test]
fn redirect_mode_answers_302_with_the_decided_contact_and_pops_that_agent() {
    let (mut uas, _) = redirect_uas();
    let now = Instant::now();
    let actions = uas.on_request(invite(""), pbx(), udp(), now);
    assert_eq!(statuses(&actions), vec![100]);
    let key = lookup_key(&actions);
    let contact: Uri = "sip:1002@pbx.example.com".parse().unwrap();
    let decided = uas.on_redirect(
        &key,
        RedirectDecision {
            contact: Some(contact),
            agent: Some(AgentId(2)),
        },
        now,
    );
    let sent = responses(&decided);
    assert_eq!(sent[0].status_code(), Some(302));
    assert_eq!(
        sent[0].contacts().unwrap()[0].uri.to_string(),
        "sip:1002@pbx.example.com"
    );
    assert_eq!(
        events(&decided)[0].kind,
        EventKind::Ringing {
            audience: Audience::Agents(vec![AgentId(2)])
        }
    );
    // The ACK for the 302 is absorbed and stops retransmissions.
    uas.on_request(ack(), pbx(), udp(), now);
    assert!(statuses(&uas.on_timer(now + Duration::from_secs(2))).is_empty());
}

#[test]
fn redirect_mode_without_a_contact_answers_the_fallback_status() {
    let (mut uas, _) = redirect_uas();
    let now = Instant::now();
    let key = lookup_key(&uas.on_request(invite(""), pbx(), udp(), now));
    let decided = uas.on_redirect(
        &key,
        RedirectDecision {
            contact: None,
            agent: None,
        },
        now,
    );
    assert_eq!(statuses(&decided), vec![480]);
    assert_eq!(
        events(&decided)[0].kind,
        EventKind::Ringing {
            audience: Audience::Agents(vec![])
        }
    );
}

#[test]
fn a_cancel_while_the_redirect_is_decided_wins_and_reports_nothing() {
    let (mut uas, _) = redirect_uas();
    let now = Instant::now();
    let key = lookup_key(&uas.on_request(invite(""), pbx(), udp(), now));
    let cancelled = uas.on_request(cancel(""), pbx(), udp(), now);
    assert_eq!(statuses(&cancelled), vec![200, 487]);
    assert!(events(&cancelled).is_empty());
    let late = uas.on_redirect(
        &key,
        RedirectDecision {
            contact: None,
            agent: None,
        },
        now,
    );
    assert!(late.is_empty());
}

fn notify(extra: &str, body: &str) -> SipMessage {
    request(
        "NOTIFY",
        "sip:ringside@192.0.2.2",
        "z9hG4bKn1",
        2,
        extra,
        body,
    )
}

fn dialog_info(state: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="partial" entity="sip:1002@pbx.example.com">
<dialog id="d1" call-id="leg-7@pbx" direction="recipient"><state>{state}</state>
<remote><identity>sip:13900139000@pbx.example.com</identity></remote></dialog></dialog-info>"#
    )
}

const DIALOG_HEADERS: &str = "Event: dialog\r\nSubscription-State: active;expires=600\r\n\
    Content-Type: application/dialog-info+xml\r\n";

#[test]
fn dialog_info_notifies_pop_answer_and_end_the_agents_call() {
    let (mut uas, _) = fresh_uas();
    let now = Instant::now();
    let early = uas.on_request(
        notify(DIALOG_HEADERS, &dialog_info("early")),
        pbx(),
        udp(),
        now,
    );
    assert_eq!(statuses(&early), vec![200]);
    let ringing = &events(&early)[0];
    assert_eq!(ringing.call_id, "leg-7@pbx");
    assert_eq!(
        ringing.caller.as_ref().unwrap().e164.as_deref(),
        Some("+8613900139000")
    );
    assert_eq!(
        ringing.kind,
        EventKind::Ringing {
            audience: Audience::Agents(vec![AgentId(2)])
        }
    );
    let confirmed = notify(DIALOG_HEADERS, &dialog_info("confirmed"))
        .to_bytes()
        .to_vec();
    let confirmed = String::from_utf8(confirmed)
        .unwrap()
        .replace("branch=z9hG4bKn1", "branch=z9hG4bKn2");
    let answered = uas.on_request(parse(confirmed.as_bytes()).unwrap(), pbx(), udp(), now);
    assert_eq!(
        events(&answered)[0].kind,
        EventKind::Answered {
            by: Some(AgentId(2))
        }
    );
    let terminated = String::from_utf8(
        notify(DIALOG_HEADERS, &dialog_info("terminated"))
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
    .replace("branch=z9hG4bKn1", "branch=z9hG4bKn3");
    let ended = uas.on_request(parse(terminated.as_bytes()).unwrap(), pbx(), udp(), now);
    assert!(matches!(events(&ended)[0].kind, EventKind::Hangup { .. }));
}

#[test]
fn notify_without_a_dialog_event_gets_489() {
    let (mut uas, _) = fresh_uas();
    let message = notify("Event: message-summary\r\n", "");
    assert_eq!(
        statuses(&uas.on_request(message, pbx(), udp(), Instant::now())),
        vec![489]
    );
    let (mut uas, _) = fresh_uas();
    assert_eq!(
        statuses(&uas.on_request(notify("", ""), pbx(), udp(), Instant::now())),
        vec![489]
    );
}

#[test]
fn notify_with_another_body_type_gets_415_and_an_empty_one_200() {
    let (mut uas, _) = fresh_uas();
    let other = notify("Event: dialog\r\nContent-Type: text/plain\r\n", "hi");
    assert_eq!(
        statuses(&uas.on_request(other, pbx(), udp(), Instant::now())),
        vec![415]
    );
    let (mut uas, _) = fresh_uas();
    let empty = notify("Event: dialog\r\nSubscription-State: active\r\n", "");
    assert_eq!(
        statuses(&uas.on_request(empty, pbx(), udp(), Instant::now())),
        vec![200]
    );
}

#[test]
fn notify_with_a_broken_dialog_info_body_gets_400() {
    let (mut uas, _) = fresh_uas();
    let broken = notify(DIALOG_HEADERS, "<dialog-info><oops></dialog-info>");
    let actions = uas.on_request(broken, pbx(), udp(), Instant::now());
    assert_eq!(statuses(&actions), vec![400]);
    assert!(events(&actions).is_empty());
}
