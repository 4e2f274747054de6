//! The SIP ingress through its live sockets: a small SIP peer (tests/it/support/sip_client.rs)
//! plays the PBX over UDP and TCP on loopback, and agents' consoles are connected over the real
//! WebSocket. `sipp` runs the same flows with SIPp; `torture` sends the RFC 4475 / RFC 5118
//! messages.

mod sipp;
mod torture;

use std::time::{Duration, Instant};

use ringside::auth::Role;
use ringside::ingress::sip::{DropReason, MethodLabel};
use serde_json::{Value, json};

use crate::support::sip_client::{Call, TcpPeer, UdpPeer, WAIT, options, request};
use crate::support::{TestApp, spawn_sip_app};

async fn customer(app: &TestApp, body: Value) -> Value {
    let response = app.post("/api/v1/customers", &app.admin_token, &body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn to_tag(message: &ringside::protocol::sip::SipMessage) -> String {
    message
        .to_header()
        .unwrap()
        .tag()
        .expect("a To tag")
        .to_owned()
}

/// Waits until `check` holds, for at most `WAIT`.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn options_is_answered_200_over_udp_and_tcp() {
    let app = spawn_sip_app(|_| {}).await;
    let udp = UdpPeer::bind(app.sip_addr()).await;
    udp.send(&options(udp.local(), app.sip_addr(), "UDP")).await;
    let answer = udp.expect(200).await;
    assert!(answer.header("Allow").unwrap().contains("INVITE"));
    assert!(answer.header("Accept").is_some());

    let mut tcp = TcpPeer::connect(app.sip_addr()).await;
    let local = tcp.local();
    tcp.send(&options(local, app.sip_addr(), "TCP")).await;
    tcp.expect(200).await;
    // The connection stays open for more.
    tcp.send(&options(local, app.sip_addr(), "TCP")).await;
    tcp.expect(200).await;
    let counters = app.sip.as_ref().unwrap().counters();
    assert_eq!(counters.requests_in(MethodLabel::Options), 3);
    app.stop().await;
}

#[tokio::test]
async fn options_is_answered_over_ipv6_loopback() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    }
    let app = spawn_sip_app(|settings| settings.sip.listen = "[::1]:0".into()).await;
    assert!(app.sip_addr().is_ipv6());
    let udp = UdpPeer::bind(app.sip_addr()).await;
    udp.send(&options(udp.local(), app.sip_addr(), "UDP")).await;
    udp.expect(200).await;
    let mut tcp = TcpPeer::connect(app.sip_addr()).await;
    let local = tcp.local();
    tcp.send(&options(local, app.sip_addr(), "TCP")).await;
    tcp.expect(200).await;
    app.stop().await;
}

#[tokio::test]
async fn an_invite_rings_pops_the_agent_and_a_plain_cancel_ends_it_as_missed() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(
        &app,
        json!({"name": "王建国", "tier": "A", "phones": ["+86 138 0013 8000"]}),
    )
    .await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13800138000", "1001");

    peer.send(&call.invite()).await;
    let trying = peer.expect(100).await;
    assert!(trying.to_header().unwrap().tag().is_none());
    let ringing = peer.expect(180).await;
    let tag = to_tag(&ringing);
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["call_id"], call.call_id);
    assert_eq!(pop["caller"]["e164"], "+8613800138000");
    assert_eq!(pop["customer"]["name"], "王建国");

    peer.send(&call.cancel(&[])).await;
    let cancelled = peer.expect(200).await;
    assert_eq!(cancelled.cseq().unwrap().method.as_str(), "CANCEL");
    assert_eq!(to_tag(&cancelled), tag);
    let terminated = peer.expect(487).await;
    assert_eq!(to_tag(&terminated), tag);
    peer.send(&call.ack(&tag)).await;

    let update = console.next_of("call_update").await;
    assert_eq!(update["call_id"], call.call_id);
    assert_eq!(update["state"], "ended");
    assert_eq!(update["outcome"], "missed");
    app.stop().await;
}

