//! The call model: every call event from every source goes in, the effects the daemon must carry out
//! come out. It finds the call an event is about (by id, or by the merge rule for an id never seen),
//! applies it, and remembers ended calls for a while as tombstones so that late or repeated news
//! about them is recognised and dropped. Its memory is bounded: `tick` ends calls that went silent
//! and forgets tombstones past their retention, and the number of live calls is capped.
//!
//! Rules that are choices rather than facts:
//! - Ids: the same id string is the same call whichever source reports it. The call's canonical id
//!   is the first id it was reported under; every other id is an alias.
//! - Hangups: a hangup from a source that sees the whole call (AMI, ESL, webhook, simulator) ends
//!   the call. A SIP hangup ends only ringside's branch: it ends the call when every source that
//!   reported the call has hung up (so a SIP-only call ends on its CANCEL). A SIP CANCEL with
//!   `cause=200` on a call other sources still follow is remembered, and makes the outcome
//!   `AnsweredElsewhere` if nothing better is heard.
//! - Answered elsewhere: a call that ends as `AnsweredElsewhere` without an answer having been
//!   announced gets `Answered { by: None }` just before `Ended`, so the hub withdraws its pops.
//! - `Abandoned` ends the call whichever source reports it.
//! - News under an unknown id that belongs to an ended call (by the merge rule) is absorbed by its
//!   tombstone: it causes nothing and its id becomes an alias, so the rest of that source's news
//!   about the call is dropped too.
//! - A `RingStopped` under an unknown id that joins no call is dropped rather than starting a call.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::effect::Effect;
use super::event::{CallEvent, EventKind};
use super::merge::MatchFacts;
use super::snapshot::{ActiveCounts, LiveCall};
use super::tracked::{Continuation, TrackedCall};

/// Call ids longer than this are refused; no source uses anything near it (SIP Call-IDs are the
/// longest, well under 256 bytes in practice).
pub const MAX_CALL_ID_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallModelConfig {
    /// How far apart two sources' first ringing may be for them to be taken as the same call.
    pub merge_window_ms: u64,
    /// How long an ended call is remembered, so late or repeated news about it is dropped.
    pub tombstone_retention_ms: u64,
    /// A call never answered that has had no news for this long is presumed over (`Stale`).
    pub max_call_age_ms: u64,
    /// An answered call that has had no news for this long is presumed over (`Stale`); longer than
    /// `max_call_age_ms` because a conversation brings no news while it goes on.
    pub max_answered_call_age_ms: u64,
    /// New calls beyond this many live ones are refused (a flood of made-up ids must not grow
    /// memory without bound).
    pub max_live_calls: usize,
    /// Beyond this many tombstones the oldest are forgotten early.
    pub max_tombstones: usize,
}

impl Default for CallModelConfig {
    fn default() -> Self {
        CallModelConfig {
            merge_window_ms: 5_000,
            tombstone_retention_ms: 10 * 60 * 1_000,
            max_call_age_ms: 2 * 60 * 60 * 1_000,
            max_answered_call_age_ms: 12 * 60 * 60 * 1_000,
            max_live_calls: 50_000,
            max_tombstones: 200_000,
        }
    }
}

/// Why an event was refused. Refused events change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("call event has an empty call id")]
    EmptyCallId,
    #[error("call id is {length} bytes long, more than the {MAX_CALL_ID_BYTES} accepted")]
    CallIdTooLong { length: usize },
    #[error("already tracking {limit} live calls; refusing a new one")]
    TooManyLiveCalls { limit: usize },
}

/// Identifies a call inside the model, live or ended; allocated in order, so it also orders calls
/// by when they were first heard of.
type CallKey = u64;

/// What is left of an ended call: enough to recognise news about it.
#[derive(Debug, Clone)]
struct Tombstone {
    ids: Vec<String>,
    facts: MatchFacts,
    forget_at_ms: i64,
}

#[derive(Debug)]
pub struct CallModel {
    config: CallModelConfig,
    next_key: CallKey,
    live: BTreeMap<CallKey, TrackedCall>,
    ended: BTreeMap<CallKey, Tombstone>,
    /// When each tombstone is forgotten, soonest first.
    forget_order: BTreeSet<(i64, CallKey)>,
    /// Every id of every live or ended call.
    ids: HashMap<String, CallKey>,
    /// Merge candidates by the digit forms of the customer's number, live and ended.
    by_number: HashMap<String, BTreeSet<CallKey>>,
}

