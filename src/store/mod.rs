//! Archives off the host: S3-compatible object storage beside local folders.
//!
//! A backup that lives only on the host it protects dies with it. Self-hosters keep
//! off-host copies in S3-compatible stores (Garage, MinIO, Ceph RGW, B2, R2, AWS S3), so
//! forgekeep writes archives there and reads them back directly, with the same promises
//! it keeps for local files:
//!
//! * nothing is half-written: an archive becomes visible under its name only when the
//!   whole of it has been sent and its size confirmed; a failed or dropped upload is
//!   aborted ([`Upload`]);
//! * nothing is replaced unless asked: the final request is conditional
//!   (`If-None-Match: *`), with a HEAD guard for stores that ignore the condition
//!   (see [`upload`] for exactly what that guarantees against a concurrent writer);
//! * memory stays bounded whatever the archive's size (parts of [`PART_SIZE`], at most
//!   [`PARTS_IN_FLIGHT`] of them on the wire while the next one fills);
//! * transient failures (reset, timeout, 5xx, `SlowDown`) are retried with backoff, and a
//!   download resumes from its last good byte ([`Download`]); permanent ones (no such
//!   bucket, access denied, already exists) are one error line with a hint, at once;
//! * Object Lock retention per archive, so a compromised forge host cannot destroy its
//!   own backups; deleting a locked archive reports "kept by object lock until …".
//!
//! forgekeep is synchronous, the AWS SDK is async: [`S3Store`] owns one small Tokio
//! runtime and the rest of the code sees blocking `Write` ([`Upload`]) and `Read`
//! ([`Download`]). Credentials stay inside the SDK's credential provider: nothing here
//! stores, prints or formats them.

mod client;
mod config;
mod download;
mod error;
mod folder;
mod location;
mod objects;
pub mod upload;

pub use client::S3Store;
pub use config::{
    credentials_file_findings, AddressingStyle, LockMode, LockPolicy, S3Options, Settings,
};
pub use download::Download;
pub use folder::Folder;
pub use location::{Location, ObjectUrl};
pub use objects::{Deleted, ObjectInfo, Retention};
pub use upload::{Committed, Upload, UploadOptions, PARTS_IN_FLIGHT, PART_SIZE};

/// Connects to the store that `opts` (the `[s3]` table and the command's flags) and the
/// AWS environment name, resolving the credentials now.
pub fn connect(opts: &S3Options) -> crate::error::Result<std::sync::Arc<S3Store>> {
    S3Store::connect(&Settings::resolve(opts)?)
}
