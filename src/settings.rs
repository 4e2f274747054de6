//! Settings: `config/ringside.toml` overlaid by `RINGSIDE__SECTION__KEY` environment variables.
//!
//! Every section denies unknown keys, and `Settings::validate` checks values that serde alone
//! cannot (addresses, country codes, CIDRs), so a typo stops start-up with a message naming the
//! key instead of being silently ignored. Secrets (`ami.servers[].secret`, `esl.servers[].password`,
//! database passwords) are never printed: `Debug` for them is redacted.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;

/// Why settings could not be loaded; the message always names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration key `{key}`: {message}")]
    Key { key: String, message: String },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub numbers: NumberSettings,
    pub matching: MatchingSettings,
    pub console: ConsoleSettings,
    pub sip: SipSettings,
    pub ami: AmiSettings,
    pub esl: EslSettings,
    pub calls: CallSettings,
    pub outbound: OutboundSettings,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://data/ringside.db` (embedded default) or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before failing with 503.
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/ringside.db".into(),
            max_connections: 8,
            acquire_timeout_ms: 3000,
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .finish()
    }
}

/// Hides the password of a `scheme://user:password@host` URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: String,
    /// Largest request body accepted, in bytes (CSV uploads included).
    pub body_limit_bytes: usize,
    /// Origins allowed to open the agent WebSocket besides the page's own host.
    pub allowed_origins: Vec<String>,
    /// How long shutdown waits for in-flight requests, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Requests a second one client address may make (twice that as a burst); 0 = no limit.
    pub rate_limit_per_address: u32,
    /// Requests a second one bearer token may make (twice that as a burst); 0 = no limit.
    pub rate_limit_per_token: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 1024 * 1024,
            allowed_origins: Vec::new(),
            shutdown_grace_ms: 5000,
            rate_limit_per_address: 2000,
            rate_limit_per_token: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default on a terminal).
    #[default]
    Text,
    /// One JSON object a line, for log shippers and journald.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `ringside=debug,sqlx=warn`; `RUST_LOG` wins when set.
    pub level: String,
    /// Print phone numbers and names in full. For development only: the default masks them.
    pub full_personal_data: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            full_personal_data: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NumberSettings {
    /// ISO 3166 region for numbers given without `+country` (e.g. `CN`, `DE`).
    pub default_country: String,
    /// Fallback match on the last N digits when neither E.164 nor the national number matches; 0 disables it.
    pub trailing_digits: usize,
    /// Per-trunk or per-DID default regions: a call dialed to one of these numbers reads its caller in that region.
    pub trunks: Vec<TrunkCountry>,
}