#[tokio::test]
async fn a_cancel_answered_elsewhere_withdraws_the_pop() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13900139000", "1001");
    peer.send(&call.invite()).await;
    peer.expect(100).await;
    let tag = to_tag(&peer.expect(180).await);
    assert_eq!(console.next_of("screen_pop").await["call_id"], call.call_id);

    peer.send(&call.cancel(&["Reason: SIP;cause=200;text=\"Call completed elsewhere\""]))
        .await;
    peer.expect(200).await;
    peer.expect(487).await;
    peer.send(&call.ack(&tag)).await;
    let update = console.next_of("call_update").await;
    assert_eq!(update["call_id"], call.call_id);
    assert_eq!(update["state"], "answered_elsewhere");
    app.stop().await;
}

#[tokio::test]
async fn a_retransmitted_invite_pops_once_and_the_487_repeats_until_the_ack() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13900139000", "1001");
    peer.send(&call.invite()).await;
    peer.expect(100).await;
    let tag = to_tag(&peer.expect(180).await);
    peer.send(&call.invite()).await;
    assert_eq!(
        to_tag(&peer.expect(180).await),
        tag,
        "the last response again"
    );
    console.next_of("screen_pop").await;
    console.expect_silence(500).await;

    peer.send(&call.cancel(&[])).await;
    peer.expect(200).await;
    peer.expect(487).await;
    let first = Instant::now();
    peer.expect(487).await;
    let second = first.elapsed();
    peer.expect(487).await;
    let third = first.elapsed();
    // Timer G: T1 (500 ms) after the first 487, then 1 s after that.
    assert!(
        second >= Duration::from_millis(350) && second < Duration::from_millis(1200),
        "{second:?}"
    );
    assert!(
        third >= Duration::from_millis(1300) && third < Duration::from_millis(2500),
        "{third:?}"
    );
    peer.send(&call.ack(&tag)).await;
    // The next retransmission would have come 2 s after the last one.
    peer.expect_silence(2500).await;

    let counters = app.sip.as_ref().unwrap().counters().clone();
    assert!(counters.retransmissions_absorbed() >= 1);
    eventually("both events journaled", || counters.events_submitted() == 2).await;
    app.stop().await;
}

#[tokio::test]
async fn an_invite_for_an_extension_nobody_has_pops_nobody() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13900139000", "4242");
    peer.send(&call.invite()).await;
    peer.expect(100).await;
    peer.expect(180).await;
    console.expect_silence(700).await;
    app.stop().await;
}

#[tokio::test]
async fn the_caller_is_the_asserted_identity_and_the_dialed_number_the_diversion() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "1", "1001")
        .with_header("P-Asserted-Identity: \"Li\" <tel:+86-139-0013-9000>")
        .with_header("Diversion: <sip:4008001234@pbx.test>;reason=unconditional");
    peer.send(&call.invite()).await;
    peer.expect(100).await;
    peer.expect(180).await;
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["caller"]["e164"], "+8613900139000");
    app.stop().await;
}

#[tokio::test]
async fn responses_go_to_the_via_port_unless_rport_asks_for_the_source() {
    let app = spawn_sip_app(|_| {}).await;
    let sender = UdpPeer::bind(app.sip_addr()).await;
    let listener = UdpPeer::bind(app.sip_addr()).await;
    // Sent from `sender`, but the Via names `listener`'s port and asks for no rport.
    let to_listener = options(listener.local(), app.sip_addr(), "UDP");
    sender.send(&to_listener).await;
    listener.expect(200).await;
    sender.expect_silence(300).await;
    // With rport the response goes back to where the request came from.
    let with_rport = to_listener.replacen("\r\nMax-Forwards", ";rport\r\nMax-Forwards", 1);
    let with_rport = with_rport.replacen("branch=z9hG4bK", "branch=z9hG4bKr", 1);
    sender.send(&with_rport).await;
    let answer = sender.expect(200).await;
    let via = answer.top_via().unwrap();
    assert_eq!(via.rport(), Some(sender.local().port()));
    assert_eq!(via.received(), Some("127.0.0.1"));
    app.stop().await;
}

#[tokio::test]
async fn an_invite_and_cancel_over_tcp_are_answered_on_the_connection() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let mut peer = TcpPeer::connect(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13900139000", "1001").over_tcp();
    peer.send(&call.invite()).await;
    peer.expect(100).await;
    let tag = to_tag(&peer.expect(180).await);
    console.next_of("screen_pop").await;
    peer.send(&call.cancel(&[])).await;
    peer.expect(200).await;
    peer.expect(487).await;
    peer.send(&call.ack(&tag)).await;
    // Over TCP the 487 is not retransmitted.
    assert!(peer.recv(Duration::from_millis(1200)).await.is_none());
    assert_eq!(console.next_of("call_update").await["state"], "ended");
    app.stop().await;
}

