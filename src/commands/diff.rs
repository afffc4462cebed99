//! `forgekeep diff`: an archive against the live files.
//!
//! The question on a bad day is "what changed since the last good backup?": a key that
//! is gone, a key that is different (every token signed with the old one is dead), a
//! permission someone loosened. The archive is read and validated in full first (a
//! damaged archive is never compared), then each entry is compared with where a restore
//! would put it (same `--root`/`--relocate`, same owner mapping), so "no differences"
//! means "a restore would change nothing".

use super::Reader;
use crate::archive::manifest::{Entry, Kind, Manifest, Role};
use crate::archive::reader::Visitor;
use crate::archive::sums::{sha256_hex, HashingReader, Sha256Sum};
use crate::cli::{DiffArgs, RestoreArgs};
use crate::error::{Error, ExitCode, Result};
use crate::profile::signing::{app_ini_consequence, consequence, is_app_ini};
use crate::report::Out;
use crate::restore::live::{self, database};
use crate::restore::plan::{Destinations, Target};
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Change {
    Missing,
    Changed,
    Drift,
    Extra,
    /// The live file or folder cannot be read by this user: not compared.
    Unreadable,
}

#[derive(Debug, Serialize)]
struct Difference {
    change: Change,
    path: String,
    /// Where the archive recorded it, when --root/--relocate moved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded: Option<String>,
    detail: String,
    /// What breaks because of it (signing keys, host keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    consequence: Option<&'static str>,
}

pub fn run(args: &DiffArgs, config: &crate::config::Config, out: &Out) -> Result<ExitCode> {
    let reader = Reader::new(&args.keys, &args.trust, &args.limits, config)?;
    // The destinations a restore would use: same rules, same owner mapping.
    let as_restore = RestoreArgs {
        archive: args.archive.clone(),
        keys: args.keys.clone(),
        trust: args.trust.clone(),
        config: args.config.clone(),
        allow_untrusted: false,
        sign_key: None,
        root: args.root.clone(),
        relocate: args.relocate.clone(),
        only: Vec::new(),
        to: None,
        dry_run: true,
        force: false,
        undo_dir: None,
        numeric_ids: false,
        map_user: Vec::new(),
        map_group: Vec::new(),
        limits: args.limits.clone(),
    };
    let mut dests = Destinations::from_args(&as_restore)?;
    let mut captured = Capture::default();
    let (read, name) = reader.read(&args.archive, &mut captured, None)?;
    let m = &read.manifest;
    out.say(format!("{name}: {}", read.authenticity.describe()));
    let targets = dests.targets(m, &mut Vec::new())?;

    let mut diffs = Vec::new();
    let archived: BTreeSet<PathBuf> = targets.iter().map(|t| t.dest.clone()).collect();
    let excluded = crate::collect::build_excludes(&m.exclude)?;
    for t in &targets {
        let e = &m.entries[t.index];
        let held = Archived {
            digest: read.digests[t.index].as_ref(),
            app_ini: captured.texts.get(&t.index).map(String::as_str),
            database: captured.databases.get(&t.index),
        };
        compare(m, e, t, &held, &mut diffs)?;
        // Only a real folder is listed (not a link put in its place: `compare` reported
        // that, and its target is not what was archived).
        let is_dir = std::fs::symlink_metadata(&t.dest).is_ok_and(|m| m.is_dir());
        if e.kind == Kind::Dir && e.role == Role::Content && is_dir {
            extras(t, &e.path, &archived, &excluded, &mut diffs);
        }
    }

    let archive_arg = args.archive.display().to_string();
    // The advice is a command to run as printed: with the trust file that vouched for
    // this archive, so the restore needs no consent either.
    let trust_arg = match &read.authenticity {
        crate::signature::Authenticity::Signed {
            vouched: Some(v), ..
        } => format!(
            " --trust {}",
            crate::report::shell_quote(&v.file.display().to_string())
        ),
        _ => String::new(),
    };
    for d in &diffs {
        out.say(format!(
            "{:<8} {}{}: {}",
            format!("{:?}", d.change).to_lowercase(),
            d.path,
            d.recorded
                .as_ref()
                .map(|r| format!(" (recorded as {r})"))
                .unwrap_or_default(),
            d.detail
        ));
        if let Some(c) = d.consequence {
            let only = d.recorded.as_deref().unwrap_or(&d.path);
            out.say(format!(
                "         {c}; restore it with: forgekeep restore {archive_arg} -i KEY{trust_arg} --only '{only}' --force"
            ));
        }
    }
    let count = |c: Change| diffs.iter().filter(|d| d.change == c).count();
    out.say(format!(
        "{name} ({} from {}): {} missing, {} changed, {} with owner/mode drift, {} extra, {} not readable",
        m.created,
        m.host,
        count(Change::Missing),
        count(Change::Changed),
        count(Change::Drift),
        count(Change::Extra),
        count(Change::Unreadable)
    ));
    out.report(&json!({
        "command": "diff",
        "archive": name,
        "created": m.created,
        "host": m.host,
        "signature": read.authenticity.to_json(),
        "differences": diffs,
        "counts": {
            "missing": count(Change::Missing),
            "changed": count(Change::Changed),
            "drift": count(Change::Drift),
            "extra": count(Change::Extra),
            "unreadable": count(Change::Unreadable),
        },
        "ok": diffs.is_empty(),
    }));
    Ok(if diffs.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Warnings
    })
}

