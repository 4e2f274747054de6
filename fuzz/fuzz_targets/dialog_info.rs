//! RFC 4235 dialog-info bodies (NOTIFY): any bytes through the bounded XML scanner.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ringside_fuzz::protocol::sip::parse_dialog_info(data);
});
