//! Property tests of the call model: realistic calls, reported by one or two sources, fed in random
//! orders with repeats. Whatever the order, the effects must keep the promises the hub and storage
//! rely on: an agent never holds two pops for one call, every call ends exactly once, nothing
//! happens to a call after it ended, news heard twice changes nothing, and `tick` leaves no memory
//! behind. When each source's own news stays in order (as over one AMI or ESL connection), the
//! sources' reports of one call also become one call with the right outcome.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use proptest::sample::Index;

use super::{
    AgentId, Audience, CallEvent, CallModel, Direction, Effect, EventKind, Outcome, Party, Source,
};

const T0: i64 = 1_700_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Rings a queue and two agents one after the other; agent 2 answers.
    Answered,
    /// Agent 1 rings, times out, rings again; the caller hangs up.
    Missed,
    /// Agent 1 rings and times out; the caller gives up in the queue.
    Abandoned,
    /// Agent 1 answers and transfers to agent 3, who answers.
    Transferred,
    /// The dialer calls a customer who is busy.
    OutboundBusy,
    /// The dialer calls a customer who answers.
    OutboundAnswered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// One PBX manager connection (AMI).
    Pbx,
    /// Only ringside's SIP branch of the fork.
    SipOnly,
    /// The SIP branch and AMI, each under its own id.
    SipAndPbx,
    /// The SIP branch and FreeSWITCH ESL, each under its own id.
    SipAndEsl,
    /// AMI and a webhook that carries AMI's id.
    PbxAndWebhookSameId,
}

fn shapes() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Answered),
        Just(Shape::Missed),
        Just(Shape::Abandoned),
        Just(Shape::Transferred),
        Just(Shape::OutboundBusy),
        Just(Shape::OutboundAnswered),
    ]
}

fn sources_for(shape: Shape) -> BoxedStrategy<Sources> {
    match shape {
        // SIP monitor mode only sees inbound calls.
        Shape::OutboundBusy | Shape::OutboundAnswered => {
            prop_oneof![Just(Sources::Pbx), Just(Sources::PbxAndWebhookSameId)].boxed()
        }
        _ => prop_oneof![
            Just(Sources::Pbx),
            Just(Sources::SipOnly),
            Just(Sources::SipAndPbx),
            Just(Sources::SipAndEsl),
            Just(Sources::PbxAndWebhookSameId),
        ]
        .boxed(),
    }
}

/// One physical call as its sources report it, each source's news in the order it happened.
#[derive(Debug, Clone)]
struct Scenario {
    shape: Shape,
    sources: Sources,
    direction: Direction,
    per_source: Vec<Vec<CallEvent>>,
}

fn customer() -> Party {
    Party::new("013800138000", Some("+8613800138000".into()))
}

fn agents(ids: &[i64]) -> Audience {
    Audience::Agents(ids.iter().copied().map(AgentId).collect())
}

