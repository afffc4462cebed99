//! Streaming an archive into an object: `std::io::Write` in, one object out, or none.
//!
//! The archive writer pushes bytes into an [`Upload`]; nothing is copied to local disk.
//! Up to [`PART_SIZE`] bytes are buffered; an archive that fits is sent with one
//! PutObject at [`Upload::commit`], a larger one becomes a multipart upload whose parts
//! go out in the background ([`PARTS_IN_FLIGHT`] at most) while the next part fills, so
//! memory stays near `(PARTS_IN_FLIGHT + 1) × PART_SIZE` whatever the archive's size.
//! Every request that carries data carries its SHA-256 (`x-amz-checksum-sha256`, which
//! the store verifies before accepting the part; buckets with a default Object Lock
//! retention require such a header). The object appears under its name only when
//! CompleteMultipartUpload (or the single PutObject) succeeds, and the size the store
//! then reports is checked against the bytes sent. An upload that fails, or that is
//! dropped without [`Upload::commit`], is aborted, so no part lingers and no object
//! exists under the final name; one killed outright leaves a multipart upload that
//! [`S3Store::cleanup_stale_uploads`](super::S3Store::cleanup_stale_uploads) removes later.
//!
//! # Never replacing an archive without `--force`
//!
//! Unless [`UploadOptions::replace`] is set, three guards stand before the final request:
//!
//! 1. a HeadObject when the upload starts, so an existing name fails at once, before any
//!    archive data is made or sent;
//! 2. a second HeadObject right before the final request (CompleteMultipartUpload or
//!    PutObject), after all the data is on the store;
//! 3. `If-None-Match: *` on that final request: the store itself refuses to create the
//!    object if the name exists, atomically (AWS S3, MinIO, Ceph RGW, R2, moto).
//!
//! After the final request, a HeadObject confirms the size and that the ETag is the one
//! the store returned for this upload.
//!
//! What that guarantees against another writer of the same name:
//! * on stores that honour `If-None-Match` (3), nothing is ever replaced, whatever the
//!   timing: of two racing writers exactly one succeeds, the other gets "already exists";
//! * on stores that ignore it (Garage 2.5 lets the overwrite through), guard 2 still
//!   refuses any object committed before that HeadObject was answered. An object
//!   committed by another writer in the window between that answer and our own final
//!   request (one round trip, milliseconds; not the length of the upload) can be
//!   replaced. The closing check then catches the case where our object is the one
//!   replaced (another ETag under the name: an error, not a success); the writer whose
//!   object we replaced catches it by its own closing check if that check runs after our
//!   commit. Only when both final requests fall inside each other's window can a
//!   replacement go unreported. forgekeep's own names carry the host and the second
//!   (`forgekeep-<host>-<stamp>.tar.zst.age`) and one host runs one backup at a time
//!   (its lock), so that needs two hosts writing one explicitly named key at once.
//!
//! A retried final request whose first attempt did succeed (its answer was lost to a
//! reset) meets our own object: "already exists" or "no such upload". The uploader then
//! recognises its own object by size and ETag (the multipart ETag is computed from the
//! parts' ETags, a single PutObject's from the MD5 of the data) instead of failing. The
//! same check accepts a final answer of 200 whose body cannot be parsed.

use super::client::{Head, S3Store};
use super::config::LockMode;
use super::error::Failure;
use super::location::ObjectUrl;
use super::objects::Retention;
use crate::error::{Error, Result};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectLockRetention,
    ObjectLockRetentionMode,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use sha2::{Digest as _, Sha256};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The size of a part (the first thousand; see [`part_size`]). S3 wants at least 5 MiB.
pub const PART_SIZE: usize = 8 << 20;
/// Parts on the wire at once while the next one fills.
pub const PARTS_IN_FLIGHT: usize = 1;
/// S3's limit on the number of parts.
const MAX_PARTS: i32 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// Replace an existing object (`--force`); otherwise an existing name is an error.
    pub replace: bool,
    /// Object Lock retention for the new object.
    pub lock: Option<Retention>,
    /// Bytes per part; 0 means [`PART_SIZE`]. At least 5 MiB (S3's minimum) otherwise.
    pub part_size: usize,
}

/// The object an upload made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub url: ObjectUrl,
    pub size: u64,
    pub etag: String,
    /// Set on versioned buckets (Object Lock requires versioning).
    pub version_id: Option<String>,
}

