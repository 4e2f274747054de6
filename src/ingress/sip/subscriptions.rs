//! Keeps ringside subscribed to the dialog state (RFC 4235) of agents' extensions at the PBX, so
//! that calls ringing agents' phones pop even when the PBX does not fork INVITEs to ringside.
//!
//! One subscription per extension in `sip.subscribe_extensions`, sent to `sip.subscribe_to` over
//! UDP from the listening socket (so the NOTIFYs come back to it). A subscription is a small state
//! machine driven by time and by what the PBX answers:
//!
//! - a SUBSCRIBE is a non-INVITE client transaction: retransmitted from T1 = 500 ms doubling to
//!   T2 = 4 s (Timer E), abandoned after 64·T1 = 32 s (Timer F);
//! - a 2xx makes it active; it is refreshed in the same dialog at 80% of the Expires the PBX
//!   granted (RFC 6665 leaves the margin to the subscriber; 80% survives one lost refresh);
//! - a 423 retries at once with the PBX's Min-Expires; a 481 (the PBX forgot the dialog) starts a
//!   new subscription at once; any other failure, a timeout or a NOTIFY that terminates the
//!   subscription retries as a new subscription after a backoff doubling from 5 s to 5 minutes
//!   (or the Retry-After the PBX asked for).
//!
//! Pure: time comes in as arguments and the messages to send come out, so the whole behaviour is
//! tested without sockets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::sip::{
    Host, NameAddr, RequestBuilder, SipMessage, SipUri, SubState, SubscriptionState, Uri, Via,
    generate_branch, generate_call_id, generate_tag,
};

use super::transaction::{T1, T2, TIMER_F};

/// The first retry after a failure; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A PBX that grants less than this is asked again no faster than this.
const MIN_REFRESH: Duration = Duration::from_secs(1);

/// Where to subscribe and how ringside is reached.
#[derive(Debug, Clone)]
pub struct SubscriptionConfig {
    /// The PBX.
    pub target: SocketAddr,
    /// ringside's address as the PBX should see it (Via and Contact).
    pub local: SocketAddr,
    pub expires_secs: u32,
    pub extensions: Vec<String>,
}

/// A SUBSCRIBE in flight.
#[derive(Debug)]
struct ClientTransaction {
    branch: String,
    bytes: Bytes,
    retransmit_at: Instant,
    interval: Duration,
    deadline: Instant,
}

#[derive(Debug)]
enum State {
    /// Nothing in flight; (re)subscribe at `at`.
    Waiting { at: Instant },
    /// A SUBSCRIBE is out.
    Pending(ClientTransaction),
    /// Subscribed; refresh at `refresh_at`.
    Active { refresh_at: Instant },
}

#[derive(Debug)]
struct Subscription {
    extension: String,
    call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
    /// Where in-dialog requests go: the PBX's Contact once known.
    remote_target: Uri,
    expires_secs: u32,
    failures: u32,
    state: State,
}

/// Every subscription ringside keeps.
#[derive(Debug)]
pub struct Subscriptions {
    config: SubscriptionConfig,
    subscriptions: Vec<Subscription>,
}

/// A state a subscription is in, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Waiting,
    Pending,
    Active,
}

impl Subscriptions {
    /// Subscriptions that all start at `now`.
    pub fn new(config: SubscriptionConfig, now: Instant) -> Self {
        let subscriptions = config
            .extensions
            .iter()
            .map(|extension| Subscription {
                extension: extension.clone(),
                call_id: String::new(),
                from_tag: String::new(),
                to_tag: None,
                cseq: 0,
                remote_target: target_uri(extension, config.target),
                expires_secs: config.expires_secs,
                failures: 0,
                state: State::Waiting { at: now },
            })
            .collect();
        Subscriptions {
            config,
            subscriptions,
        }
    }

    #[cfg(test)]
    pub fn status(&self, extension: &str) -> Option<Status> {
        self.subscriptions
            .iter()
            .find(|s| s.extension == extension)
            .map(|s| match s.state {
                State::Waiting { .. } => Status::Waiting,
                State::Pending(_) => Status::Pending,
                State::Active { .. } => Status::Active,
            })
    }

