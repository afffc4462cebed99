//! `forgekeep prune DIR|s3://BUCKET/PREFIX/ --keep-...`: delete the archives of a folder
//! that no rule keeps.
//!
//! A local folder is pruned under its run lock (a backup writing into the same folder
//! meanwhile would otherwise race with the listing): the archives are listed and planned
//! by [`crate::retention`], the plan is printed, and the archives to delete are unlinked
//! one by one, relative to the folder's descriptor and only if still a regular file, then
//! the folder is fsynced once. A prefix has no lock and needs none (see
//! [`crate::store::Folder`]): the same plan, and each archive deleted by the store unless
//! Object Lock keeps it, which is reported ("kept by object lock until …"), not an error.
//! Nothing but `forgekeep-<host>-<stamp>.tar.zst.age` archives is ever deleted; the newest
//! archive of each host always survives; no rule at all is a usage error, never "delete
//! everything".

use crate::cli::{KeepArgs, PruneArgs};
use crate::config::{merge_keep, Config};
use crate::error::{plain_io, Error, ExitCode, Result};
use crate::fsx::DirFd;
use crate::lock::Lock;
use crate::report::Out;
use crate::retention::{self, Decision};
use crate::store::{Deleted, Folder, ObjectUrl, S3Store};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use serde_json::json;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

pub fn run(args: &PruneArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    // Without DIR: the configuration's output folder (when it names a folder or prefix).
    let Some(dir) = args.dir.as_deref().or(config.configured_folder()) else {
        return Err(Error::usage("no archive folder given").hint(
            "name the folder of archives: forgekeep prune /var/backups/forgekeep --keep-daily 7 (or s3://BUCKET/PREFIX/, or set [backup] output in the configuration file)",
        ));
    };
    let keep = rules_for(args, config, dir)?;
    let folder = Folder::open(dir, &config.s3)?;
    let lock = match &folder {
        Folder::Local(dir) => Some(crate::lock::acquire(dir, "prune")?),
        Folder::Prefix { .. } => None,
    };
    let scope = Scope::of(&folder, lock.as_ref());
    let outcome = prune_dir(scope, &keep, args.dry_run, None, args.host.as_deref(), out)?;
    out.report(&outcome.to_json());
    Ok(ExitCode::Success)
}

/// Where a prune deletes: a local folder, only ever under its run lock (taking the held
/// [`Lock`] makes an unlocked prune of a folder impossible to write), or a prefix in a
/// bucket, which has no lock (see [`crate::store::Folder`] for why it needs none).
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    Locked(&'a Lock),
    Prefix {
        store: &'a Arc<S3Store>,
        url: &'a ObjectUrl,
    },
}

impl<'a> Scope<'a> {
    /// The scope of `folder`: a local one needs `lock` (on that folder).
    pub fn of(folder: &'a Folder, lock: Option<&'a Lock>) -> Scope<'a> {
        match (folder, lock) {
            (Folder::Prefix { store, url }, _) => Scope::Prefix { store, url },
            (Folder::Local(_), Some(lock)) => Scope::Locked(lock),
            (Folder::Local(dir), None) => panic!("{} pruned without its lock", dir.display()),
        }
    }

    fn folder(self) -> Folder {
        match self {
            Scope::Locked(lock) => Folder::Local(lock.dir().to_path_buf()),
            Scope::Prefix { store, url } => Folder::Prefix {
                store: store.clone(),
                url: url.clone(),
            },
        }
    }
}

/// The rules for `dir`: the `--keep-*` flags, else the configuration's `[retention]` when
/// `dir` is the configured job's own folder (the rules were written for its archives,
/// not for whatever folder a prune is pointed at), else none: a usage error.
fn rules_for(args: &PruneArgs, config: &Config, dir: &Path) -> Result<KeepArgs> {
    if args.keep != KeepArgs::default() || config.is_output_folder(dir) {
        let keep = merge_keep(&args.keep, &config.retention);
        check_rules(&keep)?;
        return Ok(keep);
    }
    check_rules(&args.keep).map_err(|e| {
        if retention::no_rule(&config.retention) {
            return e;
        }
        let folder = config
            .output_folder()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        e.hint(format!(
            "pass at least one --keep-* rule for {}; the configuration's [retention] applies only to its own output folder {folder}",
            dir.display()
        ))
    })?;
    Ok(args.keep.clone())
}

/// Usage error (exit 2) when no `--keep-*` rule keeps anything (all absent or 0).
pub fn check_rules(keep: &KeepArgs) -> Result<()> {
    if retention::no_rule(keep) {
        return Err(Error::usage(
            "no retention rule given (every --keep-* is absent or 0); refusing to delete all but the newest archive",
        )
        .hint("pass at least one of --keep-last/-hourly/-daily/-weekly/-monthly/-yearly N with N > 0"));
    }
    Ok(())
}

