//! What is at a destination now, read safely: the one content comparison that restore
//! ("is this file already what the archive holds?") and diff ("does the live file
//! differ?") share. Comparing some other way for some kinds of file (an SQLite database
//! by its content rather than its bytes) belongs here too.
//!
//! A recorded path may name anything on the live system: `/proc/self/pagemap` is a
//! regular file of size 0 with 256 GiB to read, a FIFO blocks an open, a device never
//! ends. So a live file is only opened with `O_NOFOLLOW | O_NONBLOCK` (a link or FIFO
//! swapped in is neither followed nor waited on), `fstat` must show a regular file of
//! the recorded size, and it is read for the recorded size and then ONE probe read of a
//! page: any byte past the recorded size means "different", without reading the rest.
//! (The probe is a page, not a byte: `/proc` files such as `pagemap` refuse reads that
//! are not a multiple of 8 bytes.)

use crate::archive::sums::{HashingReader, Sha256Sum};
use crate::fsx::DirFd;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

fn is_regular(f: &File) -> io::Result<bool> {
    let st = nix::sys::stat::fstat(f)?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG)
}

/// `path` opened for reading if it is a regular file (`None` if it is anything else).
pub fn open_regular(path: &Path) -> io::Result<Option<File>> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)?;
    Ok(is_regular(&f)?.then_some(f))
}

/// `name` in `dir` opened for reading if it is a regular file (`None` otherwise).
pub fn open_regular_at(dir: &DirFd, name: &OsStr) -> io::Result<Option<File>> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let f = File::from(fd);
    Ok(is_regular(&f)?.then_some(f))
}

/// The probe read after the recorded size.
const PROBE: usize = 4096;

/// Is there anything left to read in `f`?
fn has_more(f: &mut File) -> io::Result<bool> {
    let mut probe = [0u8; PROBE];
    loop {
        match f.read(&mut probe) {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The SHA-256 of the live file at `path` if it is a regular file of exactly `size`
/// bytes (reading at most `size` and one probe); `None` if it is not (another type, or
/// more or fewer bytes than recorded: either way, not the archived content).
pub fn digest(path: &Path, size: u64) -> io::Result<Option<Sha256Sum>> {
    let Some(mut f) = open_regular(path)? else {
        return Ok(None);
    };
    let mut r = HashingReader::new((&mut f).take(size));
    io::copy(&mut r, &mut io::sink())?;
    if r.count != size {
        return Ok(None);
    }
    let sum = r.finish();
    Ok((!has_more(&mut f)?).then_some(sum))
}

/// Compares the live file with archive content as it streams past, in step with it.
pub struct Comparison {
    live: Option<File>,
    buf: Vec<u8>,
}

impl Comparison {
    /// Against `live` (`None`: nothing comparable, never the same).
    pub fn new(live: Option<File>) -> Comparison {
        Comparison {
            live,
            buf: Vec::new(),
        }
    }

    /// Still the same so far?
    pub fn same(&self) -> bool {
        self.live.is_some()
    }

    /// The next piece of the archive's content.
    pub fn feed(&mut self, data: &[u8]) {
        let Some(f) = &mut self.live else { return };
        self.buf.resize(data.len(), 0);
        if f.read_exact(&mut self.buf).is_err() || self.buf != data {
            self.live = None;
        }
    }

    /// After the last piece: the same only if the live file has no byte more (a file
    /// whose size says 0 may still have content, as `/proc` files do).
    pub fn finish(mut self) -> bool {
        let Some(f) = &mut self.live else {
            return false;
        };
        matches!(has_more(f), Ok(false))
    }
}
