//! Resource ceilings for reading an UNTRUSTED archive.
//!
//! Anyone with the public recipient can make an archive that decrypts, and zstd turns a
//! few KiB into gigabytes: a 1.9 MB archive held a 253 MiB manifest of 2.35 million
//! entries (0.7 GiB in `verify`, 1.9 GiB in `restore --dry-run`), a 129 KiB one a valid
//! 4 GiB file. So every reader stops at ceilings that a forge's secrets never approach
//! (a forge has tens to a few thousand secret files; the benchmark's "many" set has
//! 50,000), checked BEFORE the bytes they bound are read or held. Each one has a flag
//! to raise it (`--max-entries`, `--max-manifest-bytes`, `--max-content-bytes` on
//! verify, list, diff and restore) for the archive someone knows to be that large.
//!
//! Fixed, without flags (nothing real comes near): extension headers
//! ([`super::strict_tar::MAX_EXTENSION_BYTES`]), path length, name length and depth
//! below, and `SHA256SUMS`, whose size is bounded by what the manifest's files need.

/// Default of `--max-entries`: entries (and sources, findings) a manifest may list.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default of `--max-manifest-bytes` (a genuine manifest of 50,000 entries is ~12 MiB).
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Default of `--max-content-bytes`: the sum of the file sizes the manifest lists
/// (keys and configuration are KiB; a CI database kept with `--with-db` a few GiB).
pub const DEFAULT_MAX_CONTENT_BYTES: u64 = 16 << 30;

/// The longest recorded path: Linux's PATH_MAX (4096) less its terminating NUL.
pub const MAX_PATH_BYTES: usize = 4095;
/// The longest path component (NAME_MAX).
pub const MAX_NAME_BYTES: usize = 255;
/// The deepest recorded path, in components (`/var/lib/gitea/jwt/private.pem` is 5).
pub const MAX_DEPTH: usize = 256;

/// The ceilings one read works under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_manifest_bytes: u64,
    pub max_content_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            max_content_bytes: DEFAULT_MAX_CONTENT_BYTES,
        }
    }
}

/// `64M`, `16GiB`, `1000000`: a byte count with an optional binary unit (K, M, G, T,
/// optionally followed by `iB` or `B`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 64M, 16G, 1000000)"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("{s:?}: unknown unit (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("16GiB").unwrap(), 16 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert!(parse_size("M").is_err());
        assert!(parse_size("1X").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }
}