/// What a prune decided and did.
#[derive(Debug, Clone)]
pub struct PruneOutcome {
    /// The folder (a path or an `s3://` URL), as printed.
    pub folder: String,
    pub dry_run: bool,
    /// One per archive of the folder, newest first.
    pub decisions: Vec<Decision>,
    /// Names actually deleted (empty with `dry_run`).
    pub deleted: Vec<String>,
    /// Archives the rules would delete that Object Lock keeps, and until when.
    pub locked: Vec<(String, Deleted)>,
}

impl PruneOutcome {
    pub fn kept(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.keep)
    }

    pub fn to_delete(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.keep)
    }

    /// `{"command":"prune","dir","dry_run","kept":[{name,host,time,reasons}],
    /// "to_delete":[names],"deleted":[names],"locked":[{name,until,mode}]}`; `to_delete`
    /// is the plan, `deleted` what was really removed (the plan less what Object Lock
    /// keeps, unless `dry_run`).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "command": "prune",
            "dir": self.folder,
            "dry_run": self.dry_run,
            "kept": self.kept().map(|d| json!({
                "name": d.archive.name,
                "host": d.archive.host,
                "time": d.archive.time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "reasons": d.reasons,
            })).collect::<Vec<_>>(),
            "to_delete": self.to_delete().map(|d| &d.archive.name).collect::<Vec<_>>(),
            "deleted": self.deleted,
            "locked": self.locked.iter().map(|(name, why)| {
                let r = match why {
                    Deleted::Kept(r) => *r,
                    Deleted::Gone => None,
                };
                json!({
                    "name": name,
                    "until": r.map(|r| r.until.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                    "mode": r.map(|r| r.mode.as_str()),
                })
            }).collect::<Vec<_>>(),
        })
    }
}

/// Prunes the folder of `scope`, by `keep`: prints the plan (`out.say`), deletes unless
/// `dry_run`. Does not check for "no rule" ([`check_rules`]): with none, only the newest
/// survive. Prints no JSON report: the caller does ([`PruneOutcome::to_json`]).
/// `protect` names an archive that is kept whatever the rules say: the one `backup` has
/// just written (after a clock step backwards it may not look like the newest).
pub fn prune_dir(
    scope: Scope<'_>,
    keep: &KeepArgs,
    dry_run: bool,
    protect: Option<&str>,
    host: Option<&str>,
    out: &Out,
) -> Result<PruneOutcome> {
    let mut outcome = plan_folder(&scope.folder(), keep, dry_run, protect, host, None)?;
    if dry_run {
        if let Scope::Prefix { store, url } = scope {
            outcome.locked = locked_now(store, url, &outcome)?;
        }
    }
    say_plan(&outcome, out);
    let doomed: Vec<String> = outcome
        .to_delete()
        .map(|d| d.archive.name.clone())
        .collect();
    if dry_run || doomed.is_empty() {
        return Ok(outcome);
    }
    let total = outcome.decisions.len();
    match scope {
        Scope::Locked(lock) => delete_files(lock.dir(), &doomed, &mut outcome)?,
        Scope::Prefix { store, url } => delete_objects(store, url, &doomed, &mut outcome)?,
    }
    for (name, why) in &outcome.locked {
        out.say(format!("kept   {name}  {why}"));
    }
    out.say(format!(
        "deleted {} of {total} archive(s) in {}, kept {}{}",
        outcome.deleted.len(),
        outcome.folder,
        total - outcome.deleted.len(),
        match outcome.locked.len() {
            0 => String::new(),
            n => format!(" ({n} by object lock)"),
        }
    ));
    Ok(outcome)
}

/// Unlinks the doomed archives of `dir` (under its lock) one by one, then fsyncs the
/// folder; a failure stops there, saying what was deleted before it.
fn delete_files(dir: &Path, doomed: &[String], outcome: &mut PruneOutcome) -> Result<()> {
    let fd = DirFd::open(dir)?;
    for name in doomed {
        if let Err(e) = delete_one(&fd, name) {
            // What is gone is gone: make that durable, and say it.
            let _ = fd.sync();
            return Err(stopped_at(
                &dir.join(name).display().to_string(),
                &e,
                outcome,
            ));
        }
        outcome.deleted.push(name.clone());
    }
    fd.sync()
}

/// Deletes the doomed archives of a prefix one by one; one that Object Lock keeps is
/// recorded as such (that is the lock doing its job, not a failure of the prune).
fn delete_objects(
    store: &S3Store,
    folder: &ObjectUrl,
    doomed: &[String],
    outcome: &mut PruneOutcome,
) -> Result<()> {
    for name in doomed {
        let url = folder.join(name);
        match store.delete(&url) {
            Ok(Deleted::Gone) => outcome.deleted.push(name.clone()),
            Ok(kept) => outcome.locked.push((name.clone(), kept)),
            Err(e) => return Err(stopped_at(&url.to_string(), &e.what, outcome)),
        }
    }
    Ok(())
}