    /// The earliest moment something is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.subscriptions
            .iter()
            .map(|s| match &s.state {
                State::Waiting { at } => *at,
                State::Pending(transaction) => transaction.retransmit_at.min(transaction.deadline),
                State::Active { refresh_at } => *refresh_at,
            })
            .min()
    }

    /// Does what is due at `now`; returns the datagrams to send to the PBX.
    pub fn on_timer(&mut self, now: Instant) -> Vec<(SocketAddr, Bytes)> {
        let mut out = Vec::new();
        let config = &self.config;
        for subscription in &mut self.subscriptions {
            match &mut subscription.state {
                State::Waiting { at } if *at <= now => {
                    subscription.start_dialog(config);
                    out.extend(subscription.send(config, now));
                }
                State::Pending(transaction) if transaction.deadline <= now => {
                    tracing::warn!(
                        extension = subscription.extension,
                        "SUBSCRIBE got no answer (Timer F); retrying later"
                    );
                    subscription.fail(now, None);
                }
                State::Pending(transaction) if transaction.retransmit_at <= now => {
                    transaction.interval = (transaction.interval * 2).min(T2);
                    transaction.retransmit_at = now + transaction.interval;
                    out.push((config.target, transaction.bytes.clone()));
                }
                State::Active { refresh_at } if *refresh_at <= now => {
                    out.extend(subscription.send(config, now));
                }
                _ => {}
            }
        }
        out
    }

    /// A response to one of ringside's SUBSCRIBEs; `false` when it matches none.
    pub fn on_response(&mut self, response: &SipMessage, now: Instant) -> bool {
        let Some(branch) = response
            .top_via()
            .ok()
            .and_then(|via| via.branch().map(str::to_owned))
        else {
            return false;
        };
        let Some(subscription) = self.subscriptions.iter_mut().find(
            |s| matches!(&s.state, State::Pending(transaction) if transaction.branch == branch),
        ) else {
            return false;
        };
        let status = response.status_code().unwrap_or(500);
        match status {
            100..=199 => {
                // RFC 3261 17.1.2.2: after a provisional response, retransmit at T2.
                if let State::Pending(transaction) = &mut subscription.state {
                    transaction.interval = T2;
                    transaction.retransmit_at = now + T2;
                }
            }
            200..=299 => {
                let granted = response
                    .expires()
                    .ok()
                    .flatten()
                    .unwrap_or(subscription.expires_secs);
                if granted == 0 {
                    subscription.fail(now, None);
                    return true;
                }
                if subscription.to_tag.is_none() {
                    subscription.to_tag = response
                        .to_header()
                        .ok()
                        .and_then(|to| to.tag().map(str::to_owned));
                }
                if let Some(contact) = response
                    .contacts()
                    .ok()
                    .and_then(|contacts| contacts.into_iter().next())
                {
                    subscription.remote_target = contact.uri;
                }
                subscription.failures = 0;
                let refresh = Duration::from_secs(u64::from(granted)).mul_f64(0.8);
                subscription.state = State::Active {
                    refresh_at: now + refresh.max(MIN_REFRESH),
                };
                tracing::debug!(
                    extension = subscription.extension,
                    granted,
                    "dialog subscription active"
                );
            }
            423 => {
                let minimum = response
                    .header("Min-Expires")
                    .and_then(|value| value.trim().parse::<u32>().ok())
                    .unwrap_or(subscription.expires_secs.saturating_mul(2));
                subscription.expires_secs = minimum.max(subscription.expires_secs);
                subscription.reset_dialog_at(now);
            }
            481 => {
                tracing::info!(
                    extension = subscription.extension,
                    "PBX forgot the dialog subscription (481); subscribing anew"
                );
                subscription.reset_dialog_at(now);
            }
            _ => {
                let retry_after = response
                    .header("Retry-After")
                    .and_then(|value| value.split(';').next())
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                tracing::warn!(
                    extension = subscription.extension,
                    status,
                    "dialog subscription refused; retrying later"
                );
                subscription.fail(now, retry_after);
            }
        }
        true
    }

    /// A NOTIFY's Subscription-State for the dialog with `call_id`; `false` when ringside holds
    /// no subscription with that Call-ID.
    pub fn on_notify(
        &mut self,
        call_id: &str,
        state: Option<&SubscriptionState>,
        now: Instant,
    ) -> bool {
        let Some(subscription) = self
            .subscriptions
            .iter_mut()
            .find(|s| !s.call_id.is_empty() && s.call_id == call_id)
        else {
            return false;
        };
        let Some(state) = state else {
            return true;
        };
        match state.state {
            SubState::Terminated => {
                let retry_after = state
                    .retry_after()
                    .map(|secs| Duration::from_secs(u64::from(secs)));
                match state.reason() {
                    // RFC 6665 4.1.3: the subscriber may resubscribe at once.
                    Some("deactivated") | Some("timeout") if retry_after.is_none() => {
                        subscription.reset_dialog_at(now)
                    }
                    _ => subscription.fail(now, retry_after),
                }
            }
            SubState::Active | SubState::Pending => {
                // The notifier may shorten the subscription (RFC 6665 4.1.3).
                if let (Some(expires), State::Active { refresh_at }) =
                    (state.expires(), &mut subscription.state)
                {
                    let sooner = now
                        + Duration::from_secs(u64::from(expires))
                            .mul_f64(0.8)
                            .max(MIN_REFRESH);
                    if sooner < *refresh_at {
                        *refresh_at = sooner;
                    }
                }
            }
            SubState::Other(_) => {}
        }
        true
    }
}

