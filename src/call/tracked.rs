//! One live call and its transitions: Ringing → Answered → (Transferring → Answered)* → ended, or
//! Ringing → ended. Each transition says which effects it causes; the model around it finds the
//! call for an event, merges sources and keeps tombstones.
//!
//! Events may come late, twice, or out of order, from several sources, so every transition checks
//! the event's time against what the call already knows instead of trusting arrival order:
//! a ringing for an agent whose ringing stopped (or who saw someone else answer) at or after the
//! event's time is old news; an answer older than the latest answer or transfer is old news; a
//! transfer already known is ignored. Old news still completes the record (who rang, when it was
//! first answered) but never reaches an agent.
//!
//! Pops: an agent or queue gets a pop when it starts ringing for the call and does not hold one.
//! It holds it until its ringing stops (`Withdraw`) or someone else answers (the hub tells it
//! "answered_elsewhere"); after that, ringing it again later (a queue retrying, a transfer back)
//! pops it again. Once the call is answered, ringing reports pop nothing: the agent answered and
//! the rest is history. Outbound calls never pop when they ring or are answered (the agent placed
//! the call and has the customer in front of them); they do pop when transferred, because the
//! transfer target did not place it.

use std::collections::BTreeMap;

use super::cause::{CauseClass, classify_hangup_cause};
use super::effect::{CallRecord, Effect, Outcome};
use super::event::{AgentId, Audience, CallEvent, Direction, EventKind, Member, Source};
use super::merge::MatchFacts;
use super::snapshot::{CallState, LiveCall};

/// A call transferred more often than this is looping; later transfers still take effect but are
/// no longer recorded, so one call's memory stays bounded.
const MAX_TRANSFERS_RECORDED: usize = 32;

/// Whether the call goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Continuation {
    GoesOn,
    Ends,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Answered,
    Transferring,
}

/// One source's view of the call.
#[derive(Debug, Clone)]
struct Leg {
    source: Source,
    id: String,
    hung_up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PopState {
    Never,
    Holding,
    Released,
}

/// The call as offered to one agent or queue.
#[derive(Debug, Clone)]
struct Offer {
    pop: PopState,
    ringing: bool,
    last_rung_ms: Option<i64>,
    /// When its ringing last stopped (ring timeout, someone answered, transferred away).
    stopped_ms: Option<i64>,
}

impl Offer {
    fn new() -> Self {
        Offer {
            pop: PopState::Never,
            ringing: false,
            last_rung_ms: None,
            stopped_ms: None,
        }
    }

    /// Stops its ringing at `at_ms`; says whether it held a pop that must now be taken away.
    fn stop(&mut self, at_ms: i64) -> bool {
        self.ringing = false;
        self.stopped_ms = Some(self.stopped_ms.map_or(at_ms, |s| s.max(at_ms)));
        let held = self.pop == PopState::Holding;
        if held {
            self.pop = PopState::Released;
        }
        held
    }
}

#[derive(Debug, Clone)]
pub(super) struct TrackedCall {
    pub call_id: String,
    pub facts: MatchFacts,
    /// The latest event time heard; silence is measured from here.
    pub last_news_ms: i64,
    legs: Vec<Leg>,
    phase: Phase,
    answered_at_ms: Option<i64>,
    answered_by: Option<AgentId>,
    last_answer_ms: Option<i64>,
    answer_announced: bool,
    last_transfer_ms: Option<i64>,
    transfers: Vec<(i64, Audience)>,
    offers: BTreeMap<Member, Offer>,
    agents_rung: Vec<AgentId>,
    queues: Vec<Option<String>>,
    rang: bool,
    answered_elsewhere: bool,
    abandoned: bool,
    hangup_cause: Option<String>,
    ended_at_ms: Option<i64>,
}

impl TrackedCall {
    /// A call first heard of through `event`, which has yet to be applied.
    pub fn new(event: &CallEvent) -> Self {
        TrackedCall {
            call_id: event.call_id.clone(),
            facts: MatchFacts::from_event(event),
            last_news_ms: event.at_ms,
            legs: Vec::new(),
            phase: Phase::Ringing,
            answered_at_ms: None,
            answered_by: None,
            last_answer_ms: None,
            answer_announced: false,
            last_transfer_ms: None,
            transfers: Vec::new(),
            offers: BTreeMap::new(),
            agents_rung: Vec::new(),
            queues: Vec::new(),
            rang: false,
            answered_elsewhere: false,
            abandoned: false,
            hangup_cause: None,
            ended_at_ms: None,
        }
    }