fn hangup(cause: &str) -> EventKind {
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

/// The whole-call source's story of the call: (offset ms, event).
fn pbx_story(shape: Shape) -> Vec<(i64, EventKind)> {
    let ring = |ids: &[i64]| EventKind::Ringing {
        audience: agents(ids),
    };
    let queue = EventKind::Ringing {
        audience: Audience::Queue(Some("support".into())),
    };
    let stop = EventKind::RingStopped { agent: AgentId(1) };
    let answer = |id: i64| EventKind::Answered {
        by: Some(AgentId(id)),
    };
    match shape {
        Shape::Answered => vec![
            (0, queue),
            (200, ring(&[1])),
            (2_200, ring(&[2])),
            (9_000, answer(2)),
            (70_000, hangup("16")),
        ],
        Shape::Missed => vec![
            (0, queue),
            (200, ring(&[1])),
            (15_200, stop),
            (20_200, ring(&[1])),
            (30_000, hangup("16")),
        ],
        Shape::Abandoned => vec![
            (0, queue),
            (200, ring(&[1])),
            (15_200, stop),
            (40_000, EventKind::Abandoned),
        ],
        Shape::Transferred => vec![
            (0, ring(&[1])),
            (5_000, answer(1)),
            (20_000, EventKind::Transferred { to: agents(&[3]) }),
            (26_000, answer(3)),
            (90_000, hangup("16")),
        ],
        Shape::OutboundBusy => vec![(0, ring(&[7])), (6_000, hangup("USER_BUSY"))],
        Shape::OutboundAnswered => vec![
            (0, ring(&[7])),
            (12_000, answer(7)),
            (80_000, hangup("NORMAL_CLEARING")),
        ],
    }
}

/// ringside's SIP branch: it rings, then is cancelled (with cause 200 when someone answered).
fn sip_story(shape: Shape, jitter_ms: i64) -> Vec<(i64, EventKind)> {
    let ring = EventKind::Ringing {
        audience: agents(&[1, 2]),
    };
    let end = match shape {
        Shape::Answered => (9_050, cancel_answered_elsewhere()),
        Shape::Transferred => (5_010, cancel_answered_elsewhere()),
        Shape::Missed => (30_010, hangup("487")),
        _ => (40_010, hangup("487")),
    };
    vec![(jitter_ms, ring), end]
}

fn scenario(shape: Shape, sources: Sources, jitter_ms: i64) -> Scenario {
    let direction = match shape {
        Shape::OutboundBusy | Shape::OutboundAnswered => Direction::Outbound,
        _ => Direction::Inbound,
    };
    let report = |source: Source, call_id: &str, story: Vec<(i64, EventKind)>| -> Vec<CallEvent> {
        story
            .into_iter()
            .map(|(offset, kind)| {
                let (caller, dialed) = match direction {
                    Direction::Inbound => (customer(), Party::new("600", None)),
                    Direction::Outbound => (Party::new("101", None), customer()),
                };
                CallEvent {
                    source,
                    call_id: call_id.to_owned(),
                    at_ms: T0 + offset,
                    direction,
                    caller: Some(caller),
                    dialed: Some(dialed),
                    kind,
                }
            })
            .collect()
    };
    let per_source = match sources {
        Sources::Pbx => vec![report(Source::Ami, "1700.42", pbx_story(shape))],
        Sources::SipOnly => vec![report(Source::Sip, "abc@pbx", sip_story(shape, 0))],
        Sources::SipAndPbx => vec![
            report(Source::Ami, "1700.42", pbx_story(shape)),
            report(Source::Sip, "abc@pbx", sip_story(shape, jitter_ms)),
        ],
        Sources::SipAndEsl => vec![
            report(Source::Esl, "0f1e-uuid", pbx_story(shape)),
            report(Source::Sip, "abc@pbx", sip_story(shape, jitter_ms)),
        ],
        Sources::PbxAndWebhookSameId => {
            let webhook_story = pbx_story(shape)
                .into_iter()
                .filter(|(_, kind)| !matches!(kind, EventKind::RingStopped { .. }))
                .map(|(offset, kind)| (offset + jitter_ms, kind))
                .collect();
            vec![
                report(Source::Ami, "1700.42", pbx_story(shape)),
                report(Source::Webhook, "1700.42", webhook_story),
            ]
        }
    };
    Scenario {
        shape,
        sources,
        direction,
        per_source,
    }
}

/// Another caller's call through AMI, to show that calls do not bleed into each other.
fn bystander_call() -> Vec<CallEvent> {
    let event = |offset: i64, kind: EventKind| CallEvent {
        source: Source::Ami,
        call_id: "1700.99".to_owned(),
        at_ms: T0 + offset,
        direction: Direction::Inbound,
        caller: Some(Party::new("013911112222", Some("+8613911112222".into()))),
        dialed: Some(Party::new("600", None)),
        kind,
    };
    vec![
        event(
            500,
            EventKind::Ringing {
                audience: agents(&[1, 5]),
            },
        ),
        event(
            3_000,
            EventKind::Answered {
                by: Some(AgentId(5)),
            },
        ),
        event(50_000, hangup("16")),
    ]
}

/// Interleaves lists keeping each list's own order; `choices` picks which list goes next.
fn interleave(lists: Vec<Vec<CallEvent>>, choices: &[Index]) -> Vec<CallEvent> {
    let mut queues: Vec<std::collections::VecDeque<CallEvent>> =
        lists.into_iter().map(Into::into).collect();
    let mut merged = Vec::new();
    let mut choice = choices.iter();
    loop {
        let open: Vec<usize> = (0..queues.len())
            .filter(|&index| !queues[index].is_empty())
            .collect();
        if open.is_empty() {
            return merged;
        }
        let pick = choice.next().map_or(0, |index| index.index(open.len()));
        if let Some(event) = queues[open[pick]].pop_front() {
            merged.push(event);
        }
    }
}

/// Feeds the events, checking the invariants that hold whatever the order; returns every effect.
fn feed_and_check(model: &mut CallModel, events: &[CallEvent]) -> Vec<Effect> {
    let mut effects = Vec::new();
    for event in events {
        effects.extend(
            model
                .handle(event)
                .expect("scenario events are well formed"),
        );
    }
    let last = events.iter().map(|e| e.at_ms).max().unwrap_or(T0);
    // A tick within every limit changes nothing but may not break anything either.
    effects.extend(model.tick(last));
    effects.extend(model.tick(last + 24 * 60 * 60 * 1_000));
    check_effects(&effects, events);
    assert_eq!(model.len(), 0, "tick leaves no live call behind");
    assert_eq!(
        model.tombstone_count(),
        0,
        "tick leaves no tombstone behind"
    );
    assert!(model.calls().is_empty());
    effects
}

fn check_effects(effects: &[Effect], events: &[CallEvent]) {
    let directions: HashMap<&str, Direction> = events
        .iter()
        .map(|e| (e.call_id.as_str(), e.direction))
        .collect();
    let mut holding: HashSet<(String, AgentId)> = HashSet::new();
    let mut queues_popped: HashSet<(String, Option<String>)> = HashSet::new();
    let mut ended: HashSet<String> = HashSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    for effect in effects {
        let call_id = effect.call_id().to_owned();
        let direction = *directions
            .get(call_id.as_str())
            .expect("a canonical id is one of the reported ids");
        assert!(
            !ended.contains(&call_id),
            "{effect:?} came after the call ended"
        );
        seen.insert(call_id.clone());
        match effect {
            Effect::Pop { audience, .. } => match audience {
                Audience::Agents(list) => {
                    assert!(!list.is_empty(), "a pop names its agents");
                    for agent in list {
                        assert!(
                            holding.insert((call_id.clone(), *agent)),
                            "agent {agent:?} got a second pop for {call_id} while holding one"
                        );
                    }
                }
                Audience::Queue(queue) => {
                    assert!(
                        queues_popped.insert((call_id.clone(), queue.clone())),
                        "queue {queue:?} got a second pop for {call_id}"
                    );
                }
            },
            Effect::Withdraw { agent, .. } => {
                assert!(
                    holding.remove(&(call_id.clone(), *agent)),
                    "withdrew a pop agent {agent:?} did not hold"
                );
            }
            Effect::Answered { by, .. } => {
                if let (Some(agent), Direction::Inbound) = (by, direction) {
                    assert!(
                        holding.contains(&(call_id.clone(), *agent)),
                        "the answering agent holds the pop"
                    );
                }
                holding.retain(|(held_call, held_agent)| {
                    *held_call != call_id || Some(*held_agent) == *by
                });
            }
            Effect::Ended { call } => {
                assert!(call.started_at_ms <= call.ended_at_ms);
                assert!(!call.aliases.contains(&call.call_id));
                ended.insert(call_id.clone());
                holding.retain(|(held_call, _)| *held_call != call_id);
            }
        }
    }
    assert_eq!(
        seen, ended,
        "every call that took effect ended exactly once"
    );
}

fn ended_records(effects: &[Effect]) -> Vec<&super::CallRecord> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Ended { call } => Some(call),
            _ => None,
        })
        .collect()
}

