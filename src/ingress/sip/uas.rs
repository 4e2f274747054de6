//! The user-agent server: what ringside answers to each request and which call news it gives the
//! call service, with the transaction state RFC 3261 requires of a UAS and no more.
//!
//! It is deliberately free of sockets and tasks: validated messages and the time come in, and
//! [`Action`]s come out (datagrams or TCP writes to send, call events to submit, redirect lookups
//! to run). The runner in `mod.rs` owns the sockets and carries the actions out, so every rule
//! here — retransmissions absorbed, 487 retransmitted on Timer G until the ACK, CANCEL matched to
//! its INVITE — is tested with a virtual clock.
//!
//! Monitor mode: ringside is one more branch of a forked inbound call. An INVITE gets 100 Trying
//! and 180 Ringing (with a To tag kept for the whole transaction) and never a 2xx or 6xx, so ringside
//! can never take a call away from a phone. Ringing pops; the CANCEL that ends the branch gets
//! 200 OK and the INVITE 487, and becomes a hangup (answered elsewhere when the CANCEL carries
//! `Reason: SIP;cause=200`). Redirect mode: the INVITE gets 100 Trying while the account manager
//! is looked up, then 302 with that agent's extension as Contact (or the fallback).
//!
//! Bounds: at most [`MAX_INVITE_TRANSACTIONS`] INVITE transactions (more INVITEs are answered
//! 503 with Retry-After and counted) and [`MAX_NON_INVITE_TRANSACTIONS`] remembered non-INVITE
//! answers (beyond that, answers are sent but not remembered, so a retransmission is processed
//! again, which every non-INVITE handler here tolerates). Every transaction has a deadline: Timer H
//! or I for INVITEs that got a final response, Timer J for the others, and
//! `calls.max_call_age_secs` for one that is still ringing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::call::{
    AgentId, Audience, CallEvent, Direction, EventKind, MAX_CALL_ID_BYTES, Party, Source,
};
use crate::directory::Directory;
use crate::matching;
use crate::protocol::sip::{
    Method, ResponseBuilder, SipMessage, Uri, generate_tag, parse_dialog_info,
};
use crate::settings::{Settings, SipMode};
use crate::storage::now_ms;

use super::counters::{DropReason, SipCounters};
use super::dialog_events::{ChangeKind, DialogChange, DialogWatch};
use super::identity::{self, WITHHELD};
use super::subscriptions::Subscriptions;
use super::transaction::{ReplyPath, T1, T2, TIMER_H, TIMER_I, TIMER_J, TimerKind, Timers, TxnKey};

/// The most INVITE transactions held at once.
pub const MAX_INVITE_TRANSACTIONS: usize = 32_768;
/// The most non-INVITE answers remembered for retransmissions.
pub const MAX_NON_INVITE_TRANSACTIONS: usize = 131_072;
/// A ringing INVITE is reminded with its 180 this often, so proxies do not cancel it after their
/// three-minute Timer C (RFC 3261 13.3.1.1).
pub const RINGING_REFRESH: Duration = Duration::from_secs(60);
/// The methods ringside handles.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY";
/// The bodies ringside reads.
pub const ACCEPT: &str = "application/sdp, application/dialog-info+xml";
const DIALOG_INFO: &str = "application/dialog-info+xml";
/// How long a caller given `503` for a full table should wait.
const RETRY_AFTER_SECS: &str = "5";
/// Bodies an INVITE may carry; ringside reads none of them but refuses what a real UA would.
const INVITE_BODIES: [&str; 3] = [
    "application/sdp",
    "multipart/mixed",
    "multipart/alternative",
];

/// Agents by extension, as the directory knows them (a trait so tests need no database).
pub trait AgentLookup: Send + Sync {
    fn agent_for(&self, extension: &str) -> Option<AgentId>;
}

impl AgentLookup for Directory {
    fn agent_for(&self, extension: &str) -> Option<AgentId> {
        self.resolve(extension).map(AgentId)
    }
}

/// What the runner must do.
#[derive(Debug)]
pub enum Action {
    Send {
        to: ReplyPath,
        bytes: Bytes,
    },
    Submit(CallEvent),
    /// Find where to redirect an INVITE; answer with [`Uas::on_redirect`].
    LookupRedirect {
        key: TxnKey,
        query: RedirectQuery,
    },
}