    /// Every id the call is known under, canonical first.
    pub fn ids(&self) -> Vec<String> {
        let mut ids = vec![self.call_id.clone()];
        for leg in &self.legs {
            if !ids.contains(&leg.id) {
                ids.push(leg.id.clone());
            }
        }
        ids
    }

    pub fn is_answered(&self) -> bool {
        self.answered_at_ms.is_some()
    }

    /// Applies one event, pushing the effects it causes.
    pub fn apply(&mut self, event: &CallEvent, effects: &mut Vec<Effect>) -> Continuation {
        let leg = match self
            .legs
            .iter()
            .position(|leg| leg.source == event.source && leg.id == event.call_id)
        {
            Some(index) => index,
            None => {
                self.legs.push(Leg {
                    source: event.source,
                    id: event.call_id.clone(),
                    hung_up: false,
                });
                self.legs.len() - 1
            }
        };
        if self.legs[leg].hung_up {
            // A leg's hangup is its last word: anything else from it is older news.
            return Continuation::GoesOn;
        }
        self.facts.absorb(event);
        self.last_news_ms = self.last_news_ms.max(event.at_ms);
        let at = event.at_ms;
        match &event.kind {
            EventKind::Ringing { audience } => self.ring(audience, at, effects),
            EventKind::RingStopped { agent } => self.stop_ringing(*agent, at, effects),
            EventKind::Answered { by } => self.answer(*by, at, effects),
            EventKind::Transferred { to } => self.transfer(to, at, effects),
            EventKind::Hangup {
                cause,
                answered_elsewhere,
            } => return self.hang_up_leg(leg, cause.as_deref(), *answered_elsewhere, at),
            EventKind::Abandoned => {
                self.abandoned = true;
                self.ended_at_ms = Some(at);
                return Continuation::Ends;
            }
        }
        Continuation::GoesOn
    }

    fn may_pop(&self) -> bool {
        self.facts.direction == Direction::Inbound
    }

    /// Whether ringing reported at `at_ms` is about the call's current offer round, rather than
    /// history from before its answer or latest transfer.
    fn ringing_is_current(&self, at_ms: i64) -> bool {
        self.phase != Phase::Answered && self.last_transfer_ms.is_none_or(|t| at_ms >= t)
    }

    fn note_rung(&mut self, member: &Member) {
        self.rang = true;
        match member {
            Member::Agent(agent) if !self.agents_rung.contains(agent) => {
                self.agents_rung.push(*agent);
            }
            Member::Queue(queue) if !self.queues.contains(queue) => self.queues.push(queue.clone()),
            _ => {}
        }
    }

    /// Rings `audience` at `at_ms`; pushes one pop for the members that start holding one.
    fn offer_to(&mut self, audience: &Audience, at_ms: i64, pop: bool, effects: &mut Vec<Effect>) {
        let mut agents_to_pop = Vec::new();
        let mut queues_to_pop = Vec::new();
        for member in audience.members() {
            self.note_rung(&member);
            let offer = self.offers.entry(member.clone()).or_insert_with(Offer::new);
            if offer.stopped_ms.is_some_and(|stopped| at_ms <= stopped) {
                continue;
            }
            offer.ringing = true;
            offer.last_rung_ms = Some(offer.last_rung_ms.map_or(at_ms, |r| r.max(at_ms)));
            if pop && offer.pop != PopState::Holding {
                offer.pop = PopState::Holding;
                match member {
                    Member::Agent(agent) => agents_to_pop.push(agent),
                    Member::Queue(queue) => queues_to_pop.push(queue),
                }
            }
        }
        for queue in queues_to_pop {
            effects.push(self.pop_effect(Audience::Queue(queue)));
        }
        if !agents_to_pop.is_empty() {
            effects.push(self.pop_effect(Audience::Agents(agents_to_pop)));
        }
    }

    fn pop_effect(&self, audience: Audience) -> Effect {
        Effect::Pop {
            call_id: self.call_id.clone(),
            direction: self.facts.direction,
            caller: self.facts.caller.clone(),
            dialed: self.facts.dialed.clone(),
            audience,
        }
    }

    fn ring(&mut self, audience: &Audience, at_ms: i64, effects: &mut Vec<Effect>) {
        if self.ringing_is_current(at_ms) {
            let pop = self.may_pop();
            self.offer_to(audience, at_ms, pop, effects);
        } else {
            for member in audience.members() {
                self.note_rung(&member);
            }
        }
    }

