//! The folder operations: list, retention, delete, and cleaning up after killed runs.
//!
//! `prune` and `status` see a prefix as they see a folder: its direct children only
//! (delimiter `/`), with size and time. Deleting respects Object Lock: an archive whose
//! retention date has not passed is reported as "kept by object lock until …", never an
//! error, since that is the lock doing its job. On a versioned bucket (Object Lock
//! requires versioning) a plain DeleteObject only hides the archive behind a delete
//! marker and keeps paying for it, so the current version is deleted by its version id.

use super::client::S3Store;
use super::config::LockMode;
use super::error::Failure;
use super::location::ObjectUrl;
use crate::error::Result;
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::ObjectLockMode;
use jiff::Timestamp;
use std::fmt;

/// One object of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub url: ObjectUrl,
    pub size: u64,
    pub last_modified: Option<Timestamp>,
}

/// An object's Object Lock retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub mode: LockMode,
    pub until: Timestamp,
}

/// What [`S3Store::delete`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The archive is gone (or was not there).
    Gone,
    /// Object Lock keeps it: until that date when the store said, else a legal hold or
    /// a lock the credential may not read.
    Kept(Option<Retention>),
}

impl fmt::Display for Deleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deleted::Gone => f.write_str("deleted"),
            Deleted::Kept(Some(r)) => write!(
                f,
                "kept by object lock until {} ({})",
                r.until.strftime("%Y-%m-%d %H:%M:%SZ"),
                r.mode.as_str()
            ),
            Deleted::Kept(None) => f.write_str("kept by object lock"),
        }
    }
}

/// The names forgekeep itself writes into a folder (archives and restore's undo
/// archives): the only multipart uploads [`S3Store::cleanup_stale_uploads`] touches.
pub fn is_forgekeep_name(name: &str) -> bool {
    !name.contains('/')
        && ((name.starts_with("forgekeep-") && name.ends_with(crate::archive::SUFFIX))
            || name.starts_with("restore-undo-"))
}

/// An unfinished upload to clean: one of forgekeep's own names (or `also`, the name this
/// run writes) directly in the folder, started before `cutoff` (an upload without a
/// start time is left alone).
fn is_stale(
    folder_key: &str,
    key: &str,
    also: Option<&str>,
    started: Option<Timestamp>,
    cutoff: Timestamp,
) -> bool {
    key.strip_prefix(folder_key)
        .is_some_and(|name| is_forgekeep_name(name) || (!name.contains('/') && Some(name) == also))
        && started.is_some_and(|t| t <= cutoff)
}

impl From<LockMode> for ObjectLockMode {
    fn from(m: LockMode) -> Self {
        match m {
            LockMode::Governance => ObjectLockMode::Governance,
            LockMode::Compliance => ObjectLockMode::Compliance,
        }
    }
}

pub(crate) fn timestamp(t: &DateTime) -> Option<Timestamp> {
    Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
}

