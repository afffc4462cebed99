//! `forgekeep keygen`: a new key, written `0600` and `O_EXCL` (an existing key is never
//! overwritten: losing the only key to a typo would make every archive unreadable, or
//! every new one untrusted).
//!
//! Two kinds: an age X25519 identity (the default), whose recipient the backup host
//! gets and whose private half decrypts archives; and with `--sign`, an Ed25519 signing
//! key that stays on the backup host and signs its archives, whose public half goes into
//! the trust files of whoever restores them.

use crate::cli::KeygenArgs;
use crate::error::{Error, ExitCode, Result};
use crate::keys::generate_identity;
use crate::report::Out;
use age::secrecy::ExposeSecret;
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn run(args: &KeygenArgs, out: &Out) -> Result<ExitCode> {
    if args.sign {
        return signing_key(args.output.as_deref(), out);
    }
    let (identity, recipient) = generate_identity();
    match &args.output {
        Some(path) => {
            let mut f = create_new_private(path)?;
            f.write_all(identity.expose_secret().as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io("cannot write", path, &e))?;
            if out.json {
                out.report(
                    &json!({"command": "keygen", "identity_file": path, "recipient": recipient}),
                );
            } else {
                println!("{recipient}");
                if !out.quiet {
                    // True for both kinds of key: a recovery key (kept off the host) and
                    // the verification key contrib/ keeps on it for verify --latest.
                    eprintln!("forgekeep: wrote the identity (private key) to {}: it opens every archive encrypted to the recipient above, so only who must open archives may read it; backups need only the recipient", path.display());
                }
            }
        }
        None => {
            if out.json {
                return Err(Error::usage(
                    "--json without -o would print the private key in the report",
                )
                .hint("pass -o FILE"));
            }
            print!("{}", identity.expose_secret());
            eprintln!("Public key: {recipient}");
        }
    }
    Ok(ExitCode::Success)
}

/// A file for a new private key: `0600` from its creation, never an existing file.
fn create_new_private(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::runtime(format!(
                    "{} already exists; it is never overwritten",
                    path.display()
                ))
                .hint("choose another file name (an existing key may protect existing archives)")
            } else {
                Error::io("cannot create", path, &e)
            }
        })
}

/// `keygen --sign`: the key, then the line a trust file needs, naming this host (the
/// host its archives will record) as the principal.
fn signing_key(output: Option<&Path>, out: &Out) -> Result<ExitCode> {
    let host = super::backup::host_name();
    let (key_text, signer) = crate::signature::generate(&format!("forgekeep@{host}"))?;
    let line = crate::signature::trust::line(&host, &signer);
    match output {
        Some(path) => {
            let mut f = create_new_private(path)?;
            f.write_all(key_text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::io("cannot write", path, &e))?;
            if out.json {
                out.report(&json!({
                    "command": "keygen",
                    "signing_key_file": path,
                    "public_key": signer.openssh(),
                    "fingerprint": signer.fingerprint(),
                    "trust_line": line,
                }));
            } else {
                println!("{line}");
                if !out.quiet {
                    eprintln!(
                        "forgekeep: wrote the signing key {} to {}; it stays on this host (backup --sign {}); \
                         put the line above into the trust file of every host that restores its archives (--trust FILE)",
                        signer.fingerprint(),
                        path.display(),
                        path.display()
                    );
                }
            }
        }
        None => {
            if out.json {
                return Err(Error::usage(
                    "--json without -o would print the private key in the report",
                )
                .hint("pass -o FILE"));
            }
            print!("{}", key_text.as_str());
            eprintln!("Trust line: {line}");
        }
    }
    Ok(ExitCode::Success)
}
