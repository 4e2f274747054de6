//! The pieces of RFC 3261 section 17 a UAS needs: the timer values, how a request is matched to
//! its server transaction, where a response goes, and a timer queue.
//!
//! Matching (17.2.3): a request whose top Via branch starts with the magic cookie `z9hG4bK` belongs
//! to the transaction named by that branch and the Via sent-by; ACK and CANCEL carry the INVITE's
//! branch, so they find the INVITE's transaction by asking for the INVITE key. Requests from
//! RFC 2543 peers (no cookie) are matched by Call-ID, CSeq number, From tag and top Via instead.
//!
//! Routing (18.2.2, RFC 3581): over TCP a response goes back on the connection the request came
//! on. Over UDP it goes to the address the request came from (`received`), at the port the request
//! came from when the top Via asked for `rport`, else at the Via's sent-by port (5060 when absent).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::protocol::sip::{Method, SipMessage};

/// Round-trip estimate; the first retransmission interval.
pub const T1: Duration = Duration::from_millis(500);
/// The longest retransmission interval.
pub const T2: Duration = Duration::from_secs(4);
/// How long a message may stay in the network.
pub const T4: Duration = Duration::from_secs(5);
/// INVITE server transaction: how long to wait for the ACK of a final response.
pub const TIMER_H: Duration = Duration::from_secs(32);
/// Non-INVITE client transaction timeout.
pub const TIMER_F: Duration = Duration::from_secs(32);
/// Non-INVITE server transaction: how long retransmissions of the request are absorbed (UDP).
pub const TIMER_J: Duration = Duration::from_secs(32);
/// INVITE server transaction: how long ACK retransmissions are absorbed after the ACK (UDP).
pub const TIMER_I: Duration = T4;

const MAGIC_COOKIE: &str = "z9hG4bK";

/// Identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnKey(String);

impl TxnKey {
    /// The key of the transaction `request` belongs to. ACK and CANCEL ask for their INVITE's key
    /// when `as_invite` is set. `None` when the top Via cannot be read.
    pub fn for_request(request: &SipMessage, as_invite: bool) -> Option<TxnKey> {
        let method = request.method()?;
        let via = request.top_via().ok()?;
        let class = if as_invite || *method == Method::Ack {
            "INVITE"
        } else {
            method.as_str()
        };
        let sent_by = via.sent_by().to_ascii_lowercase();
        match via.branch() {
            Some(branch)
                if branch.starts_with(MAGIC_COOKIE) && branch.len() > MAGIC_COOKIE.len() =>
            {
                Some(TxnKey(format!("{branch}\u{0}{sent_by}\u{0}{class}")))
            }
            branch => {
                let call_id = request.call_id().ok()?;
                let cseq = request.cseq().ok()?.number;
                let from_tag = request
                    .from_header()
                    .ok()
                    .and_then(|from| from.tag().map(str::to_owned))
                    .unwrap_or_default();
                Some(TxnKey(format!(
                    "2543\u{0}{call_id}\u{0}{cseq}\u{0}{from_tag}\u{0}{sent_by}\u{0}{}\u{0}{class}",
                    branch.unwrap_or_default()
                )))
            }
        }
    }
}

/// A TCP connection a response can be written to.
#[derive(Debug, Clone)]
pub struct TcpLink {
    pub peer: SocketAddr,
    /// The connection's write queue. Full means the peer stopped reading: the connection is closed.
    pub tx: mpsc::Sender<Bytes>,
    /// Cancelling closes the connection.
    pub closer: CancellationToken,
}

/// Where responses to a request go.
#[derive(Debug, Clone)]
pub enum ReplyPath {
    Udp(SocketAddr),
    Tcp(TcpLink),
}

impl ReplyPath {
    /// Whether the transport retransmits by itself (no Timer G, I or J needed).
    pub fn is_reliable(&self) -> bool {
        matches!(self, ReplyPath::Tcp(_))
    }

    /// The UDP destination for responses to `request`, received from `source`.
    pub fn udp_for(request: &SipMessage, source: SocketAddr) -> ReplyPath {
        let destination = match request.top_via() {
            Ok(via) if via.has_rport() => source,
            Ok(via) => SocketAddr::new(source.ip(), via.port.unwrap_or(5060)),
            // An unreadable Via has no port to honour; the source is the best guess.
            Err(_) => source,
        };
        ReplyPath::Udp(destination)
    }
}

