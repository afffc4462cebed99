//! One forgekeep run at a time per archive folder: `DIR/.forgekeep.lock`.
//!
//! The lock is an `flock(2)` (std's `File::try_lock`) on that file, not the file's
//! existence: the kernel drops it when the holding process exits, however it exits
//! (crash, `kill -9`, OOM killer, power cut), so a lock left by a dead run never blocks
//! the next one, and there is nothing to "break" by hand. A second run does not wait: it
//! stops at once with exit 6, naming the holder (cron and systemd start the next run
//! anyway; a pile of waiting runs would help nobody).
//!
//! The holder writes `pid N`, `started <RFC 3339 UTC>` and `command <name>` into the file,
//! for the message of whoever finds it locked and for a human with `cat`. That text is
//! information only: the lock is the flock, never the content.
//!
//! The file is removed on release, while still locked, so a finished run leaves the folder
//! as it found it (monitoring that counts files, a `ls` during recovery, see nothing but
//! archives). Removing a lock file is only safe with a check on the other side: between a
//! loser's open and its flock, the winner may unlink the file, and the loser would then
//! hold a lock on a file with no name while a third run creates and locks a new one. So
//! after taking the flock, `acquire` checks that the name still leads to the very file it
//! locked, and starts over when it does not. A run killed with `kill -9` leaves the file
//! behind; the next run locks it (the kernel released the flock), rewrites it, removes it.
//!
//! flock locks belong to the open file description: a second `acquire` in the same process
//! conflicts with the first like one from another process would, and the lock is not
//! inherited by programs forgekeep starts (the descriptor is `O_CLOEXEC`).

