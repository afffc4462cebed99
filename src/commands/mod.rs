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

use crate::archive::limits::Limits;
use crate::archive::reader::{read_archive, ReadArchive, Visitor};
use crate::cli::{IdentityArgs, ReadLimitArgs, TrustArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{read_passphrase, Keyring};
use crate::report::Out;
use crate::signature::trust::TrustFile;
use crate::store::{Download, Location, S3Options, S3Store};
use std::io::{BufRead, Read};
use std::path::Path;

/// What every command that reads an archive (verify, list, diff, restore) holds before
/// the archive's first byte: the keys that open it, the trust file that says who may
/// have made it, the ceilings an archive from anyone with the public key is held to, and
/// where `s3://` archives are. Made once per run by [`Reader::new`], so no reading
/// command can forget one of them.
pub struct Reader {
    pub keys: Keyring,
    trust: Option<TrustFile>,
    limits: Limits,
    s3: S3Options,
    /// The store, once connected (by [`Reader::reuse_store`] or the first `s3://` read):
    /// a connection is a runtime, a client and a credential lookup, made once per run.
    store: std::sync::OnceLock<std::sync::Arc<S3Store>>,
}

impl Reader {
    /// The keys first, so that a passphrase is asked before anything else happens; then
    /// the trust file of `--trust` (else `[trust] signers`).
    pub fn new(
        keys: &IdentityArgs,
        trust: &TrustArgs,
        limits: &ReadLimitArgs,
        config: &Config,
    ) -> Result<Reader> {
        Ok(Reader {
            keys: keyring(keys)?,
            trust: trust_file(trust, &config.trust)?,
            limits: limits.limits(),
            s3: config.s3.clone(),
            store: std::sync::OnceLock::new(),
        })
    }

    /// Reads `s3://` archives through `store`, already connected (by `verify --latest`,
    /// which listed the prefix with it), instead of connecting again.
    pub fn reuse_store(&self, store: std::sync::Arc<S3Store>) {
        let _ = self.store.set(store);
    }

    /// The store of `s3://` archives, connected on first use.
    fn store(&self) -> Result<std::sync::Arc<S3Store>> {
        if let Some(store) = self.store.get() {
            return Ok(store.clone());
        }
        let store = crate::store::connect(&self.s3)?;
        Ok(self.store.get_or_init(|| store).clone())
    }

    /// Opens `archive` (a file, `s3://BUCKET/KEY`, or `-`) and reads it whole through
    /// `visitor`, every check of [`read_archive`] applied. With `progress` (the output
    /// and the verb to show), a bar over the archive's bytes when someone watches on a
    /// terminal. Returns what was read and the archive's name as printed.
    pub fn read(
        &self,
        archive: &Path,
        visitor: &mut dyn Visitor,
        progress: Option<(&Out, &str)>,
    ) -> Result<(ReadArchive, String)> {
        let (input, name, size) = open_archive(archive, || self.store())?;
        let bar = progress.and_then(|(out, what)| out.progress(size.unwrap_or(0), what));
        let input: Box<dyn Read + Send> = match &bar {
            Some(bar) => Box::new(bar.wrap_read(input)),
            None => input,
        };
        let read = read_archive(
            input,
            &name,
            &self.keys,
            &self.limits,
            self.trust.as_ref(),
            visitor,
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok((read?, name))
    }
}

/// The archive to read: a file, an object (`s3://BUCKET/KEY`, through `s3` and the AWS
/// environment), or stdin for `-`. Returns the reader, the name to print, and the size
/// when it is known (for a progress bar).
fn open_archive(
    path: &Path,
    store: impl FnOnce() -> Result<std::sync::Arc<S3Store>>,
) -> Result<(Box<dyn Read + Send>, String, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), "stdin".into(), None));
    }
    let (input, name, size): (Box<dyn Read + Send>, String, u64) = match Location::parse(path)? {
        Location::S3(url) => {
            let download = Download::open(store()?, &url)?;
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

/// Identities from -i, or a passphrase.
fn keyring(args: &IdentityArgs) -> Result<Keyring> {
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
fn trust_file(args: &TrustArgs, config: &crate::config::TrustConfig) -> Result<Option<TrustFile>> {
    config
        .merged(args)
        .signers
        .as_deref()
        .map(TrustFile::load)
        .transpose()
}