/// Largest app.ini whose secrets are compared by value (they are a few KiB).
const APP_INI_MAX: u64 = 1 << 20;

/// What `diff` keeps of the archived content beyond its digests, while it streams past:
///
/// * the text of the forges' app.ini files: a changed app.ini is usually an edited
///   setting, but a changed `JWT_SECRET` or `SECRET_KEY` inside it is dead tokens or
///   unreadable 2FA, and only the values tell (docs/FORGES.md §1.3). Held in memory,
///   never printed;
/// * for each SQLite database, the digest of what it holds (its bookkeeping masked,
///   `restore::live::database`), so that a database nobody wrote since its backup is
///   not "changed".
#[derive(Default)]
struct Capture {
    app_inis: BTreeSet<usize>,
    texts: BTreeMap<usize, String>,
    databases: BTreeMap<usize, Sha256Sum>,
}

impl Visitor for Capture {
    fn manifest(&mut self, m: &std::sync::Arc<Manifest>) -> Result<()> {
        for (i, e) in m.entries.iter().enumerate() {
            let what = m.sources.get(e.source).and_then(|s| s.what.as_deref());
            if e.kind == Kind::File && e.size <= APP_INI_MAX && is_app_ini(what) {
                self.app_inis.insert(i);
            }
        }
        Ok(())
    }

    fn entry(&mut self, index: usize, entry: &Entry, data: &mut dyn Read) -> Result<()> {
        let unreadable = |e: std::io::Error| {
            Error::integrity(format!(
                "cannot read {} from the archive: {}",
                entry.path,
                crate::error::plain_io(&e)
            ))
        };
        if self.app_inis.contains(&index) {
            let mut buf = Vec::new();
            data.take(APP_INI_MAX)
                .read_to_end(&mut buf)
                .map_err(unreadable)?;
            self.texts
                .insert(index, String::from_utf8_lossy(&buf).into_owned());
        } else if entry.kind == Kind::File {
            let mut head = Vec::new();
            (&mut *data)
                .take(database::MAGIC.len() as u64)
                .read_to_end(&mut head)
                .map_err(unreadable)?;
            if head == database::MAGIC {
                let mut r = HashingReader::new(database::Masked::new(head.chain(data)));
                std::io::copy(&mut r, &mut std::io::sink()).map_err(unreadable)?;
                self.databases.insert(index, r.finish());
            }
        }
        Ok(())
    }
}

