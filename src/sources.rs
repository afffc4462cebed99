//! From what the user asked for (paths, `-p` profiles, `--compose` files) to the list of
//! sources collection walks, plus what the profiles found wrong on the way.
//!
//! `backup` and `check` share this step so that an audit and a backup can never disagree
//! about what "the gitea profile" covers. Profiles report items that do not exist or sit
//! on no persistent storage as findings and leave them out of the sources; what exists
//! is walked like any path, then audited against the owner and mode the forge expects.

use crate::archive::manifest::Ownership;
use crate::cli::SourceArgs;
use crate::collect::{resolve_source, SourceRequest, Way};
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::profile::{self, Context, Forge, HostPaths, ItemKind, Layout, Resolved};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The sources of one run.
#[derive(Debug, Default)]
pub struct Sources {
    pub requests: Vec<SourceRequest>,
    /// Databases to copy with SQLite's online backup.
    pub sqlite: BTreeSet<PathBuf>,
    /// What the profiles found in the configurations.
    pub findings: Vec<Finding>,
    /// Every profile resolved, for reports.
    pub resolved: Vec<Resolved>,
}

/// `-p NAME[=CONFIG]`. A relative CONFIG is made absolute against the current folder,
/// so the items derived from it are absolute like every other source path.
pub fn parse_profile(spec: &str) -> Result<(Forge, Option<PathBuf>)> {
    let (name, config) = match spec.split_once('=') {
        Some((n, c)) if !c.is_empty() => (
            n,
            Some(std::path::absolute(c).unwrap_or_else(|_| PathBuf::from(c))),
        ),
        Some((n, _)) => (n, None),
        None => (spec, None),
    };
    Ok((Forge::parse(name.trim())?, config))
}

