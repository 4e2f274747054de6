//! Read-only views of the calls in progress, for `GET /api/v1/calls`, the wallboard and metrics.
//! They are copies: holding one never blocks the model, and nothing can change a call through one.

use serde::{Deserialize, Serialize};

use super::event::{AgentId, Direction, Party, Source};

/// Where a live call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Not answered yet and some agent's phone rings (or, outbound, the customer's phone rings).
    Ringing,
    /// Inbound, not answered yet, offered to a queue with no agent's phone known to ring: the caller
    /// is waiting in the queue.
    Queued,
    /// Someone picked up.
    Answered,
    /// Answered earlier, now ringing a transfer target.
    Transferring,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Queued => "queued",
            CallState::Answered => "answered",
            CallState::Transferring => "transferring",
        }
    }
}

/// One call in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCall {
    pub call_id: String,
    pub aliases: Vec<String>,
    pub sources: Vec<Source>,
    pub state: CallState,
    pub direction: Direction,
    pub caller: Option<Party>,
    pub dialed: Option<Party>,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub answered_by: Option<AgentId>,
    /// Agents whose phones ring for it now.
    pub ringing_agents: Vec<AgentId>,
    /// Queues it is offered to now (`None`: all ready agents).
    pub queues: Vec<Option<String>>,
}

/// How many live calls are in each state; the wallboard's headline and the metrics gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveCounts {
    pub ringing: usize,
    pub queued: usize,
    pub answered: usize,
    pub transferring: usize,
}

impl ActiveCounts {
    pub fn total(&self) -> usize {
        self.ringing + self.queued + self.answered + self.transferring
    }

    pub(super) fn count(&mut self, state: CallState) {
        match state {
            CallState::Ringing => self.ringing += 1,
            CallState::Queued => self.queued += 1,
            CallState::Answered => self.answered += 1,
            CallState::Transferring => self.transferring += 1,
        }
    }
}