/// For a dry run on a prefix: which of the archives to delete Object Lock keeps now.
fn locked_now(
    store: &S3Store,
    folder: &ObjectUrl,
    outcome: &PruneOutcome,
) -> Result<Vec<(String, Deleted)>> {
    let now = jiff::Timestamp::now();
    let mut locked = Vec::new();
    for d in outcome.to_delete() {
        if let Some(r) = store.retention(&folder.join(&d.archive.name))? {
            if r.until > now {
                locked.push((d.archive.name.clone(), Deleted::Kept(Some(r))));
            }
        }
    }
    Ok(locked)
}

/// The error of a prune that stopped at `what`, naming what it deleted before.
fn stopped_at(what: &str, why: &str, outcome: &PruneOutcome) -> Error {
    let before = if outcome.deleted.is_empty() {
        "nothing was deleted before it".to_string()
    } else {
        format!(
            "deleted before it: {} ({})",
            outcome.deleted.len(),
            outcome.deleted.join(", ")
        )
    };
    Error::runtime(format!("cannot delete {what}: {why}; {before}"))
        .hint("fix the cause and run prune again (it plans from what is left)")
}

/// What pruning `folder` would do after `backup` has written `new` there (not there
/// yet: for `backup --dry-run`). The new archive counts as the newest, as it will be.
pub fn preview(
    folder: &Folder,
    keep: &KeepArgs,
    new: Option<&str>,
    host: &str,
) -> Result<PruneOutcome> {
    let extra = new.and_then(|n| {
        let (host, time) = retention::parse_name(n)?;
        Some(retention::Archive {
            path: folder.join(OsStr::new(n)),
            name: n.to_string(),
            host,
            time,
            size: 0,
        })
    });
    plan_folder(folder, keep, true, new, Some(host), extra)
}

/// The decisions for the archives of `folder` (of `host` only, if given), plus `extra`.
fn plan_folder(
    folder: &Folder,
    keep: &KeepArgs,
    dry_run: bool,
    protect: Option<&str>,
    host: Option<&str>,
    extra: Option<retention::Archive>,
) -> Result<PruneOutcome> {
    let mut archives = folder.archives()?;
    archives.extend(extra);
    if let Some(h) = host {
        archives.retain(|a| a.host == h);
    }
    let mut decisions = retention::plan(&archives, keep);
    for d in &mut decisions {
        if Some(d.archive.name.as_str()) == protect {
            d.keep = true;
            d.reasons.push("just written".into());
        }
    }
    Ok(PruneOutcome {
        folder: folder.to_string(),
        dry_run,
        decisions,
        deleted: Vec::new(),
        locked: Vec::new(),
    })
}

/// `keep NAME reasons` / `delete NAME` per archive, and for a dry run what it would do.
pub fn say_plan(outcome: &PruneOutcome, out: &Out) {
    let dir = &outcome.folder;
    if outcome.decisions.is_empty() {
        out.say(format!("no archives in {dir}"));
        return;
    }
    let locked = |name: &str| outcome.locked.iter().find(|(n, _)| n == name);
    for d in &outcome.decisions {
        if d.keep {
            out.say(format!(
                "keep   {}  {}",
                d.archive.name,
                d.reasons.join(", ")
            ));
        } else if let (true, Some((_, why))) = (outcome.dry_run, locked(&d.archive.name)) {
            out.say(format!("delete {}  (but {why})", d.archive.name));
        } else {
            out.say(format!("delete {}", d.archive.name));
        }
    }
    let total = outcome.decisions.len();
    let doomed = outcome.to_delete().count();
    if outcome.dry_run {
        out.say(format!(
            "dry run: would delete {} of {total} archive(s) in {dir}{}; nothing deleted",
            doomed - outcome.locked.len(),
            match outcome.locked.len() {
                0 => String::new(),
                n => format!(" ({n} more kept by object lock)"),
            }
        ));
    } else if doomed == 0 {
        out.say(format!(
            "kept all {total} archive(s) in {dir}; nothing to delete"
        ));
    }
}

/// Unlinks `name` in `fd` if it is still a regular file (not swapped for a folder or a
/// link since the listing). Already gone counts as deleted.
fn delete_one(fd: &DirFd, name: &str) -> std::result::Result<(), String> {
    let name_os = OsStr::new(name);
    match nix::sys::stat::fstatat(fd, name_os, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if (st.st_mode & libc_s_ifmt()) == libc_s_ifreg() => {}
        Ok(_) => return Err("it is no longer a regular file".into()),
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(plain_io(&std::io::Error::from(e))),
    }
    match fd.unlink(name_os) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(plain_io(&std::io::Error::from(e))),
    }
}

fn libc_s_ifmt() -> u32 {
    nix::sys::stat::SFlag::S_IFMT.bits()
}

fn libc_s_ifreg() -> u32 {
    nix::sys::stat::SFlag::S_IFREG.bits()
}
