//! The app.ini reader (Gitea, Forgejo, Gogs) on arbitrary text: it must never panic,
//! whatever a hand-edited file holds.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ini = forgekeep::profile::ini::Ini::parse(&text);
    for (section, key, _) in ini.entries() {
        let _ = ini.get(section, key);
        let _ = ini.bool_or(section, key, false);
    }
});
