//! Where an archive lives: a local path, or an object (or a folder of them) in a bucket.
//!
//! Every command argument that names an archive file or folder may be an `s3://` URL. The
//! trailing-slash rule is the one `-o DIR/` already follows: `s3://BUCKET/PREFIX/` (and
//! the bucket itself, `s3://BUCKET` or `s3://BUCKET/`) is a folder, in which forgekeep
//! names the archive; `s3://BUCKET/KEY` is one object. URLs are taken literally, as the
//! `aws` CLI does: no percent-decoding, so the key is exactly what the user typed.

use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};

const SCHEME: &str = "s3://";
/// S3's limit on a key's length, in bytes.
const MAX_KEY: usize = 1024;

/// An archive argument: a local path (as today) or an object URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3(ObjectUrl),
}

impl Location {
    /// `s3://…` is an object URL; anything else is a local path, unchanged.
    pub fn parse(arg: &Path) -> Result<Location> {
        match arg.to_str() {
            Some(s) if s.starts_with(SCHEME) => Ok(Location::S3(ObjectUrl::parse(s)?)),
            _ => Ok(Location::Local(arg.to_path_buf())),
        }
    }
}

/// `s3://BUCKET/KEY`, or a folder `s3://BUCKET/PREFIX/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectUrl {
    pub bucket: String,
    /// The key; empty or ending in `/` for a folder.
    pub key: String,
}

impl ObjectUrl {
    pub fn parse(url: &str) -> Result<ObjectUrl> {
        let bad = |why: &str| {
            Error::usage(format!("{}: not an S3 object URL: {why}", shown(url)))
                .hint("write s3://BUCKET/KEY for an archive, s3://BUCKET/PREFIX/ for a folder")
        };
        let rest = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing"));
        }
        // Lenient on purpose (older AWS buckets and some stores allow upper case and `_`),
        // strict enough to catch a host name, a port or a credential pasted in.
        if bucket.len() > 255
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(bad(
                "a bucket name has only letters, digits, '.', '-' and '_'",
            ));
        }
        if key.len() > MAX_KEY {
            return Err(bad("the key is longer than 1024 bytes"));
        }
        if key.split('/').rev().skip(1).any(str::is_empty) || key.starts_with('/') {
            return Err(bad("the key has an empty path segment (//)"));
        }
        if key.chars().any(char::is_control) {
            return Err(bad("the key has a control character"));
        }
        Ok(ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// A folder: the bucket's root or a key ending in `/`.
    pub fn is_folder(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The object named `name` in this folder.
    pub fn join(&self, name: &str) -> ObjectUrl {
        debug_assert!(self.is_folder(), "join on an object URL");
        ObjectUrl {
            bucket: self.bucket.clone(),
            key: format!("{}{name}", self.key),
        }
    }

    /// The last path segment of an object's key (its "file name").
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }

    /// The folder the object is in (a folder is its own).
    pub fn folder(&self) -> ObjectUrl {
        let end = self.key.rfind('/').map_or(0, |i| i + 1);
        ObjectUrl {
            bucket: self.bucket.clone(),
            key: self.key[..end].to_string(),
        }
    }

    /// This URL read as a folder: where only a folder makes sense (prune, status,
    /// `verify --latest`), `s3://BUCKET/PREFIX` means `s3://BUCKET/PREFIX/`, as `DIR`
    /// needs no trailing slash there either.
    pub fn into_folder(mut self) -> ObjectUrl {
        if !self.is_folder() {
            self.key.push('/');
        }
        self
    }
}

/// The argument as it may be printed: on one line, and without anything before an `@`
/// (someone may paste `s3://KEY:SECRET@host/…` from another tool's syntax).
fn shown(url: &str) -> String {
    let url = match url.split_once('@') {
        Some((_, host_and_path)) => format!("{SCHEME}…@{host_and_path}"),
        None => url.to_string(),
    };
    url.escape_debug().to_string()
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> ObjectUrl {
        ObjectUrl::parse(s).unwrap()
    }

    #[test]
    fn object_and_folder_urls() {
        let o = url("s3://backups/forge/a.tar.zst.age");
        assert_eq!(
            (o.bucket.as_str(), o.key.as_str()),
            ("backups", "forge/a.tar.zst.age")
        );
        assert!(!o.is_folder());
        assert_eq!(o.name(), "a.tar.zst.age");
        assert!(url("s3://backups/forge/").is_folder());
        assert!(url("s3://backups/").is_folder());
        assert!(url("s3://backups").is_folder());
        assert_eq!(url("s3://backups").to_string(), "s3://backups/");
        assert_eq!(
            url("s3://backups/forge/").join("x.age").to_string(),
            "s3://backups/forge/x.age"
        );
        assert_eq!(o.folder(), url("s3://backups/forge/"));
        assert_eq!(url("s3://backups/a.age").folder(), url("s3://backups"));
        assert_eq!(
            url("s3://backups/forge/").folder(),
            url("s3://backups/forge/")
        );
        assert_eq!(
            url("s3://backups/forge").into_folder(),
            url("s3://backups/forge/")
        );
        assert_eq!(url("s3://backups").into_folder(), url("s3://backups/"));
    }

    #[test]
    fn local_paths_stay_local() {
        for p in ["/var/backups/", "out.age", "-", "s3:/not-a-url", "./s3://x"] {
            assert_eq!(
                Location::parse(Path::new(p)).unwrap(),
                Location::Local(PathBuf::from(p))
            );
        }
        assert!(matches!(
            Location::parse(Path::new("s3://b/k")).unwrap(),
            Location::S3(_)
        ));
    }

    #[test]
    fn malformed_urls_are_one_line_usage_errors() {
        for bad in [
            "s3://",
            "s3:///key",
            "s3://user:secret@host/key",
            "s3://host:9000/key",
            "s3://b/a//b",
            "s3://b//a",
            "s3://b/a\nb",
        ] {
            let e = ObjectUrl::parse(bad).unwrap_err();
            assert_eq!(e.exit, crate::error::ExitCode::Usage, "{bad}");
            assert!(e.hint.is_some() && !e.to_string().contains('\n'), "{e}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        assert!(ObjectUrl::parse(&format!("s3://b/{}", "k".repeat(1025))).is_err());
    }
}
