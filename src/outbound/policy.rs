//! The rules an outbound call must pass, as pure functions: the calling window in the customer's
//! own time zone (weekends and holidays included), the do-not-call list, consent, attempt caps,
//! and what each outcome means for the next try. The engine calls [`may_dial`] inside the same
//! transaction that marks a task `dialing`, so no attempt starts that these rules forbid.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::storage::tasks::{DialFacts, Task};

/// When calls may be made, in local time.
#[derive(Debug, Clone)]
pub struct CallingWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub weekends: bool,
    pub holidays: HashSet<NaiveDate>,
}

impl CallingWindow {
    fn day_allowed(&self, day: NaiveDate) -> bool {
        (self.weekends || !matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
            && !self.holidays.contains(&day)
    }

    /// Whether a call may start at `at` for a customer in `tz`.
    pub fn allows(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&tz);
        let time = local.time();
        self.day_allowed(local.date_naive()) && time >= self.start && time < self.end
    }

    /// The first instant at or after `at` when a call may start (within the next 400 days).
    pub fn next_opening(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.allows(tz, at) {
            return Some(at);
        }
        let local_day = at.with_timezone(&tz).date_naive();
        for offset in 0..400 {
            let day = local_day + Duration::days(offset);
            if !self.day_allowed(day) {
                continue;
            }
            // A start time inside a DST gap does not exist that day: take the first minute after it that does.
            let mut candidate = None;
            for minute in 0..180 {
                let t = day.and_time(self.start) + Duration::minutes(minute);
                if t.time() >= self.end || t.date() != day {
                    break;
                }
                if let Some(instant) = tz.from_local_datetime(&t).earliest() {
                    candidate = Some(instant.with_timezone(&Utc));
                    break;
                }
            }
            if let Some(c) = candidate.filter(|c| *c >= at && self.allows(tz, *c)) {
                return Some(c);
            }
        }
        None
    }
}

/// The local midnight (as unix ms) of the day `at` falls on in `tz`, for per-day attempt caps.
pub fn local_day_start(tz: Tz, at: DateTime<Utc>) -> i64 {
    let day = at.with_timezone(&tz).date_naive();
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|| at.timestamp_millis() - 86_400_000)
}

/// Why a task may not be dialed now, and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Cancel the task: the number opted out.
    DoNotCall,
    /// Cancel the task: the customer did not consent to calls.
    NoConsent,
    /// Try again at the next opening of the window.
    OutsideWindow { next: Option<i64> },
    /// Try again tomorrow: the day's attempts are used up.
    DailyCap,
    /// The task used all its attempts.
    AttemptsExhausted,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::DoNotCall => "dnc",
            Refusal::NoConsent => "no_consent",
            Refusal::OutsideWindow { .. } => "outside_window",
            Refusal::DailyCap => "daily_cap",
            Refusal::AttemptsExhausted => "attempts_exhausted",
        }
    }
}

/// The whole rule: may this task be dialed at `now`, given the facts read in the transaction?
pub fn may_dial(
    task: &Task,
    facts: &DialFacts,
    window: &CallingWindow,
    tz: Tz,
    now: DateTime<Utc>,
    daily_cap: i64,
) -> Result<(), Refusal> {
    if facts.on_dnc {
        return Err(Refusal::DoNotCall);
    }
    if !facts.consent {
        return Err(Refusal::NoConsent);
    }
    if task.attempts >= task.max_attempts {
        return Err(Refusal::AttemptsExhausted);
    }
    if !window.allows(tz, now) {
        return Err(Refusal::OutsideWindow {
            next: window.next_opening(tz, now).map(|t| t.timestamp_millis()),
        });
    }
    if facts.attempts_today >= daily_cap {
        return Err(Refusal::DailyCap);
    }
    Ok(())
}

