//! The JSON messages of the agent WebSocket (server → agent), in one place so their shapes can be
//! read against the contract.

use std::sync::Arc;

use serde_json::{Value, json};

/// `{"type":"call_update","call_id","state","by","outcome"}`.
pub fn call_update(
    call_id: &str,
    state: &str,
    by: Option<&str>,
    outcome: Option<&str>,
) -> Arc<str> {
    let mut v = json!({"type": "call_update", "call_id": call_id, "state": state});
    if let Some(by) = by {
        v["by"] = json!(by);
    }
    if let Some(outcome) = outcome {
        v["outcome"] = json!(outcome);
    }
    v.to_string().into()
}

/// The agent's phone stopped ringing while the call goes on.
pub fn pop_withdrawn(call_id: &str) -> Arc<str> {
    json!({"type": "pop_withdrawn", "call_id": call_id})
        .to_string()
        .into()
}

pub fn error(code: &str, message: &str) -> Value {
    json!({"type": "error", "code": code, "message": message})
}

pub fn saved(call_id: &str, interaction_id: i64) -> Value {
    json!({"type": "saved", "call_id": call_id, "interaction_id": interaction_id})
}

pub fn status(state: &str) -> Value {
    json!({"type": "status", "state": state})
}

/// An error about one task, shown on its card.
pub fn task_error(task_id: i64, code: &str, message: &str) -> Value {
    json!({"type": "error", "code": code, "message": message, "ref": task_id, "task_id": task_id})
}
