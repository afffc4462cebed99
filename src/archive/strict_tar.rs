//! A strict, streaming tar member reader: the tar layer of an UNTRUSTED archive.
//!
//! Why not `tar::Archive::entries()`: it reads every GNU long name (`L`), long link
//! (`K`) and PAX (`x`, `g`) header whole into memory before anyone can look at its size
//! (a 32 KiB archive declaring a 1 GiB long name cost 1.5 GiB), and it resolves names
//! and sizes its own way where GNU tar resolves them another: a folder with header size
//! 0 and a PAX `size` hid a whole member that GNU tar extracts, and a GNU long name
//! next to a PAX `path` was read by one name here and by the other there. The README's
//! recovery path is `age -d | zstd -d | tar -x`, so an archive the two could read
//! differently is an unsafe archive.
//!
//! So this reader parses each 512-byte header itself (through `tar::Header`'s field
//! accessors) and accepts only what GNU tar reads the same way:
//!
//! * every extension header's size is checked against [`MAX_EXTENSION_BYTES`] BEFORE
//!   its data is read; a GNU long name/link must be one name and its NUL;
//! * a name comes from exactly one place (GNU long name, PAX `path`, or the header's
//!   name field with its ustar prefix), a link target likewise; PAX `size`, `uid`,
//!   `gid`, `uname`, `gname` and `mtime` may only restate the header, and no other PAX
//!   key is accepted;
//! * numbers must be plain octal (or GNU base-256) with nothing else in the field;
//! * folders and links have size 0 (GNU tar never skips a folder's data: it reads it as
//!   headers); only regular files (`0`), folders (`5`) and symlinks (`2`) are members;
//!   global PAX headers (`g`), sparse files (`S`), hard links, devices, FIFOs and every
//!   other type are refused;
//! * the archive ends at the first zero block (as in GNU tar); what follows is the
//!   caller's to check.
//!
//! Refusing is always safe; every rule above refuses something our writer never writes.

use std::io::{self, Read};

/// One tar block.
const BLOCK: usize = 512;

/// The largest extension header (GNU long name or link, PAX record set) accepted. A
/// path is at most 4096 bytes (PATH_MAX); a PAX header restating a few fields of one
/// member is a few hundred.
pub const MAX_EXTENSION_BYTES: u64 = 8 << 10;

/// Why the tar layer stopped.
#[derive(Debug)]
pub enum TarError {
    /// The stream below failed or ended early (damaged or truncated archive).
    Io(io::Error),
    /// Well-formed bytes that forgekeep refuses (crafted or not a forgekeep archive).
    Refused(String),
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> Self {
        TarError::Io(e)
    }
}

fn refused<T>(why: impl Into<String>) -> Result<T, TarError> {
    Err(TarError::Refused(why.into()))
}

/// The kinds of member forgekeep accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    File,
    Dir,
    Symlink,
}

/// One member's header, every name and number resolved as GNU tar resolves them.
#[derive(Debug, Clone)]
pub struct Member {
    pub kind: MemberKind,
    /// The name as stored (a folder's trailing `/` kept).
    pub path: Vec<u8>,
    /// The link target (symlinks only).
    pub link: Option<Vec<u8>>,
    /// Bytes of data that follow (0 for folders and links).
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// The owner names GNU tar gives the file when it extracts by name.
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
}

/// What [`TarReader::next_member`] found.
#[derive(Debug)]
pub enum Next {
    Member(Member),
    /// The first zero block: the end of the archive.
    End,
}

/// Reads members one after the other; [`TarReader::data`] gives the current member's
/// content, and whatever of it is left unread is skipped by the next call to `next`.
pub struct TarReader<R> {
    inner: R,
    /// Content bytes of the current member not read yet.
    remaining: u64,
    /// Padding after the current member's content, up to the next block.
    padding: u64,
    ended: bool,
}

/// Extension headers met before a member.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Pax>,
}

