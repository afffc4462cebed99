//! Output: the one place that decides what goes to stdout and what to stderr.
//!
//! With `--json` the machine-readable report is the only thing on stdout (one object)
//! and human text moves to stderr, so `forgekeep ... --json | jq` always parses. With
//! `--quiet` only problems are printed (cron mails only when something is wrong).

use crate::cli::GlobalArgs;
use crate::findings::{Finding, Severity};
use std::io::Write;

/// `eprintln!` without its panic: a closed or broken stderr (`2>&1 | head`, a
/// journal that went away) must not kill a restore between staging and rollback.
macro_rules! to_stderr {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
    /// stdout carries data (an archive written to `-o -`): human text goes to stderr.
    pub stdout_is_data: bool,
    /// `-v`: print every finding instead of the first few of each kind.
    pub verbose: bool,
}

/// Findings of one code printed before the rest are summed up in one line (a tree of
/// a thousand group-readable files should not bury the one world-readable key).
const FINDINGS_PER_CODE: usize = 10;

impl Out {
    pub fn new(g: &GlobalArgs) -> Out {
        Out {
            json: g.json,
            quiet: g.quiet,
            stdout_is_data: false,
            verbose: g.verbose > 0,
        }
    }

    /// The command's main human output (a listing, a plan, a summary): stdout, or stderr
    /// under `--json`; silent under `--quiet`.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        let line = printable(line.as_ref());
        if self.json || self.stdout_is_data {
            to_stderr!("{line}");
        } else {
            let mut o = std::io::stdout().lock();
            // A closed stdout (`| head`) is not an error worth dying on mid-restore.
            let _ = writeln!(o, "{line}");
        }
    }

    /// Something the user must see even with `--quiet` (where replaced secrets went):
    /// always printed, on stderr.
    pub fn notice(&self, line: impl AsRef<str>) {
        to_stderr!("forgekeep: {}", printable(line.as_ref()));
    }

    /// A warning: always printed, on stderr.
    pub fn warn(&self, line: impl AsRef<str>) {
        to_stderr!("forgekeep: warning: {}", printable(line.as_ref()));
    }

    /// Findings: warnings and errors always; info unless quiet. Past the first few of
    /// one code, a count (all of them with `-v`, in `--json` and in the manifest).
    pub fn findings(&self, findings: &[Finding]) {
        let mut shown: std::collections::HashMap<&str, usize> = Default::default();
        let mut hidden: std::collections::BTreeMap<&str, usize> = Default::default();
        for f in findings {
            if f.severity < Severity::Warning && self.quiet {
                continue;
            }
            let n = shown.entry(f.code.as_str()).or_default();
            if *n < FINDINGS_PER_CODE || self.verbose {
                *n += 1;
                to_stderr!("forgekeep: {}", printable(&f.to_string()));
            } else {
                *hidden.entry(f.code.as_str()).or_default() += 1;
            }
        }
        for (code, n) in hidden {
            to_stderr!(
                "forgekeep: ... and {n} more [{code}] finding(s) (-v or --json lists them all)"
            );
        }
    }

    /// The JSON report (only with `--json`): one object, `"ok": true` added (errors
    /// print `"ok": false`, see [`error`]).
    pub fn report(&self, value: &serde_json::Value) {
        if self.json {
            let mut value = value.clone();
            if let Some(obj) = value.as_object_mut() {
                obj.entry("ok").or_insert(serde_json::Value::Bool(true));
            }
            let mut o = std::io::stdout().lock();
            let _ = serde_json::to_writer(&mut o, &value);
            let _ = writeln!(o);
        }
    }
}

/// `90m`, `26h`, `2d`, `1w`, or plain seconds.
pub fn parse_age(s: &str) -> crate::error::Result<i64> {
    let bad = || {
        crate::error::Error::usage(format!("--max-age {s:?} is not a duration"))
            .hint("use a number with s, m, h, d or w, e.g. --max-age 26h")
    };
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// `2d 3h 5m 9s`, to the second, zero parts left out: an age compared with --max-age
/// must never round down to look equal to it ("1m old, more than --max-age 1m").
pub fn human_age(secs: i64) -> String {
    if secs < 0 {
        return "from the future (check the clock)".into();
    }
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".into()
    } else {
        text.join(" ")
    }
}

/// Below this, a run is over before a bar would be worth drawing.
pub const PROGRESS_MIN_BYTES: u64 = 32 << 20;

