//! The configured job, checked as a whole before the first night it runs.
//!
//! `forgekeep backup` with no flags runs the job of the configuration file: its sources,
//! its `[backup]` table, its `[retention]`. `check` audits the sources; this module
//! checks the rest of what that run needs, so a recipients file that is missing, holds a
//! private key or can be changed by others, or an output folder that does not exist or
//! is open to others, is reported by `check` at setup time instead of by the timer at
//! night. Each problem is a `job-problem` finding on the file or folder concerned.
//!
//! The checks run in the order a backup needs them: recipients, then the signing key
//! (`sign-key`), then the output folder (or, for an `s3://` output, the store: it
//! answers, the prefix can be listed, the credentials file is not open to others); each
//! is one function of [`check`].

use crate::cli::BackupOptions;
use crate::config::Config;
use crate::findings::{Code, Finding, Severity};
use crate::store::{credentials_file_findings, Location, ObjectUrl, S3Store, Settings};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One part of the job, for the listing `check` prints: what it is and where.
#[derive(Debug, Clone)]
pub struct Part {
    pub what: String,
    pub path: String,
}

/// What [`check`] found: the parts it looked at and the problems.
#[derive(Debug, Default)]
pub struct Checked {
    pub parts: Vec<Part>,
    pub findings: Vec<Finding>,
}

impl Checked {
    fn problem(&mut self, severity: Severity, path: &Path, message: String, fix: String) {
        self.findings.push(Finding {
            code: Code::JobProblem,
            severity,
            path: path.display().to_string(),
            message,
            fix,
        });
    }

    fn part(&mut self, what: String, path: &Path) {
        self.parts.push(Part {
            what,
            path: path.display().to_string(),
        });
    }
}

/// The `[backup]` table of `config` (read from a file) as the night's run will use it.
/// A file that sets neither an output nor recipients only lists sources for runs that
/// name their own: that is said as a note, not an error.
pub fn check(config: &Config) -> Checked {
    let mut c = Checked::default();
    let Some(file) = config.path.as_deref() else {
        return c;
    };
    let b = &config.backup;
    if b.output.is_none() && b.recipients.is_empty() && b.recipients_files.is_empty() {
        c.problem(
            Severity::Info,
            file,
            "the configuration sets no [backup] output or recipients: `forgekeep backup` alone cannot run, only runs that give -o and -r/-R".into(),
            "set output and recipients-files in [backup] for an unattended job (see examples/config.toml)".into(),
        );
        return c;
    }
    recipients(&mut c, b, file);
    signing_key(&mut c, b);
    match b.output.as_deref().map(Location::parse) {
        Some(Ok(Location::S3(url))) => object_output(&mut c, url, config, file),
        _ => output(&mut c, b, file),
    }
    c
}

/// Every recipient parses, every recipients file exists, holds recipients and cannot be
/// changed by others (who could add a key of theirs and read every archive after).
fn recipients(c: &mut Checked, b: &BackupOptions, file: &Path) {
    if b.recipients.is_empty() && b.recipients_files.is_empty() {
        return c.problem(
            Severity::Error,
            file,
            "[backup] names no recipients: `forgekeep backup` has no key to encrypt to".into(),
            "add recipients-files = [\"/etc/forgekeep/recipients\"] to [backup]".into(),
        );
    }
    if !b.recipients.is_empty() {
        c.part(
            format!("{} recipient(s) in [backup]", b.recipients.len()),
            file,
        );
    }
    for (i, r) in b.recipients.iter().enumerate() {
        if let Err(e) = crate::keys::parse_recipient(r, &format!("[backup] recipients #{}", i + 1))
        {
            c.problem(
                Severity::Error,
                file,
                e.what,
                e.hint
                    .unwrap_or_else(|| "fix the recipient in [backup]".into()),
            );
        }
    }
    for f in &b.recipients_files {
        match crate::keys::read_recipients_file(f) {
            Ok(list) => {
                c.part(format!("recipients file ({} recipient(s))", list.len()), f);
                open_to_others(
                    c,
                    f,
                    "can be changed by others, who could add a key of theirs and read every archive made after",
                );
            }
            Err(e) => {
                c.part("recipients file".into(), f);
                let fix = if !f.exists() {
                    format!(
                        "write the public key there: echo 'age1…' > {} (forgekeep keygen prints it), or correct recipients-files in [backup]",
                        f.display()
                    )
                } else {
                    e.hint.unwrap_or_else(|| {
                        "put one age1…, ssh-ed25519 or ssh-rsa public key per line".into()
                    })
                };
                c.problem(Severity::Error, f, e.what, fix);
            }
        }
    }
}

/// The signing key loads (an encrypted one is only looked at: `check` asks for no
/// passphrase) and is kept as a secret is.
fn signing_key(c: &mut Checked, b: &BackupOptions) {
    let Some(k) = &b.sign_key else {
        return;
    };
    c.part("signing key".into(), k);
    if let Err(e) = crate::signature::SigningKey::inspect(k) {
        return c.problem(
            Severity::Error,
            k,
            e.what,
            e.hint
                .unwrap_or_else(|| "make one with forgekeep keygen --sign -o FILE".into()),
        );
    }
    for f in crate::signature::audit(k) {
        c.problem(f.severity, k, f.message, f.fix);
    }
}