#[tokio::test]
async fn requests_outside_any_transaction_get_481_405_or_nothing() {
    let app = spawn_sip_app(|_| {}).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13900139000", "1001");
    peer.send(&call.cancel(&[])).await;
    peer.expect(481).await;
    let mut bye = call.clone();
    bye.branch.push('b');
    peer.send(&bye.cancel(&[]).replace("CANCEL", "BYE")).await;
    peer.expect(481).await;
    peer.send(&request(
        "REGISTER",
        peer.local(),
        app.sip_addr(),
        "UDP",
        &[],
        "",
    ))
    .await;
    let refused = peer.expect(405).await;
    assert!(refused.header("Allow").unwrap().contains("OPTIONS"));
    peer.send(&call.ack("nobody")).await;
    peer.expect_silence(400).await;
    let counters = app.sip.as_ref().unwrap().counters();
    assert_eq!(counters.drops(DropReason::UnmatchedAck), 1);
    app.stop().await;
}

#[tokio::test]
async fn malformed_messages_get_400_when_answerable_and_are_dropped_otherwise() {
    let app = spawn_sip_app(|_| {}).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    peer.send("this is not SIP\r\n\r\n").await;
    peer.expect_silence(300).await;
    let no_cseq = options(peer.local(), app.sip_addr(), "UDP").replace("CSeq: 1 OPTIONS\r\n", "");
    peer.send(&no_cseq).await;
    peer.expect_silence(300).await;
    let bad_from = options(peer.local(), app.sip_addr(), "UDP")
        .replace("From: <sip:pbx@", "From: \"unterminated <sip:pbx@");
    peer.send(&bad_from).await;
    peer.expect(400).await;
    peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
        .await;
    peer.expect(200).await;
    let counters = app.sip.as_ref().unwrap().counters();
    assert_eq!(counters.drops(DropReason::Unparseable), 1);
    assert_eq!(counters.drops(DropReason::Invalid), 2);
    app.stop().await;
}

