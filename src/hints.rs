//! Hints: the short facts a pop leads with, computed for this moment (birthday today, service due,
//! complaint open, VIP, last score, last call unresolved, called again today). Pure: everything
//! comes in as arguments, including "today" in the customer's time zone.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::storage::customers::{Asset, Customer};
use crate::storage::interactions::{Complaint, Interaction};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    pub code: &'static str,
    pub text: String,
    /// `vip`, `warn` or `info`: how the console colours it.
    pub severity: &'static str,
}

fn hint(code: &'static str, severity: &'static str, text: String) -> Hint {
    Hint {
        code,
        text,
        severity,
    }
}

/// Days from `today` to the next occurrence of a birthday (0 = today); 29 February counts as 1 March in other years.
fn days_to_birthday(birthday: &str, today: NaiveDate) -> Option<i64> {
    let b = NaiveDate::parse_from_str(birthday, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(
                &format!("2000-{}", birthday.trim_start_matches("--")),
                "%Y-%m-%d",
            )
            .ok()
        })?;
    let this_year = |y: i32| {
        NaiveDate::from_ymd_opt(y, b.month(), b.day()).or_else(|| NaiveDate::from_ymd_opt(y, 3, 1))
    };
    let mut next = this_year(today.year())?;
    if next < today {
        next = this_year(today.year() + 1)?;
    }
    Some((next - today).num_days())
}

