//! The dialer interface: how the outbound engine asks a phone system to place a call and learns
//! how it went. Implemented by the Asterisk AMI client (`Originate`), the FreeSWITCH event socket
//! client (`bgapi originate`) and the simulated dialer for demos and sites without a PBX.

use futures_util::future::BoxFuture;
use serde::Serialize;

/// One call to place: the customer's number, and the agent's extension to connect it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    pub task_id: i64,
    /// The attempt row written before dialing; PBX variables carry it so events can be tied back.
    pub attempt_id: i64,
    /// The task's fencing token for this attempt.
    pub fence: i64,
    pub number_e164: String,
    /// The agent's phone to ring first (preview/progressive); `None` for unattended calls.
    pub agent_extension: Option<String>,
    pub caller_id: Option<String>,
    pub ring_timeout_secs: u32,
}

/// How a placed call went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum DialOutcome {
    /// The customer answered (and, with an agent, was connected).
    Answered,
    Busy,
    NoAnswer,
    /// The call could not be placed; `cause` as the PBX gave it.
    Failed {
        cause: String,
    },
    /// The PBX gave no usable answer (connection lost mid-call): never redial blindly.
    Unknown,
}

impl DialOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            DialOutcome::Answered => "answered",
            DialOutcome::Busy => "busy",
            DialOutcome::NoAnswer => "no_answer",
            DialOutcome::Failed { .. } => "failed",
            DialOutcome::Unknown => "unknown",
        }
    }
}

/// Something that can place calls.
pub trait Dialer: Send + Sync {
    /// A short name for logs and metrics (`ami:pbx1`, `esl:fs1`, `simulated`).
    fn name(&self) -> String;
    /// Places the call and resolves when its outcome is known (or `Unknown`).
    fn place(&self, request: DialRequest) -> BoxFuture<'static, DialOutcome>;

    /// Whether calls can be placed now (a PBX client is connected and logged in). The engine
    /// claims no task while its dialer is not ready.
    fn ready(&self) -> bool {
        true
    }
}
