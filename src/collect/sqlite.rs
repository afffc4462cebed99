//! Consistent copies of SQLite databases that a running service is writing.
//!
//! Woodpecker keeps forge OAuth tokens and pipeline secrets in its SQLite file, Gitea
//! and Drone can too. Copying such a file byte by byte while the service writes gives a
//! torn database (and the writer's change check would abort the backup anyway). SQLite's
//! online backup API copies a consistent snapshot under SQLite's own locking, so the
//! service keeps running. The `-wal`/`-shm`/`-journal` companions are not archived: the
//! snapshot already contains every committed page.
//!
//! Where the copy is written is a security decision. SQLite opens files by NAME (it even
//! resolves symlinks itself), so the copy must live where nobody but us can rename or
//! replace anything along its path. The database's own folder does not qualify: it
//! usually belongs to the forge's user, who could swap the name for a link or a file of
//! theirs while root writes the database into it (a reviewer proved exactly that). So the
//! copy goes into a fresh `0700` folder of ours, made in a TRUSTED base: the temp folder
//! (`$TMPDIR`, else `/tmp`), accepted only if every folder on its path belongs to root (or
//! us) and is writable by nobody else unless sticky (in a sticky `/tmp` others cannot
//! rename our folder). SQLite creates the file itself there (`NOFOLLOW`);
//! it is read back through the folder's descriptor, then the file and the folder are
//! removed at once: the open descriptor is all that remains while the archive is written.
//! Under systemd's `PrivateTmp=yes` that folder is private to the unit as well.

use crate::error::{Error, Result};
use crate::fsx::{DirFd, TEMP_PREFIX};
use nix::sys::stat::Mode;
use rusqlite::{Connection, OpenFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The companions SQLite keeps next to a database while it is open.
pub const COMPANION_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The copy's name inside our private folder.
const COPY_NAME: &str = "copy.db";

/// Takes a consistent copy of the database at `path`; returns it open (its name already
/// removed) with its metadata.
pub fn snapshot(path: &Path) -> Result<(File, std::fs::Metadata)> {
    let base = trusted_temp_base()?;
    let base_fd = DirFd::open(&base)?;
    sweep_stale_folders(&base_fd);
    let private = PrivateDir::create(&base_fd)?;
    let copy_path = private.path.join(COPY_NAME);
    let fail = |what: &str, e: rusqlite::Error| {
        Error::runtime(format!(
            "cannot copy the SQLite database {}: {what}: {e}",
            path.display()
        ))
        .hint("check that it is an SQLite database and that this user can read it and its folder")
    };
    {
        // Read-only, no symlink, nothing created: a wrong path must not make a new empty
        // database where the service expects its own.
        let src = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| fail("cannot open it", e))?;
        src.busy_timeout(Duration::from_secs(30))
            .map_err(|e| fail("cannot set a busy timeout", e))?;
        // Created by SQLite in our own new folder, where nobody else can put anything
        // (sqlite3_open_v2 has no O_EXCL; the folder's 0700 is what makes it ours).
        let mut dst = Connection::open_with_flags(
            &copy_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| fail("cannot create the copy", e))?;
        // The copy needs no journal: it is either complete or thrown away.
        dst.pragma_update(None, "journal_mode", "OFF")
            .map_err(|e| fail("cannot prepare the copy", e))?;
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)
            .map_err(|e| fail("cannot start the online backup", e))?;
        // All pages in one step: a multi-step copy restarts whenever the service writes,
        // and a busy service could keep it from ever finishing. One step holds a read
        // transaction for the duration, which does not block a WAL-mode writer.
        // (Not `run_to_completion`: it asserts a positive page count and panics on -1.)
        let mut tries = 0;
        loop {
            use rusqlite::backup::StepResult;
            match backup
                .step(-1)
                .map_err(|e| fail("the online backup failed", e))?
            {
                StepResult::Done => break,
                // Busy/Locked: a writer holds a lock SQLite needs; try again shortly.
                _ if tries < 300 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    return Err(Error::runtime(format!(
                        "cannot copy the SQLite database {}: it stayed locked for 30 seconds",
                        path.display()
                    ))
                    .hint("run it again when the service is less busy"))
                }
            }
        }
    }
    // Not fsynced: the copy is only read back by this process. The connections above
    // are closed, so every page is in the file. Read back relative to our folder's
    // descriptor (no path lookup from outside it).
    let fd = nix::fcntl::openat(
        &private.fd,
        COPY_NAME,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::errno("cannot read the database copy", &copy_path, e))?;
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read", &copy_path, &e))?;
    drop(private); // the name and the folder go now; the descriptor keeps the copy
    Ok((file, meta))
}

