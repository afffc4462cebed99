//! A compose service's profile, resolved, with findings that speak of the deployment:
//! the container to copy a key out of (by name, owners kept), the `volumes:` line, the
//! compose command with the project it runs as; a mounted folder that is empty because
//! the stack never started; a secret archived from a container's anonymous volume or
//! layer that is still lost on `docker compose down`.
//!
//! The profiles speak of the forge's own paths and know nothing of containers; this is
//! the one place that turns their findings into commands for this compose file, so that
//! `check`, `backup` and `detect` give the same advice.

use super::mounts::{looks_like_file, Source};
use super::{Project, Service};
use crate::error::Result;
use crate::findings::{Code, Finding, Severity};
use crate::profile::{self, Context, Forge, Layout, Resolved};
use crate::report::shell_quote;
use std::path::{Path, PathBuf};

/// Resolves the profile of `svc` through its volumes, with the advice above.
pub fn resolve_service(
    project: &Project,
    svc: &Service,
    (forge, layout): (Forge, Layout),
    with_db: bool,
) -> Result<Resolved> {
    let ctx = Context {
        env: &svc.env,
        locate: &svc.mounts,
        layout,
        with_db,
        numeric_ids: true,
        version: super::image_version(svc.reference()),
        working_dir: None,
    };
    svc.mounts.take_found_in_container(); // what an earlier resolution found
    let mut r = profile::resolve(forge, None, &ctx)?;
    let kept_from_container = from_container(project, svc, &r);
    for f in &mut r.findings {
        match f.code {
            // Its path is the container path the line is for (see `Mounts::locate`).
            Code::NotPersistent => {
                f.fix = copy_fix(project, svc, &svc.mounts.suggest_line(Path::new(&f.path)))
            }
            Code::SecretMissing => explain_empty_mount(project, svc, f),
            _ => {}
        }
    }
    r.findings.extend(kept_from_container);
    r.service = Some(svc.name.clone());
    r.compose = Some(project.file.clone());
    Ok(r)
}

/// What the profile found in the container's anonymous volume or own layer
/// ([`super::Mounts::in_container`]): items are archived now, yet gone after `docker
/// compose down`, so still a `not-persistent` error; so is what it only looked at there
/// (a database without `--with-db`).
fn from_container(project: &Project, svc: &Service, r: &Resolved) -> Vec<Finding> {
    let mut out = Vec::new();
    let found = svc.mounts.take_found_in_container();
    for item in &r.items {
        let Some(container_path) = &item.container_path else {
            continue;
        };
        let Some(how) = svc.mounts.lost_how(Path::new(container_path)) else {
            continue;
        };
        let line = svc.mounts.suggest_line(Path::new(container_path));
        out.push(Finding {
            code: Code::NotPersistent,
            severity: if item.required {
                Severity::Error
            } else {
                Severity::Warning
            },
            path: container_path.clone(),
            message: format!(
                "{} is in {how}{}: this run keeps the current one (read from {}), but the \
                 forge will not find it once the container is gone",
                item.what,
                if item.regenerates {
                    ", and the forge silently makes a new one"
                } else {
                    ""
                },
                item.path.display()
            ),
            fix: copy_fix(project, svc, &line),
        });
    }
    for path in found {
        let covered = r.items.iter().any(|i| {
            i.container_path
                .as_deref()
                .is_some_and(|c| path.starts_with(c))
        });
        let Some(how) = svc.mounts.lost_how(&path).filter(|_| !covered) else {
            continue;
        };
        out.push(Finding {
            code: Code::NotPersistent,
            severity: Severity::Error,
            path: path.display().to_string(),
            message: format!(
                "{} is in {how}: the forge loses it once the container is gone (this run does \
                 not keep it)",
                path.display()
            ),
            fix: copy_fix(project, svc, &svc.mounts.suggest_line(&path)),
        });
    }
    out
}