use crate::error::{plain_io, Error, ExitCode, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The lock file's name inside the archive folder.
pub const LOCK_NAME: &str = ".forgekeep.lock";

/// A held lock; released when dropped (the file is removed, then the descriptor closes).
#[derive(Debug)]
pub struct Lock {
    /// Held open for its flock; never read.
    file: File,
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove the name only if it still leads to our file, and while the flock is held
        // (the descriptor closes after this): see the module comment for why that order
        // and check make removal safe. A failure leaves a file the next run reuses.
        if let (Ok(ours), Ok(named)) = (self.file.metadata(), std::fs::symlink_metadata(&self.path))
        {
            if ours.dev() == named.dev() && ours.ino() == named.ino() {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

impl Lock {
    /// The folder this lock guards.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/.forgekeep.lock`
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Does this lock guard `dir` (the same folder, whatever path names it)?
    pub fn guards(&self, dir: &Path) -> bool {
        match (std::fs::metadata(&self.dir), std::fs::metadata(dir)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

/// Takes the lock on the archive folder `dir` for `command` (`backup`, `prune`, ...), or
/// fails at once with exit 6 when another run holds it.
pub fn acquire(dir: &Path, command: &str) -> Result<Lock> {
    // A lost race with a releasing holder (see the module comment) is retried; more than a
    // few in a row means something else keeps replacing the file.
    for _ in 0..100 {
        if let Some(lock) = try_acquire(dir, command)? {
            return Ok(lock);
        }
    }
    Err(Error::runtime(format!(
        "the lock file {} keeps being replaced while forgekeep takes it",
        dir.join(LOCK_NAME).display()
    ))
    .hint("something other than forgekeep is creating or removing it; stop that, then run again"))
}

/// One attempt: `None` when the file was unlinked between our open and our flock.
fn try_acquire(dir: &Path, command: &str) -> Result<Option<Lock>> {
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // A symlink planted as the lock file must not make us create or truncate its
        // target (the folder may be writable by others than root).
        .custom_flags(libc_flags())
        .open(&path)
        .map_err(|e| open_error(dir, &path, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot inspect the lock file", &path, &e))?;
    // Removed by its releasing holder between our open and now: start over.
    if meta.file_type().is_file() && meta.nlink() == 0 {
        return Ok(None);
    }
    // A hard link to some other file would have that file truncated and rewritten below.
    if meta.file_type().is_file() && meta.nlink() > 1 {
        return Err(Error::runtime(format!(
            "the lock file {} has other names (hard links)",
            path.display()
        ))
        .hint(
            "remove it (forgekeep creates a fresh one); something made it a link to another file",
        ));
    }
    if !meta.file_type().is_file() {
        return Err(Error::runtime(format!(
            "the lock file {} is not a regular file",
            path.display()
        ))
        .hint("remove it (forgekeep creates it again)"));
    }
    match file.try_lock() {
        Ok(()) => {
            // Still the file the name leads to? (Not unlinked by a releasing holder.)
            match std::fs::symlink_metadata(&path) {
                Ok(named) if named.dev() == meta.dev() && named.ino() == meta.ino() => {}
                _ => return Ok(None),
            }
        }
        Err(std::fs::TryLockError::WouldBlock) => return Err(held_error(dir, &path)),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::io("cannot lock", &path, &e)
                .hint("the folder's file system must support flock (local disks and NFSv4 do)"))
        }
    }
    // Made by something else (flock(1), a copy): made private again. The content is not
    // secret, but nothing in an archive folder needs to be readable by others.
    if meta.mode() & 0o077 != 0 && meta.uid() == nix::unistd::geteuid().as_raw() {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut file = file;
    let info = format!(
        "pid {}\nstarted {}\ncommand {}\n",
        std::process::id(),
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        command
    );
    // Information only: a failure to write it does not make the lock less held.
    let written = file
        .set_len(0)
        .and_then(|()| {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0))
        })
        .and_then(|_| file.write_all(info.as_bytes()));
    if let Err(e) = written {
        log::warn!("cannot write {}: {}", path.display(), plain_io(&e));
    }
    Ok(Some(Lock {
        file,
        dir: dir.to_path_buf(),
        path,
    }))
}

/// The lock a backup into a bucket prefix takes on this host, or None (after a warning)
/// when this host has no private runtime folder for it.
///
/// A prefix has no folder to hold a lock file, and S3 has no `flock`. What two runs of
/// this host into one prefix could do to each other is pick the same dated name in the
/// same second; stores that honour `If-None-Match` then refuse the second upload, but
/// Garage lets it replace the first. So runs of one host into one prefix are serialised
/// here, by the same lock as a folder's (exit 6 for the second), kept in a folder only
/// this user may write: `/run/forgekeep` for root, `$XDG_RUNTIME_DIR/forgekeep` for
/// others, one sub-folder per prefix (named by a hash of the endpoint and the URL, so
/// that no name from a URL ever becomes a path). Runs on other hosts cannot meet this
/// one's names: the names carry the host.
///
/// Without such a folder (a systemd unit with `ProtectSystem=strict` and no
/// `RuntimeDirectory=forgekeep`), the run goes on unserialised: the race it guards
/// against needs a second run of this host in the same second, and refusing every
/// backup for it would be worse.
pub fn acquire_for_prefix(store_key: &str, shown: &str, command: &str) -> Result<Option<Lock>> {
    let Some(base) = runtime_folder() else {
        log::warn!(
            "no private runtime folder (/run/forgekeep, or $XDG_RUNTIME_DIR): backups of this host into {shown} are not serialised (hint: in a systemd unit add RuntimeDirectory=forgekeep)"
        );
        return Ok(None);
    };
    let digest = crate::archive::sums::sha256(store_key.as_bytes());
    let dir = base.join(format!("s3-{}", &crate::fsx::hex(&digest)[..24]));
    if let Err(why) = private_folder(&dir) {
        log::warn!(
            "cannot use {} for the lock of {shown} ({why}): backups of this host into it are not serialised",
            dir.display()
        );
        return Ok(None);
    }
    acquire(&dir, command).map(Some).map_err(|e| match e.exit {
        ExitCode::Locked => Error {
            what: e.what.replace(&dir.display().to_string(), shown),
            ..e
        },
        _ => e,
    })
}

/// `/run/forgekeep` for root, `$XDG_RUNTIME_DIR/forgekeep` for another user (which
/// systemd makes private to them), created when missing; None when there is none.
fn runtime_folder() -> Option<PathBuf> {
    let base = if nix::unistd::geteuid().is_root() {
        PathBuf::from("/run")
    } else {
        PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?)
    };
    let dir = base.join("forgekeep");
    private_folder(&dir).ok().map(|()| dir)
}

/// Makes `dir` (mode 0700) unless it exists; then it must be a real folder of this user
/// that nobody else may write, or a lock in it would be someone else's to take or remove.
fn private_folder(dir: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(plain_io(&e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| plain_io(&e))?;
    if !meta.file_type().is_dir() {
        return Err("not a folder (a symlink?)".into());
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err("another user owns it or may write to it".into());
    }
    Ok(())
}

fn libc_flags() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits()
}

fn open_error(dir: &Path, path: &Path, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let msg = plain_io(e);
    match e.kind() {
        K::ReadOnlyFilesystem | K::PermissionDenied => Error::runtime(format!(
            "cannot create the lock file {}: {msg}",
            path.display()
        ))
        .hint(format!(
            "the archive folder {} must be writable by this user (it is where archives \
             are written and deleted); a lock file left by another user's killed run can \
             be removed",
            dir.display()
        )),
        K::NotFound => Error::runtime(format!("folder {} does not exist", dir.display()))
            .hint("check the path, or create the folder (mode 0700 is a good choice)"),
        K::NotADirectory => Error::runtime(format!("{} is not a folder", dir.display()))
            .hint("name the folder that holds the archives"),
        // ELOOP from O_NOFOLLOW
        _ if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => {
            Error::runtime(format!("the lock file {} is a symlink", path.display()))
                .hint("remove it (forgekeep creates a regular file again)")
        }
        _ => Error::io("cannot open the lock file", path, e),
    }
}

/// The exit-6 error, with what the holder wrote about itself.
fn held_error(dir: &Path, path: &Path) -> Error {
    let mut text = String::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(4096).read_to_string(&mut text);
    }
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(|v| crate::report::printable(v.trim()).into_owned())
            .filter(|v| !v.is_empty())
    };
    let holder = match (field("pid"), field("started"), field("command")) {
        (Some(pid), Some(started), command) => format!(
            " (pid {pid}, started {started}{})",
            command.map(|c| format!(", {c}")).unwrap_or_default()
        ),
        (Some(pid), None, _) => format!(" (pid {pid})"),
        _ => String::new(),
    };
    Error::new(
        ExitCode::Locked,
        format!(
            "another forgekeep run holds the lock on {}{holder}",
            dir.display()
        ),
    )
    .hint("wait for it to finish; the lock goes away when that process exits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_backups_of_this_host_into_one_prefix_meet_at_its_lock() {
        let key = format!(
            "http://127.0.0.1:1 s3://b/unit-test-{}/",
            std::process::id()
        );
        let shown = "s3://b/p/";
        let Some(first) = acquire_for_prefix(&key, shown, "backup").unwrap() else {
            return; // no runtime folder here (not root, no XDG_RUNTIME_DIR): nothing to lock
        };
        assert!(first.dir().starts_with("/run/forgekeep") || !nix::unistd::geteuid().is_root());
        let e = acquire_for_prefix(&key, shown, "backup").unwrap_err();
        assert_eq!(e.exit, ExitCode::Locked);
        assert!(
            e.what.contains("holds the lock on s3://b/p/ (pid"),
            "{}",
            e.what
        );
        // Another prefix is another lock.
        let other = acquire_for_prefix(&format!("{key}x"), shown, "backup")
            .unwrap()
            .expect("the runtime folder is there");
        let other_dir = other.dir().to_path_buf();
        drop(other);
        let _ = std::fs::remove_dir(other_dir);
        let dir = first.dir().to_path_buf();
        drop(first);
        assert!(acquire_for_prefix(&key, shown, "backup").unwrap().is_some());
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn racing_runs_never_both_hold_it_and_only_ever_see_exit_6() {
        // Review: a file removed by its releasing holder between our open and our check
        // (nlink 0) was reported as "has hard links" (exit 1) instead of retried.
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let td = tempfile::tempdir().unwrap();
        let held = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let dir = td.path().to_path_buf();
                let held = held.clone();
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        match acquire(&dir, "backup") {
                            Ok(lock) => {
                                assert!(!held.swap(true, Ordering::SeqCst), "two holders");
                                held.store(false, Ordering::SeqCst);
                                drop(lock);
                            }
                            Err(e) => assert_eq!(e.exit, ExitCode::Locked, "{}", e.what),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(
            !td.path().join(LOCK_NAME).exists(),
            "the last holder removed it"
        );
    }

    #[test]
    fn a_hard_linked_lock_file_is_refused_and_the_other_file_untouched() {
        let td = tempfile::tempdir().unwrap();
        let precious = td.path().join("precious");
        std::fs::write(&precious, "keep me").unwrap();
        std::fs::hard_link(&precious, td.path().join(LOCK_NAME)).unwrap();
        let e = acquire(td.path(), "prune").unwrap_err();
        assert!(e.what.contains("hard links"), "{}", e.what);
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    }

    #[test]
    fn a_second_acquire_fails_with_exit_6_and_names_the_holder() {
        let td = tempfile::tempdir().unwrap();
        let first = acquire(td.path(), "backup").unwrap();
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert!(text.starts_with(&format!("pid {}\nstarted ", std::process::id())));
        assert!(text.ends_with("\ncommand backup\n"), "{text}");
        let e = acquire(td.path(), "prune").unwrap_err();
        assert_eq!(e.exit, ExitCode::Locked);
        assert!(
            e.what
                .contains(&format!("(pid {}, started ", std::process::id())),
            "{}",
            e.what
        );
        assert!(e.what.contains(", backup)"), "{}", e.what);
        assert!(e.hint.unwrap().contains("wait for it"));
        assert!(first.guards(td.path()));
        drop(first);
        // Released on drop; the file stays.
        let again = acquire(td.path(), "prune").unwrap();
        assert!(again.path().exists());
        let text = std::fs::read_to_string(again.path()).unwrap();
        assert!(text.ends_with("\ncommand prune\n"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(again.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_lock_file_left_behind_does_not_block() {
        let td = tempfile::tempdir().unwrap();
        std::fs::write(
            td.path().join(LOCK_NAME),
            "pid 999999999\nstarted 2020-01-01T00:00:00Z\ncommand backup\n",
        )
        .unwrap();
        let l = acquire(td.path(), "prune").unwrap();
        let text = std::fs::read_to_string(l.path()).unwrap();
        assert!(
            !text.contains("999999999"),
            "old holder text replaced: {text}"
        );
    }

    #[test]
    fn a_symlink_or_a_missing_folder_is_refused() {
        let td = tempfile::tempdir().unwrap();
        let target = td.path().join("target");
        std::os::unix::fs::symlink(&target, td.path().join(LOCK_NAME)).unwrap();
        let e = acquire(td.path(), "prune").unwrap_err();
        assert!(e.what.contains("is a symlink"), "{}", e.what);
        assert!(!target.exists());
        let e = acquire(&td.path().join("missing"), "prune").unwrap_err();
        assert!(e.what.contains("does not exist"), "{}", e.what);
    }
}
