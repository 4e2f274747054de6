//! `/api/v1/reports/...`: supervisors' reports over a range of local days, as JSON or CSV.
//!
//! Every report takes `?from=YYYY-MM-DD&to=YYYY-MM-DD` (both included; by default the last seven
//! days up to today) counted in `?tz=` (an IANA zone; by default `outbound.default_timezone`),
//! and answers JSON (`{"report", "from", "to", "timezone", "by"?, "rows": [...], "totals"}`) or,
//! with `?format=csv` or `Accept: text/csv`, the same rows as CSV with a header line and the
//! totals as a last row whose `period` is `total`. Storage counts per hour since the range's first
//! local midnight; this module turns hours into local days and hours and computes the rates and
//! percentiles.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiQuery, ApiResult, Caller};
use crate::daemon::AppState;
use crate::settings::Settings;
use crate::storage::reports::{CampaignFigures, HourCount, ScoreCount, WaitCount};

/// Longest range a report covers.
const MAX_DAYS: i64 = 366;
/// Days a report covers when `from` is not given.
const DEFAULT_DAYS: i64 = 7;
const HOUR_MS: i64 = 3_600_000;

/// A report's answer: its rows, their totals, and the range they cover.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Report<R> {
    pub report: &'static str,
    pub from: String,
    pub to: String,
    pub timezone: String,
    /// How rows are grouped, for reports that can be grouped more than one way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub rows: Vec<R>,
    pub totals: Option<R>,
}

/// `?from`, `?to`, `?tz`, `?format` (every report).
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First local day, `YYYY-MM-DD`; default six days before `to`.
    pub from: Option<String>,
    /// Last local day (included), `YYYY-MM-DD`; default today.
    pub to: Option<String>,
    /// IANA time zone for days and hours; default `outbound.default_timezone`.
    pub tz: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// `GET /reports/calls` and `/reports/answer-rates`.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
    pub format: Option<String>,
    /// `day` (default), `hour` (each hour of each day) or `hour_of_day` (0–23 over the range).
    pub by: Option<String>,
    /// Answer-rates only: the service-level target in seconds (default 20).
    pub within: Option<i64>,
}

/// `GET /reports/campaigns`.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CampaignsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
    pub format: Option<String>,
    /// One campaign, whatever its creation date.
    pub campaign_id: Option<i64>,
}

/// `GET /reports/satisfaction`.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SatisfactionQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
    pub format: Option<String>,
    /// `tier` (default) or `agent`.
    pub by: Option<String>,
}

/// `GET /reports/reminders`.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemindersQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
    pub format: Option<String>,
    /// The disposition code that records a booked visit (default `service_booked`); must be one
    /// of `console.dispositions`.
    pub disposition: Option<String>,
    /// A booking follows a reminder when the customer was reached this many days before (default 30).
    pub window_days: Option<i64>,
}

/// The days a report covers, and their bounds in unix milliseconds.
#[derive(Debug, Clone, Copy)]
struct Range {
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
    /// The first local midnight: hour indexes count from here.
    start_ms: i64,
    /// The local midnight after the last day.
    end_ms: i64,
}

impl Range {
    fn days(&self) -> impl Iterator<Item = NaiveDate> {
        let to = self.to;
        self.from.iter_days().take_while(move |d| *d <= to)
    }

    /// The local date and hour an hour index falls in.
    fn local_hour(&self, hour_index: i64) -> (NaiveDate, u32) {
        let at = self.local(self.start_ms + hour_index * HOUR_MS);
        (at.date_naive(), at.hour())
    }

    fn local(&self, ms: i64) -> DateTime<Tz> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .unwrap_or_default()
            .with_timezone(&self.tz)
    }

    fn local_date(&self, ms: i64) -> NaiveDate {
        self.local(ms).date_naive()
    }
}

/// The first instant of a local day (the day's first existing minute when midnight is skipped).
pub(crate) fn day_start(tz: Tz, day: NaiveDate) -> i64 {
    let mut t = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..180 {
        if let Some(at) = tz.from_local_datetime(&t).earliest() {
            return at.timestamp_millis();
        }
        t += Duration::minutes(1);
    }
    Utc.from_utc_datetime(&t).timestamp_millis()
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

fn timezone(settings: &Settings, tz: Option<&str>) -> ApiResult<Tz> {
    let name = tz
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or(&settings.outbound.default_timezone);
    name.parse::<Tz>().map_err(|_| {
        invalid(format!(
            "tz `{name}` is not an IANA time zone (e.g. Asia/Shanghai)"
        ))
    })
}

fn date(field: &str, value: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        invalid(format!(
            "{field} must be a date as YYYY-MM-DD, not `{value}`"
        ))
    })
}