/// Is `path` a companion file of one of `databases`?
pub fn is_companion(
    path: &Path,
    databases: &std::collections::BTreeSet<std::path::PathBuf>,
) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    COMPANION_SUFFIXES.iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|db| databases.contains(&path.with_file_name(db)))
    })
}

/// The temp folder, if nobody but root (or us) can rename or replace anything on its
/// path: every folder on it belongs to root or to us, and is not writable by others
/// unless it is sticky.
fn trusted_temp_base() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let me = nix::unistd::geteuid().as_raw();
    let mut checked = PathBuf::new();
    for c in base.components() {
        checked.push(c);
        let meta = std::fs::symlink_metadata(&checked).map_err(|e| {
            let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
            temp_hint(
                Error::io("cannot examine the temp folder", &checked, &e),
                errno,
            )
        })?;
        let owner_ok = meta.uid() == 0 || meta.uid() == me;
        let mode = meta.mode();
        let sticky = mode & 0o1000 != 0;
        if !meta.is_dir() || !owner_ok || (mode & 0o022 != 0 && !sticky) {
            return Err(Error::runtime(format!(
                "the temp folder {} is not safe for a database copy ({} can be replaced by others)",
                base.display(),
                checked.display()
            ))
            .hint(
                "point TMPDIR at a folder that only root can write (e.g. /root/tmp, mode 0700)",
            ));
        }
    }
    Ok(base)
}

/// The hint for a temp folder the copy cannot be made in. A container started with
/// `read_only: true` (the compose sidecar) has no writable `/tmp` unless it is given a
/// tmpfs; a minimal image may have no `/tmp` at all.
fn temp_hint(e: Error, errno: nix::errno::Errno) -> Error {
    use nix::errno::Errno;
    let fix = "give it a writable temp folder: a tmpfs at /tmp (compose: `tmpfs: [\"/tmp:mode=1777\"]`, \
               docker run --tmpfs /tmp), or TMPDIR naming a folder only root can write (e.g. /root/tmp, mode 0700)";
    match errno {
        Errno::EROFS => e.hint(format!(
            "the temp folder is on a read-only file system (a container with read_only: true?), and a database copy needs one: {fix}"
        )),
        Errno::ENOENT => e.hint(format!("there is no temp folder, and a database copy needs one: {fix}")),
        Errno::ENOSPC | Errno::EDQUOT => e.hint(
            "the temp folder is full: the database copy needs as much room as the database; \
             point TMPDIR at a larger folder only root can write, or make the tmpfs larger",
        ),
        _ => e,
    }
}

/// Our private `0700` folder in the trusted base, removed (with the copy) on drop.
struct PrivateDir<'b> {
    base: &'b DirFd,
    name: String,
    fd: DirFd,
    path: PathBuf,
}

impl<'b> PrivateDir<'b> {
    fn create(base: &'b DirFd) -> Result<PrivateDir<'b>> {
        let name = crate::fsx::temp_name();
        nix::sys::stat::mkdirat(base, name.as_str(), Mode::from_bits_truncate(0o700)).map_err(
            |e| {
                temp_hint(
                    Error::errno("cannot create a private folder in", &base.path, e),
                    e,
                )
            },
        )?;
        let fd = match base.open_child(OsStr::new(&name)) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = base.rmdir(OsStr::new(&name));
                return Err(Error::errno(
                    "cannot open the private folder in",
                    &base.path,
                    e,
                ));
            }
        };
        let path = base.path.join(&name);
        Ok(PrivateDir {
            base,
            name,
            fd,
            path,
        })
    }
}

impl Drop for PrivateDir<'_> {
    fn drop(&mut self) {
        // Cleanup only: a leftover is a root-only folder the next run sweeps.
        for n in [COPY_NAME, "copy.db-journal"] {
            let _ = self.fd.unlink(OsStr::new(n));
        }
        let _ = self.base.rmdir(OsStr::new(&self.name));
    }
}

/// Removes the private folders of runs killed mid-copy (their pid is gone).
fn sweep_stale_folders(base: &DirFd) {
    let Ok(rd) = std::fs::read_dir(&base.path) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name();
        if !name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes())
            || !crate::fsx::is_stale_temp_name(name.as_encoded_bytes())
        {
            continue;
        }
        if let Ok(dir) = base.open_child(&name) {
            // Only our own folders: root's (or ours), 0700.
            let ok = std::fs::metadata(&dir.path).is_ok_and(|m| {
                m.is_dir() && m.mode() & 0o077 == 0 && m.uid() == nix::unistd::geteuid().as_raw()
            });
            if ok {
                for n in [COPY_NAME, "copy.db-journal"] {
                    let _ = dir.unlink(OsStr::new(n));
                }
                let _ = base.rmdir(&name);
            }
        }
    }
}
