//! What the call model asks the daemon to do. The model decides; the daemon carries out: the hub
//! sends pops and call updates to agent connections, storage keeps the ended call's record. Keeping
//! the decisions here, as plain values, is what lets the model be tested without a socket or a clock.

use serde::{Deserialize, Serialize};

use super::event::{AgentId, Audience, Direction, Party, Source};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    /// Send the screen pop for `call_id` to `audience`. Only members that do not hold a pop for this
    /// call are named, so the hub can send it as is. A `Queue` audience is resolved by the hub to
    /// its ready agents; the hub should skip agents that already hold a pop for this call (the model
    /// cannot know a queue's members).
    Pop {
        call_id: String,
        direction: Direction,
        caller: Option<Party>,
        dialed: Option<Party>,
        audience: Audience,
    },
    /// This agent's phone stopped ringing while the call goes on: take their pop away.
    Withdraw { call_id: String, agent: AgentId },
    /// The call was answered. The hub tells `by` "answered" and every other agent holding the pop
    /// "answered_elsewhere". `by: None` means someone we do not track answered: everyone holding the
    /// pop is told "answered_elsewhere". Also emitted just before `Ended` when a call ends as
    /// [`Outcome::AnsweredElsewhere`] without an answer having been announced, so pops are withdrawn.
    Answered {
        call_id: String,
        by: Option<AgentId>,
    },
    /// The call is over: tell agents still holding its pop "ended", and store the record.
    Ended { call: CallRecord },
}

impl Effect {
    /// The canonical id of the call this effect is about.
    pub fn call_id(&self) -> &str {
        match self {
            Effect::Pop { call_id, .. }
            | Effect::Withdraw { call_id, .. }
            | Effect::Answered { call_id, .. } => call_id,
            Effect::Ended { call } => &call.call_id,
        }
    }
}

/// How a call ended. `Missed` and `Abandoned` are the ones that call for a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An agent we know answered (inbound), or the customer answered (outbound).
    Answered,
    /// Inbound: nobody answered and the caller hung up while it rang.
    Missed,
    /// The caller gave up while waiting in a queue.
    Abandoned,
    /// Inbound: answered by someone we do not track, or another branch of a SIP fork answered
    /// (CANCEL with `Reason: SIP;cause=200`).
    AnsweredElsewhere,
    /// Outbound: the customer's line was busy or the customer declined the call.
    Busy,
    /// Outbound: the customer's phone rang out.
    NoAnswer,
    /// Outbound: the call could not be placed (bad number, congestion, unreachable network).
    Failed,
    /// We only ever heard that the call ended, so nothing can be said about it.
    Unknown,
    /// No news came for too long; presumed over (a source lost the hangup).
    Stale,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Missed => "missed",
            Outcome::Abandoned => "abandoned",
            Outcome::AnsweredElsewhere => "answered_elsewhere",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
            Outcome::Stale => "stale",
        }
    }

    /// Whether a customer was left without an answer and should be called back.
    pub fn wants_callback(self) -> bool {
        matches!(self, Outcome::Missed | Outcome::Abandoned)
    }
}

/// The summary of an ended call, for storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The canonical id: the first id the call was reported under.
    pub call_id: String,
    /// Every other id the call was reported under (by other sources), in the order they came.
    pub aliases: Vec<String>,
    /// The sources that reported the call, in the order they came.
    pub sources: Vec<Source>,
    pub direction: Direction,
    pub caller: Option<Party>,
    pub dialed: Option<Party>,
    /// The earliest event time heard for the call.
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    /// The time of the event that ended the call; for a [`Outcome::Stale`] call, its last news.
    pub ended_at_ms: i64,
    /// The last agent known to have answered (after a transfer, the one who took it over).
    pub answered_by: Option<AgentId>,
    /// Agents whose phones rang for the call, in the order they rang.
    pub agents_rung: Vec<AgentId>,
    /// Queues the call was offered to (`None`: all ready agents), in order.
    pub queues: Vec<Option<String>>,
    pub outcome: Outcome,
    pub hangup_cause: Option<String>,
    /// Where the call was transferred to, in the order of the transfers.
    pub transferred_to: Vec<Audience>,
}

impl CallRecord {
    /// The customer's side of the call, as [`super::CallEvent::remote_party`].
    pub fn remote_party(&self) -> Option<&Party> {
        match self.direction {
            Direction::Inbound => self.caller.as_ref(),
            Direction::Outbound => self.dialed.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn effects_serialize_with_a_tag_and_snake_case_names() {
        let effect = Effect::Answered {
            call_id: "c1".into(),
            by: Some(AgentId(7)),
        };
        assert_eq!(
            serde_json::to_value(&effect).unwrap(),
            json!({"effect": "answered", "call_id": "c1", "by": 7})
        );
        let pop = Effect::Pop {
            call_id: "c1".into(),
            direction: Direction::Inbound,
            caller: Some(Party::new("13800138000", None)),
            dialed: None,
            audience: Audience::Queue(Some("sales".into())),
        };
        let value = serde_json::to_value(&pop).unwrap();
        assert_eq!(value["direction"], "inbound");
        assert_eq!(value["audience"], json!({"queue": "sales"}));
        let back: Effect = serde_json::from_value(value).unwrap();
        assert_eq!(back, pop);
        assert_eq!(
            serde_json::to_value(Outcome::AnsweredElsewhere).unwrap(),
            "answered_elsewhere"
        );
    }
}