impl Default for NumberSettings {
    fn default() -> Self {
        Self {
            default_country: "CN".into(),
            trailing_digits: 8,
            trunks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkCountry {
    /// The dialed number (DID) or trunk name as the PBX reports it.
    pub dialed: String,
    pub country: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingSettings {
    /// An unknown caller becomes a provisional contact the agent can complete or merge.
    pub create_provisional: bool,
    /// How many past interactions the pop carries.
    pub history_limit: i64,
}

impl Default for MatchingSettings {
    fn default() -> Self {
        Self {
            create_provisional: true,
            history_limit: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// A console that reconnects within this many seconds gets the pops it has not acknowledged.
    pub replay_window_secs: u64,
    /// Messages queued for one console before it is judged too slow and disconnected.
    pub queue_capacity: usize,
    /// Disposition codes agents choose from.
    pub dispositions: Vec<Disposition>,
    /// Queue names mapped to the agents (by name) who serve them; empty = every ready agent.
    pub queues: Vec<QueueMembers>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        let d = |code: &str, label: &str| Disposition {
            code: code.into(),
            label: label.into(),
        };
        Self {
            replay_window_secs: 120,
            queue_capacity: 256,
            dispositions: vec![
                d("resolved", "Resolved"),
                d("callback_requested", "Callback requested"),
                d("complaint", "Complaint opened"),
                d("service_booked", "Service visit booked"),
                d("info_given", "Information given"),
                d("survey_done", "Satisfaction survey done"),
                d("unresolved", "Unresolved"),
                d("wrong_number", "Wrong number"),
            ],
            queues: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disposition {
    pub code: String,
    pub label: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMembers {
    pub name: String,
    pub agents: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SipMode {
    /// One more branch of a forked call: ring, never answer.
    #[default]
    Monitor,
    /// Answer INVITEs with 302 to the account manager (or a fallback).
    Redirect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Refusal {
    /// Answer 403 Forbidden.
    #[default]
    Reject,
    /// Send nothing.
    Silent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSettings {
    pub enabled: bool,
    /// UDP and TCP on this address.
    pub listen: String,
    pub mode: SipMode,
    /// Sources allowed to send SIP (CIDRs); empty allows all. Allowed sources are never banned.
    pub allow: Vec<IpNet>,
    /// What sources outside `allow` get.
    pub refuse: Refusal,
    /// Redirect mode: Contact when the caller has no account manager; empty = answer `redirect_fallback_status`.
    pub redirect_fallback: String,
    /// Redirect mode: the non-2xx status sent when there is nowhere to redirect (e.g. 480, 486).
    pub redirect_fallback_status: u16,
    /// Host (and port) used to build redirect Contacts: `sip:<extension>@<redirect_domain>`.
    pub redirect_domain: String,
    pub max_message_bytes: usize,
    pub tcp_idle_secs: u64,
    /// Messages per second one source may send before it is banned for `ban_secs`.
    pub rate_limit_per_sec: u32,
    pub ban_secs: u64,
    /// User-Agent substrings of known scanners; their messages are dropped silently.
    pub scanner_user_agents: Vec<String>,
    /// Extensions at the PBX to SUBSCRIBE to (event `dialog`); needs `subscribe_to`.
    pub subscribe_extensions: Vec<String>,
    /// PBX address (`host:port`) SUBSCRIBEs go to.
    pub subscribe_to: String,
    pub subscribe_expires_secs: u32,
}

impl Default for SipSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "0.0.0.0:5060".into(),
            mode: SipMode::Monitor,
            allow: Vec::new(),
            refuse: Refusal::Reject,
            redirect_fallback: String::new(),
            redirect_fallback_status: 480,
            redirect_domain: String::new(),
            max_message_bytes: 64 * 1024,
            tcp_idle_secs: 120,
            rate_limit_per_sec: 200,
            ban_secs: 300,
            scanner_user_agents: [
                "friendly-scanner",
                "sipvicious",
                "sipcli",
                "sip-scan",
                "sundayddr",
                "iWar",
                "VaxSIPUserAgent",
                "pplsip",
            ]
            .map(String::from)
            .to_vec(),
            subscribe_extensions: Vec::new(),
            subscribe_to: String::new(),
            subscribe_expires_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AmiSettings {
    pub servers: Vec<AmiServer>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmiServer {
    pub host: String,
    #[serde(default = "default_ami_port")]
    pub port: u16,
    pub username: String,
    pub secret: String,
    /// Log in with the MD5 challenge instead of sending the secret.
    #[serde(default)]
    pub md5: bool,
    /// Channel template for outbound calls; `{number}` is replaced, e.g. `PJSIP/{number}@trunk`.
    #[serde(default = "default_ami_channel")]
    pub originate_channel: String,
    #[serde(default = "default_ami_context")]
    pub originate_context: String,
}

fn default_ami_port() -> u16 {
    5038
}
fn default_ami_channel() -> String {
    "Local/{number}@from-internal".into()
}
fn default_ami_context() -> String {
    "from-internal".into()
}

impl fmt::Debug for AmiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmiServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("secret", &"***")
            .field("md5", &self.md5)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EslSettings {
    pub servers: Vec<EslServer>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EslServer {
    pub host: String,
    #[serde(default = "default_esl_port")]
    pub port: u16,
    pub password: String,
    /// Dial string template for outbound calls; `{number}` is replaced.
    #[serde(default = "default_esl_dialstring")]
    pub originate_dialstring: String,
}

fn default_esl_port() -> u16 {
    8021
}
fn default_esl_dialstring() -> String {
    "sofia/gateway/default/{number}".into()
}

impl fmt::Debug for EslServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EslServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &"***")
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallSettings {
    /// Reports of one call from two sources within this window are merged into one call.
    pub merge_window_ms: i64,
    /// A call with no news for this long is dropped from the live view.
    pub max_call_age_secs: i64,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            merge_window_ms: 5000,
            max_call_age_secs: 4 * 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DialerChoice {
    /// The first configured AMI server, else the first ESL server, else manual.
    #[default]
    Auto,
    /// No dialer: agents dial offered tasks on their own phone and record the result.
    Manual,
    /// A labelled simulation for demos and sites without a PBX (outcomes from `simulated_outcomes`).
    Simulated,
    Ami,
    Esl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowOverride {
    /// Task kind this window applies to (none = all kinds).
    pub kind: Option<String>,
    /// Customer tier this window applies to (none = all tiers).
    pub tier: Option<String>,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierInterval {
    pub tier: String,
    pub months: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Run the outbound scheduler in this process.
    pub enabled: bool,
    pub dialer: DialerChoice,
    /// Simulated dialer: outcomes used in turn (`answered`, `busy`, `no_answer`, `failed`).
    pub simulated_outcomes: Vec<String>,
    pub simulated_delay_ms: u64,
    /// Local calling window in the customer's time zone, `HH:MM`.
    pub window_start: String,
    pub window_end: String,
    pub call_on_weekends: bool,
    /// Dates (`YYYY-MM-DD`) on which nobody is called.
    pub holidays: Vec<String>,
    /// Narrower or wider windows for some task kinds or tiers (the first that matches wins).
    pub windows: Vec<WindowOverride>,
    /// Time zone for customers who have none.
    pub default_timezone: String,
    pub max_attempts: i64,
    /// Attempts to one number per local day.
    pub max_attempts_per_day: i64,
    pub retry_busy_secs: i64,
    pub retry_no_answer_secs: i64,
    pub retry_failed_secs: i64,
    /// An attempt whose outcome is unknown (a crash mid-call) holds its task this long.
    pub unknown_guard_secs: i64,
    /// How long a dialing attempt may go without an outcome before another process may reconcile
    /// it (ring timeout plus a margin); a crashed process's calls are held after this.
    pub dial_lease_secs: i64,
    /// How long an agent has to accept an offered task.
    pub offer_timeout_secs: i64,
    /// How long a task waits for its preferred agent before any agent may take it.
    pub preferred_agent_wait_secs: i64,
    pub callback_deadline_hours: i64,
    /// Maintenance reminders are created this many days before the service is due.
    pub maintenance_lead_days: i64,
    /// Return visits per tier (e.g. A every 3 months by the account manager).
    pub return_visits: Vec<TierInterval>,
    /// Tiers whose customers get a birthday care call.
    pub birthday_tiers: Vec<String>,
    /// How often the generators (reminders, return visits, birthdays) scan, in seconds.
    pub scan_interval_secs: u64,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            dialer: DialerChoice::Auto,
            simulated_outcomes: vec![
                "answered".into(),
                "no_answer".into(),
                "answered".into(),
                "busy".into(),
            ],
            simulated_delay_ms: 2000,
            window_start: "08:00".into(),
            window_end: "21:00".into(),
            call_on_weekends: true,
            holidays: Vec::new(),
            windows: Vec::new(),
            default_timezone: "Asia/Shanghai".into(),
            max_attempts: 5,
            max_attempts_per_day: 3,
            retry_busy_secs: 900,
            retry_no_answer_secs: 3600,
            retry_failed_secs: 1800,
            unknown_guard_secs: 900,
            dial_lease_secs: 120,
            offer_timeout_secs: 60,
            preferred_agent_wait_secs: 3600,
            callback_deadline_hours: 72,
            maintenance_lead_days: 14,
            return_visits: vec![
                TierInterval {
                    tier: "A".into(),
                    months: 3,
                },
                TierInterval {
                    tier: "B".into(),
                    months: 6,
                },
                TierInterval {
                    tier: "C".into(),
                    months: 12,
                },
            ],
            birthday_tiers: vec!["A".into()],
            scan_interval_secs: 3600,
        }
    }
}

impl Settings {
    /// Loads the file (which must exist unless it is the default path) and the environment overlay.
    pub fn load(path: &Path, path_given: bool) -> Result<Settings, SettingsError> {
        let mut builder = config::Config::builder();
        if path.exists() {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        } else if path_given {
            return Err(SettingsError::File {
                path: path.display().to_string(),
                message: "not found".into(),
            });
        }
        builder = builder.add_source(
            config::Environment::with_prefix("RINGSIDE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("sip.allow")
                .with_list_parse_key("sip.scanner_user_agents")
                .with_list_parse_key("sip.subscribe_extensions")
                .with_list_parse_key("http.allowed_origins")
                .with_list_parse_key("outbound.holidays"),
        );
        let raw = builder.build().map_err(|e| SettingsError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let settings: Settings = raw
            .try_deserialize()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what deserialization cannot; every error names its key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let key = |key: &str, message: String| SettingsError::Key {
            key: key.into(),
            message,
        };
        if !(self.database.url.starts_with("sqlite:")
            || self.database.url.starts_with("postgres://")
            || self.database.url.starts_with("postgresql://"))
        {
            return Err(key(
                "database.url",
                "must start with sqlite: or postgres://".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(key("database.max_connections", "must be at least 1".into()));
        }
        self.http.listen.parse::<SocketAddr>().map_err(|e| {
            key(
                "http.listen",
                format!("{e}: expected host:port such as 127.0.0.1:8080"),
            )
        })?;
        if self.sip.enabled {
            self.sip.listen.parse::<SocketAddr>().map_err(|e| {
                key(
                    "sip.listen",
                    format!("{e}: expected host:port such as 0.0.0.0:5060"),
                )
            })?;
        }
        if crate::phone::parse_country(&self.numbers.default_country).is_none() {
            return Err(key(
                "numbers.default_country",
                format!(
                    "`{}` is not an ISO 3166 region such as CN or DE",
                    self.numbers.default_country
                ),
            ));
        }
        for (i, trunk) in self.numbers.trunks.iter().enumerate() {
            if crate::phone::parse_country(&trunk.country).is_none() {
                return Err(key(
                    &format!("numbers.trunks[{i}].country"),
                    format!("`{}` is not an ISO 3166 region", trunk.country),
                ));
            }
        }
        if self.numbers.trailing_digits > 15 {
            return Err(key("numbers.trailing_digits", "at most 15".into()));
        }
        if self.console.queue_capacity == 0 {
            return Err(key("console.queue_capacity", "must be at least 1".into()));
        }
        if !(300..=699).contains(&self.sip.redirect_fallback_status)
            || self.sip.redirect_fallback_status / 100 == 6
        {
            return Err(key(
                "sip.redirect_fallback_status",
                "must be a 3xx, 4xx or 5xx status".into(),
            ));
        }
        if self.sip.max_message_bytes < 1024 {
            return Err(key("sip.max_message_bytes", "must be at least 1024".into()));
        }
        if !self.sip.subscribe_extensions.is_empty()
            && self.sip.subscribe_to.parse::<SocketAddr>().is_err()
        {
            return Err(key(
                "sip.subscribe_to",
                "needed as host:port when sip.subscribe_extensions is set".into(),
            ));
        }
        for (name, value) in [
            ("outbound.window_start", &self.outbound.window_start),
            ("outbound.window_end", &self.outbound.window_end),
        ] {
            chrono::NaiveTime::parse_from_str(value, "%H:%M")
                .map_err(|e| key(name, format!("`{value}`: {e}; expected HH:MM")))?;
        }
        for (i, day) in self.outbound.holidays.iter().enumerate() {
            chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|e| {
                key(
                    &format!("outbound.holidays[{i}]"),
                    format!("`{day}`: {e}; expected YYYY-MM-DD"),
                )
            })?;
        }
        for (i, w) in self.outbound.windows.iter().enumerate() {
            for (name, value) in [("start", &w.start), ("end", &w.end)] {
                chrono::NaiveTime::parse_from_str(value, "%H:%M").map_err(|e| {
                    key(
                        &format!("outbound.windows[{i}].{name}"),
                        format!("`{value}`: {e}; expected HH:MM"),
                    )
                })?;
            }
        }
        for (i, o) in self.outbound.simulated_outcomes.iter().enumerate() {
            if !matches!(o.as_str(), "answered" | "busy" | "no_answer" | "failed") {
                return Err(key(
                    &format!("outbound.simulated_outcomes[{i}]"),
                    "one of answered, busy, no_answer, failed".into(),
                ));
            }
        }
        if self.outbound.dialer == DialerChoice::Ami && self.ami.servers.is_empty() {
            return Err(key(
                "outbound.dialer",
                "ami needs at least one [[ami.servers]]".into(),
            ));
        }
        if self.outbound.dialer == DialerChoice::Esl && self.esl.servers.is_empty() {
            return Err(key(
                "outbound.dialer",
                "esl needs at least one [[esl.servers]]".into(),
            ));
        }
        if self.outbound.max_attempts < 1 || self.outbound.max_attempts_per_day < 1 {
            return Err(key(
                "outbound.max_attempts",
                "attempt caps must be at least 1".into(),
            ));
        }
        self.outbound
            .default_timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|e| key("outbound.default_timezone", e.to_string()))?;
        for (i, s) in self.ami.servers.iter().enumerate() {
            if s.host.is_empty() {
                return Err(key(
                    &format!("ami.servers[{i}].host"),
                    "must not be empty".into(),
                ));
            }
        }
        for (i, s) in self.esl.servers.iter().enumerate() {
            if s.host.is_empty() {
                return Err(key(
                    &format!("esl.servers[{i}].host"),
                    "must not be empty".into(),
                ));
            }
        }
        Ok(())
    }
}
