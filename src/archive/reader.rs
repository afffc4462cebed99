//! Reading an archive: input → age → zstd → tar → validated entries.
//!
//! Archive content is UNTRUSTED. age gives confidentiality, not proof of origin: anyone
//! holding the public recipient (it sits on the backed-up host, by design) can make an
//! archive that decrypts. So every member is checked before anyone acts on it:
//!
//! * the tar layer is read by [`super::strict_tar`], which accepts only what GNU tar
//!   reads the same way, and caps every extension header before reading it;
//! * the manifest comes first, within the ceilings of [`super::limits`], and must be
//!   self-consistent ([`super::validate`]): normalised absolute paths, no duplicates,
//!   every entry inside a source it records, nothing below a symlink;
//! * each tar member must be the next manifest entry, with the same type, size, mode,
//!   owner and link target; hard links, devices, FIFOs and anything else are refused;
//! * `SHA256SUMS` comes last and must match the content hashed on the way;
//! * nothing may follow it, and the streams are drained to their end so that age's
//!   final-chunk flag and zstd's checksum are checked (a truncation is noticed).
//!
//! One refused member refuses the whole archive. Consumers ([`Visitor`]) see each entry
//! as it streams past, but must treat what they did as provisional until
//! [`read_archive`] returns `Ok`.

use super::limits::Limits;
use super::manifest::{Entry, Kind, Manifest};
use super::strict_tar::{Member, MemberKind, Next, TarError, TarReader};
use super::sums::{self, HashingReader, Sha256Sum};
use super::validate;
use super::{
    MANIFEST_MEMBER, MANIFEST_SIG_MEMBER, SUMS_MEMBER, SUMS_SIG_MEMBER, ZSTD_WINDOW_LOG_MAX,
};
use crate::error::{Error, ExitCode, Result};
use crate::keys::Keyring;
use crate::signature::trust::TrustFile;
use crate::signature::{self, Authenticity, Signer};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

/// Receives entries as they are read and validated.
pub trait Visitor {
    /// Called once, before [`Visitor::manifest`], with who made the archive (a trust
    /// file, when given, has already vouched for it: the reader refuses otherwise). A
    /// visitor that writes decides here whether it may (restore's consent rule).
    fn authenticity(&mut self, _manifest: &Manifest, _who: &Authenticity) -> Result<()> {
        Ok(())
    }

    /// Called once, before any entry, with the validated manifest (shared, so that a
    /// visitor keeps it without a copy).
    fn manifest(&mut self, _manifest: &Arc<Manifest>) -> Result<()> {
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
    pub manifest: Arc<Manifest>,
    /// SHA-256 of each file entry, by manifest index (`None` for dirs and links).
    pub digests: Vec<Option<Sha256Sum>>,
    pub content_bytes: u64,
    /// Who made it: signed (and by whom, vouched for or not) or not.
    pub authenticity: Authenticity,
}

/// Signatures are a few hundred bytes; the cap keeps a hostile one from being buffered.
const MAX_SIGNATURE_BYTES: u64 = 8 << 10;

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
    limits: &Limits,
    trust: Option<&TrustFile>,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let state = std::sync::Arc::new(InputState::default());
    let tracked = InputTracker {
        inner: input,
        read: 0,
        state: state.clone(),
    };
    let result = read_inner(tracked, &state, name, keys, limits, trust, visitor);
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
    limits: &Limits,
    trust: Option<&TrustFile>,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let decryptor = age::Decryptor::new_buffered(unarmored(input))
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
    // Decryption and decompression run on a thread of its own (as `age -d | zstd -d`
    // do in a pipeline), so that they overlap with parsing, validating, hashing and
    // writing on this one. On success the thread has already seen the end of the input
    // and is joined; on a failure it is NOT waited for: it may sit in a read of an idle
    // pipe, and the verdict must not wait for the sender to hang up. It stops at its
    // next send.
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let (spent_tx, spent_rx) = std::sync::mpsc::sync_channel(QUEUE + 2);
    let pump_thread = std::thread::spawn(move || pump(plaintext, tx, spent_rx));
    let result = read_tar_stream(
        ChannelReader::new(rx, spent_tx),
        name,
        limits,
        trust,
        visitor,
    );
    if result.is_ok() {
        let _ = pump_thread.join();
    }
    result
}

