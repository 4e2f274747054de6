//! The screen pop: who is calling and what matters about them, as the JSON the console shows.
//!
//! Built with a fixed number of queries whatever the number of candidates (customers, their
//! phones and tags, history, open complaints, assets, calls today): one round, never N+1.

use chrono::{TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::call::{Direction, Party};
use crate::hints::hints;
use crate::matching::MatchResult;
use crate::settings::Settings;
use crate::storage::customers::Asset;
use crate::storage::interactions::{Complaint, Interaction};
use crate::storage::tasks::Task;
use crate::storage::{Result, Storage, now_ms};

fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn party_json(p: Option<&Party>) -> Value {
    match p {
        Some(p) => json!({"raw": p.raw, "e164": p.e164}),
        None => Value::Null,
    }
}

fn history_json(i: &Interaction) -> Value {
    json!({
        "id": i.id, "at": iso(i.started_at), "kind": i.kind, "direction": i.direction, "agent": i.agent,
        "outcome": i.outcome, "disposition": i.disposition, "note": i.note, "satisfaction": i.satisfaction,
    })
}

fn complaint_json(c: &Complaint) -> Value {
    json!({
        "id": c.id, "opened_at": iso(c.opened_at), "summary": c.summary, "owner": c.owner_name,
        "owner_id": c.owner, "status": c.status,
    })
}

fn task_json(t: &Task) -> Value {
    json!({
        "id": t.id, "kind": t.kind, "due_at": iso(t.not_before), "state": t.state, "reason": t.reason,
        "preferred_agent": t.preferred_agent_id, "merged_count": t.merged_count,
    })
}

/// Builds the `screen_pop` message (without `seq`, which the hub adds per agent).
pub async fn build(
    storage: &Storage,
    settings: &Settings,
    call_id: &str,
    direction: Direction,
    caller: Option<&Party>,
    dialed: Option<&Party>,
    matched: &MatchResult,
) -> Result<Map<String, Value>> {
    let ids = matched.customer_ids();
    // A contact created for this call has no history, complaints, assets or tasks to look up.
    let best_only: Vec<i64> = ids
        .first()
        .copied()
        .filter(|_| !matched.created)
        .into_iter()
        .collect();
    let limit = settings.matching.history_limit.clamp(1, 50);
    let tz: chrono_tz::Tz = matched
        .best()
        .and_then(|c| c.customer.timezone.as_deref())
        .and_then(|t| t.parse().ok())
        .or_else(|| settings.outbound.default_timezone.parse().ok())
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let local_now = Utc::now().with_timezone(&tz);
    let today = local_now.date_naive();
    let midnight = today
        .and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| now_ms() - 86_400_000);
    let number = matched.number.clone();
    let calls_today = async {
        match &number {
            Some(n) => storage.calls_from_number_since(n, midnight).await,
            None => Ok(0),
        }
    };
    let (history, complaints, assets, calls_today, tasks): (
        Vec<Interaction>,
        Vec<Complaint>,
        Vec<Asset>,
        i64,
        Vec<Task>,
    ) = tokio::try_join!(
        storage.recent_interactions(&best_only, limit),
        storage.complaints_of(&best_only, true),
        storage.assets_of(&best_only),
        calls_today,
        storage.open_tasks_of(&best_only),
    )?;
    let customer = match matched.best() {
        Some(best) => {
            let mut c = serde_json::to_value(&best.customer).unwrap_or(Value::Null);
            c["assets"] = serde_json::to_value(&assets).unwrap_or_default();
            c
        }
        None => Value::Null,
    };
    let hint_list = matched
        .best()
        .map(|best| {
            hints(
                &best.customer,
                &assets,
                &complaints,
                &history,
                calls_today,
                today,
            )
        })
        .unwrap_or_default();
    let candidates: Vec<Value> = matched
        .ranked
        .iter()
        .skip(1)
        .map(|c| json!({"customer": c.customer, "score": c.score, "reasons": c.reasons}))
        .collect();
    let body = json!({
        "type": "screen_pop",
        "call_id": call_id,
        "direction": direction.as_str(),
        "caller": party_json(caller),
        "dialed": party_json(dialed),
        "customer": customer,
        "candidates": candidates,
        "match": {
            "kind": matched.kind,
            "reasons": matched.best().map(|b| b.reasons.clone()).unwrap_or_default(),
            "created": matched.created,
        },
        "history": history.iter().map(history_json).collect::<Vec<_>>(),
        "open_complaints": complaints.iter().map(complaint_json).collect::<Vec<_>>(),
        "tasks": tasks.iter().map(task_json).collect::<Vec<_>>(),
        "hints": hint_list,
        "at": iso(now_ms()),
    });
    match body {
        Value::Object(map) => Ok(map),
        _ => Ok(Map::new()),
    }
}

/// A pop with no customer data (the database did not answer): the agent still sees who calls.
pub fn bare(
    call_id: &str,
    direction: Direction,
    caller: Option<&Party>,
    dialed: Option<&Party>,
    matched: &MatchResult,
) -> Map<String, Value> {
    let body = json!({
        "type": "screen_pop", "call_id": call_id, "direction": direction.as_str(),
        "caller": party_json(caller), "dialed": party_json(dialed), "customer": null, "candidates": [],
        "match": {"kind": matched.kind, "reasons": [], "created": false},
        "history": [], "open_complaints": [], "tasks": [], "hints": [], "at": iso(now_ms()),
    });
    match body {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
