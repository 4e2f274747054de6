//! Outbound calls a call centre owes: a durable task queue (callbacks, maintenance reminders,
//! return visits, surveys, care calls, campaigns), the generators that fill it, and the engine
//! that offers tasks to agents and dials them through the PBX only when the rules allow.
//!
//! - `policy`: the rules, pure (calling window in the customer's zone, DNC, consent, caps).
//! - `generators`: missed call → callback, complaint closed → return visit + survey, daily scans.
//! - `engine`: claims due tasks, offers (preview) or dials (progressive), follows outcomes.
//! - `dialer`: the interface dialers implement; `simulated`: the demo dialer.

pub mod dialer;
pub mod engine;
pub mod generators;
pub mod policy;
pub mod simulated;

/// The kinds of task.
pub const KINDS: &[&str] = &[
    "missed_call_callback",
    "requested_callback",
    "maintenance_reminder",
    "return_visit",
    "satisfaction_survey",
    "care_call",
    "campaign",
];

/// Base priority by kind; tier and key account add to it (VIPs first), age orders within.
pub fn priority(kind: &str, tier: Option<&str>, key_account: bool) -> i64 {
    let base = match kind {
        "requested_callback" => 70,
        "missed_call_callback" => 60,
        "return_visit" => 40,
        "maintenance_reminder" => 35,
        "satisfaction_survey" => 30,
        "care_call" => 20,
        _ => 10,
    };
    let tier_bonus = match tier {
        Some("A") => 30,
        Some("B") => 15,
        _ => 0,
    };
    base + tier_bonus + if key_account { 20 } else { 0 }
}
