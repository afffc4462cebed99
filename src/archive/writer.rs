//! Writing an archive: collected entries → tar → zstd → age → the output.
//!
//! Streaming end to end: each file is read once, through one descriptor, in 256 KiB
//! pieces, so memory stays bounded whatever the data size. Every stage is finished
//! explicitly and in order (tar, zstd, age, armor), because each one's `Drop` would
//! swallow the error that tells a truncated archive from a good one.

use super::manifest::{Entry, Kind, Manifest};
use super::squeeze::{ChunkOut, Squeeze};
use super::sums::{self, HashingReader, HashingWriter};
use super::{MANIFEST_MEMBER, MANIFEST_SIG_MEMBER, SUMS_MEMBER, SUMS_SIG_MEMBER};
use crate::collect::{Collected, StatSnapshot};
use crate::error::{Error, Result};
use crate::keys::Encryption;
use age::armor::{ArmoredWriter, Format};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub level: i32,
    pub armor: bool,
    /// zstd worker threads (0 = compress on the calling thread).
    pub threads: u32,
    /// Advanced by the bytes of content read (a progress bar on a terminal).
    pub progress: Option<indicatif::ProgressBar>,
    /// Sign the archive with this key (`forgekeep/manifest.json.sig` and
    /// `forgekeep/SHA256SUMS.sig`).
    pub signing: Option<std::sync::Arc<crate::signature::SigningKey>>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            level: 3,
            armor: false,
            threads: default_threads(),
            progress: None,
            signing: None,
        }
    }
}

/// One zstd worker per core (at most 4): compression then overlaps with reading and
/// encryption, which is how `zstd -T0` in a shell pipeline gets its speed.
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get().min(4) as u32)
        .unwrap_or(1)
}

#[derive(Debug, Default, Clone)]
pub struct WriteSummary {
    pub files: usize,
    pub content_bytes: u64,
}

/// The age layer, armored or not, finished explicitly.
enum AgeSink<W: Write> {
    Binary(age::stream::StreamWriter<W>),
    Armored(age::stream::StreamWriter<ArmoredWriter<W>>),
}

impl<W: Write> Write for AgeSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            AgeSink::Binary(w) => w.write(buf),
            AgeSink::Armored(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            AgeSink::Binary(w) => w.flush(),
            AgeSink::Armored(w) => w.flush(),
        }
    }
}

impl<W: Write> AgeSink<W> {
    fn new(out: W, enc: &Encryption, armor: bool) -> io::Result<Self> {
        let encryptor = match enc {
            Encryption::Recipients(_) => {
                age::Encryptor::with_recipients(enc.recipients().into_iter()).map_err(|e| {
                    io::Error::other(format!("cannot encrypt to these recipients: {e}"))
                })?
            }
            Encryption::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
        };
        Ok(if armor {
            AgeSink::Armored(
                encryptor.wrap_output(ArmoredWriter::wrap_output(out, Format::AsciiArmor)?)?,
            )
        } else {
            AgeSink::Binary(encryptor.wrap_output(out)?)
        })
    }

    /// Writes age's last (flagged) chunk, then the armor's end line.
    fn finish(self) -> io::Result<W> {
        match self {
            AgeSink::Binary(w) => w.finish(),
            AgeSink::Armored(w) => w.finish()?.finish(),
        }
    }
}

/// Runs the age layer (encryption and the writes to the output) on a thread of its own,
/// fed through a small bounded queue: reading, hashing and feeding zstd on the calling
/// thread, compression on zstd's workers and encryption here then overlap, as the three
/// processes of a `tar | zstd | age` pipeline do. At most `QUEUE` chunks of `CHUNK`
/// bytes wait in between (2 MiB).
struct Offload<W: Write + Send + 'static> {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    worker: Option<std::thread::JoinHandle<io::Result<W>>>,
}

const CHUNK: usize = 256 << 10;
const QUEUE: usize = 8;

