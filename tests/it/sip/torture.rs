//! The RFC 4475 and RFC 5118 torture messages (tests/data/sip) through the live UDP socket.
//!
//! Each message is sent from a fresh socket, so late responses to one (a 415 retransmitted on
//! Timer G, say) cannot be mistaken for the answer to the next. The only change made to a message
//! is `;rport` appended to its top Via: its sent-by names hosts such as 192.0.2.2:5060, and
//! without rport ringside would rightly answer there (RFC 3261 18.2.2) instead of to the test.
//! After every message the daemon must still answer an OPTIONS.
//!
//! Several messages of the corpus share a branch and sent-by (`z9hG4bKkdjuw` from
//! saturn.example.com ...), which makes the later one a retransmission of the earlier to any UAS.
//! So each message goes to a daemon that has not seen its transaction yet.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringside::protocol::sip::{Method, parse};

use crate::support::sip_client::{UdpPeer, options};
use crate::support::{TestApp, spawn_sip_app};

/// What each valid message gets: the first response other than 100 Trying, or `None` for the
/// responses in the corpus (nothing answers a response). Not 400 anywhere; the other 4xx are what
/// the message's own semantics call for.
const VALID: &[(&str, Option<u16>)] = &[
    ("badbranch", Some(200)),
    ("bcast", None),
    // Require: nothingSupportedHere.
    ("bext01", Some(420)),
    ("cparam01", Some(405)),
    ("cparam02", Some(405)),
    ("dblreq", Some(405)),
    ("esc01", Some(180)),
    ("esc02", Some(405)),
    ("escnull", Some(405)),
    ("intmeth", Some(405)),
    ("inv2543", Some(180)),
    // Content-Type: application/unknownformat.
    ("invut", Some(415)),
    ("ipv4-mapped-ipv6", Some(180)),
    ("ipv6-bug-abnf-3-colons", Some(200)),
    ("ipv6-correct-abnf-2-colons", Some(200)),
    ("ipv6-good", Some(405)),
    ("ipv6-in-sdp", Some(180)),
    ("longreq", Some(180)),
    ("lwsdisp", Some(200)),
    ("mpart01", Some(405)),
    // No dialog exists for a BYE.
    ("mult-ip-in-header", Some(481)),
    ("mult-ip-in-sdp", Some(180)),
    ("noreason", None),
    // Request-URI soap.beep://...
    ("novelsc", Some(416)),
    ("port-ambiguous", Some(405)),
    ("port-unambiguous", Some(405)),
    ("regaut01", Some(405)),
    ("regescrt", Some(405)),
    ("sdp01", Some(180)),
    ("semiuri", Some(200)),
    ("transports", Some(200)),
    // Request-URI nobodyKnowsThisScheme:...
    ("unkscm", Some(416)),
    ("unksm2", Some(405)),
    ("unreason", None),
    ("via-received-param-no-delim", Some(200)),
    ("via-received-param-with-delim", Some(481)),
    ("wsinv", Some(180)),
    ("zeromf", Some(200)),
];

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip")
        .join(kind);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sip"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Appends `;rport` to the first element of the first Via field (folded lines, compact `v:` and
