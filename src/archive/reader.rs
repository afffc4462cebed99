//! Reading an archive: input → age → zstd → tar → validated entries.
//!
//! Archive content is UNTRUSTED. age gives confidentiality, not proof of origin: anyone
//! holding the public recipient (it sits on the backed-up host, by design) can make an
//! archive that decrypts. So every member is checked before anyone acts on it:
//!
//! * the manifest comes first and must be self-consistent: normalised absolute paths,
//!   no duplicates, every entry inside a source it records, nothing below a symlink;
//! * each tar member must be the next manifest entry, with the same type, size, mode,
//!   owner and link target; hard links, devices, FIFOs and anything else are refused;
//! * `SHA256SUMS` comes last and must match the content hashed on the way;
//! * nothing may follow it, and the streams are drained to their end so that age's
//!   final-chunk flag and zstd's checksum are checked (a truncation is noticed).
//!
//! One refused member refuses the whole archive. Consumers ([`Visitor`]) see each entry
//! as it streams past, but must treat what they did as provisional until
//! [`read_archive`] returns `Ok`.

use super::manifest::{Entry, Kind, Manifest, Role, MAX_MANIFEST_BYTES};
use super::sums::{self, HashingReader, Sha256Sum};
use super::{MANIFEST_MEMBER, SUMS_MEMBER, ZSTD_WINDOW_LOG_MAX};
use crate::error::{Error, ExitCode, Result};
use crate::keys::Keyring;
use std::collections::HashMap;
use std::io::{self, BufReader, Read};

/// Receives entries as they are read and validated.
pub trait Visitor {
    /// Called once, before any entry, with the validated manifest.
    fn manifest(&mut self, _manifest: &Manifest) -> Result<()> {
        Ok(())
    }

    /// Called for every entry in manifest order. For files, `data` yields the content;
    /// what the visitor leaves unread is drained (and hashed) by the reader.
    fn entry(&mut self, _index: usize, _entry: &Entry, _data: &mut dyn Read) -> Result<()> {
        Ok(())
    }
}

/// A visitor that only validates (verify, list).
pub struct NoVisitor;
impl Visitor for NoVisitor {}

/// What a complete, validated read found.
pub struct ReadArchive {
    pub manifest: Manifest,
    /// SHA-256 of each file entry, by manifest index (`None` for dirs and links).
    pub digests: Vec<Option<Sha256Sum>>,
    pub content_bytes: u64,
}

/// What the input side reports to the reading side, shared across the decrypt thread.
#[derive(Default)]
struct InputState {
    /// A read error of the input itself (the file or pipe), as opposed to bad content.
    failed: std::sync::Mutex<Option<io::Error>>,
    /// Set once age has parsed the header; until then reads are capped.
    header_done: std::sync::atomic::AtomicBool,
}

/// The largest age header accepted. Real headers are a few hundred bytes per recipient;
/// without a cap, input without a newline (`/dev/zero`) would be buffered forever.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Wraps the input: remembers its read errors (reported as I/O errors, not as a damaged
/// archive) and bounds how much may be read before the age header is complete.
struct InputTracker<R> {
    inner: R,
    read: u64,
    state: std::sync::Arc<InputState>,
}

impl<R: Read> Read for InputTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::sync::atomic::Ordering;
        if self.read > MAX_HEADER_BYTES && !self.state.header_done.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no age header in the first MiB",
            ));
        }
        let n = self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                let mut failed = self.state.failed.lock().unwrap_or_else(|p| p.into_inner());
                *failed = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Maps age's header-stage errors to exit codes: no matching key / wrong passphrase