#[tokio::test]
async fn sources_outside_the_allow_list_get_403_or_silence() {
    let app =
        spawn_sip_app(|settings| settings.sip.allow = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
        .await;
    peer.expect(403).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13900139000", "1001");
    peer.send(&call.invite()).await;
    peer.expect(403).await;
    app.stop().await;

    let silent = spawn_sip_app(|settings| {
        settings.sip.allow = vec!["10.0.0.0/8".parse().unwrap()];
        settings.sip.refuse = ringside::settings::Refusal::Silent;
    })
    .await;
    let peer = UdpPeer::bind(silent.sip_addr()).await;
    peer.send(&options(peer.local(), silent.sip_addr(), "UDP"))
        .await;
    peer.expect_silence(500).await;
    let mut tcp = TcpPeer::connect(silent.sip_addr()).await;
    assert!(tcp.closed_within(Duration::from_secs(2)).await);
    let counters = silent.sip.as_ref().unwrap().counters();
    assert_eq!(counters.drops(DropReason::NotAllowed), 2);
    silent.stop().await;
}

#[tokio::test]
async fn scanners_are_dropped_silently() {
    let app = spawn_sip_app(|_| {}).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    peer.send(&request(
        "OPTIONS",
        peer.local(),
        app.sip_addr(),
        "UDP",
        &["User-Agent: friendly-scanner"],
        "",
    ))
    .await;
    peer.expect_silence(400).await;
    peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
        .await;
    peer.expect(200).await;
    assert_eq!(
        app.sip
            .as_ref()
            .unwrap()
            .counters()
            .drops(DropReason::Scanner),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_flooding_source_is_banned_but_allowed_sources_never_are() {
    let app = spawn_sip_app(|settings| settings.sip.rate_limit_per_sec = 5).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    for _ in 0..30 {
        peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
            .await;
    }
    let mut answered = 0;
    while peer.recv(Duration::from_millis(500)).await.is_some() {
        answered += 1;
    }
    assert!((5..=7).contains(&answered), "{answered} answered");
    peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
        .await;
    peer.expect_silence(300).await;
    let counters = app.sip.as_ref().unwrap().counters();
    assert_eq!(counters.bans(), 1);
    assert!(counters.drops(DropReason::Banned) >= 20);
    app.stop().await;

    let trusted = spawn_sip_app(|settings| {
        settings.sip.rate_limit_per_sec = 5;
        settings.sip.allow = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let peer = UdpPeer::bind(trusted.sip_addr()).await;
    for _ in 0..30 {
        peer.send(&options(peer.local(), trusted.sip_addr(), "UDP"))
            .await;
    }
    for _ in 0..30 {
        peer.expect(200).await;
    }
    assert_eq!(trusted.sip.as_ref().unwrap().counters().bans(), 0);
    trusted.stop().await;
}

#[tokio::test]
async fn oversized_messages_and_broken_tcp_streams_are_refused() {
    let app = spawn_sip_app(|settings| {
        settings.sip.max_message_bytes = 2048;
        settings.sip.tcp_idle_secs = 1;
    })
    .await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let padding = format!("X-Padding: {}", "x".repeat(4000));
    peer.send(&request(
        "OPTIONS",
        peer.local(),
        app.sip_addr(),
        "UDP",
        &[&padding],
        "",
    ))
    .await;
    peer.expect_silence(300).await;
    peer.send(&options(peer.local(), app.sip_addr(), "UDP"))
        .await;
    peer.expect(200).await;
    let counters = app.sip.as_ref().unwrap().counters().clone();
    assert_eq!(counters.drops(DropReason::TooLarge), 1);

    // No Content-Length on a stream: the message cannot be delimited, so the connection closes.
    let mut tcp = TcpPeer::connect(app.sip_addr()).await;
    let local = tcp.local();
    let unframed = options(local, app.sip_addr(), "TCP").replace("Content-Length: 0\r\n", "");
    tcp.send(&unframed).await;
    assert!(tcp.closed_within(Duration::from_secs(2)).await);

    let mut tcp = TcpPeer::connect(app.sip_addr()).await;
    let local = tcp.local();
    tcp.send(&request(
        "OPTIONS",
        local,
        app.sip_addr(),
        "TCP",
        &[&padding],
        "",
    ))
    .await;
    assert!(tcp.closed_within(Duration::from_secs(2)).await);
    assert_eq!(counters.drops(DropReason::TooLarge), 2);

    // An idle connection is closed after sip.tcp_idle_secs.
    let mut idle = TcpPeer::connect(app.sip_addr()).await;
    let started = Instant::now();
    assert!(idle.closed_within(Duration::from_secs(4)).await);
    assert!(started.elapsed() >= Duration::from_millis(900));
    app.stop().await;
}

#[tokio::test]
async fn redirect_mode_sends_key_accounts_to_their_account_manager() {
    let app = spawn_sip_app(|settings| {
        settings.sip.mode = ringside::settings::SipMode::Redirect;
        settings.sip.redirect_domain = "pbx.example.com".into();
        settings.sip.redirect_fallback = "600".into();
    })
    .await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(
        &app,
        json!({"name": "王建国", "tier": "A", "key_account": true, "account_manager": "ann",
               "phones": ["+86 138 0013 8000"]}),
    )
    .await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let call = Call::new(peer.local(), app.sip_addr(), "13800138000", "800");
    peer.send(&call.invite()).await;
    peer.expect(100).await;
    let moved = peer.expect(302).await;
    assert_eq!(
        moved.contacts().unwrap()[0].uri.to_string(),
        "sip:1001@pbx.example.com"
    );
    peer.send(&call.ack(&to_tag(&moved))).await;
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["call_id"], call.call_id);
    assert_eq!(pop["customer"]["account_manager"], "ann");
    // The ACK ends the retransmissions of the 302.
    peer.expect_silence(1200).await;

    let stranger = Call::new(peer.local(), app.sip_addr(), "13700000001", "800");
    peer.send(&stranger.invite()).await;
    peer.expect(100).await;
    let fallback = peer.expect(302).await;
    assert_eq!(
        fallback.contacts().unwrap()[0].uri.to_string(),
        "sip:600@pbx.example.com"
    );
    peer.send(&stranger.ack(&to_tag(&fallback))).await;
    app.stop().await;

    let nowhere = spawn_sip_app(|settings| {
        settings.sip.mode = ringside::settings::SipMode::Redirect;
        settings.sip.redirect_fallback_status = 486;
    })
    .await;
    let peer = UdpPeer::bind(nowhere.sip_addr()).await;
    let call = Call::new(peer.local(), nowhere.sip_addr(), "13700000001", "800");
    peer.send(&call.invite()).await;
    peer.expect(100).await;
    let busy = peer.expect(486).await;
    peer.send(&call.ack(&to_tag(&busy))).await;
    nowhere.stop().await;
}

fn dialog_info(version: u32, state: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" state="partial" entity="sip:1001@pbx.test">
  <dialog id="as7d900as8" call-id="leg-42@pbx.test" local-tag="1" remote-tag="2" direction="recipient">
    <state>{state}</state>
    <remote><identity display="Li Na">sip:13900139000@pbx.test</identity></remote>
  </dialog>
</dialog-info>"#
    )
}

fn notify(peer: &UdpPeer, server: std::net::SocketAddr, body: &str) -> String {
    request(
        "NOTIFY",
        peer.local(),
        server,
        "UDP",
        &[
            "Event: dialog",
            "Subscription-State: active;expires=3600",
            "Content-Type: application/dialog-info+xml",
        ],
        body,
    )
}

#[tokio::test]
async fn dialog_info_notifies_pop_then_update_the_agents_console() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    customer(&app, json!({"name": "Li Na", "phones": ["13900139000"]})).await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;

    peer.send(&notify(&peer, app.sip_addr(), &dialog_info(1, "early")))
        .await;
    peer.expect(200).await;
    let pop = console.next_of("screen_pop").await;
    assert_eq!(pop["call_id"], "leg-42@pbx.test");
    assert_eq!(pop["customer"]["name"], "Li Na");

    // The same state again reports nothing new.
    peer.send(&notify(&peer, app.sip_addr(), &dialog_info(2, "early")))
        .await;
    peer.expect(200).await;
    console.expect_silence(300).await;

    peer.send(&notify(&peer, app.sip_addr(), &dialog_info(3, "confirmed")))
        .await;
    peer.expect(200).await;
    let answered = console.next_of("call_update").await;
    assert_eq!(answered["state"], "answered");
    assert_eq!(answered["by"], "ann");

    peer.send(&notify(
        &peer,
        app.sip_addr(),
        &dialog_info(4, "terminated"),
    ))
    .await;
    peer.expect(200).await;
    let ended = console.next_of("call_update").await;
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["outcome"], "answered");
    app.stop().await;
}

#[tokio::test]
async fn a_ringing_dialog_that_ends_unanswered_is_withdrawn_as_missed() {
    let app = spawn_sip_app(|_| {}).await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    peer.send(&notify(&peer, app.sip_addr(), &dialog_info(1, "early")))
        .await;
    peer.expect(200).await;
    console.next_of("screen_pop").await;
    let gone = dialog_info(2, "early").replace("state=\"partial\"", "state=\"full\"");
    let gone = gone.replace(
        gone.get(gone.find("<dialog id").unwrap()..gone.find("</dialog>").unwrap() + 9)
            .unwrap(),
        "",
    );
    peer.send(&notify(&peer, app.sip_addr(), &gone)).await;
    peer.expect(200).await;
    let ended = console.next_of("call_update").await;
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["outcome"], "missed");
    app.stop().await;
}