fn range(
    settings: &Settings,
    from: Option<&str>,
    to: Option<&str>,
    tz: Option<&str>,
) -> ApiResult<Range> {
    let tz = timezone(settings, tz)?;
    let to = match to.filter(|t| !t.trim().is_empty()) {
        Some(t) => date("to", t)?,
        None => Utc::now().with_timezone(&tz).date_naive(),
    };
    let from = match from.filter(|f| !f.trim().is_empty()) {
        Some(f) => date("from", f)?,
        None => to - Duration::days(DEFAULT_DAYS - 1),
    };
    if from > to {
        return Err(invalid("from must not be after to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(invalid(format!("a report covers at most {MAX_DAYS} days")));
    }
    let next = to.succ_opt().ok_or_else(|| invalid("to is out of range"))?;
    Ok(Range {
        from,
        to,
        tz,
        start_ms: day_start(tz, from),
        end_ms: day_start(tz, next),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

fn format(query: Option<&str>, headers: &HeaderMap) -> ApiResult<Format> {
    match query.map(str::trim) {
        Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("") | None => {
            let wants_csv = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|v| v.trim().to_ascii_lowercase().starts_with("text/csv"));
            Ok(if wants_csv { Format::Csv } else { Format::Json })
        }
        Some(other) => Err(invalid(format!(
            "format must be json or csv, not `{other}`"
        ))),
    }
}

/// How rows of a time-based report are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    Day,
    Hour,
    HourOfDay,
}

impl Grouping {
    fn parse(by: Option<&str>) -> ApiResult<Grouping> {
        match by.map(str::trim) {
            None | Some("") | Some("day") => Ok(Grouping::Day),
            Some("hour") => Ok(Grouping::Hour),
            Some("hour_of_day") => Ok(Grouping::HourOfDay),
            Some(other) => Err(invalid(format!(
                "by must be day, hour or hour_of_day, not `{other}`"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Grouping::Day => "day",
            Grouping::Hour => "hour",
            Grouping::HourOfDay => "hour_of_day",
        }
    }

    /// Every period of the range, in order: (sort key, period label, date, hour).
    fn periods(self, range: &Range) -> Vec<(PeriodKey, Period)> {
        match self {
            Grouping::Day => range
                .days()
                .map(|d| ((Some(d), None), Period::new(Some(d), None)))
                .collect(),
            Grouping::Hour => range
                .days()
                .flat_map(|d| {
                    (0..24).map(move |h| ((Some(d), Some(h)), Period::new(Some(d), Some(h))))
                })
                .collect(),
            Grouping::HourOfDay => (0..24)
                .map(|h| ((None, Some(h)), Period::new(None, Some(h))))
                .collect(),
        }
    }

    fn key(self, range: &Range, hour_index: i64) -> PeriodKey {
        let (d, h) = range.local_hour(hour_index);
        match self {
            Grouping::Day => (Some(d), None),
            Grouping::Hour => (Some(d), Some(h)),
            Grouping::HourOfDay => (None, Some(h)),
        }
    }
}

type PeriodKey = (Option<NaiveDate>, Option<u32>);

/// The columns naming a row's period (rows repeat them as fields: CSV cannot flatten).
#[derive(Debug, Clone, Default, PartialEq)]
struct Period {
    period: String,
    date: Option<String>,
    hour: Option<u32>,
}

/// A row of type `$ty` for a period, every figure zero.
macro_rules! row_for {
    ($ty:ident, $period:expr) => {{
        let p: Period = $period;
        $ty {
            period: p.period,
            date: p.date,
            hour: p.hour,
            ..Default::default()
        }
    }};
}

impl Period {
    fn new(date: Option<NaiveDate>, hour: Option<u32>) -> Period {
        let d = date.map(|d| d.format("%Y-%m-%d").to_string());
        let label = match (&d, hour) {
            (Some(d), Some(h)) => format!("{d} {h:02}:00"),
            (Some(d), None) => d.clone(),
            (None, Some(h)) => format!("{h:02}:00"),
            (None, None) => "total".into(),
        };
        Period {
            period: label,
            date: d,
            hour,
        }
    }

    fn total() -> Period {
        Period::new(None, None)
    }
}

/// `part / whole` rounded to four places; `None` when there is nothing to divide.
fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| ((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0)
}

/// The nearest-rank percentile (0 < p ≤ 1) of a histogram of (value, count), sorted by value.
fn percentile(histogram: &[(i64, i64)], p: f64) -> Option<i64> {
    let total: i64 = histogram.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    for (value, n) in histogram {
        seen += n;
        if seen >= rank {
            return Some(*value);
        }
    }
    histogram.last().map(|(v, _)| *v)
}

/// Summary figures of a distribution of seconds.
#[derive(Debug, Clone, Default, PartialEq)]
struct Spread {
    avg: Option<f64>,
    p50: Option<i64>,
    p90: Option<i64>,
    max: Option<i64>,
}

fn spread(histogram: &mut [(i64, i64)]) -> Spread {
    histogram.sort_unstable();
    let total: i64 = histogram.iter().map(|(_, n)| n).sum();
    let sum: i64 = histogram.iter().map(|(v, n)| v * n).sum();
    Spread {
        avg: (total > 0).then(|| ((sum as f64 / total as f64) * 10.0).round() / 10.0),
        p50: percentile(histogram, 0.5),
        p90: percentile(histogram, 0.9),
        max: histogram.last().map(|(v, _)| *v),
    }
}

/// Serializes rows (and the totals row) as CSV with a header line, even when there are no rows.
fn csv_text<R: Serialize + Default>(rows: &[R], totals: Option<&R>) -> ApiResult<String> {
    let failed = |e: csv::Error| {
        tracing::error!(error = %e, "report not written as CSV");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the report could not be written as CSV",
        )
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut written = false;
    for row in rows.iter().chain(totals) {
        writer.serialize(row).map_err(failed)?;
        written = true;
    }
    if !written {
        // The header is the field names: write a blank row and keep only its header line.
        writer.serialize(R::default()).map_err(failed)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| failed(csv::Error::from(e.into_error())))?;
    let mut text = String::from_utf8(bytes).unwrap_or_default();
    if !written {
        let header_end = text.find('\n').map_or(text.len(), |i| i + 1);
        text.truncate(header_end);
    }
    Ok(text)
}

fn respond<R: Serialize + Default>(format: Format, report: Report<R>) -> ApiResult<Response> {
    match format {
        Format::Json => Ok(ApiJson(report).into_response()),
        Format::Csv => {
            let body = csv_text(&report.rows, report.totals.as_ref())?;
            let filename = format!(
                "attachment; filename=\"ringside-{}-{}-{}.csv\"",
                report.report, report.from, report.to
            );
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(v) = HeaderValue::from_str(&filename) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(response)
        }
    }
}

fn report<R>(
    name: &'static str,
    range: &Range,
    by: Option<&str>,
    rows: Vec<R>,
    totals: Option<R>,
) -> Report<R> {
    Report {
        report: name,
        from: range.from.format("%Y-%m-%d").to_string(),
        to: range.to.format("%Y-%m-%d").to_string(),
        timezone: range.tz.name().to_string(),
        by: by.map(String::from),
        rows,
        totals,
    }
}

// ------------------------------------------------------------------------------------------ calls

/// Calls in one period: inbound by how they ended, outbound calls the PBX reported, and
/// ringside's own dial attempts (a PBX that also reports those shows them in both).
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CallRow {
    /// `2024-05-01`, `2024-05-01 09:00`, `09:00`, or `total` on the totals row.
    pub period: String,
    pub date: Option<String>,
    pub hour: Option<u32>,
    pub inbound: i64,
    pub inbound_answered: i64,
    pub inbound_missed: i64,
    pub inbound_abandoned: i64,
    /// Ended without a known outcome (lost hangup, presumed over).
    pub inbound_other: i64,
    pub outbound: i64,
    pub outbound_answered: i64,
    pub attempts: i64,
    pub attempts_answered: i64,
    /// `inbound_answered / (answered + missed + abandoned)`.
    pub answer_rate: Option<f64>,
    /// `inbound_abandoned / (answered + missed + abandoned)`.
    pub abandon_rate: Option<f64>,
}

impl CallRow {
    fn add(&mut self, c: &HourCount) {
        let n = c.count;
        match (c.direction.as_str(), c.category.as_str()) {
            ("inbound", category) => {
                self.inbound += n;
                match category {
                    "answered" => self.inbound_answered += n,
                    "missed" => self.inbound_missed += n,
                    "abandoned" => self.inbound_abandoned += n,
                    _ => self.inbound_other += n,
                }
            }
            ("attempt", category) => {
                self.attempts += n;
                if category == "answered" {
                    self.attempts_answered += n;
                }
            }
            (_, category) => {
                self.outbound += n;
                if category == "answered" {
                    self.outbound_answered += n;
                }
            }
        }
    }

    fn offered(&self) -> i64 {
        self.inbound_answered + self.inbound_missed + self.inbound_abandoned
    }

    fn finish(&mut self) {
        self.answer_rate = ratio(self.inbound_answered, self.offered());
        self.abandon_rate = ratio(self.inbound_abandoned, self.offered());
    }
}

/// Counts per hour into rows per period (every period of the range, empty ones included).
fn call_rows(range: &Range, grouping: Grouping, counts: &[HourCount]) -> (Vec<CallRow>, CallRow) {
    let mut rows: BTreeMap<PeriodKey, CallRow> = grouping
        .periods(range)
        .into_iter()
        .map(|(k, period)| (k, row_for!(CallRow, period)))
        .collect();
    let mut totals = row_for!(CallRow, Period::total());
    for c in counts {
        if let Some(row) = rows.get_mut(&grouping.key(range, c.hour_index)) {
            row.add(c);
        }
        totals.add(c);
    }
    let mut rows: Vec<CallRow> = rows.into_values().collect();
    rows.iter_mut().for_each(CallRow::finish);
    totals.finish();
    (rows, totals)
}

/// `GET /api/v1/reports/calls`: calls per day, hour or hour of day.
#[utoipa::path(get, path = "/reports/calls", tag = "reports", params(CallsQuery),
    responses((status = 200, description = "Calls per day, hour or hour of day: JSON, or CSV with `?format=csv` or `Accept: text/csv`",
        content((Report<CallRow> = "application/json"), (String = "text/csv"))), (status = 400, description = "A bad query (dates, zone, grouping or format)", body = crate::api::ErrorBody)))]
pub async fn calls(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> ApiResult<Response> {
    caller.require_supervisor()?;
    let format = format(q.format.as_deref(), &headers)?;
    let range = range(
        &state.settings,
        q.from.as_deref(),
        q.to.as_deref(),
        q.tz.as_deref(),
    )?;
    let grouping = Grouping::parse(q.by.as_deref())?;
    let s = &state.storage;
    let mut counts = s
        .call_counts(range.start_ms, range.start_ms, range.end_ms)
        .await?;
    counts.extend(
        s.attempt_counts(range.start_ms, range.start_ms, range.end_ms)
            .await?,
    );
    let (rows, totals) = call_rows(&range, grouping, &counts);
    respond(
        format,
        report("calls", &range, Some(grouping.as_str()), rows, Some(totals)),
    )
}

// ----------------------------------------------------------------------------------- answer rates

/// Service level of inbound calls in one period.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AnswerRateRow {
    /// `2024-05-01`, `2024-05-01 09:00`, `09:00`, or `total` on the totals row.
    pub period: String,
    pub date: Option<String>,
    pub hour: Option<u32>,
    /// Inbound calls with a known end: answered, missed or abandoned.
    pub offered: i64,
    pub answered: i64,
    pub missed: i64,
    pub abandoned: i64,
    pub answer_rate: Option<f64>,
    pub abandon_rate: Option<f64>,
    pub missed_rate: Option<f64>,
    /// Answered within `within` seconds of ringing.
    pub answered_within: i64,
    /// `answered_within / offered`.
    pub service_level: Option<f64>,
    pub wait_avg_secs: Option<f64>,
    pub wait_p50_secs: Option<i64>,
    pub wait_p90_secs: Option<i64>,
    pub wait_max_secs: Option<i64>,
}

fn answer_rate_rows(
    range: &Range,
    grouping: Grouping,
    counts: &[HourCount],
    waits: &[WaitCount],
    within: i64,
) -> (Vec<AnswerRateRow>, AnswerRateRow) {
    #[derive(Default)]
    struct Acc {
        answered: i64,
        missed: i64,
        abandoned: i64,
        waits: Vec<(i64, i64)>,
    }
    let mut acc: BTreeMap<PeriodKey, (Period, Acc)> = grouping
        .periods(range)
        .into_iter()
        .map(|(k, p)| (k, (p, Acc::default())))
        .collect();
    let mut total = Acc::default();
    for c in counts.iter().filter(|c| c.direction == "inbound") {
        let key = grouping.key(range, c.hour_index);
        for a in acc
            .get_mut(&key)
            .map(|(_, a)| a)
            .into_iter()
            .chain([&mut total])
        {
            match c.category.as_str() {
                "answered" => a.answered += c.count,
                "missed" => a.missed += c.count,
                "abandoned" => a.abandoned += c.count,
                _ => {}
            }
        }
    }
    for w in waits {
        let key = grouping.key(range, w.hour_index);
        if let Some((_, a)) = acc.get_mut(&key) {
            a.waits.push((w.wait_secs, w.count));
        }
        total.waits.push((w.wait_secs, w.count));
    }
    let finish = |period: Period, mut a: Acc| {
        let offered = a.answered + a.missed + a.abandoned;
        let answered_within = a
            .waits
            .iter()
            .filter(|(s, _)| *s <= within)
            .map(|(_, n)| n)
            .sum();
        let waits = spread(&mut a.waits);
        AnswerRateRow {
            period: period.period,
            date: period.date,
            hour: period.hour,
            offered,
            answered: a.answered,
            missed: a.missed,
            abandoned: a.abandoned,
            answer_rate: ratio(a.answered, offered),
            abandon_rate: ratio(a.abandoned, offered),
            missed_rate: ratio(a.missed, offered),
            answered_within,
            service_level: ratio(answered_within, offered),
            wait_avg_secs: waits.avg,
            wait_p50_secs: waits.p50,
            wait_p90_secs: waits.p90,
            wait_max_secs: waits.max,
        }
    };
    let rows = acc.into_values().map(|(p, a)| finish(p, a)).collect();
    (rows, finish(Period::total(), total))
}

/// `GET /api/v1/reports/answer-rates`: answer, abandon and missed rates, waits and service level.
#[utoipa::path(get, path = "/reports/answer-rates", tag = "reports", params(CallsQuery),
    responses((status = 200, description = "Answer, abandon and missed rates, waits and service level: JSON, or CSV with `?format=csv` or `Accept: text/csv`",
        content((Report<AnswerRateRow> = "application/json"), (String = "text/csv"))), (status = 400, description = "A bad query (dates, zone, grouping or format)", body = crate::api::ErrorBody)))]
pub async fn answer_rates(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> ApiResult<Response> {
    caller.require_supervisor()?;
    let format = format(q.format.as_deref(), &headers)?;
    let range = range(
        &state.settings,
        q.from.as_deref(),
        q.to.as_deref(),
        q.tz.as_deref(),
    )?;
    let grouping = Grouping::parse(q.by.as_deref())?;
    let within = q.within.unwrap_or(20);
    if !(0..=3600).contains(&within) {
        return Err(invalid("within must be 0 to 3600 seconds"));
    }
    let s = &state.storage;
    let counts = s
        .call_counts(range.start_ms, range.start_ms, range.end_ms)
        .await?;
    let waits = s
        .answer_waits(range.start_ms, range.start_ms, range.end_ms)
        .await?;
    let (rows, totals) = answer_rate_rows(&range, grouping, &counts, &waits, within);
    respond(
        format,
        report(
            "answer-rates",
            &range,
            Some(grouping.as_str()),
            rows,
            Some(totals),
        ),
    )
}

// -------------------------------------------------------------------------------------- callbacks

/// Missed-call callbacks by the day of the missed call: how many were called back and how soon.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CallbackRow {
    /// `2024-05-01`, `2024-05-01 09:00`, `09:00`, or `total` on the totals row.
    pub period: String,
    pub date: Option<String>,
    pub hour: Option<u32>,
    /// Missed calls, further misses of a customer already owed a callback included.
    pub missed_calls: i64,
    /// Callbacks owed (one per customer at a time).
    pub callbacks: i64,
    /// Dialed at least once.
    pub called_back: i64,
    /// Still owed and not dialed yet.
    pub not_called_back: i64,
    /// Not needed any more: the customer got through before being called back.
    pub customer_got_through: i64,
    /// Closed without a dial for another reason (expired, cancelled, do-not-call).
    pub closed_without_call: i64,
    /// Seconds from the missed call to the first dial.
    pub delay_avg_secs: Option<f64>,
    pub delay_p50_secs: Option<i64>,
    pub delay_p90_secs: Option<i64>,
    pub delay_max_secs: Option<i64>,
}

/// `GET /api/v1/reports/callbacks`: time from a missed call to its callback.
#[utoipa::path(get, path = "/reports/callbacks", tag = "reports", params(RangeQuery),
    responses((status = 200, description = "Time from a missed call to its callback: JSON, or CSV with `?format=csv` or `Accept: text/csv`",
        content((Report<CallbackRow> = "application/json"), (String = "text/csv"))), (status = 400, description = "A bad query (dates, zone, grouping or format)", body = crate::api::ErrorBody)))]