/// The PAX records forgekeep accepts (each at most once).
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<u64>,
    uname: Option<Vec<u8>>,
    gname: Option<Vec<u8>>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            ended: false,
        }
    }

    /// The stream after the end of the archive (or wherever reading stopped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The current member's content (exactly its size; a stream that ends early is an
    /// `UnexpectedEof` error).
    pub fn data(&mut self) -> MemberData<'_, R> {
        MemberData { tar: self }
    }

    /// The next member, after skipping what is left of the current one.
    pub fn next_member(&mut self) -> Result<Next, TarError> {
        if self.ended {
            return Ok(Next::End);
        }
        self.skip_rest()?;
        let mut pending = Pending::default();
        loop {
            let mut block = [0u8; BLOCK];
            self.inner.read_exact(&mut block)?;
            if block.iter().all(|b| *b == 0) {
                if pending.long_name.is_some()
                    || pending.long_link.is_some()
                    || pending.pax.is_some()
                {
                    return refused("an extension header is followed by the end of the archive, not by a member");
                }
                self.ended = true;
                return Ok(Next::End);
            }
            let header = tar::Header::from_byte_slice(&block);
            check_checksum(header)?;
            let format = format_of(header)?;
            let size = number(&header.as_old().size, "size")?;
            match header.as_old().linkflag[0] {
                b'L' => {
                    let data = self.read_extension(size, "GNU long name")?;
                    set_once(&mut pending.long_name, gnu_long(data, "name")?, "GNU long name")?;
                }
                b'K' => {
                    let data = self.read_extension(size, "GNU long link")?;
                    set_once(&mut pending.long_link, gnu_long(data, "link")?, "GNU long link")?;
                }
                b'x' => {
                    let data = self.read_extension(size, "PAX header")?;
                    set_once(&mut pending.pax, parse_pax(&data)?, "PAX header")?;
                }
                b'g' => {
                    return refused("a global PAX header (GNU tar applies it to every later member; forgekeep never writes one)")
                }
                _ => {
                    let member = resolve(header, format, size, pending)?;
                    self.remaining = member.size;
                    self.padding = padding(member.size);
                    return Ok(Next::Member(member));
                }
            }
        }
    }

    /// Reads an extension header's data, refusing it unread when it is too large.
    fn read_extension(&mut self, size: u64, what: &str) -> Result<Vec<u8>, TarError> {
        if size > MAX_EXTENSION_BYTES {
            return refused(format!(
                "a {what} of {size} bytes (more than {MAX_EXTENSION_BYTES}; a path is at most 4096)"
            ));
        }
        let mut data = vec![0u8; size as usize];
        self.inner.read_exact(&mut data)?;
        skip(&mut self.inner, padding(size))?;
        Ok(data)
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        skip(&mut self.inner, self.remaining + self.padding)?;
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }
}

/// The content of the current member.
pub struct MemberData<'a, R> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for MemberData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = &mut *self.tar;
        if t.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(t.remaining.min(usize::MAX as u64) as usize);
        let n = t.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        t.remaining -= n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), TarError> {
    if slot.is_some() {
        return refused(format!(
            "two {what}s for one member (tar readers disagree on which one counts)"
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// How the header's name fields are to be read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `ustar  \0`: the name field alone.
    Gnu,
    /// `ustar\0` `00`: GNU tar joins the 155-byte prefix and the name.
    Posix,
}

fn format_of(h: &tar::Header) -> Result<Format, TarError> {
    let old = h.as_old();
    // The magic and version fields follow the 100-byte link name (offset 257).
    let raw = h.as_bytes();
    match (&raw[257..263], &raw[263..265]) {
        (b"ustar ", b" \0") => Ok(Format::Gnu),
        (b"ustar\0", b"00") => Ok(Format::Posix),
        _ => refused(format!(
            "member {:?} has no POSIX or GNU tar header (old or unknown tar format)",
            String::from_utf8_lossy(c_str(&old.name))
        )),
    }
}

/// GNU tar accepts the checksum if it matches the unsigned or the signed sum; we only
/// write (and accept) the unsigned one.
fn check_checksum(h: &tar::Header) -> Result<(), TarError> {
    let stored = number(&h.as_old().cksum, "checksum")?;
    let computed: u64 = h
        .as_bytes()
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                b' ' as u64
            } else {
                *b as u64
            }
        })
        .sum();
    if stored != computed {
        return refused("a tar header's checksum does not match (damaged or edited)");
    }
    Ok(())
}