/// An archive being written to `url`. See the module documentation.
pub struct Upload {
    store: Arc<S3Store>,
    url: ObjectUrl,
    opts: UploadOptions,
    buf: Vec<u8>,
    written: u64,
    multipart: Option<Multipart>,
    /// The first failure; every later write and the commit return it.
    failed: Option<Error>,
    committed: bool,
}

struct Multipart {
    upload_id: String,
    done: Vec<Part>,
    /// Each part on the wire, with a handle on its bytes: once the part is stored, the
    /// SDK has let go of them and the buffer is filled again with the next part (see
    /// [`Upload::send_part`]).
    in_flight: VecDeque<(JoinHandle<Result<Part, Failure>>, Bytes)>,
    /// The buffer of the last part that was stored, to be filled next.
    spare: Option<Vec<u8>>,
    next_number: i32,
}

impl Multipart {
    /// Waits for the oldest part on the wire; its buffer becomes the spare.
    fn wait_oldest(&mut self, store: &S3Store, url: &ObjectUrl) -> Result<()> {
        let Some((h, bytes)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let part = wait_part(store, h, url)?;
        self.done.push(part);
        self.spare = bytes.try_into_mut().ok().map(Vec::from);
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Part {
    number: i32,
    etag: String,
    sha256: String,
}

/// Part `number` (1-based) is [`PART_SIZE`] × 2^((number-1)/1000): 8 MiB parts up to
/// 8 GB, then larger ones, so the 10,000-part limit is ~80 TB instead of 80 GB, and the
/// archives forgekeep makes (megabytes to a few gigabytes) keep the small memory bound.
fn part_size(base: usize, number: i32) -> usize {
    base << ((number - 1) / 1000).clamp(0, 10)
}

impl Upload {
    /// Starts an upload to `url` (an object, not a folder). Fails at once if the name
    /// exists and `replace` is not set.
    pub fn create(store: Arc<S3Store>, url: &ObjectUrl, opts: UploadOptions) -> Result<Upload> {
        if url.is_folder() {
            return Err(
                Error::usage(format!("{url} is a folder, not an object")).hint(
                    "name the archive (s3://BUCKET/KEY), or let forgekeep name it in the folder",
                ),
            );
        }
        if opts.part_size != 0 && opts.part_size < 5 << 20 {
            return Err(Error::usage("an S3 part must be at least 5 MiB"));
        }
        if !opts.replace {
            refuse_existing(&store, url)?;
        }
        let base = if opts.part_size == 0 {
            PART_SIZE
        } else {
            opts.part_size
        };
        Ok(Upload {
            store,
            url: url.clone(),
            buf: Vec::with_capacity(base),
            opts: UploadOptions {
                part_size: base,
                ..opts
            },
            written: 0,
            multipart: None,
            failed: None,
            committed: false,
        })
    }

    /// Makes the object visible under its name; see the module documentation.
    pub fn commit(mut self) -> Result<Committed> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let committed = if self.multipart.is_none() {
            self.put_whole()?
        } else {
            self.complete()?
        };
        // From here on the object exists: dropping `self` must not abort anything.
        self.committed = true;
        self.confirm(committed)
    }

    /// The archive is small: one PutObject, conditional unless replacing.
    fn put_whole(&mut self) -> Result<Committed> {
        let data = Bytes::from(std::mem::take(&mut self.buf));
        if !self.opts.replace {
            refuse_existing(&self.store, &self.url)?;
        }
        let md5 = Md5::digest(&data);
        let mut req = self
            .store
            .client()
            .put_object()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .content_length(data.len() as i64)
            .content_md5(aws_smithy_types::base64::encode(md5))
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(sha256_base64(&data));
        if !self.opts.replace {
            req = req.if_none_match("*");
        }
        if let Some(r) = &self.opts.lock {
            req = req
                .object_lock_mode(r.mode.into())
                .object_lock_retain_until_date(to_datetime(r.until));
        }
        let size = data.len() as u64;
        let result = self.store.run(req.body(ByteStream::from(data)).send());
        match result {
            Ok(out) => Ok(Committed {
                url: self.url.clone(),
                size,
                etag: out.e_tag().unwrap_or("").to_string(),
                version_id: out.version_id().map(str::to_string),
            }),
            Err(e) => {
                let f = Failure::from_sdk(&e);
                let expected = format!("\"{}\"", crate::fsx::hex(&md5));
                self.recognise_own(f, size, &expected)
            }
        }
    }

    /// A final request failed as if the object existed or the upload were gone: if the
    /// object under the name is ours (a retried request whose first attempt succeeded),
    /// that is success.
    fn recognise_own(&self, f: Failure, size: u64, expected_etag: &str) -> Result<Committed> {
        // A 200 whose body the SDK cannot parse is a success in other words (moto 5.2
        // names CompleteMultipartUpload's root element ...Response, not ...Result).
        if f.precondition_failed() || f.is("NoSuchUpload") || f.status == Some(200) {
            if let Ok(Some(h)) = self.store.head(&self.url) {
                if h.size == size && same_etag(&h.etag, expected_etag) {
                    return Ok(Committed {
                        url: self.url.clone(),
                        size,
                        etag: h.etag,
                        version_id: h.version_id,
                    });
                }
            }
        }
        Err(f.into_error("cannot upload", &self.url))
    }

    /// Sends the last part, waits for all, checks the name is still free, completes.
    fn complete(&mut self) -> Result<Committed> {
        if !self.buf.is_empty() {
            self.send_part()?;
        }
        let mp = self.multipart.as_mut().expect("multipart");
        while !mp.in_flight.is_empty() {
            mp.wait_oldest(&self.store, &self.url)?;
        }
        mp.done.sort_by_key(|p| p.number);
        if !self.opts.replace {
            refuse_existing(&self.store, &self.url)?;
        }
        let mp = self.multipart.as_ref().expect("multipart");
        let parts: Vec<CompletedPart> = mp
            .done
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(&p.etag)
                    .checksum_sha256(&p.sha256)
                    .build()
            })
            .collect();
        let mut req = self
            .store
            .client()
            .complete_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(&mp.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        if !self.opts.replace {
            req = req.if_none_match("*");
        }
        let expected = multipart_etag(&mp.done);
        match self.store.run(req.send()) {
            Ok(out) => Ok(Committed {
                url: self.url.clone(),
                size: self.written,
                etag: out.e_tag().unwrap_or("").to_string(),
                version_id: out.version_id().map(str::to_string),
            }),
            Err(e) => {
                let f = Failure::from_sdk(&e);
                match expected {
                    Some(etag) => self.recognise_own(f, self.written, &etag),
                    None => Err(f.into_error("cannot upload", &self.url)),
                }
            }
        }
    }

    /// The closing check: the store holds exactly what was sent, under the ETag it gave.
    fn confirm(&self, c: Committed) -> Result<Committed> {
        let h = self.store.head(&self.url)?;
        let Some(Head {
            size,
            etag,
            retention,
            ..
        }) = h
        else {
            return Err(Error::runtime(format!(
                "{}: the store reported the upload complete, but has no such object",
                self.url
            ))
            .hint("another writer may have deleted it; run again"));
        };
        if size != c.size {
            return Err(Error::integrity(format!(
                "{}: the store holds {size} bytes where {} were sent",
                self.url, c.size
            ))
            .hint("the object is damaged; delete it and run again"));
        }
        if !c.etag.is_empty() && !same_etag(&etag, &c.etag) {
            return Err(Error::runtime(format!(
                "{}: another writer replaced the archive right after it was written",
                self.url
            ))
            .hint("two runs wrote the same name at once; give each host its own name or folder, and run again"));
        }
        if let Some(want) = self.opts.lock {
            if retention.is_none_or(|r| r.until < want.until) {
                self.set_retention(&c, want)?;
            }
        }
        Ok(c)
    }

    /// Some stores take the Object Lock headers on PutObject but not on
    /// CreateMultipartUpload (moto): the retention is then set on the new version
    /// explicitly, and checked, because an archive the user asked to lock must never be
    /// silently unlocked. The archive exists by then, so a failure here says so: it is
    /// a backup, only not the locked one asked for (deleting it would leave none, and a
    /// backup-only credential may not delete).
    fn set_retention(&self, c: &Committed, want: Retention) -> Result<()> {
        self.lock_new_version(c, want).map_err(|e| Error {
            what: format!(
                "{}; the archive itself was written, without the lock",
                e.what
            ),
            ..e
        })
    }

    fn lock_new_version(&self, c: &Committed, want: Retention) -> Result<()> {
        let req = self
            .store
            .client()
            .put_object_retention()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .set_version_id(c.version_id.clone())
            .retention(
                ObjectLockRetention::builder()
                    .mode(match want.mode {
                        LockMode::Governance => ObjectLockRetentionMode::Governance,
                        LockMode::Compliance => ObjectLockRetentionMode::Compliance,
                    })
                    .retain_until_date(to_datetime(want.until))
                    .build(),
            );
        self.store.run(req.send()).map_err(|e| {
            Failure::from_sdk(&e).into_error("cannot set the Object Lock retention of", &self.url)
        })?;
        match self.store.head(&self.url)?.and_then(|h| h.retention) {
            Some(r) if r.until >= want.until => Ok(()),
            _ => Err(Error::runtime(format!(
                "{}: the store did not keep the Object Lock retention asked for",
                self.url
            ))
            .hint("use a bucket created with Object Lock enabled, on a store that supports it")),
        }
    }

    /// Starts the multipart upload (on the first full buffer), then hands the buffer to a
    /// background task, waiting first if [`PARTS_IN_FLIGHT`] parts are already out.
    fn send_part(&mut self) -> Result<()> {
        if self.multipart.is_none() {
            self.multipart = Some(self.start_multipart()?);
        }
        let mp = self.multipart.as_mut().expect("multipart");
        if mp.next_number > MAX_PARTS {
            return Err(Error::runtime(format!(
                "{}: the archive is larger than S3's 10,000 parts allow",
                self.url
            )));
        }
        while mp.in_flight.len() >= PARTS_IN_FLIGHT {
            mp.wait_oldest(&self.store, &self.url)?;
        }
        let number = mp.next_number;
        mp.next_number += 1;
        let next_size = part_size(self.opts.part_size, mp.next_number);
        // The buffer of a stored part is filled again rather than a new one allocated:
        // the memory bound is then exactly PARTS_IN_FLIGHT + 1 buffers, without the
        // allocator keeping freed ones around (measured: 8 MiB less peak RSS).
        let next = match mp.spare.take() {
            Some(mut v) if v.capacity() >= next_size => {
                v.clear();
                v
            }
            _ => Vec::with_capacity(next_size),
        };
        let data = Bytes::from(std::mem::replace(&mut self.buf, next));
        let task = upload_part(
            self.store.client().clone(),
            self.url.clone(),
            mp.upload_id.clone(),
            number,
            data.clone(),
        );
        mp.in_flight.push_back((self.store.spawn(task), data));
        Ok(())
    }

    fn start_multipart(&self) -> Result<Multipart> {
        let mut req = self
            .store
            .client()
            .create_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256);
        if let Some(r) = &self.opts.lock {
            req = req
                .object_lock_mode(r.mode.into())
                .object_lock_retain_until_date(to_datetime(r.until));
        }
        let out = self
            .store
            .run(req.send())
            .map_err(|e| Failure::from_sdk(&e).into_error("cannot upload", &self.url))?;
        let upload_id = out.upload_id().unwrap_or("").to_string();
        if upload_id.is_empty() {
            return Err(Error::runtime(format!(
                "cannot upload {}: the store gave no upload id",
                self.url
            )));
        }
        Ok(Multipart {
            upload_id,
            done: Vec::new(),
            in_flight: VecDeque::new(),
            spare: None,
            next_number: 1,
        })
    }

