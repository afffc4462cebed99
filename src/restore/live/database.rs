//! SQLite databases compared by what they hold, not by SQLite's bookkeeping.
//!
//! A database in an archive is the copy SQLite's online backup made (`collect::sqlite`).
//! That copy holds every page of the database as SQLite read it, byte for byte, except
//! for header fields that SQLite writes as bookkeeping (SQLite's `backup.c` and
//! `pager.c`, and the file format, <https://www.sqlite.org/fileformat2.html>; seen on
//! real copies too). A database nobody has written since its backup still differs from
//! its copy in them, so a byte comparison called every database "changed" right after
//! its backup, and `restore --force` then rolled the service's database back (issue 13):
//!
//! * 24, the file change counter, and 92, the version-valid-for number: the copy's own
//!   commit sets both (1 on a new file); the live file counts its own transactions;
//! * 40, the schema cookie: the backup sets it to the destination's old cookie plus one
//!   (1 on a new file), so that connections to the copy re-read the schema;
//! * 96, `SQLITE_VERSION_NUMBER` of the library that wrote the file last (forgekeep's
//!   SQLite for the copy, the service's for the live file);
//! * 18 and 19, the file format versions: 2 in WAL mode, 1 otherwise. Copied from the
//!   source, but a database switched to or from WAL since its backup holds the same data.
//!
//! None of them is content: the schema itself is stored in pages (`sqlite_schema`), and
//! every page and every other header field (page size, in-header page count, freelist,
//! user version, application id, …) is compared, as is the length.
//!
//! What the live database holds is what SQLite would read, which is not always its file.
//! In WAL mode, committed pages wait in the `-wal` file until a checkpoint copies them
//! back (SQLite reads a `-wal` that exists whatever the header says): the file alone can
//! look unchanged while new rows sit in the WAL. So when a `-wal` with content exists,
//! the comparison is with a snapshot that SQLite itself makes with its online backup,
//! exactly as the backup made the archived copy (same private temp folder, same
//! safeguards); the temp folder needs room for it, as it does for the nightly backup. In
//! rollback-journal mode the file is the database, except while a rollback journal
//! begins with its header: a write has reached the file, or was interrupted there and
//! SQLite would roll it back before reading. Its content is not settled, and such a
//! database is never called unchanged. (A transaction that has only journalled has not
//! touched the file: what SQLite reads is the file.)
//!
//! forgekeep opens the file and its companions only as regular files (`O_NOFOLLOW |
//! O_NONBLOCK`, then `fstat`). For a snapshot SQLite opens the database by name (with
//! `O_NOFOLLOW`), only after forgekeep has seen a regular database file there, and the
//! snapshot counts only if the name leads to that same file before and after. The
//! folder's owner could still swap something in for that instant (as during a backup):
//! that can stall or fail the comparison, never make anything be written.

use crate::error::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

/// The first 16 bytes of every SQLite 3 database file.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The database header: the first 100 bytes of page 1.
const HEADER: u64 = 100;

/// Header fields SQLite rewrites without changing what the database holds (see above).
const BOOKKEEPING: [Range<u64>; 4] = [18..20, 24..28, 40..44, 92..100];

/// The first 8 bytes of a rollback journal's header. SQLite writes them when it syncs
/// the journal, just before it changes pages in the database file, and zeroes them to
/// end a journal it keeps (`journal_mode=PERSIST`): while they are there, the file may
/// hold a write that is not committed (or was interrupted, and will be rolled back).
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// Does the file begin with the SQLite header? (Read at offset 0: the file's position
/// does not move.)
pub fn is_database(f: &File) -> io::Result<bool> {
    begins_with(f, MAGIC)
}

