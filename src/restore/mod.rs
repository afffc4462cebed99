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

use crate::archive::manifest::{Entry, Manifest};
use crate::archive::reader::Visitor;
use crate::cli::RestoreArgs;
use crate::commands::Reader;
use crate::config::Config;
use crate::error::{Error, ExitCode, Result};
use crate::report::Out;
use crate::signature::{Authenticity, SigningKey};
use plan::{Action, Destinations};
use serde_json::json;
use stage::Stager;

pub fn run(args: &RestoreArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    raise_fd_limit();
    // The keys before the signing key: a passphrase is asked before the archive is read.
    let reader = Reader::new(&args.keys, &args.trust, &args.limits, config)?;
    let consent = Consent {
        live: args.to.is_none() && !args.dry_run,
        given: args.allow_untrusted || config.trust.allow_untrusted,
        root: args.root.clone(),
    };
    // Loaded first too: a passphrase is asked before the archive is read, not after.
    let signing = args
        .sign_key
        .as_deref()
        .map(SigningKey::load)
        .transpose()?
        .map(std::sync::Arc::new);
    let dests = Destinations::from_args(args)?;
    let mut stager = Stager::new(dests, args.dry_run, args.force);
    let mut gate = Gate {
        stager: &mut stager,
        consent: &consent,
        out,
    };
    let (read, name) = match reader.read(&args.archive, &mut gate, Some((out, "restore"))) {
        Ok(read) => read,
        Err(e) => {
            stager.abort();
            return Err(e);
        }
    };
    let authenticity = read.authenticity;
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
    // What changes, one line each; what stays as it is in a dry run (the plan is what
    // it is for) or with -v (a real restore of a whole tree would otherwise print a
    // screen of "unchanged" folders above the few that matter).
    for step in &plan.steps {
        if step.action != Action::Unchanged || args.dry_run || out.verbose {
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
            "signature": authenticity.to_json(),
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
            "see what differs with forgekeep diff (or --dry-run); --force replaces them all and sets their owners and modes, --only PATH --force only those named (their current versions are kept in an undo archive)"
        }));
    }
    if let Err(e) = owners_can_be_given(&plan.steps, args) {
        stager.abort();
        return Err(e);
    }
    if args.dry_run {
        out.say(format!(
            "dry run: would {}; nothing was changed",
            plan.counts_line()
        ));
        if out.json {
            out.report(&report(None));
        }
        return Ok(ExitCode::Success);
    }
    let undo = apply::apply(&mut stager, &plan, &reader.keys, signing, args)?;
    out.say(format!("restored: {}", plan.counts_line()));
    if let Some(u) = &undo {
        // Always said, even with -q: it is where the replaced secrets now live.
        out.notice(format!(
            "the replaced versions and previous owners and modes are kept in {} (put them back with: forgekeep restore {} -i KEY --force)",
            u.display(),
            u.display()
        ));
    }
    // Built only when asked for: one JSON object per entry is the largest thing a big
    // restore would otherwise hold (about 0.8 KiB each).
    if out.json {
        out.report(&report(undo.as_deref()));
    }
    Ok(ExitCode::Success)
}

/// Root without `CAP_CHOWN` (a container, a unit's `CapabilityBoundingSet=`) cannot give
/// files other owners: said before anything changes, naming the capability and the ways
/// out (a non-root caller is stopped earlier, when the manifest is read). A dry run gets
/// the same verdict, as it does for conflicts.
fn owners_can_be_given(steps: &[plan::Step], args: &RestoreArgs) -> Result<()> {
    let missing = crate::owners::missing_root_capabilities();
    if args.to.is_some() || !missing.contains(&"CAP_CHOWN") {
        return Ok(());
    }
    let blocked: Vec<String> = steps
        .iter()
        .filter(|s| {
            matches!(
                s.action,
                Action::Create | Action::Replace | Action::FixMetadata
            )
        })
        .filter(|s| !crate::owners::can_chown_to(s.uid, s.gid))
        .map(|s| s.dest.display().to_string())
        .collect();
    if blocked.is_empty() {
        return Ok(());
    }
    Err(Error::runtime(format!(
        "this root process lacks {}, so it cannot give {} file(s) their recorded owners: {}{}; nothing was changed",
        missing.join(" and "),
        blocked.len(),
        blocked.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        if blocked.len() > 3 { ", ..." } else { "" }
    ))
    .hint("run the restore where root has CAP_CHOWN (not inside a container or unit that drops it; docker run --cap-add CHOWN), map owners with --map-user/--map-group, or use --to DIR for plain copies owned by you"))
}

/// Whether this restore may write an archive no trust file vouches for.
struct Consent {
    /// It writes into the live tree (`/` or `--root`), not plain copies (`--to`) or
    /// nothing (`--dry-run`).
    live: bool,
    /// `--allow-untrusted`, or `allow-untrusted = true` in `[trust]`.
    given: bool,
    root: Option<std::path::PathBuf>,
}

/// Restore's trust rule, in front of the stager: secure by default. An archive that
/// anyone holding the recipient could have made (unsigned, or signed by a key no trust
/// file lists) does not write into the live tree unless the operator says so, and
/// nothing at all is written before that is settled (the reader calls
/// [`Visitor::authenticity`] before the first entry).
struct Gate<'a> {
    stager: &'a mut Stager,
    consent: &'a Consent,
    out: &'a Out,
}

impl Visitor for Gate<'_> {
    fn authenticity(&mut self, m: &Manifest, who: &Authenticity) -> Result<()> {
        self.out.say(who.describe());
        if who.trusted() || !self.consent.live {
            return Ok(());
        }
        let sources = m
            .sources
            .iter()
            .map(|s| crate::report::printable(&s.path).into_owned())
            .collect::<Vec<_>>();
        let under = self
            .consent
            .root
            .as_ref()
            .map(|r| format!(" under {}", r.display()))
            .unwrap_or_default();
        if !self.consent.given {
            let shown = sources
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if sources.len() > 5 {
                format!(" and {} more", sources.len() - 5)
            } else {
                String::new()
            };
            return Err(Error::new(
                ExitCode::Integrity,
                format!(
                    "restore refused: no trust file vouches for this archive ({}), and it would write{under}: {shown}{more}; nothing was written",
                    match who {
                        Authenticity::Unsigned => "it is not signed".to_string(),
                        Authenticity::Signed { signer, .. } => format!(
                            "signed by {}, a key no trust file was given for",
                            signer.fingerprint()
                        ),
                    }
                ),
            )
            .hint("anyone with the public recipient can make an archive: if you know it is yours, pass --allow-untrusted; or --trust FILE listing its signer; or inspect it first with --to DIR or --dry-run"));
        }
        // With consent: where it will write comes first, before the plan.
        for s in &sources {
            self.out
                .say(format!("source (not authenticated): {s}{under}"));
        }
        Ok(())
    }

    fn manifest(&mut self, m: &std::sync::Arc<Manifest>) -> Result<()> {
        self.stager.manifest(m)
    }

    fn entry(&mut self, index: usize, e: &Entry, data: &mut dyn std::io::Read) -> Result<()> {
        self.stager.entry(index, e, data)
    }
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
