//! The ESL stream decoder and event parsing (JSON and plain) over any bytes. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringside_fuzz::protocol::esl::{Decoder, EslLimits};

fuzz_target!(|data: &[u8]| {
    let split = data
        .first()
        .map(|b| *b as usize % data.len().max(1))
        .unwrap_or(0);
    let mut d = Decoder::new(EslLimits::default());
    for chunk in [&data[..split], &data[split..]] {
        d.feed(chunk);
        while let Ok(Some(frame)) = d.next_frame() {
            let _ = frame.content_type();
            if let Ok(Some(event)) = frame.event() {
                let _ = (event.name(), event.get("Unique-ID"));
            }
        }
    }
    let _ = d.finish();
});
