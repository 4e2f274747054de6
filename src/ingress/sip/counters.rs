//! What the SIP ingress saw, sent and refused, as plain atomic counters.
//!
//! A SIP listener on a public address is probed, flooded and sent garbage all day; silently dropped
//! traffic is invisible unless it is counted. Every message that is not carried through to the end
//! increments exactly one [`DropReason`], so an operator can tell a scanner wave from a PBX that
//! lost its mind. The counters are lock-free so the hot path pays one relaxed add per message, and
//! [`SipCounters::samples`] lists them for whoever renders metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::protocol::sip::Method;

/// The methods counted separately; everything else is `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodLabel {
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
    Notify,
    Subscribe,
    Register,
    Other,
}

impl MethodLabel {
    pub const ALL: [MethodLabel; 9] = [
        MethodLabel::Invite,
        MethodLabel::Ack,
        MethodLabel::Cancel,
        MethodLabel::Bye,
        MethodLabel::Options,
        MethodLabel::Notify,
        MethodLabel::Subscribe,
        MethodLabel::Register,
        MethodLabel::Other,
    ];

    pub fn of(method: &Method) -> Self {
        match method {
            Method::Invite => MethodLabel::Invite,
            Method::Ack => MethodLabel::Ack,
            Method::Cancel => MethodLabel::Cancel,
            Method::Bye => MethodLabel::Bye,
            Method::Options => MethodLabel::Options,
            Method::Notify => MethodLabel::Notify,
            Method::Subscribe => MethodLabel::Subscribe,
            Method::Register => MethodLabel::Register,
            _ => MethodLabel::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MethodLabel::Invite => "INVITE",
            MethodLabel::Ack => "ACK",
            MethodLabel::Cancel => "CANCEL",
            MethodLabel::Bye => "BYE",
            MethodLabel::Options => "OPTIONS",
            MethodLabel::Notify => "NOTIFY",
            MethodLabel::Subscribe => "SUBSCRIBE",
            MethodLabel::Register => "REGISTER",
            MethodLabel::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a message (or a piece of work it caused) went no further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Could not be framed or parsed, so nothing could be answered.
    Unparseable,
    /// Parsed but failed validation; answered 400 (or 505) when a response was possible.
    Invalid,
    /// Larger than `sip.max_message_bytes` (or a TCP buffer overflowed).
    TooLarge,
    /// The source is outside `sip.allow`.
    NotAllowed,
    /// The source is banned for flooding.
    Banned,
    /// The User-Agent is a known scanner.
    Scanner,
    /// A response that matches no request ringside sent.
    StrayResponse,
    /// An ACK that matches no transaction (e.g. for a 2xx ringside never sends).
    UnmatchedAck,
    /// The transaction core's queue was full (UDP only; TCP waits instead).
    Overloaded,
    /// The transaction table was full; the INVITE was answered 503.
    TransactionsFull,
    /// The queue of call events to the call service was full; the event was lost.
    EventQueueFull,
    /// A ringing event was not passed on because the call service is far behind: that call pops
    /// nobody, but its end is still reported, so it is still recorded.
    RingingShed,
    /// The call service refused or failed to journal an event.
    EventFailed,
    /// More TCP connections than allowed; the new one was closed at once.
    TcpConnectionLimit,
    /// A response was due on a TCP connection that is gone or stopped reading.
    ConnectionGone,
    /// The operating system refused to send a datagram.
    SendFailed,
    /// Too many redirect lookups at once; the fallback was used without looking.
    LookupBusy,
}

impl DropReason {
    pub const ALL: [DropReason; 17] = [
        DropReason::Unparseable,
        DropReason::Invalid,
        DropReason::TooLarge,
        DropReason::NotAllowed,
        DropReason::Banned,
        DropReason::Scanner,
        DropReason::StrayResponse,
        DropReason::UnmatchedAck,
        DropReason::Overloaded,
        DropReason::TransactionsFull,
        DropReason::EventQueueFull,
        DropReason::RingingShed,
        DropReason::EventFailed,
        DropReason::TcpConnectionLimit,
        DropReason::ConnectionGone,
        DropReason::SendFailed,
        DropReason::LookupBusy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Unparseable => "unparseable",
            DropReason::Invalid => "invalid",
            DropReason::TooLarge => "too_large",
            DropReason::NotAllowed => "not_allowed",
            DropReason::Banned => "banned",
            DropReason::Scanner => "scanner",
            DropReason::StrayResponse => "stray_response",
            DropReason::UnmatchedAck => "unmatched_ack",
            DropReason::Overloaded => "overloaded",
            DropReason::TransactionsFull => "transactions_full",
            DropReason::EventQueueFull => "event_queue_full",
            DropReason::RingingShed => "ringing_shed",
            DropReason::EventFailed => "event_failed",
            DropReason::TcpConnectionLimit => "tcp_connection_limit",
            DropReason::ConnectionGone => "connection_gone",
            DropReason::SendFailed => "send_failed",
            DropReason::LookupBusy => "lookup_busy",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// One counter value with its metric family and label, for rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSample {
    /// The family name without the `ringside_` prefix, e.g. `sip_messages_in_total`.
    pub name: &'static str,
    /// The label, e.g. `("method", "INVITE")`, or none.
    pub label: Option<(&'static str, &'static str)>,
    pub value: u64,
}

/// Counters of the SIP ingress. Shared between the sockets' tasks and the transaction core.
#[derive(Debug, Default)]
pub struct SipCounters {
    requests_in: [AtomicU64; 9],
    responses_in: AtomicU64,
    responses_out: [AtomicU64; 6],
    drops: [AtomicU64; 17],
    bans: AtomicU64,
    events_submitted: AtomicU64,
    retransmissions_absorbed: AtomicU64,
    retransmissions_sent: AtomicU64,
    tcp_connections_accepted: AtomicU64,
}

impl SipCounters {
    pub fn count_request(&self, method: &Method) {
        bump(&self.requests_in[MethodLabel::of(method).index()]);
    }

    pub fn count_response_in(&self) {
        bump(&self.responses_in);
    }

    pub fn count_response_out(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 6) - 1;
        bump(&self.responses_out[class]);
    }

    pub fn count_drop(&self, reason: DropReason) {
        bump(&self.drops[reason.index()]);
    }

    pub fn count_ban(&self) {
        bump(&self.bans);
    }

    pub fn count_event_submitted(&self) {
        bump(&self.events_submitted);
    }

    pub fn count_retransmission_absorbed(&self) {
        bump(&self.retransmissions_absorbed);
    }

    pub fn count_retransmission_sent(&self) {
        bump(&self.retransmissions_sent);
    }

    pub fn count_tcp_connection(&self) {
        bump(&self.tcp_connections_accepted);
    }

    pub fn requests_in(&self, method: MethodLabel) -> u64 {
        read(&self.requests_in[method.index()])
    }

    pub fn responses_in(&self) -> u64 {
        read(&self.responses_in)
    }

    /// Responses sent with a status in `class` (1 for 1xx ... 6 for 6xx).
    pub fn responses_out(&self, class: u16) -> u64 {
        let index = usize::from(class).clamp(1, 6) - 1;
        read(&self.responses_out[index])
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        read(&self.drops[reason.index()])
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(read).sum()
    }

    pub fn bans(&self) -> u64 {
        read(&self.bans)
    }

    pub fn events_submitted(&self) -> u64 {
        read(&self.events_submitted)
    }

    pub fn retransmissions_absorbed(&self) -> u64 {
        read(&self.retransmissions_absorbed)
    }

    pub fn retransmissions_sent(&self) -> u64 {
        read(&self.retransmissions_sent)
    }

    /// Every counter, named for a Prometheus text rendering (`ringside_` + name).
    pub fn samples(&self) -> Vec<CounterSample> {
        let mut samples = Vec::with_capacity(48);
        for method in MethodLabel::ALL {
            samples.push(CounterSample {
                name: "sip_requests_in_total",
                label: Some(("method", method.as_str())),
                value: self.requests_in(method),
            });
        }
        samples.push(CounterSample {
            name: "sip_responses_in_total",
            label: None,
            value: self.responses_in(),
        });
        for (index, class) in STATUS_CLASSES.iter().enumerate() {
            samples.push(CounterSample {
                name: "sip_responses_out_total",
                label: Some(("class", class)),
                value: read(&self.responses_out[index]),
            });
        }
        for reason in DropReason::ALL {
            samples.push(CounterSample {
                name: "sip_drops_total",
                label: Some(("reason", reason.as_str())),
                value: self.drops(reason),
            });
        }
        for (name, counter) in [
            ("sip_bans_total", &self.bans),
            ("sip_events_submitted_total", &self.events_submitted),
            (
                "sip_retransmissions_absorbed_total",
                &self.retransmissions_absorbed,
            ),
            ("sip_retransmissions_sent_total", &self.retransmissions_sent),
            (
                "sip_tcp_connections_accepted_total",
                &self.tcp_connections_accepted,
            ),
        ] {
            samples.push(CounterSample {
                name,
                label: None,
                value: read(counter),
            });
        }
        samples
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_reason_has_its_own_slot() {
        let counters = SipCounters::default();
        for (index, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), index);
            counters.count_drop(reason);
        }
        assert!(
            DropReason::ALL
                .iter()
                .all(|reason| counters.drops(*reason) == 1)
        );
        assert_eq!(counters.total_drops(), DropReason::ALL.len() as u64);
    }

    #[test]
    fn responses_are_counted_by_status_class() {
        let counters = SipCounters::default();
        for status in [100, 180, 487, 487, 302, 699] {
            counters.count_response_out(status);
        }
        assert_eq!(counters.responses_out(1), 2);
        assert_eq!(counters.responses_out(3), 1);
        assert_eq!(counters.responses_out(4), 2);
        assert_eq!(counters.responses_out(6), 1);
    }

    #[test]
    fn extension_methods_are_counted_as_other() {
        let counters = SipCounters::default();
        counters.count_request(&Method::Extension("FOO".into()));
        counters.count_request(&Method::Invite);
        assert_eq!(counters.requests_in(MethodLabel::Other), 1);
        assert_eq!(counters.requests_in(MethodLabel::Invite), 1);
        let samples = counters.samples();
        assert!(samples.iter().any(|s| s.name == "sip_requests_in_total"
            && s.label == Some(("method", "INVITE"))
            && s.value == 1));
    }
}
