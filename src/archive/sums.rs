//! `forgekeep/SHA256SUMS`: the checksum list in the exact format `sha256sum -c` reads.
//!
//! Paths are relative to the extraction root (`var/lib/gitea/jwt/private.pem`), so after
//! `tar -x -C DIR` the user runs `cd DIR && sha256sum -c forgekeep/SHA256SUMS`. Names with
//! a backslash or newline use GNU's escaped form (a leading `\` on the line), as
//! `sha256sum` itself writes them.

use sha2::{Digest, Sha256};
use std::io::{self, Read};

pub type Sha256Sum = [u8; 32];

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    pub count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> Sha256Sum {
        self.hasher.finalize().into()
    }

    pub fn into_parts(self) -> (R, Sha256Sum, u64) {
        let count = self.count;
        (self.inner, self.hasher.finalize().into(), count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it on the way to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    pub count: u64,
}

impl<W: io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (Sha256Sum, u64) {
        (self.hasher.finalize().into(), self.count)
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 of a buffer.
pub fn sha256(bytes: &[u8]) -> Sha256Sum {
    Sha256::digest(bytes).into()
}

pub fn sha256_hex(sum: &Sha256Sum) -> String {
    crate::fsx::hex(sum)
}

/// One `sha256sum` line for `member` (a relative path).
pub fn line(sum: &Sha256Sum, member: &str) -> String {
    if member.contains(['\\', '\n', '\r']) {
        let escaped = member
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{}  {escaped}\n", sha256_hex(sum))
    } else {
        format!("{}  {member}\n", sha256_hex(sum))
    }
}

/// Parses a SHA256SUMS file into (member, hex digest) pairs. `None` if any line is
/// malformed: a reader treats that as a damaged archive.
pub fn parse(text: &str) -> Option<Vec<(String, String)>> {
    // Split on '\n' only: `str::lines` would also eat a '\r' that ends a name.
    text.split_terminator('\n').map(parse_line).collect()
}

/// One line (without its `\n`): `HEX  NAME`, or `\HEX  ESCAPED-NAME`.
pub fn parse_line(raw: &str) -> Option<(String, String)> {
    let (escaped, l) = match raw.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (hex, name) = l.split_once("  ")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let name = if escaped {
        unescape(name)?
    } else {
        name.to_string()
    };
    Some((name, hex.to_ascii_lowercase()))
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_round_trip() {
        let sum = [7u8; 32];
        for name in ["a/b", "we\\ird", "new\nline", "sp ace", "cr\r", "tab\tx"] {
            let l = line(&sum, name);
            let parsed = parse(&l).unwrap();
            assert_eq!(parsed, vec![(name.to_string(), sha256_hex(&sum))]);
        }
    }

    #[test]
    fn malformed_lines_are_rejected() {
        assert!(parse("zz  a\n").is_none());
        assert!(parse(&format!("{} a\n", "0".repeat(64))).is_none());
    }
}
