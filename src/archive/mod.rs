//! The archive format v1: an age file whose plaintext is one zstd stream whose content
//! is a POSIX tar archive (see DESIGN.md, "Archive format v1").
//!
//! The format is deliberately made of standard parts so that a user can recover their
//! secrets with `age -d | zstd -d | tar -x` and check them with `sha256sum -c` when
//! forgekeep is gone. Members, in order: `forgekeep/manifest.json` (the table of
//! contents, first, so a reader can validate every member as it arrives), the secrets
//! under their absolute paths without the leading `/`, and `forgekeep/SHA256SUMS` last,
//! so one streaming pass writes and checks everything.

pub mod limits;
pub mod manifest;
pub mod reader;
pub mod squeeze;
pub mod strict_tar;
pub mod sums;
pub mod validate;
pub mod writer;

/// Member name of the manifest (first member).
pub const MANIFEST_MEMBER: &str = "forgekeep/manifest.json";
/// Member name of the checksum list (last member, or last but one when signed).
pub const SUMS_MEMBER: &str = "forgekeep/SHA256SUMS";
/// Member names of the signatures of a signed archive (see [`crate::signature`]): the
/// manifest's, right after it, and the checksum list's, last.
pub const MANIFEST_SIG_MEMBER: &str = "forgekeep/manifest.json.sig";
pub const SUMS_SIG_MEMBER: &str = "forgekeep/SHA256SUMS.sig";

/// File name suffix of archives.
pub const SUFFIX: &str = ".tar.zst.age";

/// The largest zstd window a reader accepts: 2^24 = 16 MiB. Our writer's levels (1–19)
/// use at most 2^23; the cap bounds the decoder's memory against hostile frames.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// Compression levels the command line accepts (zstd's non-"ultra" range).
pub const LEVEL_RANGE: std::ops::RangeInclusive<i64> = 1..=19;
