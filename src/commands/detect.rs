//! `forgekeep detect`: what is installed here, and what each profile would collect.
//!
//! The first thing a new user (or someone rebuilding a dead host from its disk) needs
//! is the list of forges on the machine and the one command line that backs all of them
//! up. Native installs are found by their systemd units and configuration files
//! ([`crate::profile::detect`]), container installs by compose files in the usual
//! places; each is resolved by its profile exactly as `backup` would, so "would
//! collect" is what a backup takes.

use crate::cli::DetectArgs;
use crate::compose;
use crate::error::{ExitCode, Result};
use crate::profile::{self, detect::Detected, Context, HostPaths, Layout, Locate, RootedPaths};
use crate::report::{shell_quote, Out};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where compose files usually live, searched up to [`COMPOSE_DEPTH`] folders deep.
const COMPOSE_PLACES: [&str; 5] = ["/srv", "/opt", "/home", "/root", "/etc"];
const COMPOSE_DEPTH: usize = 3;
const COMPOSE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

pub fn run(args: &DetectArgs, out: &Out) -> Result<ExitCode> {
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let on_this_host = root == Path::new("/");
    // Another host's disk does not run with our environment.
    let env: BTreeMap<String, String> = if on_this_host {
        std::env::vars().collect()
    } else {
        BTreeMap::new()
    };
    let locate: Box<dyn Locate> = if on_this_host {
        Box::new(HostPaths)
    } else {
        Box::new(RootedPaths(root.clone()))
    };

    let mut installations = Vec::new();
    let mut backup_args: Vec<String> = Vec::new();
    for d in profile::detect::detect_in(&root, &env) {
        // The service's own environment (its systemd unit's) over ours.
        let mut service_env = env.clone();
        service_env.extend(d.env.clone());
        let ctx = Context {
            env: &service_env,
            locate: locate.as_ref(),
            layout: Layout::Native,
            with_db: args.with_db,
            numeric_ids: false,
            version: None,
            working_dir: d.working_dir.clone(),
        };
        let resolved = profile::resolve(d.forge, d.config.as_deref(), &ctx);
        say_installation(out, &d, resolved.as_ref().ok(), resolved.as_ref().err());
        backup_args.push(match &d.config {
            Some(c) => format!(
                "-p {}",
                shell_quote(&format!("{}={}", d.forge.as_str(), c.display()))
            ),
            None => format!("-p {}", d.forge.as_str()),
        });
        installations.push(json!({
            "forge": d.forge,
            "config": d.config,
            "via": d.via,
            "profile": resolved.as_ref().ok(),
            "error": resolved.as_ref().err().map(|e| e.to_string()),
        }));
    }

    let mut files: Vec<PathBuf> = args.compose.clone();
    for f in find_compose_files(&root) {
        if !files.contains(&f) {
            files.push(f);
        }
    }
    let mut projects = Vec::new();
    for file in &files {
        let loaded = if on_this_host {
            compose::load(file)
        } else {
            compose::load_with(file, compose::LoadOptions::for_root(&root))
        };
        match loaded {
            Ok(p) => {
                say_project(out, &p, args.with_db);
                if p.apps().next().is_some() {
                    backup_args.push(format!(
                        "--compose {}",
                        shell_quote(&p.file.display().to_string())
                    ));
                }
                projects.push(json!({
                    "file": p.file,
                    "services": p.services.iter().map(|s| json!({
                        "name": s.name,
                        "image": s.image,
                        "forge": s.app.map(|a| a.0),
                        "layout": s.app.map(|a| a.1),
                    })).collect::<Vec<_>>(),
                }));
            }
            Err(e) => {
                out.say(format!("compose {}: cannot be read: {e}", file.display()));
                projects.push(json!({"file": file, "error": e.to_string()}));
            }
        }
    }

    if backup_args.is_empty() {
        out.say(format!(
            "no forge installation found under {} (looked for systemd units, the forges' configuration files, and compose files under {})",
            root.display(),
            COMPOSE_PLACES.join(", ")
        ));
    } else {
        out.say("");
        out.say(if on_this_host {
            "to back all of this up:".to_string()
        } else {
            format!(
                "to back all of this up, on that host (paths as that host sees them, except compose files under {}):",
                root.display()
            )
        });
        out.say(format!(
            "  forgekeep backup {} -r RECIPIENT -o /var/backups/forgekeep/",
            backup_args.join(" ")
        ));
        out.say("(add --with-db for the forges' SQLite databases; forgekeep check with the same sources shows every finding)");
    }
    out.report(&json!({
        "command": "detect",
        "installations": installations,
        "compose": projects,
    }));
    Ok(ExitCode::Success)
}

fn say_installation(
    out: &Out,
    d: &Detected,
    resolved: Option<&profile::Resolved>,
    error: Option<&crate::error::Error>,
) {
    out.say(format!(
        "{}: {} (found via {})",
        d.forge.as_str(),
        d.config
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_else(|| "no configuration file".into()),
        d.via
    ));
    if let Some(e) = error {
        out.say(format!("  cannot be resolved: {e}"));
    }
    if let Some(r) = resolved {
        say_items(out, r, "  ");
    }
}

fn say_items(out: &Out, r: &profile::Resolved, indent: &str) {
    for item in &r.items {
        out.say(format!(
            "{indent}would collect {}  ({})",
            item.path.display(),
            item.what
        ));
    }
    // The problems themselves, not a count: a key on no persistent storage is what a
    // newcomer looking at a compose stack must see first, with its fix. (Notes stay in
    // `check`; its audit of owners and modes too.)
    for f in r
        .findings
        .iter()
        .filter(|f| f.severity >= crate::findings::Severity::Warning)
    {
        out.say(format!("{indent}{f}"));
    }
}

fn say_project(out: &Out, p: &compose::Project, with_db: bool) {
    out.say(format!(
        "compose {} (project {}{})",
        p.file.display(),
        p.name,
        if p.legacy {
            ", a legacy version 1 file"
        } else {
            ""
        }
    ));
    for svc in &p.services {
        match svc.app {
            None => match compose::reference_problem(&svc.image) {
                Some(why) => out.say(format!("  {}: {why}", svc.name)),
                None => out.say(format!(
                    "  {}: {} (not a forge or CI service)",
                    svc.name,
                    svc.image_label()
                )),
            },
            Some(app) => {
                out.say(format!(
                    "  {}: {} ({}, {})",
                    svc.name,
                    svc.image_label(),
                    app.0.as_str(),
                    crate::commands::check::layout_name(app.1)
                ));
                match compose::advice::resolve_service(p, svc, app, with_db) {
                    Ok(r) => say_items(out, &r, "    "),
                    Err(e) => out.say(format!("    cannot be resolved: {e}")),
                }
            }
        }
    }
    for note in &p.notes {
        out.say(format!("  {}: {}", note.severity, note.message));
    }
}

/// Compose files under the usual places of `root`, without following symlinks.
fn find_compose_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for place in COMPOSE_PLACES {
        let dir = root.join(place.trim_start_matches('/'));
        for entry in walkdir::WalkDir::new(&dir)
            .max_depth(COMPOSE_DEPTH)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                // Not into other people's caches and VCS folders.
                !e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with('.') && e.depth() > 0)
            })
            .flatten()
        {
            if entry.file_type().is_file()
                && entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| COMPOSE_NAMES.contains(&n))
            {
                found.push(entry.into_path());
            }
        }
    }
    found
}