    fn stop_ringing(&mut self, agent: AgentId, at_ms: i64, effects: &mut Vec<Effect>) {
        let member = Member::Agent(agent);
        self.note_rung(&member);
        let offer = self.offers.entry(member).or_insert_with(Offer::new);
        if offer.last_rung_ms.is_some_and(|rung| at_ms < rung) {
            // It rang again after this: the stop is old news.
            return;
        }
        if offer.stop(at_ms) {
            effects.push(Effect::Withdraw {
                call_id: self.call_id.clone(),
                agent,
            });
        }
    }

    fn answer(&mut self, by: Option<AgentId>, at_ms: i64, effects: &mut Vec<Effect>) {
        let older_than_latest_answer = self.last_answer_ms.is_some_and(|last| at_ms < last);
        let older_than_latest_transfer = self.last_transfer_ms.is_some_and(|t| at_ms < t);
        if older_than_latest_answer || older_than_latest_transfer {
            // The call has moved on since; keep the history for the record only.
            self.answered_at_ms = Some(self.answered_at_ms.map_or(at_ms, |a| a.min(at_ms)));
            if self.answered_by.is_none() {
                self.answered_by = by;
            }
            if older_than_latest_transfer && self.phase == Phase::Ringing {
                self.phase = Phase::Transferring;
            }
            return;
        }
        if self.phase == Phase::Answered {
            let news = match (self.answered_by, by) {
                (_, None) => false,
                (Some(known), Some(reported)) => known != reported,
                (None, Some(_)) => true,
            };
            if !news {
                return;
            }
        }
        if let Some(agent) = by {
            self.note_rung(&Member::Agent(agent));
            let pop = self.may_pop();
            let offer = self
                .offers
                .entry(Member::Agent(agent))
                .or_insert_with(Offer::new);
            offer.ringing = false;
            let needs_pop = pop && offer.pop != PopState::Holding;
            if needs_pop {
                offer.pop = PopState::Holding;
                effects.push(self.pop_effect(Audience::Agents(vec![agent])));
            }
        }
        for (member, offer) in &mut self.offers {
            if by.is_none_or(|agent| *member != Member::Agent(agent)) {
                offer.stop(at_ms);
            }
        }
        self.phase = Phase::Answered;
        self.answered_at_ms = Some(self.answered_at_ms.map_or(at_ms, |a| a.min(at_ms)));
        self.answered_by = by.or(self.answered_by);
        self.last_answer_ms = Some(at_ms);
        self.answer_announced = true;
        effects.push(Effect::Answered {
            call_id: self.call_id.clone(),
            by,
        });
    }

    fn transfer(&mut self, to: &Audience, at_ms: i64, effects: &mut Vec<Effect>) {
        if self
            .transfers
            .iter()
            .any(|(known_at, known_to)| *known_at == at_ms && known_to == to)
        {
            return;
        }
        if self.transfers.len() < MAX_TRANSFERS_RECORDED {
            self.transfers.push((at_ms, to.clone()));
        }
        let superseded = self.last_answer_ms.is_some_and(|a| at_ms < a)
            || self.last_transfer_ms.is_some_and(|t| at_ms < t);
        if superseded {
            for member in to.members() {
                self.note_rung(&member);
            }
            return;
        }
        self.last_transfer_ms = Some(at_ms);
        if self.phase == Phase::Answered {
            self.phase = Phase::Transferring;
        }
        let targets = to.members();
        for (member, offer) in &mut self.offers {
            if !offer.ringing || targets.contains(member) {
                continue;
            }
            match member {
                Member::Agent(agent) => {
                    if offer.stop(at_ms) {
                        effects.push(Effect::Withdraw {
                            call_id: self.call_id.clone(),
                            agent: *agent,
                        });
                    }
                }
                // A queue's pops cannot be withdrawn one by one; its agents learn the outcome
                // when the call is answered or ends.
                Member::Queue(_) => offer.ringing = false,
            }
        }
        self.offer_to(to, at_ms, true, effects);
    }

