//! Output: the one place that decides what goes to stdout and what to stderr.
//!
//! With `--json` the machine-readable report is the only thing on stdout (one object)
//! and human text moves to stderr, so `forgekeep ... --json | jq` always parses. With
//! `--quiet` only problems are printed (cron mails only when something is wrong).

use crate::cli::GlobalArgs;
use crate::findings::{Finding, Severity};
use std::io::Write;

#[derive(Debug, Clone, Copy, Default)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
    /// stdout carries data (an archive written to `-o -`): human text goes to stderr.
    pub stdout_is_data: bool,
}

impl Out {
    pub fn new(g: &GlobalArgs) -> Out {
        Out {
            json: g.json,
            quiet: g.quiet,
            stdout_is_data: false,
        }
    }

    /// The command's main human output (a listing, a plan, a summary): stdout, or stderr
    /// under `--json`; silent under `--quiet`.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.json || self.stdout_is_data {
            eprintln!("{}", line.as_ref());
        } else {
            let mut o = std::io::stdout().lock();
            // A closed stdout (`| head`) is not an error worth dying on mid-restore.
            let _ = writeln!(o, "{}", line.as_ref());
        }
    }

    /// A warning: always printed, on stderr.
    pub fn warn(&self, line: impl AsRef<str>) {
        eprintln!("forgekeep: warning: {}", line.as_ref());
    }

    /// Findings: warnings and errors always; info unless quiet.
    pub fn findings(&self, findings: &[Finding]) {
        for f in findings {
            if f.severity >= Severity::Warning || !self.quiet {
                eprintln!("forgekeep: {f}");
            }
        }
    }

    /// The JSON report (only with `--json`).
    pub fn report(&self, value: &serde_json::Value) {
        if self.json {
            let mut o = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut o, value);
            let _ = writeln!(o);
        }
    }
}

/// `1234567` → `1.2 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `0o600` → `-rw-------` (with the type letter).
pub fn mode_string(kind: char, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}
