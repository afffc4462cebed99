//! Where `backup` puts the archive: stdout, a file, or a folder where it names it.
//!
//! The target is resolved before anything is read (a missing folder, an existing file
//! without `--force`, stdout on a terminal: refused at once), named under the folder's
//! lock (see [`unique_name`]), and written the safe way (see [`write`]).

use super::{host_for_filename, manifest_at};
use crate::archive::writer::{write_archive, write_archive_file, WriteOptions, WriteSummary};
use crate::cli::BackupArgs;
use crate::collect::Collection;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::Encryption;
use crate::report::Out;
use crate::signature::SigningKey;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Writes the archive to stdout or, through a temp file and a rename, into its folder.
/// Returns where it went, its size on disk and the writer's summary.
pub(super) fn write(
    output: &Output,
    created: jiff::Timestamp,
    args: &BackupArgs,
    enc: &Encryption,
    signing: Option<std::sync::Arc<SigningKey>>,
    collection: &Collection,
    out: &Out,
) -> Result<(String, Option<u64>, WriteSummary)> {
    let manifest = manifest_at(collection, &args.sources.exclude, created);
    let opts = WriteOptions {
        level: args.options.level.unwrap_or(3),
        armor: args.options.armor,
        progress: out.progress(collection.content_bytes(), "backup"),
        signing,
        ..WriteOptions::default()
    };
    let written = (|| -> Result<_> {
        Ok(match output {
            Output::Stdout => {
                let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
                let (mut w, summary) = write_archive(
                    stdout,
                    Path::new("stdout"),
                    enc,
                    &manifest,
                    &collection.items,
                    &opts,
                )?;
                w.flush()
                    .map_err(|e| Error::io("cannot write the archive", Path::new("stdout"), &e))?;
                ("-".to_string(), None, summary)
            }
            Output::File {
                dir,
                name,
                generated,
            } => {
                let target = dir.join(name);
                // A generated name is new by construction; replacing is only ever for a
                // FILE the user named with --force (see `check_replace`).
                let summary = write_archive_file(
                    dir,
                    name,
                    args.force && !generated,
                    enc,
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
    written
}

/// Where the archive goes, as the command line or the file says, before its name is
/// chosen.
pub(super) enum Target {
    Stdout,
    /// `-o FILE`: exactly that name.
    Named {
        dir: PathBuf,
        name: OsString,
    },
    /// `-o DIR/`: a name made from the host and the time, chosen under the lock.
    Folder(PathBuf),
}

impl Target {
    pub(super) fn dir(&self) -> Option<&Path> {
        match self {
            Target::Stdout => None,
            Target::Named { dir, .. } | Target::Folder(dir) => Some(dir),
        }
    }
}

/// Where the archive goes, named.
pub(super) enum Output {
    Stdout,
    File {
        dir: PathBuf,
        name: OsString,
        generated: bool,
    },
}

impl Output {
    pub(super) fn path_text(&self) -> String {
        match self {
            Output::Stdout => "-".into(),
            Output::File { dir, name, .. } => dir.join(name).display().to_string(),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Output::Stdout => "stdout".into(),
            Output::File { .. } => self.path_text(),
        }
    }
}

/// `-o -` is stdout; an existing folder (or a path ending in `/`) gets a generated
/// name; anything else is the file name itself. None only for a dry run without any.
/// A run that names its own sources or recipients is not the configured job: it never
/// falls back to the configured folder (where it would become the newest archive, made
/// for keys the verify job may not hold, and be pruned by rules not written for it).
pub(super) fn resolve_target(
    args: &BackupArgs,
    own_output: bool,
    config: &Config,
    adhoc: Option<&str>,
) -> Result<Option<Target>> {
    let o = match (&args.options.output, adhoc) {
        (Some(_), Some(what)) if !own_output => {
            return Err(adhoc_without_output(what, config));
        }
        (Some(o), _) => o,
        (None, _) if args.dry_run => return Ok(None),
        (None, _) => {
            return Err(Error::usage("no output given")
                .hint("pass -o FILE, -o DIR/ (a name is generated) or -o - for stdout"))
        }
    };
    if o.as_os_str() == "-" {
        if std::io::stdout().is_terminal() && !args.options.armor && !args.dry_run {
            return Err(
                Error::usage("refusing to write a binary archive to a terminal")
                    .hint("redirect stdout to a file, or pass --armor"),
            );
        }
        return Ok(Some(Target::Stdout));
    }
    let ends_with_slash = o.as_os_str().to_string_lossy().ends_with('/');
    if o.is_dir() || ends_with_slash {
        if !o.is_dir() {
            return Err(
                Error::usage(format!("output folder {} does not exist", o.display()))
                    .hint("create it first (mode 0700 is a good choice)"),
            );
        }
        return Ok(Some(Target::Folder(o.clone())));
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
    check_replace(&dir, &name, args.force)?;
    Ok(Some(Target::Named { dir, name }))
}
/// The usage error of an ad-hoc run on a configured host that gave no `-o`.
fn adhoc_without_output(what: &str, config: &Config) -> Error {
    let file = config
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the configuration file".into());
    let folder = config
        .output_folder()
        .map(|f| format!(" {}", f.display()))
        .unwrap_or_default();
    Error::usage(format!(
        "this backup names its own {what} on the command line, so it is not the job of {file}: it needs its own -o"
    ))
    .hint(format!(
        "pass -o DIR/ or -o FILE for this archive; the configured folder{folder} and its [retention] belong to the configured job, which `forgekeep backup` alone runs"
    ))
}

/// Chooses the archive's name: a generated one unique in its folder (call it under the
/// folder's lock), or the one given. Returns the output and the creation time that goes
/// into the manifest (the time in a generated name).
pub(super) fn name_output(
    target: Option<Target>,
    force: bool,
) -> Result<(Option<Output>, jiff::Timestamp)> {
    let now = jiff::Timestamp::now();
    Ok(match target {
        None => (None, now),
        Some(Target::Stdout) => (Some(Output::Stdout), now),
        Some(Target::Named { dir, name }) => {
            // Checked again: it may have appeared since the first check.
            check_replace(&dir, &name, force)?;
            (
                Some(Output::File {
                    dir,
                    name,
                    generated: false,
                }),
                now,
            )
        }
        Some(Target::Folder(dir)) => {
            let (name, created) = unique_name(&dir)?;
            (
                Some(Output::File {
                    dir,
                    name: name.into(),
                    generated: true,
                }),
                created,
            )
        }
    })
}

/// How long a run waits for a free name before it gives up (each wait is to the next
/// whole second).
const NAME_WAITS: u32 = 3;

/// `forgekeep-<host>-<stamp>.tar.zst.age` for now, unless a file of that name exists:
/// then the run waits for the next second and tries again. Two runs into one folder are
/// serialised by its lock, so the only way to meet a taken name is a run that finished
/// earlier in the same second (or a clock stepped back, or a copied-in archive): waiting
/// keeps names unique and in time order, in the format prune and verify --latest read.
fn unique_name(dir: &Path) -> Result<(String, jiff::Timestamp)> {
    let host = host_for_filename();
    for _ in 0..=NAME_WAITS {
        let now = jiff::Timestamp::now();
        let name = crate::retention::archive_name(&host, now);
        match std::fs::symlink_metadata(dir.join(&name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((name, now)),
            Err(e) => return Err(Error::io("cannot inspect", &dir.join(&name), &e)),
            Ok(_) => {
                let into_second = now.subsec_nanosecond().max(0) as u64;
                std::thread::sleep(std::time::Duration::from_nanos(
                    1_000_000_000 - into_second + 1_000_000,
                ));
            }
        }
    }
    Err(Error::runtime(format!(
        "every archive name of the last {} seconds is taken in {}",
        NAME_WAITS + 1,
        dir.display()
    ))
    .hint("archives named forgekeep-<host>-<stamp> newer than this host's clock are in the folder: check the clock, or move them"))
}

/// Fails fast, before any source is read, when the output exists and `--force` was not
/// given (the final rename refuses to replace it too, should it appear meanwhile). Even
/// with `--force`, an archive of the folder's series (`forgekeep-<host>-<stamp>…`, the
/// names `-o DIR/` makes) is never replaced: its name is the time it was made, and prune
/// and verify --latest trust that.
fn check_replace(dir: &Path, name: &std::ffi::OsStr, force: bool) -> Result<()> {
    let target = dir.join(name);
    if std::fs::symlink_metadata(&target).is_err() {
        return Ok(());
    }
    if !force {
        return Err(
            Error::runtime(format!("{} already exists", target.display()))
                .hint("choose another name or an output folder, or pass --force to replace it"),
        );
    }
    if name
        .to_str()
        .is_some_and(|n| crate::retention::parse_name(n).is_some())
    {
        return Err(Error::usage(format!(
            "{} is a dated archive of its folder; --force never replaces one",
            target.display()
        ))
        .hint(
            "write a new archive with -o DIR/ (a new name is generated), or delete that one first",
        ));
    }
    Ok(())
}
