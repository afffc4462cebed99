//! The env-file reader (Woodpecker's and Drone's env files, compose `env_file:`) on
//! arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = forgekeep::profile::envfile::parse(&text);
});
