//! The integration guides cannot drift from the code: what they name (permissions, events,
//! originate variables, event subscriptions) is checked against what ringside actually does.

use std::collections::BTreeSet;

fn guide(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/integrations")
            .join(name),
    )
    .expect("guide")
}

/// The first cell of each table row of the section headed `heading`, without backticks.
fn table_events(text: &str, heading: &str) -> BTreeSet<String> {
    let section = text
        .split(heading)
        .nth(1)
        .expect("section")
        .split("\n## ")
        .next()
        .unwrap_or("");
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let cell = l.trim_start_matches('|').split('|').next().unwrap_or("");
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_asterisk_guide_lists_exactly_the_events_ringside_maps() {
    let text = guide("asterisk.md");
    let listed = table_events(&text, "## 4. Events ringside uses");
    let mapped: BTreeSet<String> = ringside::ingress::ami::MAPPED_EVENTS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(listed, mapped);
    for var in ringside::ingress::ami::ORIGINATE_VARIABLES {
        assert!(
            text.contains(&format!("Variable: {var}=")),
            "the guide shows {var}"
        );
    }
    // The manager.conf user has what ringside needs and nothing it does not.
    let read = text
        .lines()
        .find(|l| l.starts_with("read = "))
        .expect("read line");
    let write = text
        .lines()
        .find(|l| l.starts_with("write = "))
        .expect("write line");
    assert_eq!(read, "read = call,agent");
    assert_eq!(write, "write = originate,reporting");
    assert!(text.contains("eventwhencalled = yes"));
    for event in ringside::ingress::ami::MAPPED_EVENTS {
        assert!(
            text.contains(&format!("eventfilter = Event: {event}\n")),
            "no eventfilter for {event}"
        );
    }
}

#[test]
fn the_freeswitch_guide_subscribes_to_exactly_the_events_ringside_asks_for() {
    let text = guide("freeswitch.md");
    let line = format!("event json {}", ringside::ingress::esl::EVENTS.join(" "));
    assert!(text.contains(&line), "the guide shows `{line}`");
    for var in ["ringside_task", "ringside_attempt"] {
        assert!(text.contains(&format!("{var}=")), "the guide shows {var}");
    }
    assert!(text.contains("user/1001 &bridge(sofia/gateway/default/+8613800138000)"));
}

#[test]
fn the_guides_configuration_snippets_are_valid_ringside_configuration() {
    for (name, fence) in [
        ("asterisk.md", "```toml\n[[ami.servers]]"),
        ("freeswitch.md", "```toml\n[[esl.servers]]"),
    ] {
        let text = guide(name);
        let start = text.find(fence).expect("toml block") + "```toml\n".len();
        let block = &text[start..start + text[start..].find("```").expect("end of block")];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ringside.toml");
        std::fs::write(&path, block).unwrap();
        ringside::settings::Settings::load(&path, true).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_kamailio_guide_shows_the_shipped_settings_and_a_ringside_configuration_that_matches_them() {
    let text = guide("kamailio.md");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped =
        std::fs::read_to_string(root.join("deploy/kamailio/kamailio.cfg")).expect("kamailio.cfg");
    // The settings the guide shows are the shipped file's, verbatim and complete.
    let start = text
        .find("```\n# The address and port")
        .expect("settings block")
        + "```\n".len();
    let block = &text[start..start + text[start..].find("```").expect("end of block")];
    assert!(
        shipped.contains(block),
        "the guide's settings are not the shipped file's:\n{block}"
    );
    for setting in shipped.lines().filter(|l| l.starts_with("#!trydef ")) {
        assert!(block.contains(setting), "the guide leaves out {setting}");
    }
    assert!(block.contains("##!define RINGSIDE_REDIRECT\n"));
    assert!(shipped.contains("#!ifdef RINGSIDE_REDIRECT\n"));

    // ringside's side is valid configuration and listens where the file sends calls.
    let start = text.find("```toml\n[sip]").expect("toml block") + "```toml\n".len();
    let toml = &text[start..start + text[start..].find("```").expect("end of block")];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ringside.toml");
    std::fs::write(&path, toml).unwrap();
    let settings = ringside::settings::Settings::load(&path, true).expect("valid configuration");
    let ringside = shipped
        .lines()
        .find_map(|l| l.strip_prefix("#!trydef RINGSIDE "))
        .expect("RINGSIDE setting")
        .trim_matches('"');
    assert_eq!(settings.sip.listen, ringside);
    assert_eq!(settings.sip.mode, ringside::settings::SipMode::Monitor);

    // The SIPp scenarios the guide runs exist and are the ones the end-to-end test runs.
    let test = std::fs::read_to_string(root.join("tests/it/kamailio.rs")).expect("kamailio.rs");
    let scenarios: BTreeSet<&str> = text
        .split("tests/sipp/")
        .skip(1)
        .filter_map(|rest| rest.split(".xml").next())
        .collect();
    assert!(scenarios.len() >= 4, "{scenarios:?}");
    for name in scenarios {
        assert!(
            root.join(format!("tests/sipp/{name}.xml")).is_file(),
            "{name}.xml"
        );
        assert!(
            test.contains(&format!("\"{name}.xml\"")),
            "the test runs {name}.xml"
        );
    }
}
