//! `forgekeep verify`: the whole read path of a restore (decrypt, decompress, validate
//! every member and checksum) without writing anything. Run it on a timer to know that
//! backups open before the day they are needed.
//!
//! `--latest DIR` verifies the newest archive of a folder and says how old it is, so a
//! second, weekly timer proves the backups open AND that they are still being made;
//! `--max-age` turns a stale newest archive into a failure monitoring sees. It takes no
//! lock: archives appear by atomic rename, prune never deletes the newest one, and an
//! archive already open stays readable even if unlinked.

use super::{keyring, open_archive_watched, trust_file};
use crate::archive::manifest::Kind;
use crate::archive::reader::{read_archive, NoVisitor};
use crate::cli::VerifyArgs;
use crate::config::TrustConfig;
use crate::error::{Error, ExitCode, Result};
use crate::report::{human_bytes, Out};
use serde_json::json;
use std::path::PathBuf;

pub fn run(args: &VerifyArgs, trust: &TrustConfig, out: &Out) -> Result<ExitCode> {
    let max_age = args.max_age.as_deref().map(parse_age).transpose()?;
    let archive: PathBuf = match (&args.archive, &args.latest) {
        (Some(a), _) => a.clone(),
        (None, Some(dir)) => newest(dir, args.host.as_deref())?,
        (None, None) => {
            return Err(Error::usage("no archive given").hint("name an archive, or --latest DIR"))
        }
    };
    let keys = keyring(&args.keys)?;
    let trust = trust_file(&args.trust, trust)?;
    let (input, name, bar) = open_archive_watched(&archive, out, "verify")?;
    let read = read_archive(
        input,
        &name,
        &keys,
        &args.limits.limits(),
        trust.as_ref(),
        &mut NoVisitor,
    );
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let read = read?;
    let m = &read.manifest;
    let files = m.entries.iter().filter(|e| e.kind == Kind::File).count();
    out.say(format!(
        "{name}: OK: {} entries ({files} files, {}) from {} at {}, every checksum matches",
        m.entries.len(),
        human_bytes(read.content_bytes),
        m.host,
        m.created
    ));
    out.say(format!("{name}: {}", read.authenticity.describe()));
    let mut report = json!({
        "command": "verify",
        "archive": name,
        "host": m.host,
        "created": m.created,
        "signature": read.authenticity.to_json(),
        "entries": m.entries.len(),
        "files": files,
        "content_bytes": read.content_bytes,
    });
    if args.latest.is_none() {
        out.report(&report);
        return Ok(ExitCode::Success);
    }
    let created: jiff::Timestamp = m.created.parse().map_err(|_| {
        Error::integrity(format!(
            "{name}: the manifest's creation time {:?} is not a time",
            m.created
        ))
    })?;
    let age = jiff::Timestamp::now().as_second() - created.as_second();
    out.say(format!("newest archive is {} old", human_age(age)));
    report["age_seconds"] = json!(age);
    if let Some(max) = max_age {
        report["max_age_seconds"] = json!(max);
        if age > max {
            let e = Error::runtime(format!(
                "the newest archive {name} is {} old, more than --max-age {}",
                human_age(age),
                args.max_age.as_deref().unwrap_or("")
            ))
            .hint("backups have stopped: check the backup timer or cron job (systemctl status forgekeep-backup.timer, journalctl -u forgekeep-backup)");
            // One JSON object: the verification report, marked failed (monitoring reads
            // the age from it), not a second error object.
            report["stale"] = json!(true);
            return Ok(out.report_failed(report, &e));
        }
    }
    out.report(&report);
    Ok(ExitCode::Success)
}

/// The newest `forgekeep-*.tar.zst.age` of `dir` (of `host` only, if given), by the
/// time in its name. In a folder several hosts share, `--host` keeps a fresh archive of
/// another host from hiding that this one stopped.
fn newest(dir: &std::path::Path, host: Option<&str>) -> Result<PathBuf> {
    let archives = crate::retention::list(dir)?;
    archives
        .into_iter()
        .find(|a| host.is_none_or(|h| a.host == h))
        .map(|a| a.path)
        .ok_or_else(|| {
            Error::runtime(format!(
                "no forgekeep archive{} in {}",
                host.map(|h| format!(" of host {h}")).unwrap_or_default(),
                dir.display()
            ))
            .hint(
                "archives are named forgekeep-<host>-<YYYYmmddTHHMMSSZ>.tar.zst.age; check the backup job's output folder",
            )
        })
}

/// `90m`, `26h`, `2d`, `1w`, or plain seconds.
fn parse_age(s: &str) -> Result<i64> {
    let bad = || {
        Error::usage(format!("--max-age {s:?} is not a duration"))
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
fn human_age(secs: i64) -> String {
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
}