pub async fn callbacks(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    caller.require_supervisor()?;
    let format = format(q.format.as_deref(), &headers)?;
    let range = range(
        &state.settings,
        q.from.as_deref(),
        q.to.as_deref(),
        q.tz.as_deref(),
    )?;
    let facts = state
        .storage
        .missed_call_callbacks(range.start_ms, range.end_ms)
        .await?;
    let mut acc: BTreeMap<NaiveDate, (CallbackRow, Vec<(i64, i64)>)> = range
        .days()
        .map(|d| {
            (
                d,
                (
                    row_for!(CallbackRow, Period::new(Some(d), None)),
                    Vec::new(),
                ),
            )
        })
        .collect();
    let mut total = (row_for!(CallbackRow, Period::total()), Vec::new());
    for f in &facts {
        let day = range.local_date(f.missed_at);
        for (row, delays) in acc.get_mut(&day).into_iter().chain([&mut total]) {
            row.missed_calls += 1 + f.merged_count;
            row.callbacks += 1;
            match f.first_attempt_at {
                Some(at) => {
                    row.called_back += 1;
                    delays.push(((at - f.missed_at).max(0) / 1000, 1));
                }
                None if matches!(
                    f.state.as_str(),
                    "pending" | "reserved" | "dialing" | "connected"
                ) =>
                {
                    row.not_called_back += 1
                }
                None if f.outcome.as_deref() == Some("customer_got_through") => {
                    row.customer_got_through += 1
                }
                None => row.closed_without_call += 1,
            }
        }
    }
    let finish = |(mut row, mut delays): (CallbackRow, Vec<(i64, i64)>)| {
        let s = spread(&mut delays);
        row.delay_avg_secs = s.avg;
        row.delay_p50_secs = s.p50;
        row.delay_p90_secs = s.p90;
        row.delay_max_secs = s.max;
        row
    };
    let rows = acc.into_values().map(finish).collect();
    respond(
        format,
        report("callbacks", &range, None, rows, Some(finish(total))),
    )
}

