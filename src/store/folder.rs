//! A folder of archives, on this host or under a prefix in a bucket.
//!
//! `prune`, `status`, `verify --latest` and `backup --keep-*` see a folder the same way
//! wherever it is: the archives named `forgekeep-<host>-<stamp>.tar.zst.age` directly in
//! it (never in a sub-folder), newest first, with their sizes. Names and sizes come from
//! the listing alone: nothing is opened or decrypted. The rules applied to them are
//! [`crate::retention`]'s, written once for both.
//!
//! A prefix has no run lock (S3 has no `flock`); what keeps concurrent runs on one
//! prefix safe is in the README ("Concurrent runs on a prefix"): unique names created
//! only if absent, and a prune that deletes an archive only when its own listing holds
//! a newer one of the same host.

use super::{connect, ObjectUrl, S3Options, S3Store};
use crate::error::{Error, Result};
use crate::retention::{self, Archive};
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a folder of archives is.
#[derive(Debug, Clone)]
pub enum Folder {
    Local(PathBuf),
    Prefix { store: Arc<S3Store>, url: ObjectUrl },
}

impl Folder {
    /// `DIR` or `s3://BUCKET/PREFIX/` (connecting to the store; the trailing slash may be
    /// left out, as for `DIR`).
    pub fn open(arg: &Path, s3: &S3Options) -> Result<Folder> {
        match super::Location::parse(arg)? {
            super::Location::Local(dir) => Ok(Folder::Local(dir)),
            super::Location::S3(url) => Ok(Folder::Prefix {
                store: connect(s3)?,
                url: url.into_folder(),
            }),
        }
    }

    /// The archives directly in the folder, newest first (ties by name).
    pub fn archives(&self) -> Result<Vec<Archive>> {
        match self {
            Folder::Local(dir) => retention::list(dir),
            Folder::Prefix { store, url } => {
                let mut out: Vec<Archive> = store
                    .list(url)?
                    .into_iter()
                    .filter_map(|o| {
                        let name = o.url.name().to_string();
                        let (host, time) = retention::parse_name(&name)?;
                        Some(Archive {
                            path: PathBuf::from(o.url.to_string()),
                            name,
                            host,
                            time,
                            size: o.size,
                        })
                    })
                    .collect();
                retention::sort_newest_first(&mut out);
                Ok(out)
            }
        }
    }

    /// The archive `name` in this folder, as an archive argument (a path or a URL).
    pub fn join(&self, name: &OsStr) -> PathBuf {
        match self {
            Folder::Local(dir) => dir.join(name),
            Folder::Prefix { url, .. } => {
                PathBuf::from(url.join(&name.to_string_lossy()).to_string())
            }
        }
    }

    /// The folder as an argument (`DIR`, or `s3://BUCKET/PREFIX/`).
    pub fn arg(&self) -> PathBuf {
        match self {
            Folder::Local(dir) => dir.clone(),
            Folder::Prefix { url, .. } => PathBuf::from(url.to_string()),
        }
    }

    /// Is there anything named `name` in the folder (a file, a link, a folder; an
    /// object)?
    pub fn contains(&self, name: &OsStr) -> Result<bool> {
        match self {
            Folder::Local(dir) => match std::fs::symlink_metadata(dir.join(name)) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::io("cannot inspect", &dir.join(name), &e)),
            },
            Folder::Prefix { store, url } => {
                Ok(store.head(&url.join(&name.to_string_lossy()))?.is_some())
            }
        }
    }
}

impl fmt::Display for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Folder::Local(dir) => write!(f, "{}", dir.display()),
            Folder::Prefix { url, .. } => write!(f, "{url}"),
        }
    }
}
