//! Restore: archive → validated entries → staged temp files → plan → atomic apply.
//!
//! All or nothing. While the archive streams past, each entry that must change is
//! written to a hidden `0600` temp file in its destination folder, given its owner then
//! its mode, and fsynced; nothing visible changes. Only when the whole archive has been
//! read, every member validated and every checksum matched does anything happen: files
//! are renamed into place one by one (each rename atomic), and a failure part-way renames
//! back what was already replaced. Any earlier failure just removes the temp files.
//!
//! * [`plan`]: where each entry goes (`--root`, `--relocate`, `--only`, `--to`) and
//!   with which owner;
//! * [`stage`]: the streaming visitor that compares with the live files and stages;
//! * [`apply`]: the renames, the rollback, and the undo archive of `--force`.

pub mod apply;
pub mod live;
pub mod plan;
pub mod space;
pub mod stage;

use crate::archive::reader::read_archive;
use crate::cli::RestoreArgs;
use crate::commands::{keyring, open_archive_watched};
use crate::error::{Error, ExitCode, Result};
use crate::report::Out;
use plan::{Action, Destinations};
use serde_json::json;
use stage::Stager;

pub fn run(args: &RestoreArgs, out: &Out) -> Result<ExitCode> {
    raise_fd_limit();
    let keys = keyring(&args.keys)?;
    let dests = Destinations::from_args(args)?;
    let (input, name, bar) = open_archive_watched(&args.archive, out, "restore")?;
    let mut stager = Stager::new(dests, args.dry_run, args.force);
    let read = read_archive(input, &name, &keys, &args.limits.limits(), &mut stager);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Err(e) = read {
        stager.abort();
        return Err(e);
    }
    let plan = match stager.finish_plan() {
        Ok(p) => p,
        Err(e) => {
            stager.abort();
            return Err(e);
        }
    };
    for w in &plan.warnings {
        out.warn(w);
    }
    for step in &plan.steps {
        if step.action != Action::Unchanged || !out.quiet {
            out.say(step.describe());
        }
    }
    for m in &plan.mappings {
        out.say(format!(
            "owner: {} {} -> {} ({})",
            m.kind, m.recorded, m.to, m.how
        ));
    }
    let conflicts: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Conflict)
        .collect();
    let report = |undo: Option<&std::path::Path>| {
        json!({
            "command": "restore",
            "archive": name,
            "dry_run": args.dry_run,
            "steps": plan.steps,
            "mappings": plan.mappings,
            "counts": plan.counts(),
            "undo_archive": undo,
            "warnings": plan.warnings,
        })
    };
    if !conflicts.is_empty() {
        stager.abort();
        let first: Vec<String> = conflicts
            .iter()
            .take(3)
            .map(|s| s.dest.display().to_string())
            .collect();
        return Err(Error::new(
            ExitCode::Conflict,
            format!(
                "restore refused: {} existing {} from the archive in content or owner/mode ({}{}); nothing was changed",
                conflicts.len(),
                if conflicts.len() == 1 { "entry differs" } else { "entries differ" },
                first.join(", "),
                if conflicts.len() > 3 { ", ..." } else { "" }
            ),
        )
        .hint(if conflicts.iter().any(|s| !stage::force_resolves(s.reason.as_deref())) {
            "something of another type is in the way (see the plan): move it by hand, then run again"
        } else {
            "compare with --dry-run; pass --force to replace them and set their owners and modes (their current versions are kept in an undo archive)"
        }));
    }
    if args.dry_run {
        out.say(format!(
            "dry run: would {}; nothing was changed",
            plan.counts_line()
        ));
        out.report(&report(None));
        return Ok(ExitCode::Success);
    }
    let undo = apply::apply(&mut stager, &plan, &keys, args)?;
    out.say(format!("restored: {}", plan.counts_line()));
    if let Some(u) = &undo {
        // Always said, even with -q: it is where the replaced secrets now live.
        out.notice(format!(
            "the replaced versions and previous owners and modes are kept in {} (put them back with: forgekeep restore {} -i KEY --force)",
            u.display(),
            u.display()
        ));
    }
    out.report(&report(undo.as_deref()));
    Ok(ExitCode::Success)
}

/// A restore keeps one descriptor open per destination folder until the end (the
/// renames need them); raise the soft limit so large trees do not hit EMFILE.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
