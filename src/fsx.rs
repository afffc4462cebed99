//! File-system primitives that the safety invariants rest on.
//!
//! Everything that creates or replaces a file goes through here, relative to a directory
//! file descriptor, never through a path that could be re-resolved: a path can be swapped
//! for a symlink between a check and a use (TOCTOU), a descriptor cannot. The pieces:
//!
//! * [`DirFd`]: a directory opened with `O_DIRECTORY|O_NOFOLLOW`, so a symlink planted in
//!   place of a directory makes the open fail (`ELOOP`/`ENOTDIR`) instead of leading us
//!   somewhere else;
//! * [`TempFile`]: a `0600` file with a recognisable hidden name, created `O_EXCL` in the
//!   directory where it will be renamed, removed again unless it is persisted;
//! * stale temp files (and a restore's temp folders) of a killed run are swept by the
//!   next run that opens the folder ([`DirFd::sweep_stale_temps`]): the name carries the
//!   pid of the run that made it.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Hidden prefix of every temporary file forgekeep creates.
pub const TEMP_PREFIX: &str = ".forgekeep.tmp.";

/// A fresh temp name: `.forgekeep.tmp.<pid>.<random>`. The random part is a per-run
/// random seed plus a counter (one read of /dev/urandom per run, not per file); the
/// `O_EXCL` create is what guarantees uniqueness anyway.
pub fn temp_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<(u32, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (pid, seed) = *SEED.get_or_init(|| {
        let mut rnd = [0u8; 8];
        getrandom(&mut rnd);
        (std::process::id(), u64::from_le_bytes(rnd))
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{pid}.{:016x}", seed.wrapping_add(n))
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    // /dev/urandom never blocks once the pool is initialised and needs no extra crate.
    if let Ok(mut f) = File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (t >> (i * 8)) as u8;
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Is `name` one of our temp files whose process is gone?
/// Is `name` a forgekeep temp name whose process is gone (a run that was killed)?
pub fn is_stale_temp_name(name: &[u8]) -> bool {
    is_stale_temp(name)
}

fn is_stale_temp(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX.as_bytes()) else {
        return false;
    };
    let Some(pid) = rest
        .split(|b| *b == b'.')
        .next()
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return false;
    };
    if pid <= 0 || pid as u32 == std::process::id() {
        return false;
    }
    // kill(pid, 0): ESRCH means no such process; EPERM means it exists (another user).
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

/// How deep [`DirFd::sweep_stale_temps`] goes into a stale temp folder.
const MAX_SWEEP_DEPTH: usize = 128;

/// A directory held open by descriptor, with the path it was reached by (for messages).
pub struct DirFd {
    fd: OwnedFd,
    pub path: PathBuf,
}

impl AsFd for DirFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl DirFd {
    /// Opens a directory the user named (an output folder, `--root`): symlinks in the
    /// user's own path are the user's choice and are followed.
    pub fn open(path: &Path) -> Result<DirFd> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::errno("cannot open folder", path, e))?;
        Ok(DirFd {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the child directory `name` WITHOUT following a symlink: if `name` is a
    /// symlink the open fails with ELOOP, so archive content can never make us write
    /// through a link planted in the destination tree.
    pub fn open_child(&self, name: &OsStr) -> std::result::Result<DirFd, Errno> {
        let fd = openat(
            self,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DirFd {
            fd,
            path: self.path.join(name),
        })
    }

    /// Creates a fresh `0600` temp file in this directory and returns its name. The
    /// caller owns its removal; [`DirFd::create_temp`] wraps it in a guard.
    /// `O_EXCL|O_NOFOLLOW`: the name must not exist, not even as a dangling symlink.
    pub fn create_temp_file(&self) -> Result<(String, File)> {
        let name = temp_name();
        let file = self
            .create_file(OsStr::new(&name))
            .map_err(|e| Error::errno("cannot create a temporary file in", &self.path, e))?;
        Ok((name, file))
    }

    /// Creates the new `0600` file `name` in this directory, `O_EXCL|O_NOFOLLOW` like a
    /// temp file. For a folder that is itself still hidden under a temp name (a restore
    /// stages a new folder whole), where the final name needs no temp of its own.
    pub fn create_file(&self, name: &OsStr) -> std::result::Result<File, Errno> {
        let fd = openat(
            self,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        Ok(File::from(fd))
    }

    /// A temp file that removes itself unless persisted.
    pub fn create_temp(&self) -> Result<TempFile<'_>> {
        let (name, file) = self.create_temp_file()?;
        Ok(TempFile {
            dir: self,
            name,
            file: Some(file),
            persisted: false,
        })
    }

    /// fsync of the directory itself: makes a rename or unlink in it durable.
    pub fn sync(&self) -> Result<()> {
        nix::unistd::fsync(self).map_err(|e| Error::errno("cannot sync folder", &self.path, e))
    }

    /// Removes temp files and temp folders (a restore stages a new folder whole under a
    /// temp name) of earlier forgekeep runs that were killed before they could clean up
    /// (their pid no longer exists). Best effort: a failure here only leaves a stale
    /// hidden temp behind, which the next run tries again.
    pub fn sweep_stale_temps(&self) -> usize {
        let mut removed = 0;
        for name in self.names() {
            if is_stale_temp(name.as_bytes()) && self.remove_all(&name, 0) {
                removed += 1;
            }
        }
        if removed > 0 {
            log::info!(
                "removed {removed} stale temp file(s) in {}",
                self.path.display()
            );
        }
        removed
    }

    /// The names in this directory, read through its descriptor (never by path).
    fn names(&self) -> Vec<std::ffi::OsString> {
        let listing = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        match std::fs::read_dir(&listing) {
            Ok(rd) => rd.flatten().map(|e| e.file_name()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Removes `name` and, if it is a folder, everything in it, through descriptors:
    /// each folder is opened `O_NOFOLLOW` relative to its parent and `unlinkat` never
    /// follows a link, so a link planted inside leads nowhere. Only for stale temp
    /// folders, whose whole content is the killed run's staging. Depth is bounded (a
    /// hostile tree must not exhaust the stack); what lies deeper stays for a person.
    fn remove_all(&self, name: &OsStr, depth: usize) -> bool {
        match self.unlink(name) {
            Ok(()) => return true,
            Err(Errno::EISDIR) if depth < MAX_SWEEP_DEPTH => {}
            Err(_) => return false,
        }
        let Ok(dir) = self.open_child(name) else {
            return false;
        };
        // A stale temp folder is emptied only if it is ours: one planted under such a
        // name by someone else is theirs to remove (root would otherwise empty it for
        // them, whatever was moved into it).
        let ours = nix::sys::stat::fstat(&dir)
            .is_ok_and(|st| depth > 0 || st.st_uid == nix::unistd::geteuid().as_raw());
        if !ours {
            return false;
        }
        for inner in dir.names() {
            dir.remove_all(&inner, depth + 1);
        }
        self.rmdir(name).is_ok()
    }

    pub fn unlink(&self, name: &OsStr) -> std::result::Result<(), Errno> {
        unlinkat(self, name, UnlinkatFlags::NoRemoveDir)
    }

    pub fn rmdir(&self, name: &OsStr) -> std::result::Result<(), Errno> {
        unlinkat(self, name, UnlinkatFlags::RemoveDir)
    }
}

/// A temporary file that is removed on drop unless [`TempFile::persist`] succeeded.
pub struct TempFile<'d> {
    dir: &'d DirFd,
    pub name: String,
    file: Option<File>,
    persisted: bool,
}

impl TempFile<'_> {
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("temp file used after close")
    }

    /// fsync the data, close, and rename onto `target` in the same directory.
    /// Without `replace` the rename fails if `target` exists (RENAME_NOREPLACE), so a
    /// concurrent writer can never be overwritten behind the user's back.
    pub fn persist(mut self, target: &OsStr, replace: bool) -> Result<()> {
        let path = self.dir.path.join(target);
        let file = self.file.take().expect("temp file persisted twice");
        file.sync_all()
            .map_err(|e| Error::io("cannot flush", &path, &e))?;
        drop(file);
        let flags = if replace {
            RenameFlags::empty()
        } else {
            RenameFlags::RENAME_NOREPLACE
        };
        renameat2(self.dir, self.name.as_str(), self.dir, target, flags).map_err(|e| {
            if e == Errno::EEXIST {
                Error::runtime(format!("{} already exists", path.display()))
                    .hint("choose another name, or pass --force to replace it")
            } else {
                Error::errno("cannot rename the temporary file to", &path, e)
            }
        })?;
        self.persisted = true;
        self.dir.sync()
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.persisted {
            // Cleanup only (no data is finished here): a leftover would be a 0600 hidden
            // file that the next run sweeps anyway.
            let _ = self.dir.unlink(OsStr::new(&self.name));
        }
    }
}

/// A file written front to back whose kernel writeback starts every 8 MiB, as soon as
/// they are written (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait): the
/// fsync or `syncfs` that later makes it durable then finds little left to do instead
/// of stalling on the whole file at once, and the disk works while we compute.
pub struct Writeback {
    file: File,
    written: u64,
    started: u64,
}

const WRITEBACK_EVERY: u64 = 8 << 20;

impl Writeback {
    pub fn new(file: File) -> Self {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Starts the writeback of what is not started yet, if it is at least `min` bytes.
    pub fn start_rest(&mut self, min: u64) {
        if self.written - self.started < min.max(1) {
            return;
        }
        // SAFETY: a plain syscall on a descriptor we own, with in-range offsets; it
        // only schedules writeback and its failure is harmless (fsync/syncfs follows).
        unsafe {
            nix::libc::sync_file_range(
                self.file.as_raw_fd(),
                self.started as i64,
                (self.written - self.started) as i64,
                nix::libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.started = self.written;
    }
}

/// Many small files written in a row (a restore's staging) whose flush to disk starts
/// while the writing goes on: every [`FLUSH_BEHIND_EVERY`] bytes of them (each file
/// counted with its inode), a helper thread runs `syncfs` on their file system, unless
/// one is already running and another waits. The `syncfs` that must make them durable
/// (before a restore's renames) then finds little left to write instead of all of them
/// at once (a third of a 50,000-file restore's wall time). These flushes only start the
/// same work earlier: durability still rests on that last `syncfs`, whose failure
/// counts, and so does any of theirs ([`FlushBehind::finish`]): `syncfs` reports a
/// write-back error once per open file, so a flush here that met one and kept it to
/// itself would leave the last one nothing to report. Large files start their own
/// writeback ([`Writeback`]).
#[derive(Default)]
pub struct FlushBehind {
    helper: Option<(
        std::sync::mpsc::SyncSender<OwnedFd>,
        Option<std::thread::JoinHandle<()>>,
    )>,
    pending: u64,
    /// The errno of the first flush of the helper that failed (0: none).
    failed: std::sync::Arc<std::sync::atomic::AtomicI32>,
}

const FLUSH_BEHIND_EVERY: u64 = 32 << 20;

/// What a small file costs the flush besides its bytes: its inode and folder entry.
const FLUSH_PER_FILE: u64 = 4096;

impl FlushBehind {
    /// A file of `bytes` was written in `dir`.
    pub fn wrote(&mut self, dir: &DirFd, bytes: u64) {
        self.pending += bytes + FLUSH_PER_FILE;
        if self.pending < FLUSH_BEHIND_EVERY {
            return;
        }
        self.pending = 0;
        let failed = self.failed.clone();
        let (helper, _) = self.helper.get_or_insert_with(|| {
            // One flush running and one waiting at most; a thread that cannot be
            // started leaves the channel closed and every flush to the last `syncfs`.
            let (tx, rx) = std::sync::mpsc::sync_channel::<OwnedFd>(1);
            let thread = std::thread::Builder::new()
                .name("flush-behind".into())
                .spawn(move || {
                    for fd in rx {
                        if let Err(e) = nix::unistd::syncfs(&fd) {
                            let _ = failed.compare_exchange(
                                0,
                                e as i32,
                                std::sync::atomic::Ordering::SeqCst,
                                std::sync::atomic::Ordering::SeqCst,
                            );
                        }
                    }
                });
            (tx, thread.ok())
        });
        // An open file of its own, not a dup of ours: write-back errors are reported
        // once per open file, and ours must still report them at the last `syncfs`.
        let own = openat(
            dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        if let Ok(fd) = own {
            let _ = helper.try_send(fd);
        }
    }

    /// Waits for the helper's flushes to end; the first failure any of them met.
    pub fn finish(&mut self) -> std::result::Result<(), Errno> {
        if let Some((tx, thread)) = self.helper.take() {
            drop(tx);
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
        match self.failed.load(std::sync::atomic::Ordering::SeqCst) {
            0 => Ok(()),
            e => Err(Errno::from_raw(e)),
        }
    }
}

impl std::io::Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.start_rest(WRITEBACK_EVERY);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
