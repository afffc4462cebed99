//! Findings: what collection noticed about the secrets it read.
//!
//! A forge that loses a key regenerates it silently, and a key readable by the wrong user
//! is as bad as a lost one. So collection does not only copy files: it reports each
//! problem as a finding with a stable code (scripts and monitoring match on it), a
//! severity (which decides the exit code), the path, and a one-line fix. Findings are
//! stored in the manifest so a restore can show what was wrong at backup time.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not change the exit code.
    Info,
    /// The archive is written but the run exits 3; `--strict` makes it a failure.
    Warning,
    /// The backup cannot be trusted to be complete: no archive, exit 1.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// The stable finding codes. Their string form (kebab-case) is part of the JSON
/// output and the manifest; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A secret file that users other than its owner and group may read.
    WorldReadable,
    /// A secret file that members of its group may read.
    GroupReadable,
    /// A secret file that someone other than its owner may modify.
    Writable,
    /// The directory holding a secret lets others replace it.
    ParentWritable,
    /// The secret's directory belongs to another (non-root) user, who can replace it.
    OwnerMismatch,
    /// A symbolic link that points outside its source: the target is not archived.
    SymlinkEscapes,
    /// A source given on the command line is itself a symbolic link.
    SourceIsSymlink,
    /// A FIFO, socket or device: not archived.
    SpecialSkipped,
    /// A name that is not valid UTF-8 cannot be recorded in the manifest.
    NameNotUtf8,
    /// The file or directory could not be read.
    Unreadable,
    /// The file changed while it was being read: its copy would be torn.
    ChangedWhileRead,
    /// A secret the forge's configuration names is not on this host.
    SecretMissing,
    /// A secret's permission bits are wider than the forge needs.
    ModeTooOpen,
    /// A secret is not owned by the user the forge runs as.
    OwnerUnexpected,
    /// The forge's configuration itself puts its secrets at risk.
    ConfigProblem,
    /// A secret lives in a container's layer or anonymous volume: lost on `compose down`.
    NotPersistent,
    /// A secret is on a volume whose host folder cannot be found.
    VolumeUnknown,
    /// The configured job cannot run as written (recipients, output folder).
    JobProblem,
    /// A folder on the way to a profile's item is a symlink that the forge's user or
    /// its container could have made: not followed, the item is not archived.
    UntrustedSymlink,
    /// The S3 credentials file may be read by users other than its owner.
    CredentialsReadable,
}

impl Code {
    /// Every code, in the order the manual lists them.
    pub const ALL: [Code; 20] = [
        Code::WorldReadable,
        Code::GroupReadable,
        Code::Writable,
        Code::ParentWritable,
        Code::OwnerMismatch,
        Code::SymlinkEscapes,
        Code::SourceIsSymlink,
        Code::SpecialSkipped,
        Code::NameNotUtf8,
        Code::Unreadable,
        Code::ChangedWhileRead,
        Code::SecretMissing,
        Code::ModeTooOpen,
        Code::OwnerUnexpected,
        Code::ConfigProblem,
        Code::NotPersistent,
        Code::VolumeUnknown,
        Code::JobProblem,
        Code::UntrustedSymlink,
        Code::CredentialsReadable,
    ];

