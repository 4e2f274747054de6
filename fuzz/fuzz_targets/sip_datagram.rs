//! SIP over UDP: one datagram through framing, parsing, the header accessors the ingress reads,
//! validation and a response with received/rport. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringside_fuzz::protocol::sip::{
    Datagram, FramerLimits, frame_datagram, parse, validate_request,
};

fuzz_target!(|data: &[u8]| {
    let Ok(Datagram::Message(bytes)) = frame_datagram(data, &FramerLimits::default()) else {
        return;
    };
    let Ok(msg) = parse(&bytes) else { return };
    let _ = msg.call_id();
    let _ = msg.cseq();
    let _ = msg.vias();
    let _ = msg.from_header();
    let _ = msg.to_header();
    let _ = msg.p_asserted_identities();
    let _ = msg.remote_party_ids();
    let _ = msg.privacy();
    let _ = msg.diversions();
    let _ = msg.history_info();
    let _ = msg.reasons();
    let _ = msg.request_uri_user();
    let _ = msg.content_type();
    let _ = msg.to_rsip();
    if validate_request(&msg).is_ok() && msg.is_request() {
        let source = "127.0.0.1:5060".parse().expect("a literal address");
        let _ = msg.response(180).to_tag("t1").received_from(source).build();
    }
});
