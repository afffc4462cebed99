//! `forgekeep keygen`: a new age X25519 identity. The file is created `0600` and `O_EXCL`
//! (an existing key is never overwritten: losing the only key to a typo would make every
//! archive unreadable). The recipient (public key) is what the backup host gets.

use crate::cli::KeygenArgs;
use crate::error::{Error, ExitCode, Result};
use crate::keys::generate_identity;
use crate::report::Out;
use age::secrecy::ExposeSecret;
use serde_json::json;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

pub fn run(args: &KeygenArgs, out: &Out) -> Result<ExitCode> {
    let (identity, recipient) = generate_identity();
    match &args.output {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Error::runtime(format!("{} already exists; it is never overwritten", path.display()))
                            .hint("choose another file name (an existing key may protect existing archives)")
                    } else {
                        Error::io("cannot create", path, &e)
                    }
                })?;
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
