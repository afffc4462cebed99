//! Where `backup` puts the archive: stdout, a file, a folder where it names it, or the
//! same two in a bucket (`s3://BUCKET/KEY`, `s3://BUCKET/PREFIX/`).
//!
//! The target is resolved before anything is read (a missing folder, an existing file
//! or object without `--force`, stdout on a terminal, an unreachable store: refused at
//! once), named under the folder's lock (see [`unique_name`]; for a prefix, the lock
//! this host keeps for it: [`crate::lock::acquire_for_prefix`]), and written the safe way (see [`write`]): a file through a
//! temp file and a rename, an object by an upload that makes it appear only when
//! complete and never replaces one unless asked.

use super::{host_for_filename, manifest_at};
use crate::archive::writer::{write_archive, write_archive_file, WriteOptions, WriteSummary};
use crate::cli::BackupArgs;
use crate::collect::Collection;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::Encryption;
use crate::report::Out;
use crate::signature::SigningKey;
use crate::store::{Folder, Location, ObjectUrl, Retention, S3Store, Upload, UploadOptions};
use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How old an unfinished upload must be before a backup aborts it as a killed run's: a
/// day, so that a run still uploading from another host is never cut off.
const STALE_UPLOAD: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Writes the archive to stdout, through a temp file and a rename into its folder, or as
/// an object. Returns where it went, its size and the writer's summary.
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
            Output::Archive {
                folder: Folder::Local(dir),
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
            Output::Archive {
                folder: Folder::Prefix { store, url },
                name,
                generated,
            } => {
                let url = url.join(&name.to_string_lossy());
                let upload = Upload::create(
                    store.clone(),
                    &url,
                    UploadOptions {
                        // As for files: only a KEY the user named, with --force.
                        replace: args.force && !generated,
                        lock: store.settings().lock.map(|policy| Retention {
                            mode: policy.mode,
                            until: policy.until(created),
                        }),
                        part_size: 0,
                    },
                )?;
                let (upload, summary) = write_archive(
                    upload,
                    Path::new(&url.to_string()),
                    enc,
                    &manifest,
                    &collection.items,
                    &opts,
                )?;
                let committed = upload.commit()?;
                clean_stale_uploads(store, &url, *generated, out);
                (url.to_string(), Some(committed.size), summary)
            }
        })
    })();
    if let Some(p) = &opts.progress {
        p.finish_and_clear();
    }
    written
}