impl Out {
    /// A progress bar on stderr for `total` bytes, only when a person is watching: stderr
    /// is a terminal, the run is big enough to take a while, and neither `--quiet` nor
    /// `--json` asked for silence. Cron and systemd never see one.
    pub fn progress(&self, total: u64, what: &str) -> Option<indicatif::ProgressBar> {
        use std::io::IsTerminal;
        if self.quiet
            || self.json
            || total < PROGRESS_MIN_BYTES
            || !std::io::stderr().is_terminal()
            || std::env::var_os("FORGEKEEP_NO_PROGRESS").is_some()
        {
            return None;
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr_with_hz(4),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        Some(bar)
    }
}

impl Out {
    /// A command that fails after building its report (a refused dry run, a stale newest
    /// archive): the report itself, marked failed with the error's exit code, text and
    /// hint, is the ONE JSON object; the error line goes to stderr. Returns the exit code.
    pub fn report_failed(
        &self,
        mut report: serde_json::Value,
        e: &crate::error::Error,
    ) -> crate::error::ExitCode {
        report["ok"] = serde_json::json!(false);
        report["exit_code"] = serde_json::json!(e.exit.code());
        report["error"] = serde_json::json!(e.what);
        report["hint"] = serde_json::json!(e.hint);
        self.report(&report);
        error(e, false);
        e.exit
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

/// `0o600` → `-rw-------`, `0o1777` → `drwxrwxrwt` (as `ls -l` shows them).
pub fn mode_string(kind: char, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind);
    // (shift, special bit, letter when executable, letter when not)
    for (shift, special, on, off) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => on,
            (false, true) => off,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// The one-line error report: `forgekeep: error: WHAT (hint: ...)` on stderr, and with
/// `--json` also the one JSON object on stdout that scripts parse.
pub fn error(e: &crate::error::Error, json: bool) {
    to_stderr!("forgekeep: error: {}", printable(&e.to_string()));
    if json {
        error_json(e);
    }
}

/// The JSON error object alone, on stdout (for errors whose text is already on stderr).
pub fn error_json(e: &crate::error::Error) {
    let v = serde_json::json!({
        "ok": false,
        "exit_code": e.exit.code(),
        "error": e.what,
        "hint": e.hint,
    });
    let mut o = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut o, &v);
    let _ = writeln!(o);
}

/// A path (or any archive-supplied text) made safe for a terminal line: every character
/// of the Unicode categories Cc (controls: newlines, escape sequences), Cf (format:
/// bidirectional overrides such as U+202E, zero-width spaces and joiners, the BOM), Zl
/// and Zp (U+2028, U+2029) is shown escaped (`\u{202e}`), so a crafted name can neither
/// split a line of the plan, nor send escape sequences to the terminal, nor show a name
/// other than the one it is (`evil\u{202e}fdp.key` displayed as `evilyek.pdf`).
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Characters a terminal does not show as themselves.
fn hidden(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    // ASCII fast path: only the C0 controls and DEL.
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    matches!(
        get_general_category(c),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
    )
}

/// `word` as one shell word: as is when it is plainly safe, else in single quotes.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:@,+".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("26h").unwrap(), 93_600);
        assert_eq!(parse_age("2d").unwrap(), 172_800);
        assert_eq!(parse_age("90").unwrap(), 90);
        assert!(parse_age("2 days").is_err());
        assert!(parse_age("h").is_err());
        assert_eq!(human_age(90_061), "1d 1h 1m 1s");
        assert_eq!(human_age(86_430), "1d 30s");
        assert_eq!(human_age(90), "1m 30s");
        assert_eq!(human_age(60), "1m");
        assert_eq!(human_age(0), "0s");
    }

    #[test]
    fn modes_render_like_ls() {
        assert_eq!(mode_string('-', 0o600), "-rw-------");
        assert_eq!(mode_string('d', 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string('-', 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string('-', 0o2640), "-rw-r-S---");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(printable("plain é"), "plain é");
    }

    #[test]
    fn format_and_separator_characters_are_escaped() {
        // Bidi override, zero-width space and joiner, BOM, soft hyphen, Arabic letter
        // mark, line and paragraph separators, NEL (a C1 control).
        for c in [
            '\u{202e}', '\u{200b}', '\u{200d}', '\u{feff}', '\u{ad}', '\u{61c}', '\u{2028}',
            '\u{2029}', '\u{85}', '\u{2066}',
        ] {
            let shown = printable(&format!("a{c}b")).into_owned();
            assert!(!shown.contains(c), "{:?} shown raw", c);
            assert_eq!(shown, format!("a{}b", c.escape_default()));
        }
        // Letters, marks and spaces of other scripts stay as they are.
        assert_eq!(printable("Grüße 日本 ñ"), "Grüße 日本 ñ");
    }
}