// -------------------------------------------------------------------------------------- campaigns

/// One campaign's outcomes to date: its tasks by state and final outcome, its attempts by outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CampaignRow {
    pub campaign_id: i64,
    pub name: String,
    pub kind: String,
    pub mode: String,
    pub state: String,
    /// The local day it was created.
    pub created: String,
    pub tasks: i64,
    /// Waiting their turn (pending or offered).
    pub pending: i64,
    /// Being dialed or talked to.
    pub in_call: i64,
    pub done: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub expired: i64,
    /// Closed tasks / all tasks.
    pub completion: Option<f64>,
    /// Done (customer reached) / closed tasks.
    pub reach_rate: Option<f64>,
    pub result_answered_done: i64,
    pub result_callback_requested: i64,
    pub result_refused: i64,
    pub result_wrong_number: i64,
    pub result_other: i64,
    pub attempts: i64,
    pub attempts_answered: i64,
    pub attempts_busy: i64,
    pub attempts_no_answer: i64,
    pub attempts_failed: i64,
    pub attempts_unknown: i64,
    /// Voicemail, or still in progress.
    pub attempts_other: i64,
}

fn campaign_row(range: &Range, c: &CampaignFigures) -> CampaignRow {
    let mut row = CampaignRow {
        campaign_id: c.id,
        name: c.name.clone(),
        kind: c.kind.clone(),
        mode: c.mode.clone(),
        state: c.state.clone(),
        created: range
            .local_date(c.created_at)
            .format("%Y-%m-%d")
            .to_string(),
        ..Default::default()
    };
    for (state, n) in &c.tasks_by_state {
        row.tasks += n;
        match state.as_str() {
            "pending" | "reserved" => row.pending += n,
            "dialing" | "connected" => row.in_call += n,
            "done" => row.done += n,
            "failed" => row.failed += n,
            "cancelled" => row.cancelled += n,
            _ => row.expired += n,
        }
    }
    for (outcome, n) in &c.tasks_by_outcome {
        match outcome.as_str() {
            "answered_done" => row.result_answered_done += n,
            "callback_requested" => row.result_callback_requested += n,
            "refused" => row.result_refused += n,
            "wrong_number" => row.result_wrong_number += n,
            _ => row.result_other += n,
        }
    }
    for (outcome, n) in &c.attempts_by_outcome {
        row.attempts += n;
        match outcome.as_deref() {
            Some("answered") => row.attempts_answered += n,
            Some("busy") => row.attempts_busy += n,
            Some("no_answer") => row.attempts_no_answer += n,
            Some("failed") => row.attempts_failed += n,
            Some("unknown") => row.attempts_unknown += n,
            _ => row.attempts_other += n,
        }
    }
    let closed = row.done + row.failed + row.cancelled + row.expired;
    row.completion = ratio(closed, row.tasks);
    row.reach_rate = ratio(row.done, closed);
    row
}

