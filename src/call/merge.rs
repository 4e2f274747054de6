//! The rule that decides whether news under an id we have never seen belongs to a call we already
//! know from another source (a SIP fork and AMI report the same call under different ids). Getting
//! it wrong either way hurts: a missed merge pops agents twice and stores two records; a false merge
//! hides a real call. So the rule is strict about what it can check:
//!
//! - the known call must not already be reported by the event's source: one source never reports
//!   one call under two ids, so two ids from one source are two calls (two calls from the same
//!   number through one PBX stay apart);
//! - same direction, and the customer's number (the caller of an inbound call, the dialed number of
//!   an outbound one) must be the same; withheld numbers never match;
//! - our side (the dialed number of an inbound call) must agree when both reports give it;
//! - time: a ringing event must fall within the merge window of the call's first ringing. When the
//!   call's ringing was never heard (it is only known from an answer or a hangup) its true start is
//!   unknown but no later than its first news, so ringing up to a window after that is accepted.
//!   News from later in a call's life (answer, transfer, ring stop, hangup, abandonment) comes any
//!   time after the start, so it only must not come before the start by more than the window.

use super::event::{CallEvent, Direction, Party, Source};

/// What the merge rule needs to know about a call, live or ended.
#[derive(Debug, Clone)]
pub(super) struct MatchFacts {
    pub direction: Direction,
    pub caller: Option<Party>,
    pub dialed: Option<Party>,
    pub sources: Vec<Source>,
    /// The earliest time of any news about the call.
    pub started_at_ms: i64,
    /// The earliest ringing heard, when any was.
    pub ring_start_ms: Option<i64>,
}

impl MatchFacts {
    pub fn from_event(event: &CallEvent) -> Self {
        MatchFacts {
            direction: event.direction,
            caller: event.caller.clone(),
            dialed: event.dialed.clone(),
            sources: vec![event.source],
            started_at_ms: event.at_ms,
            ring_start_ms: None,
        }
    }

    pub fn remote_party(&self) -> Option<&Party> {
        match self.direction {
            Direction::Inbound => self.caller.as_ref(),
            Direction::Outbound => self.dialed.as_ref(),
        }
    }

    fn local_party(&self) -> Option<&Party> {
        match self.direction {
            Direction::Inbound => self.dialed.as_ref(),
            Direction::Outbound => self.caller.as_ref(),
        }
    }

    /// The keys this call is indexed under for merging: the digit forms of the customer's number.
    pub fn index_keys(&self) -> Vec<String> {
        self.remote_party()
            .map(Party::digit_forms)
            .unwrap_or_default()
    }

    /// Remembers a source, and fills in parties the call did not know yet.
    pub fn absorb(&mut self, event: &CallEvent) {
        if !self.sources.contains(&event.source) {
            self.sources.push(event.source);
        }
        fill_party(&mut self.caller, event.caller.as_ref());
        fill_party(&mut self.dialed, event.dialed.as_ref());
        self.started_at_ms = self.started_at_ms.min(event.at_ms);
        if event.kind.starts_call() {
            self.ring_start_ms = Some(
                self.ring_start_ms
                    .map_or(event.at_ms, |r| r.min(event.at_ms)),
            );
        }
    }

    /// Whether `event` (under an id never seen) may join this call and, if so, how far in time it is
    /// from the call's start; the closest candidate wins.
    pub fn join_distance(&self, event: &CallEvent, merge_window_ms: i64) -> Option<i64> {
        if self.direction != event.direction || self.sources.contains(&event.source) {
            return None;
        }
        let (Some(ours), Some(theirs)) = (self.remote_party(), event.remote_party()) else {
            return None;
        };
        if !ours.is_same_number(theirs) {
            return None;
        }
        let destinations_differ = match (self.local_party(), event.local_party()) {
            (Some(ours), Some(theirs)) => !ours.is_same_destination(theirs),
            _ => false,
        };
        if destinations_differ {
            return None;
        }
        let at = event.at_ms;
        let in_time = match (event.kind.starts_call(), self.ring_start_ms) {
            (true, Some(ring_start)) => at.abs_diff(ring_start) <= merge_window_ms.unsigned_abs(),
            (true, None) => at <= self.started_at_ms.saturating_add(merge_window_ms),
            (false, Some(ring_start)) => at >= ring_start.saturating_sub(merge_window_ms),
            (false, None) => true,
        };
        let anchor = self.ring_start_ms.unwrap_or(self.started_at_ms);
        in_time.then(|| i64::try_from(at.abs_diff(anchor)).unwrap_or(i64::MAX))
    }
}