impl S3Store {
    /// The objects directly in `folder` (not in its sub-folders), in key order.
    pub fn list(&self, folder: &ObjectUrl) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = self
                .client()
                .list_objects_v2()
                .bucket(&folder.bucket)
                .prefix(&folder.key)
                .delimiter("/")
                .set_continuation_token(token.take());
            let page = self
                .run(req.send())
                .map_err(|e| Failure::from_sdk(&e).into_error("cannot list", folder))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(ObjectInfo {
                    url: ObjectUrl {
                        bucket: folder.bucket.clone(),
                        key: key.to_string(),
                    },
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: o.last_modified().and_then(timestamp),
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// One listing request of at most one key in `folder`: proves, before a backup reads
    /// anything, that the bucket exists and the store accepts the credential. Unlike a
    /// HeadObject (whose answer has no body, so a refusal is a bare 403 or 404), a
    /// listing's error names its cause: no such bucket, an unknown access key, a wrong
    /// secret key, access denied.
    pub fn probe(&self, folder: &ObjectUrl) -> Result<()> {
        let req = self
            .client()
            .list_objects_v2()
            .bucket(&folder.bucket)
            .prefix(&folder.key)
            .delimiter("/")
            .max_keys(1);
        self.run(req.send())
            .map(|_| ())
            .map_err(|e| Failure::from_sdk(&e).into_error("cannot list", folder))
    }

    /// The object's Object Lock retention, or None when it has none (or the store has no
    /// Object Lock, or the credential may not read it).
    pub fn retention(&self, url: &ObjectUrl) -> Result<Option<Retention>> {
        Ok(self.head(url)?.and_then(|h| h.retention))
    }

    /// Deletes the archive, unless Object Lock keeps it (then says until when).
    pub fn delete(&self, url: &ObjectUrl) -> Result<Deleted> {
        let Some(head) = self.head(url)? else {
            return Ok(Deleted::Gone);
        };
        if let Some(r) = head.retention.filter(|r| r.until > Timestamp::now()) {
            return Ok(Deleted::Kept(Some(r)));
        }
        let req = self
            .client()
            .delete_object()
            .bucket(&url.bucket)
            .key(&url.key)
            .set_version_id(head.version_id.filter(|v| v != "null"));
        match self.run(req.send()) {
            Ok(_) => Ok(Deleted::Gone),
            Err(e) => {
                let f = Failure::from_sdk(&e);
                let said = f.message.to_ascii_lowercase();
                if (f.is("AccessDenied") || f.status == Some(403))
                    && (said.contains("lock")
                        || said.contains("worm")
                        || said.contains("retention"))
                {
                    Ok(Deleted::Kept(head.retention))
                } else {
                    Err(f.into_error("cannot delete", url))
                }
            }
        }
    }

    /// Aborts multipart uploads of forgekeep's own names directly in `folder` (and of
    /// `also`, a name there that a backup writes with `-o s3://BUCKET/KEY`) that were
    /// started more than `older_than` ago (runs killed mid-upload). Younger ones may
    /// belong to a run still going on another host, so they are left alone. Returns the
    /// objects whose uploads were aborted.
    pub fn cleanup_stale_uploads(
        &self,
        folder: &ObjectUrl,
        older_than: jiff::SignedDuration,
        also: Option<&str>,
    ) -> Result<Vec<ObjectUrl>> {
        let cutoff = Timestamp::now() - older_than;
        let mut stale = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let req = self
                .client()
                .list_multipart_uploads()
                .bucket(&folder.bucket)
                .prefix(&folder.key)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take());
            let page = self.run(req.send()).map_err(|e| {
                Failure::from_sdk(&e).into_error("cannot list the unfinished uploads in", folder)
            })?;
            for u in page.uploads() {
                let (Some(key), Some(id)) = (u.key(), u.upload_id()) else {
                    continue;
                };
                if is_stale(
                    &folder.key,
                    key,
                    also,
                    u.initiated().and_then(timestamp),
                    cutoff,
                ) {
                    stale.push((key.to_string(), id.to_string()));
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        let mut aborted = Vec::new();
        for (key, id) in stale {
            let url = ObjectUrl {
                bucket: folder.bucket.clone(),
                key,
            };
            let req = self
                .client()
                .abort_multipart_upload()
                .bucket(&url.bucket)
                .key(&url.key)
                .upload_id(id);
            match self.run(req.send()) {
                Ok(_) => aborted.push(url),
                // Gone meanwhile: another run cleaned it, or it completed.
                Err(e) if Failure::from_sdk(&e).is("NoSuchUpload") => {}
                Err(e) => {
                    return Err(Failure::from_sdk(&e)
                        .into_error("cannot abort the unfinished upload to", &url))
                }
            }
        }
        Ok(aborted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_forgekeep_names_are_cleaned() {
        assert!(is_forgekeep_name(
            "forgekeep-git-20261125T030000Z.tar.zst.age"
        ));
        assert!(is_forgekeep_name(
            "restore-undo-git-20261125T030000Z.tar.zst.age"
        ));
        for other in [
            "notes.txt",
            "forgekeep-git-20261125T030000Z.tar.zst",
            "sub/forgekeep-git-20261125T030000Z.tar.zst.age",
            "my-forgekeep-x.tar.zst.age",
        ] {
            assert!(!is_forgekeep_name(other), "{other}");
        }
    }

    #[test]
    fn only_uploads_started_before_the_cutoff_are_stale() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let cutoff = t("2026-11-25T03:00:00Z");
        let name = "p/forgekeep-git-20261125T000000Z.tar.zst.age";
        let old = Some(t("2026-11-25T02:59:59Z"));
        assert!(is_stale("p/", name, None, old, cutoff));
        assert!(
            !is_stale("p/", name, None, Some(t("2026-11-25T03:00:01Z")), cutoff),
            "young: maybe running elsewhere"
        );
        assert!(!is_stale("p/", name, None, None, cutoff));
        assert!(!is_stale("q/", name, None, old, cutoff));
        // A name of the user's: only the one this run writes.
        assert!(!is_stale("p/", "p/mine.age", None, old, cutoff));
        assert!(is_stale("p/", "p/mine.age", Some("mine.age"), old, cutoff));
        assert!(!is_stale(
            "p/",
            "p/sub/mine.age",
            Some("mine.age"),
            old,
            cutoff
        ));
    }

    #[test]
    fn kept_says_until_when() {
        let r = Retention {
            mode: LockMode::Compliance,
            until: "2026-12-25T03:00:00Z".parse().unwrap(),
        };
        assert_eq!(
            Deleted::Kept(Some(r)).to_string(),
            "kept by object lock until 2026-12-25 03:00:00Z (compliance)"
        );
    }
}
