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
}

impl Code {
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

/// The worst severity among `findings`, if any.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}