/// What a redirect decision is made from.
#[derive(Debug, Clone)]
pub struct RedirectQuery {
    pub caller: Option<Party>,
    pub dialed: Option<Party>,
    /// The Request-URI host, for Contacts when `sip.redirect_domain` is empty.
    pub request_host: Option<String>,
}

/// Where an INVITE is redirected, and whose pop that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectDecision {
    /// `None`: answer `sip.redirect_fallback_status`.
    pub contact: Option<Uri>,
    pub agent: Option<AgentId>,
}

/// The call an INVITE is about, as reported to the call service.
#[derive(Debug, Clone)]
struct CallParties {
    call_id: String,
    caller: Option<Party>,
    dialed: Option<Party>,
}

#[derive(Debug)]
enum InviteState {
    /// Redirect mode: 100 Trying sent, waiting for the lookup.
    Deciding,
    /// Monitor mode: 180 Ringing sent.
    Ringing { refresh_at: Instant },
    /// A final response sent; waiting for the ACK. `retransmit_at` is Timer G (UDP only).
    Completed {
        retransmit_at: Option<Instant>,
        interval: Duration,
    },
    /// The ACK came; absorbing its retransmissions until Timer I.
    Confirmed,
}

#[derive(Debug)]
struct InviteTransaction {
    /// The INVITE without its body: what later responses are built from.
    request: SipMessage,
    source: SocketAddr,
    reply: ReplyPath,
    to_tag: String,
    last_response: Bytes,
    state: InviteState,
    expires_at: Instant,
    /// `None` when the Call-ID is unusable for the call model (too long).
    parties: Option<CallParties>,
    /// Whether a Ringing went to the call service (so a CANCEL must be reported too).
    reported: bool,
}

#[derive(Debug)]
struct NonInviteTransaction {
    response: Bytes,
    reply: ReplyPath,
    expires_at: Instant,
}

/// The UAS state.
pub struct Uas {
    settings: Arc<Settings>,
    agents: Arc<dyn AgentLookup>,
    counters: Arc<SipCounters>,
    invites: HashMap<TxnKey, InviteTransaction>,
    non_invites: HashMap<TxnKey, NonInviteTransaction>,
    timers: Timers,
    dialogs: DialogWatch,
    subscriptions: Option<Subscriptions>,
    max_ringing: Duration,
}

impl Uas {
    pub fn new(
        settings: Arc<Settings>,
        agents: Arc<dyn AgentLookup>,
        counters: Arc<SipCounters>,
        subscriptions: Option<Subscriptions>,
    ) -> Self {
        let max_ringing = Duration::from_secs(settings.calls.max_call_age_secs.max(60) as u64);
        Uas {
            settings,
            agents,
            counters,
            invites: HashMap::new(),
            non_invites: HashMap::new(),
            timers: Timers::default(),
            dialogs: DialogWatch::new(),
            subscriptions,
            max_ringing,
        }
    }

    /// INVITE transactions held now.
    #[cfg(test)]
    pub fn invite_transactions(&self) -> usize {
        self.invites.len()
    }

    /// Non-INVITE answers remembered now.
    #[cfg(test)]
    pub fn non_invite_transactions(&self) -> usize {
        self.non_invites.len()
    }