/// `GET /api/v1/reports/campaigns`: campaigns created in the range (or `?campaign_id=`).
#[utoipa::path(get, path = "/reports/campaigns", tag = "reports", params(CampaignsQuery),
    responses((status = 200, description = "Campaign outcomes: JSON, or CSV with `?format=csv` or `Accept: text/csv`",
        content((Report<CampaignRow> = "application/json"), (String = "text/csv"))), (status = 400, description = "A bad query (dates, zone, grouping or format)", body = crate::api::ErrorBody),
        (status = 404, description = "No such campaign", body = crate::api::ErrorBody)))]
pub async fn campaigns(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CampaignsQuery>,
) -> ApiResult<Response> {
    caller.require_supervisor()?;
    let format = format(q.format.as_deref(), &headers)?;
    let range = range(
        &state.settings,
        q.from.as_deref(),
        q.to.as_deref(),
        q.tz.as_deref(),
    )?;
    let figures = state
        .storage
        .campaign_figures(range.start_ms, range.end_ms, q.campaign_id)
        .await?;
    if let (Some(id), true) = (q.campaign_id, figures.is_empty()) {
        return Err(ApiError::not_found(format!("campaign {id} does not exist")));
    }
    let rows = figures.iter().map(|c| campaign_row(&range, c)).collect();
    respond(format, report("campaigns", &range, None, rows, None))
}