/// The age file as a buffered reader. A binary age file (the common case) is read
/// straight from a 64 KiB buffer; only what does not start like one goes through
/// age's armor detection, which reads 48 bytes at a time even when the file turns out
/// not to be armored.
fn unarmored<R: Read + Send + 'static>(input: R) -> Box<dyn BufRead + Send> {
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let binary = buffered
        .fill_buf()
        .is_ok_and(|head| head.starts_with(b"age-encryption.org/"));
    if binary {
        Box::new(buffered)
    } else {
        Box::new(age::armor::ArmoredReader::new(buffered))
    }
}

/// Chunks of the plaintext tar stream handed from the decrypting thread to the reading
/// one, and how many may wait (2 MiB in all).
const CHUNK: usize = 256 << 10;
const QUEUE: usize = 8;

/// Decrypts and decompresses `from` to its end (or its first error) and sends the tar
/// stream on in chunks, then an empty chunk as the end marker (so that a sender that
/// vanished without one, e.g. by a panic, reads as an error, never as a clean end).
/// Stops as soon as the reading side has gone (it failed, or it is done). Chunks the
/// reading side is done with come back through `spent` to be filled again.
fn pump(
    from: impl Read,
    tx: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
) {
    let mut zstd = match decoder(from) {
        Ok(z) => z,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    loop {
        // Whatever one read returns goes on at once: waiting to fill a chunk would hold
        // back the tail of an archive whose sender keeps the pipe open.
        let mut buf = spent.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let msg = match zstd.read(&mut buf) {
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

/// The zstd layer, its window capped (a hostile frame cannot make the decoder allocate
/// more than [`ZSTD_WINDOW_LOG_MAX`] allows).
fn decoder<R: Read>(from: R) -> io::Result<zstd::stream::read::Decoder<'static, BufReader<R>>> {
    let mut zstd = zstd::stream::read::Decoder::new(from)?;
    zstd.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    Ok(zstd)
}

/// The receiving end of [`pump`] as a buffered reader.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    spent: std::sync::mpsc::SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl ChannelReader {
    fn new(
        rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
        spent: std::sync::mpsc::SyncSender<Vec<u8>>,
    ) -> Self {
        ChannelReader {
            rx,
            spent,
            chunk: Vec::new(),
            pos: 0,
            ended: false,
        }
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() {
            if self.ended {
                return Ok(&[]);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => self.ended = true,
                Ok(Ok(chunk)) => {
                    let mut done = std::mem::replace(&mut self.chunk, chunk);
                    self.pos = 0;
                    if done.capacity() == CHUNK {
                        // Back to the pump, full length again (no zeroing: it is
                        // overwritten by the next read before anyone looks at it).
                        done.resize(CHUNK, 0);
                        let _ = self.spent.try_send(done);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(io::Error::other("the decrypting thread stopped early"));
                }
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// zstd → tar → validated members, then the drain to the very end. Public for the
/// fuzzer (`fuzz/`), which feeds it arbitrary decrypted bytes.
pub fn read_plaintext(
    plaintext: impl Read,
    name: &str,
    limits: &Limits,
    trust: Option<&TrustFile>,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let zstd = decoder(plaintext).map_err(|e| damaged(name, &e))?;
    read_tar_stream(zstd, name, limits, trust, visitor)
}

/// The tar stream → validated members, then the drain to the very end: tar stops at
/// its first end-of-archive block (as GNU tar does), but a truncated or tampered tail
/// is only noticed when age's final chunk and zstd's frame checksum are read. Only zero
/// padding may follow.
fn read_tar_stream(
    stream: impl Read,
    name: &str,
    limits: &Limits,
    trust: Option<&TrustFile>,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let mut tar = TarReader::new(stream);
    let out = read_members(&mut tar, name, limits, trust, visitor)?;
    let mut rest = tar.into_inner();
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

/// The next tar member (`None` at the end of the archive) with its checked name.
fn next_member<R: Read>(tar: &mut TarReader<R>, name: &str) -> Result<Option<(Member, String)>> {
    match tar.next_member() {
        Ok(Next::End) => Ok(None),
        Ok(Next::Member(m)) => {
            let path = validate::member_name(&m).map_err(|w| refused(name, w))?;
            Ok(Some((m, path)))
        }
        Err(TarError::Io(e)) => Err(damaged(name, &e)),
        Err(TarError::Refused(w)) => Err(refused(name, w)),
    }
}

fn refused(name: &str, what: String) -> Error {
    Error::integrity(format!("{name}: {what}"))
}

fn read_members<R: Read>(
    tar: &mut TarReader<R>,
    name: &str,
    limits: &Limits,
    trust: Option<&TrustFile>,
    visitor: &mut dyn Visitor,
) -> Result<ReadArchive> {
    let bad = |what: String| refused(name, what);

    // 1. The manifest, first, no larger than the ceiling, parsed (and hashed) as it
    //    streams.
    let (first, path) =
        next_member(tar, name)?.ok_or_else(|| bad("the archive is empty".into()))?;
    if path != MANIFEST_MEMBER || first.kind != MemberKind::File {
        return Err(bad(format!("the first member is not {MANIFEST_MEMBER}")));
    }
    if first.size > limits.max_manifest_bytes {
        return Err(bad(format!(
            "the manifest is {} bytes, more than --max-manifest-bytes {}",
            first.size, limits.max_manifest_bytes
        ))
        .hint("a forge's manifest is far smaller; if you trust this archive, raise the ceiling with --max-manifest-bytes SIZE"));
    }
    let mut hashed = HashingReader::new(tar.data());
    let manifest = Manifest::read(&mut hashed, limits).map_err(|e| Error {
        what: format!("{name}: {}", e.what),
        ..e
    })?;
    io::copy(&mut hashed, &mut io::sink()).map_err(|e| damaged(name, &e))?;
    let manifest = Arc::new(manifest);
    let manifest_line = sums::line(&hashed.finish(), MANIFEST_MEMBER);
    let totals = validate::manifest(&manifest, limits).map_err(|w| {
        let e = bad(w);
        if e.what.contains("--max-") {
            e.hint("if you trust this archive, raise the ceiling the message names")
        } else {
            e
        }
    })?;

    // 2. Its signature, right after it, if the archive is signed: who made the archive
    //    is settled (and a trust file's verdict given) before anyone acts on an entry.
    let mut pending = next_member(tar, name)?;
    let signer = match &pending {
        Some((_, p)) if p == MANIFEST_SIG_MEMBER => {
            let sig = read_signature(tar, name, pending.take())?;
            let who = signature::verify(&sig, manifest_line.as_bytes())
                .map_err(|why| bad_signature(name, MANIFEST_SIG_MEMBER, &why))?;
            pending = next_member(tar, name)?;
            Some(who)
        }
        _ => None,
    };
    let authenticity = judge(name, &manifest, signer, trust)?;
    visitor.authenticity(&manifest, &authenticity)?;
    visitor.manifest(&manifest)?;

    // 3. The entries, exactly in manifest order.
    let mut digests: Vec<Option<Sha256Sum>> = vec![None; manifest.entries.len()];
    let mut content_bytes = 0u64;
    for (index, expected) in manifest.entries.iter().enumerate() {
        let next = match pending.take() {
            Some(p) => Some(p),
            None => next_member(tar, name)?,
        };
        let Some((member, path)) = next else {
            return Err(bad(format!(
                "the archive ends before {} (it is truncated)",
                expected.path
            )));
        };
        if path == SUMS_MEMBER {
            return Err(bad(format!(
                "{SUMS_MEMBER} came before {} (an entry is missing)",
                manifest.entries[index].path
            )));
        }
        validate::member(&member, &path, expected).map_err(bad)?;
        if expected.kind == Kind::File {
            let mut data = HashingReader::new(tar.data());
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

    // 4. SHA256SUMS, no larger than its lines can be, checked as it streams (and kept,
    //    when signed, for the signature that covers it).
    let next = match pending.take() {
        Some(p) => Some(p),
        None => next_member(tar, name)?,
    };
    let Some((member, path)) = next else {
        return Err(bad(format!(
            "{SUMS_MEMBER} is missing (the archive is truncated)"
        )));
    };
    if path != SUMS_MEMBER {
        return Err(bad(format!(
            "member {path:?} is not listed in the manifest"
        )));
    }
    let sums_bytes = totals.sums_bytes + manifest_line.len() as u64;
    if member.kind != MemberKind::File || member.size > sums_bytes {
        return Err(bad(format!(
            "{SUMS_MEMBER} is not a plain file of at most {sums_bytes} bytes"
        )));
    }
    let mut kept = Vec::new();
    let signed = matches!(authenticity, Authenticity::Signed { .. });
    {
        let data = Tee {
            inner: tar.data(),
            copy: signed.then_some(&mut kept),
        };
        validate::sums(data, &manifest, &digests, &manifest_line, signed).map_err(bad)?;
    }

    // 5. Its signature, by the key that signed the manifest, when signed; then nothing.
    let mut next = next_member(tar, name)?;
    if let Authenticity::Signed { signer, .. } = &authenticity {
        match &next {
            Some((_, p)) if p == SUMS_SIG_MEMBER => {}
            _ => {
                return Err(bad(format!(
                    "the manifest is signed but {SUMS_SIG_MEMBER} is missing (the archive was cut or changed)"
                ))
                .hint("use another copy of the backup"))
            }
        }
        let sig = read_signature(tar, name, next.take())?;
        let who = signature::verify(&sig, &kept)
            .map_err(|why| bad_signature(name, SUMS_SIG_MEMBER, &why))?;
        if &who != signer {
            return Err(bad(format!(
                "{SUMS_SIG_MEMBER} is signed by {}, the manifest by {}",
                who.fingerprint(),
                signer.fingerprint()
            ))
            .hint(
                "the archive was put together from two archives; use another copy of the backup",
            ));
        }
        next = next_member(tar, name)?;
    }
    if let Some((_, extra)) = next {
        return Err(bad(if extra == SUMS_SIG_MEMBER {
            format!("{SUMS_SIG_MEMBER} signs an archive whose manifest is not signed")
        } else {
            format!("an extra member ({extra:?}) follows {SUMS_MEMBER}")
        }));
    }
    Ok(ReadArchive {
        manifest,
        digests,
        content_bytes,
        authenticity,
    })
}

/// A signature member: a small plain file.
fn read_signature<R: Read>(
    tar: &mut TarReader<R>,
    name: &str,
    member: Option<(Member, String)>,
) -> Result<Vec<u8>> {
    let Some((m, path)) = member else {
        return Err(refused(name, "a signature is missing".into()));
    };
    if m.kind != MemberKind::File || m.size > MAX_SIGNATURE_BYTES {
        return Err(refused(
            name,
            format!("{path} is not a plain file of at most {MAX_SIGNATURE_BYTES} bytes"),
        ));
    }
    let mut sig = Vec::with_capacity(m.size as usize);
    tar.data()
        .read_to_end(&mut sig)
        .map_err(|e| damaged(name, &e))?;
    Ok(sig)
}

fn bad_signature(name: &str, member: &str, why: &signature::BadSignature) -> Error {
    Error::integrity(format!("{name}: {member}: {why}")).hint(
        "do not restore it: the archive was changed after it was signed, or was not made by the key it names; use another copy of the backup",
    )
}

/// The trust file's verdict, given before any entry is looked at: with one, only an
/// archive it vouches for is read at all (exit 4 otherwise, whatever the command).
fn judge(
    name: &str,
    manifest: &Manifest,
    signer: Option<Signer>,
    trust: Option<&TrustFile>,
) -> Result<Authenticity> {
    let untrusted = |what: String| {
        Error::integrity(format!("{name}: {what}")).hint(
            "do not restore it unless you know where it came from; a trust file lists the keys that sign this host's archives (forgekeep keygen --sign prints the line)",
        )
    };
    match (signer, trust) {
        (None, None) => Ok(Authenticity::Unsigned),
        (None, Some(t)) => Err(untrusted(format!(
            "the archive is not signed, and {} accepts only signed archives",
            t.path().display()
        ))),
        (Some(signer), None) => Ok(Authenticity::Signed {
            signer,
            vouched: None,
        }),
        (Some(signer), Some(t)) => {
            match t.judge(&signer, &manifest.host, jiff::Timestamp::now().as_second()) {
                Ok(v) => Ok(Authenticity::Signed {
                    signer,
                    vouched: Some(v),
                }),
                Err(u) => Err(untrusted(u.describe(&signer, t.path()))),
            }
        }
    }
}

/// Passes a member's data through, keeping a copy when asked.
struct Tee<'a, R> {
    inner: R,
    copy: Option<&'a mut Vec<u8>>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = self.copy.as_deref_mut() {
            c.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}
