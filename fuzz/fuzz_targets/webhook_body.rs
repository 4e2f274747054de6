//! Webhook call-event bodies: the first byte picks the Content-Type, the rest is the body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let content_type = match selector % 4 {
        0 => "application/json",
        1 => "application/x-www-form-urlencoded",
        2 => "",
        _ => "text/plain",
    };
    let _ = ringside_fuzz::ingress::webhook_body::parse(content_type, body);
});