/// is 5; a damaged header is 4.
fn decrypt_error(e: age::DecryptError, name: &str, passphrase: bool) -> Error {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys => Error::new(ExitCode::NoIdentity, format!("no identity opens {name}"))
            .hint(if passphrase {
                "the archive is encrypted to keys: give -i IDENTITY instead of --passphrase"
            } else {
                "use an identity whose public key the archive was encrypted to (or --passphrase if it was made with one)"
            }),
        D::DecryptionFailed | D::KeyDecryptionFailed => {
            Error::new(ExitCode::NoIdentity, format!("cannot open {name}: wrong passphrase"))
                .hint("check the passphrase (or FORGEKEEP_PASSPHRASE_FILE) and try again")
        }
        D::ExcessiveWork { required, .. } => Error::new(
            ExitCode::NoIdentity,
            format!("{name} needs a passphrase work factor of 2^{required}, above the safe limit"),
        )
        .hint("the archive was not made by forgekeep on this kind of machine; open it with age directly if you trust it"),
        // Read failures of the input itself are caught by InputTracker; what is left is
        // a header cut short or garbled: a damaged (or non-age) file.
        D::Io(e) => damaged(name, &e),
        D::UnknownFormat | D::InvalidHeader => {
            Error::integrity(format!("{name} is not an age-encrypted forgekeep archive, or its header is damaged"))
        }
        D::InvalidMac => Error::integrity(format!("the header of {name} was modified (MAC mismatch)")),
        other => Error::integrity(format!("cannot decrypt {name}: {other}")),
    }
}

/// Reads, decrypts and validates a whole archive, calling `visitor` for each entry.
pub fn read_archive(
    input: impl Read + Send + 'static,
    name: &str,
    keys: &Keyring,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let state = std::sync::Arc::new(InputState::default());
    let tracked = InputTracker {
        inner: input,
        read: 0,
        state: state.clone(),
    };
    let result = read_inner(tracked, &state, name, keys, visitor);
    // Looked at once, now: a read error of the input explains a failure better than
    // "damaged" (and one that happens later, after the verdict, changes nothing).
    let failed = state
        .failed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match (result, failed) {
        (Err(_), Some(io_err)) => Err(Error::io(
            "cannot read",
            std::path::Path::new(name),
            &io_err,
        )),
        (r, _) => r,
    }
}

fn damaged(name: &str, e: &io::Error) -> Error {
    // age reports a bad chunk or a missing final chunk as InvalidData/UnexpectedEof;
    // zstd and tar report their own parse errors the same way.
    let why = match e.kind() {
        io::ErrorKind::UnexpectedEof => "it is truncated".to_string(),
        _ => format!(
            "it is truncated or was modified ({})",
            crate::error::plain_io(e)
        ),
    };
    Error::integrity(format!("{name} cannot be read back: {why}"))
}

fn read_inner<R: Read + Send + 'static>(
    input: InputTracker<R>,
    state: &InputState,
    name: &str,
    keys: &Keyring,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let armored = age::armor::ArmoredReader::new(BufReader::with_capacity(1 << 16, input));
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 16, armored))
        .map_err(|e| decrypt_error(e, name, keys.uses_passphrase()))?;
    state
        .header_done
        .store(true, std::sync::atomic::Ordering::Relaxed);
    if decryptor.is_scrypt() != keys.uses_passphrase() {
        return Err(if decryptor.is_scrypt() {
            Error::new(
                ExitCode::NoIdentity,
                format!("{name} is encrypted with a passphrase"),
            )
            .hint("pass --passphrase instead of -i")
        } else {
            Error::new(
                ExitCode::NoIdentity,
                format!("{name} is encrypted to keys, not to a passphrase"),
            )
            .hint("pass -i IDENTITY instead of --passphrase")
        });
    }
    let plaintext = decryptor
        .decrypt(keys.identities())
        .map_err(|e| decrypt_error(e, name, keys.uses_passphrase()))?;
    // Decryption runs on a thread of its own (as `age -d` does in a pipeline), so that
    // it overlaps with decompression, parsing, hashing and writing on this one. On
    // success the thread has already seen the end of the input and is joined; on a
    // failure it is NOT waited for: it may sit in a read of an idle pipe, and the verdict
    // must not wait for the sender to hang up. It stops at its next send.
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let pump_thread = std::thread::spawn(move || pump(plaintext, tx));
    let result = read_plaintext(ChannelReader::new(rx), name, visitor);
    if result.is_ok() {
        let _ = pump_thread.join();
    }
    result
}