impl<W: Write + Send + 'static> Offload<W> {
    fn start(mut sink: AgeSink<W>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let worker = std::thread::spawn(move || {
            for chunk in rx {
                sink.write_all(&chunk)?;
            }
            // The sender is gone: every byte is in; write the final chunk and armor end.
            sink.finish()
        });
        Offload {
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
            worker: Some(worker),
        }
    }

    /// The worker's own error (disk full...) once it has stopped.
    fn worker_error(&mut self) -> io::Error {
        self.tx = None;
        match self.worker.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the archive writer thread panicked"),
            _ => io::Error::other("the archive writer stopped"),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(chunk).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(self.worker_error())
        }
    }

    /// Sends what is left, closes the queue and waits for the worker to finish the age
    /// stream; returns the output.
    fn finish(mut self) -> io::Result<W> {
        self.send()?;
        self.tx = None;
        match self.worker.take().expect("finished once").join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the archive writer thread panicked")),
        }
    }
}

/// zstd compresses straight into the chunk that is sent next.
impl<W: Write + Send + 'static> ChunkOut for Offload<W> {
    fn chunk(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn ship(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn output_error(out_name: &Path, e: &io::Error) -> Error {
    Error::io("cannot write the archive", out_name, e)
}

/// Writes the whole archive to `out` and returns it, finished (but not synced: the
/// caller owns the file and its fsync/rename).
pub fn write_archive<W: Write + Send + 'static>(
    out: W,
    out_name: &Path,
    enc: &Encryption,
    manifest: &Manifest,
    items: &[Collected],
    opts: &WriteOptions,
) -> Result<(W, WriteSummary)> {
    let oe = |e: io::Error| output_error(out_name, &e);
    let sink = Offload::start(AgeSink::new(out, enc, opts.armor).map_err(oe)?);
    let z = Squeeze::new(sink, opts.level, opts.threads).map_err(oe)?;
    let mut tar = tar::Builder::new(z);
    tar.follow_symlinks(false);

    // 1. The manifest, first, and its signature right after it: a reader knows who
    //    made the archive before it acts on a single entry (a restore refuses an
    //    untrusted archive before it writes anything).
    let json_sum = append_manifest(&mut tar, manifest).map_err(oe)?;
    // SHA256SUMS lists the manifest too, so that `sha256sum -c` (and the signature
    // over SHA256SUMS) covers every entry's path, type, owner and mode, not only the
    // files' content. The manifest's own signature is over that same line (what
    // `sha256sum forgekeep/manifest.json` prints), so a reader checks it as the manifest
    // streams past without holding it.
    let mut sums_text = sums::line(&json_sum, MANIFEST_MEMBER);
    // Its final size, give or take escaped names: no doubling of a list that can take
    // megabytes (67 bytes and the name per file).
    sums_text.reserve(
        items
            .iter()
            .filter(|i| i.entry.kind == Kind::File)
            .map(|i| 67 + i.entry.member_name().len())
            .sum(),
    );
    if let Some(key) = &opts.signing {
        append_signature(
            &mut tar,
            MANIFEST_SIG_MEMBER,
            &key.sign(sums_text.as_bytes())?,
        )
        .map_err(oe)?;
    }

    // 2. The entries, in manifest order.
    let mut summary = WriteSummary::default();
    let mut piece = vec![0u8; READ_PIECE];
    for item in items {
        let e = &item.entry;
        let mut h = entry_header(e);
        match e.kind {
            Kind::Dir => tar
                .append_data(&mut h, e.member_name(), io::empty())
                .map_err(oe)?,
            Kind::Symlink => append_symlink(
                &mut tar,
                &mut h,
                e.member_name(),
                e.target.as_deref().unwrap_or(""),
            )
            .map_err(oe)?,
            Kind::File => {
                let (sum, count) = append_file(&mut tar, &mut h, item, out_name, &mut piece)?;
                if let Some(p) = &opts.progress {
                    p.inc(count);
                }
                sums_text.push_str(&sums::line(&sum, e.member_name()));
                summary.files += 1;
                summary.content_bytes += count;
            }
        }
    }

    // 3. The checksums, last, then their signature: the one a plain-tools recovery
    //    checks with `ssh-keygen -Y verify`.
    let mut h = member_header(sums_text.len() as u64);
    tar.append_data(&mut h, SUMS_MEMBER, sums_text.as_bytes())
        .map_err(oe)?;
    if let Some(key) = &opts.signing {
        append_signature(&mut tar, SUMS_SIG_MEMBER, &key.sign(sums_text.as_bytes())?)
            .map_err(oe)?;
    }

    // 4. Finish every layer, innermost first; each one can fail (disk full) and must.
    let z = tar.into_inner().map_err(oe)?;
    let sink = z.finish().map_err(oe)?;
    let out = sink.finish().map_err(oe)?;
    Ok((out, summary))
}

/// Appends the manifest without holding its text (megabytes for many files): serialised
/// once to learn its size and checksum for the header and SHA256SUMS, then again into
/// the archive, checked against the first.
fn append_manifest<W: Write>(
    tar: &mut tar::Builder<W>,
    manifest: &Manifest,
) -> io::Result<sums::Sha256Sum> {
    let mut measure = HashingWriter::new(io::sink());
    manifest.write_json(&mut measure)?;
    let (sum, len) = measure.finish();
    let mut h = member_header(len);
    tar.append_data(&mut h, MANIFEST_MEMBER, io::empty())?;
    let mut out = HashingWriter::new(tar.get_mut());
    manifest.write_json(&mut out)?;
    if out.finish() != (sum, len) {
        return Err(io::Error::other(
            "the manifest serialised differently twice",
        ));
    }
    pad_member(tar.get_mut(), len).map(|()| sum)
}

/// Zeros after a member's content, up to the next 512-byte tar block.
fn pad_member<W: Write>(w: &mut W, len: u64) -> io::Result<()> {
    let pad = (512 - len % 512) % 512;
    w.write_all(&[0u8; 512][..pad as usize])
}

fn append_signature<W: Write>(
    tar: &mut tar::Builder<W>,
    member: &str,
    sig: &[u8],
) -> io::Result<()> {
    let mut h = member_header(sig.len() as u64);
    tar.append_data(&mut h, member, sig)
}

/// Writes an archive to `dir/name` the safe way: a hidden `0600` temp file in `dir`
/// (never readable by others, not even for a moment), every layer finished, fsync,
/// rename (refusing to replace an existing file unless `replace`), fsync of `dir`.
/// On any failure the temp file is removed and an earlier archive is untouched.
pub fn write_archive_file(
    dir: &Path,
    name: &std::ffi::OsStr,
    replace: bool,
    enc: &Encryption,
    manifest: &Manifest,
    items: &[Collected],
    opts: &WriteOptions,
) -> Result<WriteSummary> {
    let dirfd = crate::fsx::DirFd::open(dir)?;
    dirfd.sweep_stale_temps();
    let target = dir.join(name);
    let mut temp = dirfd.create_temp()?;
    let handle = temp
        .file()
        .try_clone()
        .map_err(|e| Error::io("cannot write", &target, &e))?;
    let (buf, summary) = write_archive(
        io::BufWriter::with_capacity(1 << 16, crate::fsx::Writeback::new(handle)),
        &target,
        enc,
        manifest,
        items,
        opts,
    )?;
    buf.into_inner()
        .map_err(|e| Error::io("cannot write the archive", &target, e.error()))?;
    temp.persist(name, replace)?;
    Ok(summary)
}

/// Bytes of file content read at a time (tar's own copy, through `dyn Read`, would take
/// 8 KiB): one read, one hash update while the piece is in cache, one write to zstd.
const READ_PIECE: usize = 256 << 10;

/// Appends one file, read through one descriptor and hashed on the way. Its error is
/// the source's (changed, unreadable) or the output's (disk full), told apart here.
fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    item: &Collected,
    out_name: &Path,
    piece: &mut [u8],
) -> Result<(sums::Sha256Sum, u64)> {
    let e = &item.entry;
    let path = Path::new(&e.path);
    let file = match &item.content {
        // A database snapshot: read from its start through a descriptor of our own.
        Some(snapshot) => {
            let mut f = snapshot
                .try_clone()
                .map_err(|err| Error::io("cannot read", path, &err))?;
            f.seek(io::SeekFrom::Start(0))
                .map_err(|err| Error::io("cannot read", path, &err))?;
            f
        }
        None => open_source(path, &item.stat)?,
    };
    let oe = |err: io::Error| output_error(out_name, &err);
    // The header through tar (it knows GNU long names; with no data it writes the header
    // alone), then the content and its padding to 512 bytes by us, in large pieces.
    tar.append_data(h, e.member_name(), io::empty())
        .map_err(oe)?;
    let mut reader = HashingReader::new(file.take(e.size));
    loop {
        let n = match reader.read(piece) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Error::io("cannot read", path, &err)),
        };
        tar.get_mut().write_all(&piece[..n]).map_err(oe)?;
    }
    let (file, sum, count) = reader.into_parts();
    if count != e.size {
        return Err(changed_while_read(&e.path));
    }
    pad_member(tar.get_mut(), count).map_err(oe)?;
    still_same(file.get_ref(), &e.path, &item.stat)?;
    Ok((sum, count))
}

