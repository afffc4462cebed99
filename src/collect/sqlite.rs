//! Consistent copies of SQLite databases that a running service is writing.
//!
//! Woodpecker keeps forge OAuth tokens and pipeline secrets in its SQLite file, Gitea
//! and Drone can too. Copying such a file byte by byte while the service writes gives a
//! torn database (and the writer's change check would abort the backup anyway). SQLite's
//! online backup API copies a consistent snapshot under SQLite's own locking, so the
//! service keeps running. The snapshot goes to a hidden `0600` temp file in the
//! database's OWN folder (the secret never lands anywhere it was not already), is opened,
//! and is unlinked at once: the archive writer reads it through the open descriptor, and
//! nothing is left behind even if the run is killed later. The `-wal`/`-shm`/`-journal`
//! companions are not archived: the snapshot already contains every committed page.
//!
//! That folder usually belongs to the forge's user, who may rename or replace entries in
//! it while we run as root. So SQLite opens the copy with `SQLITE_OPEN_NOFOLLOW` and
//! without `CREATE` (a symlink swapped in for the temp name is refused, not followed:
//! root must not be made to create or overwrite a file elsewhere), the name must still
//! lead to the very inode we created once the copy is done, and the copy is read back
//! through that inode (`/proc/self/fd`), never by name.

use crate::error::{Error, Result};
use crate::fsx::DirFd;
use rusqlite::{Connection, OpenFlags};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

/// The companions SQLite keeps next to a database while it is open.
pub const COMPANION_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Takes a consistent copy of the database at `path`; returns it open (and already
/// unlinked) with its metadata.
pub fn snapshot(path: &Path) -> Result<(File, std::fs::Metadata)> {
    let dir_path = path.parent().unwrap_or(Path::new("/"));
    let dir = DirFd::open(dir_path)?;
    // Copies of runs killed mid-copy (their pid is gone) are removed first.
    dir.sweep_stale_temps();
    let mut temp = dir.create_temp().map_err(|e| {
        e.hint(format!(
            "the database copy is made in its own folder {}; run forgekeep as a user that can write there (often root)",
            dir_path.display()
        ))
    })?;
    let temp_path = dir_path.join(&temp.name);
    let fail = |what: &str, e: rusqlite::Error| {
        Error::runtime(format!(
            "cannot copy the SQLite database {}: {what}: {e}",
            path.display()
        ))
        .hint("check that it is an SQLite database and that this user can read it and its folder")
    };
    {
        // Read-only and without creating anything: a wrong path must not make a new
        // empty database where the service expects its own.
        let src = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| fail("cannot open it", e))?;
        src.busy_timeout(Duration::from_secs(30))
            .map_err(|e| fail("cannot set a busy timeout", e))?;
        // The file exists (we made it, 0600): no CREATE, and no symlink followed.
        let mut dst = Connection::open_with_flags(
            &temp_path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| fail("cannot open the copy", e))?;
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
                    .hint("run the backup again when the service is less busy"))
                }
            }
        }
    }
    // Not fsynced: the copy is only read back by this process. The connections above
    // are closed, so every page is in the file. Read back through OUR inode (the magic
    // link of our own descriptor, not the name), after checking that the name SQLite
    // wrote through still leads to it: otherwise someone swapped the name meanwhile and
    // what SQLite wrote is not what we would read.
    let ours = temp
        .file()
        .metadata()
        .map_err(|e| Error::io("cannot read", &temp_path, &e))?;
    let named = nix::sys::stat::fstatat(
        &dir,
        temp.name.as_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    let same = named.is_ok_and(|st| st.st_dev == ours.dev() && st.st_ino == ours.ino());
    if !same || ours.len() == 0 {
        return Err(Error::runtime(format!(
            "the copy of the SQLite database {} was replaced while it was written; nothing was archived",
            path.display()
        ))
        .hint(format!(
            "something renames files in {} while forgekeep runs; find out what, then run again",
            dir_path.display()
        )));
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(temp.file());
    let proc_path = format!("/proc/self/fd/{fd}");
    let file = File::open(&proc_path).map_err(|e| Error::io("cannot read", &temp_path, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read", &temp_path, &e))?;
    // Unlinked now (the temp guard's drop removes the name): the open descriptor is all
    // that remains of the copy.
    drop(temp);
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