/// What an app.ini's change breaks, from its archived and live secrets.
fn app_ini_change(archived: Option<&str>, live: &Path) -> Option<&'static str> {
    let archived = archived?;
    let mut text = String::new();
    // Only a regular file, opened without following a link or blocking on a FIFO.
    live::open_regular(live)
        .ok()??
        .take(APP_INI_MAX)
        .read_to_string(&mut text)
        .ok()?;
    app_ini_consequence(archived, &text)
}

/// What the archive holds for one entry.
struct Archived<'a> {
    digest: Option<&'a Sha256Sum>,
    /// The text of an app.ini.
    app_ini: Option<&'a str>,
    /// The digest of an SQLite database without its bookkeeping.
    database: Option<&'a Sha256Sum>,
}

fn compare(
    m: &Manifest,
    e: &Entry,
    t: &Target,
    archived: &Archived,
    diffs: &mut Vec<Difference>,
) -> Result<()> {
    let path = t.dest.display().to_string();
    let recorded = (path != e.path).then(|| e.path.clone());
    let what = m.sources.get(e.source).and_then(|s| s.what.as_deref());
    let key_consequence = consequence(&e.path, what);
    let mut push = |change: Change, detail: String, consequence: Option<&'static str>| {
        diffs.push(Difference {
            change,
            path: path.clone(),
            recorded: recorded.clone(),
            detail,
            consequence,
        })
    };
    let live = match std::fs::symlink_metadata(&t.dest) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            push(
                Change::Missing,
                format!("{} in the archive, not on disk", e.kind.as_str()),
                key_consequence.map(|_| {
                    "this key is gone: the forge makes a new one at its next start, and everything that trusted the old one breaks"
                }),
            );
            return Ok(());
        }
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            push(
                Change::Unreadable,
                "cannot be examined (a folder above it is closed to this user): not compared"
                    .into(),
                None,
            );
            return Ok(());
        }
        Err(err) => return Err(Error::io("cannot examine", &t.dest, &err)),
    };
    let live_kind = if live.file_type().is_symlink() {
        Some(Kind::Symlink)
    } else if live.is_dir() {
        Some(Kind::Dir)
    } else if live.is_file() {
        Some(Kind::File)
    } else {
        None
    };
    if live_kind != Some(e.kind) {
        push(
            Change::Changed,
            format!(
                "a {} in the archive, {} on disk",
                e.kind.as_str(),
                live_kind.map(|k| k.as_str()).unwrap_or("something else")
            ),
            key_consequence,
        );
        return Ok(());
    }
    match e.kind {
        Kind::File => {
            let verdict = match archived.database {
                Some(d) => database_verdict(d, &t.dest, e.size),
                None => file_verdict(archived.digest, &t.dest, e.size, live.size()),
            };
            match verdict {
                Verdict::Same => {}
                Verdict::Unknown(detail) => {
                    push(Change::Unreadable, detail, None);
                    return Ok(());
                }
                Verdict::Differs(detail) => {
                    let why = key_consequence.or_else(|| app_ini_change(archived.app_ini, &t.dest));
                    push(Change::Changed, detail, why);
                    return Ok(());
                }
            }
        }
        Kind::Symlink => {
            let target = std::fs::read_link(&t.dest)
                .map_err(|err| Error::io("cannot read link", &t.dest, &err))?;
            if Some(target.as_os_str()) != e.target.as_deref().map(std::ffi::OsStr::new) {
                push(
                    Change::Changed,
                    format!(
                        "points to {} (the archive has {})",
                        target.display(),
                        e.target.as_deref().unwrap_or("")
                    ),
                    None,
                );
                return Ok(());
            }
        }
        Kind::Dir => {}
    }
    // A folder above a source is never changed by a restore when it exists: its owner
    // and mode are the host's business.
    if e.role == Role::Ancestor || e.kind == Kind::Symlink {
        return Ok(());
    }
    let mut drift = Vec::new();
    if live.mode() & 0o7777 != t.mode {
        drift.push(format!(
            "mode {:04o} (the archive has {:04o})",
            live.mode() & 0o7777,
            t.mode
        ));
    }
    if live.uid() != t.uid || live.gid() != t.gid {
        drift.push(format!(
            "owner {}:{} (a restore sets {}:{})",
            live.uid(),
            live.gid(),
            t.uid,
            t.gid
        ));
    }
    if !drift.is_empty() {
        push(Change::Drift, drift.join(", "), None);
    }
    Ok(())
}

