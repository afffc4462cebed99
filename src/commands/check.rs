//! `forgekeep check`: the audit of a backup without the backup.
//!
//! Resolves the same sources `backup` would (paths, profiles, compose files), walks them
//! (reading only the first bytes of files others may read, to tell a secret from public
//! text), and reports what is missing, too open, owned by the wrong user, risky in the
//! configuration, or on storage a container restart throws away. Run without sources it
//! checks the configured job as a whole: its `[backup]` table too ([`crate::job`]), so
//! the first night's run does not fail on a recipients file nobody wrote. Meant to be
//! run after every change to a forge's deployment, and in monitoring: exit 0 clean, 3
//! warnings, 1 errors.

use crate::cli::{CheckArgs, SourceArgs};
use crate::collect::{collect, Options};
use crate::config::{merge_sources, Config};
use crate::error::{ExitCode, Result};
use crate::findings::{worst, Finding, Severity};
use crate::report::Out;
use crate::sources::{self, Sources};
use serde_json::json;

pub fn run(args: &CheckArgs, config: &Config, out: &Out) -> Result<ExitCode> {
    // No sources on the command line: this is the configured job, [backup] included.
    let configured = !args.sources.names_sources();
    let source_args = merge_sources(&args.sources, &config.sources);
    // Owners judged as the backup judges them: by number for a container's volumes.
    let numeric_ids = args.numeric_ids || config.backup.numeric_ids;
    let sources = sources::resolve(&source_args, numeric_ids)?;
    let (entries, mut findings) = audit(&sources, &source_args)?;
    let job = if configured {
        crate::job::check(config)
    } else {
        crate::job::Checked::default()
    };
    findings.extend(job.findings.iter().cloned());

    let profiles = say_profiles(&sources, &findings, out);
    let paths = say_paths(&sources, &findings, out);
    let parts = say_job(&job, config, &findings, out);
    out.findings(&findings);
    let verdict = worst(&findings);
    let counts = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    out.say(format!(
        "{} error(s), {} warning(s), {} note(s) over {entries} entries",
        counts(Severity::Error),
        counts(Severity::Warning),
        counts(Severity::Info)
    ));
    let mut report = json!({
        "command": "check",
        "profiles": profiles,
        "paths": paths,
        "entries": entries,
        "findings": findings,
        "errors": counts(Severity::Error),
        "warnings": counts(Severity::Warning),
        "ok": verdict < Some(Severity::Warning),
    });
    if let (true, Some(file)) = (configured, &config.path) {
        report["job"] = json!({ "config": file, "parts": parts });
    }
    out.report(&report);
    Ok(match verdict {
        Some(Severity::Error) => ExitCode::Runtime,
        Some(Severity::Warning) => ExitCode::Warnings,
        _ => ExitCode::Success,
    })
}

/// The profiles' findings, their audit of owners and modes, and collection's walk
/// (metadata, and the first bytes of files others may read). Returns the number of
/// entries a backup would hold and every finding.
fn audit(sources: &Sources, args: &SourceArgs) -> Result<(usize, Vec<Finding>)> {
    let mut findings: Vec<Finding> = sources.findings.clone();
    findings.extend(sources.audit());
    if sources.requests.is_empty() {
        return Ok((0, findings));
    }
    let collection = collect(
        &sources.requests,
        &Options {
            exclude: args.exclude.clone(),
            sqlite: sources.sqlite.clone(),
            snapshot: false,
            secrets: sources.secrets(),
        },
    )?;
    findings.extend(collection.findings);
    Ok((collection.items.len(), findings))
}

/// The worst severity among the findings on `path` or inside it (a world-readable host
/// key in /data/ssh makes /data/ssh not "ok"), or "ok".
/// The worst finding about `path`: a folder's status covers what is inside it (a
/// world-readable host key in /data/ssh makes /data/ssh not "ok"), and an item kept from
/// a container counts its finding there (`in_container`: a key archived from an anonymous
/// volume is still lost on `down`).
fn status(findings: &[Finding], path: &str, in_container: Option<&str>) -> String {
    let inside = format!("{}/", path.trim_end_matches('/'));
    worst(
        &findings
            .iter()
            .filter(|f| {
                f.path == path
                    || f.path.starts_with(&inside)
                    || Some(f.path.as_str()) == in_container
            })
            .cloned()
            .collect::<Vec<_>>(),
    )
    .map(|s| s.to_string())
    .unwrap_or_else(|| "ok".into())
}

/// Each profile and its items, with their status; the profiles for the report.
fn say_profiles(sources: &Sources, findings: &[Finding], out: &Out) -> serde_json::Value {
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
            out.say(format!(
                "  {:<8} {path}  ({}{})",
                status(findings, &path, item.container_path.as_deref()),
                item.what,
                item.container_path
                    .as_ref()
                    .map(|c| format!(", {c} in the container"))
                    .unwrap_or_default()
            ));
        }
    }
    json!(sources.resolved)
}

/// The sources that are no profile's item (plain paths, under "paths"; a compose
/// project's own files, under its name), each with its status, as the README promises.
fn say_paths(sources: &Sources, findings: &[Finding], out: &Out) -> serde_json::Value {
    let items: Vec<String> = sources
        .resolved
        .iter()
        .flat_map(|r| &r.items)
        .map(|i| i.path.display().to_string())
        .collect();
    let mut listed = Vec::new();
    let mut heading: Option<Option<&str>> = None;
    for req in sources
        .requests
        .iter()
        .filter(|r| !items.contains(&r.given))
    {
        let label = req.profile.as_deref();
        if heading != Some(label) {
            out.say(label.unwrap_or("paths"));
            heading = Some(label);
        }
        // Findings name absolute paths; a path given relative is shown as given.
        let path = crate::collect::resolve_source(&req.given)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| req.given.clone());
        let st = status(findings, &path, None);
        out.say(format!(
            "  {st:<8} {}{}",
            req.given,
            req.what
                .as_ref()
                .map(|w| format!("  ({w})"))
                .unwrap_or_default()
        ));
        let mut entry = json!({"path": path, "status": st});
        if let Some(l) = label {
            entry["label"] = json!(l);
        }
        listed.push(entry);
    }
    json!(listed)
}

/// The configured job's parts (recipients, output folder) with their status.
fn say_job(
    job: &crate::job::Checked,
    config: &Config,
    findings: &[Finding],
    out: &Out,
) -> serde_json::Value {
    let Some(file) = &config.path else {
        return json!([]);
    };
    if job.parts.is_empty() && job.findings.is_empty() {
        return json!([]);
    }
    out.say(format!("backup job: {}", file.display()));
    let mut parts = Vec::new();
    for p in &job.parts {
        let st = status(findings, &p.path, None);
        out.say(format!("  {st:<8} {}  ({})", p.path, p.what));
        parts.push(json!({"what": p.what, "path": p.path, "status": st}));
    }
    json!(parts)
}

pub fn layout_name(l: crate::profile::Layout) -> &'static str {
    match l {
        crate::profile::Layout::Native => "native",
        crate::profile::Layout::Docker => "docker",
        crate::profile::Layout::DockerRootless => "docker rootless",
    }
}