fn pops_per_agent(effects: &[Effect]) -> HashMap<(String, AgentId), usize> {
    let mut counts = HashMap::new();
    for effect in effects {
        if let Effect::Pop {
            call_id,
            audience: Audience::Agents(list),
            ..
        } = effect
        {
            for agent in list {
                *counts.entry((call_id.clone(), *agent)).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn has_ring_stops(shape: Shape) -> bool {
    matches!(shape, Shape::Missed | Shape::Abandoned)
}

/// The outcomes a call of this shape may end with when each source's news stays in order. With a
/// SIP branch, the branch may be cancelled before the PBX's news of the same moment arrives.
fn expected_outcomes(scenario: &Scenario) -> Vec<Outcome> {
    let with_sip = matches!(
        scenario.sources,
        Sources::SipAndPbx | Sources::SipAndEsl | Sources::SipOnly
    );
    let sip_only = scenario.sources == Sources::SipOnly;
    match (scenario.shape, with_sip, sip_only) {
        (Shape::Answered | Shape::Transferred, _, true) => vec![Outcome::AnsweredElsewhere],
        (Shape::Answered | Shape::Transferred, true, false) => {
            vec![Outcome::Answered, Outcome::AnsweredElsewhere]
        }
        (Shape::Answered | Shape::Transferred, false, _) => vec![Outcome::Answered],
        (Shape::Missed, _, _) => vec![Outcome::Missed],
        (Shape::Abandoned, _, true) => vec![Outcome::Missed],
        (Shape::Abandoned, true, false) => vec![Outcome::Abandoned, Outcome::Missed],
        (Shape::Abandoned, false, _) => vec![Outcome::Abandoned],
        (Shape::OutboundBusy, _, _) => vec![Outcome::Busy],
        (Shape::OutboundAnswered, _, _) => vec![Outcome::Answered],
    }
}

/// A scenario with a random jitter between its sources' clocks.
fn scenarios() -> impl Strategy<Value = Scenario> {
    shapes()
        .prop_flat_map(|shape| (Just(shape), sources_for(shape), 0i64..3_000))
        .prop_map(|(shape, sources, jitter)| scenario(shape, sources, jitter))
}

proptest! {
    #[test]
    fn any_order_with_repeats_keeps_every_promise(
        scenario in scenarios(),
        with_bystander in any::<bool>(),
        order in any::<u64>(),
        repeats in prop::collection::vec((any::<Index>(), any::<Index>()), 0..6),
    ) {
        let mut events: Vec<CallEvent> = scenario.per_source.concat();
        if with_bystander {
            events.extend(bystander_call());
        }
        shuffle(&mut events, order);
        for (which, at) in &repeats {
            let repeated = events[which.index(events.len())].clone();
            let position = at.index(events.len() + 1);
            events.insert(position, repeated);
        }
        let mut model = CallModel::default();
        let effects = feed_and_check(&mut model, &events);

        // Replaying everything changes nothing: every call it mentions is remembered as ended.
        let mut replayed = CallModel::default();
        for event in &events {
            replayed.handle(event).unwrap();
        }
        for event in &events {
            prop_assert!(replayed.handle(event).unwrap().is_empty(), "{:?} took effect again", event);
        }

        if !has_ring_stops(scenario.shape) {
            for (key, count) in pops_per_agent(&effects) {
                prop_assert_eq!(count, 1, "{:?} popped more than once", key);
            }
        }
        if scenario.direction == Direction::Outbound {
            let outbound_pops = effects.iter().filter(|effect| matches!(
                effect,
                Effect::Pop { direction: Direction::Outbound, .. }
            ));
            prop_assert_eq!(outbound_pops.count(), 0, "outbound calls do not pop");
        }
    }

    #[test]
    fn in_order_sources_make_one_call_with_a_fitting_outcome(
        scenario in scenarios(),
        with_bystander in any::<bool>(),
        choices in prop::collection::vec(any::<Index>(), 0..20),
        repeats in prop::collection::vec((any::<Index>(), any::<Index>()), 0..6),
    ) {
        let mut lists = scenario.per_source.clone();
        if with_bystander {
            lists.push(bystander_call());
        }
        let mut events = interleave(lists, &choices);
        // A repeat is a retransmission: it comes after its original.
        for (which, at) in &repeats {
            let original = which.index(events.len());
            let repeated = events[original].clone();
            let position = original + 1 + at.index(events.len() - original);
            events.insert(position, repeated);
        }
        let mut model = CallModel::default();
        let effects = feed_and_check(&mut model, &events);
        let records = ended_records(&effects);
        let customer_records: Vec<_> = records
            .iter()
            .filter(|record| record.call_id != "1700.99")
            .collect();
        prop_assert_eq!(customer_records.len(), 1, "the sources' reports became one call: {:?}", records);
        let record = customer_records[0];
        prop_assert!(
            expected_outcomes(&scenario).contains(&record.outcome),
            "{:?} ended as {:?}", scenario.shape, record.outcome
        );
        if record.outcome == Outcome::Answered && scenario.direction == Direction::Inbound {
            let expected_agent = if scenario.shape == Shape::Transferred { 3 } else { 2 };
            prop_assert_eq!(record.answered_by, Some(AgentId(expected_agent)));
        }
        if with_bystander {
            let bystander: Vec<_> = records.iter().filter(|r| r.call_id == "1700.99").collect();
            prop_assert_eq!(bystander.len(), 1);
            prop_assert_eq!(bystander[0].outcome, Outcome::Answered);
            prop_assert_eq!(bystander[0].sources.clone(), vec![Source::Ami]);
        }
    }
}

/// A Fisher–Yates shuffle driven by one seed, so proptest can shrink the seed.
fn shuffle(events: &mut [CallEvent], seed: u64) {
    let mut state = seed | 1;
    for index in (1..events.len()).rev() {
        // xorshift64: enough to reach every order of a short list.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let other = usize::try_from(state % (index as u64 + 1)).unwrap_or(0);
        events.swap(index, other);
    }
}