/// How a live file compares with the archived one.
enum Verdict {
    Same,
    Differs(String),
    /// This user cannot tell: not "changed" (a signing key's "tokens are dead" would be a
    /// false alarm).
    Unknown(String),
}

/// A file compared byte for byte (through its digest).
fn file_verdict(digest: Option<&Sha256Sum>, live: &Path, size: u64, live_size: u64) -> Verdict {
    let by_size = || {
        Verdict::Differs(format!(
            "content differs ({size} bytes in the archive, {live_size} on disk)"
        ))
    };
    if live_size != size {
        return by_size();
    }
    match live::digest(live, size) {
        Ok(d) if d.is_some() && d.as_ref() == digest => Verdict::Same,
        Ok(_) => match digest {
            Some(d) => Verdict::Differs(format!(
                "content differs (sha256 {}… in the archive)",
                &sha256_hex(d)[..12]
            )),
            None => by_size(),
        },
        Err(err) => Verdict::Unknown(format!(
            "cannot be read ({}): not compared; run diff as a user that can read it",
            crate::error::plain_io(&err)
        )),
    }
}

/// An SQLite database compared by what SQLite reads from it, without the header fields
/// SQLite rewrites (`restore::live::database`).
fn database_verdict(archived: &Sha256Sum, live: &Path, size: u64) -> Verdict {
    match live::database_digest(live, size) {
        Ok(Some(d)) if &d == archived => Verdict::Same,
        Ok(_) => Verdict::Differs(
            "content differs (an SQLite database, compared as SQLite reads it, \
             without the header fields SQLite rewrites)"
                .into(),
        ),
        Err(e) => Verdict::Unknown(format!("not compared: {e}")),
    }
}

/// Files in an archived folder that the archive does not have (but not those the
/// backup's `--exclude` left out, nor forgekeep's own temp files).
fn extras(
    t: &Target,
    recorded_dir: &str,
    archived: &BTreeSet<PathBuf>,
    excluded: &globset::GlobSet,
    diffs: &mut Vec<Difference>,
) {
    let rd = match std::fs::read_dir(&t.dest) {
        Ok(rd) => rd,
        // Gone or not a folder: `compare` has said so already.
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return
        }
        Err(err) => {
            diffs.push(Difference {
                change: Change::Unreadable,
                path: t.dest.display().to_string(),
                recorded: None,
                detail: format!(
                    "cannot be listed ({}): files added to it are not seen",
                    crate::error::plain_io(&err)
                ),
                consequence: None,
            });
            return;
        }
    };
    let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    for p in names {
        let name = p.file_name().unwrap_or_default();
        let is_temp = name
            .as_encoded_bytes()
            .starts_with(crate::fsx::TEMP_PREFIX.as_bytes());
        let recorded = Path::new(recorded_dir).join(name);
        let is_excluded =
            !excluded.is_empty() && (excluded.is_match(&recorded) || excluded.is_match(name));
        if !archived.contains(&p) && !is_temp && !is_excluded {
            diffs.push(Difference {
                change: Change::Extra,
                path: p.display().to_string(),
                recorded: None,
                detail: "on disk, not in the archive".into(),
                consequence: None,
            });
        }
    }
}