    /// When [`Uas::on_timer`] should next run.
    pub fn next_deadline(&self) -> Option<Instant> {
        let subscriptions = self
            .subscriptions
            .as_ref()
            .and_then(Subscriptions::next_deadline);
        match (self.timers.next_deadline(), subscriptions) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A validated request from `source`, whose responses go to `reply`.
    pub fn on_request(
        &mut self,
        request: SipMessage,
        source: SocketAddr,
        reply: ReplyPath,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(method) = request.method().cloned() else {
            return out;
        };
        self.counters.count_request(&method);
        match method {
            Method::Ack => self.on_ack(&request, now),
            Method::Invite => self.on_invite(request, source, reply, now, &mut out),
            _ => self.on_non_invite(&method, &request, source, reply, now, &mut out),
        }
        out
    }

    /// A validated response.
    pub fn on_response(&mut self, response: &SipMessage, now: Instant) {
        let ours = self
            .subscriptions
            .as_mut()
            .is_some_and(|subscriptions| subscriptions.on_response(response, now));
        if !ours {
            self.counters.count_drop(DropReason::StrayResponse);
        }
    }

    /// The redirect lookup for the INVITE transaction `key` is done.
    pub fn on_redirect(
        &mut self,
        key: &TxnKey,
        decision: RedirectDecision,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(transaction) = self.invites.get_mut(key) else {
            return out;
        };
        // A CANCEL may have ended the transaction while the lookup ran.
        if !matches!(transaction.state, InviteState::Deciding) {
            return out;
        }
        if let Some(parties) = transaction.parties.clone() {
            transaction.reported = true;
            let audience = Audience::Agents(decision.agent.into_iter().collect());
            out.push(Action::Submit(event(
                parties,
                EventKind::Ringing { audience },
            )));
        }
        match decision.contact {
            Some(contact) => {
                self.complete_invite(key, 302, |builder| builder.contact(contact), now, &mut out)
            }
            None => {
                let status = self.settings.sip.redirect_fallback_status;
                self.complete_invite(key, status, |builder| builder, now, &mut out)
            }
        }
        out
    }

    /// Runs every timer due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some((at, kind, key)) = self.timers.pop_due(now) {
            match kind {
                TimerKind::Retransmit => self.retransmit_final(&key, at, now, &mut out),
                TimerKind::RefreshRinging => self.refresh_ringing(&key, at, now, &mut out),
                TimerKind::ExpireInvite => {
                    if self
                        .invites
                        .get(&key)
                        .is_some_and(|transaction| transaction.expires_at == at)
                        && let Some(transaction) = self.invites.remove(&key)
                        && matches!(transaction.state, InviteState::Completed { .. })
                    {
                        tracing::debug!("no ACK for a final response within Timer H");
                    }
                }
                TimerKind::ExpireNonInvite => {
                    if self
                        .non_invites
                        .get(&key)
                        .is_some_and(|transaction| transaction.expires_at == at)
                    {
                        self.non_invites.remove(&key);
                    }
                }
            }
        }
        if let Some(subscriptions) = &mut self.subscriptions {
            for (target, bytes) in subscriptions.on_timer(now) {
                out.push(Action::Send {
                    to: ReplyPath::Udp(target),
                    bytes,
                });
            }
        }
        out
    }

    fn on_ack(&mut self, ack: &SipMessage, now: Instant) {
        let Some(key) = TxnKey::for_request(ack, false) else {
            self.counters.count_drop(DropReason::UnmatchedAck);
            return;
        };
        let Some(transaction) = self.invites.get_mut(&key) else {
            self.counters.count_drop(DropReason::UnmatchedAck);
            return;
        };
        match transaction.state {
            InviteState::Completed { .. } if transaction.reply.is_reliable() => {
                self.invites.remove(&key);
            }
            InviteState::Completed { .. } => {
                transaction.state = InviteState::Confirmed;
                transaction.expires_at = now + TIMER_I;
                self.timers
                    .schedule(transaction.expires_at, TimerKind::ExpireInvite, &key);
            }
            InviteState::Confirmed => self.counters.count_retransmission_absorbed(),
            // An ACK before any final response acknowledges nothing.
            InviteState::Deciding | InviteState::Ringing { .. } => {
                self.counters.count_drop(DropReason::UnmatchedAck)
            }
        }
    }

    fn on_invite(
        &mut self,
        request: SipMessage,
        source: SocketAddr,
        reply: ReplyPath,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(key) = TxnKey::for_request(&request, false) else {
            self.counters.count_drop(DropReason::Invalid);
            return;
        };
        if let Some(transaction) = self.invites.get(&key) {
            // A retransmission: the last response again, nothing new for the call model.
            self.counters.count_retransmission_absorbed();
            if !transaction.last_response.is_empty() {
                self.counters.count_retransmission_sent();
                out.push(Action::Send {
                    to: transaction.reply.clone(),
                    bytes: transaction.last_response.clone(),
                });
            }
            return;
        }
        if self.invites.len() >= MAX_INVITE_TRANSACTIONS {
            self.counters.count_drop(DropReason::TransactionsFull);
            let to_tag = generate_tag();
            self.respond(
                &request,
                source,
                &reply,
                503,
                Some(&to_tag),
                out,
                |builder| builder.header("Retry-After", RETRY_AFTER_SECS),
            );
            return;
        }
        let to_tag = generate_tag();
        let trying = self.respond(&request, source, &reply, 100, None, out, |builder| builder);
        let parties = self.parties(&request);
        let stored = SipMessage::new(
            request.start_line().clone(),
            request.headers().clone(),
            Bytes::new(),
        );
        let rejection = invite_rejection(&request);
        let redirect = self.settings.sip.mode == SipMode::Redirect;
        self.invites.insert(
            key.clone(),
            InviteTransaction {
                request: stored,
                source,
                reply: reply.clone(),
                to_tag: to_tag.clone(),
                last_response: trying.unwrap_or_default(),
                state: InviteState::Deciding,
                expires_at: now + self.max_ringing,
                parties: parties.clone(),
                reported: false,
            },
        );
        self.timers
            .schedule(now + self.max_ringing, TimerKind::ExpireInvite, &key);

        if let Some((status, header)) = rejection {
            self.complete_invite(
                &key,
                status,
                |builder| match header {
                    Some((name, value)) => builder.header(name, &value),
                    None => builder,
                },
                now,
                out,
            );
            return;
        }
        if redirect {
            out.push(Action::LookupRedirect {
                key,
                query: RedirectQuery {
                    caller: parties.as_ref().and_then(|p| p.caller.clone()),
                    dialed: parties.as_ref().and_then(|p| p.dialed.clone()),
                    request_host: request
                        .request_uri()
                        .and_then(Uri::host)
                        .map(ToString::to_string),
                },
            });
            return;
        }
        let ringing = self.respond(&request, source, &reply, 180, Some(&to_tag), out, |b| b);
        let audience = self.ringing_audience(&request);
        if let Some(transaction) = self.invites.get_mut(&key) {
            let refresh_at = now + RINGING_REFRESH;
            transaction.state = InviteState::Ringing { refresh_at };
            if let Some(bytes) = ringing {
                transaction.last_response = bytes;
            }
            self.timers
                .schedule(refresh_at, TimerKind::RefreshRinging, &key);
            if let Some(parties) = parties {
                transaction.reported = true;
                out.push(Action::Submit(event(
                    parties,
                    EventKind::Ringing { audience },
                )));
            }
        }
    }

    fn on_non_invite(
        &mut self,
        method: &Method,
        request: &SipMessage,
        source: SocketAddr,
        reply: ReplyPath,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(key) = TxnKey::for_request(request, false) else {
            self.counters.count_drop(DropReason::Invalid);
            return;
        };
        if let Some(transaction) = self.non_invites.get(&key) {
            self.counters.count_retransmission_absorbed();
            self.counters.count_retransmission_sent();
            out.push(Action::Send {
                to: transaction.reply.clone(),
                bytes: transaction.response.clone(),
            });
            return;
        }
        let to_tag = generate_tag();
        let response = if *method == Method::Cancel {
            self.on_cancel(request, source, &reply, now, out)
        } else if let Some((status, header)) = unsupported_extension(request) {
            self.respond(
                request,
                source,
                &reply,
                status,
                Some(&to_tag),
                out,
                |builder| builder.header(header.0, &header.1),
            )
        } else if request
            .request_uri()
            .is_some_and(|uri| !is_supported_scheme(uri))
        {
            self.respond(request, source, &reply, 416, Some(&to_tag), out, |b| b)
        } else {
            match method {
                Method::Options => self.respond(
                    request,
                    source,
                    &reply,
                    200,
                    Some(&to_tag),
                    out,
                    |builder| {
                        builder
                            .header("Allow", ALLOW)
                            .header("Accept", ACCEPT)
                            .header("Allow-Events", "dialog")
                    },
                ),
                // ringside never confirms a dialog, so no BYE can belong to one.
                Method::Bye => {
                    self.respond(request, source, &reply, 481, Some(&to_tag), out, |b| b)
                }
                Method::Notify => self.on_notify(request, source, &reply, &to_tag, now, out),
                _ => self.respond(
                    request,
                    source,
                    &reply,
                    405,
                    Some(&to_tag),
                    out,
                    |builder| builder.header("Allow", ALLOW),
                ),
            }
        };
        let Some(response) = response else {
            return;
        };
        // Over TCP the peer does not retransmit, so there is nothing to absorb (Timer J = 0).
        if !reply.is_reliable() && self.non_invites.len() < MAX_NON_INVITE_TRANSACTIONS {
            let expires_at = now + TIMER_J;
            self.non_invites.insert(
                key.clone(),
                NonInviteTransaction {
                    response,
                    reply,
                    expires_at,
                },
            );
            self.timers
                .schedule(expires_at, TimerKind::ExpireNonInvite, &key);
        }
    }

    /// Answers a CANCEL (RFC 3261 9.2): 481 when its INVITE is unknown, else 200, and a 487 to the
    /// INVITE if it had no final response yet.
    fn on_cancel(
        &mut self,
        cancel: &SipMessage,
        source: SocketAddr,
        reply: &ReplyPath,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Option<Bytes> {
        let invite_key = TxnKey::for_request(cancel, true);
        let Some((key, transaction)) = invite_key.and_then(|key| {
            self.invites
                .get_mut(&key)
                .map(|transaction| (key, transaction))
        }) else {
            let to_tag = generate_tag();
            return self.respond(cancel, source, reply, 481, Some(&to_tag), out, |b| b);
        };
        let pending = matches!(
            transaction.state,
            InviteState::Deciding | InviteState::Ringing { .. }
        );
        // RFC 3261 9.2: the To tag of the 200 matches that of the INVITE's responses.
        let to_tag = transaction.to_tag.clone();
        let hangup = (pending && transaction.reported)
            .then(|| transaction.parties.clone())
            .flatten();
        let answered = self.respond(cancel, source, reply, 200, Some(&to_tag), out, |b| b);
        if pending {
            if let Some(parties) = hangup {
                let reasons = cancel.reasons().unwrap_or_default();
                let answered_elsewhere =
                    reasons.iter().any(|reason| reason.is_answered_elsewhere());
                let cause = cancel
                    .header("Reason")
                    .map(|reason| reason.trim().chars().take(128).collect())
                    .unwrap_or_else(|| "487".to_owned());
                out.push(Action::Submit(event(
                    parties,
                    EventKind::Hangup {
                        cause: Some(cause),
                        answered_elsewhere,
                    },
                )));
            }
            self.complete_invite(&key, 487, |b| b, now, out);
        }
        answered
    }

    /// Answers a NOTIFY. Dialog-info bodies become call news; the Subscription-State is passed to
    /// the subscription it belongs to.
    fn on_notify(
        &mut self,
        notify: &SipMessage,
        source: SocketAddr,
        reply: &ReplyPath,
        to_tag: &str,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Option<Bytes> {
        let is_dialog = matches!(
            notify.event(),
            Ok(Some(event)) if event.package.eq_ignore_ascii_case("dialog")
        );
        if !is_dialog {
            return self.respond(notify, source, reply, 489, Some(to_tag), out, |builder| {
                builder.header("Allow-Events", "dialog")
            });
        }
        if let (Some(subscriptions), Ok(call_id)) = (&mut self.subscriptions, notify.call_id()) {
            let state = notify.subscription_state().ok().flatten();
            subscriptions.on_notify(call_id, state.as_ref(), now);
        }
        if notify.body().is_empty() {
            return self.respond(notify, source, reply, 200, Some(to_tag), out, |b| b);
        }
        let is_dialog_info = matches!(
            notify.content_type(),
            Ok(Some(media)) if media.is(DIALOG_INFO)
        );
        if !is_dialog_info {
            return self.respond(notify, source, reply, 415, Some(to_tag), out, |builder| {
                builder.header("Accept", DIALOG_INFO)
            });
        }
        let info = match parse_dialog_info(notify.body()) {
            Ok(info) => info,
            Err(error) => {
                tracing::info!(%error, "NOTIFY with an unreadable dialog-info body");
                self.counters.count_drop(DropReason::Invalid);
                return self.respond(notify, source, reply, 400, Some(to_tag), out, |builder| {
                    builder.reason("Bad dialog-info Body")
                });
            }
        };
        let answer = self.respond(notify, source, reply, 200, Some(to_tag), out, |b| b);
        for change in self.dialogs.apply(&info, now) {
            if let Some(call_event) = self.dialog_event(change) {
                out.push(Action::Submit(call_event));
            }
        }
        answer
    }

    fn dialog_event(&self, change: DialogChange) -> Option<CallEvent> {
        if change.call_id.is_empty() || change.call_id.len() > MAX_CALL_ID_BYTES {
            return None;
        }
        let agent = change
            .extension
            .as_deref()
            .and_then(|extension| self.agents.agent_for(extension));
        let (caller, kind) = match change.kind {
            ChangeKind::Ringing { caller } => (
                caller.map(|raw| self.normalize(&raw, None)),
                EventKind::Ringing {
                    audience: Audience::Agents(agent.into_iter().collect()),
                },
            ),
            ChangeKind::Answered => (None, EventKind::Answered { by: agent }),
            ChangeKind::Hangup { cause } => (
                None,
                EventKind::Hangup {
                    cause,
                    answered_elsewhere: false,
                },
            ),
        };
        Some(event(
            CallParties {
                call_id: change.call_id,
                caller,
                dialed: None,
            },
            kind,
        ))
    }

    /// Sends a final response to the INVITE transaction `key` and waits for its ACK.
    fn complete_invite(
        &mut self,
        key: &TxnKey,
        status: u16,
        customize: impl FnOnce(ResponseBuilder<'_>) -> ResponseBuilder<'_>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(transaction) = self.invites.get(key) else {
            return;
        };
        let built = customize(
            transaction
                .request
                .response(status)
                .to_tag(&transaction.to_tag)
                .received_from(transaction.source),
        )
        .build();
        let bytes = match built {
            Ok(response) => response.to_bytes(),
            Err(error) => {
                tracing::warn!(%error, status, "cannot build the final response to an INVITE");
                self.invites.remove(key);
                return;
            }
        };
        self.counters.count_response_out(status);
        let reply = transaction.reply.clone();
        out.push(Action::Send {
            to: reply.clone(),
            bytes: bytes.clone(),
        });
        let retransmit_at = (!reply.is_reliable()).then_some(now + T1);
        let expires_at = now + TIMER_H;
        if let Some(transaction) = self.invites.get_mut(key) {
            transaction.last_response = bytes;
            transaction.state = InviteState::Completed {
                retransmit_at,
                interval: T1,
            };
            transaction.expires_at = expires_at;
        }
        if let Some(at) = retransmit_at {
            self.timers.schedule(at, TimerKind::Retransmit, key);
        }
        self.timers
            .schedule(expires_at, TimerKind::ExpireInvite, key);
    }

    /// Timer G: resends the final response, doubling the interval up to T2.
    fn retransmit_final(&mut self, key: &TxnKey, at: Instant, now: Instant, out: &mut Vec<Action>) {
        let Some(transaction) = self.invites.get_mut(key) else {
            return;
        };
        let InviteState::Completed {
            retransmit_at: Some(due),
            interval,
        } = &mut transaction.state
        else {
            return;
        };
        if *due != at {
            return;
        }
        *interval = (*interval * 2).min(T2);
        let next = now + *interval;
        *due = next;
        self.counters.count_retransmission_sent();
        out.push(Action::Send {
            to: transaction.reply.clone(),
            bytes: transaction.last_response.clone(),
        });
        self.timers.schedule(next, TimerKind::Retransmit, key);
    }

    /// Resends 180 Ringing to a long-ringing INVITE.
    fn refresh_ringing(&mut self, key: &TxnKey, at: Instant, now: Instant, out: &mut Vec<Action>) {
        let Some(transaction) = self.invites.get_mut(key) else {
            return;
        };
        let InviteState::Ringing { refresh_at } = &mut transaction.state else {
            return;
        };
        if *refresh_at != at {
            return;
        }
        let next = now + RINGING_REFRESH;
        *refresh_at = next;
        out.push(Action::Send {
            to: transaction.reply.clone(),
            bytes: transaction.last_response.clone(),
        });
        self.timers.schedule(next, TimerKind::RefreshRinging, key);
    }

    /// Builds and sends a response; returns its bytes for the transaction to keep.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        request: &SipMessage,
        source: SocketAddr,
        reply: &ReplyPath,
        status: u16,
        to_tag: Option<&str>,
        out: &mut Vec<Action>,
        customize: impl FnOnce(ResponseBuilder<'_>) -> ResponseBuilder<'_>,
    ) -> Option<Bytes> {
        let mut builder = request.response(status).received_from(source);
        if let Some(tag) = to_tag {
            builder = builder.to_tag(tag);
        }
        match customize(builder).build() {
            Ok(response) => {
                let bytes = response.to_bytes();
                self.counters.count_response_out(status);
                out.push(Action::Send {
                    to: reply.clone(),
                    bytes: bytes.clone(),
                });
                Some(bytes)
            }
            Err(error) => {
                tracing::debug!(%error, status, "cannot build a response");
                None
            }
        }
    }

    /// The call an INVITE is about; `None` when its Call-ID cannot name a call.
    fn parties(&self, request: &SipMessage) -> Option<CallParties> {
        let call_id = request.call_id().ok()?;
        if call_id.len() > MAX_CALL_ID_BYTES {
            return None;
        }
        let dialed_raw = identity::dialed(request);
        let dialed_hint = dialed_raw.as_deref().map(|raw| Party::new(raw, None));
        let caller =
            identity::caller(request).map(|raw| self.normalize(&raw, dialed_hint.as_ref()));
        let dialed = dialed_raw.map(|raw| self.normalize(&raw, None));
        Some(CallParties {
            call_id: call_id.to_owned(),
            caller,
            dialed,
        })
    }

    fn normalize(&self, raw: &str, dialed: Option<&Party>) -> Party {
        if raw == WITHHELD {
            return Party::new(raw, None);
        }
        matching::party(&self.settings, raw, dialed)
    }

    /// The agent whose phone the INVITE rings, or nobody (never everybody: an INVITE for an
    /// extension ringside does not know must not pop on every console).
    fn ringing_audience(&self, request: &SipMessage) -> Audience {
        let agent = identity::ringing_extensions(request)
            .iter()
            .find_map(|extension| self.agents.agent_for(extension));
        Audience::Agents(agent.into_iter().collect())
    }
}

fn event(parties: CallParties, kind: EventKind) -> CallEvent {
    CallEvent {
        source: Source::Sip,
        call_id: parties.call_id,
        at_ms: now_ms(),
        direction: Direction::Inbound,
        caller: parties.caller,
        dialed: parties.dialed,
        kind,
    }
}

/// Option tags in Require, which ringside supports none of: 420 with Unsupported (RFC 3261 8.2.2.3).
fn unsupported_extension(request: &SipMessage) -> Option<(u16, (&'static str, String))> {
    let tags: Vec<&str> = request
        .headers()
        .get_all("Require")
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .collect();
    (!tags.is_empty()).then(|| (420, ("Unsupported", tags.join(", "))))
}

fn is_supported_scheme(uri: &Uri) -> bool {
    matches!(uri, Uri::Sip(_) | Uri::Tel(_))
}

/// Why an INVITE must be refused before it rings: an unsupported extension (420), a Request-URI
/// scheme ringside cannot serve (416), or a body no UA could read (415).
fn invite_rejection(request: &SipMessage) -> Option<(u16, Option<(&'static str, String)>)> {
    if let Some((status, header)) = unsupported_extension(request) {
        return Some((status, Some(header)));
    }
    if request
        .request_uri()
        .is_some_and(|uri| !is_supported_scheme(uri))
    {
        return Some((416, None));
    }
    if !request.body().is_empty() {
        let readable = match request.content_type() {
            Ok(Some(media)) => INVITE_BODIES.iter().any(|essence| media.is(essence)),
            // RFC 3261 20.15: a body without Content-Type is taken as SDP.
            Ok(None) => true,
            Err(_) => false,
        };
        if !readable {
            return Some((415, Some(("Accept", "application/sdp".to_owned()))));
        }
    }
    None
}
