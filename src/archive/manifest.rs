//! The manifest: the first member of every archive, `forgekeep/manifest.json`.
//!
//! It is written before any secret so that a reader knows, before the first byte of
//! content, every entry the archive claims to hold and where it may go. Restore checks
//! each tar member against it (a member the manifest does not list, or whose header
//! disagrees with it, refuses the whole archive), so the manifest is the archive's table
//! of contents and its allow-list at once. Names of users and groups are recorded next to
//! the numbers because the `git` user is 1000 on one host and 998 on another.

use super::limits::Limits;
use crate::error::{Error, Result};
use crate::findings::Finding;
use serde::{Deserialize, Serialize};
use std::io::Read;

pub const FORMAT_NAME: &str = "forgekeep-archive";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub tool: String,
    /// UTC, RFC 3339.
    pub created: String,
    pub host: String,
    #[serde(deserialize_with = "bounded::vec")]
    pub sources: Vec<Source>,
    #[serde(default, deserialize_with = "bounded::vec")]
    pub findings: Vec<Finding>,
    /// The `--exclude` globs of the backup (so `diff` does not call what they left out
    /// "extra").
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "bounded::vec"
    )]
    pub exclude: Vec<String>,
    #[serde(deserialize_with = "bounded::vec")]
    pub entries: Vec<Entry>,
}

/// How owners come back on restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ownership {
    /// By user and group name, falling back to the number where the name is unknown.
    Name,
    /// By number (container volumes: the uid inside the container is what counts).
    Numeric,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The path as the user gave it.
    pub given: String,
    /// Absolute path, its parent directories resolved.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub ownership: Ownership,
    /// What the profile says it is ("OAuth2 JWT signing key").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// The path inside the container (sources found through a compose file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
        }
    }
}

/// Why an entry is in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A source or something below it: restored in full (content, owner, mode).
    Content,
    /// A directory above a source, stored so a new host gets it with the right owner and
    /// mode; restore creates it when missing and never changes an existing one.
    Ancestor,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Absolute path on the host it was taken from.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub role: Role,
    /// Index into `Manifest::sources` (for ancestors: the first source below them).
    pub source: usize,
    pub size: u64,
    /// Permission bits, octal string such as "0600".
    #[serde(with = "octal")]
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// SHA-256 of the content, where known when the manifest was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Entry {
    /// The member name inside the tar: the absolute path without its leading `/`.
    pub fn member_name(&self) -> &str {
        self.path.trim_start_matches('/')
    }
}

/// Lists in the manifest that stop growing at a ceiling, so a hostile manifest cannot
/// make the parser allocate millions of entries before anyone counts them. serde gives a
/// `deserialize_with` function no context, so the ceiling of the parse under way is kept
/// in a thread-local set by [`with_limit`] for the length of one parse.
mod bounded {
    use serde::de::{Deserialize, Deserializer, Error as _, SeqAccess, Visitor};
    use std::cell::Cell;
    use std::marker::PhantomData;

    thread_local! {
        static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    const MESSAGE: &str = "forgekeep: list longer than the ceiling";

    pub fn with_limit<T>(limit: usize, f: impl FnOnce() -> T) -> T {
        let before = LIMIT.with(|l| l.replace(limit));
        let out = f();
        LIMIT.with(|l| l.set(before));
        out
    }

    /// Did this error come from a ceiling?
    pub fn hit(e: &serde_json::Error) -> bool {
        e.to_string().starts_with(MESSAGE)
    }

    pub fn vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        struct Bounded<T>(usize, PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if out.len() >= self.0 {
                        return Err(A::Error::custom(MESSAGE));
                    }
                    out.push(item);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Bounded(LIMIT.with(Cell::get), PhantomData))
    }
}

mod octal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let s = String::deserialize(d)?;
        u32::from_str_radix(&s, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| serde::de::Error::custom(format!("bad mode {s:?}")))
    }
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_json(&mut v).expect("manifest serialises");
        v
    }

    /// Writes the manifest's JSON (pretty-printed, ending in a newline) to `w`, through a
    /// buffer: serde writes a token at a time. The same manifest always gives the same
    /// bytes, which the archive writer relies on (it measures, then writes).
    pub fn write_json(&self, w: impl std::io::Write) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
        serde_json::to_writer_pretty(&mut w, self)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    /// Parses a whole manifest held in memory (tests, fuzzing); see [`Manifest::read`].
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Manifest> {
        Manifest::read(bytes, limits)
    }

    /// Parses the manifest as it streams in (it is never held whole as text) and checks
    /// its own consistency; no list in it may grow past `limits.max_entries` items, so
    /// memory stays bounded by the ceiling, not by what the archive claims. Entry paths
    /// are checked further by [`super::validate`].
    pub fn read(r: impl Read, limits: &Limits) -> Result<Manifest> {
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(r));
        let parsed = bounded::with_limit(limits.max_entries, || {
            Manifest::deserialize(&mut de).and_then(|m| de.end().map(|()| m))
        });
        let m = match parsed {
            Ok(m) => m,
            Err(e) if e.is_io() => {
                return Err(Error::integrity(format!(
                    "the manifest cannot be read: it is truncated or was modified ({e})"
                )))
            }
            Err(e) if bounded::hit(&e) => {
                return Err(Error::integrity(format!(
                    "the manifest lists more than {} entries, sources or findings (--max-entries)",
                    limits.max_entries
                ))
                .hint("a forge's secrets are far fewer; if you trust this archive, raise the ceiling with --max-entries N"))
            }
            Err(e) => return Err(Error::integrity(format!("the manifest is not valid: {e}"))),
        };
        if m.format != FORMAT_NAME {
            return Err(Error::integrity(format!(
                "not a forgekeep archive (format {:?})",
                m.format
            )));
        }
        if m.version != FORMAT_VERSION {
            return Err(Error::integrity(format!(
                "archive format version {} is not supported by this forgekeep (it reads version {FORMAT_VERSION})",
                m.version
            ))
            .hint("use the forgekeep version that wrote it, or recover it with age, zstd and tar"));
        }
        for e in &m.entries {
            if e.source >= m.sources.len() {
                return Err(Error::integrity(format!(
                    "manifest entry {} names a source that does not exist",
                    e.path
                )));
            }
        }
        Ok(m)
    }
}
