//! `forgekeep prune DIR --keep-...`: delete the archives of a folder that no rule keeps.
//!
//! Under the folder's run lock (a backup writing into the same folder meanwhile would
//! otherwise race with the listing), the archives are listed and planned by
//! [`crate::retention`], the plan is printed, and the archives to delete are unlinked one
//! by one, relative to the folder's descriptor and only if still a regular file, then the
//! folder is fsynced once. Nothing but `forgekeep-<host>-<stamp>.tar.zst.age` regular files
//! is ever deleted; the newest archive of each host always survives; no rule at all is a
//! usage error, never "delete everything".

use crate::cli::{KeepArgs, PruneArgs};
use crate::config::{merge_keep, Config};
use crate::error::{plain_io, Error, ExitCode, Result};
use crate::fsx::DirFd;
use crate::lock::Lock;
use crate::report::Out;
use crate::retention::{self, Decision};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use serde_json::json;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

pub fn run(args: &PruneArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    // Without DIR: the configuration's output folder (when it names a folder).
    let from_config = config.backup.output.as_ref().filter(|o| o.is_dir());
    let Some(dir) = args.dir.as_ref().or(from_config) else {
        return Err(Error::usage("no archive folder given").hint(
            "name the folder of archives: forgekeep prune /var/backups/forgekeep --keep-daily 7 (or set [backup] output in the configuration file)",
        ));
    };
    let keep = rules_for(args, config, dir)?;
    let lock = crate::lock::acquire(dir, "prune")?;
    let outcome = prune_dir(&lock, &keep, args.dry_run, None, args.host.as_deref(), out)?;
    out.report(&outcome.to_json());
    Ok(ExitCode::Success)
}

/// The rules for `dir`: the `--keep-*` flags, else the configuration's `[retention]` when
/// `dir` is the configured job's own folder (the rules were written for its archives,
/// not for whatever folder a prune is pointed at), else none: a usage error.
fn rules_for(args: &PruneArgs, config: &Config, dir: &std::path::Path) -> Result<KeepArgs> {
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
    pub dir: PathBuf,
    pub dry_run: bool,
    /// One per archive of the folder, newest first.
    pub decisions: Vec<Decision>,
    /// Names actually deleted (empty with `dry_run`).
    pub deleted: Vec<String>,
}

impl PruneOutcome {
    pub fn kept(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| d.keep)
    }

    pub fn to_delete(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.keep)
    }

    /// `{"command":"prune","dir","dry_run","kept":[{name,host,time,reasons}],
    /// "to_delete":[names],"deleted":[names]}`; `to_delete` is the plan, `deleted` what
    /// was really removed (the same list unless `dry_run`).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "command": "prune",
            "dir": self.dir.display().to_string(),
            "dry_run": self.dry_run,
            "kept": self.kept().map(|d| json!({
                "name": d.archive.name,
                "host": d.archive.host,
                "time": d.archive.time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "reasons": d.reasons,
            })).collect::<Vec<_>>(),
            "to_delete": self.to_delete().map(|d| &d.archive.name).collect::<Vec<_>>(),
            "deleted": self.deleted,
        })
    }
}

/// Prunes the folder `lock` guards, by `keep`: prints the plan (`out.say`), deletes unless
/// `dry_run`. Taking the held [`Lock`] (not a path) is what lets `backup --keep-*` prune
/// under the lock it already holds, and makes an unlocked prune impossible to write.
/// Does not check for "no rule" ([`check_rules`]): with none, only the newest survive.
/// Prints no JSON report: the caller does ([`PruneOutcome::to_json`]).
/// `protect` names an archive that is kept whatever the rules say: the one `backup` has
/// just written (after a clock step backwards it may not look like the newest).
pub fn prune_dir(
    lock: &Lock,
    keep: &KeepArgs,
    dry_run: bool,
    protect: Option<&str>,
    host: Option<&str>,
    out: &Out,
) -> Result<PruneOutcome> {
    let dir = lock.dir();
    let mut outcome = plan_dir(dir, keep, dry_run, protect, host, None)?;
    say_plan(&outcome, out);
    let doomed: Vec<String> = outcome
        .to_delete()
        .map(|d| d.archive.name.clone())
        .collect();
    if dry_run || doomed.is_empty() {
        return Ok(outcome);
    }
    let total = outcome.decisions.len();
    let fd = DirFd::open(dir)?;
    for name in &doomed {
        if let Err(e) = delete_one(&fd, name) {
            // What is gone is gone: make that durable, and say it.
            let _ = fd.sync();
            let before = if outcome.deleted.is_empty() {
                "nothing was deleted before it".to_string()
            } else {
                format!(
                    "deleted before it: {} ({})",
                    outcome.deleted.len(),
                    outcome.deleted.join(", ")
                )
            };
            return Err(Error::runtime(format!(
                "cannot delete {}: {e}; {before}",
                dir.join(name).display()
            ))
            .hint("fix the cause and run prune again (it plans from what is left)"));
        }
        outcome.deleted.push(name.clone());
    }
    fd.sync()?;
    out.say(format!(
        "deleted {} of {total} archive(s) in {}, kept {}",
        outcome.deleted.len(),
        dir.display(),
        total - outcome.deleted.len()
    ));
    Ok(outcome)
}

/// What pruning `dir` would do after `backup` has written `new` there (not there yet:
/// for `backup --dry-run`). The new archive counts as the newest, as it will be.
pub fn preview(dir: &Path, keep: &KeepArgs, new: Option<&str>, host: &str) -> Result<PruneOutcome> {
    let extra = new.and_then(|n| {
        let (host, time) = retention::parse_name(n)?;
        Some(retention::Archive {
            path: dir.join(n),
            name: n.to_string(),
            host,
            time,
        })
    });
    plan_dir(dir, keep, true, new, Some(host), extra)
}

/// The decisions for the archives of `dir` (of `host` only, if given), plus `extra`.
fn plan_dir(
    dir: &Path,
    keep: &KeepArgs,
    dry_run: bool,
    protect: Option<&str>,
    host: Option<&str>,
    extra: Option<retention::Archive>,
) -> Result<PruneOutcome> {
    let mut archives = retention::list(dir)?;
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
        dir: dir.to_path_buf(),
        dry_run,
        decisions,
        deleted: Vec::new(),
    })
}

/// `keep NAME reasons` / `delete NAME` per archive, and for a dry run what it would do.
pub fn say_plan(outcome: &PruneOutcome, out: &Out) {
    let dir = outcome.dir.display();
    if outcome.decisions.is_empty() {
        out.say(format!("no archives in {dir}"));
        return;
    }
    for d in &outcome.decisions {
        if d.keep {
            out.say(format!(
                "keep   {}  {}",
                d.archive.name,
                d.reasons.join(", ")
            ));
        } else {
            out.say(format!("delete {}", d.archive.name));
        }
    }
    let total = outcome.decisions.len();
    let doomed = outcome.to_delete().count();
    if outcome.dry_run {
        out.say(format!(
            "dry run: would delete {doomed} of {total} archive(s) in {dir}; nothing deleted"
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