/// The fix for a secret on no persistent storage, given the `volumes:` line that puts
/// it on some: copy what the container has to the new host folder first, owners and
/// modes kept (a new bind hides what the container had, and the forge would start
/// without it), then add the line and recreate the container.
///
/// `docker cp` from a container is in every docker CLI (compose v1 has no `cp`); to a
/// folder it gives the files to the caller (root), which a forge running as uid 1000
/// then cannot read, so its tar stream is unpacked with the numeric owners it records.
fn copy_fix(project: &Project, svc: &Service, line: &str) -> String {
    let Some((host, target)) = line.split_once(':') else {
        return format!("add `{line}` to the service's volumes");
    };
    let recreate = format!(
        "then add `{line}` to the service's volumes and recreate it: {} (adding the volume \
         without copying first hides the current file, and the forge starts without it)",
        compose_up(project)
    );
    let container = match (&svc.container, &svc.container_name) {
        (Some(c), _) => shell_quote(&c.name),
        (None, _) if project.engine_answered => {
            return format!(
                "nothing to copy: no container of service {} exists on this engine; add `{line}` \
                 to the service's volumes before it starts",
                svc.name
            );
        }
        (None, Some(name)) => shell_quote(name),
        (None, None) => format!(
            "\"$(docker ps -q -f label=com.docker.compose.project={} -f label=com.docker.compose.service={})\"",
            project.name, svc.name
        ),
    };
    let host = host_folder(project, host);
    let copy = if looks_like_file(Path::new(target)) {
        // A single file: its folder on both sides has the same last name.
        let parent = host.parent().unwrap_or(Path::new("/"));
        format!(
            "mkdir -p {dir} && docker cp {container}:{target} - | tar -x --numeric-owner -C {dir}",
            dir = word(parent),
        )
    } else {
        format!(
            "mkdir -p {dir} && docker cp {container}:{target}/. - | tar -x --numeric-owner -C {dir}",
            dir = word(&host),
        )
    };
    format!("copy it out of the container first, owners and modes kept: `{copy}`; {recreate}")
}

/// The host side of a suggested line as a path for a shell: relative ones are relative to
/// the compose file's folder; `~` is left for the shell.
fn host_folder(project: &Project, written: &str) -> PathBuf {
    if written.starts_with('~') {
        PathBuf::from(written)
    } else {
        super::mounts::clean(&project.dir.join(written))
    }
}

fn word(p: &Path) -> String {
    let s = p.display().to_string();
    match s.strip_prefix("~/") {
        Some(rest) => format!("~/{}", shell_quote(rest)),
        None => shell_quote(&s),
    }
}

/// `docker-compose -f FILE [-p NAME] up -d` for this project, in both compose versions,
/// each in backquotes.
fn compose_up(project: &Project) -> String {
    let project_flag = if project.name_from_engine {
        format!(" -p {}", shell_quote(&project.name))
    } else {
        String::new()
    };
    let file = shell_quote(&project.file.display().to_string());
    format!(
        "`docker-compose -f {file}{project_flag} up -d` (compose v2: `docker compose -f {file}{project_flag} up -d`)"
    )
}

/// A missing file in a mounted folder that is empty (or not there yet): the stack has
/// not run with this folder, which is worth saying instead of doubting the mount.
fn explain_empty_mount(project: &Project, svc: &Service, f: &mut Finding) {
    let host = Path::new(&f.path);
    let Some((target, folder)) = mounted_folder(svc, host) else {
        return;
    };
    let empty = match std::fs::read_dir(&folder) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    if !empty {
        return;
    }
    f.message = format!(
        "{}; the folder {} mounted at {} is empty: the stack has not been started with it yet",
        f.message,
        folder.display(),
        target.display()
    );
    f.fix = format!(
        "start the stack once ({}: the forge creates its files there), then run forgekeep \
         again; if it ran before, its files are elsewhere: point the volume at that folder",
        compose_up(project)
    );
}

/// The mount whose host folder holds `host`: (container path, host folder).
fn mounted_folder(svc: &Service, host: &Path) -> Option<(PathBuf, PathBuf)> {
    svc.mounts
        .list()
        .iter()
        .filter_map(|m| {
            let folder = match &m.source {
                Source::Bind { path, .. } => path.clone(),
                Source::Volume {
                    device: Some(d), ..
                } => d.clone(),
                // Asked already when the profile looked for the file: a cached answer.
                Source::Volume {
                    docker_name,
                    subpath: None,
                    ..
                } => svc.mounts.engine.mountpoint(docker_name).ok()?,
                _ => return None,
            };
            host.starts_with(&folder)
                .then(|| (m.target.clone(), folder))
        })
        .max_by_key(|(_, folder)| folder.components().count())
}