// ----------------------------------------------------------------------------------- satisfaction

/// Satisfaction scores (1–5) given in the range, by customer tier or by agent.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SatisfactionRow {
    /// The tier (`A`, `B`, `C`, `none`) or the agent's name (`none`: no agent), or `total`.
    pub group: String,
    pub agent_id: Option<i64>,
    pub responses: i64,
    pub average: Option<f64>,
    pub score_1: i64,
    pub score_2: i64,
    pub score_3: i64,
    pub score_4: i64,
    pub score_5: i64,
    /// Share of 4s and 5s.
    pub satisfied: Option<f64>,
}

impl SatisfactionRow {
    fn add(&mut self, score: i64, n: i64) {
        self.responses += n;
        match score {
            1 => self.score_1 += n,
            2 => self.score_2 += n,
            3 => self.score_3 += n,
            4 => self.score_4 += n,
            _ => self.score_5 += n,
        }
    }

    fn finish(&mut self) {
        let sum = self.score_1
            + 2 * self.score_2
            + 3 * self.score_3
            + 4 * self.score_4
            + 5 * self.score_5;
        self.average = (self.responses > 0)
            .then(|| ((sum as f64 / self.responses as f64) * 100.0).round() / 100.0);
        self.satisfied = ratio(self.score_4 + self.score_5, self.responses);
    }
}

fn satisfaction_rows(scores: &[ScoreCount]) -> (Vec<SatisfactionRow>, SatisfactionRow) {
    let mut groups: BTreeMap<(String, Option<i64>), SatisfactionRow> = BTreeMap::new();
    let mut total = SatisfactionRow {
        group: "total".into(),
        ..Default::default()
    };
    for s in scores.iter().filter(|s| (1..=5).contains(&s.score)) {
        let name = s.key.clone().unwrap_or_else(|| "none".into());
        groups
            .entry((name.clone(), s.agent_id))
            .or_insert_with(|| SatisfactionRow {
                group: name,
                agent_id: s.agent_id,
                ..Default::default()
            })
            .add(s.score, s.count);
        total.add(s.score, s.count);
    }
    let mut rows: Vec<SatisfactionRow> = groups.into_values().collect();
    rows.iter_mut().for_each(SatisfactionRow::finish);
    total.finish();
    (rows, total)
}

