//! What is at a destination now, read safely: the one content comparison that restore
//! ("is this file already what the archive holds?") and diff ("does the live file
//! differ?") share. An SQLite database is compared by what SQLite reads from it, not by
//! its bytes ([`database`]).
//!
//! A recorded path may name anything on the live system: `/proc/self/pagemap` is a
//! regular file of size 0 with 256 GiB to read, a FIFO blocks an open, a device never
//! ends. So a live file is only opened with `O_NOFOLLOW | O_NONBLOCK` (a link or FIFO
//! swapped in is neither followed nor waited on), `fstat` must show a regular file, and
//! only its first 16 bytes are read (is it a database?) unless it has the recorded size.
//! It is then read for the recorded size and ONE probe read of a page: any byte past the
//! recorded size means "different", without reading the rest. (The probe is a page, not
//! a byte: `/proc` files such as `pagemap` refuse reads that are not a multiple of 8
//! bytes.)

pub mod database;

use crate::archive::sums::{HashingReader, Sha256Sum};
use crate::error::{Error, Result};
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
    match open_regular(path)? {
        Some(f) => digest_of(f, size, false),
        None => Ok(None),
    }
}

/// The digest of the live SQLite database at `path` as SQLite reads it, its bookkeeping
/// masked ([`database::Masked`]), if it is one of `size` bytes; `None` if it is not a
/// regular file, not a database, of another size, or not settled ([`database::view`]).
pub fn database_digest(path: &Path, size: u64) -> Result<Option<Sha256Sum>> {
    let io = |e: io::Error| Error::io("cannot read", path, &e);
    let Some(f) = open_regular(path).map_err(io)? else {
        return Ok(None);
    };
    if !database::is_database(&f).map_err(io)? {
        return Ok(None);
    }
    let companion = |suffix: &str| {
        open_regular(Path::new(&database::companion_name(
            path.as_os_str(),
            suffix,
        )))
    };
    match database::view(f, path, companion)? {
        Some(view) => digest_of(view, size, true).map_err(io),
        None => Ok(None),
    }
}

/// The digest of `size` bytes of `f` (bookkeeping masked for a database), if it has
/// exactly that many.
fn digest_of(mut f: File, size: u64, masked: bool) -> io::Result<Option<Sha256Sum>> {
    let content = (&mut f).take(size);
    let content: Box<dyn Read + '_> = if masked {
        Box::new(database::Masked::new(content))
    } else {
        Box::new(content)
    };
    let mut r = HashingReader::new(content);
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
    /// An SQLite database: compared without its bookkeeping ([`database::same`]).
    database: bool,
    /// How far the comparison has got.
    pos: u64,
}

impl Comparison {
    /// Against `live` (`None`: nothing comparable, never the same).
    pub fn new(live: Option<File>) -> Comparison {
        Comparison {
            live,
            buf: Vec::new(),
            database: false,
            pos: 0,
        }
    }

    /// Against whatever is at `name` in `dir`: a database as SQLite reads it (a
    /// snapshot when its `-wal` holds pages), a regular file of `size` bytes byte for
    /// byte, anything else never the same.
    pub fn at(dir: &DirFd, name: &OsStr, size: u64) -> Result<Comparison> {
        let path = dir.path.join(name);
        let io = |e: io::Error| Error::io("cannot read", &path, &e);
        let Some(f) = open_regular_at(dir, name).map_err(io)? else {
            return Ok(Comparison::new(None));
        };
        if database::is_database(&f).map_err(io)? {
            let companion =
                |suffix: &str| open_regular_at(dir, &database::companion_name(name, suffix));
            let view = database::view(f, &path, companion)?;
            return Ok(Comparison {
                database: true,
                ..Comparison::new(view)
            });
        }
        let sized = f.metadata().map_err(io)?.len() == size;
        Ok(Comparison::new(sized.then_some(f)))
    }

    /// Is the live file an SQLite database?
    pub fn is_database(&self) -> bool {
        self.database
    }

    /// Still the same so far?
    pub fn same(&self) -> bool {
        self.live.is_some()
    }

    /// The next piece of the archive's content.
    pub fn feed(&mut self, data: &[u8]) {
        let Some(f) = &mut self.live else { return };
        self.buf.resize(data.len(), 0);
        let same = f.read_exact(&mut self.buf).is_ok()
            && if self.database {
                database::same(self.pos, &mut self.buf, data)
            } else {
                self.buf == data
            };
        self.pos += data.len() as u64;
        if !same {
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