fn begins_with(f: &File, magic: &[u8]) -> io::Result<bool> {
    let mut head = vec![0u8; magic.len()];
    match f.read_exact_at(&mut head, 0) {
        Ok(()) => Ok(head == magic),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Zeroes the bookkeeping fields in `buf`, which holds a database's bytes from `pos`.
pub fn mask(pos: u64, buf: &mut [u8]) {
    let end = pos + buf.len() as u64;
    for field in BOOKKEEPING {
        let (from, to) = (field.start.max(pos), field.end.min(end));
        if from < to {
            buf[(from - pos) as usize..(to - pos) as usize].fill(0);
        }
    }
}

/// Are `live` and `archived`, two databases' bytes from `pos` (of one length), the same
/// outside the bookkeeping fields? (`live` is masked in place.)
pub fn same(pos: u64, live: &mut [u8], archived: &[u8]) -> bool {
    let head = HEADER.saturating_sub(pos).min(archived.len() as u64) as usize;
    if head == 0 {
        return live == archived;
    }
    let mut theirs = [0u8; HEADER as usize];
    theirs[..head].copy_from_slice(&archived[..head]);
    mask(pos, &mut theirs[..head]);
    mask(pos, &mut live[..head]);
    live[..head] == theirs[..head] && live[head..] == archived[head..]
}

/// A reader that zeroes the bookkeeping fields as they pass (for digests of databases).
pub struct Masked<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Masked<R> {
    pub fn new(inner: R) -> Masked<R> {
        Masked { inner, pos: 0 }
    }
}

impl<R: Read> Read for Masked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        mask(self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// `name` with a companion's suffix (`-wal`, `-journal`).
pub fn companion_name(name: &OsStr, suffix: &str) -> OsString {
    let mut s = name.to_owned();
    s.push(suffix);
    s
}

/// What SQLite would read as the database at `path`, whose file `main` was opened as a
/// regular file beginning with the SQLite header: `main` itself when it is the whole
/// database; a snapshot when a `-wal` holds pages; `None` when the content is not
/// settled or cannot be known (a rollback journal in use, a companion that is not a
/// regular file, the name swapped for another file): never the same as anything.
/// `companion(suffix)` opens a companion as [`super::open_regular`] does.
pub fn view(
    main: File,
    path: &Path,
    companion: impl Fn(&str) -> io::Result<Option<File>>,
) -> Result<Option<File>> {
    let journal = open_companion(path, "-journal", &companion)?;
    let wal = open_companion(path, "-wal", &companion)?;
    let read = |suffix: &str, e: io::Error| {
        Error::io(
            "cannot read",
            Path::new(&companion_name(path.as_os_str(), suffix)),
            &e,
        )
    };
    match journal {
        Companion::Absent => {}
        Companion::Other => return Ok(None),
        Companion::Regular(f) => {
            if begins_with(&f, &JOURNAL_MAGIC).map_err(|e| read("-journal", e))? {
                return Ok(None);
            }
        }
    }
    match wal {
        Companion::Absent => Ok(Some(main)),
        Companion::Other => Ok(None),
        Companion::Regular(f) => match f.metadata().map_err(|e| read("-wal", e))?.len() {
            0 => Ok(Some(main)),
            _ => snapshot(&main, path),
        },
    }
}

/// A companion file as forgekeep finds it.
enum Companion {
    Absent,
    Regular(File),
    /// Not a regular file (a FIFO, a link…): never read, and SQLite must not read it
    /// either; what the database holds cannot be known.
    Other,
}

fn open_companion(
    path: &Path,
    suffix: &str,
    companion: &impl Fn(&str) -> io::Result<Option<File>>,
) -> Result<Companion> {
    match companion(suffix) {
        Ok(Some(f)) => Ok(Companion::Regular(f)),
        Ok(None) => Ok(Companion::Other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Companion::Absent),
        // A link in its place (`O_NOFOLLOW`).
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => Ok(Companion::Other),
        Err(e) => Err(Error::io(
            "cannot open",
            Path::new(&companion_name(path.as_os_str(), suffix)),
            &e,
        )),
    }
}

/// The database as SQLite reads it through its `-wal`, if `path` still names `main`
/// (an `lstat`, as SQLite opens the name with `O_NOFOLLOW`) before and after.
fn snapshot(main: &File, path: &Path) -> Result<Option<File>> {
    let ours = main
        .metadata()
        .map_err(|e| Error::io("cannot examine", path, &e))?;
    let named_ours = || {
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.dev() == ours.dev() && m.ino() == ours.ino() && m.is_file())
    };
    if !named_ours() {
        return Ok(None);
    }
    let (copy, _) = crate::collect::sqlite::snapshot(path)?;
    Ok(named_ours().then_some(copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_covers_exactly_the_bookkeeping_fields_in_any_chunking() {
        let original: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8 + 1).collect();
        let mut whole = original.clone();
        mask(0, &mut whole);
        for i in 0..300u64 {
            let masked = BOOKKEEPING.iter().any(|r| r.contains(&i));
            assert_eq!(whole[i as usize] == 0, masked, "byte {i}");
        }
        // The same result whatever the chunks a stream is read in.
        for size in [1, 7, 18, 19, 64, 100, 101] {
            let mut pieces = original.clone();
            let mut pos = 0;
            for chunk in pieces.chunks_mut(size) {
                mask(pos, chunk);
                pos += chunk.len() as u64;
            }
            assert_eq!(pieces, whole, "chunks of {size}");
        }
    }

    /// `view` of the database at `path` with nothing but its companions on disk.
    fn view_of(path: &Path) -> Option<u64> {
        let main = super::super::open_regular(path).unwrap().unwrap();
        let companion =
            |s: &str| super::super::open_regular(Path::new(&companion_name(path.as_os_str(), s)));
        view(main, path, companion)
            .unwrap()
            .map(|f| f.metadata().unwrap().ino())
    }

    #[test]
    fn the_file_is_the_database_unless_a_companion_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.sqlite");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES(1);")
            .unwrap();
        let ino = std::fs::metadata(&db).unwrap().ino();
        let journal = companion_name(db.as_os_str(), "-journal");
        let wal = companion_name(db.as_os_str(), "-wal");
        assert_eq!(view_of(&db), Some(ino));
        // A journal whose header was zeroed (`journal_mode=PERSIST`) or that is still
        // being written (the header comes at its sync): the file is settled.
        std::fs::write(&journal, [0u8; 512]).unwrap();
        assert_eq!(view_of(&db), Some(ino));
        std::fs::write(&journal, []).unwrap();
        assert_eq!(view_of(&db), Some(ino));
        // A journal with its header: pages in the file may be a write's, not settled.
        let mut hot = JOURNAL_MAGIC.to_vec();
        hot.resize(512, 0);
        std::fs::write(&journal, &hot).unwrap();
        assert_eq!(view_of(&db), None);
        std::fs::remove_file(&journal).unwrap();
        // An empty WAL holds nothing; a FIFO or a link in its place is never read (nor
        // waited on): what the database holds cannot be known.
        std::fs::write(&wal, []).unwrap();
        assert_eq!(view_of(&db), Some(ino));
        std::fs::remove_file(&wal).unwrap();
        nix::unistd::mkfifo(
            Path::new(&wal),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert_eq!(view_of(&db), None);
        std::fs::remove_file(&wal).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &wal).unwrap();
        assert_eq!(view_of(&db), None);
    }

    #[test]
    fn same_ignores_the_bookkeeping_and_nothing_else() {
        let a: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        for i in 0..200usize {
            let mut b = a.clone();
            b[i] ^= 0xff;
            let bookkeeping = BOOKKEEPING.iter().any(|r| r.contains(&(i as u64)));
            for size in [1, 13, 100, 200] {
                let mut verdict = true;
                for (k, (x, y)) in b.chunks(size).zip(a.chunks(size)).enumerate() {
                    let mut live = x.to_vec();
                    verdict &= same((k * size) as u64, &mut live, y);
                }
                assert_eq!(verdict, bookkeeping, "byte {i}, chunks of {size}");
            }
        }
    }
}
