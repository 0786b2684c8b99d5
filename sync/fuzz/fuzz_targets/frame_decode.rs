//! Fuzzes the frame decoder: any bytes give a message or a typed error, never a panic, and
//! never more memory than the maximum frame size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reasonbank_sync::frame;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = frame::decode(data, MAX);
    if let Ok((msg, _)) = frame::decode_body(data, MAX) {
        // Whatever decodes re-encodes (if it still fits) and decodes to the same message.
        if let Ok(f) = frame::encode(&msg, 3, MAX) {
            assert_eq!(frame::decode(&f.bytes, MAX).expect("round trip").0, msg);
        }
    }
});
