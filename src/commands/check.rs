//! `forgekeep check`: the audit of a backup without the backup.
//!
//! Resolves the same sources `backup` would (paths, profiles, compose files), walks them
//! without reading any content, and reports what is missing, too open, owned by the
//! wrong user, risky in the configuration, or on storage a container restart throws
//! away. Meant to be run after every change to a forge's deployment, and in monitoring:
//! exit 0 clean, 3 warnings, 1 errors.

use crate::cli::CheckArgs;
use crate::collect::{collect, Options};
use crate::config::{merge_sources, Config};
use crate::error::{ExitCode, Result};
use crate::findings::{worst, Finding, Severity};
use crate::report::Out;
use crate::sources;
use serde_json::json;

pub fn run(args: &CheckArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    let source_args = merge_sources(&args.sources, &config.sources);
    let sources = sources::resolve(&source_args, false)?;
    let mut findings: Vec<Finding> = sources.findings.clone();
    findings.extend(sources.audit());
    let mut entries = 0;
    if !sources.requests.is_empty() {
        let collection = collect(
            &sources.requests,
            &Options {
                exclude: source_args.exclude.clone(),
                sqlite: sources.sqlite.clone(),
                snapshot: false,
                secrets: sources.secrets(),
            },
        )?;
        entries = collection.items.len();
        findings.extend(collection.findings);
    }

    for r in &sources.resolved {
        out.say(format!(
            "{} ({}){}",
            r.forge.as_str(),
            layout_name(r.layout),
            r.config
                .as_ref()
                .map(|c| format!(": {}", c.display()))
                .unwrap_or_default()
        ));
        for item in &r.items {
            let path = item.path.display().to_string();
            // A folder's status covers what is inside it (a world-readable host key in
            // /data/ssh makes /data/ssh not "ok").
            let inside = format!("{path}/");
            let status = worst(
                &findings
                    .iter()
                    .filter(|f| f.path == path || f.path.starts_with(&inside))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
            .map(|s| s.to_string())
            .unwrap_or_else(|| "ok".into());
            out.say(format!(
                "  {status:<8} {path}  ({}{})",
                item.what,
                item.container_path
                    .as_ref()
                    .map(|c| format!(", {c} in the container"))
                    .unwrap_or_default()
            ));
        }
    }
    out.findings(&findings);
    let verdict = worst(&findings);
    let counts = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    out.say(format!(
        "{} error(s), {} warning(s), {} note(s) over {entries} entries",
        counts(Severity::Error),
        counts(Severity::Warning),
        counts(Severity::Info)
    ));
    out.report(&json!({
        "command": "check",
        "profiles": sources.resolved,
        "entries": entries,
        "findings": findings,
        "errors": counts(Severity::Error),
        "warnings": counts(Severity::Warning),
        "ok": verdict < Some(Severity::Warning),
    }));
    Ok(match verdict {
        Some(Severity::Error) => ExitCode::Runtime,
        Some(Severity::Warning) => ExitCode::Warnings,
        _ => ExitCode::Success,
    })
}

pub fn layout_name(l: crate::profile::Layout) -> &'static str {
    match l {
        crate::profile::Layout::Native => "native",
        crate::profile::Layout::Docker => "docker",
        crate::profile::Layout::DockerRootless => "docker rootless",
    }
}
