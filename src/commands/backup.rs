//! `forgekeep backup`: collect → check → archive → temp file → fsync → rename.
//!
//! The archive either appears complete under its final name or not at all: it is
//! written to a hidden `0600` temp file in the destination folder (so it is never
//! readable by others, not even for a moment), fsynced, renamed without replacing
//! anything unless `--force`, and the folder is fsynced so the rename survives a crash.

use crate::archive::manifest::{Manifest, FORMAT_NAME, FORMAT_VERSION};
use crate::archive::writer::{write_archive, write_archive_file, WriteOptions};
use crate::archive::SUFFIX;
use crate::cli::{BackupArgs, BackupOptions};
use crate::collect::{collect, Collection, Options};
use crate::config::{merge_backup, merge_keep, merge_sources, Config};
use crate::error::{Error, ExitCode, Result};
use crate::findings::{worst, Code, Severity};
use crate::keys::{parse_recipient, read_passphrase, read_recipients_file, Encryption};
use crate::report::{human_bytes, Out};
use crate::sources::resolve as resolve_sources;
use serde_json::json;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub fn run(args: &BackupArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    let started = Instant::now();
    let config_strict = config.backup.strict && !args.options.strict;
    let args = &BackupArgs {
        sources: merge_sources(&args.sources, &config.sources),
        options: BackupOptions {
            strict: !args.no_strict && (args.options.strict || config.backup.strict),
            ..merge_backup(&args.options, &config.backup, args.passphrase)
        },
        ..args.clone()
    };
    let output = resolve_output(args)?;
    // The file's [retention] is for the file's output folder only: an ad-hoc
    // `backup -o /root/before-upgrade/` on a configured host must not prune that folder,
    // and an archive sent to stdout has no folder at all. --keep-* flags apply anywhere.
    let keep = match &output {
        Output::File { dir, .. } if is_config_folder(dir, config) => {
            merge_keep(&args.keep, &config.retention)
        }
        _ => args.keep.clone(),
    };
    let mut out = *out;
    if matches!(output, Output::Stdout) && !args.dry_run {
        if out.json {
            return Err(Error::usage("--json and -o - would both write to stdout")
                .hint("write the archive to a file, or drop --json"));
        }
        out.stdout_is_data = true;
    }
    let out = &out;
    // One run per output folder at a time, taken before anything is read so that a
    // second run (a timer firing while a slow one still runs) exits 6 at once.
    let lock = match &output {
        Output::File { dir, .. } if !args.dry_run => Some(crate::lock::acquire(dir, "backup")?),
        _ => None,
    };
    let pruning = !crate::retention::no_rule(&keep);
    if pruning && lock.is_none() && !args.dry_run {
        return Err(
            Error::usage("--keep-* needs an output folder or file, not stdout").hint(
                "write the archive with -o DIR/, or prune separately with forgekeep prune DIR",
            ),
        );
    }
    let enc = encryption(args)?;
    let sources = resolve_sources(&args.sources, args.options.numeric_ids)?;
    if sources.requests.is_empty() {
        out.findings(&sources.findings);
        return Err(Error::runtime(
            "the profiles found nothing to archive; no archive was written",
        )
        .hint("see the findings above (forgekeep check shows them too); name the configuration with -p NAME=FILE"));
    }
    // Collection's findings decide whether an archive can be trusted to be complete
    // (an unreadable file: no archive). The profiles' errors (a key on no persistent
    // storage, a missing file) do not stop the backup of everything else: they are
    // reported and make the run exit 3, as warnings do.
    let mut collection = collect(
        &sources.requests,
        &Options {
            exclude: args.sources.exclude.clone(),
            sqlite: sources.sqlite.clone(),
            snapshot: !args.dry_run,
        },
    )?;
    let blocking = worst(&collection.findings);
    let mut findings = sources.findings.clone();
    findings.extend(sources.audit());
    findings.append(&mut collection.findings);
    collection.findings = findings;
    out.findings(&collection.findings);
    let worst = worst(&collection.findings).map(|w| {
        w.min(Severity::Warning)
            .max(blocking.unwrap_or(Severity::Info))
    });

    // The verdict, the same for a dry run as for the real run.
    let refusal = if worst == Some(Severity::Error) {
        let n = collection
            .findings
            .iter()
            .filter(|f| f.code == Code::Unreadable)
            .count();
        Some(
            Error::runtime(format!(
                "{n} source(s) cannot be read; no archive was written"
            ))
            .hint("fix the findings above (often: run as root), then run again"),
        )
    } else if args.options.strict && worst >= Some(Severity::Warning) {
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
    };

    if args.dry_run {
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
        out.say(summary_line("would archive", &collection, None));
        let report = json!({
            "command": "backup",
            "dry_run": true,
            "entries": collection.items.iter().map(|c| &c.entry).collect::<Vec<_>>(),
            "findings": collection.findings,
        });
        // One JSON object either way: a refused dry run is this report, marked failed.
        if let Some(e) = &refusal {
            return Ok(out.report_failed(report, e));
        }
        out.report(&report);
        return Ok(exit_for(worst));
    }
    if let Some(e) = refusal {
        return Err(e);
    }

    let manifest = build_manifest(&collection, &args.sources.exclude);
    let opts = WriteOptions {
        level: args.options.level.unwrap_or(3),
        armor: args.options.armor,
        progress: out.progress(collection.content_bytes(), "backup"),
        ..WriteOptions::default()
    };
    let written = (|| -> Result<_> {
        Ok(match &output {
            Output::Stdout => {
                let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
                let (mut w, summary) = write_archive(
                    stdout,
                    Path::new("stdout"),
                    &enc,
                    &manifest,
                    &collection.items,
                    &opts,
                )?;
                w.flush()
                    .map_err(|e| Error::io("cannot write the archive", Path::new("stdout"), &e))?;
                ("-".to_string(), None, summary)
            }
            Output::File { dir, name } => {
                let target = dir.join(name);
                let summary = write_archive_file(
                    dir,
                    name,
                    args.force,
                    &enc,
                    &manifest,
                    &collection.items,
                    &opts,
                )?;
                let size = std::fs::metadata(&target).map(|m| m.len()).ok();
                (target.display().to_string(), size, summary)
            }
        })
    })();
    if let Some(p) = &opts.progress {
        p.finish_and_clear();
    }
    let (written_to, size, summary) = written?;

    // Retention only after a complete archive is safely in place, and only when it holds
    // everything the older ones do: a run that found a secret missing or lost must not
    // delete the archives that still have it.
    let incomplete = collection.findings.iter().any(|f| {
        f.severity == Severity::Error
            || (f.severity >= Severity::Warning
                && matches!(
                    f.code,
                    Code::SecretMissing | Code::NotPersistent | Code::VolumeUnknown
                ))
    });
    if pruning && incomplete {
        out.notice("not pruning: this archive lacks secrets that older archives may hold (see the findings); every archive was kept");
    }
    // Only this host's archives: others sharing the folder keep their own rules.
    let host = host_for_filename();
    let pruned = match (&lock, &output) {
        (Some(lock), Output::File { name, .. }) if pruning && !incomplete => Some(
            crate::commands::prune::prune_dir(lock, &keep, false, name.to_str(), Some(&host), out)
                .map_err(|e| Error {
                    what: format!(
                        "the archive {written_to} was written, but pruning failed: {}",
                        e.what
                    ),
                    ..e
                })?,
        ),
        _ => None,
    };
    let elapsed = started.elapsed();
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
    let mut report = json!({
        "command": "backup",
        "archive": written_to,
        "size": size,
        "entries": collection.items.len(),
        "files": summary.files,
        "content_bytes": summary.content_bytes,
        "findings": collection.findings,
        "duration_ms": elapsed.as_millis() as u64,
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

enum Output {
    Stdout,
    File { dir: PathBuf, name: OsString },
}

/// `-o -` is stdout; an existing folder (or a path ending in `/`) gets a generated
/// name; anything else is the file name itself.
fn resolve_output(args: &BackupArgs) -> Result<Output> {
    if args.dry_run {
        return Ok(Output::Stdout);
    }
    let Some(o) = &args.options.output else {
        return Err(Error::usage("no output given")
            .hint("pass -o FILE, -o DIR/ (a name is generated) or -o - for stdout"));
    };
    if o.as_os_str() == "-" {
        if std::io::stdout().is_terminal() && !args.options.armor {
            return Err(
                Error::usage("refusing to write a binary archive to a terminal")
                    .hint("redirect stdout to a file, or pass --armor"),
            );
        }
        return Ok(Output::Stdout);
    }
    let ends_with_slash = o.as_os_str().to_string_lossy().ends_with('/');
    if o.is_dir() || ends_with_slash {
        if !o.is_dir() {
            return Err(
                Error::usage(format!("output folder {} does not exist", o.display()))
                    .hint("create it first (mode 0700 is a good choice)"),
            );
        }
        let name = format!(
            "forgekeep-{}-{}{SUFFIX}",
            host_for_filename(),
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        );
        return existing_refused(args, o.clone(), name.into());
    }
    let name = o
        .file_name()
        .ok_or_else(|| Error::usage(format!("output {} has no file name", o.display())))?
        .to_owned();
    let dir = match o.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(
            Error::usage(format!("output folder {} does not exist", dir.display()))
                .hint("create it first"),
        );
    }
    existing_refused(args, dir, name)
}

/// Is `dir` the configuration file's output folder (the same folder, however named)?
fn is_config_folder(dir: &Path, config: &Config) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(o) = &config.backup.output else {
        return false;
    };
    let folder = if o.is_dir() {
        o.as_path()
    } else {
        match o.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    };
    match (std::fs::metadata(dir), std::fs::metadata(folder)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Fails fast, before any source is read, when the output exists and `--force` was
/// not given. (The final rename refuses to replace it too, should it appear meanwhile.)
fn existing_refused(args: &BackupArgs, dir: PathBuf, name: OsString) -> Result<Output> {
    let target = dir.join(&name);
    if !args.force && std::fs::symlink_metadata(&target).is_ok() {
        return Err(
            Error::runtime(format!("{} already exists", target.display()))
                .hint("choose another name or an output folder, or pass --force to replace it"),
        );
    }
    Ok(Output::File { dir, name })
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
    Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        tool: format!("forgekeep {}", env!("CARGO_PKG_VERSION")),
        created: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        host: host_name(),
        sources: c.sources.clone(),
        findings: c.findings.clone(),
        exclude: exclude.to_vec(),
        entries: c.items.iter().map(|i| i.entry.clone()).collect(),
    }
}
