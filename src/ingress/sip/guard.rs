//! Who may talk to the SIP listener: the `sip.allow` list, a per-source rate limit with temporary
//! bans (what Kamailio's `pike` module does), and known scanner User-Agents.
//!
//! A SIP port on the internet is found by scanners within minutes and flooded with REGISTER and
//! OPTIONS probes. Answering each one costs CPU and tells the scanner it found something, so the
//! checks run before parsing where they can (address and rate) and right after it otherwise (the
//! User-Agent). The PBX must never be locked out by its own traffic peak: when `sip.allow` is set,
//! allowed sources are exempt from the rate limit, and only sources that would be refused anyway
//! are tracked and banned.
//!
//! Memory is bounded: at most [`MAX_TRACKED_SOURCES`] addresses are tracked; when the table is full,
//! idle entries are forgotten first, and a source that still does not fit is let through untracked
//! (a spoofed-source flood must not lock out real callers by filling the table).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::settings::SipSettings;

/// The most source addresses whose rate is tracked at once.
pub const MAX_TRACKED_SOURCES: usize = 65_536;

/// What to do with a message from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Process it.
    Admit,
    /// The source is outside `sip.allow`: answer 403 or stay silent, per `sip.refuse`.
    Refuse,
    /// The source is banned (or was banned by this very message): drop it silently.
    Banned { newly: bool },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
    banned_until: Option<Instant>,
}