/// What a timer is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// Resend the final response of an INVITE transaction (Timer G).
    Retransmit,
    /// Resend the last provisional response so proxies do not give up (RFC 3261 13.3.1.1).
    RefreshRinging,
    /// The INVITE transaction's current deadline (Timer H, Timer I, or how long it may ring).
    ExpireInvite,
    /// Forget a non-INVITE transaction (Timer J).
    ExpireNonInvite,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Instant,
    sequence: u64,
    kind: TimerKind,
    key: String,
}

/// Timers in deadline order. Entries are never cancelled: the owner checks, when one fires,
/// whether the transaction still wants it (its recorded deadline equals the timer's).
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    sequence: u64,
}

impl Timers {
    pub fn schedule(&mut self, at: Instant, kind: TimerKind, key: &TxnKey) {
        self.sequence = self.sequence.wrapping_add(1);
        self.heap.push(Reverse(Entry {
            at,
            sequence: self.sequence,
            kind,
            key: key.0.clone(),
        }));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| entry.at)
    }

    /// The next timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKind, TxnKey)> {
        if self
            .heap
            .peek()
            .is_some_and(|Reverse(entry)| entry.at <= now)
        {
            let Reverse(entry) = self.heap.pop()?;
            return Some((entry.at, entry.kind, TxnKey(entry.key)));
        }
        None
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sip::parse;

    fn request(method: &str, via: &str, cseq_method: &str) -> SipMessage {
        let text = format!(
            "{method} sip:1001@ringside SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@pbx>;tag=f1\r\n\
             To: <sip:1001@pbx>\r\nCall-ID: c1\r\nCSeq: 1 {cseq_method}\r\nContent-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn ack_and_cancel_find_the_invite_transaction() {
        let via = "SIP/2.0/UDP pbx.example.com:5060;branch=z9hG4bKabc";
        let invite = TxnKey::for_request(&request("INVITE", via, "INVITE"), false);
        let ack = TxnKey::for_request(&request("ACK", via, "ACK"), false);
        let cancel = request("CANCEL", via, "CANCEL");
        assert!(invite.is_some());
        assert_eq!(ack, invite);
        assert_eq!(TxnKey::for_request(&cancel, true), invite);
        assert_ne!(TxnKey::for_request(&cancel, false), invite);
    }

    #[test]
    fn the_same_branch_from_another_host_is_another_transaction() {
        let a = request(
            "INVITE",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bKabc",
            "INVITE",
        );
        let b = request(
            "INVITE",
            "SIP/2.0/UDP b.example.com;branch=z9hG4bKabc",
            "INVITE",
        );
        assert_ne!(
            TxnKey::for_request(&a, false),
            TxnKey::for_request(&b, false)
        );
    }

    #[test]
    fn rfc2543_requests_are_matched_by_dialog_fields() {
        let via = "SIP/2.0/UDP old.example.com";
        let invite = TxnKey::for_request(&request("INVITE", via, "INVITE"), false);
        let ack = TxnKey::for_request(&request("ACK", via, "ACK"), false);
        assert!(invite.is_some());
        assert_eq!(invite, ack);
    }

    #[test]
    fn responses_follow_rport_or_the_sent_by_port() {
        let source: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let with_rport = request(
            "OPTIONS",
            "SIP/2.0/UDP h:5062;branch=z9hG4bK1;rport",
            "OPTIONS",
        );
        let without = request("OPTIONS", "SIP/2.0/UDP h:5062;branch=z9hG4bK1", "OPTIONS");
        let no_port = request("OPTIONS", "SIP/2.0/UDP h;branch=z9hG4bK1", "OPTIONS");
        let destination = |message: &SipMessage| match ReplyPath::udp_for(message, source) {
            ReplyPath::Udp(addr) => addr,
            ReplyPath::Tcp(_) => unreachable!(),
        };
        assert_eq!(destination(&with_rport), source);
        assert_eq!(destination(&without), "192.0.2.1:5062".parse().unwrap());
        assert_eq!(destination(&no_port), "192.0.2.1:5060".parse().unwrap());
    }

    #[test]
    fn timers_fire_in_deadline_order() {
        let mut timers = Timers::default();
        let now = Instant::now();
        let key = TxnKey("k".into());
        timers.schedule(now + Duration::from_secs(2), TimerKind::ExpireInvite, &key);
        timers.schedule(now + Duration::from_secs(1), TimerKind::Retransmit, &key);
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(timers.pop_due(now).is_none());
        let (_, kind, _) = timers.pop_due(now + Duration::from_secs(5)).unwrap();
        assert_eq!(kind, TimerKind::Retransmit);
        let (_, kind, _) = timers.pop_due(now + Duration::from_secs(5)).unwrap();
        assert_eq!(kind, TimerKind::ExpireInvite);
        assert!(timers.is_empty());
    }
}