/// What an outcome means for the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Done,
    /// Try again after this many seconds (unless attempts are used up).
    Retry(i64),
    /// Stop for good (failed).
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn window() -> CallingWindow {
        CallingWindow {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            weekends: false,
            holidays: [NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()]
                .into_iter()
                .collect(),
        }
    }

    fn task() -> Task {
        Task {
            id: 1,
            kind: "campaign".into(),
            customer_id: Some(1),
            number_e164: "+8613800138000".into(),
            campaign_id: None,
            not_before: 0,
            deadline: None,
            priority: 0,
            preferred_agent_id: None,
            pool_after: None,
            attempts: 0,
            max_attempts: 5,
            state: "reserved".into(),
            outcome: None,
            note: None,
            reason: None,
            idempotency_key: None,
            merged_count: 0,
            lease_until: None,
            fence: 1,
            assigned_agent_id: None,
            satisfaction: None,
            created_at: 0,
            updated_at: 0,
            done_at: None,
        }
    }

    fn facts() -> DialFacts {
        DialFacts {
            on_dnc: false,
            consent: true,
            attempts_today: 0,
            timezone: None,
            tier: None,
        }
    }

    const ZONES: &[Tz] = &[
        chrono_tz::Asia::Shanghai,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Pacific::Chatham,
        chrono_tz::America::Sao_Paulo,
    ];

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_window_is_read_in_the_customers_own_zone() {
        let w = window();
        // 02:00 UTC on a Monday is 10:00 in Shanghai and 03:00 in Berlin.
        let t = utc("2026-11-23T02:00:00Z");
        assert!(w.allows(chrono_tz::Asia::Shanghai, t));
        assert!(!w.allows(chrono_tz::Europe::Berlin, t));
        assert_eq!(
            w.next_opening(chrono_tz::Europe::Berlin, t),
            Some(utc("2026-11-23T07:00:00Z"))
        );
    }

    #[test]
    fn weekends_and_holidays_are_skipped() {
        let w = window();
        let saturday = utc("2026-11-28T03:00:00Z");
        assert!(!w.allows(chrono_tz::Asia::Shanghai, saturday));
        assert_eq!(
            w.next_opening(chrono_tz::Asia::Shanghai, saturday),
            Some(utc("2026-11-30T00:00:00Z"))
        );
        let holiday = utc("2026-10-01T03:00:00Z");
        assert!(!w.allows(chrono_tz::Asia::Shanghai, holiday));
    }

    #[test]
    fn dnc_and_consent_win_over_everything() {
        let w = window();
        let t = utc("2026-11-23T02:00:00Z");
        let mut f = facts();
        f.on_dnc = true;
        assert_eq!(
            may_dial(&task(), &f, &w, chrono_tz::Asia::Shanghai, t, 3),
            Err(Refusal::DoNotCall)
        );
        let mut f = facts();
        f.consent = false;
        assert_eq!(
            may_dial(&task(), &f, &w, chrono_tz::Asia::Shanghai, t, 3),
            Err(Refusal::NoConsent)
        );
        let mut f = facts();
        f.attempts_today = 3;
        assert_eq!(
            may_dial(&task(), &f, &w, chrono_tz::Asia::Shanghai, t, 3),
            Err(Refusal::DailyCap)
        );
        assert_eq!(
            may_dial(&task(), &facts(), &w, chrono_tz::Asia::Shanghai, t, 3),
            Ok(())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn no_attempt_is_ever_allowed_outside_the_local_window(
            secs in 1_700_000_000i64..1_900_000_000i64,
            zone in 0usize..7,
            start_h in 0u32..23, len_h in 1u32..12,
            weekends in any::<bool>(),
            on_dnc in any::<bool>(), consent in any::<bool>(), today in 0i64..6,
        ) {
            let tz = ZONES[zone];
            let end_h = (start_h + len_h).min(23);
            let w = CallingWindow {
                start: NaiveTime::from_hms_opt(start_h, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(end_h, 59, 0).unwrap(),
                weekends,
                holidays: HashSet::new(),
            };
            let now = Utc.timestamp_opt(secs, 0).unwrap();
            let f = DialFacts { on_dnc, consent, attempts_today: today, timezone: None, tier: None };
            if may_dial(&task(), &f, &w, tz, now, 3).is_ok() {
                let local = now.with_timezone(&tz);
                prop_assert!(!on_dnc && consent && today < 3);
                prop_assert!(local.time() >= w.start && local.time() < w.end, "{local} outside {:?}-{:?}", w.start, w.end);
                prop_assert!(weekends || !matches!(local.weekday(), Weekday::Sat | Weekday::Sun));
            }
            if let Some(next) = w.next_opening(tz, now) {
                prop_assert!(next >= now);
                prop_assert!(w.allows(tz, next), "next opening {next} is not inside the window");
            }
        }
    }
}
