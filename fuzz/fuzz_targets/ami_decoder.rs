//! The AMI stream decoder over any bytes, split at a fuzzer-chosen point, with the accessors the
//! client reads. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringside_fuzz::protocol::ami::{AmiLimits, Decoder, Frame};

fuzz_target!(|data: &[u8]| {
    let split = data
        .first()
        .map(|b| *b as usize % data.len().max(1))
        .unwrap_or(0);
    let mut d = Decoder::new(AmiLimits::default());
    for chunk in [&data[..split], &data[split..]] {
        d.feed(chunk);
        while let Ok(Some(frame)) = d.next_frame() {
            if let Frame::Message(m) = frame {
                let _ = (m.event(), m.response(), m.action_id(), m.get("Linkedid"));
                let _ = m.chan_variables();
            }
        }
    }
    let _ = d.finish();
});
