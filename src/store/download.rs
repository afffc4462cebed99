//! Reading an archive from an object: `std::io::Read` over a GET that survives resets.
//!
//! The SDK retries a GET until its response starts; after that, a connection reset or a
//! stalled stream would end the read. [`Download`] then opens a new ranged GET from the
//! last byte it handed out (`Range: bytes=N-`), a bounded number of times with backoff,
//! so a multi-gigabyte restore over a flaky link does not start over. Every GET carries
//! `If-Match` with the ETag seen when the download was opened: if the object is
//! replaced meanwhile, the bytes of two different archives are never spliced together.
//! The end is checked against the size HeadObject reported, so a response cut short
//! without an error is resumed too, not taken for the end of the archive.

use super::client::{Head, S3Store};
use super::error::Failure;
use super::location::ObjectUrl;
use crate::error::{Error, Result};
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Buf, Bytes};
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

/// Consecutive failures (without a byte of progress in between) before giving up.
const MAX_RESUMES: u32 = 8;

pub struct Download {
    store: Arc<S3Store>,
    url: ObjectUrl,
    head: Head,
    /// Bytes handed to the caller so far.
    offset: u64,
    body: Option<ByteStream>,
    chunk: Bytes,
    /// Bytes still to drop from the current body (a store that ignored the Range header).
    skip: u64,
    failures: u32,
    resumes: u32,
}

impl Download {
    /// Looks the object up (size, ETag); a missing object is an error now, not at the
    /// first read.
    pub fn open(store: Arc<S3Store>, url: &ObjectUrl) -> Result<Download> {
        if url.is_folder() {
            return Err(Error::usage(format!("{url} is a folder, not an archive"))
                .hint("name the archive: s3://BUCKET/KEY"));
        }
        let head = store.head(url)?.ok_or_else(|| {
            Error::runtime(format!("cannot read {url}: no such object"))
                .hint("check the key; list the folder to see what is there")
        })?;
        Ok(Download {
            store,
            url: url.clone(),
            head,
            offset: 0,
            body: None,
            chunk: Bytes::new(),
            skip: 0,
            failures: 0,
            resumes: 0,
        })
    }

    pub fn size(&self) -> u64 {
        self.head.size
    }

    /// How many times the download was resumed after a failure.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    /// A GET from `offset`, for this very object (If-Match).
    fn open_body(&mut self) -> io::Result<()> {
        let mut req = self
            .store
            .client()
            .get_object()
            .bucket(&self.url.bucket)
            .key(&self.url.key)
            .if_match(&self.head.etag);
        if self.offset > 0 {
            req = req.range(format!("bytes={}-", self.offset));
        }
        let out = self.store.run(req.send()).map_err(|e| {
            let f = Failure::from_sdk(&e);
            let err = if f.precondition_failed() {
                Error::runtime(format!(
                    "cannot read {}: the object was replaced while it was being read",
                    self.url
                ))
                .hint("run again")
            } else {
                f.into_error("cannot read", &self.url)
            };
            io::Error::other(err)
        })?;
        // A store that ignores Range answers 200 with the whole object: drop what we have.
        let ranged = out
            .content_range()
            .is_some_and(|r| r.starts_with(&format!("bytes {}-", self.offset)));
        self.skip = if self.offset > 0 && !ranged {
            self.offset
        } else {
            0
        };
        self.body = Some(out.body);
        Ok(())
    }

    /// The next piece of the body, resuming after a transient failure.
    fn next_chunk(&mut self) -> io::Result<()> {
        loop {
            if self.body.is_none() {
                self.open_body()?;
            }
            let body = self.body.as_mut().expect("body");
            let next = self.store.run(body.next());
            let why = match next {
                Some(Ok(mut bytes)) => {
                    let drop = self.skip.min(bytes.len() as u64) as usize;
                    bytes.advance(drop);
                    self.skip -= drop as u64;
                    if !bytes.is_empty() {
                        self.chunk = bytes;
                        self.failures = 0;
                        return Ok(());
                    }
                    continue;
                }
                Some(Err(e)) => e.to_string(),
                None => format!(
                    "the response ended at byte {} of {}",
                    self.offset, self.head.size
                ),
            };
            self.body = None;
            self.failures += 1;
            if self.failures > MAX_RESUMES {
                return Err(io::Error::other(
                    Error::runtime(format!(
                        "cannot read {}: {} (after {MAX_RESUMES} resumed attempts)",
                        self.url,
                        why.replace('\n', " ")
                    ))
                    .hint("check the network and the store, then run again"),
                ));
            }
            self.resumes += 1;
            log::debug!("{}: {why}; resuming at byte {}", self.url, self.offset);
            std::thread::sleep(backoff(self.failures));
        }
    }
}

impl Read for Download {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.chunk.is_empty() {
            if self.offset >= self.head.size {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.chunk.len());
        // Never past the size HeadObject reported, whatever the body says.
        let n = n.min((self.head.size - self.offset) as usize);
        out[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        self.offset += n as u64;
        if self.offset >= self.head.size {
            self.chunk.clear();
            self.body = None;
        }
        Ok(n)
    }
}

/// 100 ms, 200 ms, 400 ms, … up to 10 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64 << failures.min(7)).min(Duration::from_secs(10))
}
