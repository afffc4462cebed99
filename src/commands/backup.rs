//! `forgekeep backup`: collect → check → archive → temp file → fsync → rename.
//!
//! The archive either appears complete under its final name or not at all: it is
//! written to a hidden `0600` temp file in the destination folder (so it is never
//! readable by others, not even for a moment), fsynced, renamed without replacing
//! anything unless `--force`, and the folder is fsynced so the rename survives a crash.

mod output;

use crate::archive::manifest::{Manifest, FORMAT_NAME, FORMAT_VERSION};
use crate::cli::{BackupArgs, BackupOptions, KeepArgs};
use crate::collect::{collect, Collection, Options};
use crate::config::{merge_backup, merge_keep, merge_sources, Config};
use crate::error::{Error, ExitCode, Result};
use crate::findings::{worst, Code, Severity};
use crate::keys::{parse_recipient, read_passphrase, read_recipients_file, Encryption};
use crate::report::{human_bytes, Out};
use crate::signature::SigningKey;
use crate::sources::resolve as resolve_sources;
use crate::store::Folder;
use output::{name_output, resolve_target, write, Output, Target};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

pub fn run(args: &BackupArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    let started = Instant::now();
    let adhoc = adhoc_reason(args);
    let own_output = args.options.output.is_some();
    let config_strict = config.backup.strict && !args.options.strict;
    let cli_lock = args.s3.lock_days.is_some() || args.s3.lock_mode.is_some();
    let args = &effective_args(args, config);
    let target = resolve_target(args, own_output, config, adhoc)?;
    let keep = retention_rules(args, config, adhoc.is_some(), target.as_ref());
    let mut out = *out;
    if matches!(target, Some(Target::Stdout)) && !args.dry_run {
        if out.json {
            return Err(Error::usage("--json and -o - would both write to stdout")
                .hint("write the archive to a file, or drop --json"));
        }
        out.stdout_is_data = true;
    }
    let out = &out;
    // One run per output folder at a time, taken before anything is read so that a
    // second run (a timer firing while a slow one still runs) exits 6 at once.
    let lock = match target.as_ref().and_then(Target::folder) {
        Some(folder) if !args.dry_run => take_lock(folder)?,
        _ => None,
    };
    let pruning = !crate::retention::no_rule(&keep);
    if pruning && target.as_ref().and_then(Target::folder).is_none() && !args.dry_run {
        return Err(
            Error::usage("--keep-* needs an output folder or file, not stdout").hint(
                "write the archive with -o DIR/, or prune separately with forgekeep prune DIR",
            ),
        );
    }
    lock_flags_need_a_store(cli_lock, target.as_ref())?;
    // What the run's own keys and credentials are like: findings of this archive too.
    let mut own_findings = target
        .as_ref()
        .and_then(Target::store)
        .map(|s| crate::store::credentials_file_findings(s.settings()))
        .unwrap_or_default();
    // Named under the lock: no other run can take the name between the choice and the
    // rename (see `unique_name`).
    let (output, created) = name_output(target, args.force)?;
    let enc = encryption(args)?;
    // Loaded before anything is read: a passphrase is asked (or refused) at once.
    let (signing, key_findings) = signing_key(args.options.sign_key.as_deref())?;
    own_findings.extend(key_findings);
    let (mut collection, blocking) = gather(args, out)?;
    out.findings(&own_findings);
    collection.findings.extend(own_findings);
    let worst = verdict_severity(&collection, blocking);
    let refusal = refusal(&collection, worst, args.options.strict, config_strict);
    let incomplete = lacks_secrets(&collection);

    if args.dry_run {
        return dry_run_report(
            &collection,
            output.as_ref(),
            &keep,
            pruning && !incomplete,
            refusal.as_ref(),
            worst,
            out,
        );
    }
    if let Some(e) = refusal {
        return Err(e);
    }
    let output = output.expect("a real run has an output");
    let signer = signing.as_ref().map(|k| k.signer().fingerprint());
    let (written_to, size, summary) = write(
        &output,
        created,
        args,
        &enc,
        signing.map(std::sync::Arc::new),
        &collection,
        out,
    )?;

    let pruned = prune_after_writing(
        lock.as_ref().filter(|_| pruning),
        &output,
        &keep,
        incomplete,
        &written_to,
        out,
    )?;
    out.say(format!(
        "{} {}{}",
        summary_line("archived", &collection, Some(summary.content_bytes)),
        if written_to == "-" {
            "to stdout".to_string()
        } else {
            format!("to {written_to}")
        },
        size.map(|s| format!(" ({})", human_bytes(s)))
            .unwrap_or_default()
    ));
    if let Some(s) = &signer {
        out.say(format!("signed with {s}"));
    }
    let mut report = json!({
        "command": "backup",
        "archive": written_to,
        "size": size,
        "entries": collection.items.len(),
        "files": summary.files,
        "content_bytes": summary.content_bytes,
        "signed_by": signer,
        "findings": collection.findings,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    // Only when pruning ran (documented as `"prune"?`: absent, not null, otherwise).
    if let Some(p) = &pruned {
        let mut v = p.to_json();
        v.as_object_mut().map(|o| o.remove("command"));
        report["prune"] = v;
    }
    if pruning && incomplete {
        report["prune_skipped"] =
            serde_json::json!("the archive lacks secrets that older archives may hold");
    }
    out.report(&report);
    Ok(exit_for(worst))
}

/// The signing key of `--sign` / `sign-key`, and its findings. A key that does not
/// exist is a warning and the archive goes unsigned: a night without a backup is worse
/// than a night whose archive a restore will only take with consent (an unsigned archive
/// is refused by default, so nothing is trusted that should not be). A file that is no
/// usable key, or a wrong passphrase, is an error: that needs someone's attention.
fn signing_key(path: Option<&Path>) -> Result<(Option<SigningKey>, Vec<crate::findings::Finding>)> {
    let Some(path) = path else {
        return Ok((None, Vec::new()));
    };
    if !path.exists() && std::fs::symlink_metadata(path).is_err() {
        return Ok((
            None,
            vec![crate::findings::Finding {
                code: Code::SecretMissing,
                severity: Severity::Warning,
                path: path.display().to_string(),
                message: "the signing key does not exist: this archive is NOT signed (a restore will want --allow-untrusted)".into(),
                fix: format!("forgekeep keygen --sign -o {}", path.display()),
            }],
        ));
    }
    let key = SigningKey::load(path)?;
    let findings = crate::signature::audit(key.path());
    Ok((Some(key), findings))
}

/// Retention, under the lock the backup holds (`lock` is given only when there are
/// rules), after a complete archive is safely in place, and only when it holds
/// everything the older ones do: a run that found a secret missing or lost must not
/// delete the archives that still have it. Only this host's archives: others sharing
/// the folder keep their own rules.
fn prune_after_writing(
    lock: Option<&crate::lock::Lock>,
    output: &Output,
    keep: &KeepArgs,
    incomplete: bool,
    written_to: &str,
    out: &Out,
) -> Result<Option<crate::commands::prune::PruneOutcome>> {
    let Output::Archive { folder, name, .. } = output else {
        return Ok(None);
    };
    // A local folder: only under the lock, which is given only when there are rules.
    let scope = match (folder, lock) {
        (Folder::Local(_), None) => return Ok(None),
        _ if crate::retention::no_rule(keep) => return Ok(None),
        (folder, lock) => crate::commands::prune::Scope::of(folder, lock),
    };
    if incomplete {
        out.notice("not pruning: this archive lacks secrets that older archives may hold (see the findings); every archive was kept");
        return Ok(None);
    }
    let host = host_for_filename();
    crate::commands::prune::prune_dir(scope, keep, false, name.to_str(), Some(&host), out)
        .map(Some)
        .map_err(|e| Error {
            what: format!(
                "the archive {written_to} was written, but pruning failed: {}",
                e.what
            ),
            ..e
        })
}

/// Why this run is not the configured job, if it is not: it names its own sources or
/// recipients on the command line.
fn adhoc_reason(args: &BackupArgs) -> Option<&'static str> {
    let sources = args.sources.names_sources();
    let o = &args.options;
    let keys = !o.recipients.is_empty() || !o.recipients_files.is_empty() || args.passphrase;
    match (sources, keys) {
        (true, true) => Some("sources and recipients"),
        (true, false) => Some("sources"),
        (false, true) => Some("recipients"),
        (false, false) => None,
    }
}

/// The command line over the configuration file.
fn effective_args(args: &BackupArgs, config: &Config) -> BackupArgs {
    BackupArgs {
        sources: merge_sources(&args.sources, &config.sources),
        options: BackupOptions {
            strict: !args.no_strict && (args.options.strict || config.backup.strict),
            ..merge_backup(&args.options, &config.backup, args.passphrase)
        },
        s3: args.s3.merged(&config.s3),
        ..args.clone()
    }
}

/// The run lock of the output folder: its `.forgekeep.lock`, or for a bucket prefix the
/// lock this host keeps for it (see [`crate::lock::acquire_for_prefix`]).
fn take_lock(folder: &Folder) -> Result<Option<crate::lock::Lock>> {
    match folder {
        Folder::Local(dir) => crate::lock::acquire(dir, "backup").map(Some),
        Folder::Prefix { store, url } => {
            let endpoint = store.settings().endpoint.as_deref().unwrap_or("aws");
            crate::lock::acquire_for_prefix(
                &format!("{endpoint} {url}"),
                &url.to_string(),
                "backup",
            )
        }
    }
}

/// `--s3-lock-days` and `--s3-lock-mode` on the command line lock an object: with any
/// other output they would silently do nothing. (The `[s3]` table's keys apply to the
/// configured job's `s3://` output, and are ignored by a run that writes elsewhere.)
fn lock_flags_need_a_store(cli_lock: bool, target: Option<&Target>) -> Result<()> {
    if cli_lock && target.is_some_and(|t| t.store().is_none()) {
        return Err(Error::usage(
            "--s3-lock-days and --s3-lock-mode apply to an s3:// output only",
        )
        .hint("write the archive with -o s3://BUCKET/PREFIX/ to lock it, or drop the flag"));
    }
    Ok(())
}

/// The file's `[retention]` is the configured job's, for the file's output folder only:
/// not for an ad-hoc run (its own sources or keys), not for another folder (`backup -o
/// /root/before-upgrade/`), not for stdout. `--keep-*` flags apply anywhere.
fn retention_rules(
    args: &BackupArgs,
    config: &Config,
    adhoc: bool,
    target: Option<&Target>,
) -> KeepArgs {
    match target.and_then(Target::folder) {
        Some(folder) if !adhoc && config.is_output_folder(&folder.arg()) => {
            merge_keep(&args.keep, &config.retention)
        }
        _ => args.keep.clone(),
    }
}

/// Sources resolved and walked, the profiles' findings and the collection's in one list;
/// and the worst of collection's own findings (an unreadable file), which alone may stop
/// the backup (see [`verdict_severity`]).
fn gather(args: &BackupArgs, out: &Out) -> Result<(Collection, Option<Severity>)> {
    let sources = resolve_sources(&args.sources, args.options.numeric_ids)?;
    if sources.requests.is_empty() {
        out.findings(&sources.findings);
        return Err(Error::runtime(
            "the profiles found nothing to archive; no archive was written",
        )
        .hint("see the findings above (forgekeep check shows them too); name the configuration with -p NAME=FILE"));
    }
    let mut collection = collect(
        &sources.requests,
        &Options {
            exclude: args.sources.exclude.clone(),
            sqlite: sources.sqlite.clone(),
            snapshot: !args.dry_run,
            secrets: sources.secrets(),
        },
    )?;
    let blocking = worst(&collection.findings);
    let mut findings = sources.findings.clone();
    findings.extend(sources.audit());
    findings.append(&mut collection.findings);
    collection.findings = findings;
    out.findings(&collection.findings);
    Ok((collection, blocking))
}

/// The severity that decides the run. Collection's findings decide whether an archive
/// can be trusted to be complete (an unreadable file: no archive). The profiles' errors
/// (a key on no persistent storage, a missing file) do not stop the backup of everything
/// else: they are reported and make the run exit 3, as warnings do.
fn verdict_severity(c: &Collection, blocking: Option<Severity>) -> Option<Severity> {
    worst(&c.findings).map(|w| {
        w.min(Severity::Warning)
            .max(blocking.unwrap_or(Severity::Info))
    })
}

/// Why no archive may be written, the same for a dry run as for the real run.
fn refusal(
    c: &Collection,
    worst: Option<Severity>,
    strict: bool,
    config_strict: bool,
) -> Option<Error> {
    if worst == Some(Severity::Error) {
        let count = |code| c.findings.iter().filter(|f| f.code == code).count();
        let redirected = count(Code::UntrustedSymlink);
        Some(if redirected > 0 && count(Code::Unreadable) == 0 {
            // Collection found a link the profiles had not seen a moment before: made
            // while this run was going on.
            Error::runtime(format!(
                "a symbolic link appeared on the way to {redirected} source(s) during the run; no archive was written"
            ))
            .hint("see the findings above: whoever can write the forge's folders may be redirecting them; run again once that is explained")
        } else {
            Error::runtime(format!(
                "{} source(s) cannot be read; no archive was written",
                count(Code::Unreadable)
            ))
            .hint("fix the findings above (often: run as root), then run again")
        })
    } else if strict && worst >= Some(Severity::Warning) {
        Some(
            Error::runtime("strict: the findings above abort the backup; no archive was written")
                .hint(if config_strict {
                    "fix the permissions the findings name, or pass --no-strict (strict = true is set in the configuration file)"
                } else {
                    "fix the permissions the findings name, or run without --strict"
                }),
        )
    } else {
        None
    }
}

/// Does the archive lack something older ones may hold (an error, or a secret missing,
/// lost or out of reach)? Then retention must not run.
fn lacks_secrets(c: &Collection) -> bool {
    c.findings.iter().any(|f| {
        f.severity == Severity::Error
            || (f.severity >= Severity::Warning
                && matches!(
                    f.code,
                    Code::SecretMissing | Code::NotPersistent | Code::VolumeUnknown
                ))
    })
}

/// `--dry-run`: what would be archived, where it would go, and what retention would
/// delete afterwards; writes nothing and takes no lock.
fn dry_run_report(
    collection: &Collection,
    output: Option<&Output>,
    keep: &KeepArgs,
    pruning: bool,
    refusal: Option<&Error>,
    worst: Option<Severity>,
    out: &Out,
) -> Result<ExitCode> {
    for c in &collection.items {
        let e = &c.entry;
        out.say(format!(
            "{:<7} {:04o} {:>10} {}{}",
            e.kind.as_str(),
            e.mode,
            e.size,
            e.path,
            e.target
                .as_ref()
                .map(|t| format!(" -> {t}"))
                .unwrap_or_default()
        ));
    }
    out.say(summary_line("would archive", collection, None));
    let mut report = json!({
        "command": "backup",
        "dry_run": true,
        "entries": collection.items.iter().map(|c| &c.entry).collect::<Vec<_>>(),
        "findings": collection.findings,
    });
    match output {
        Some(o) => {
            out.say(format!("would write the archive to {}", o.describe()));
            report["archive"] = json!(o.path_text());
        }
        None => out.say("no output given: the real run needs -o FILE|DIR/|s3://BUCKET/PREFIX/|- (or [backup] output in the configuration file)"),
    }
    if let (Some(Output::Archive { folder, name, .. }), false) =
        (output, crate::retention::no_rule(keep))
    {
        if pruning {
            let host = host_for_filename();
            let plan = crate::commands::prune::preview(folder, keep, name.to_str(), &host)?;
            crate::commands::prune::say_plan(&plan, out);
            let mut v = plan.to_json();
            v.as_object_mut().map(|o| o.remove("command"));
            report["prune"] = v;
        } else {
            out.say("would not prune: this archive would lack secrets that older archives may hold (see the findings)");
        }
    }
    // One JSON object either way: a refused dry run is this report, marked failed.
    if let Some(e) = refusal {
        return Ok(out.report_failed(report, e));
    }
    out.report(&report);
    Ok(exit_for(worst))
}

fn exit_for(worst: Option<Severity>) -> ExitCode {
    match worst {
        Some(s) if s >= Severity::Warning => ExitCode::Warnings,
        _ => ExitCode::Success,
    }
}

fn summary_line(verb: &str, c: &Collection, bytes: Option<u64>) -> String {
    use crate::archive::manifest::Kind;
    format!(
        "{verb} {} files, {} folders, {} links ({}), {} finding(s)",
        c.count(Kind::File),
        c.count(Kind::Dir),
        c.count(Kind::Symlink),
        human_bytes(bytes.unwrap_or_else(|| c.content_bytes())),
        c.findings.len()
    )
}

/// Recipients from -r and -R, or a passphrase; at least one is required.
fn encryption(args: &BackupArgs) -> Result<Encryption> {
    if args.passphrase {
        if args.dry_run {
            return Ok(Encryption::Recipients(Vec::new()));
        }
        return Ok(Encryption::Passphrase(read_passphrase(
            "Passphrase for the archive",
            true,
        )?));
    }
    let mut recipients = Vec::new();
    for (i, r) in args.options.recipients.iter().enumerate() {
        recipients.push(parse_recipient(r, &format!("-r #{}", i + 1))?);
    }
    for f in &args.options.recipients_files {
        recipients.extend(read_recipients_file(f)?);
    }
    if recipients.is_empty() {
        return Err(Error::usage("no recipient given")
            .hint("pass -r age1… (see forgekeep keygen), -R FILE, or --passphrase"));
    }
    Ok(Encryption::Recipients(recipients))
}

pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The host name restricted to characters safe in a file name.
pub fn host_for_filename() -> String {
    host_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn build_manifest(c: &Collection, exclude: &[String]) -> Manifest {
    manifest_at(c, exclude, jiff::Timestamp::now())
}

/// The manifest of an archive made at `created` (a generated name's time, so the name
/// and the manifest agree).
fn manifest_at(c: &Collection, exclude: &[String], created: jiff::Timestamp) -> Manifest {
    Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        tool: format!("forgekeep {}", env!("CARGO_PKG_VERSION")),
        created: created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        host: host_name(),
        sources: c.sources.clone(),
        findings: c.findings.clone(),
        exclude: exclude.to_vec(),
        entries: c.items.iter().map(|i| i.entry.clone()).collect(),
    }
}
