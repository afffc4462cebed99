//! `forgekeep list`: the entries of an archive with type, mode, owner, size and mtime.
//! The archive is read and validated in full, so a listing is never of a damaged archive.

use super::Reader;
use crate::archive::manifest::Kind;
use crate::archive::reader::NoVisitor;
use crate::archive::sums::sha256_hex;
use crate::cli::ListArgs;
use crate::config::Config;
use crate::error::{ExitCode, Result};
use crate::report::{mode_string, Out};
use serde_json::json;

pub fn run(args: &ListArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    let reader = Reader::new(&args.keys, &args.trust, &args.limits, config)?;
    let (read, name) = reader.read(&args.archive, &mut NoVisitor, None)?;
    let m = &read.manifest;
    out.say(format!(
        "# {name}: made on {} at {} by {}",
        m.host, m.created, m.tool
    ));
    out.say(format!("# {}", read.authenticity.describe()));
    for s in &m.sources {
        out.say(format!(
            "# source {} (owners by {}){}{}",
            s.path,
            match s.ownership {
                crate::archive::manifest::Ownership::Name => "name",
                crate::archive::manifest::Ownership::Numeric => "number",
            },
            s.container_path
                .as_ref()
                .map(|c| format!(", {c} in the container"))
                .unwrap_or_default(),
            match (&s.profile, &s.what) {
                (Some(p), Some(w)) => format!(": {p}, {w}"),
                (Some(p), None) => format!(": {p}"),
                (None, Some(w)) => format!(": {w}"),
                (None, None) => String::new(),
            }
        ));
    }
    for e in &m.entries {
        let kind = match e.kind {
            Kind::File => '-',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
        };
        let when = jiff::Timestamp::from_second(e.mtime)
            .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|_| e.mtime.to_string());
        out.say(format!(
            "{} {:>8} {:>8} {:>10} {} {}{}",
            mode_string(kind, e.mode),
            e.user.clone().unwrap_or_else(|| e.uid.to_string()),
            e.group.clone().unwrap_or_else(|| e.gid.to_string()),
            e.size,
            when,
            e.path,
            e.target
                .as_ref()
                .map(|t| format!(" -> {t}"))
                .unwrap_or_default()
        ));
    }
    let entries: Vec<_> = m
        .entries
        .iter()
        .zip(&read.digests)
        .map(|(e, d)| {
            let mut v = serde_json::to_value(e).expect("entry serialises");
            if let Some(d) = d {
                v["sha256"] = json!(sha256_hex(d));
            }
            v
        })
        .collect();
    let mut report = json!({
        "command": "list",
        "archive": name,
        "format": m.format,
        "version": m.version,
        "tool": m.tool,
        "host": m.host,
        "created": m.created,
        "signature": read.authenticity.to_json(),
        "sources": m.sources,
        "findings": m.findings,
        "entries": entries,
    });
    if !m.exclude.is_empty() {
        report["exclude"] = json!(m.exclude);
    }
    out.report(&report);
    Ok(ExitCode::Success)
}