/// Appends a symlink with its target stored byte for byte. (`Builder::append_link`
/// normalises the target as a path, turning `/` or `a//b` into something else, and the
/// reader would then rightly refuse the archive.) Targets of 100 bytes or more go in a
/// GNU long-link (`K`) record, as GNU tar writes them.
fn append_symlink<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    path: &str,
    target: &str,
) -> io::Result<()> {
    let t = target.as_bytes();
    if t.len() < 100 {
        h.set_link_name_literal(t)?;
    } else {
        let mut k = tar::Header::new_gnu();
        k.as_gnu_mut().expect("gnu header").name[..13].copy_from_slice(b"././@LongLink");
        k.set_mode(0o644);
        k.set_uid(0);
        k.set_gid(0);
        k.set_mtime(0);
        k.set_size(t.len() as u64 + 1);
        k.set_entry_type(tar::EntryType::GNULongLink);
        k.set_cksum();
        tar.append(&k, t.chain(&[0u8][..]))?;
        h.set_link_name_literal(&t[..99])?;
    }
    tar.append_data(h, path, io::empty())
}

/// A header for forgekeep's own members (manifest, SHA256SUMS): 0600, owned by the
/// caller, timestamped now.
fn member_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o600);
    h.set_uid(nix::unistd::geteuid().as_raw() as u64);
    h.set_gid(nix::unistd::getegid().as_raw() as u64);
    h.set_mtime(jiff::Timestamp::now().as_second().max(0) as u64);
    h
}

