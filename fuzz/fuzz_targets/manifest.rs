//! The manifest parser and validator on arbitrary bytes (as `forgekeep/manifest.json`
//! arrives from an untrusted archive), under the default ceilings and small ones.
#![no_main]
use forgekeep::archive::limits::Limits;
use forgekeep::archive::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limits in [
        Limits::default(),
        Limits {
            max_entries: 3,
            max_manifest_bytes: 1 << 20,
            max_content_bytes: 1 << 20,
        },
    ] {
        if let Ok(m) = Manifest::parse(data, &limits) {
            let _ = forgekeep::archive::validate::manifest(&m, &limits);
        }
    }
});
