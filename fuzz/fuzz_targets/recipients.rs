//! The recipients-file reader (`-R FILE`: age recipients, authorized_keys lines).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = forgekeep::keys::parse_recipients(data, "fuzz");
});
