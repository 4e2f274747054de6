//! Where outbound tasks come from. Each generator gives its tasks an idempotency key, so running
//! it twice (a restart, an hourly scan, two processes) never creates the same call twice:
//! `callback:{customer}` while one is open (further misses are merged into it),
//! `maintenance:{asset}:{due date}`, `return_visit:{customer}:{period}`, `birthday:{customer}:{year}`,
//! `complaint:{id}:return_visit` and `complaint:{id}:survey`, `campaign:{id}:{customer}`.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::directory::Directory;
use crate::settings::Settings;
use crate::storage::customers::Customer;
use crate::storage::interactions::Complaint;
use crate::storage::tasks::{NewTask, Task};
use crate::storage::{Result, Storage, now_ms};

fn hours(h: i64) -> i64 {
    h * 3_600_000
}

/// A missed or abandoned inbound call: one open callback per customer, further misses merged in
/// (the call recorder creates it with its idempotency key and bumps the open one's count).
/// The callback keeps the place its caller had: it is ordered by the time of the first missed call.
pub fn missed_call(
    settings: &Settings,
    directory: &Directory,
    customer: &Customer,
    number_e164: &str,
    called_at: i64,
) -> NewTask {
    let preferred = customer
        .account_manager
        .as_deref()
        .and_then(|m| directory.id_by_name(m));
    let now = now_ms();
    NewTask {
        kind: MISSED_CALL_CALLBACK.into(),
        customer_id: Some(customer.id),
        number_e164: number_e164.to_string(),
        not_before: now,
        deadline: Some(now + hours(settings.outbound.callback_deadline_hours)),
        priority: super::priority(
            MISSED_CALL_CALLBACK,
            Some(&customer.tier),
            customer.key_account,
        ),
        preferred_agent_id: preferred,
        pool_after: preferred.map(|_| now + settings.outbound.preferred_agent_wait_secs * 1000),
        max_attempts: settings.outbound.max_attempts,
        reason: Some("missed call".into()),
        idempotency_key: Some(format!("callback:{}", customer.id)),
        created_at: Some(called_at),
        ..Default::default()
    }
}

/// The kind of the task a missed call leaves.
pub const MISSED_CALL_CALLBACK: &str = "missed_call_callback";
/// The outcome of a missed-call callback that is no longer owed because the customer got through.
pub const CUSTOMER_GOT_THROUGH: &str = "customer_got_through";

/// A callback the customer asked for, at `at` (one open request per customer).
pub async fn requested_callback(
    storage: &Storage,
    settings: &Settings,
    customer_id: i64,
    number_e164: &str,
    at: i64,
    agent_id: Option<i64>,
    note: Option<&str>,
) -> Result<(Task, bool)> {
    let customer = storage.customer(customer_id).await?;
    storage
        .create_task(&NewTask {
            kind: "requested_callback".into(),
            customer_id: Some(customer_id),
            number_e164: number_e164.to_string(),
            not_before: at,
            deadline: Some(at + hours(settings.outbound.callback_deadline_hours)),
            priority: super::priority(
                "requested_callback",
                Some(&customer.tier),
                customer.key_account,
            ),
            preferred_agent_id: agent_id,
            pool_after: agent_id.map(|_| at + settings.outbound.preferred_agent_wait_secs * 1000),
            max_attempts: settings.outbound.max_attempts,
            reason: Some(
                note.map(|n| format!("requested: {n}"))
                    .unwrap_or_else(|| "requested by the customer".into()),
            ),
            idempotency_key: Some(format!("callback:{customer_id}:requested")),
            ..Default::default()
        })
        .await
}

/// Closing a complaint: "whoever is responsible makes the return call" — a return visit by its
/// owner, and a satisfaction survey a day later.
pub async fn complaint_closed(
    storage: &Storage,
    settings: &Settings,
    complaint: &Complaint,
) -> Result<Vec<Task>> {
    let customer = storage.customer(complaint.customer_id).await?;
    let Some(number) = storage.primary_number(customer.id).await? else {
        return Ok(Vec::new());
    };
    let now = now_ms();
    let mut out = Vec::new();
    for (kind, delay, key) in [
        (
            "return_visit",
            0,
            format!("complaint:{}:return_visit", complaint.id),
        ),
        (
            "satisfaction_survey",
            hours(24),
            format!("complaint:{}:survey", complaint.id),
        ),
    ] {
        let (task, _) = storage
            .create_task(&NewTask {
                kind: kind.into(),
                customer_id: Some(customer.id),
                number_e164: number.clone(),
                not_before: now + delay,
                deadline: Some(now + delay + hours(24 * 14)),
                priority: super::priority(kind, Some(&customer.tier), customer.key_account),
                preferred_agent_id: complaint.owner,
                pool_after: complaint
                    .owner
                    .map(|_| now + delay + settings.outbound.preferred_agent_wait_secs * 1000),
                max_attempts: settings.outbound.max_attempts,
                reason: Some(format!(
                    "complaint closed: {}",
                    complaint.summary.chars().take(80).collect::<String>()
                )),
                idempotency_key: Some(key),
                ..Default::default()
            })
            .await?;
        out.push(task);
    }
    Ok(out)
}

/// What a scan created.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ScanReport {
    pub maintenance_reminders: u64,
    pub return_visits: u64,
    pub birthday_calls: u64,
}

