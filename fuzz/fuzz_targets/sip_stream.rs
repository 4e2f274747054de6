//! SIP over a stream: any bytes, split at a fuzzer-chosen point, through the framer, the parser,
//! validation and response building. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringside_fuzz::protocol::sip::{
    FramerLimits, StreamFrame, StreamFramer, parse, validate_request,
};

fuzz_target!(|data: &[u8]| {
    let split = data
        .first()
        .map(|b| *b as usize % (data.len().max(1)))
        .unwrap_or(0);
    let mut framer = StreamFramer::new(FramerLimits::default());
    for chunk in [&data[..split], &data[split..]] {
        if framer.push(chunk).is_err() {
            return;
        }
        loop {
            match framer.next_frame() {
                Ok(Some(StreamFrame::Message(bytes))) => {
                    if let Ok(msg) = parse(&bytes) {
                        if validate_request(&msg).is_ok() && msg.is_request() {
                            let _ = msg.response(400).build();
                        }
                        let _ = msg.to_bytes();
                    }
                }
                Ok(Some(StreamFrame::Ping)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