    fn fail(&mut self, e: Error) -> io::Error {
        let io = io::Error::other(e.clone());
        self.failed.get_or_insert(e);
        io
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        let room = self.buf.capacity().max(self.opts.part_size) - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        if self.buf.len() >= self.buf.capacity().max(self.opts.part_size) {
            if let Err(e) = self.send_part() {
                return Err(self.fail(e));
            }
        }
        Ok(n)
    }

    /// Nothing to do: data becomes an object only at [`Upload::commit`].
    fn flush(&mut self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(io::Error::other(e.clone())),
            None => Ok(()),
        }
    }
}

impl Drop for Upload {
    /// Not committed: abort, so the store keeps no parts and no object appears.
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let Some(mp) = self.multipart.take() else {
            return;
        };
        for (h, _) in &mp.in_flight {
            h.abort();
        }
        let req = self
            .store
            .client()
            .abort_multipart_upload()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .upload_id(&mp.upload_id);
        if let Err(e) = self.store.run(req.send()) {
            // Left for cleanup_stale_uploads of a later run.
            log::warn!(
                "{}",
                Failure::from_sdk(&e).into_error("cannot abort the upload to", &self.url)
            );
        }
    }
}

/// The error for an existing name, from a HeadObject.
fn refuse_existing(store: &S3Store, url: &ObjectUrl) -> Result<()> {
    match store.head(url)? {
        Some(_) => Err(Error::runtime(format!("{url} already exists"))
            .hint("choose another name or an output folder, or pass --force to replace it")),
        None => Ok(()),
    }
}