/// The output folder exists, this user may write into it, and only its owner may change
/// what is in it (others could delete archives, or plant names and a lock file). A
/// fixed file name works once: the next run finds it and stops.
fn output(c: &mut Checked, b: &BackupOptions, file: &Path) {
    let Some(o) = &b.output else {
        c.problem(
            Severity::Error,
            file,
            "[backup] names no output: `forgekeep backup` has nowhere to write".into(),
            "add output = \"/var/backups/forgekeep/\" to [backup]".into(),
        );
        return;
    };
    if o.as_os_str() == "-" {
        c.part("output (stdout)".into(), o);
        return;
    }
    let folder_named = o.is_dir() || o.as_os_str().to_string_lossy().ends_with('/');
    let dir: PathBuf = if folder_named {
        o.clone()
    } else {
        c.part("output file".into(), o);
        let severity = if o.exists() {
            Severity::Error
        } else {
            Severity::Warning
        };
        c.problem(
            severity,
            o,
            "[backup] output names one file: a run finds it there and stops, since an existing file is never replaced".into(),
            format!(
                "name a folder with a trailing slash (output = \"{}/\"): each run then gets its own dated archive",
                o.parent().unwrap_or(Path::new(".")).display()
            ),
        );
        match o.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    c.part("output folder".into(), &dir);
    let meta = match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            return c.problem(
                Severity::Error,
                &dir,
                "is not a folder".into(),
                "point [backup] output at a folder, with a trailing slash".into(),
            )
        }
        Err(e) => {
            return c.problem(
                Severity::Error,
                &dir,
                format!(
                    "the output folder cannot be used: {}",
                    crate::error::plain_io(&e)
                ),
                format!("create it: install -d -m 0700 {}", dir.display()),
            )
        }
    };
    use nix::unistd::{access, AccessFlags};
    if let Err(e) = access(&dir, AccessFlags::W_OK | AccessFlags::X_OK) {
        c.problem(
            Severity::Error,
            &dir,
            format!("this user cannot write archives into it ({})", e.desc()),
            "run the job as its owner (root for the contrib/ units), or make it writable (a read-only file system needs ReadWritePaths= in the unit)".into(),
        );
    }
    open_to_others(
        c,
        &dir,
        "can be changed by others, who could delete or replace archives",
    );
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        c.problem(
            Severity::Warning,
            &dir,
            format!(
                "belongs to uid {}, who can delete or replace the archives",
                meta.uid()
            ),
            format!("chown {me} {}", dir.display()),
        );
    }
}

/// An `s3://` output: the settings resolve, the store answers these credentials and
/// lists the prefix, and the credentials file is kept as a secret is (the finding
/// `credentials-readable`). Nothing is written: a backup-only credential could not
/// delete a test object again.
fn object_output(c: &mut Checked, url: ObjectUrl, config: &Config, file: &Path) {
    let folder = url.folder();
    let shown = PathBuf::from(folder.to_string());
    if url.is_folder() {
        c.part("output prefix".into(), &shown);
    } else {
        let object = PathBuf::from(url.to_string());
        c.part("output object".into(), &object);
        c.problem(
            Severity::Warning,
            &object,
            "[backup] output names one object: a run finds it there and stops, since an existing archive is never replaced".into(),
            format!("name a prefix with a trailing slash (output = \"{folder}\"): each run then gets its own dated archive"),
        );
    }
    let settings = match Settings::resolve(&config.s3) {
        Ok(s) => s,
        Err(e) => {
            let fix = e.hint.clone().unwrap_or_default();
            return c.problem(Severity::Error, file, e.what, fix);
        }
    };
    if let Some(creds) = settings.credentials_path().filter(|p| p.exists()) {
        c.part("S3 credentials file".into(), &creds);
    }
    c.findings.extend(credentials_file_findings(&settings));
    if let Some(lock) = settings.lock {
        c.part(
            format!(
                "Object Lock for each archive: {} day(s), {}",
                lock.days,
                lock.mode.as_str()
            ),
            &shown,
        );
    }
    if let Err(e) = S3Store::connect(&settings).and_then(|store| store.probe(&folder)) {
        let fix = e
            .hint
            .clone()
            .unwrap_or_else(|| "check [s3] and the AWS_* environment of the job".into());
        c.problem(Severity::Error, &shown, e.what, fix);
    }
}

/// A warning when group or others may write `path` (a sticky folder is fine for
/// deleting, not for a recipients file or an archive folder: they may still add names).
fn open_to_others(c: &mut Checked, path: &Path, consequence: &str) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.mode() & 0o7777;
    if let Some(who) = crate::findings::who_may_write(mode) {
        c.problem(
            Severity::Warning,
            path,
            format!("is writable by {who} (mode {mode:04o}): it {consequence}"),
            format!("chmod go-w {}", path.display()),
        );
    }
}
