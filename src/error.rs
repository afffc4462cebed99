//! Errors that reach the user.
//!
//! Every failure forgekeep reports is one line that says what failed, paired with a
//! recommendation of what to do next (the rage habit), and carries the exit code the
//! design contract documents. Messages are built from paths, counts and error kinds only:
//! no constructor here ever receives secret bytes, so no secret can reach a message.

use std::fmt;
use std::io;
use std::path::Path;

/// The documented exit codes (DESIGN.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Runtime = 1,
    Usage = 2,
    Warnings = 3,
    Integrity = 4,
    NoIdentity = 5,
    Locked = 6,
    Conflict = 7,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A failure with its exit code, a one-line description and a recommendation.
#[derive(Debug, Clone)]
pub struct Error {
    pub exit: ExitCode,
    pub what: String,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(exit: ExitCode, what: impl Into<String>) -> Self {
        Error {
            exit,
            what: what.into(),
            hint: None,
        }
    }

    /// Adds (or replaces) the recommendation printed after the message.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn runtime(what: impl Into<String>) -> Self {
        Error::new(ExitCode::Runtime, what)
    }

    pub fn usage(what: impl Into<String>) -> Self {
        Error::new(ExitCode::Usage, what)
    }

    /// Corrupt, truncated, tampered or unsafe archive content.
    pub fn integrity(what: impl Into<String>) -> Self {
        Error::new(ExitCode::Integrity, what).hint(
            "the archive is damaged or was not made by forgekeep from these sources; \
             use another copy of the backup",
        )
    }

    /// An I/O failure on a named path. A writer or reader that is itself forgekeep's
    /// (an upload to or download from an object store) passes its own error through
    /// `io::Error`: that one is returned as it is, since it already names the object and
    /// the remedy, which "cannot write the archive s3://…: …" would bury.
    pub fn io(action: &str, path: &Path, err: &io::Error) -> Self {
        if let Some(inner) = err.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return inner.clone();
        }
        let e = Error::runtime(format!("{action} {}: {}", path.display(), plain_io(err)));
        match err.kind() {
            io::ErrorKind::PermissionDenied => {
                let missing = crate::owners::missing_root_capabilities();
                if missing.is_empty() {
                    e.hint("run as a user that may access it (often root or the forge's user)")
                } else {
                    // Root already: what it lacks are capabilities, not a user.
                    e.hint(format!(
                        "this root process lacks {} (a container or a service unit without them): grant them, or run where root has them",
                        missing.join(" and ")
                    ))
                }
            }
            io::ErrorKind::NotFound => e.hint("check the path"),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                e.hint("free some space on that file system and run again")
            }
            _ => e,
        }
    }

    /// Same as [`Error::io`] for nix's errno values.
    pub fn errno(action: &str, path: &Path, err: nix::errno::Errno) -> Self {
        Error::io(action, path, &io::Error::from(err))
    }
}

/// `io::Error`'s Display, without the "(os error N)" suffix that helps nobody.
pub fn plain_io(err: &io::Error) -> String {
    let s = err.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
