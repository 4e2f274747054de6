//! The call events that every ingress (SIP, Asterisk AMI, FreeSWITCH ESL, the HTTP webhook, the
//! simulator) turns its own protocol into. They are the only input of the call model, so they carry
//! everything it needs: where the news came from, the call's id *in that source*, the time it happened
//! (unix milliseconds, stamped by the ingress: the model never reads a clock) and what happened.

use serde::{Deserialize, Serialize};

/// Who reported an event. The same call may be reported by several sources under different ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Webhook,
    Sip,
    Ami,
    Esl,
    Simulator,
}

impl Source {
    /// Whether this source sees the whole call, so that its hangup ends the call. SIP in monitor mode
    /// sees only ringside's own branch of a forked INVITE: its CANCEL ends that branch, not the call.
    pub fn reports_whole_call(self) -> bool {
        !matches!(self, Source::Sip)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Sip => "sip",
            Source::Ami => "ami",
            Source::Esl => "esl",
            Source::Simulator => "simulator",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A customer calls in; the remote party is the caller.
    Inbound,
    /// An agent or the dialer calls out; the remote party is the dialed number.
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// An agent, already resolved by the ingress from an agent name or an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentId(pub i64);

/// One end of a call: the number exactly as the source gave it, and its E.164 form when the ingress
/// could normalize it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Party {
    pub raw: String,
    pub e164: Option<String>,
}

impl Party {
    pub fn new(raw: impl Into<String>, e164: Option<String>) -> Self {
        Party {
            raw: raw.into(),
            e164,
        }
    }

    fn normalized(&self) -> Option<&str> {
        self.e164
            .as_deref()
            .map(str::trim)
            .filter(|e164| !e164.is_empty())
    }

    /// The digit strings this party can be recognised by: its raw form and its E.164 form, each
    /// stripped to digits so that "138-0013-8000" and "13800138000" agree. Withheld numbers
    /// ("anonymous", "") have none, so they never match anything.
    pub(super) fn digit_forms(&self) -> Vec<String> {
        let mut forms: Vec<String> = Vec::with_capacity(2);
        for text in [Some(self.raw.as_str()), self.normalized()]
            .into_iter()
            .flatten()
        {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            if !digits.is_empty() && !forms.contains(&digits) {
                forms.push(digits);
            }
        }
        forms
    }

    /// Whether two reports name the same telephone number. When both sides were normalized the
    /// E.164 forms decide; otherwise any shared digit form does.
    pub(super) fn is_same_number(&self, other: &Party) -> bool {
        if let (Some(mine), Some(theirs)) = (self.normalized(), other.normalized()) {
            return mine == theirs;
        }
        let theirs = other.digit_forms();
        self.digit_forms().iter().any(|form| theirs.contains(form))
    }

    /// Like [`Party::is_same_number`], but a destination may also be a name without digits (a queue,
    /// a SIP user), which then must be spelled alike.
    pub(super) fn is_same_destination(&self, other: &Party) -> bool {
        let (mine, theirs) = (self.digit_forms(), other.digit_forms());
        if mine.is_empty() && theirs.is_empty() {
            return self.raw.trim().eq_ignore_ascii_case(other.raw.trim());
        }
        self.is_same_number(other)
    }
}

/// Whose phones ring.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// These agents' phones ring.
    Agents(Vec<AgentId>),
    /// The call waits in this queue; `None` means all ready agents (no queues configured, or the
    /// source named none). The daemon resolves a queue to its ready agents.
    Queue(Option<String>),
}

/// One thing an audience is made of, the unit a pop is sent to at most once at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Member {
    Agent(AgentId),
    Queue(Option<String>),
}

impl Audience {
    /// The distinct members, in the order the source named them.
    pub(super) fn members(&self) -> Vec<Member> {
        match self {
            Audience::Agents(agents) => {
                let mut members: Vec<Member> = Vec::with_capacity(agents.len());
                for agent in agents {
                    let member = Member::Agent(*agent);
                    if !members.contains(&member) {
                        members.push(member);
                    }
                }
                members
            }
            Audience::Queue(queue) => vec![Member::Queue(queue.clone())],
        }
    }
}

/// One piece of news about one call, as reported by one source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallEvent {
    pub source: Source,
    /// The call's id in that source (SIP Call-ID, AMI Linkedid, ESL call UUID, webhook call id).
    pub call_id: String,
    /// When it happened, unix milliseconds.
    pub at_ms: i64,
    pub direction: Direction,
    pub caller: Option<Party>,
    pub dialed: Option<Party>,
    pub kind: EventKind,
}

impl CallEvent {
    /// The customer's side of the call: the caller of an inbound call, the dialed party of an
    /// outbound one.
    pub fn remote_party(&self) -> Option<&Party> {
        match self.direction {
            Direction::Inbound => self.caller.as_ref(),
            Direction::Outbound => self.dialed.as_ref(),
        }
    }