/// The tar header of an entry: mode, uid, gid, user and group names, mtime, so that GNU
/// tar restores ownership by name too (`tar -x --same-owner`).
pub fn entry_header(e: &Entry) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(match e.kind {
        Kind::File => tar::EntryType::Regular,
        Kind::Dir => tar::EntryType::Directory,
        Kind::Symlink => tar::EntryType::Symlink,
    });
    h.set_size(if e.kind == Kind::File { e.size } else { 0 });
    h.set_mode(e.mode);
    h.set_uid(e.uid as u64);
    h.set_gid(e.gid as u64);
    h.set_mtime(e.mtime.max(0) as u64);
    // GNU headers hold names up to 31 bytes; longer ones stay in the manifest only.
    if let Some(u) = &e.user {
        let _ = h.set_username(u);
    }
    if let Some(g) = &e.group {
        let _ = h.set_groupname(g);
    }
    h
}

/// Opens a source file for reading through ONE descriptor: `O_NOFOLLOW` (a symlink
/// swapped in since the walk fails with ELOOP), `O_NONBLOCK` (a FIFO swapped in cannot
/// block the backup), then `fstat` must show the same file the walk saw.
fn open_source(path: &Path, seen: &StatSnapshot) -> Result<File> {
    crate::collect::open_as_walked(path, seen)
        .map_err(|e| Error::io("cannot read", path, &e))?
        .ok_or_else(|| changed_while_read(&path.display().to_string()))
}

/// After reading: size and mtime must not have moved, or the copy may be torn.
fn still_same(file: &File, path: &str, seen: &StatSnapshot) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot read", Path::new(path), &e))?;
    if meta.size() != seen.size
        || meta.mtime() != seen.mtime
        || meta.mtime_nsec() != seen.mtime_nsec
    {
        return Err(changed_while_read(path));
    }
    Ok(())
}

fn changed_while_read(path: &str) -> Error {
    Error::runtime(format!(
        "{path} changed while it was read [changed-while-read]; no archive was written"
    ))
    .hint("run the backup again when the service is quiet (stop it, or back up its database with its own online backup)")
}