/// Chunks handed from the decrypting thread to the reading one, and how many may wait
/// (2 MiB in all).
const CHUNK: usize = 256 << 10;
const QUEUE: usize = 8;

/// Reads `from` to its end (or its first error) and sends it on in chunks, then an empty
/// chunk as the end marker (so that a sender that vanished without one, e.g. by a
/// panic, reads as an error, never as a clean end). Stops as soon as the reading side
/// has gone (it failed, or it is done).
fn pump(mut from: impl Read, tx: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>) {
    loop {
        // Whatever one read returns goes on at once: waiting to fill a chunk would hold
        // back the tail of an archive whose sender keeps the pipe open.
        let mut buf = vec![0u8; CHUNK];
        let msg = match from.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Ok(Vec::new())); // the end marker
                return;
            }
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let stop = msg.is_err();
        if tx.send(msg).is_err() || stop {
            return;
        }
    }
}

/// The receiving end of [`pump`] as a `Read`.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl ChannelReader {
    fn new(rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>) -> Self {
        ChannelReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
            ended: false,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(io::Error::other("the decrypting thread stopped early"));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// zstd → tar → validated members, then the drain to the very end.
fn read_plaintext(
    plaintext: impl Read,
    name: &str,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let mut zstd = zstd::stream::read::Decoder::new(plaintext).map_err(|e| damaged(name, &e))?;
    zstd.window_log_max(ZSTD_WINDOW_LOG_MAX)
        .map_err(|e| damaged(name, &e))?;
    let mut archive = tar::Archive::new(zstd);
    let out = read_members(&mut archive, name, visitor)?;

    // Drain to the very end: tar stops at its end-of-archive blocks, but a truncated or
    // tampered tail is only noticed when age's final chunk and zstd's frame checksum
    // are read. Only zero padding may follow the end of the tar archive.
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = rest.read(&mut buf).map_err(|e| damaged(name, &e))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(Error::integrity(format!(
                "{name} has data after the end of its tar archive"
            )));
        }
    }
    Ok(out)
}

fn read_members<R: Read>(
    archive: &mut tar::Archive<R>,
    name: &str,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let mut entries = archive.entries().map_err(|e| damaged(name, &e))?;
    let bad = |what: String| Error::integrity(format!("{name}: {what}"));

    // 1. The manifest, first.
    let mut first = entries
        .next()
        .ok_or_else(|| bad("the archive is empty".into()))?
        .map_err(|e| damaged(name, &e))?;
    if member_path(&first)? != MANIFEST_MEMBER || !first.header().entry_type().is_file() {
        return Err(bad(format!("the first member is not {MANIFEST_MEMBER}")));
    }
    if first.size() > MAX_MANIFEST_BYTES {
        return Err(bad("the manifest is implausibly large".into()));
    }
    let mut json = Vec::with_capacity(first.size() as usize);
    first
        .read_to_end(&mut json)
        .map_err(|e| damaged(name, &e))?;
    drop(first);
    let manifest = Manifest::parse(&json)?;
    drop(json); // the text of a 50,000-entry manifest is ~14 MB; the parsed form suffices
    validate_manifest(&manifest).map_err(bad)?;
    visitor.manifest(&manifest)?;

    // 2. The entries, exactly in manifest order.
    let mut digests: Vec<Option<Sha256Sum>> = vec![None; manifest.entries.len()];
    let mut content_bytes = 0u64;
    let mut sums_text: Option<String> = None;
    for (index, member) in entries.by_ref().enumerate() {
        let mut member = member.map_err(|e| damaged(name, &e))?;
        let path = member_path(&member)?;
        if path == SUMS_MEMBER {
            if index != manifest.entries.len() {
                return Err(bad(format!(
                    "{SUMS_MEMBER} came before {} (an entry is missing)",
                    manifest.entries[index].path
                )));
            }
            if !member.header().entry_type().is_file() || member.size() > MAX_MANIFEST_BYTES {
                return Err(bad(format!("{SUMS_MEMBER} is not a plain file")));
            }
            let mut text = String::new();
            member
                .read_to_string(&mut text)
                .map_err(|e| damaged(name, &e))?;
            sums_text = Some(text);
            break;
        }
        let Some(expected) = manifest.entries.get(index) else {
            return Err(bad(format!(
                "member {path:?} is not listed in the manifest"
            )));
        };
        check_member(&member, &path, expected).map_err(bad)?;
        if expected.kind == Kind::File {
            let mut data = HashingReader::new((&mut member).take(expected.size));
            visitor.entry(index, expected, &mut data)?;
            io::copy(&mut data, &mut io::sink()).map_err(|e| damaged(name, &e))?;
            let (_, sum, count) = data.into_parts();
            if count != expected.size {
                return Err(bad(format!(
                    "{} is shorter than its header says",
                    expected.path
                )));
            }
            digests[index] = Some(sum);
            content_bytes += count;
        } else {
            visitor.entry(index, expected, &mut io::empty())?;
        }
    }

    // 3. Nothing after SHA256SUMS; every file's checksum matches.
    let Some(sums_text) = sums_text else {
        return Err(bad(format!(
            "{SUMS_MEMBER} is missing (the archive is truncated)"
        )));
    };
    if let Some(extra) = entries.next() {
        let what = match extra {
            Ok(m) => format!("{:?}", member_path(&m).unwrap_or_default()),
            Err(_) => "data".into(),
        };
        return Err(bad(format!(
            "an extra member ({what}) follows {SUMS_MEMBER}"
        )));
    }
    check_sums(&sums_text, &manifest, &digests).map_err(bad)?;
    Ok(ReadArchive {
        manifest,
        digests,
        content_bytes,
    })
}