/// `GET /api/v1/reports/satisfaction?by=tier|agent`.
#[utoipa::path(get, path = "/reports/satisfaction", tag = "reports", params(SatisfactionQuery),
    responses((status = 200, description = "Satisfaction by tier or agent: JSON, or CSV with `?format=csv` or `Accept: text/csv`",
        content((Report<SatisfactionRow> = "application/json"), (String = "text/csv"))), (status = 400, description = "A bad query (dates, zone, grouping or format)", body = crate::api::ErrorBody)))]
pub async fn satisfaction(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SatisfactionQuery>,
) -> ApiResult<Response> {
    caller.require_supervisor()?;
    let format = format(q.format.as_deref(), &headers)?;
    let range = range(
        &state.settings,
        q.from.as_deref(),
        q.to.as_deref(),
        q.tz.as_deref(),
    )?;
    let s = &state.storage;
    let (by, scores) = match q.by.as_deref().map(str::trim) {
        None | Some("") | Some("tier") => (
            "tier",
            s.scores_by_tier(range.start_ms, range.end_ms).await?,
        ),
        Some("agent") => (
            "agent",
            s.scores_by_agent(range.start_ms, range.end_ms).await?,
        ),
        Some(other) => return Err(invalid(format!("by must be tier or agent, not `{other}`"))),
    };
    let (rows, totals) = satisfaction_rows(&scores);
    respond(
        format,
        report("satisfaction", &range, Some(by), rows, Some(totals)),
    )
}

// -------------------------------------------------------------------------------------- reminders

/// Service reminders that reached customers versus service visits booked, per day.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ReminderRow {
    /// `2024-05-01`, `2024-05-01 09:00`, `09:00`, or `total` on the totals row.
    pub period: String,
    pub date: Option<String>,
    pub hour: Option<u32>,
    /// Reminder calls that reached the customer (task done).
    pub reminders_reached: i64,
    /// Reminders given up (attempts exhausted, wrong number, expired).
    pub reminders_failed: i64,
    /// Interactions with the booking disposition.
    pub bookings: i64,
    /// …by a customer reached by a reminder shortly before.
    pub bookings_after_reminder: i64,
    /// `bookings_after_reminder / reminders_reached`.
    pub conversion: Option<f64>,
}

/// `GET /api/v1/reports/reminders`: reminders sent versus service visits booked.
#[utoipa::path(get, path = "/reports/reminders", tag = "reports", params(RemindersQuery),
    responses((status = 200, description = "Reminders sent versus service visits booked: JSON, or CSV with `?format=csv` or `Accept: text/csv`",
        content((Report<ReminderRow> = "application/json"), (String = "text/csv"))), (status = 400, description = "A bad query (dates, zone, grouping or format)", body = crate::api::ErrorBody)))]