#[tokio::test]
async fn notifies_that_are_not_dialog_info_get_489_415_or_400() {
    let app = spawn_sip_app(|_| {}).await;
    let peer = UdpPeer::bind(app.sip_addr()).await;
    let server = app.sip_addr();
    peer.send(&request("NOTIFY", peer.local(), server, "UDP", &[], ""))
        .await;
    peer.expect(489).await;
    peer.send(&request(
        "NOTIFY",
        peer.local(),
        server,
        "UDP",
        &[
            "Event: message-summary",
            "Content-Type: application/simple-message-summary",
        ],
        "Messages-Waiting: yes\r\n",
    ))
    .await;
    peer.expect(489).await;
    peer.send(&request(
        "NOTIFY",
        peer.local(),
        server,
        "UDP",
        &["Event: dialog", "Content-Type: text/plain"],
        "hello",
    ))
    .await;
    assert_eq!(
        peer.expect(415).await.header("Accept"),
        Some("application/dialog-info+xml")
    );
    peer.send(&request(
        "NOTIFY",
        peer.local(),
        server,
        "UDP",
        &["Event: dialog", "Content-Type: application/dialog-info+xml"],
        "<dialog-info",
    ))
    .await;
    peer.expect(400).await;
    peer.send(&request(
        "NOTIFY",
        peer.local(),
        server,
        "UDP",
        &[
            "Event: dialog",
            "Subscription-State: terminated;reason=timeout",
        ],
        "",
    ))
    .await;
    peer.expect(200).await;
    app.stop().await;
}