/// After a successful upload: the multipart uploads that runs killed mid-upload left in
/// the folder (forgekeep's own names, and the KEY this run writes) are aborted, so the
/// store stops keeping (and billing) their parts. Failing to is a warning: the archive
/// is safe, and the next run tries again.
fn clean_stale_uploads(store: &S3Store, url: &ObjectUrl, generated: bool, out: &Out) {
    let also = (!generated).then(|| url.name());
    match store.cleanup_stale_uploads(&url.folder(), STALE_UPLOAD, also) {
        Ok(aborted) if aborted.is_empty() => {}
        Ok(aborted) => out.say(format!(
            "aborted {} unfinished upload(s) of interrupted runs: {}",
            aborted.len(),
            aborted
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(e) => out.warn(format!(
            "the unfinished uploads of interrupted runs in {} were not cleaned up: {e}",
            url.folder()
        )),
    }
}

/// Where the archive goes, as the command line or the file says, before its name is
/// chosen.
pub(super) enum Target {
    Stdout,
    /// `-o FILE` or `-o s3://BUCKET/KEY`: exactly that name.
    Named {
        folder: Folder,
        name: OsString,
    },
    /// `-o DIR/` or `-o s3://BUCKET/PREFIX/`: a name made from the host and the time,
    /// chosen under the folder's lock.
    InFolder(Folder),
}

impl Target {
    /// The folder the archive goes into.
    pub(super) fn folder(&self) -> Option<&Folder> {
        match self {
            Target::Stdout => None,
            Target::Named { folder, .. } | Target::InFolder(folder) => Some(folder),
        }
    }

    /// The store, for an `s3://` output.
    pub(super) fn store(&self) -> Option<&Arc<S3Store>> {
        match self.folder() {
            Some(Folder::Prefix { store, .. }) => Some(store),
            _ => None,
        }
    }
}

/// Where the archive goes, named.
pub(super) enum Output {
    Stdout,
    Archive {
        folder: Folder,
        name: OsString,
        generated: bool,
    },
}

impl Output {
    pub(super) fn path_text(&self) -> String {
        match self {
            Output::Stdout => "-".into(),
            Output::Archive { folder, name, .. } => folder.join(name).display().to_string(),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Output::Stdout => "stdout".into(),
            Output::Archive { .. } => self.path_text(),
        }
    }
}

/// `-o -` is stdout; an existing folder (or a path ending in `/`, or an `s3://` URL
/// ending in `/` or naming only the bucket) gets a generated name; anything else is the
/// file (or object) name itself. None only for a dry run without any. A run that names
/// its own sources or recipients is not the configured job: it never falls back to the
/// configured folder (where it would become the newest archive, made for keys the verify
/// job may not hold, and be pruned by rules not written for it).
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
            return Err(Error::usage("no output given").hint(
                "pass -o FILE, -o DIR/ (a name is generated), -o s3://BUCKET/PREFIX/ or -o - for stdout",
            ))
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
    if let Location::S3(url) = Location::parse(o)? {
        return object_target(url, args).map(Some);
    }
    let ends_with_slash = o.as_os_str().to_string_lossy().ends_with('/');
    if o.is_dir() || ends_with_slash {
        if !o.is_dir() {
            return Err(
                Error::usage(format!("output folder {} does not exist", o.display()))
                    .hint("create it first (mode 0700 is a good choice)"),
            );
        }
        return Ok(Some(Target::InFolder(Folder::Local(o.clone()))));
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
    let folder = Folder::Local(dir);
    check_replace(&folder, &name, args.force)?;
    Ok(Some(Target::Named { folder, name }))
}

/// `-o s3://…`: connects and lists the prefix (so that missing credentials, an unknown
/// endpoint, a bucket that is not there or a key the store refuses stop the run, in the
/// store's own words, before anything is read), and checks a named KEY as a FILE is
/// checked.
fn object_target(url: ObjectUrl, args: &BackupArgs) -> Result<Target> {
    let store = crate::store::connect(&args.s3)?;
    store.probe(&url.folder())?;
    if url.is_folder() {
        return Ok(Target::InFolder(Folder::Prefix { store, url }));
    }
    let name = OsString::from(url.name());
    let folder = Folder::Prefix {
        store,
        url: url.folder(),
    };
    check_replace(&folder, &name, args.force)?;
    Ok(Target::Named { folder, name })
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
        Some(Target::Named { folder, name }) => {
            // Checked again: it may have appeared since the first check.
            check_replace(&folder, &name, force)?;
            (
                Some(Output::Archive {
                    folder,
                    name,
                    generated: false,
                }),
                now,
            )
        }
        Some(Target::InFolder(folder)) => {
            let (name, created) = unique_name(&folder)?;
            (
                Some(Output::Archive {
                    folder,
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

/// `forgekeep-<host>-<stamp>.tar.zst.age` for now, unless that name is taken: then the
/// run waits for the next second and tries again. Two runs into one local folder are
/// serialised by its lock (a prefix by the lock this host keeps for it), so the only way
/// to meet a taken name is a run that finished earlier in the same second (or a clock
/// stepped back, or a copied-in archive): waiting keeps names unique and in time order,
/// in the format prune and verify --latest read. Should two runs of one host still pick
/// one name (no runtime folder for the prefix's lock), the upload's guards make one of
/// them fail rather than replace the other's archive.
fn unique_name(folder: &Folder) -> Result<(String, jiff::Timestamp)> {
    let host = host_for_filename();
    for _ in 0..=NAME_WAITS {
        let now = jiff::Timestamp::now();
        let name = crate::retention::archive_name(&host, now);
        if !folder.contains(OsStr::new(&name))? {
            return Ok((name, now));
        }
        let into_second = now.subsec_nanosecond().max(0) as u64;
        std::thread::sleep(std::time::Duration::from_nanos(
            1_000_000_000 - into_second + 1_000_000,
        ));
    }
    Err(Error::runtime(format!(
        "every archive name of the last {} seconds is taken in {folder}",
        NAME_WAITS + 1,
    ))
    .hint("archives named forgekeep-<host>-<stamp> newer than this host's clock are in the folder: check the clock, or move them"))
}

/// Fails fast, before any source is read, when the output exists and `--force` was not
/// given (the final rename, or the upload's conditional create, refuses to replace it
/// too, should it appear meanwhile). Even with `--force`, an archive of the folder's
/// series (`forgekeep-<host>-<stamp>…`, the names `-o DIR/` makes) is never replaced:
/// its name is the time it was made, and prune and verify --latest trust that.
fn check_replace(folder: &Folder, name: &OsStr, force: bool) -> Result<()> {
    if !folder.contains(name)? {
        return Ok(());
    }
    let target = folder.join(name);
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
