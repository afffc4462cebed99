//! `forgekeep verify`: the whole read path of a restore (decrypt, decompress, validate
//! every member and checksum) without writing anything. Run it on a timer to know that
//! backups open before the day they are needed.
//!
//! `--latest DIR` (or `s3://BUCKET/PREFIX/`) verifies the newest archive of a folder and
//! says how old it is, so a second, weekly timer proves the backups open AND that they
//! are still being made; `--max-age` turns a stale newest archive into a failure
//! monitoring sees. It takes no lock: archives appear by atomic rename (an object only
//! when complete), prune never deletes the newest one, and an archive already open stays
//! readable even if unlinked (a download is pinned to the object it opened).

use super::Reader;
use crate::archive::manifest::Kind;
use crate::archive::reader::NoVisitor;
use crate::cli::VerifyArgs;
use crate::config::Config;
use crate::error::{Error, ExitCode, Result};
use crate::report::{human_age, human_bytes, parse_age, Out};
use crate::store::Folder;
use serde_json::json;
use std::path::PathBuf;

pub fn run(args: &VerifyArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    let max_age = args.max_age.as_deref().map(parse_age).transpose()?;
    let (archive, folder): (PathBuf, Option<Folder>) = match (&args.archive, &args.latest) {
        (Some(a), _) => (a.clone(), None),
        (None, Some(dir)) => {
            let folder = Folder::open(dir, &config.s3)?;
            (newest(&folder, args.host.as_deref())?, Some(folder))
        }
        (None, None) => {
            return Err(Error::usage("no archive given").hint("name an archive, or --latest DIR"))
        }
    };
    let reader = Reader::new(&args.keys, &args.trust, &args.limits, config)?;
    if let Some(Folder::Prefix { store, .. }) = folder {
        reader.reuse_store(store);
    }
    let (read, name) = reader.read(&archive, &mut NoVisitor, Some((out, "verify")))?;
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

/// The newest `forgekeep-*.tar.zst.age` of `folder` (of `host` only, if given), by the
/// time in its name. In a folder several hosts share, `--host` keeps a fresh archive of
/// another host from hiding that this one stopped.
fn newest(folder: &Folder, host: Option<&str>) -> Result<PathBuf> {
    let archives = folder.archives()?;
    archives
        .into_iter()
        .find(|a| host.is_none_or(|h| a.host == h))
        .map(|a| a.path)
        .ok_or_else(|| {
            Error::runtime(format!(
                "no forgekeep archive{} in {folder}",
                host.map(|h| format!(" of host {h}")).unwrap_or_default(),
            ))
            .hint(
                "archives are named forgekeep-<host>-<YYYYmmddTHHMMSSZ>.tar.zst.age; check the backup job's output folder",
            )
        })
}