/// The member's path as stored, checked to be a plain relative path: no `..`, no
/// absolute path, no NUL, no `.` components. Trailing `/` of directories is dropped.
fn member_path<R: Read>(m: &tar::Entry<'_, R>) -> Result<String> {
    let raw = m.path_bytes();
    let s = std::str::from_utf8(&raw)
        .map_err(|_| Error::integrity("a member name is not UTF-8"))?
        .trim_end_matches('/')
        .to_string();
    let safe = !s.is_empty()
        && !s.starts_with('/')
        && !s.contains('\0')
        && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if !safe {
        return Err(Error::integrity(format!(
            "unsafe member name {s:?} (absolute, empty, or with . or ..)"
        )));
    }
    Ok(s)
}

fn is_normal_abs(p: &str) -> bool {
    p.len() > 1
        && p.starts_with('/')
        && !p.contains('\0')
        && p[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// The manifest's own rules, checked before any member is looked at.
fn validate_manifest(m: &Manifest) -> std::result::Result<(), String> {
    for s in &m.sources {
        if !is_normal_abs(&s.path) {
            return Err(format!(
                "the manifest records an unsafe source path {:?}",
                s.path
            ));
        }
    }
    let mut kinds: HashMap<&str, Kind> = HashMap::new();
    let mut previous: Option<&str> = None;
    for e in &m.entries {
        if !is_normal_abs(&e.path) {
            return Err(format!("the manifest records an unsafe path {:?}", e.path));
        }
        // Strictly sorted: no duplicates, and every parent comes before what it holds,
        // so the "nothing below a link" check below sees every parent.
        if previous.is_some_and(|p| p >= e.path.as_str()) {
            return Err(format!(
                "the manifest is not in order at {} (or lists it twice)",
                e.path
            ));
        }
        previous = Some(&e.path);
        let src = &m.sources[e.source].path;
        let inside = match e.role {
            Role::Content => e.path == *src || is_under(&e.path, src),
            Role::Ancestor => e.kind == Kind::Dir && is_under(src, &e.path),
        };
        if !inside {
            return Err(format!(
                "{} lies outside the sources the archive records",
                e.path
            ));
        }
        match e.kind {
            Kind::File => {}
            Kind::Dir if e.size == 0 && e.target.is_none() => {}
            Kind::Symlink
                if e.size == 0
                    && e.target
                        .as_deref()
                        .is_some_and(|t| !t.is_empty() && !t.contains('\0')) => {}
            _ => return Err(format!("the manifest entry {} is inconsistent", e.path)),
        }
        if e.path.starts_with("/forgekeep/") || e.path == "/forgekeep" {
            return Err(format!("{} collides with forgekeep's own members", e.path));
        }
        // Every parent listed before must be a directory: nothing may go through a link.
        let mut p = e.path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if p.is_empty() {
                break;
            }
            if let Some(k) = kinds.get(p) {
                if *k != Kind::Dir {
                    return Err(format!(
                        "{} lies below {p}, which is not a directory",
                        e.path
                    ));
                }
            }
        }
        kinds.insert(e.path.as_str(), e.kind);
    }
    Ok(())
}

fn check_member<R: Read>(
    m: &tar::Entry<'_, R>,
    path: &str,
    e: &Entry,
) -> std::result::Result<(), String> {
    let h = m.header();
    let t = h.entry_type();
    let kind = if t.is_file() {
        Kind::File
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else if t.is_hard_link() {
        return Err(format!(
            "member {path:?} is a hard link; hard links are refused"
        ));
    } else {
        return Err(format!(
            "member {path:?} is a {} entry; only files, directories and symlinks are accepted",
            match t {
                tar::EntryType::Char | tar::EntryType::Block => "device",
                tar::EntryType::Fifo => "FIFO",
                _ => "special",
            }
        ));
    };
    if path != e.member_name() {
        return Err(format!(
            "member {path:?} is not what the manifest lists next ({})",
            e.path
        ));
    }
    if kind != e.kind {
        return Err(format!(
            "{} is a {} in the tar but a {} in the manifest",
            e.path,
            kind.as_str(),
            e.kind.as_str()
        ));
    }
    let size = if kind == Kind::File {
        m.size()
    } else {
        h.size().unwrap_or(0)
    };
    if size != e.size {
        return Err(format!(
            "{}: size {size} disagrees with the manifest ({})",
            e.path, e.size
        ));
    }
    let mode = h
        .mode()
        .map_err(|_| format!("{}: unreadable mode", e.path))?
        & 0o7777;
    let uid = h.uid().map_err(|_| format!("{}: unreadable uid", e.path))?;
    let gid = h.gid().map_err(|_| format!("{}: unreadable gid", e.path))?;
    if mode != e.mode || uid != e.uid as u64 || gid != e.gid as u64 {
        return Err(format!(
            "{}: owner or mode in the tar disagrees with the manifest",
            e.path
        ));
    }
    if kind == Kind::Symlink {
        let target = m
            .link_name_bytes()
            .map(|b| b.into_owned())
            .unwrap_or_default();
        if Some(target.as_slice()) != e.target.as_deref().map(str::as_bytes) {
            return Err(format!(
                "{}: link target disagrees with the manifest",
                e.path
            ));
        }
    }
    Ok(())
}

fn check_sums(
    text: &str,
    m: &Manifest,
    digests: &[Option<Sha256Sum>],
) -> std::result::Result<(), String> {
    let lines = sums::parse(text).ok_or_else(|| format!("{SUMS_MEMBER} is malformed"))?;
    let mut listed: HashMap<String, String> = HashMap::new();
    for (member, hex) in lines {
        if listed.insert(member.clone(), hex).is_some() {
            return Err(format!("{SUMS_MEMBER} lists {member} twice"));
        }
    }
    for (e, d) in m.entries.iter().zip(digests) {
        if let Some(d) = d {
            match listed.remove(e.member_name()) {
                Some(hex) if hex == sums::sha256_hex(d) => {}
                Some(_) => return Err(format!("checksum mismatch for {}", e.path)),
                None => return Err(format!("{SUMS_MEMBER} has no line for {}", e.path)),
            }
        }
    }
    if let Some(extra) = listed.keys().next() {
        return Err(format!(
            "{SUMS_MEMBER} lists {extra}, which the archive does not hold"
        ));
    }
    Ok(())
}