    /// Its severity and meaning, as the manual's FINDINGS section (and the README's
    /// table, which a test compares) states them.
    pub fn manual(self) -> (&'static str, &'static str) {
        match self {
            Code::WorldReadable => ("warning", "a file holding a secret (key material, a file a profile names) readable by every user"),
            Code::GroupReadable => ("warning", "a file holding a secret readable by its group"),
            Code::Writable => ("warning", "a file writable by group or others"),
            Code::ParentWritable => ("warning", "a folder holding secrets is writable by group or others (sticky folders such as /tmp are fine)"),
            Code::OwnerMismatch => ("warning (info under a root-owned folder)", "the file and its folder have different owners; a non-root folder owner can replace the file"),
            Code::SymlinkEscapes => ("warning", "a link points outside its source; the target is not archived"),
            Code::SourceIsSymlink => ("warning", "a source named on the command line is a link; the link is archived"),
            Code::SpecialSkipped => ("warning", "a FIFO, socket or device was skipped"),
            Code::NameNotUtf8 => ("warning", "a name that cannot be recorded was skipped"),
            Code::Unreadable => ("error", "a file or folder cannot be read: no archive (exit 1)"),
            Code::ChangedWhileRead => ("error", "a file changed while it was read: no archive (exit 1)"),
            Code::SecretMissing => ("error (the configuration itself), warning (a key the forge regenerates, a file it names), info (extras)", "something the forge's configuration names is not there"),
            Code::ModeTooOpen => ("warning", "wider permissions than the forge needs (e.g. a JWT key not 0600)"),
            Code::OwnerUnexpected => ("warning", "not owned by the user the forge runs as (RUN_USER, uid 1000 in the images)"),
            Code::ConfigProblem => ("warning or info", "the forge's configuration puts its secrets at risk: an empty SECRET_KEY, an app.ini the forge cannot write back to, WOODPECKER_GRPC_SECRET unset, a database left out, ..."),
            Code::NotPersistent => ("error", "(compose) a secret in the container's layer or an anonymous volume: lost on docker compose down"),
            Code::VolumeUnknown => ("warning", "(compose) on a named volume whose host folder cannot be found (no docker to ask)"),
            Code::JobProblem => ("error (the run would fail), warning (open to others), info", "(check) the configured job's [backup] cannot run as written: a recipients file missing, unparsable or writable by others, an output folder missing, not writable or open to others"),
            Code::UntrustedSymlink => ("error", "a folder on the way to a profile's item is a symlink the forge's user or its container could have made (below a container's mount, or in a folder another user owns or others may write): never followed, the item is not archived"),
            Code::CredentialsReadable => ("warning", "(backup, check with an s3:// output) the S3 credentials file (AWS_SHARED_CREDENTIALS_FILE, [s3] credentials-file, ~/.aws/credentials) may be read by its group or others: the secret key is theirs too"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Code::WorldReadable => "world-readable",
            Code::GroupReadable => "group-readable",
            Code::Writable => "writable",
            Code::ParentWritable => "parent-writable",
            Code::OwnerMismatch => "owner-mismatch",
            Code::SymlinkEscapes => "symlink-escapes",
            Code::SourceIsSymlink => "source-is-symlink",
            Code::SpecialSkipped => "special-skipped",
            Code::NameNotUtf8 => "name-not-utf8",
            Code::Unreadable => "unreadable",
            Code::ChangedWhileRead => "changed-while-read",
            Code::SecretMissing => "secret-missing",
            Code::ModeTooOpen => "mode-too-open",
            Code::OwnerUnexpected => "owner-unexpected",
            Code::ConfigProblem => "config-problem",
            Code::NotPersistent => "not-persistent",
            Code::VolumeUnknown => "volume-unknown",
            Code::JobProblem => "job-problem",
            Code::UntrustedSymlink => "untrusted-symlink",
            Code::CredentialsReadable => "credentials-readable",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    pub path: String,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}] {}: {}; fix: {}",
            self.severity,
            self.code.as_str(),
            self.path,
            self.message,
            self.fix
        )
    }
}

/// Who besides the owner may write a file or folder of this mode, for messages:
/// "every user", "its group", or None.
pub fn who_may_write(mode: u32) -> Option<&'static str> {
    who(mode, 0o002, 0o020)
}

/// Who besides the owner may read a file of this mode (see [`who_may_write`]).
pub fn who_may_read(mode: u32) -> Option<&'static str> {
    who(mode, 0o004, 0o040)
}

fn who(mode: u32, others: u32, group: u32) -> Option<&'static str> {
    if mode & others != 0 {
        Some("every user")
    } else if mode & group != 0 {
        Some("its group")
    } else {
        None
    }
}

/// The worst severity among `findings`, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}