/// The checks, shared by the UDP reader and every TCP connection.
#[derive(Debug)]
pub struct Guard {
    allow: Vec<IpNet>,
    rate_per_sec: f64,
    burst: f64,
    ban: Duration,
    scanners: Vec<String>,
    sources: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Guard {
    pub fn new(settings: &SipSettings) -> Self {
        let rate = f64::from(settings.rate_limit_per_sec);
        Guard {
            allow: settings.allow.clone(),
            rate_per_sec: rate,
            // A burst of one second's worth: a PBX that sends nothing for a while and then a batch
            // of INVITEs at once is not a flood.
            burst: rate.max(1.0),
            ban: Duration::from_secs(settings.ban_secs),
            scanners: settings
                .scanner_user_agents
                .iter()
                .map(|agent| agent.trim().to_ascii_lowercase())
                .filter(|agent| !agent.is_empty())
                .collect(),
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` is inside `sip.allow` (always true when the list is empty).
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Decides about one message from `ip`, counting it against the source's rate.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admission {
        let ip = ip.to_canonical();
        let allowed = self.is_allowed(ip);
        // Listed sources are trusted not to flood: they are never rate-limited or banned.
        if allowed && !self.allow.is_empty() {
            return Admission::Admit;
        }
        if let Some(banned) = self.rate(ip, now) {
            return banned;
        }
        if allowed {
            Admission::Admit
        } else {
            Admission::Refuse
        }
    }

    /// Whether a User-Agent belongs to a known scanner (case-insensitive substring).
    pub fn is_scanner(&self, user_agent: Option<&str>) -> bool {
        let Some(agent) = user_agent else {
            return false;
        };
        let agent = agent.to_ascii_lowercase();
        self.scanners
            .iter()
            .any(|scanner| agent.contains(scanner.as_str()))
    }

    /// The number of sources tracked now.
    #[cfg(test)]
    pub fn tracked_sources(&self) -> usize {
        self.sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Takes a token for `ip`; `Some` when the source is (or just became) banned.
    fn rate(&self, ip: IpAddr, now: Instant) -> Option<Admission> {
        if self.rate_per_sec <= 0.0 {
            return None;
        }
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !sources.contains_key(&ip) && sources.len() >= MAX_TRACKED_SOURCES {
            self.forget_idle(&mut sources, now);
            if sources.len() >= MAX_TRACKED_SOURCES {
                return None;
            }
        }
        let bucket = sources.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            refilled_at: now,
            banned_until: None,
        });
        if let Some(until) = bucket.banned_until {
            if now < until {
                return Some(Admission::Banned { newly: false });
            }
            bucket.banned_until = None;
            bucket.tokens = self.burst;
            bucket.refilled_at = now;
        }
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * self.rate_per_sec).min(self.burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return None;
        }
        bucket.banned_until = Some(now + self.ban);
        Some(Admission::Banned { newly: true })
    }

    /// Forgets sources that are not banned and whose bucket has refilled: they carry no state
    /// worth keeping.
    fn forget_idle(&self, sources: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let refill_time = Duration::from_secs_f64(self.burst / self.rate_per_sec);
        sources.retain(|_, bucket| match bucket.banned_until {
            Some(until) => now < until,
            None => now.saturating_duration_since(bucket.refilled_at) < refill_time,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow: &[&str], rate: u32) -> SipSettings {
        SipSettings {
            allow: allow.iter().map(|net| net.parse().unwrap()).collect(),
            rate_limit_per_sec: rate,
            ban_secs: 60,
            ..SipSettings::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn sources_outside_the_allow_list_are_refused() {
        let guard = Guard::new(&settings(&["10.0.0.0/8", "::1/128"], 100));
        let now = Instant::now();
        assert_eq!(guard.admit(ip("10.1.2.3"), now), Admission::Admit);
        assert_eq!(guard.admit(ip("::1"), now), Admission::Admit);
        assert_eq!(guard.admit(ip("192.0.2.1"), now), Admission::Refuse);
    }

    #[test]
    fn an_ipv4_mapped_source_is_checked_as_ipv4() {
        let guard = Guard::new(&settings(&["127.0.0.0/8"], 100));
        assert_eq!(
            guard.admit(ip("::ffff:127.0.0.1"), Instant::now()),
            Admission::Admit
        );
    }

    #[test]
    fn a_flooding_source_is_banned_for_ban_secs() {
        let guard = Guard::new(&settings(&[], 10));
        let start = Instant::now();
        let flooder = ip("192.0.2.9");
        let admitted = (0..10)
            .filter(|_| guard.admit(flooder, start) == Admission::Admit)
            .count();
        assert_eq!(admitted, 10);
        assert_eq!(
            guard.admit(flooder, start),
            Admission::Banned { newly: true }
        );
        // Banned even after its bucket would have refilled...
        assert_eq!(
            guard.admit(flooder, start + Duration::from_secs(30)),
            Admission::Banned { newly: false }
        );
        // ...until the ban ends.
        assert_eq!(
            guard.admit(flooder, start + Duration::from_secs(61)),
            Admission::Admit
        );
        // Others are unaffected.
        assert_eq!(guard.admit(ip("192.0.2.10"), start), Admission::Admit);
    }

    #[test]
    fn a_steady_rate_below_the_limit_is_never_banned() {
        let guard = Guard::new(&settings(&[], 10));
        let start = Instant::now();
        for tick in 0..100u64 {
            let at = start + Duration::from_millis(tick * 110);
            assert_eq!(guard.admit(ip("192.0.2.7"), at), Admission::Admit);
        }
    }

    #[test]
    fn allowed_sources_are_never_banned() {
        let guard = Guard::new(&settings(&["127.0.0.1/32"], 1));
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(guard.admit(ip("127.0.0.1"), now), Admission::Admit);
        }
        assert_eq!(guard.tracked_sources(), 0);
        // A refused source that floods is banned, so it stops getting 403s.
        assert_eq!(guard.admit(ip("192.0.2.1"), now), Admission::Refuse);
        assert_eq!(
            guard.admit(ip("192.0.2.1"), now),
            Admission::Banned { newly: true }
        );
    }

    #[test]
    fn a_zero_rate_limit_disables_banning() {
        let guard = Guard::new(&settings(&[], 0));
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(guard.admit(ip("192.0.2.1"), now), Admission::Admit);
        }
    }

    #[test]
    fn scanner_user_agents_match_case_insensitively() {
        let guard = Guard::new(&SipSettings::default());
        assert!(guard.is_scanner(Some("friendly-scanner")));
        assert!(guard.is_scanner(Some("SIPVicious 0.3.4")));
        assert!(!guard.is_scanner(Some("Asterisk PBX 20.5.0")));
        assert!(!guard.is_scanner(None));
    }

    #[test]
    fn the_source_table_stays_bounded() {
        let guard = Guard::new(&settings(&[], 1000));
        let now = Instant::now();
        for n in 0..(MAX_TRACKED_SOURCES as u32 + 100) {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            assert_eq!(guard.admit(source, now), Admission::Admit);
        }
        assert!(guard.tracked_sources() <= MAX_TRACKED_SOURCES);
    }
}