impl Subscription {
    /// Starts a new dialog: a fresh Call-ID and tag, CSeq from 1.
    fn start_dialog(&mut self, config: &SubscriptionConfig) {
        self.call_id = generate_call_id(&config.local.ip().to_string());
        self.from_tag = generate_tag();
        self.to_tag = None;
        self.cseq = 0;
        self.remote_target = target_uri(&self.extension, config.target);
    }

    /// Sends the next SUBSCRIBE of this dialog (initial or refresh).
    fn send(&mut self, config: &SubscriptionConfig, now: Instant) -> Option<(SocketAddr, Bytes)> {
        self.cseq = self.cseq.saturating_add(1);
        let branch = generate_branch();
        let mut via = Via::new(
            "UDP",
            Host::from(config.local.ip()),
            Some(config.local.port()),
            &branch,
        );
        via.params.push("rport", None);
        let local = Uri::Sip(
            SipUri::new(Host::from(config.local.ip()))
                .with_user("ringside")
                .with_port(config.local.port()),
        );
        let mut to = NameAddr::new(target_uri(&self.extension, config.target));
        if let Some(tag) = &self.to_tag {
            to = to.with_tag(tag);
        }
        let built = RequestBuilder::subscribe_dialog(self.remote_target.clone(), self.expires_secs)
            .via(via)
            .from(NameAddr::new(local.clone()).with_tag(&self.from_tag))
            .to(to)
            .call_id(&self.call_id)
            .cseq(self.cseq)
            .contact(NameAddr::new(local))
            .header("User-Agent", "ringside")
            .build();
        let request = match built {
            Ok(request) => request,
            Err(error) => {
                // Only a misconfigured extension can make the request unbuildable; retrying the
                // same request later is the best that can be done, and is logged.
                tracing::warn!(extension = self.extension, %error, "cannot build SUBSCRIBE");
                self.fail(now, Some(MAX_BACKOFF));
                return None;
            }
        };
        let bytes = request.to_bytes();
        self.state = State::Pending(ClientTransaction {
            branch,
            bytes: bytes.clone(),
            retransmit_at: now + T1,
            interval: T1,
            deadline: now + TIMER_F,
        });
        Some((config.target, bytes))
    }

    /// Gives up on this dialog; a new one starts after the backoff (or `retry_after`).
    fn fail(&mut self, now: Instant, retry_after: Option<Duration>) {
        self.failures = self.failures.saturating_add(1);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << self.failures.saturating_sub(1).min(10))
            .min(MAX_BACKOFF);
        self.state = State::Waiting {
            at: now + retry_after.unwrap_or(backoff),
        };
    }

    /// Starts a new dialog at `now` without counting a failure.
    fn reset_dialog_at(&mut self, now: Instant) {
        self.state = State::Waiting { at: now };
    }
}

