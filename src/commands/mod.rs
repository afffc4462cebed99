//! One file per subcommand; each turns parsed arguments into calls of the library and
//! returns the exit code. Shared plumbing (opening an archive, loading keys) lives here.

pub mod backup;
pub mod check;
pub mod detect;
pub mod diff;
pub mod generate;
pub mod keygen;
pub mod list;
pub mod prune;
pub mod restore;
pub mod verify;

use crate::cli::IdentityArgs;
use crate::error::{Error, Result};
use crate::keys::{read_passphrase, Keyring};
use std::io::{BufRead, Read};
use std::path::Path;

/// The archive to read: a file, or stdin for `-`.
pub fn open_archive(path: &Path) -> Result<(Box<dyn Read + Send>, String)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), "stdin".into()));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io("cannot open archive", path, &e))?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(
            Error::usage(format!("{} is a folder, not an archive", path.display()))
                .hint("name one forgekeep-*.tar.zst.age file"),
        );
    }
    let mut input = std::io::BufReader::new(f);
    let head = input
        .fill_buf()
        .map_err(|e| Error::io("cannot read archive", path, &e))?;
    if is_a_key(head) {
        return Err(Error::usage(format!(
            "{} is a key, not an archive: are the archive and the key swapped?",
            path.display()
        ))
        .hint("name the archive first and the key after -i: forgekeep restore ARCHIVE -i KEY"));
    }
    Ok((Box::new(input), path.display().to_string()))
}

/// Does a file start like a key (an age identity or recipient, an SSH or PEM key) rather
/// than like an age file? Then it was given where the archive belongs.
fn is_a_key(head: &[u8]) -> bool {
    [
        &b"AGE-SECRET-KEY-"[..],
        b"# created: ",
        b"# public key: age1",
        b"age1",
        b"-----BEGIN OPENSSH PRIVATE KEY-----",
        b"-----BEGIN PRIVATE KEY-----",
        b"-----BEGIN RSA PRIVATE KEY-----",
        b"ssh-ed25519 ",
        b"ssh-rsa ",
    ]
    .iter()
    .any(|sig| head.starts_with(sig))
}

/// [`open_archive`] with a progress bar over the archive's bytes, when someone watches
/// on a terminal and the archive is big (see [`Out::progress`]). Clear the bar after.
pub fn open_archive_watched(
    path: &Path,
    out: &crate::report::Out,
    what: &str,
) -> Result<(Box<dyn Read + Send>, String, Option<indicatif::ProgressBar>)> {
    let (input, name) = open_archive(path)?;
    let size = if path.as_os_str() == "-" {
        0
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    };
    match out.progress(size, what) {
        Some(bar) => Ok((Box::new(bar.wrap_read(input)), name, Some(bar))),
        None => Ok((input, name, None)),
    }
}

/// Identities from -i, or a passphrase.
pub fn keyring(args: &IdentityArgs) -> Result<Keyring> {
    if args.passphrase {
        return Ok(Keyring::from_passphrase(read_passphrase(
            "Passphrase of the archive",
            false,
        )?));
    }
    Keyring::from_files(&args.identities)
}

/// What the reading commands take from the configuration file: its `[trust]` table.
/// A file that cannot be read or parsed is reported and ignored, never fatal: ignoring
/// it can only make these commands stricter (no trust file, no standing consent), and
/// a broken configuration must never stand between an operator and a restore.
pub fn trust_config(path: Option<&Path>) -> crate::config::TrustConfig {
    match crate::config::Config::load(path) {
        Ok(c) => c.trust,
        Err(e) => {
            log::warn!(
                "ignoring the configuration file (only its [trust] table is read here): {e}"
            );
            Default::default()
        }
    }
}

/// The trust file of `--trust`, else of the configuration's `[trust] signers`.
pub fn trust_file(
    args: &crate::cli::TrustArgs,
    config: &crate::config::TrustConfig,
) -> Result<Option<crate::signature::trust::TrustFile>> {
    config
        .merged(args)
        .signers
        .as_deref()
        .map(crate::signature::trust::TrustFile::load)
        .transpose()
}
