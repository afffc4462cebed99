//! The Woodpecker CI profiles: server (`woodpecker`) and agent (`woodpecker-agent`).
//!
//! Woodpecker is configured by environment only (`cmd/server/flags.go`,
//! `cmd/agent/core/flags.go`). The packages load `/etc/woodpecker/woodpecker-server.env`
//! and `woodpecker-agent.env` (`nfpm/*.service` `EnvironmentFile=`); compose passes
//! `environment:`. The configuration here is that env file merged over the environment
//! of the context (the file wins, as systemd's EnvironmentFile would).
//!
//! The server's SQLite database IS its secret store: users' forge OAuth tokens, pipeline
//! secrets and registry credentials are plain TEXT columns (the encryption service is
//! commented out, `server/services/setup.go`), and the JWT secret and extension signing
//! key are rows of `server_configs`. So the database is kept by default, not only with
//! `--with-db` (docs/FORGES.md §3).

use super::items::{merge_env_file, run_owner, sqlite_path, under, Builder, Need, Want};
use super::{Context, Forge, ItemKind, Layout, Resolved};
use crate::error::Result;
use crate::findings::{Code, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `*_FILE` variables that are not secrets (docs/FORGES.md §3): a log destination, the
/// agent ID file (handled on its own), and the UI customisation the server serves to
/// every visitor (`cmd/server/flags.go` `custom-css-file`, `custom-js-file`).
const NOT_SECRET_FILES: &[&str] = &[
    "WOODPECKER_LOG_FILE",
    "WOODPECKER_AGENT_CONFIG_FILE",
    "WOODPECKER_CUSTOM_CSS_FILE",
    "WOODPECKER_CUSTOM_JS_FILE",
];

fn is_container(layout: Layout, env: &BTreeMap<String, String>) -> bool {
    layout != Layout::Native || env.contains_key("WOODPECKER_IN_CONTAINER")
}

pub fn resolve(forge: Forge, config: Option<&Path>, ctx: &Context) -> Result<Resolved> {
    let agent = forge == Forge::WoodpeckerAgent;
    let layout = ctx.layout;
    let mut b = Builder::new(ctx);
    let mut env = ctx.env.clone();

    let default_file = if agent {
        "/etc/woodpecker/woodpecker-agent.env"
    } else {
        "/etc/woodpecker/woodpecker-server.env"
    };
    let what = if agent {
        "Woodpecker agent env file (WOODPECKER_AGENT_SECRET)"
    } else {
        "Woodpecker server env file (WOODPECKER_AGENT_SECRET, forge client secret, DB DSN)"
    };
    let config_path: Option<PathBuf> = match config {
        Some(c) => {
            merge_env_file(&mut b, c, &mut env, what, Need::Config, layout);
            Some(c.to_path_buf())
        }
        None if layout == Layout::Native => {
            let p = PathBuf::from(default_file);
            merge_env_file(&mut b, &p, &mut env, what, Need::Optional, layout);
            Some(p)
        }
        None => None,
    };
    let in_container = is_container(layout, &env);
    // Package installs run as `woodpecker` (nfpm); the images as uid 1000 in newer
    // versions, root in older ones, so no owner is asserted in containers, nor for a
    // container's files seen from a sidecar (--numeric-ids).
    let owner = (!in_container && !ctx.numeric_ids).then(|| run_owner(ctx, "woodpecker", 1000));

    // Every *_FILE variable names a file holding a secret value
    // (WOODPECKER_AGENT_SECRET_FILE, WOODPECKER_GRPC_SECRET_FILE, forge secrets, ...).
    let files: Vec<(String, String)> = env
        .iter()
        .filter(|(k, v)| {
            k.starts_with("WOODPECKER_")
                && k.ends_with("_FILE")
                && !NOT_SECRET_FILES.contains(&k.as_str())
                && !v.trim().is_empty()
        })
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    for (k, v) in &files {
        b.add(Want::file(v, format!("file named by {k}"), Need::Required).mode(0o640));
    }

    // The agent ID file exists from v1.0 (woodpecker#1888); an older tag has none.
    if agent && ctx.at_least(&[1]) != Some(false) {
        // Agent ID file (cmd/agent/core/config.go): written 0644 as {"agent_id":N}.
        // An empty value means a stateless agent. Lost: the agent registers as a NEW
        // agent on every start (woodpecker#2479, #6527).
        let conf = env
            .get("WOODPECKER_AGENT_CONFIG_FILE")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "/etc/woodpecker/agent.conf".into());
        if !conf.is_empty() {
            b.add(
                Want::file(
                    &conf,
                    "Woodpecker agent ID file (agent.conf)",
                    Need::Regenerates,
                )
                .owner(owner.clone())
                .mode(0o644),
            );
        }
    } else if !agent {
        // TLS served by Woodpecker itself.
        for (var, what, mode) in [
            (
                "WOODPECKER_SERVER_CERT",
                "Woodpecker HTTPS certificate",
                0o644,
            ),
            (
                "WOODPECKER_SERVER_KEY",
                "Woodpecker HTTPS private key",
                0o600,
            ),
        ] {
            if let Some(p) = env.get(var).map(|s| s.trim()).filter(|s| !s.is_empty()) {
                b.add(Want::file(p, what, Need::Required).mode(mode));
            }
        }

        // The database (cmd/server/flags.go datasourceDefaultValue): in a container
        // /var/lib/woodpecker/woodpecker.sqlite; natively `woodpecker.sqlite` relative
        // to the cwd, which the package unit sets to /var/lib/woodpecker/.
        let driver = env
            .get("WOODPECKER_DATABASE_DRIVER")
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "sqlite3".into());
        let at = config_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("/var/lib/woodpecker"));
        if driver == "sqlite3" || driver == "sqlite" {
            let mut dsn = env
                .get("WOODPECKER_DATABASE_DATASOURCE")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            if dsn.is_none() {
                if let Some(f) = env.get("WOODPECKER_DATABASE_DATASOURCE_FILE") {
                    // For sqlite the DSN is a path; read it, never print it.
                    dsn = b
                        .read_text(Path::new(f.trim()))
                        .ok()
                        .map(|(_, t)| t.trim().to_string());
                }
            }
            let db = match dsn.as_deref() {
                Some(d) => under(Path::new("/var/lib/woodpecker"), sqlite_path(d)),
                // Same path both ways: the image's default, and the package's cwd.
                None => PathBuf::from("/var/lib/woodpecker/woodpecker.sqlite"),
            };
            b.add(
                Want::new(
                    db,
                    "Woodpecker SQLite database (forge OAuth tokens and pipeline secrets, in plain text)",
                    ItemKind::Sqlite,
                    Need::Regenerates,
                )
                .owner(owner.clone())
                .mode(0o640),
            );
        } else {
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &at,
                format!(
                    "the database is external ({driver}) and not included, yet it holds the \
                     forge OAuth tokens and the pipeline secrets"
                ),
                "back it up with the database's own tool at the same time as this archive",
            );
        }

        // WOODPECKER_GRPC_SECRET: random per start since 3.17 (#6845), the literal
        // `secret` before (cmd/server/grpc_server.go; versioned docs 3.15/3.16).
        let grpc = env
            .get("WOODPECKER_GRPC_SECRET")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        let grpc_file = env.contains_key("WOODPECKER_GRPC_SECRET_FILE");
        if grpc == Some("secret") {
            b.finding(
                Code::ConfigProblem,
                Severity::Warning,
                &at,
                "WOODPECKER_GRPC_SECRET is the published default of Woodpecker 3.16 and older: \
                 anyone can sign agent tokens",
                "set WOODPECKER_GRPC_SECRET to a random value (openssl rand -hex 32)",
            );
        } else if grpc.is_none() && !grpc_file {
            b.finding(
                Code::ConfigProblem,
                Severity::Warning,
                &at,
                "WOODPECKER_GRPC_SECRET is not set: since 3.17 the server makes a random one \
                 at each start (agents re-authenticate after every restart, HA replicas \
                 disagree); 3.16 and older use the published default",
                "set WOODPECKER_GRPC_SECRET to a random value and keep it with this backup",
            );
        }
    }

    Ok(Resolved {
        service: None,
        compose: None,
        forge,
        layout,
        config: config_path.map(|p| match ctx.locate.locate(&p) {
            super::Location::Host(h) => h,
            _ => p,
        }),
        items: b.items,
        findings: b.findings,
        oauth2: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::items::testing::{item_paths as paths, run as run_db, Prefixed};
    use super::super::{Forge, ItemKind, Layout, Resolved};

    fn run(
        forge: Forge,
        fake: &Prefixed,
        layout: Layout,
        env: &[(&str, &str)],
        config: Option<&str>,
    ) -> Resolved {
        run_db(forge, fake, layout, env, config, false)
    }

    use crate::findings::{Code, Severity};
    use std::path::PathBuf;

    #[test]
    fn native_server_env_file_and_sqlite() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/etc/woodpecker/woodpecker-server.env",
            "WOODPECKER_HOST=https://ci.example.org\nWOODPECKER_AGENT_SECRET=topsecretvalue\n\
             WOODPECKER_GITEA_SECRET_FILE=/etc/woodpecker/gitea-secret\nWOODPECKER_GRPC_SECRET=secret\n\
             WOODPECKER_LOG_FILE=/var/log/woodpecker.log\n",
        );
        fake.write("/etc/woodpecker/gitea-secret", "x");
        fake.write("/var/lib/woodpecker/woodpecker.sqlite", "db");
        let r = run(Forge::Woodpecker, &fake, Layout::Native, &[], None);
        let p = paths(&r, &fake);
        assert!(p.contains(&PathBuf::from("/etc/woodpecker/woodpecker-server.env")));
        assert!(p.contains(&PathBuf::from("/etc/woodpecker/gitea-secret")));
        assert!(p.contains(&PathBuf::from("/var/lib/woodpecker/woodpecker.sqlite")));
        assert!(!p.iter().any(|p| p.ends_with("woodpecker.log")));
        let db = r.items.iter().find(|i| i.kind == ItemKind::Sqlite).unwrap();
        assert!(db.path.ends_with("woodpecker.sqlite"));
        assert!(r
            .findings
            .iter()
            .any(|f| f.code == Code::ConfigProblem && f.message.contains("published default")));
        assert!(!format!("{r:?}").contains("topsecretvalue"));
    }

    #[test]
    fn container_dsn_relative_and_external_db() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write("/var/lib/woodpecker/custom.sqlite", "db");
        let r = run(
            Forge::Woodpecker,
            &fake,
            Layout::Docker,
            &[
                (
                    "WOODPECKER_DATABASE_DATASOURCE",
                    "file:custom.sqlite?cache=shared",
                ),
                ("WOODPECKER_GRPC_SECRET", "abc"),
            ],
            None,
        );
        assert_eq!(
            paths(&r, &fake),
            vec![PathBuf::from("/var/lib/woodpecker/custom.sqlite")]
        );
        assert!(r.findings.is_empty(), "{:?}", r.findings);

        let r = run(
            Forge::Woodpecker,
            &fake,
            Layout::Docker,
            &[
                ("WOODPECKER_DATABASE_DRIVER", "postgres"),
                ("WOODPECKER_DATABASE_DATASOURCE", "postgres://u:pw@db/x"),
            ],
            None,
        );
        assert!(r.items.is_empty());
        assert!(r
            .findings
            .iter()
            .any(|f| f.severity == Severity::Info && f.message.contains("external")));
        assert!(r
            .findings
            .iter()
            .any(|f| f.severity == Severity::Warning && f.message.contains("not set")));
        assert!(!format!("{r:?}").contains("pw@db"));
    }

    #[test]
    fn agent_conf_regenerates() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/srv/agent.env",
            "WOODPECKER_SERVER=ci:9000\nWOODPECKER_AGENT_SECRET_FILE=/run/secrets/agent\n",
        );
        fake.write("/run/secrets/agent", "x");
        let r = run(
            Forge::WoodpeckerAgent,
            &fake,
            Layout::Native,
            &[],
            Some("/srv/agent.env"),
        );
        let p = paths(&r, &fake);
        assert!(p.contains(&PathBuf::from("/srv/agent.env")));
        assert!(p.contains(&PathBuf::from("/run/secrets/agent")));
        let f = r
            .findings
            .iter()
            .find(|f| f.code == Code::SecretMissing)
            .unwrap();
        assert!(f.path.ends_with("etc/woodpecker/agent.conf"));
        assert_eq!(f.severity, Severity::Warning);

        fake.write("/etc/woodpecker/agent.conf", "{\"agent_id\":3}");
        let r = run(
            Forge::WoodpeckerAgent,
            &fake,
            Layout::Native,
            &[],
            Some("/srv/agent.env"),
        );
        let conf = r
            .items
            .iter()
            .find(|i| i.path.ends_with("agent.conf"))
            .unwrap();
        assert!(conf.regenerates);
    }

    #[test]
    fn agent_conf_follows_the_image_tag_and_ui_files_are_not_secrets() {
        use super::super::items::testing::run_tagged;
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        // v0.15 had no agent ID file (woodpecker#1888 came with 1.0): nothing to expect.
        for (tag, expected) in [(Some("v0.15.11"), false), (Some("v3"), true), (None, true)] {
            let r = run_tagged(
                Forge::WoodpeckerAgent,
                &fake,
                Layout::Docker,
                tag,
                &[],
                None,
                false,
            );
            assert_eq!(
                r.findings.iter().any(|f| f.path.contains("agent.conf")),
                expected,
                "{tag:?}: {:?}",
                r.findings
            );
        }
        fake.write("/srv/ui/custom.css", "body{}");
        fake.write("/srv/ui/custom.js", "x");
        let r = run(
            Forge::Woodpecker,
            &fake,
            Layout::Docker,
            &[
                ("WOODPECKER_CUSTOM_CSS_FILE", "/srv/ui/custom.css"),
                ("WOODPECKER_CUSTOM_JS_FILE", "/srv/ui/custom.js"),
                ("WOODPECKER_GRPC_SECRET", "g"),
            ],
            None,
        );
        assert!(
            !paths(&r, &fake).iter().any(|p| p.starts_with("/srv/ui")),
            "{:?}",
            r.items
        );
    }
}
