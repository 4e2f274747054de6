//! The call model: a pure state machine that turns call events from any source (SIP, Asterisk AMI,
//! FreeSWITCH ESL, the HTTP webhook, the simulator) into the effects the daemon must carry out
//! (screen pops to send, pops to withdraw, answers to announce, ended calls to store).
//!
//! It does no I/O, spawns nothing and never reads a clock: time comes in on every event and on
//! `tick`. It depends on nothing else in the crate, so ingresses can be tested by what they feed it
//! and the hub by what it gives back.
//!
//! - `event`: the input, [`CallEvent`].
//! - `effect`: the output, [`Effect`] and the [`CallRecord`] of an ended call.
//! - `model`: [`CallModel`], which finds the call an event is about, merges sources and keeps
//!   tombstones; `tracked`: one live call's transitions; `merge`: when two ids are one call.
//! - `snapshot`: read-only views of live calls for the API and the wallboard.
//! - `cause`: reading hangup causes.

mod cause;
mod effect;
mod event;
mod merge;
mod model;
mod snapshot;
mod tracked;

#[cfg(test)]
mod invariant_tests;

pub use cause::{CauseClass, classify_hangup_cause};
pub use effect::{CallRecord, Effect, Outcome};
pub use event::{AgentId, Audience, CallEvent, Direction, EventKind, Party, Source};
pub use model::{CallModel, CallModelConfig, EventError, MAX_CALL_ID_BYTES};
pub use snapshot::{ActiveCounts, CallState, LiveCall};