/// Everything the pop should lead with, most important first.
pub fn hints(
    customer: &Customer,
    assets: &[Asset],
    open_complaints: &[Complaint],
    history: &[Interaction],
    calls_today: i64,
    today: NaiveDate,
) -> Vec<Hint> {
    let mut out = Vec::new();
    if customer.key_account {
        out.push(hint("key_account", "vip", "Key account".into()));
    }
    if customer.tier == "A" {
        out.push(hint("vip", "vip", "Tier A customer".into()));
    }
    if let Some(days) = customer
        .birthday
        .as_deref()
        .and_then(|b| days_to_birthday(b, today))
    {
        match days {
            0 => out.push(hint("birthday_today", "info", "Birthday today".into())),
            1..=6 => out.push(hint(
                "birthday_this_week",
                "info",
                format!("Birthday in {days} day{}", if days == 1 { "" } else { "s" }),
            )),
            _ => {}
        }
    }
    for c in open_complaints {
        let owner = c
            .owner_name
            .as_deref()
            .map(|o| format!(" (owner {o})"))
            .unwrap_or_default();
        out.push(hint(
            "complaint_open",
            "warn",
            format!("Open complaint: {}{owner}", truncate(&c.summary, 60)),
        ));
    }
    for a in assets {
        let Some(due) = a
            .next_service_due
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        else {
            continue;
        };
        let what = a
            .plate
            .clone()
            .or_else(|| a.model.clone())
            .unwrap_or_else(|| "vehicle".into());
        let days = (due - today).num_days();
        if days < 0 {
            out.push(hint(
                "service_overdue",
                "warn",
                format!("Service overdue for {what} since {due}"),
            ));
        } else if days <= 30 {
            out.push(hint(
                "service_due",
                "info",
                format!("Service due for {what} on {due}"),
            ));
        }
    }
    if let Some(score) = history.iter().find_map(|i| i.satisfaction) {
        out.push(hint(
            "last_satisfaction",
            if score <= 2 { "warn" } else { "info" },
            format!("Last satisfaction score {score}/5"),
        ));
    }
    if let Some(last) = history.iter().find(|i| i.kind == "call") {
        let unresolved = matches!(
            last.disposition.as_deref(),
            Some("unresolved" | "callback_requested")
        ) || matches!(last.outcome.as_deref(), Some("missed" | "abandoned"));
        if unresolved {
            out.push(hint(
                "last_call_unresolved",
                "warn",
                "Last call was not resolved".into(),
            ));
        }
    }
    if calls_today >= 1 {
        out.push(hint(
            "called_today",
            if calls_today >= 2 { "warn" } else { "info" },
            format!(
                "Called {} time{} today before",
                calls_today,
                if calls_today == 1 { "" } else { "s" }
            ),
        ));
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Customer {
        Customer {
            id: 1,
            external_id: None,
            name: "x".into(),
            tier: "C".into(),
            key_account: false,
            account_manager: None,
            birthday: None,
            timezone: None,
            language: None,
            consent_calls: true,
            notes: None,
            email: None,
            provisional: false,
            tags: vec![],
            phones: vec![],
            created_at: 0,
            updated_at: 0,
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn codes(h: &[Hint]) -> Vec<&str> {
        h.iter().map(|h| h.code).collect()
    }

    #[test]
    fn birthday_today_and_this_week() {
        let mut c = customer();
        c.birthday = Some("1980-11-23".into());
        assert_eq!(
            codes(&hints(&c, &[], &[], &[], 0, day("2026-11-23"))),
            vec!["birthday_today"]
        );
        assert_eq!(
            codes(&hints(&c, &[], &[], &[], 0, day("2026-11-20"))),
            vec!["birthday_this_week"]
        );
        assert!(hints(&c, &[], &[], &[], 0, day("2026-11-24")).is_empty());
        c.birthday = Some("1980-01-02".into());
        assert_eq!(
            codes(&hints(&c, &[], &[], &[], 0, day("2026-12-30"))),
            vec!["birthday_this_week"],
            "across new year"
        );
        c.birthday = Some("1980-02-29".into());
        assert_eq!(
            codes(&hints(&c, &[], &[], &[], 0, day("2027-03-01"))),
            vec!["birthday_today"],
            "leap-day birthday"
        );
    }

    #[test]
    fn service_due_and_overdue() {
        let asset = |due: &str| Asset {
            id: 1,
            customer_id: 1,
            kind: "vehicle".into(),
            plate: Some("沪A1".into()),
            vin: None,
            model: None,
            purchase_date: None,
            last_service_date: None,
            service_interval_months: None,
            service_interval_km: None,
            mileage_km: None,
            next_service_due: Some(due.into()),
        };
        let today = day("2026-11-23");
        assert_eq!(
            codes(&hints(
                &customer(),
                &[asset("2026-12-01")],
                &[],
                &[],
                0,
                today
            )),
            vec!["service_due"]
        );
        assert_eq!(
            codes(&hints(
                &customer(),
                &[asset("2026-11-01")],
                &[],
                &[],
                0,
                today
            )),
            vec!["service_overdue"]
        );
        assert!(hints(&customer(), &[asset("2027-06-01")], &[], &[], 0, today).is_empty());
    }

    #[test]
    fn vip_complaint_unresolved_and_repeat_calls() {
        let mut c = customer();
        c.tier = "A".into();
        c.key_account = true;
        let complaint = Complaint {
            id: 1,
            customer_id: 1,
            summary: "late".into(),
            opened_by: None,
            owner: Some(2),
            owner_name: Some("ann".into()),
            status: "open".into(),
            resolution: None,
            opened_at: 0,
            closed_at: None,
        };
        let last = Interaction {
            id: 1,
            customer_id: Some(1),
            call_id: None,
            kind: "call".into(),
            direction: Some("inbound".into()),
            number_raw: None,
            number_e164: None,
            agent_id: None,
            agent: None,
            started_at: 0,
            answered_at: None,
            ended_at: None,
            outcome: Some("missed".into()),
            disposition: None,
            note: None,
            satisfaction: Some(2),
        };
        let h = hints(&c, &[], &[complaint], &[last], 2, day("2026-11-23"));
        assert_eq!(
            codes(&h),
            vec![
                "key_account",
                "vip",
                "complaint_open",
                "last_satisfaction",
                "last_call_unresolved",
                "called_today"
            ]
        );
        assert!(h[2].text.contains("owner ann"));
    }
}