/// Resolves every path, profile and compose file of `args`.
pub fn resolve(args: &SourceArgs, numeric_ids: bool) -> Result<Sources> {
    let ownership = if numeric_ids {
        Ownership::Numeric
    } else {
        Ownership::Name
    };
    let mut s = Sources::default();
    for p in &args.paths {
        s.requests
            .push(SourceRequest::path(p.display().to_string(), ownership));
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let installed = if args.profiles.is_empty() {
        Vec::new()
    } else {
        profile::detect::detect(&env)
    };
    for spec in &args.profiles {
        let (forge, config) = parse_profile(spec)?;
        // A forge started by systemd resolves its paths with its unit's environment
        // (GITEA_WORK_DIR, GITEA_CUSTOM, ...), not with ours: use it when this is the
        // installation a unit runs.
        let mut service_env = env.clone();
        let mut working_dir = None;
        if let Some(d) = installed.iter().find(|d| {
            d.forge == forge
                && (!d.env.is_empty() || d.working_dir.is_some())
                && (config.is_none() || d.config.as_deref() == config.as_deref())
        }) {
            service_env.extend(d.env.clone());
            working_dir = d.working_dir.clone();
        }
        let ctx = Context {
            env: &service_env,
            locate: &HostPaths,
            layout: Layout::Native,
            with_db: args.with_db,
            numeric_ids,
            version: None,
            working_dir,
        };
        let resolved = profile::resolve(forge, config.as_deref(), &ctx)?;
        s.add_profile(resolved, ownership, None)?;
    }
    for file in &args.compose {
        let project = crate::compose::load(file)?;
        s.add_compose(&project, args.with_db)?;
    }
    s.link_consistency_groups();
    if s.requests.is_empty() && s.findings.is_empty() {
        return Err(Error::usage("no sources: no PATH, profile (-p) or compose file (--compose) given")
            .hint("name files or folders, a profile (-p gitea), a compose file (--compose FILE), or list them in the configuration file"));
    }
    Ok(s)
}

impl Sources {
    /// Adds the items of a resolved profile as sources. `service` names the compose
    /// service the items came from (its label in the manifest).
    pub fn add_profile(
        &mut self,
        resolved: Resolved,
        ownership: Ownership,
        service: Option<&str>,
    ) -> Result<()> {
        let label = match service {
            Some(svc) => format!("{} (service {svc})", resolved.forge.as_str()),
            None => resolved.forge.as_str().to_string(),
        };
        for item in &resolved.items {
            let given = item.path.display().to_string();
            if item.kind == ItemKind::Sqlite {
                self.sqlite.insert(resolve_source(&given)?);
            }
            // The same file named by two profiles (two services sharing a volume) is one
            // source.
            if self.requests.iter().any(|r| r.given == given) {
                continue;
            }
            self.requests.push(SourceRequest {
                given,
                profile: Some(label.clone()),
                ownership,
                what: Some(item.what.clone()),
                container_path: item.container_path.clone(),
                // Derived, not named: the forge (or its container) writes on its way.
                way: Way::Guarded {
                    confined: item.confined.clone(),
                },
            });
        }
        self.findings.extend(resolved.findings.iter().cloned());
        self.resolved.push(resolved);
        Ok(())
    }

    /// The forge and CI services of a compose project: each resolved through its own
    /// volumes, archived by number (the uid inside the container is what counts), plus
    /// the files that hold the services' environment (the compose file, `.env`,
    /// `env_file`s): `GITEA__security__SECRET_KEY` or `WOODPECKER_AGENT_SECRET` often
    /// live there and nowhere else.
    pub fn add_compose(&mut self, project: &crate::compose::Project, with_db: bool) -> Result<()> {
        let mut any = false;
        for (svc, forge, layout) in project.apps() {
            any = true;
            let resolved =
                crate::compose::advice::resolve_service(project, svc, (forge, layout), with_db)?;
            self.add_profile(resolved, Ownership::Numeric, Some(&svc.name))?;
        }
        // A service that looks like a forge but is none forgekeep knows is a warning
        // below, not a reason to stop: the rest of the file is still kept.
        let warned = project
            .notes
            .iter()
            .any(|n| n.severity >= crate::findings::Severity::Warning);
        // An image docker would refuse makes docker refuse the file: with nothing else
        // to keep, so does forgekeep (beside a known service it is a warning note).
        let refused = project.services.iter().find_map(|s| {
            crate::compose::reference_problem(&s.image).map(|why| (s.name.clone(), why))
        });
        if let (false, Some((svc, why))) = (any, refused) {
            return Err(Error::usage(format!(
                "{} has no forge or CI service forgekeep can read (service {svc}: {why})",
                project.file.display()
            ))
            .hint("write the image as docker does, name[:tag][@digest], e.g. gitea/gitea:1.23-rootless"));
        }
        if !any && !warned {
            return Err(Error::usage(format!(
                "{} has no forge or CI service forgekeep knows",
                project.file.display()
            ))
            .hint("forgekeep recognises the images gitea/gitea, forgejo/forgejo, woodpeckerci/woodpecker-server|agent, gitlab/gitlab-ce|ee, gogs/gogs and drone/drone, and services built FROM them"));
        }
        let at_file = |severity, message: &String, fix: &str| Finding {
            code: crate::findings::Code::ConfigProblem,
            severity,
            path: project.file.display().to_string(),
            message: message.clone(),
            fix: fix.into(),
        };
        for n in &project.notes {
            self.findings.push(at_file(n.severity, &n.message, &n.fix));
        }
        for w in &project.warnings {
            self.findings.push(at_file(
                crate::findings::Severity::Info,
                w,
                "check the compose file",
            ));
        }
        for f in &project.extra_files {
            let given = f.display().to_string();
            if f.exists() && !self.requests.iter().any(|r| r.given == given) {
                self.requests.push(SourceRequest {
                    profile: Some(format!("compose {}", project.name)),
                    what: Some(
                        "compose configuration (may hold secrets in environment values)".into(),
                    ),
                    ..SourceRequest::path(given, Ownership::Name)
                });
            }
        }
        Ok(())
    }

    /// docs/FORGES.md §7: a CI server's database holds refresh tokens the forge signed
    /// with its OAuth2 key (or, with HS256/384/512, its `JWT_SECRET`). Restored apart (a
    /// new key, or an older database), logins fail with "unable to parse refresh
    /// token": say so when both are in one run, and loudly when the signing secret
    /// itself is not being kept. Where the forge counts refreshes in its own database
    /// (Forgejo by default), the forge's database of the same moment is part of it too.
    fn link_consistency_groups(&mut self) {
        use crate::findings::Severity;
        use crate::profile::OAuth2Signer;
        let ci = self.resolved.iter().find(|r| {
            matches!(r.forge, Forge::Woodpecker | Forge::Drone)
                && r.items.iter().any(|i| i.kind == ItemKind::Sqlite)
        });
        let forge = self
            .resolved
            .iter()
            .find(|r| matches!(r.forge, Forge::Gitea | Forge::Forgejo));
        let (Some(ci), Some(forge)) = (ci, forge) else {
            return;
        };
        let (Some(db), Some(facts)) = (
            ci.items.iter().find(|i| i.kind == ItemKind::Sqlite),
            forge.oauth2.as_ref(),
        ) else {
            return;
        };
        let (ci_name, forge_name) = (ci.forge.as_str(), forge.forge.as_str());
        let (signer, kept) = match facts.signer {
            OAuth2Signer::Off => return, // no tokens to lose
            OAuth2Signer::KeyFile { kept } => ("OAuth2 signing key", kept),
            OAuth2Signer::Secret { kept } => {
                ("OAuth2 JWT_SECRET (HS256/384/512, in app.ini)", kept)
            }
        };
        let mut severity = Severity::Info;
        let mut message = if kept {
            format!(
                "{ci_name}'s database holds refresh tokens signed with {forge_name}'s {signer}, which this backup keeps too: restore them together"
            )
        } else {
            severity = Severity::Warning;
            format!(
                "{ci_name}'s database holds refresh tokens signed with {forge_name}'s {signer}, which this backup does NOT keep: after a restore with a different one every login fails (\"unable to parse refresh token\")"
            )
        };
        let mut fix = if kept {
            "restore the database and the forge's signing secret from the same backup".to_string()
        } else {
            "keep the forge's signing secret on persistent storage and in the same backup as this database".to_string()
        };
        if facts.invalidates_refresh_tokens {
            message.push_str(&format!(
                "; {forge_name} also counts every refresh in its own database (INVALIDATE_REFRESH_TOKENS, on by default in Forgejo), so restoring this database needs {forge_name}'s database of the same moment, or logins fail with \"token was already used\""
            ));
            if facts.database_kept {
                message.push_str(" (this backup keeps it)");
            } else {
                fix.push_str(&format!(
                    "; back up {forge_name}'s database at the same time (--with-db for SQLite)"
                ));
            }
        }
        self.findings.push(Finding {
            code: crate::findings::Code::ConfigProblem,
            severity,
            path: db.path.display().to_string(),
            message,
            fix,
        });
    }

    /// The profiles' expectations (owner, widest mode) checked against what collection saw.
    pub fn audit(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut names = crate::owners::NameCache::default();
        for item in self.resolved.iter().flat_map(|r| &r.items) {
            if let Ok(meta) = std::fs::symlink_metadata(&item.path) {
                out.extend(profile::audit(item, &meta, &mut names));
            }
        }
        out
    }
}

impl Sources {
    /// What collection needs to judge permissions: every item the profiles keep (a
    /// secret, and so is what is inside it), and the widest mode of those whose mode the
    /// profile states, by the path collection walks (symlinks above it resolved).
    pub fn secrets(&self) -> crate::collect::secrecy::Secrets {
        let mut s = crate::collect::secrecy::Secrets::default();
        for r in &self.resolved {
            for item in &r.items {
                let Ok(path) = resolve_source(&item.path.display().to_string()) else {
                    continue;
                };
                if let Some(mode) = item.max_mode {
                    s.expected_mode.insert(path.clone(), mode);
                }
                s.items
                    .insert(path, format!("{} ({})", item.what, r.forge.as_str()));
            }
        }
        s
    }
}