/// `Via  :` spellings included). Messages without a readable header section are left alone.
fn with_rport(message: &[u8]) -> Vec<u8> {
    let Some(head_end) = message.windows(4).position(|w| w == b"\r\n\r\n") else {
        return message.to_vec();
    };
    let head = &message[..head_end + 2];
    let mut line_start = match head.windows(2).position(|w| w == b"\r\n") {
        Some(end) => end + 2,
        None => return message.to_vec(),
    };
    while line_start < head.len() {
        let line_end = head[line_start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(head.len(), |at| line_start + at);
        let line = &head[line_start..line_end];
        let is_via = line.iter().position(|&b| b == b':').is_some_and(|colon| {
            let name = String::from_utf8_lossy(&line[..colon]);
            let name = name.trim();
            name.eq_ignore_ascii_case("via") || name.eq_ignore_ascii_case("v")
        });
        if is_via {
            // The field runs on over continuation lines (starting with SP or HT).
            let mut field_end = line_end;
            while field_end + 2 < head.len() && matches!(head[field_end + 2], b' ' | b'\t') {
                field_end = head[field_end + 2..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(head.len(), |at| field_end + 2 + at);
            }
            let mut depth = 0i32;
            let mut insert_at = field_end;
            for (offset, byte) in head[line_start..field_end].iter().enumerate() {
                match byte {
                    b'[' | b'"' if depth == 0 => depth += 1,
                    b']' | b'"' if depth > 0 => depth -= 1,
                    b',' if depth == 0 => {
                        insert_at = line_start + offset;
                        break;
                    }
                    _ => {}
                }
            }
            let mut changed = message[..insert_at].to_vec();
            changed.extend_from_slice(b";rport");
            changed.extend_from_slice(&message[insert_at..]);
            return changed;
        }
        line_start = line_end + 2;
    }
    message.to_vec()
}

/// The server transaction a request opens: top Via branch, sent-by and method (ACK as INVITE).
fn transaction_of(bytes: &[u8]) -> Option<String> {
    let message = parse(bytes).ok()?;
    let method = match message.method()? {
        Method::Ack => Method::Invite,
        method => method.clone(),
    };
    let via = message.top_via().ok()?;
    Some(format!("{:?} {} {method}", via.branch(), via.sent_by()))
}

/// Daemons to send messages to; a new one is started when every running one has seen the
/// message's transaction.
#[derive(Default)]
struct Daemons {
    running: Vec<(TestApp, HashSet<String>)>,
}

impl Daemons {
    async fn for_message(&mut self, bytes: &[u8]) -> &TestApp {
        let key = transaction_of(bytes);
        let free = self
            .running
            .iter()
            .position(|(_, seen)| key.as_ref().is_none_or(|key| !seen.contains(key)));
        let index = match free {
            Some(index) => index,
            None => {
                self.running
                    .push((spawn_sip_app(|_| {}).await, HashSet::new()));
                self.running.len() - 1
            }
        };
        let (app, seen) = &mut self.running[index];
        if let Some(key) = key {
            seen.insert(key);
        }
        app
    }

    fn invalid_drops(&self) -> u64 {
        self.running
            .iter()
            .map(|(app, _)| {
                app.sip
                    .as_ref()
                    .unwrap()
                    .counters()
                    .drops(ringside::ingress::sip::DropReason::Invalid)
            })
            .sum()
    }

    async fn stop(self) {
        for (app, _) in self.running {
            app.stop().await;
        }
    }
}

/// Every response to one message within `window`, until a final one arrives.
async fn answers(peer: &UdpPeer, window: Duration) -> Vec<u16> {
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Some(message) = peer
        .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        let status = message.status_code().unwrap_or(0);
        statuses.push(status);
        if status >= 180 {
            break;
        }
    }
    statuses
}

async fn still_answers_options(app: &TestApp, after: &str) {
    let peer = UdpPeer::bind(app.sip_addr()).await;
    peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
        .await;
    let answer = peer
        .recv(Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("no answer to OPTIONS after {after}"));
    assert_eq!(answer.status_code(), Some(200), "after {after}");
}

#[test]
fn rport_is_added_to_the_first_via_element_only() {
    let message = b"OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\nVia  : SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1 , SIP/2.0/UDP x\r\nv: SIP/2.0/UDP y\r\n\r\n";
    let changed = String::from_utf8(with_rport(message)).unwrap();
    assert!(
        changed.contains("branch=z9hG4bK1 ;rport, SIP/2.0/UDP x\r\nv: SIP/2.0/UDP y\r\n"),
        "{changed}"
    );
    let folded =
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n  ;branch=z9hG4bK2\r\nTo: x\r\n\r\n";
    let changed = String::from_utf8(with_rport(folded)).unwrap();
    assert!(
        changed.contains("  ;branch=z9hG4bK2;rport\r\nTo: x"),
        "{changed}"
    );
}

#[tokio::test]
async fn valid_torture_messages_are_parsed_and_answered_by_their_meaning() {
    let mut daemons = Daemons::default();
    let files = corpus("valid");
    assert_eq!(
        files.len(),
        VALID.len(),
        "every valid message has an expectation"
    );
    for (name, bytes) in files {
        let expected = VALID
            .iter()
            .find(|(file, _)| *file == name)
            .unwrap_or_else(|| panic!("no expectation for {name}"))
            .1;
        let app = daemons.for_message(&bytes).await;
        let peer = UdpPeer::bind(app.sip_addr()).await;
        peer.send_bytes(&with_rport(&bytes)).await;
        let window = if expected.is_some() { 3000 } else { 500 };
        let statuses = answers(&peer, Duration::from_millis(window)).await;
        let last = statuses.iter().copied().find(|status| *status != 100);
        assert_eq!(last, expected, "{name}: got {statuses:?}");
        assert!(!statuses.contains(&400), "{name} got 400");
        still_answers_options(app, &name).await;
    }
    assert_eq!(daemons.invalid_drops(), 0, "no valid message was refused");
    daemons.stop().await;
}

#[tokio::test]
async fn invalid_torture_messages_are_refused_with_400_or_dropped() {
    let app = spawn_sip_app(|_| {}).await;
    let files = corpus("invalid");
    assert!(!files.is_empty());
    let mut answered = Vec::new();
    for (name, bytes) in files {
        let peer = UdpPeer::bind(app.sip_addr()).await;
        peer.send_bytes(&with_rport(&bytes)).await;
        let statuses = answers(&peer, Duration::from_millis(500)).await;
        // 505 Version Not Supported is the 400 of a message in another SIP version (badvers).
        assert!(
            statuses
                .iter()
                .all(|status| *status == 400 || *status == 505),
            "{name} got {statuses:?}"
        );
        if !statuses.is_empty() {
            answered.push(name.clone());
        }
        still_answers_options(&app, &name).await;
    }
    // Those whose Via, From, To, Call-ID and CSeq are present are answered rather than dropped.
    for name in ["badinv01", "baddate", "mismatch01", "quotbal", "badvers"] {
        assert!(
            answered.iter().any(|a| a == name),
            "{name} was not answered: {answered:?}"
        );
    }
    app.stop().await;
}
