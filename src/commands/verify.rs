//! `forgekeep verify`: the whole read path of a restore (decrypt, decompress, validate
//! every member and checksum) without writing anything. Run it on a timer to know that
//! backups open before the day they are needed.

use super::{keyring, open_archive};
use crate::archive::manifest::Kind;
use crate::archive::reader::{read_archive, NoVisitor};
use crate::cli::VerifyArgs;
use crate::error::{ExitCode, Result};
use crate::report::{human_bytes, Out};
use serde_json::json;

pub fn run(args: &VerifyArgs, out: &Out) -> Result<ExitCode> {
    let keys = keyring(&args.keys)?;
    let Some(archive) = &args.archive else {
        return Err(crate::error::Error::runtime(
            "verify --latest is not built yet",
        ));
    };
    let (input, name) = open_archive(archive)?;
    let read = read_archive(input, &name, &keys, &mut NoVisitor)?;
    let m = &read.manifest;
    let files = m.entries.iter().filter(|e| e.kind == Kind::File).count();
    out.say(format!(
        "{name}: OK: {} entries ({files} files, {}) from {} at {}, every checksum matches",
        m.entries.len(),
        human_bytes(read.content_bytes),
        m.host,
        m.created
    ));
    out.report(&json!({
        "command": "verify",
        "archive": name,
        "ok": true,
        "host": m.host,
        "created": m.created,
        "entries": m.entries.len(),
        "files": files,
        "content_bytes": read.content_bytes,
    }));
    Ok(ExitCode::Success)
}