    /// Our side of the call: the number dialed by an inbound caller, the caller id of an outbound call.
    pub fn local_party(&self) -> Option<&Party> {
        match self.direction {
            Direction::Inbound => self.dialed.as_ref(),
            Direction::Outbound => self.caller.as_ref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum EventKind {
    /// Phones ring for this audience. May repeat, adding agents (a ring-all queue rings agent 1,
    /// then agent 2). For outbound calls: the customer's phone rings, the audience is the agent
    /// who placed the call.
    Ringing { audience: Audience },
    /// This agent's phone stopped ringing (ring timeout), but the call goes on.
    RingStopped { agent: AgentId },
    /// Someone picked up: an agent we know, or someone we do not (`None`). For outbound calls:
    /// the customer picked up.
    Answered { by: Option<AgentId> },
    /// The call was sent on to a new audience.
    Transferred { to: Audience },
    /// The source's leg of the call is over. `answered_elsewhere` is a SIP CANCEL carrying
    /// `Reason: SIP;cause=200`: another branch of the fork answered.
    Hangup {
        cause: Option<String>,
        answered_elsewhere: bool,
    },
    /// The caller gave up while waiting in a queue.
    Abandoned,
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Ringing { .. } => "ringing",
            EventKind::RingStopped { .. } => "ring_stopped",
            EventKind::Answered { .. } => "answered",
            EventKind::Transferred { .. } => "transferred",
            EventKind::Hangup { .. } => "hangup",
            EventKind::Abandoned => "abandoned",
        }
    }

    /// Whether this event marks the start of a call (ringing), as opposed to news from later in
    /// its life, which the merge rule matches differently.
    pub(super) fn starts_call(&self) -> bool {
        matches!(self, EventKind::Ringing { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(raw: &str, e164: Option<&str>) -> Party {
        Party::new(raw, e164.map(str::to_owned))
    }

    #[test]
    fn normalized_numbers_decide_when_both_sides_have_them() {
        let a = party("013800138000", Some("+8613800138000"));
        let b = party("+86 138 0013 8000", Some("+8613800138000"));
        let c = party("013800138000", Some("+8613800138001"));
        assert!(a.is_same_number(&b));
        assert!(
            !a.is_same_number(&c),
            "equal raw forms must not override different E.164 forms"
        );
    }

    #[test]
    fn raw_digits_match_when_a_side_was_not_normalized() {
        let normalized = party("13800138000", Some("+8613800138000"));
        assert!(normalized.is_same_number(&party("138-0013-8000", None)));
        assert!(normalized.is_same_number(&party("+8613800138000", None)));
        assert!(!normalized.is_same_number(&party("13800138001", None)));
    }

    #[test]
    fn withheld_numbers_never_match() {
        let anonymous = party("anonymous", None);
        assert!(!anonymous.is_same_number(&party("anonymous", None)));
        assert!(!party("", None).is_same_number(&party("", None)));
    }

    #[test]
    fn destinations_without_digits_match_by_name() {
        assert!(party("Sales", None).is_same_destination(&party("sales", None)));
        assert!(!party("sales", None).is_same_destination(&party("support", None)));
        assert!(!party("sales", None).is_same_destination(&party("600", None)));
        assert!(party("600", None).is_same_destination(&party("600", None)));
    }

    #[test]
    fn audience_members_are_distinct_and_keep_their_order() {
        let audience = Audience::Agents(vec![AgentId(2), AgentId(1), AgentId(2)]);
        assert_eq!(
            audience.members(),
            vec![Member::Agent(AgentId(2)), Member::Agent(AgentId(1))]
        );
    }

    #[test]
    fn events_round_trip_through_json_with_an_event_tag() {
        let event = CallEvent {
            source: Source::Webhook,
            call_id: "c1".into(),
            at_ms: 1_700_000_000_000,
            direction: Direction::Inbound,
            caller: Some(party("13800138000", Some("+8613800138000"))),
            dialed: None,
            kind: EventKind::Hangup {
                cause: Some("busy".into()),
                answered_elsewhere: false,
            },
        };
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["kind"]["event"], "hangup");
        assert_eq!(value["source"], "webhook");
        assert_eq!(serde_json::from_value::<CallEvent>(value).unwrap(), event);
    }

    #[test]
    fn remote_party_is_the_customer_side() {
        let mut event = CallEvent {
            source: Source::Ami,
            call_id: "1".into(),
            at_ms: 0,
            direction: Direction::Inbound,
            caller: Some(party("111", None)),
            dialed: Some(party("222", None)),
            kind: EventKind::Abandoned,
        };
        assert_eq!(event.remote_party().map(|p| p.raw.as_str()), Some("111"));
        event.direction = Direction::Outbound;
        assert_eq!(event.remote_party().map(|p| p.raw.as_str()), Some("222"));
        assert_eq!(event.local_party().map(|p| p.raw.as_str()), Some("111"));
    }
}
