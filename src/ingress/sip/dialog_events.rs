//! Turns RFC 4235 dialog-info documents about agents' phones into call news: a phone starts
//! ringing, is answered, hangs up.
//!
//! A PBX sends a NOTIFY for every change of every dialog of a subscribed extension, often as a
//! full-state document that repeats dialogs that did not change, and one may be resent or arrive
//! twice. Journaling the same news again for each would write the call-event journal for nothing,
//! so the last state reported per (extension, dialog) is remembered and only changes come out.
//! A full-state document that no longer lists a dialog means the dialog ended.
//!
//! Dialogs in which the agent's phone placed the call (`direction="initiator"`) are not inbound
//! calls and are ignored. A `terminated` dialog is reported even when ringside never saw it start:
//! after a restart the call model may still hold the call (replayed from the journal) while this
//! memory is empty.
//!
//! Memory is bounded by [`MAX_TRACKED_DIALOGS`]; when full, ended dialogs and dialogs older than
//! [`STALE_AFTER`] are forgotten, and new dialogs beyond the bound are reported without being
//! remembered (a repeat of them is then reported again, which the call model absorbs).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::sip::{DialogEntry, DialogInfo, DialogState, Direction, DocumentState, Uri};

use super::identity;

/// The most dialogs remembered at once.
pub const MAX_TRACKED_DIALOGS: usize = 50_000;
/// A dialog not heard of for this long is forgotten when room is needed.
pub const STALE_AFTER: Duration = Duration::from_secs(4 * 3600);

/// What happened to one dialog of a watched phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogChange {
    /// The SIP Call-ID of the dialog (or its id when the document gives none).
    pub call_id: String,
    /// The watched extension (the entity's user).
    pub extension: Option<String>,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// The phone rings; the caller as the document names them.
    Ringing { caller: Option<String> },
    /// The phone was picked up.
    Answered,
    /// The dialog ended; the cause from the state's event or code.
    Hangup { cause: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Answered,
    Ended,
}

#[derive(Debug)]
struct Memo {
    phase: Phase,
    call_id: String,
    seen_at: Instant,
}

/// The remembered states of watched dialogs.
#[derive(Debug, Default)]
pub struct DialogWatch {
    dialogs: HashMap<(String, String), Memo>,
}

impl DialogWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The changes a document reports.
    pub fn apply(&mut self, info: &DialogInfo, now: Instant) -> Vec<DialogChange> {
        let entity = info.entity.clone();
        let extension = entity
            .parse::<Uri>()
            .ok()
            .as_ref()
            .and_then(identity::user_of);
        let mut changes = Vec::new();
        for dialog in &info.dialogs {
            if dialog.direction == Some(Direction::Initiator) {
                continue;
            }
            let call_id = dialog
                .call_id
                .clone()
                .filter(|id| !id.trim().is_empty())
                .unwrap_or_else(|| dialog.id.clone());
            let phase = match dialog.state {
                DialogState::Trying | DialogState::Proceeding | DialogState::Early => {
                    Phase::Ringing
                }
                DialogState::Confirmed => Phase::Answered,
                DialogState::Terminated => Phase::Ended,
            };
            let key = (entity.clone(), dialog.id.clone());
            let previous = self.dialogs.get(&key).map(|memo| memo.phase);
            let kind = match (previous, phase) {
                (Some(before), now_in) if before == now_in => None,
                // A dialog does not go back to ringing once answered or ended.
                (Some(Phase::Answered | Phase::Ended), Phase::Ringing) => None,
                (Some(Phase::Ended), Phase::Answered) => None,
                (_, Phase::Ringing) => Some(ChangeKind::Ringing {
                    caller: remote_caller(dialog),
                }),
                (_, Phase::Answered) => Some(ChangeKind::Answered),
                (_, Phase::Ended) => Some(ChangeKind::Hangup {
                    cause: hangup_cause(dialog),
                }),
            };
            if let Some(kind) = kind {
                changes.push(DialogChange {
                    call_id: call_id.clone(),
                    extension: extension.clone(),
                    kind,
                });
            }
            self.remember(key, phase, call_id, now);
        }
        if info.state == DocumentState::Full {
            let listed: Vec<&str> = info.dialogs.iter().map(|d| d.id.as_str()).collect();
            for ((memo_entity, dialog_id), memo) in &mut self.dialogs {
                if *memo_entity == entity
                    && memo.phase != Phase::Ended
                    && !listed.contains(&dialog_id.as_str())
                {
                    memo.phase = Phase::Ended;
                    memo.seen_at = now;
                    changes.push(DialogChange {
                        call_id: memo.call_id.clone(),
                        extension: extension.clone(),
                        kind: ChangeKind::Hangup { cause: None },
                    });
                }
            }
        }
        changes
    }

    fn remember(&mut self, key: (String, String), phase: Phase, call_id: String, now: Instant) {
        if !self.dialogs.contains_key(&key) && self.dialogs.len() >= MAX_TRACKED_DIALOGS {
            self.dialogs.retain(|_, memo| {
                memo.phase != Phase::Ended
                    && now.saturating_duration_since(memo.seen_at) < STALE_AFTER
            });
            if self.dialogs.len() >= MAX_TRACKED_DIALOGS {
                return;
            }
        }
        self.dialogs.insert(
            key,
            Memo {
                phase,
                call_id,
                seen_at: now,
            },
        );
    }
}