pub async fn reminders(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RemindersQuery>,
) -> ApiResult<Response> {
    caller.require_supervisor()?;
    let format = format(q.format.as_deref(), &headers)?;
    let range = range(
        &state.settings,
        q.from.as_deref(),
        q.to.as_deref(),
        q.tz.as_deref(),
    )?;
    let code = q
        .disposition
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("service_booked");
    let configured = &state.settings.console.dispositions;
    if !configured.iter().any(|d| d.code == code) {
        return Err(invalid(format!(
            "disposition `{code}` is not one of the configured codes ({}); name the booking code with ?disposition=",
            configured
                .iter()
                .map(|d| d.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let window_days = q.window_days.unwrap_or(30);
    if !(1..=365).contains(&window_days) {
        return Err(invalid("window_days must be 1 to 365"));
    }
    let s = &state.storage;
    let closed = s.reminders_closed(range.start_ms, range.end_ms).await?;
    let bookings = s
        .bookings(range.start_ms, range.end_ms, code, window_days * 86_400_000)
        .await?;
    let mut rows: BTreeMap<NaiveDate, ReminderRow> = range
        .days()
        .map(|d| (d, row_for!(ReminderRow, Period::new(Some(d), None))))
        .collect();
    let mut total = row_for!(ReminderRow, Period::total());
    for r in &closed {
        let day = range.local_date(r.done_at);
        for row in rows.get_mut(&day).into_iter().chain([&mut total]) {
            if r.state == "done" {
                row.reminders_reached += 1;
            } else {
                row.reminders_failed += 1;
            }
        }
    }
    for b in &bookings {
        let day = range.local_date(b.at);
        for row in rows.get_mut(&day).into_iter().chain([&mut total]) {
            row.bookings += 1;
            row.bookings_after_reminder += b.after_reminder as i64;
        }
    }
    let finish = |mut row: ReminderRow| {
        row.conversion = ratio(row.bookings_after_reminder, row.reminders_reached);
        row
    };
    let rows = rows.into_values().map(finish).collect();
    respond(
        format,
        report("reminders", &range, None, rows, Some(finish(total))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai(from: &str, to: &str) -> Range {
        let settings = Settings::default();
        range(&settings, Some(from), Some(to), Some("Asia/Shanghai")).unwrap()
    }

    #[test]
    fn a_range_runs_from_the_first_local_midnight_to_the_one_after_the_last_day() {
        let r = shanghai("2024-05-01", "2024-05-02");
        // 2024-05-01 00:00 +08:00 is 2024-04-30 16:00 UTC.
        assert_eq!(r.start_ms, 1_714_492_800_000);
        assert_eq!(r.end_ms - r.start_ms, 2 * 24 * HOUR_MS);
        assert_eq!(r.local_hour(0), (r.from, 0));
        assert_eq!(r.local_hour(33), (r.to, 9));
    }

    #[test]
    fn a_day_with_a_daylight_saving_change_has_23_hours() {
        let settings = Settings::default();
        let r = range(
            &settings,
            Some("2024-03-31"),
            Some("2024-03-31"),
            Some("Europe/Berlin"),
        )
        .unwrap();
        assert_eq!(r.end_ms - r.start_ms, 23 * HOUR_MS);
        // The third hour after midnight is 03:00 local: 02:00 does not exist that day.
        assert_eq!(r.local_hour(2).1, 3);
    }

    #[test]
    fn bad_ranges_are_refused_with_a_reason() {
        let settings = Settings::default();
        for (from, to, tz) in [
            (Some("2024-05-02"), Some("2024-05-01"), None),
            (Some("2024-13-01"), None, None),
            (Some("yesterday"), None, None),
            (Some("2023-01-01"), Some("2024-12-31"), None),
            (None, None, Some("Mars/Olympus")),
        ] {
            let e = range(&settings, from, to, tz).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.code, "invalid_query");
        }
    }

    #[test]
    fn the_default_range_is_the_last_seven_days_up_to_today() {
        let settings = Settings::default();
        let r = range(&settings, None, None, Some("UTC")).unwrap();
        assert_eq!(r.to, Utc::now().date_naive());
        assert_eq!(r.days().count(), 7);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut h = vec![(30, 1), (10, 2), (20, 1)];
        let s = spread(&mut h);
        assert_eq!(s.p50, Some(10));
        assert_eq!(s.p90, Some(30));
        assert_eq!(s.max, Some(30));
        assert_eq!(s.avg, Some(17.5));
        assert_eq!(spread(&mut Vec::new()), Spread::default());
    }

    #[test]
    fn call_counts_fill_every_period_and_the_totals() {
        let r = shanghai("2024-05-01", "2024-05-02");
        let count = |hour_index, direction: &str, category: &str, count| HourCount {
            hour_index,
            direction: direction.into(),
            category: category.into(),
            count,
        };
        let counts = [
            count(9, "inbound", "answered", 3),
            count(9, "inbound", "missed", 1),
            count(33, "inbound", "abandoned", 1),
            count(34, "outbound", "answered", 2),
            count(34, "attempt", "other", 4),
        ];
        let (rows, totals) = call_rows(&r, Grouping::Day, &counts);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].period, "2024-05-01");
        assert_eq!((rows[0].inbound, rows[0].inbound_answered), (4, 3));
        assert_eq!(rows[0].answer_rate, Some(0.75));
        assert_eq!(rows[1].abandon_rate, Some(1.0));
        assert_eq!((totals.outbound_answered, totals.attempts), (2, 4));
        assert_eq!(totals.period, "total");
        let (by_hour, _) = call_rows(&r, Grouping::HourOfDay, &counts);
        assert_eq!(by_hour.len(), 24);
        assert_eq!(by_hour[9].inbound, 5);
        assert_eq!(by_hour[9].period, "09:00");
        let (hours, _) = call_rows(&r, Grouping::Hour, &counts);
        assert_eq!(hours.len(), 48);
        assert_eq!(hours[33].period, "2024-05-02 09:00");
    }

    #[test]
    fn csv_has_a_header_even_without_rows() {
        let text = csv_text::<SatisfactionRow>(&[], None).unwrap();
        assert_eq!(
            text,
            "group,agent_id,responses,average,score_1,score_2,score_3,score_4,score_5,satisfied\n"
        );
        let mut row = row_for!(
            CallRow,
            Period::new(NaiveDate::from_ymd_opt(2024, 5, 1), None)
        );
        row.inbound = 1;
        let text = csv_text(&[row], None).unwrap();
        let mut lines = text.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("period,date,hour,inbound,")
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("2024-05-01,2024-05-01,,1,")
        );
    }

    #[test]
    fn the_format_comes_from_the_query_then_the_accept_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(format(None, &headers).unwrap(), Format::Json);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/csv, */*;q=0.1"),
        );
        assert_eq!(format(None, &headers).unwrap(), Format::Csv);
        assert_eq!(format(Some("json"), &headers).unwrap(), Format::Json);
        assert!(format(Some("xml"), &headers).is_err());
    }
}