#[tokio::test]
async fn ringside_subscribes_to_extensions_and_keeps_the_subscription_alive() {
    let pbx = UdpPeer::bind("127.0.0.1:9".parse().unwrap()).await;
    let pbx_addr = pbx.local();
    let app = spawn_sip_app(move |settings| {
        settings.sip.subscribe_extensions = vec!["1001".into()];
        settings.sip.subscribe_to = pbx_addr.to_string();
        settings.sip.subscribe_expires_secs = 600;
    })
    .await;
    let (_, ann) = app.agent("ann", Role::Agent, &["1001"]).await;
    let mut console = app.console(&ann).await;
    let mut pbx = pbx;
    pbx.server = app.sip_addr();

    let first = pbx.recv(WAIT).await.expect("a SUBSCRIBE");
    assert_eq!(first.method().map(|m| m.as_str()), Some("SUBSCRIBE"));
    assert_eq!(first.request_uri_user().as_deref(), Some("1001"));
    assert_eq!(first.event().unwrap().unwrap().package, "dialog");
    assert_eq!(first.header("Accept"), Some("application/dialog-info+xml"));
    assert_eq!(first.expires(), Ok(Some(600)));
    // Unanswered, it is retransmitted (Timer E) unchanged.
    let again = pbx
        .recv(Duration::from_secs(2))
        .await
        .expect("a retransmission");
    assert_eq!(again, first);

    let answer = |request: &ringside::protocol::sip::SipMessage, status: u16, expires: &str| {
        request
            .response(status)
            .to_tag("pbx-tag")
            .header("Expires", expires)
            .header("Contact", &format!("<sip:1001@{pbx_addr}>"))
            .build()
            .unwrap()
            .to_bytes()
    };
    pbx.send_bytes(&answer(&first, 200, "2")).await;
    // Refreshed at 80% of the 2 s granted, in the same dialog.
    let started = Instant::now();
    let refresh = pbx.recv(WAIT).await.expect("a refresh");
    assert!(
        started.elapsed() >= Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refresh.call_id(), first.call_id());
    assert_eq!(refresh.cseq().unwrap().number, 2);
    assert_eq!(refresh.to_header().unwrap().tag(), Some("pbx-tag"));
    // The PBX lost the subscription: a new one starts at once.
    pbx.send_bytes(&answer(&refresh, 481, "0")).await;
    let fresh = pbx.recv(WAIT).await.expect("a new SUBSCRIBE");
    assert_ne!(fresh.call_id(), first.call_id());
    assert_eq!(fresh.to_header().unwrap().tag(), None);
    pbx.send_bytes(&answer(&fresh, 200, "600")).await;

    // Its NOTIFYs, in the subscription's dialog, come to ringside's Contact and pop.
    let contact = fresh.contacts().unwrap()[0].uri.to_string();
    assert!(contact.ends_with(&app.sip_addr().to_string()), "{contact}");
    let in_dialog = |line: &str| match line.strip_prefix("Call-ID: ") {
        Some(_) => format!("Call-ID: {}", fresh.call_id().unwrap()),
        None => line.to_owned(),
    };
    let notify = request(
        "NOTIFY",
        pbx_addr,
        app.sip_addr(),
        "UDP",
        &[
            "Event: dialog",
            "Subscription-State: active;expires=600",
            "Content-Type: application/dialog-info+xml",
        ],
        &dialog_info(0, "early"),
    )
    .split("\r\n")
    .map(in_dialog)
    .collect::<Vec<_>>()
    .join("\r\n");
    pbx.send(&notify).await;
    let answered = pbx.recv(WAIT).await.expect("an answer to the NOTIFY");
    assert_eq!(answered.status_code(), Some(200));
    assert_eq!(
        console.next_of("screen_pop").await["call_id"],
        "leg-42@pbx.test"
    );
    app.stop().await;
}