/// The periodic scan: maintenance reminders for assets due within the lead time, return visits
/// by tier policy, birthday care calls. Safe to run any number of times.
pub async fn scan(
    storage: &Storage,
    settings: &Settings,
    directory: &Directory,
    today: NaiveDate,
) -> Result<ScanReport> {
    let mut report = ScanReport::default();
    let now = now_ms();
    let o = &settings.outbound;
    let due_before = (today + Duration::days(o.maintenance_lead_days))
        .format("%Y-%m-%d")
        .to_string();
    for (asset_id, customer_id, due) in storage.assets_due(&due_before).await? {
        let Ok(customer) = storage.customer(customer_id).await else {
            continue;
        };
        if !customer.consent_calls {
            continue;
        }
        let Some(number) = storage.primary_number(customer_id).await? else {
            continue;
        };
        let preferred = customer
            .account_manager
            .as_deref()
            .and_then(|m| directory.id_by_name(m));
        let deadline = NaiveDate::parse_from_str(&due, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(23, 59, 0))
            .map(|d| Utc.from_utc_datetime(&d).timestamp_millis())
            .filter(|d| *d > now)
            .unwrap_or(now + hours(24 * 7));
        let (_, created) = storage
            .create_task(&NewTask {
                kind: "maintenance_reminder".into(),
                customer_id: Some(customer_id),
                number_e164: number,
                not_before: now,
                deadline: Some(deadline),
                priority: super::priority(
                    "maintenance_reminder",
                    Some(&customer.tier),
                    customer.key_account,
                ),
                preferred_agent_id: preferred,
                pool_after: preferred.map(|_| now + o.preferred_agent_wait_secs * 1000),
                max_attempts: o.max_attempts,
                reason: Some(format!("vehicle service due {due}")),
                idempotency_key: Some(format!("maintenance:{asset_id}:{due}")),
                ..Default::default()
            })
            .await?;
        report.maintenance_reminders += created as u64;
    }

    let tiers: Vec<String> = o.return_visits.iter().map(|t| t.tier.clone()).collect();
    for (customer_id, tier, _, manager, _) in storage.customers_for_care(&tiers).await? {
        let Some(policy) = o
            .return_visits
            .iter()
            .find(|t| t.tier == tier)
            .filter(|t| t.months > 0)
        else {
            continue;
        };
        let period = today.month0() / policy.months.min(12);
        let Some(number) = storage.primary_number(customer_id).await? else {
            continue;
        };
        let preferred = manager.as_deref().and_then(|m| directory.id_by_name(m));
        let (_, created) = storage
            .create_task(&NewTask {
                kind: "return_visit".into(),
                customer_id: Some(customer_id),
                number_e164: number,
                not_before: now,
                deadline: Some(now + hours(24 * 30 * i64::from(policy.months.min(12)))),
                priority: super::priority("return_visit", Some(&tier), false),
                preferred_agent_id: preferred,
                pool_after: preferred.map(|_| now + o.preferred_agent_wait_secs * 1000),
                max_attempts: o.max_attempts,
                reason: Some(format!(
                    "tier {tier} return visit (every {} months)",
                    policy.months
                )),
                idempotency_key: Some(format!(
                    "return_visit:{customer_id}:{}-{period}",
                    today.year()
                )),
                ..Default::default()
            })
            .await?;
        report.return_visits += created as u64;
    }

    for (customer_id, tier, birthday, manager, tz) in
        storage.customers_for_care(&o.birthday_tiers).await?
    {
        let Some(birthday) = birthday else { continue };
        let Some((month, day)) = birthday_month_day(&birthday) else {
            continue;
        };
        let tz: chrono_tz::Tz = tz
            .as_deref()
            .and_then(|t| t.parse().ok())
            .or_else(|| o.default_timezone.parse().ok())
            .unwrap_or(chrono_tz::Asia::Shanghai);
        let local_today = Utc::now().with_timezone(&tz).date_naive();
        let Some(this_year) = NaiveDate::from_ymd_opt(local_today.year(), month, day)
            .or_else(|| NaiveDate::from_ymd_opt(local_today.year(), 3, 1))
        else {
            continue;
        };
        let days = (this_year - local_today).num_days();
        if !(0..=1).contains(&days) {
            continue;
        }
        let Some(number) = storage.primary_number(customer_id).await? else {
            continue;
        };
        let start = this_year
            .and_hms_opt(10, 0, 0)
            .and_then(|t| tz.from_local_datetime(&t).earliest())
            .map(|t| t.timestamp_millis())
            .unwrap_or(now)
            .max(now);
        let preferred = manager.as_deref().and_then(|m| directory.id_by_name(m));
        let (_, created) = storage
            .create_task(&NewTask {
                kind: "care_call".into(),
                customer_id: Some(customer_id),
                number_e164: number,
                not_before: start,
                deadline: Some(start + hours(12)),
                priority: super::priority("care_call", Some(&tier), false),
                preferred_agent_id: preferred,
                pool_after: preferred.map(|_| start + hours(2)),
                max_attempts: 2,
                reason: Some("birthday greeting".into()),
                idempotency_key: Some(format!("birthday:{customer_id}:{}", this_year.year())),
                ..Default::default()
            })
            .await?;
        report.birthday_calls += created as u64;
    }
    Ok(report)
}

fn birthday_month_day(birthday: &str) -> Option<(u32, u32)> {
    let d = NaiveDate::parse_from_str(birthday, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(
                &format!("2000-{}", birthday.trim_start_matches("--")),
                "%Y-%m-%d",
            )
            .ok()
        })?;
    Some((d.month(), d.day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdays_with_and_without_year_are_read() {
        assert_eq!(birthday_month_day("1980-11-23"), Some((11, 23)));
        assert_eq!(birthday_month_day("--02-29"), Some((2, 29)));
        assert_eq!(birthday_month_day("junk"), None);
    }
}