/// A numeric header field: octal digits then only NULs or spaces, or GNU base-256
/// (first byte 0x80, a positive number that fits in 64 bits). Anything else (leading
/// spaces, signs, garbage after the digits, negative base-256) is refused rather than
/// guessed at, since readers guess differently.
fn number(field: &[u8], what: &str) -> Result<u64, TarError> {
    if field.first() == Some(&0x80) {
        let bytes = &field[1..];
        let (high, low) = bytes.split_at(bytes.len().saturating_sub(8));
        if high.iter().any(|b| *b != 0) {
            return refused(format!("a tar {what} field is out of range"));
        }
        return Ok(low.iter().fold(0u64, |n, b| (n << 8) | *b as u64));
    }
    let digits = field
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(b))
        .count();
    let rest_ok = field[digits..].iter().all(|b| *b == 0 || *b == b' ');
    if digits == 0 || !rest_ok {
        return refused(format!("a tar {what} field is not a plain octal number"));
    }
    let text = std::str::from_utf8(&field[..digits]).expect("octal digits are ASCII");
    u64::from_str_radix(text, 8).or_else(|_| refused(format!("a tar {what} field is out of range")))
}

/// A NUL-terminated field.
fn c_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    &field[..end]
}

/// A GNU long name or link: the name and one NUL, nothing else.
fn gnu_long(mut data: Vec<u8>, what: &str) -> Result<Vec<u8>, TarError> {
    if data.pop() != Some(0) || data.is_empty() || data.contains(&0) {
        return refused(format!("a GNU long {what} is not one name ended by a NUL"));
    }
    Ok(data)
}

/// PAX records: `LEN KEY=VALUE\n`, LEN counting the whole record in decimal.
fn parse_pax(mut data: &[u8]) -> Result<Pax, TarError> {
    let bad = || refused::<Pax>("a PAX header is malformed");
    let mut pax = Pax::default();
    while !data.is_empty() {
        let Some(space) = data.iter().position(|b| *b == b' ') else {
            return bad();
        };
        let len_text = &data[..space];
        if len_text.is_empty() || len_text[0] == b'0' || !len_text.iter().all(u8::is_ascii_digit) {
            return bad();
        }
        let len: usize = match std::str::from_utf8(len_text)
            .ok()
            .and_then(|t| t.parse().ok())
        {
            Some(n) if n > space + 1 && n <= data.len() => n,
            _ => return bad(),
        };
        let record = &data[space + 1..len];
        data = &data[len..];
        let Some(record) = record.strip_suffix(b"\n") else {
            return bad();
        };
        let Some(eq) = record.iter().position(|b| *b == b'=') else {
            return bad();
        };
        let (key, value) = (&record[..eq], record[eq + 1..].to_vec());
        if value.is_empty() || value.contains(&0) {
            // An empty value deletes the keyword in GNU tar; a NUL ends it early.
            return refused(format!(
                "the PAX record {:?} is empty or holds a NUL",
                String::from_utf8_lossy(key)
            ));
        }
        let decimal = |what: &str| -> Result<u64, TarError> {
            let ok = !value.is_empty()
                && value.iter().all(u8::is_ascii_digit)
                && (value.len() == 1 || value[0] != b'0');
            std::str::from_utf8(&value)
                .ok()
                .filter(|_| ok)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| TarError::Refused(format!("the PAX {what} is not a plain number")))
        };
        match key {
            b"path" => set_once(&mut pax.path, value, "PAX path")?,
            b"linkpath" => set_once(&mut pax.linkpath, value, "PAX linkpath")?,
            b"size" => set_once(&mut pax.size, decimal("size")?, "PAX size")?,
            b"uid" => set_once(&mut pax.uid, decimal("uid")?, "PAX uid")?,
            b"gid" => set_once(&mut pax.gid, decimal("gid")?, "PAX gid")?,
            b"mtime" => set_once(&mut pax.mtime, decimal("mtime")?, "PAX mtime")?,
            b"uname" => set_once(&mut pax.uname, value, "PAX uname")?,
            b"gname" => set_once(&mut pax.gname, value, "PAX gname")?,
            other => {
                return refused(format!(
                    "the PAX record {:?} is not accepted (forgekeep never writes it, and tar readers apply it differently)",
                    String::from_utf8_lossy(other)
                ))
            }
        }
    }
    Ok(pax)
}