/// Milliseconds from configuration, as the signed times events carry.
fn millis(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Default for CallModel {
    fn default() -> Self {
        CallModel::new(CallModelConfig::default())
    }
}

impl CallModel {
    pub fn new(config: CallModelConfig) -> Self {
        CallModel {
            config,
            next_key: 0,
            live: BTreeMap::new(),
            ended: BTreeMap::new(),
            forget_order: BTreeSet::new(),
            ids: HashMap::new(),
            by_number: HashMap::new(),
        }
    }

    pub fn config(&self) -> &CallModelConfig {
        &self.config
    }

    /// Applies one event and returns the effects to carry out, in order.
    pub fn handle(&mut self, event: &CallEvent) -> Result<Vec<Effect>, EventError> {
        if event.call_id.trim().is_empty() {
            return Err(EventError::EmptyCallId);
        }
        if event.call_id.len() > MAX_CALL_ID_BYTES {
            return Err(EventError::CallIdTooLong {
                length: event.call_id.len(),
            });
        }
        let key = match self.ids.get(&event.call_id) {
            Some(key) => *key,
            None => match self.find_call_to_join(event) {
                Some(key) => {
                    self.ids.insert(event.call_id.clone(), key);
                    key
                }
                None => return self.start_call(event),
            },
        };
        if let Some(tombstone) = self.ended.get_mut(&key) {
            if !tombstone.ids.contains(&event.call_id) {
                tombstone.ids.push(event.call_id.clone());
            }
            // Only the source is noted: the parties, and so the merge index, stay as they ended.
            if !tombstone.facts.sources.contains(&event.source) {
                tombstone.facts.sources.push(event.source);
            }
            return Ok(Vec::new());
        }
        let mut effects = Vec::new();
        let Some(call) = self.live.get_mut(&key) else {
            // Unreachable while every id maps to a live call or a tombstone; should an id ever be
            // left behind, treating it as unknown is the safe answer.
            self.ids.remove(&event.call_id);
            return self.start_call(event);
        };
        let keys_before = call.facts.index_keys();
        let continuation = call.apply(event, &mut effects);
        let keys_after = call.facts.index_keys();
        if keys_after != keys_before {
            self.unindex(key, &keys_before);
            self.index(key, &keys_after);
        }
        if continuation == Continuation::Ends {
            let base_ms = event.at_ms;
            self.end_call(key, base_ms, &mut effects, TrackedCall::finish);
        }
        Ok(effects)
    }

    /// Ends calls that went silent too long and forgets tombstones past their retention. Call it
    /// every few seconds with the current time.
    /// Returns the `Ended` effects of the expired calls (outcome `Stale`), oldest call first.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Effect> {
        let expired: Vec<CallKey> = self
            .live
            .iter()
            .filter(|(_, call)| {
                let limit = if call.is_answered() {
                    self.config.max_answered_call_age_ms
                } else {
                    self.config.max_call_age_ms
                };
                // A call whose news is stamped far in the future (a source with a wrong clock)
                // must not live for ever either.
                now_ms.abs_diff(call.last_news_ms) > limit
            })
            .map(|(key, _)| *key)
            .collect();
        let mut effects = Vec::new();
        for key in expired {
            self.end_call(key, now_ms, &mut effects, TrackedCall::expire);
        }
        while let Some(&(forget_at_ms, key)) = self.forget_order.first() {
            if forget_at_ms > now_ms {
                break;
            }
            self.forget(key);
        }
        let latest_due_ms = now_ms.saturating_add(millis(self.config.tombstone_retention_ms));
        while let Some(&(forget_at_ms, key)) = self.forget_order.last() {
            if forget_at_ms <= latest_due_ms {
                break;
            }
            // Due later than anything ended now could be: its end was stamped in the future.
            self.forget(key);
        }
        effects
    }

    /// Live calls.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Ended calls still remembered.
    pub fn tombstone_count(&self) -> usize {
        self.ended.len()
    }

    /// How many live calls are in each state.
    pub fn active(&self) -> ActiveCounts {
        let mut counts = ActiveCounts::default();
        for call in self.live.values() {
            counts.count(call.state());
        }
        counts
    }

    /// Every live call, in the order they were first heard of.
    pub fn calls(&self) -> Vec<LiveCall> {
        self.live.values().map(TrackedCall::snapshot).collect()
    }

    /// The live call known under `call_id` (canonical or alias).
    pub fn call(&self, call_id: &str) -> Option<LiveCall> {
        let key = self.ids.get(call_id)?;
        self.live.get(key).map(TrackedCall::snapshot)
    }

    /// Whether `call_id` belongs to an ended call still remembered.
    pub fn is_ended(&self, call_id: &str) -> bool {
        self.ids
            .get(call_id)
            .is_some_and(|key| self.ended.contains_key(key))
    }

    fn find_call_to_join(&self, event: &CallEvent) -> Option<CallKey> {
        let window = millis(self.config.merge_window_ms);
        let mut candidates: BTreeSet<CallKey> = BTreeSet::new();
        for key in event.remote_party()?.digit_forms() {
            if let Some(keys) = self.by_number.get(&key) {
                candidates.extend(keys);
            }
        }
        candidates
            .into_iter()
            .filter_map(|key| {
                let (is_ended, facts) = match (self.live.get(&key), self.ended.get(&key)) {
                    (Some(call), _) => (false, &call.facts),
                    (None, Some(tombstone)) => (true, &tombstone.facts),
                    (None, None) => return None,
                };
                let distance = facts.join_distance(event, window)?;
                // Live calls first, then the closest in time, then the oldest.
                Some(((is_ended, distance, key), key))
            })
            .min()
            .map(|(_, key)| key)
    }

    fn start_call(&mut self, event: &CallEvent) -> Result<Vec<Effect>, EventError> {
        let ends_at_once = matches!(event.kind, EventKind::Hangup { .. } | EventKind::Abandoned);
        if matches!(event.kind, EventKind::RingStopped { .. }) {
            return Ok(Vec::new());
        }
        if !ends_at_once && self.live.len() >= self.config.max_live_calls {
            return Err(EventError::TooManyLiveCalls {
                limit: self.config.max_live_calls,
            });
        }
        let key = self.next_key;
        self.next_key += 1;
        let mut call = TrackedCall::new(event);
        let mut effects = Vec::new();
        let continuation = call.apply(event, &mut effects);
        self.ids.insert(event.call_id.clone(), key);
        self.index(key, &call.facts.index_keys());
        self.live.insert(key, call);
        if continuation == Continuation::Ends {
            self.end_call(key, event.at_ms, &mut effects, TrackedCall::finish);
        }
        Ok(effects)
    }

    /// Turns a live call into a tombstone; `close` pushes its final effects.
    fn end_call(
        &mut self,
        key: CallKey,
        now_ms: i64,
        effects: &mut Vec<Effect>,
        close: fn(TrackedCall, &mut Vec<Effect>),
    ) {
        let Some(call) = self.live.remove(&key) else {
            return;
        };
        let base_ms = now_ms.max(call.last_news_ms);
        let forget_at_ms = base_ms.saturating_add(millis(self.config.tombstone_retention_ms));
        let tombstone = Tombstone {
            ids: call.ids(),
            facts: call.facts.clone(),
            forget_at_ms,
        };
        close(call, effects);
        self.ended.insert(key, tombstone);
        self.forget_order.insert((forget_at_ms, key));
        while self.ended.len() > self.config.max_tombstones {
            let Some(&(_, oldest)) = self.forget_order.first() else {
                break;
            };
            self.forget(oldest);
        }
    }

    fn forget(&mut self, key: CallKey) {
        let Some(tombstone) = self.ended.remove(&key) else {
            return;
        };
        self.forget_order.remove(&(tombstone.forget_at_ms, key));
        for id in &tombstone.ids {
            if self.ids.get(id) == Some(&key) {
                self.ids.remove(id);
            }
        }
        self.unindex(key, &tombstone.facts.index_keys());
    }

    fn index(&mut self, key: CallKey, number_keys: &[String]) {
        for number in number_keys {
            self.by_number
                .entry(number.clone())
                .or_default()
                .insert(key);
        }
    }

    fn unindex(&mut self, key: CallKey, number_keys: &[String]) {
        for number in number_keys {
            if let Some(keys) = self.by_number.get_mut(number) {
                keys.remove(&key);
                if keys.is_empty() {
                    self.by_number.remove(number);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::effect::{CallRecord, Outcome};
    use super::super::event::{AgentId, Audience, Direction, Party, Source};
    use super::super::snapshot::CallState;
    use super::*;

    const T0: i64 = 1_700_000_000_000;
    const SECOND: i64 = 1_000;
    const MINUTE: i64 = 60 * SECOND;

    fn caller() -> Party {
        Party::new("013800138000", Some("+8613800138000".into()))
    }

    fn event(source: Source, call_id: &str, offset_ms: i64, kind: EventKind) -> CallEvent {
        CallEvent {
            source,
            call_id: call_id.to_owned(),
            at_ms: T0 + offset_ms,
            direction: Direction::Inbound,
            caller: Some(caller()),
            dialed: Some(Party::new("600", None)),
            kind,
        }
    }

    fn outbound(call_id: &str, offset_ms: i64, kind: EventKind) -> CallEvent {
        CallEvent {
            source: Source::Ami,
            call_id: call_id.to_owned(),
            at_ms: T0 + offset_ms,
            direction: Direction::Outbound,
            caller: Some(Party::new("101", None)),
            dialed: Some(caller()),
            kind,
        }
    }

    fn agents(ids: &[i64]) -> Audience {
        Audience::Agents(ids.iter().copied().map(AgentId).collect())
    }

    fn ringing(ids: &[i64]) -> EventKind {
        EventKind::Ringing {
            audience: agents(ids),
        }
    }

    fn queued(name: &str) -> EventKind {
        EventKind::Ringing {
            audience: Audience::Queue(Some(name.to_owned())),
        }
    }

    fn answered(by: i64) -> EventKind {
        EventKind::Answered {
            by: Some(AgentId(by)),
        }
    }

    fn ring_stopped(agent: i64) -> EventKind {
        EventKind::RingStopped {
            agent: AgentId(agent),
        }
    }

    fn transferred(ids: &[i64]) -> EventKind {
        EventKind::Transferred { to: agents(ids) }
    }

    fn hangup() -> EventKind {
        hangup_with("16")
    }

    fn hangup_with(cause: &str) -> EventKind {
        EventKind::Hangup {
            cause: Some(cause.to_owned()),
            answered_elsewhere: false,
        }
    }

    fn cancel_answered_elsewhere() -> EventKind {
        EventKind::Hangup {
            cause: Some("SIP;cause=200".to_owned()),
            answered_elsewhere: true,
        }
    }

    fn run(model: &mut CallModel, event: CallEvent) -> Vec<Effect> {
        model.handle(&event).unwrap()
    }

    fn pop(call_id: &str, audience: Audience) -> Effect {
        Effect::Pop {
            call_id: call_id.to_owned(),
            direction: Direction::Inbound,
            caller: Some(caller()),
            dialed: Some(Party::new("600", None)),
            audience,
        }
    }

    fn answer(call_id: &str, by: Option<i64>) -> Effect {
        Effect::Answered {
            call_id: call_id.to_owned(),
            by: by.map(AgentId),
        }
    }

    fn withdraw(call_id: &str, agent: i64) -> Effect {
        Effect::Withdraw {
            call_id: call_id.to_owned(),
            agent: AgentId(agent),
        }
    }

    fn only_record(effects: &[Effect]) -> &CallRecord {
        let records: Vec<&CallRecord> = effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Ended { call } => Some(call),
                _ => None,
            })
            .collect();
        assert_eq!(records.len(), 1, "expected one Ended in {effects:?}");
        records[0]
    }

    fn state_of(model: &CallModel, call_id: &str) -> Option<CallState> {
        model.call(call_id).map(|call| call.state)
    }

    // Rule 1: states.

    #[test]
    fn ringing_pops_the_agents_whose_phones_ring() {
        let mut model = CallModel::default();
        let effects = run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1, 2])));
        assert_eq!(effects, vec![pop("a1", agents(&[1, 2]))]);
        assert_eq!(state_of(&model, "a1"), Some(CallState::Ringing));
        assert_eq!(model.len(), 1);
    }

    #[test]
    fn answer_announces_who_answered_and_the_call_is_answered() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1, 2])));
        let effects = run(
            &mut model,
            event(Source::Ami, "a1", 8 * SECOND, answered(2)),
        );
        assert_eq!(effects, vec![answer("a1", Some(2))]);
        let call = model.call("a1").unwrap();
        assert_eq!(call.state, CallState::Answered);
        assert_eq!(call.answered_by, Some(AgentId(2)));
        assert_eq!(call.answered_at_ms, Some(T0 + 8 * SECOND));
        assert!(call.ringing_agents.is_empty());
    }

    #[test]
    fn hangup_after_answer_ends_the_call_as_answered_with_a_full_record() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        run(
            &mut model,
            event(Source::Ami, "a1", 2 * SECOND, ringing(&[2])),
        );
        run(
            &mut model,
            event(Source::Ami, "a1", 8 * SECOND, answered(2)),
        );
        let effects = run(&mut model, event(Source::Ami, "a1", 5 * MINUTE, hangup()));
        let record = only_record(&effects);
        assert_eq!(effects.len(), 1, "an answered call ends with Ended alone");
        assert_eq!(record.call_id, "a1");
        assert_eq!(record.outcome, Outcome::Answered);
        assert_eq!(record.started_at_ms, T0);
        assert_eq!(record.answered_at_ms, Some(T0 + 8 * SECOND));
        assert_eq!(record.ended_at_ms, T0 + 5 * MINUTE);
        assert_eq!(record.answered_by, Some(AgentId(2)));
        assert_eq!(record.agents_rung, vec![AgentId(1), AgentId(2)]);
        assert_eq!(record.sources, vec![Source::Ami]);
        assert_eq!(record.hangup_cause.as_deref(), Some("16"));
        assert_eq!(record.caller, Some(caller()));
        assert!(model.is_empty());
        assert_eq!(model.tombstone_count(), 1);
        assert!(model.is_ended("a1"));
    }

    #[test]
    fn hangup_while_ringing_is_a_missed_call() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        let effects = run(&mut model, event(Source::Ami, "a1", 20 * SECOND, hangup()));
        let record = only_record(&effects);
        assert_eq!(record.outcome, Outcome::Missed);
        assert!(record.outcome.wants_callback());
        assert_eq!(record.answered_by, None);
        assert_eq!(effects.len(), 1);
    }

    #[test]
    fn a_caller_waiting_in_a_queue_is_queued_until_an_agent_rings() {
        let mut model = CallModel::default();
        let effects = run(&mut model, event(Source::Ami, "a1", 0, queued("support")));
        assert_eq!(
            effects,
            vec![pop("a1", Audience::Queue(Some("support".into())))]
        );
        assert_eq!(state_of(&model, "a1"), Some(CallState::Queued));
        assert_eq!(model.active().queued, 1);
        run(&mut model, event(Source::Ami, "a1", SECOND, ringing(&[1])));
        assert_eq!(state_of(&model, "a1"), Some(CallState::Ringing));
        run(
            &mut model,
            event(Source::Ami, "a1", 16 * SECOND, ring_stopped(1)),
        );
        assert_eq!(state_of(&model, "a1"), Some(CallState::Queued));
    }

    #[test]
    fn a_caller_giving_up_in_the_queue_is_abandoned() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, queued("support")));
        let effects = run(
            &mut model,
            event(Source::Ami, "a1", 40 * SECOND, EventKind::Abandoned),
        );
        let record = only_record(&effects);
        assert_eq!(record.outcome, Outcome::Abandoned);
        assert_eq!(record.queues, vec![Some("support".to_owned())]);
        let late_hangup = run(&mut model, event(Source::Ami, "a1", 41 * SECOND, hangup()));
        assert!(late_hangup.is_empty());
    }

    #[test]
    fn transfer_after_answer_pops_the_target_and_its_answer_takes_over() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        run(
            &mut model,
            event(Source::Ami, "a1", 5 * SECOND, answered(1)),
        );
        let effects = run(
            &mut model,
            event(Source::Ami, "a1", MINUTE, transferred(&[3])),
        );
        assert_eq!(effects, vec![pop("a1", agents(&[3]))]);
        let call = model.call("a1").unwrap();
        assert_eq!(call.state, CallState::Transferring);
        assert_eq!(call.ringing_agents, vec![AgentId(3)]);
        assert_eq!(model.active().transferring, 1);
        let effects = run(
            &mut model,
            event(Source::Ami, "a1", MINUTE + 6 * SECOND, answered(3)),
        );
        assert_eq!(effects, vec![answer("a1", Some(3))]);
        assert_eq!(state_of(&model, "a1"), Some(CallState::Answered));
        let effects = run(&mut model, event(Source::Ami, "a1", 3 * MINUTE, hangup()));
        let record = only_record(&effects);
        assert_eq!(record.outcome, Outcome::Answered);
        assert_eq!(record.answered_by, Some(AgentId(3)));
        assert_eq!(record.answered_at_ms, Some(T0 + 5 * SECOND));
        assert_eq!(record.transferred_to, vec![agents(&[3])]);
        assert_eq!(record.agents_rung, vec![AgentId(1), AgentId(3)]);
    }

    #[test]
    fn transfer_before_answer_withdraws_the_agents_no_longer_rung() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1, 2])));
        let effects = run(
            &mut model,
            event(Source::Ami, "a1", 10 * SECOND, transferred(&[2, 3])),
        );
        assert_eq!(effects, vec![withdraw("a1", 1), pop("a1", agents(&[3]))]);
        let call = model.call("a1").unwrap();
        assert_eq!(call.state, CallState::Ringing);
        assert_eq!(call.ringing_agents, vec![AgentId(2), AgentId(3)]);
    }

    #[test]
    fn ring_stopped_withdraws_only_that_agents_pop() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1, 2])));
        let effects = run(
            &mut model,
            event(Source::Ami, "a1", 15 * SECOND, ring_stopped(1)),
        );
        assert_eq!(effects, vec![withdraw("a1", 1)]);
        assert_eq!(model.call("a1").unwrap().ringing_agents, vec![AgentId(2)]);
        assert!(
            run(
                &mut model,
                event(Source::Ami, "a1", 15 * SECOND, ring_stopped(1))
            )
            .is_empty()
        );
        assert!(
            run(
                &mut model,
                event(Source::Ami, "a1", 16 * SECOND, ring_stopped(9))
            )
            .is_empty(),
            "an agent that never held a pop has nothing to withdraw"
        );
    }

    #[test]
    fn ringing_an_agent_again_after_its_ring_stopped_pops_again() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        run(
            &mut model,
            event(Source::Ami, "a1", 15 * SECOND, ring_stopped(1)),
        );
        let effects = run(
            &mut model,
            event(Source::Ami, "a1", 20 * SECOND, ringing(&[1])),
        );
        assert_eq!(effects, vec![pop("a1", agents(&[1]))]);
    }

    #[test]
    fn ring_all_queue_pops_each_new_agent_once() {
        let mut model = CallModel::default();
        assert_eq!(
            run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1]))),
            vec![pop("a1", agents(&[1]))]
        );
        assert_eq!(
            run(
                &mut model,
                event(Source::Ami, "a1", 2 * SECOND, ringing(&[1, 2]))
            ),
            vec![pop("a1", agents(&[2]))]
        );
        assert!(
            run(
                &mut model,
                event(Source::Ami, "a1", 4 * SECOND, ringing(&[2, 1]))
            )
            .is_empty()
        );
    }

    #[test]
    fn snapshot_lists_live_calls_in_the_order_they_came() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        let mut second = event(Source::Ami, "a2", SECOND, queued("sales"));
        second.caller = Some(Party::new("13900000000", None));
        run(&mut model, second);
        run(
            &mut model,
            event(Source::Ami, "a1", 3 * SECOND, answered(1)),
        );
        let calls = model.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].call_id, "a1");
        assert_eq!(calls[0].state, CallState::Answered);
        assert_eq!(calls[0].answered_by, Some(AgentId(1)));
        assert_eq!(calls[0].started_at_ms, T0);
        assert_eq!(calls[1].call_id, "a2");
        assert_eq!(calls[1].state, CallState::Queued);
        assert_eq!(calls[1].queues, vec![Some("sales".to_owned())]);
        assert_eq!(calls[1].caller, Some(Party::new("13900000000", None)));
        let counts = model.active();
        assert_eq!((counts.answered, counts.queued, counts.total()), (1, 1, 2));
    }

    // Rule 2: idempotence.

    #[test]
    fn every_event_twice_takes_effect_once() {
        let mut model = CallModel::default();
        let sequence = [
            event(Source::Ami, "a1", 0, queued("support")),
            event(Source::Ami, "a1", SECOND, ringing(&[1, 2])),
            event(Source::Ami, "a1", 15 * SECOND, ring_stopped(1)),
            event(Source::Ami, "a1", 20 * SECOND, answered(2)),
            event(Source::Ami, "a1", MINUTE, transferred(&[3])),
            event(Source::Ami, "a1", MINUTE + 5 * SECOND, answered(3)),
            event(Source::Ami, "a1", 2 * MINUTE, hangup()),
        ];
        let mut ended = 0;
        for step in sequence {
            let first = run(&mut model, step.clone());
            assert!(!first.is_empty(), "{step:?} should have an effect");
            ended += first
                .iter()
                .filter(|e| matches!(e, Effect::Ended { .. }))
                .count();
            assert!(
                run(&mut model, step.clone()).is_empty(),
                "{step:?} took effect twice"
            );
        }
        assert_eq!(ended, 1);
    }

    #[test]
    fn a_repeated_transfer_is_recorded_once() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        run(&mut model, event(Source::Ami, "a1", SECOND, answered(1)));
        run(
            &mut model,
            event(Source::Ami, "a1", MINUTE, transferred(&[3])),
        );
        assert!(
            run(
                &mut model,
                event(Source::Ami, "a1", MINUTE, transferred(&[3]))
            )
            .is_empty()
        );
        let effects = run(&mut model, event(Source::Ami, "a1", 2 * MINUTE, hangup()));
        assert_eq!(only_record(&effects).transferred_to, vec![agents(&[3])]);
    }

    #[test]
    fn a_looping_transfer_keeps_a_bounded_record() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, answered(1)));
        for round in 0..100 {
            let target = if round % 2 == 0 { 2 } else { 1 };
            let at = (round + 1) * SECOND;
            run(
                &mut model,
                event(Source::Ami, "a1", at, transferred(&[target])),
            );
            assert!(
                run(
                    &mut model,
                    event(Source::Ami, "a1", at, transferred(&[target]))
                )
                .is_empty()
            );
        }
        let effects = run(&mut model, event(Source::Ami, "a1", 5 * MINUTE, hangup()));
        assert_eq!(only_record(&effects).transferred_to.len(), 32);
    }

    // Rule 3: out of order.

    #[test]
    fn hangup_before_ringing_records_the_call_and_late_ringing_pops_nothing() {
        let mut model = CallModel::default();
        let effects = run(
            &mut model,
            event(Source::Webhook, "w1", 30 * SECOND, hangup()),
        );
        let record = only_record(&effects);
        assert_eq!(record.call_id, "w1");
        assert_eq!(
            record.outcome,
            Outcome::Unknown,
            "nothing is known but the hangup"
        );
        assert_eq!(record.started_at_ms, T0 + 30 * SECOND);
        assert!(run(&mut model, event(Source::Webhook, "w1", 0, ringing(&[1]))).is_empty());
        assert!(
            run(
                &mut model,
                event(Source::Webhook, "w1", SECOND, answered(1))
            )
            .is_empty()
        );
        assert!(model.is_empty());
    }

    #[test]
    fn a_forgotten_tombstone_lets_its_id_start_a_new_call() {
        let config = CallModelConfig {
            tombstone_retention_ms: 10 * 60 * 1_000,
            ..CallModelConfig::default()
        };
        let mut model = CallModel::new(config);
        run(&mut model, event(Source::Simulator, "sim-1", 0, hangup()));
        model.tick(T0 + 10 * MINUTE - 1);
        assert_eq!(model.tombstone_count(), 1, "kept for the whole retention");
        assert!(
            run(
                &mut model,
                event(Source::Simulator, "sim-1", 9 * MINUTE, ringing(&[1]))
            )
            .is_empty()
        );
        model.tick(T0 + 10 * MINUTE);
        assert_eq!(model.tombstone_count(), 0);
        assert!(!model.is_ended("sim-1"));
        let effects = run(
            &mut model,
            event(Source::Simulator, "sim-1", 11 * MINUTE, ringing(&[1])),
        );
        assert_eq!(effects, vec![pop("sim-1", agents(&[1]))]);
    }

    #[test]
    fn answered_before_ringing_pops_the_answering_agent_and_announces_the_answer() {
        let mut model = CallModel::default();
        let effects = run(
            &mut model,
            event(Source::Webhook, "w1", 10 * SECOND, answered(4)),
        );
        assert_eq!(
            effects,
            vec![pop("w1", agents(&[4])), answer("w1", Some(4))]
        );
        assert_eq!(state_of(&model, "w1"), Some(CallState::Answered));
    }

    #[test]
    fn late_ringing_after_answer_pops_nothing_new() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Webhook, "w1", 10 * SECOND, answered(4)),
        );
        assert!(
            run(
                &mut model,
                event(Source::Webhook, "w1", 0, ringing(&[1, 4]))
            )
            .is_empty()
        );
        let effects = run(&mut model, event(Source::Webhook, "w1", MINUTE, hangup()));
        let record = only_record(&effects);
        assert_eq!(
            record.started_at_ms, T0,
            "the late ringing still dates the start"
        );
        assert_eq!(record.agents_rung, vec![AgentId(4), AgentId(1)]);
    }

    #[test]
    fn an_old_ring_stop_does_not_withdraw_a_newer_ringing() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Webhook, "w1", 0, ringing(&[1])));
        run(
            &mut model,
            event(Source::Webhook, "w1", 20 * SECOND, ringing(&[1])),
        );
        assert!(
            run(
                &mut model,
                event(Source::Webhook, "w1", 15 * SECOND, ring_stopped(1))
            )
            .is_empty()
        );
        assert_eq!(model.call("w1").unwrap().ringing_agents, vec![AgentId(1)]);
    }

    #[test]
    fn an_old_ringing_after_the_ring_stopped_pops_nothing() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Webhook, "w1", 0, ringing(&[2])));
        run(
            &mut model,
            event(Source::Webhook, "w1", 15 * SECOND, ring_stopped(1)),
        );
        assert!(
            run(
                &mut model,
                event(Source::Webhook, "w1", SECOND, ringing(&[1]))
            )
            .is_empty()
        );
    }

    #[test]
    fn an_answer_older_than_the_transfer_only_completes_the_record() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Webhook, "w1", 0, ringing(&[1])));
        run(
            &mut model,
            event(Source::Webhook, "w1", MINUTE, transferred(&[3])),
        );
        assert!(
            run(
                &mut model,
                event(Source::Webhook, "w1", 5 * SECOND, answered(1))
            )
            .is_empty()
        );
        assert_eq!(state_of(&model, "w1"), Some(CallState::Transferring));
        assert_eq!(
            run(
                &mut model,
                event(Source::Webhook, "w1", MINUTE + 4 * SECOND, answered(3))
            ),
            vec![answer("w1", Some(3))]
        );
        let effects = run(
            &mut model,
            event(Source::Webhook, "w1", 2 * MINUTE, hangup()),
        );
        let record = only_record(&effects);
        assert_eq!(record.answered_at_ms, Some(T0 + 5 * SECOND));
        assert_eq!(record.answered_by, Some(AgentId(3)));
    }

    #[test]
    fn ringing_older_than_a_transfer_pops_nothing() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Ami, "a1", MINUTE, transferred(&[3])),
        );
        assert!(run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1]))).is_empty());
        assert_eq!(
            run(
                &mut model,
                event(Source::Ami, "a1", MINUTE + SECOND, ringing(&[4]))
            ),
            vec![pop("a1", agents(&[4]))],
            "ringing after the transfer is the transfer's own"
        );
    }

    #[test]
    fn news_from_a_branch_that_hung_up_is_ignored() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        run(
            &mut model,
            event(Source::Ami, "1700.42", 100, ringing(&[1])),
        );
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 30 * SECOND, hangup_with("487")),
        );
        assert!(
            run(
                &mut model,
                event(Source::Sip, "sip-1@pbx", 31 * SECOND, ringing(&[2]))
            )
            .is_empty()
        );
        assert_eq!(
            run(
                &mut model,
                event(Source::Ami, "1700.42", 31 * SECOND, ringing(&[2]))
            ),
            vec![pop("sip-1@pbx", agents(&[2]))],
            "the PBX's own news still counts"
        );
    }

    #[test]
    fn a_transfer_older_than_the_latest_answer_pops_nobody() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Webhook, "w1", 0, ringing(&[1])));
        run(
            &mut model,
            event(Source::Webhook, "w1", 5 * SECOND, answered(1)),
        );
        run(
            &mut model,
            event(Source::Webhook, "w1", MINUTE + 4 * SECOND, answered(3)),
        );
        assert!(
            run(
                &mut model,
                event(Source::Webhook, "w1", MINUTE, transferred(&[3, 5]))
            )
            .is_empty()
        );
        assert_eq!(state_of(&model, "w1"), Some(CallState::Answered));
    }

    #[test]
    fn an_answer_naming_the_agent_refines_an_anonymous_one() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Webhook, "w1", 0, ringing(&[1, 2])),
        );
        assert_eq!(
            run(
                &mut model,
                event(
                    Source::Webhook,
                    "w1",
                    5 * SECOND,
                    EventKind::Answered { by: None }
                )
            ),
            vec![answer("w1", None)]
        );
        assert_eq!(
            run(
                &mut model,
                event(Source::Webhook, "w1", 5 * SECOND, answered(2))
            ),
            vec![pop("w1", agents(&[2])), answer("w1", Some(2))],
            "agent 2 was told answered_elsewhere, so it gets the pop back with the answer"
        );
        assert!(
            run(
                &mut model,
                event(
                    Source::Webhook,
                    "w1",
                    6 * SECOND,
                    EventKind::Answered { by: None }
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn answered_by_nobody_we_track_ends_as_answered_elsewhere() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        run(
            &mut model,
            event(
                Source::Ami,
                "a1",
                5 * SECOND,
                EventKind::Answered { by: None },
            ),
        );
        let effects = run(&mut model, event(Source::Ami, "a1", MINUTE, hangup()));
        assert_eq!(effects.len(), 1, "the answer was announced already");
        assert_eq!(only_record(&effects).outcome, Outcome::AnsweredElsewhere);
    }

    // Rule 4: one call, many sources.

    #[test]
    fn a_second_source_within_the_window_joins_without_a_second_pop() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1, 2])),
        );
        let effects = run(
            &mut model,
            event(Source::Ami, "1700.42", 300, ringing(&[1])),
        );
        assert!(effects.is_empty());
        assert_eq!(model.len(), 1);
        let call = model.call("1700.42").unwrap();
        assert_eq!(call.call_id, "sip-1@pbx");
        assert_eq!(call.aliases, vec!["1700.42".to_owned()]);
        assert_eq!(call.sources, vec![Source::Sip, Source::Ami]);
    }

    #[test]
    fn a_second_source_pops_only_the_agents_not_popped_yet() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        let effects = run(
            &mut model,
            event(Source::Ami, "1700.42", 2 * SECOND, ringing(&[1, 2])),
        );
        assert_eq!(effects, vec![pop("sip-1@pbx", agents(&[2]))]);
    }

    #[test]
    fn events_under_an_alias_act_on_the_canonical_call() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1, 2])),
        );
        run(
            &mut model,
            event(Source::Ami, "1700.42", 300, ringing(&[1, 2])),
        );
        assert_eq!(
            run(
                &mut model,
                event(Source::Ami, "1700.42", 9 * SECOND, answered(2))
            ),
            vec![answer("sip-1@pbx", Some(2))]
        );
        let effects = run(&mut model, event(Source::Ami, "1700.42", MINUTE, hangup()));
        let record = only_record(&effects);
        assert_eq!(record.call_id, "sip-1@pbx");
        assert_eq!(record.aliases, vec!["1700.42".to_owned()]);
        assert_eq!(record.sources, vec![Source::Sip, Source::Ami]);
        assert!(model.is_ended("sip-1@pbx") && model.is_ended("1700.42"));
    }

    #[test]
    fn the_same_source_under_another_id_is_another_call() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "1700.42", 0, ringing(&[1])));
        let effects = run(
            &mut model,
            event(Source::Ami, "1700.43", 100, ringing(&[1])),
        );
        assert_eq!(effects, vec![pop("1700.43", agents(&[1]))]);
        assert_eq!(model.len(), 2);
    }

    #[test]
    fn a_source_already_merged_does_not_merge_a_second_id() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        run(
            &mut model,
            event(Source::Ami, "1700.42", 100, ringing(&[1])),
        );
        let effects = run(
            &mut model,
            event(Source::Ami, "1700.43", 200, ringing(&[1])),
        );
        assert_eq!(effects, vec![pop("1700.43", agents(&[1]))]);
        assert_eq!(model.len(), 2);
    }

    #[test]
    fn ringing_outside_the_merge_window_is_another_call() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        let effects = run(
            &mut model,
            event(Source::Ami, "1700.42", 5 * SECOND + 1, ringing(&[1])),
        );
        assert_eq!(effects, vec![pop("1700.42", agents(&[1]))]);
        assert_eq!(model.len(), 2);
    }

    #[test]
    fn the_merge_window_is_configurable() {
        let mut model = CallModel::new(CallModelConfig {
            merge_window_ms: 10_000,
            ..CallModelConfig::default()
        });
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        assert!(
            run(
                &mut model,
                event(Source::Ami, "1700.42", 9 * SECOND, ringing(&[1]))
            )
            .is_empty()
        );
        assert_eq!(model.len(), 1);
    }

    #[test]
    fn the_same_id_from_two_sources_is_the_same_call() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "1700.42", 0, ringing(&[1])));
        let mut late = event(Source::Webhook, "1700.42", 20 * SECOND, ringing(&[1]));
        late.caller = None;
        assert!(run(&mut model, late).is_empty());
        assert_eq!(model.len(), 1);
        assert_eq!(
            model.call("1700.42").unwrap().sources,
            vec![Source::Ami, Source::Webhook]
        );
    }

    #[test]
    fn different_dialed_numbers_are_different_calls() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        let mut other_line = event(Source::Ami, "1700.42", 100, ringing(&[1]));
        other_line.dialed = Some(Party::new("700", None));
        assert_eq!(
            run(&mut model, other_line),
            vec![Effect::Pop {
                call_id: "1700.42".into(),
                direction: Direction::Inbound,
                caller: Some(caller()),
                dialed: Some(Party::new("700", None)),
                audience: agents(&[1]),
            }]
        );
    }

    #[test]
    fn callers_match_by_their_digits_when_not_normalized() {
        let mut model = CallModel::default();
        let mut sip = event(Source::Sip, "sip-1@pbx", 0, ringing(&[1]));
        sip.caller = Some(Party::new("013800138000", None));
        run(&mut model, sip);
        let mut ami = event(Source::Ami, "1700.42", 100, ringing(&[1]));
        ami.caller = Some(Party::new("0138-0013-8000", None));
        assert!(run(&mut model, ami).is_empty());
        let mut other = event(Source::Esl, "uuid-1", 100, ringing(&[1]));
        other.caller = Some(Party::new("anonymous", None));
        assert_eq!(
            run(&mut model, other).len(),
            1,
            "withheld callers never merge"
        );
    }

    #[test]
    fn a_call_fills_in_the_normalized_caller_from_a_later_source() {
        let mut model = CallModel::default();
        let mut sip = event(Source::Sip, "sip-1@pbx", 0, ringing(&[1]));
        sip.caller = Some(Party::new("013800138000", None));
        run(&mut model, sip);
        run(
            &mut model,
            event(Source::Ami, "1700.42", 100, ringing(&[1])),
        );
        assert_eq!(model.call("sip-1@pbx").unwrap().caller, Some(caller()));
    }

    #[test]
    fn an_answer_from_a_second_source_joins_a_call_ringing_for_a_while() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1, 2])),
        );
        let effects = run(
            &mut model,
            event(Source::Ami, "1700.42", 40 * SECOND, answered(2)),
        );
        assert_eq!(effects, vec![answer("sip-1@pbx", Some(2))]);
        assert_eq!(model.len(), 1);
    }

    #[test]
    fn late_news_from_another_source_about_an_ended_call_is_absorbed() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 20 * SECOND, hangup_with("487")),
        );
        assert!(
            run(
                &mut model,
                event(Source::Ami, "1700.42", 100, ringing(&[1]))
            )
            .is_empty()
        );
        assert!(
            run(
                &mut model,
                event(Source::Ami, "1700.42", 20 * SECOND, hangup())
            )
            .is_empty()
        );
        assert!(model.is_ended("1700.42"));
        assert!(model.is_empty());
    }

    // Rule 5: answered elsewhere.

    #[test]
    fn cancel_answered_elsewhere_on_a_sip_only_call_withdraws_pops_and_ends_it() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1, 2])),
        );
        let effects = run(
            &mut model,
            event(
                Source::Sip,
                "sip-1@pbx",
                9 * SECOND,
                cancel_answered_elsewhere(),
            ),
        );
        assert_eq!(effects.len(), 2);
        assert_eq!(effects[0], answer("sip-1@pbx", None));
        let record = only_record(&effects);
        assert_eq!(record.outcome, Outcome::AnsweredElsewhere);
        assert!(!record.outcome.wants_callback());
        assert!(model.is_empty());
    }

    #[test]
    fn cancel_answered_elsewhere_on_a_merged_call_waits_for_the_other_source() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1, 2])),
        );
        run(
            &mut model,
            event(Source::Ami, "1700.42", 100, ringing(&[1, 2])),
        );
        assert!(
            run(
                &mut model,
                event(
                    Source::Sip,
                    "sip-1@pbx",
                    9 * SECOND,
                    cancel_answered_elsewhere()
                )
            )
            .is_empty()
        );
        assert_eq!(state_of(&model, "sip-1@pbx"), Some(CallState::Ringing));
        assert_eq!(
            run(
                &mut model,
                event(Source::Ami, "1700.42", 9 * SECOND, answered(2))
            ),
            vec![answer("sip-1@pbx", Some(2))]
        );
        let effects = run(&mut model, event(Source::Ami, "1700.42", MINUTE, hangup()));
        assert_eq!(only_record(&effects).outcome, Outcome::Answered);
        assert_eq!(effects.len(), 1);
    }

    #[test]
    fn a_merged_call_hung_up_without_answer_after_a_cause_200_cancel_was_answered_elsewhere() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        run(
            &mut model,
            event(Source::Ami, "1700.42", 100, ringing(&[1])),
        );
        run(
            &mut model,
            event(
                Source::Sip,
                "sip-1@pbx",
                9 * SECOND,
                cancel_answered_elsewhere(),
            ),
        );
        let effects = run(&mut model, event(Source::Ami, "1700.42", MINUTE, hangup()));
        assert_eq!(effects[0], answer("sip-1@pbx", None));
        assert_eq!(only_record(&effects).outcome, Outcome::AnsweredElsewhere);
    }

    // Rule 6: hangups across sources.

    #[test]
    fn a_sip_cancel_on_a_merged_call_leaves_it_alive_until_the_pbx_hangs_up() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        run(
            &mut model,
            event(Source::Ami, "1700.42", 100, ringing(&[1])),
        );
        assert!(
            run(
                &mut model,
                event(Source::Sip, "sip-1@pbx", 30 * SECOND, hangup_with("487"))
            )
            .is_empty()
        );
        assert_eq!(model.len(), 1);
        let effects = run(
            &mut model,
            event(Source::Ami, "1700.42", 31 * SECOND, hangup()),
        );
        let record = only_record(&effects);
        assert_eq!(record.outcome, Outcome::Missed);
        assert_eq!(
            record.hangup_cause.as_deref(),
            Some("16"),
            "the PBX's cause wins over the branch's"
        );
    }

    #[test]
    fn a_pbx_hangup_ends_a_merged_call_at_once() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        run(&mut model, event(Source::Esl, "uuid-1", 100, ringing(&[1])));
        let effects = run(
            &mut model,
            event(Source::Esl, "uuid-1", 30 * SECOND, hangup()),
        );
        assert_eq!(only_record(&effects).outcome, Outcome::Missed);
        assert!(
            run(
                &mut model,
                event(Source::Sip, "sip-1@pbx", 30 * SECOND, hangup_with("487"))
            )
            .is_empty()
        );
    }

    #[test]
    fn a_sip_only_call_ends_on_its_cancel_as_missed() {
        let mut model = CallModel::default();
        run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 0, ringing(&[1])),
        );
        let effects = run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 30 * SECOND, hangup_with("487")),
        );
        assert_eq!(effects.len(), 1);
        assert_eq!(only_record(&effects).outcome, Outcome::Missed);
    }

    #[test]
    fn a_webhook_hangup_ends_the_call() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Webhook, "w1", 0, ringing(&[1])));
        let effects = run(
            &mut model,
            event(Source::Webhook, "w1", 30 * SECOND, hangup()),
        );
        assert_eq!(only_record(&effects).sources, vec![Source::Webhook]);
    }

    // Rule 7: bounded memory.

    #[test]
    fn tick_ends_a_silent_ringing_call_as_stale() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        run(&mut model, event(Source::Ami, "a1", MINUTE, ringing(&[2])));
        assert!(
            model.tick(T0 + MINUTE + 2 * 60 * MINUTE).is_empty(),
            "not silent long enough"
        );
        let effects = model.tick(T0 + MINUTE + 2 * 60 * MINUTE + 1);
        let record = only_record(&effects);
        assert_eq!(record.outcome, Outcome::Stale);
        assert_eq!(
            record.ended_at_ms,
            T0 + MINUTE,
            "the last news is the best guess"
        );
        assert!(model.is_empty());
        assert!(
            model.is_ended("a1"),
            "late news about it is still recognised"
        );
        assert!(
            run(
                &mut model,
                event(Source::Ami, "a1", 3 * 60 * MINUTE, hangup())
            )
            .is_empty()
        );
    }

    #[test]
    fn tick_keeps_answered_calls_longer() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, answered(1)));
        assert!(model.tick(T0 + 3 * 60 * MINUTE).is_empty());
        let effects = model.tick(T0 + 12 * 60 * MINUTE + 1);
        assert_eq!(only_record(&effects).outcome, Outcome::Stale);
    }

    #[test]
    fn tick_forgets_tombstones_after_retention() {
        let mut model = CallModel::default();
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        run(&mut model, event(Source::Ami, "a1", MINUTE, hangup()));
        model.tick(T0 + 5 * MINUTE);
        assert_eq!(model.tombstone_count(), 1);
        model.tick(T0 + 11 * MINUTE);
        assert_eq!(model.tombstone_count(), 0);
        assert!(
            model.ids.is_empty() && model.by_number.is_empty() && model.forget_order.is_empty()
        );
    }

    #[test]
    fn news_stamped_far_in_the_future_does_not_outlive_its_limits() {
        let mut model = CallModel::default();
        let year = 365 * 24 * 60 * MINUTE;
        run(
            &mut model,
            event(Source::Webhook, "w1", year, ringing(&[1])),
        );
        run(&mut model, event(Source::Webhook, "w2", year, hangup()));
        let effects = model.tick(T0);
        assert_eq!(only_record(&effects).outcome, Outcome::Stale);
        assert!(model.is_empty());
        assert_eq!(model.tombstone_count(), 0);
    }

    #[test]
    fn tombstones_beyond_the_cap_forget_the_oldest() {
        let mut model = CallModel::new(CallModelConfig {
            max_tombstones: 2,
            ..CallModelConfig::default()
        });
        for (index, id) in ["a1", "a2", "a3"].into_iter().enumerate() {
            let offset = i64::try_from(index).unwrap() * MINUTE;
            run(&mut model, event(Source::Ami, id, offset, hangup()));
        }
        assert_eq!(model.tombstone_count(), 2);
        assert!(!model.is_ended("a1"));
        assert!(model.is_ended("a2") && model.is_ended("a3"));
    }

    #[test]
    fn new_calls_beyond_the_live_cap_are_refused() {
        let mut model = CallModel::new(CallModelConfig {
            max_live_calls: 1,
            ..CallModelConfig::default()
        });
        run(&mut model, event(Source::Ami, "a1", 0, ringing(&[1])));
        let mut second = event(Source::Ami, "a2", 0, ringing(&[1]));
        assert_eq!(
            model.handle(&second),
            Err(EventError::TooManyLiveCalls { limit: 1 })
        );
        assert_eq!(model.len(), 1);
        assert!(
            run(&mut model, event(Source::Ami, "a1", SECOND, answered(1))).len() == 1,
            "known calls go on"
        );
        second.kind = hangup();
        assert_eq!(
            only_record(&run(&mut model, second)).outcome,
            Outcome::Unknown,
            "a hangup never adds a live call"
        );
    }

    #[test]
    fn empty_and_oversized_call_ids_are_refused() {
        let mut model = CallModel::default();
        assert_eq!(
            model.handle(&event(Source::Webhook, " ", 0, ringing(&[1]))),
            Err(EventError::EmptyCallId)
        );
        let long = "x".repeat(MAX_CALL_ID_BYTES + 1);
        assert_eq!(
            model.handle(&event(Source::Webhook, &long, 0, ringing(&[1]))),
            Err(EventError::CallIdTooLong {
                length: MAX_CALL_ID_BYTES + 1
            })
        );
        assert!(model.is_empty() && model.tombstone_count() == 0);
    }

    #[test]
    fn ring_stopped_for_an_unknown_call_starts_nothing() {
        let mut model = CallModel::default();
        assert!(run(&mut model, event(Source::Ami, "a1", 0, ring_stopped(1))).is_empty());
        assert!(model.is_empty() && model.tombstone_count() == 0);
    }

    // Rule 8: outbound calls.

    #[test]
    fn an_outbound_call_never_pops_but_announces_the_answer() {
        let mut model = CallModel::default();
        assert!(run(&mut model, outbound("o1", 0, ringing(&[7]))).is_empty());
        assert_eq!(state_of(&model, "o1"), Some(CallState::Ringing));
        assert_eq!(
            run(&mut model, outbound("o1", 10 * SECOND, answered(7))),
            vec![answer("o1", Some(7))]
        );
        let effects = run(&mut model, outbound("o1", MINUTE, hangup()));
        let record = only_record(&effects);
        assert_eq!(record.outcome, Outcome::Answered);
        assert_eq!(record.direction, Direction::Outbound);
        assert_eq!(record.agents_rung, vec![AgentId(7)]);
    }

    #[test]
    fn an_outbound_call_answered_first_pops_nothing() {
        let mut model = CallModel::default();
        assert_eq!(
            run(&mut model, outbound("o1", 0, answered(7))),
            vec![answer("o1", Some(7))]
        );
    }

    #[test]
    fn an_unanswered_outbound_call_ends_by_its_cause() {
        let cases = [
            (Some("17"), Outcome::Busy),
            (Some("USER_BUSY"), Outcome::Busy),
            (Some("CALL_REJECTED"), Outcome::Busy),
            (Some("no-answer"), Outcome::NoAnswer),
            (Some("NO_USER_RESPONSE"), Outcome::NoAnswer),
            (Some("CONGESTION"), Outcome::Failed),
            (Some("1"), Outcome::Failed),
            (Some("NORMAL_CLEARING"), Outcome::NoAnswer),
            (None, Outcome::NoAnswer),
            (Some("gibberish"), Outcome::NoAnswer),
        ];
        for (cause, expected) in cases {
            let mut model = CallModel::default();
            run(&mut model, outbound("o1", 0, ringing(&[7])));
            let kind = EventKind::Hangup {
                cause: cause.map(str::to_owned),
                answered_elsewhere: false,
            };
            let effects = run(&mut model, outbound("o1", 30 * SECOND, kind));
            assert_eq!(only_record(&effects).outcome, expected, "cause {cause:?}");
        }
    }

    #[test]
    fn an_outbound_hangup_heard_alone_is_classified_only_by_a_telling_cause() {
        let mut model = CallModel::default();
        let busy = run(&mut model, outbound("o1", 0, hangup_with("USER_BUSY")));
        assert_eq!(only_record(&busy).outcome, Outcome::Busy);
        let normal = run(&mut model, outbound("o2", 0, hangup()));
        assert_eq!(only_record(&normal).outcome, Outcome::Unknown);
    }

    #[test]
    fn a_transferred_outbound_call_pops_the_transfer_target() {
        let mut model = CallModel::default();
        run(&mut model, outbound("o1", 0, ringing(&[7])));
        run(&mut model, outbound("o1", 10 * SECOND, answered(7)));
        let effects = run(&mut model, outbound("o1", MINUTE, transferred(&[8])));
        assert_eq!(
            effects,
            vec![Effect::Pop {
                call_id: "o1".into(),
                direction: Direction::Outbound,
                caller: Some(Party::new("101", None)),
                dialed: Some(caller()),
                audience: agents(&[8]),
            }]
        );
    }

    #[test]
    fn outbound_and_inbound_calls_with_one_number_never_merge() {
        let mut model = CallModel::default();
        run(&mut model, outbound("o1", 0, ringing(&[7])));
        let effects = run(
            &mut model,
            event(Source::Sip, "sip-1@pbx", 100, ringing(&[1])),
        );
        assert_eq!(effects, vec![pop("sip-1@pbx", agents(&[1]))]);
        assert_eq!(model.len(), 2);
    }
}