    fn hang_up_leg(
        &mut self,
        leg: usize,
        cause: Option<&str>,
        answered_elsewhere: bool,
        at_ms: i64,
    ) -> Continuation {
        self.legs[leg].hung_up = true;
        let whole_call = self.legs[leg].source.reports_whole_call();
        // The cause of the whole call says more than a branch's own.
        if let Some(cause) = cause.filter(|_| whole_call || self.hangup_cause.is_none()) {
            self.hangup_cause = Some(cause.to_owned());
        }
        self.answered_elsewhere |= answered_elsewhere;
        if whole_call || self.legs.iter().all(|leg| leg.hung_up) {
            self.ended_at_ms = Some(at_ms);
            Continuation::Ends
        } else {
            Continuation::GoesOn
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self.facts.direction {
            Direction::Inbound => {
                if self.is_answered() {
                    if self.answered_by.is_some() {
                        Outcome::Answered
                    } else {
                        Outcome::AnsweredElsewhere
                    }
                } else if self.answered_elsewhere {
                    Outcome::AnsweredElsewhere
                } else if self.abandoned {
                    Outcome::Abandoned
                } else if self.rang {
                    Outcome::Missed
                } else {
                    Outcome::Unknown
                }
            }
            Direction::Outbound => {
                if self.is_answered() {
                    Outcome::Answered
                } else if self.answered_elsewhere {
                    Outcome::AnsweredElsewhere
                } else if self.abandoned {
                    Outcome::Abandoned
                } else {
                    match self.hangup_cause.as_deref().and_then(classify_hangup_cause) {
                        Some(CauseClass::Busy | CauseClass::Rejected) => Outcome::Busy,
                        Some(CauseClass::NoAnswer) => Outcome::NoAnswer,
                        Some(CauseClass::Failed) => Outcome::Failed,
                        Some(CauseClass::Normal) | None if self.rang => Outcome::NoAnswer,
                        Some(CauseClass::Normal) | None => Outcome::Unknown,
                    }
                }
            }
        }
    }

    /// Ends the call after the event that ended it; pushes `Answered { by: None }` first when it
    /// ended as answered elsewhere without an answer announced, so the hub withdraws the pops.
    pub fn finish(self, effects: &mut Vec<Effect>) {
        let outcome = self.outcome();
        if outcome == Outcome::AnsweredElsewhere && !self.answer_announced {
            effects.push(Effect::Answered {
                call_id: self.call_id.clone(),
                by: None,
            });
        }
        let ended_at_ms = self.ended_at_ms.unwrap_or(self.last_news_ms);
        effects.push(Effect::Ended {
            call: self.into_record(outcome, ended_at_ms),
        });
    }

    /// Ends a call nobody has reported on for too long.
    pub fn expire(self, effects: &mut Vec<Effect>) {
        let ended_at_ms = self.last_news_ms;
        effects.push(Effect::Ended {
            call: self.into_record(Outcome::Stale, ended_at_ms),
        });
    }

    fn into_record(self, outcome: Outcome, ended_at_ms: i64) -> CallRecord {
        let aliases = self.ids().into_iter().skip(1).collect();
        let started_at_ms = self.facts.started_at_ms.min(ended_at_ms);
        CallRecord {
            call_id: self.call_id,
            aliases,
            sources: self.facts.sources,
            direction: self.facts.direction,
            caller: self.facts.caller,
            dialed: self.facts.dialed,
            started_at_ms,
            answered_at_ms: self.answered_at_ms,
            ended_at_ms,
            answered_by: self.answered_by,
            agents_rung: self.agents_rung,
            queues: self.queues,
            outcome,
            hangup_cause: self.hangup_cause,
            transferred_to: self.transfers.into_iter().map(|(_, to)| to).collect(),
        }
    }

    pub fn state(&self) -> CallState {
        match self.phase {
            Phase::Answered => CallState::Answered,
            Phase::Transferring => CallState::Transferring,
            Phase::Ringing => {
                let agent_ringing = self
                    .offers
                    .iter()
                    .any(|(member, offer)| offer.ringing && matches!(member, Member::Agent(_)));
                let queued = self
                    .offers
                    .iter()
                    .any(|(member, offer)| offer.ringing && matches!(member, Member::Queue(_)));
                if self.facts.direction == Direction::Inbound && queued && !agent_ringing {
                    CallState::Queued
                } else {
                    CallState::Ringing
                }
            }
        }
    }

    pub fn snapshot(&self) -> LiveCall {
        let mut ringing_agents = Vec::new();
        let mut queues = Vec::new();
        for (member, offer) in &self.offers {
            match member {
                Member::Agent(agent) if offer.ringing => ringing_agents.push(*agent),
                Member::Queue(queue) if offer.ringing => queues.push(queue.clone()),
                _ => {}
            }
        }
        LiveCall {
            call_id: self.call_id.clone(),
            aliases: self.ids().into_iter().skip(1).collect(),
            sources: self.facts.sources.clone(),
            state: self.state(),
            direction: self.facts.direction,
            caller: self.facts.caller.clone(),
            dialed: self.facts.dialed.clone(),
            started_at_ms: self.facts.started_at_ms,
            answered_at_ms: self.answered_at_ms,
            answered_by: self.answered_by,
            ringing_agents,
            queues,
        }
    }
}