/// Keeps what a call already knows about a party and only fills gaps: an unknown party, or the
/// E.164 form of the same number once some source could normalize it.
fn fill_party(known: &mut Option<Party>, reported: Option<&Party>) {
    let Some(reported) = reported else { return };
    match known {
        None => *known = Some(reported.clone()),
        Some(party) if party.e164.is_none() && party.is_same_number(reported) => {
            party.e164.clone_from(&reported.e164);
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::{AgentId, Audience, EventKind};
    use super::*;

    const WINDOW: i64 = 5_000;

    fn event(source: Source, at_ms: i64, caller: &str, kind: EventKind) -> CallEvent {
        CallEvent {
            source,
            call_id: format!("{}-{at_ms}", source.as_str()),
            at_ms,
            direction: Direction::Inbound,
            caller: Some(Party::new(caller, None)),
            dialed: Some(Party::new("600", None)),
            kind,
        }
    }

    fn ringing() -> EventKind {
        EventKind::Ringing {
            audience: Audience::Agents(vec![AgentId(1)]),
        }
    }

    fn hangup() -> EventKind {
        EventKind::Hangup {
            cause: None,
            answered_elsewhere: false,
        }
    }

    fn ringing_call_at(at_ms: i64) -> MatchFacts {
        let first = event(Source::Sip, at_ms, "13800138000", ringing());
        let mut facts = MatchFacts::from_event(&first);
        facts.absorb(&first);
        facts
    }

    #[test]
    fn ringing_joins_within_the_window_of_the_first_ringing() {
        let call = ringing_call_at(10_000);
        let joiner = event(Source::Ami, 14_000, "13800138000", ringing());
        assert_eq!(call.join_distance(&joiner, WINDOW), Some(4_000));
        let early = event(Source::Ami, 6_000, "13800138000", ringing());
        assert_eq!(call.join_distance(&early, WINDOW), Some(4_000));
        let too_late = event(Source::Ami, 15_001, "13800138000", ringing());
        assert_eq!(call.join_distance(&too_late, WINDOW), None);
        let too_early = event(Source::Ami, 4_999, "13800138000", ringing());
        assert_eq!(call.join_distance(&too_early, WINDOW), None);
    }

    #[test]
    fn the_same_source_never_joins_under_another_id() {
        let call = ringing_call_at(10_000);
        let same_source = event(Source::Sip, 10_001, "13800138000", ringing());
        assert_eq!(call.join_distance(&same_source, WINDOW), None);
    }

    #[test]
    fn another_number_or_direction_or_destination_never_joins() {
        let call = ringing_call_at(10_000);
        let other_number = event(Source::Ami, 10_000, "13800138001", ringing());
        assert_eq!(call.join_distance(&other_number, WINDOW), None);
        let mut outbound = event(Source::Ami, 10_000, "13800138000", ringing());
        outbound.direction = Direction::Outbound;
        assert_eq!(call.join_distance(&outbound, WINDOW), None);
        let mut other_line = event(Source::Ami, 10_000, "13800138000", ringing());
        other_line.dialed = Some(Party::new("700", None));
        assert_eq!(call.join_distance(&other_line, WINDOW), None);
        let mut no_line = event(Source::Ami, 10_000, "13800138000", ringing());
        no_line.dialed = None;
        assert!(
            call.join_distance(&no_line, WINDOW).is_some(),
            "a destination is only compared when both give one"
        );
    }

    #[test]
    fn withheld_callers_never_join() {
        let first = event(Source::Sip, 10_000, "anonymous", ringing());
        let mut call = MatchFacts::from_event(&first);
        call.absorb(&first);
        let joiner = event(Source::Ami, 10_000, "anonymous", ringing());
        assert_eq!(call.join_distance(&joiner, WINDOW), None);
    }

    #[test]
    fn later_news_joins_any_time_after_the_start() {
        let call = ringing_call_at(10_000);
        let hangup_late = event(Source::Ami, 600_000, "13800138000", hangup());
        assert!(call.join_distance(&hangup_late, WINDOW).is_some());
        let answered = event(
            Source::Ami,
            30_000,
            "13800138000",
            EventKind::Answered { by: None },
        );
        assert!(call.join_distance(&answered, WINDOW).is_some());
        let before_start = event(Source::Ami, 4_000, "13800138000", hangup());
        assert_eq!(call.join_distance(&before_start, WINDOW), None);
    }

    #[test]
    fn ringing_joins_a_call_only_known_from_its_answer_if_not_after_it() {
        let answer = event(
            Source::Ami,
            30_000,
            "13800138000",
            EventKind::Answered { by: None },
        );
        let mut call = MatchFacts::from_event(&answer);
        call.absorb(&answer);
        let earlier_ringing = event(Source::Sip, 1_000, "13800138000", ringing());
        assert!(call.join_distance(&earlier_ringing, WINDOW).is_some());
        let later_ringing = event(Source::Sip, 35_001, "13800138000", ringing());
        assert_eq!(call.join_distance(&later_ringing, WINDOW), None);
    }

    #[test]
    fn absorbing_fills_the_normalized_number_without_replacing_the_party() {
        let first = event(Source::Sip, 10_000, "13800138000", ringing());
        let mut call = MatchFacts::from_event(&first);
        let mut second = event(Source::Ami, 10_100, "138 0013 8000", ringing());
        second.caller = Some(Party::new("138 0013 8000", Some("+8613800138000".into())));
        call.absorb(&second);
        assert_eq!(
            call.caller,
            Some(Party::new("13800138000", Some("+8613800138000".into())))
        );
        assert_eq!(call.sources, vec![Source::Sip, Source::Ami]);
    }
}