/// One member's header with its extension headers, resolved and checked.
fn resolve(
    h: &tar::Header,
    format: Format,
    size: u64,
    pending: Pending,
) -> Result<Member, TarError> {
    let old = h.as_old();
    let pax = pending.pax.unwrap_or_default();

    // The name: from exactly one source.
    let prefix = match (format, h.as_ustar()) {
        (Format::Posix, Some(u)) => c_str(&u.prefix).to_vec(),
        _ => Vec::new(),
    };
    let sources = [
        pending.long_name.is_some(),
        pax.path.is_some(),
        !prefix.is_empty(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        return refused(
            "a member names itself twice (GNU long name, PAX path or ustar prefix): GNU tar and forgekeep could read different names",
        );
    }
    let path = if let Some(n) = pending.long_name {
        n
    } else if let Some(p) = pax.path {
        p
    } else if !prefix.is_empty() {
        let mut p = prefix;
        p.push(b'/');
        p.extend_from_slice(c_str(&old.name));
        p
    } else {
        c_str(&old.name).to_vec()
    };
    let shown = String::from_utf8_lossy(&path).into_owned();

    let kind = match old.linkflag[0] {
        b'0' => MemberKind::File,
        b'5' => MemberKind::Dir,
        b'2' => MemberKind::Symlink,
        b'1' => return refused(format!("member {shown:?} is a hard link; hard links are refused")),
        b'3' | b'4' => return refused(format!("member {shown:?} is a device entry; only files, directories and symlinks are accepted")),
        b'6' => return refused(format!("member {shown:?} is a FIFO entry; only files, directories and symlinks are accepted")),
        b'S' => return refused(format!("member {shown:?} is a GNU sparse file; only plain files are accepted")),
        t => return refused(format!(
            "member {shown:?} has tar type {:?}; only files (0), directories (5) and symlinks (2) are accepted",
            t as char
        )),
    };

    // The link target: from exactly one source, and only on a link.
    let field = c_str(&old.linkname);
    let link_sources = [pending.long_link.is_some(), pax.linkpath.is_some()];
    if link_sources.iter().filter(|s| **s).count() > 1 {
        return refused(format!(
            "member {shown:?} names its link target twice (GNU long link and PAX linkpath)"
        ));
    }
    let link = pending
        .long_link
        .or(pax.linkpath)
        .or_else(|| (!field.is_empty()).then(|| field.to_vec()));
    if kind != MemberKind::Symlink && link.is_some() {
        return refused(format!(
            "member {shown:?} is not a link but names a link target"
        ));
    }

    // Numbers: the header's, which PAX may only restate.
    let restate = |what: &str, header: u64, pax: Option<u64>| -> Result<u64, TarError> {
        match pax {
            Some(p) if p != header => refused(format!(
                "member {shown:?}: its PAX {what} ({p}) disagrees with its header ({header})"
            )),
            _ => Ok(header),
        }
    };
    let size = restate("size", size, pax.size)?;
    let uid = restate("uid", number(&old.uid, "uid")?, pax.uid)?;
    let gid = restate("gid", number(&old.gid, "gid")?, pax.gid)?;
    restate("mtime", number(&old.mtime, "mtime")?, pax.mtime)?;
    let names = h
        .as_ustar()
        .map(|u| (c_str(&u.uname), c_str(&u.gname)))
        .or_else(|| h.as_gnu().map(|g| (c_str(&g.uname), c_str(&g.gname))));
    let (uname, gname) = names.unwrap_or((&[], &[]));
    if pax.uname.as_deref().is_some_and(|u| u != uname)
        || pax.gname.as_deref().is_some_and(|g| g != gname)
    {
        return refused(format!(
            "member {shown:?}: its PAX owner names disagree with its header"
        ));
    }
    let mode = number(&old.mode, "mode")?;
    if mode > 0o7777 {
        return refused(format!(
            "member {shown:?} has mode {mode:o}, beyond the permission bits"
        ));
    }
    if kind != MemberKind::File && size != 0 {
        // GNU tar never skips a folder's data (it reads it as more headers): a folder
        // with data would hide members from one reader or the other.
        return refused(format!(
            "member {shown:?} is a {} with {size} bytes of data (must be 0)",
            if kind == MemberKind::Dir {
                "folder"
            } else {
                "link"
            }
        ));
    }
    Ok(Member {
        kind,
        path,
        link,
        size,
        mode: mode as u32,
        uid,
        gid,
        uname: uname.to_vec(),
        gname: gname.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(size);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        h
    }

    fn archive(parts: &[(&tar::Header, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, data) in parts {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(BLOCK), 0);
        }
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        out
    }

    fn first(bytes: &[u8]) -> Result<Next, TarError> {
        TarReader::new(bytes).next_member()
    }

    #[test]
    fn plain_members_read_back() {
        let f = header("a/b", b'0', 3);
        let d = header("a/", b'5', 0);
        let bytes = archive(&[(&d, b""), (&f, b"xyz")]);
        let mut r = TarReader::new(&bytes[..]);
        let Next::Member(m) = r.next_member().unwrap() else {
            panic!()
        };
        assert_eq!((m.kind, m.path.as_slice()), (MemberKind::Dir, &b"a/"[..]));
        let Next::Member(m) = r.next_member().unwrap() else {
            panic!()
        };
        assert_eq!(m.size, 3);
        let mut s = String::new();
        r.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "xyz");
        assert!(matches!(r.next_member().unwrap(), Next::End));
    }

    #[test]
    fn oversized_extension_is_refused_unread() {
        // Declares 1 GiB and holds none of it: refused before any read.
        let l = header("././@LongLink", b'L', 1 << 30);
        let bytes = archive(&[(&l, b"")]);
        assert!(matches!(first(&bytes), Err(TarError::Refused(_))));
    }

    #[test]
    fn numbers_must_be_plain_octal() {
        assert_eq!(number(b"0000644\0", "mode").unwrap(), 0o644);
        assert_eq!(
            number(b"\x80\0\0\0\0\0\0\0\0\0\x01\0", "size").unwrap(),
            256
        );
        for bad in [
            &b" 000644\0"[..],
            b"+000644\0",
            b"00006x4\0",
            b"\0\0\0\0\0\0\0\0",
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(number(bad, "mode").is_err(), "{bad:?}");
        }
        assert!(number(b"\x80\x01\0\0\0\0\0\0\0\0\0\0", "size").is_err());
    }

    #[test]
    fn pax_records_parse_strictly() {
        let p = parse_pax(b"12 path=abc\n11 size=42\n").unwrap();
        assert_eq!(p.path.as_deref(), Some(&b"abc"[..]));
        assert_eq!(p.size, Some(42));
        for bad in [
            &b"12 path=abc"[..],
            b"13 path=abc\n",
            b"012 path=abc\n",
            b"9 path=\n",
            b"23 GNU.sparse.size=100\n",
            b"12 path=abc\n12 path=abd\n",
            b"12 size=042\n",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn folder_with_data_is_refused() {
        let d = header("a/", b'5', 512);
        let bytes = archive(&[(&d, &[0u8; 512])]);
        assert!(matches!(first(&bytes), Err(TarError::Refused(_))));
    }
}
