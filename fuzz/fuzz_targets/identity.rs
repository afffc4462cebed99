//! The identity-file reader (`-i FILE`: age identities, OpenSSH private keys,
//! passphrase-encrypted identity files). Nothing here asks for a passphrase: encrypted
//! keys are only parsed, never unlocked.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = forgekeep::keys::Keyring::from_identity_bytes(data.to_vec(), "fuzz") {
        let _ = keys.identities().count();
    }
});
