//! Logging with `tracing`: readable lines on a terminal, JSON when `log.format = "json"`.
//!
//! Personal data (numbers, names) goes through [`crate::phone::mask`] unless
//! `log.full_personal_data` is set; see [`Pii`].

use std::fmt;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

static FULL_PERSONAL_DATA: AtomicBool = AtomicBool::new(false);

/// Installs the global subscriber; later calls (tests start many apps) are ignored.
pub fn init(settings: &LogSettings) {
    FULL_PERSONAL_DATA.store(settings.full_personal_data, Ordering::Relaxed);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// A phone number for a log line: masked (`+86138****8000`) unless full logs are on.
pub struct Pii<'a>(pub &'a str);

impl fmt::Display for Pii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if FULL_PERSONAL_DATA.load(Ordering::Relaxed) {
            f.write_str(self.0)
        } else {
            f.write_str(&crate::phone::mask(self.0))
        }
    }
}

/// A person's name for a log line: first character and length only, unless full logs are on.
pub struct PiiName<'a>(pub &'a str);

impl fmt::Display for PiiName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if FULL_PERSONAL_DATA.load(Ordering::Relaxed) {
            return f.write_str(self.0);
        }
        let mut chars = self.0.chars();
        match chars.next() {
            Some(first) => write!(f, "{first}***({})", self.0.chars().count()),
            None => Ok(()),
        }
    }
}