/// The caller of a dialog the watched phone receives: the remote identity, else its target.
fn remote_caller(dialog: &DialogEntry) -> Option<String> {
    let remote = dialog.remote.as_ref()?;
    [remote.identity.as_deref(), remote.target.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|text| text.trim().parse::<Uri>().ok())
        .find_map(|uri| identity::user_of(&uri))
}

fn hangup_cause(dialog: &DialogEntry) -> Option<String> {
    match (&dialog.state_event, dialog.state_code) {
        (_, Some(code)) => Some(code.to_string()),
        (Some(event), None) => Some(event.chars().take(64).collect()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::sip::parse_dialog_info;

    fn document(state: &str, dialogs: &str) -> DialogInfo {
        let xml = format!(
            r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="{state}" entity="sip:1001@pbx.example.com">{dialogs}</dialog-info>"#
        );
        parse_dialog_info(xml.as_bytes()).unwrap()
    }

    fn dialog(id: &str, state: &str, direction: &str) -> String {
        format!(
            r#"<dialog id="{id}" call-id="{id}@pbx" direction="{direction}"><state>{state}</state>
<remote><identity display="Li">sip:13900139000@pbx.example.com</identity></remote></dialog>"#
        )
    }

    #[test]
    fn early_then_confirmed_then_terminated_become_ringing_answered_hangup() {
        let mut watch = DialogWatch::new();
        let now = Instant::now();
        let ringing = watch.apply(
            &document("partial", &dialog("d1", "early", "recipient")),
            now,
        );
        assert_eq!(
            ringing,
            vec![DialogChange {
                call_id: "d1@pbx".into(),
                extension: Some("1001".into()),
                kind: ChangeKind::Ringing {
                    caller: Some("13900139000".into())
                },
            }]
        );
        let answered = watch.apply(
            &document("partial", &dialog("d1", "confirmed", "recipient")),
            now,
        );
        assert_eq!(answered[0].kind, ChangeKind::Answered);
        let ended = watch.apply(
            &document("partial", &dialog("d1", "terminated", "recipient")),
            now,
        );
        assert_eq!(ended[0].kind, ChangeKind::Hangup { cause: None });
    }

    #[test]
    fn a_repeated_state_reports_nothing_new() {
        let mut watch = DialogWatch::new();
        let now = Instant::now();
        let doc = document("full", &dialog("d1", "early", "recipient"));
        assert_eq!(watch.apply(&doc, now).len(), 1);
        assert!(watch.apply(&doc, now).is_empty());
    }

    #[test]
    fn calls_the_phone_places_are_ignored() {
        let mut watch = DialogWatch::new();
        let doc = document("partial", &dialog("d1", "early", "initiator"));
        assert!(watch.apply(&doc, Instant::now()).is_empty());
    }

    #[test]
    fn a_dialog_missing_from_a_full_document_has_ended() {
        let mut watch = DialogWatch::new();
        let now = Instant::now();
        watch.apply(&document("full", &dialog("d1", "early", "recipient")), now);
        let changes = watch.apply(&document("full", ""), now);
        assert_eq!(
            changes,
            vec![DialogChange {
                call_id: "d1@pbx".into(),
                extension: Some("1001".into()),
                kind: ChangeKind::Hangup { cause: None },
            }]
        );
        assert!(watch.apply(&document("full", ""), now).is_empty());
    }

    #[test]
    fn a_terminated_dialog_never_seen_is_still_reported() {
        let mut watch = DialogWatch::new();
        let xml = dialog("d9", "terminated", "recipient").replace(
            "<state>terminated</state>",
            r#"<state event="cancelled" code="487">terminated</state>"#,
        );
        let changes = watch.apply(&document("partial", &xml), Instant::now());
        assert_eq!(
            changes[0].kind,
            ChangeKind::Hangup {
                cause: Some("487".into())
            }
        );
    }

    #[test]
    fn a_late_early_after_confirmed_is_ignored() {
        let mut watch = DialogWatch::new();
        let now = Instant::now();
        watch.apply(
            &document("partial", &dialog("d1", "confirmed", "recipient")),
            now,
        );
        assert!(
            watch
                .apply(
                    &document("partial", &dialog("d1", "early", "recipient")),
                    now
                )
                .is_empty()
        );
    }
}
