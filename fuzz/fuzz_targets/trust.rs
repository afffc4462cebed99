//! The trust-file reader (OpenSSH allowed_signers format: principals, options, key) and
//! its matching (principal patterns, namespaces, validity) on arbitrary text, judged for
//! an arbitrary key and host taken from the input itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(file) = forgekeep::signature::trust::TrustFile::parse(&text, std::path::Path::new("fuzz"))
    else {
        return;
    };
    // The first line's key (if any parsed) against a host made of the input's first word.
    let host = text.split_whitespace().next().unwrap_or("");
    for line in text.lines() {
        if let Some(key) = line.split_whitespace().find_map(|w| {
            forgekeep::signature::Signer::from_openssh(&format!("ssh-ed25519 {w}")).ok()
        }) {
            let _ = file.judge(&key, host, 0);
            let _ = file.judge(&key, host, i64::MAX);
        }
    }
    let _ = forgekeep::signature::trust::match_pattern_list(host, &text);
});