fn target_uri(extension: &str, target: SocketAddr) -> Uri {
    Uri::Sip(
        SipUri::new(Host::from(target.ip()))
            .with_user(extension)
            .with_port(target.port()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sip::{Method, parse};

    fn config() -> SubscriptionConfig {
        SubscriptionConfig {
            target: "192.0.2.10:5060".parse().unwrap(),
            local: "192.0.2.20:5070".parse().unwrap(),
            expires_secs: 600,
            extensions: vec!["1001".into()],
        }
    }

    fn only(sent: Vec<(SocketAddr, Bytes)>) -> SipMessage {
        assert_eq!(sent.len(), 1, "one datagram expected");
        let (to, bytes) = &sent[0];
        assert_eq!(*to, config().target);
        parse(bytes).unwrap()
    }

    fn answer(request: &SipMessage, status: u16, extra: &[(&str, &str)]) -> SipMessage {
        let mut builder = request.response(status).to_tag("pbx-tag");
        for (name, value) in extra {
            builder = builder.header(name, value);
        }
        builder.build().unwrap()
    }

    #[test]
    fn subscribes_at_start_and_retransmits_until_answered() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        assert_eq!(first.method(), Some(&Method::Subscribe));
        assert_eq!(first.event().unwrap().unwrap().package, "dialog");
        assert_eq!(first.expires(), Ok(Some(600)));
        assert_eq!(first.request_uri_user().as_deref(), Some("1001"));
        assert!(first.top_via().unwrap().has_rport());
        // Timer E: 500 ms, then 1 s later, then 2 s later.
        assert!(
            subscriptions
                .on_timer(start + Duration::from_millis(499))
                .is_empty()
        );
        let again = only(subscriptions.on_timer(start + Duration::from_millis(500)));
        assert_eq!(again, first);
        assert!(
            subscriptions
                .on_timer(start + Duration::from_millis(1400))
                .is_empty()
        );
        assert_eq!(
            only(subscriptions.on_timer(start + Duration::from_millis(1500))),
            first
        );
        assert!(subscriptions.on_response(&answer(&first, 200, &[("Expires", "100")]), start));
        assert_eq!(subscriptions.status("1001"), Some(Status::Active));
        assert!(
            subscriptions
                .on_timer(start + Duration::from_secs(5))
                .is_empty()
        );
    }

    #[test]
    fn refreshes_at_eighty_percent_of_the_granted_expires_in_the_same_dialog() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        subscriptions.on_response(&answer(&first, 202, &[("Expires", "100")]), start);
        assert_eq!(
            subscriptions.next_deadline(),
            Some(start + Duration::from_secs(80))
        );
        assert!(
            subscriptions
                .on_timer(start + Duration::from_secs(79))
                .is_empty()
        );
        let refresh = only(subscriptions.on_timer(start + Duration::from_secs(80)));
        assert_eq!(refresh.call_id(), first.call_id());
        assert_eq!(refresh.cseq().unwrap().number, 2);
        assert_eq!(refresh.to_header().unwrap().tag(), Some("pbx-tag"));
        assert_eq!(
            refresh.from_header().unwrap().tag(),
            first.from_header().unwrap().tag()
        );
    }

    #[test]
    fn a_481_to_a_refresh_starts_a_new_subscription_at_once() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        subscriptions.on_response(&answer(&first, 200, &[("Expires", "10")]), start);
        let at = start + Duration::from_secs(8);
        let refresh = only(subscriptions.on_timer(at));
        subscriptions.on_response(&answer(&refresh, 481, &[]), at);
        let fresh = only(subscriptions.on_timer(at));
        assert_ne!(fresh.call_id(), first.call_id());
        assert_eq!(fresh.cseq().unwrap().number, 1);
        assert_eq!(fresh.to_header().unwrap().tag(), None);
    }

    #[test]
    fn failures_back_off_doubling() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        subscriptions.on_response(&answer(&first, 503, &[]), start);
        assert_eq!(subscriptions.next_deadline(), Some(start + FIRST_BACKOFF));
        let second = only(subscriptions.on_timer(start + FIRST_BACKOFF));
        let at = start + FIRST_BACKOFF;
        subscriptions.on_response(&answer(&second, 404, &[]), at);
        assert_eq!(subscriptions.next_deadline(), Some(at + FIRST_BACKOFF * 2));
    }

    #[test]
    fn retry_after_is_respected() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        subscriptions.on_response(&answer(&first, 503, &[("Retry-After", "42")]), start);
        assert_eq!(
            subscriptions.next_deadline(),
            Some(start + Duration::from_secs(42))
        );
    }

    #[test]
    fn no_answer_within_timer_f_counts_as_a_failure() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        only(subscriptions.on_timer(start));
        let mut sent = 1;
        let mut at = start;
        while at < start + TIMER_F {
            at += Duration::from_millis(100);
            sent += subscriptions.on_timer(at).len();
        }
        // 0, 0.5, 1.5, 3.5, 7.5, 11.5, ... every 4 s until 32 s.
        assert_eq!(sent, 11);
        assert_eq!(subscriptions.status("1001"), Some(Status::Waiting));
    }

    #[test]
    fn interval_too_brief_retries_with_min_expires() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        subscriptions.on_response(&answer(&first, 423, &[("Min-Expires", "3600")]), start);
        let retry = only(subscriptions.on_timer(start));
        assert_eq!(retry.expires(), Ok(Some(3600)));
    }

    #[test]
    fn a_terminating_notify_resubscribes() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        subscriptions.on_response(&answer(&first, 200, &[]), start);
        let call_id = first.call_id().unwrap().to_owned();
        let terminated: SubscriptionState = "terminated;reason=deactivated".parse().unwrap();
        assert!(subscriptions.on_notify(&call_id, Some(&terminated), start));
        assert_eq!(subscriptions.next_deadline(), Some(start));
        let rejected: SubscriptionState = "terminated;reason=rejected".parse().unwrap();
        assert!(!subscriptions.on_notify("someone-else", Some(&rejected), start));
    }

    #[test]
    fn unrelated_responses_match_nothing() {
        let start = Instant::now();
        let mut subscriptions = Subscriptions::new(config(), start);
        let first = only(subscriptions.on_timer(start));
        let text = String::from_utf8(first.to_bytes().to_vec())
            .unwrap()
            .replace("branch=z9hG4bK", "branch=z9hG4bKother");
        let other = parse(text.as_bytes()).unwrap();
        assert!(!subscriptions.on_response(&answer(&other, 200, &[]), start));
    }
}
