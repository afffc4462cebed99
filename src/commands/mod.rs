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
pub mod status;
pub mod verify;

use crate::cli::IdentityArgs;
use crate::error::{Error, Result};
use crate::keys::{read_passphrase, Keyring};
use crate::store::{Download, Location, S3Options};
use std::io::{BufRead, Read};
use std::path::Path;

/// The archive to read: a file, an object (`s3://BUCKET/KEY`, through `s3` and the AWS
/// environment), or stdin for `-`. Returns the reader, the name to print, and the size
/// when it is known (for a progress bar).
pub fn open_archive(
    path: &Path,
    s3: &S3Options,
) -> Result<(Box<dyn Read + Send>, String, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), "stdin".into(), None));
    }
    let (input, name, size): (Box<dyn Read + Send>, String, u64) = match Location::parse(path)? {
        Location::S3(url) => {
            let download = Download::open(crate::store::connect(s3)?, &url)?;
            let size = download.size();
            (Box::new(download), url.to_string(), size)
        }
        Location::Local(path) => {
            let f = std::fs::File::open(&path)
                .map_err(|e| Error::io("cannot open archive", &path, &e))?;
            let meta = f
                .metadata()
                .map_err(|e| Error::io("cannot open archive", &path, &e))?;
            if meta.is_dir() {
                return Err(Error::usage(format!(
                    "{} is a folder, not an archive",
                    path.display()
                ))
                .hint("name one forgekeep-*.tar.zst.age file"));
            }
            (Box::new(f), path.display().to_string(), meta.len())
        }
    };
    let mut input = std::io::BufReader::new(input);
    let head = input
        .fill_buf()
        .map_err(|e| Error::io("cannot read archive", Path::new(&name), &e))?;
    if is_a_key(head) {
        return Err(Error::usage(format!(
            "{name} is a key, not an archive: are the archive and the key swapped?"
        ))
        .hint("name the archive first and the key after -i: forgekeep restore ARCHIVE -i KEY"));
    }
    Ok((Box::new(input), name, Some(size)))
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
    s3: &S3Options,
    out: &crate::report::Out,
    what: &str,
) -> Result<(Box<dyn Read + Send>, String, Option<indicatif::ProgressBar>)> {
    let (input, name, size) = open_archive(path, s3)?;
    match out.progress(size.unwrap_or(0), what) {
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

/// What the reading commands take from the configuration file: its `[trust]` table, and
/// `[s3]` for archives named by `s3://` URLs. A file that cannot be read or parsed is
/// reported and ignored, never fatal: ignoring it can only make these commands stricter
/// (no trust file, no standing consent; the AWS environment alone for the store), and
/// a broken configuration must never stand between an operator and a restore.
pub fn reader_config(path: Option<&Path>) -> crate::config::Config {
    match crate::config::Config::load(path) {
        Ok(c) => crate::config::Config {
            trust: c.trust,
            s3: c.s3,
            ..Default::default()
        },
        Err(e) => {
            log::warn!(
                "ignoring the configuration file (only its [trust] and [s3] tables are read here): {e}"
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