fn wait_part(
    store: &S3Store,
    h: JoinHandle<Result<Part, Failure>>,
    url: &ObjectUrl,
) -> Result<Part> {
    match store.run(h) {
        Ok(Ok(part)) => Ok(part),
        Ok(Err(f)) => Err(f.into_error("cannot upload", url)),
        Err(e) => Err(Error::runtime(format!("cannot upload {url}: {e}"))),
    }
}

async fn upload_part(
    client: Client,
    url: ObjectUrl,
    upload_id: String,
    number: i32,
    data: Bytes,
) -> Result<Part, Failure> {
    // Hashed here, on the store's worker thread, not on the thread making the archive.
    let sha256 = sha256_base64(&data);
    let out = client
        .upload_part()
        .bucket(&url.bucket)
        .key(&url.key)
        .upload_id(upload_id)
        .part_number(number)
        .content_length(data.len() as i64)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(&sha256)
        .body(ByteStream::from(data))
        .send()
        .await
        .map_err(|e| Failure::from_sdk(&e))?;
    Ok(Part {
        number,
        etag: out.e_tag().unwrap_or("").to_string(),
        sha256,
    })
}

fn sha256_base64(data: &[u8]) -> String {
    aws_smithy_types::base64::encode(Sha256::digest(data))
}

fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// S3's multipart ETag: MD5 of the parts' binary MD5s, then `-N`. None when a part's
/// ETag is not a plain MD5 (some encryption modes), and then nothing is recognised.
fn multipart_etag(parts: &[Part]) -> Option<String> {
    let mut md5 = Md5::new();
    for p in parts {
        let h = p.etag.trim_matches('"');
        if h.len() != 32 {
            return None;
        }
        for i in (0..32).step_by(2) {
            md5.update([u8::from_str_radix(h.get(i..i + 2)?, 16).ok()?]);
        }
    }
    Some(format!(
        "\"{}-{}\"",
        crate::fsx::hex(&md5.finalize()),
        parts.len()
    ))
}

fn to_datetime(t: jiff::Timestamp) -> DateTime {
    DateTime::from_secs(t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The archive writer takes `W: Write + Send + 'static` (it finishes on another thread).
    #[test]
    fn upload_and_download_can_be_handed_to_the_archive_code() {
        fn sendable<T: Send + 'static>() {}
        sendable::<Upload>();
        sendable::<super::super::Download>();
    }

    #[test]
    fn part_sizes_grow_every_thousand_parts() {
        assert_eq!(part_size(PART_SIZE, 1), PART_SIZE);
        assert_eq!(part_size(PART_SIZE, 1000), PART_SIZE);
        assert_eq!(part_size(PART_SIZE, 1001), 2 * PART_SIZE);
        assert_eq!(part_size(PART_SIZE, 10_000), 512 * PART_SIZE);
    }

    #[test]
    fn multipart_etag_is_md5_of_part_md5s() {
        // Two parts whose ETags are the MD5s of "a" and "b"; the expected value was
        // computed with
        // `echo 0cc175b9c0f1b6a831c399e26977266192eb5ffee6ae2fec3ad71c777531578f | xxd -r -p | md5sum`.
        let parts = [
            Part {
                number: 1,
                etag: "\"0cc175b9c0f1b6a831c399e269772661\"".into(),
                sha256: String::new(),
            },
            Part {
                number: 2,
                etag: "\"92eb5ffee6ae2fec3ad71c777531578f\"".into(),
                sha256: String::new(),
            },
        ];
        assert_eq!(
            multipart_etag(&parts).as_deref(),
            Some("\"96e024ba2074fe77e8e965ba43a704be-2\"")
        );
        let bad = [Part {
            number: 1,
            etag: "\"not-md5\"".into(),
            sha256: String::new(),
        }];
        assert_eq!(multipart_etag(&bad), None);
    }
}
