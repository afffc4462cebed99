//! The Drone CI profile (docs/FORGES.md §5).
//!
//! Drone is configured by environment only. Its SQLite database
//! (`DRONE_DATABASE_DATASOURCE`, `/data/database.sqlite` in the image) holds the users'
//! forge OAuth tokens and the repository secrets, the latter encrypted with
//! `DRONE_DATABASE_SECRET` (docs.drone.io/server/storage/encryption) — a key that lives
//! only in the environment (compose file, env file). The database is kept by default,
//! like Woodpecker's, because it is the secret store; the key is kept only where it is
//! in a file forgekeep is given.

use super::items::{merge_env_file, sqlite_path};
use super::items::{under, Builder, Need, Want};
use super::{Context, Forge, ItemKind, Location, Resolved};
use crate::error::Result;
use crate::findings::{Code, Severity};
use std::path::{Path, PathBuf};

pub fn resolve(config: Option<&Path>, ctx: &Context) -> Result<Resolved> {
    let layout = ctx.layout;
    let mut b = Builder::new(ctx);
    let mut env = ctx.env.clone();
    let mut file_has_key = false;
    if let Some(c) = config {
        let vars = merge_env_file(
            &mut b,
            c,
            &mut env,
            "Drone env file (DRONE_DATABASE_SECRET, DRONE_RPC_SECRET, client secret)",
            Need::Config,
            layout,
        );
        file_has_key = vars.is_some_and(|v| v.contains_key("DRONE_DATABASE_SECRET"));
    }
    let get = |k: &str| env.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let at = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/data"));

    let driver = get("DRONE_DATABASE_DRIVER")
        .unwrap_or("sqlite3")
        .to_ascii_lowercase();
    if driver == "sqlite3" || driver == "sqlite" {
        let dsn = get("DRONE_DATABASE_DATASOURCE").unwrap_or("/data/database.sqlite");
        let db = under(Path::new("/data"), sqlite_path(dsn));
        b.add(
            Want::new(
                db,
                "Drone SQLite database (forge OAuth tokens, encrypted repository secrets)",
                ItemKind::Sqlite,
                Need::Regenerates,
            )
            .mode(0o640),
        );
    } else {
        b.finding(
            Code::ConfigProblem,
            Severity::Info,
            &at,
            format!("the database is external ({driver}) and not included"),
            "back it up with the database's own tool at the same time as this archive",
        );
    }

    if get("DRONE_DATABASE_SECRET").is_none() {
        b.finding(
            Code::ConfigProblem,
            Severity::Warning,
            &at,
            "DRONE_DATABASE_SECRET is not in the configuration forgekeep read: if the server \
             has one, the repository secrets in the database are encrypted with it and are \
             lost without it; it lives in the environment (compose file or env file), not in \
             the database",
            "name the server's env file with -p drone=PATH, or keep the compose file with this backup",
        );
    } else if !file_has_key {
        b.finding(
            Code::ConfigProblem,
            Severity::Info,
            &at,
            "DRONE_DATABASE_SECRET is set in the service's environment, which is not a file \
             in this archive; the database's secrets are useless without it",
            "keep the compose file (or move the key to an env file and name it with -p drone=PATH)",
        );
    }

    Ok(Resolved {
        service: None,
        compose: None,
        forge: Forge::Drone,
        layout,
        config: config.map(|c| match ctx.locate.locate(c) {
            Location::Host(h) => h,
            _ => c.to_path_buf(),
        }),
        items: b.items,
        findings: b.findings,
        oauth2: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::items::testing::{run, Prefixed};
    use super::super::{Forge, ItemKind, Layout};
    use crate::findings::Severity;

    #[test]
    fn sqlite_and_database_secret() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write("/data/database.sqlite", "db");
        fake.write(
            "/srv/drone.env",
            "DRONE_DATABASE_SECRET=abcdef0123\nDRONE_RPC_SECRET=x\n",
        );
        let r = run(Forge::Drone, &fake, Layout::Docker, &[], None, false);
        assert_eq!(r.items.len(), 1);
        assert_eq!(r.items[0].kind, ItemKind::Sqlite);
        assert!(r.findings.iter().any(
            |f| f.severity == Severity::Warning && f.message.contains("DRONE_DATABASE_SECRET")
        ));

        let r = run(
            Forge::Drone,
            &fake,
            Layout::Docker,
            &[],
            Some("/srv/drone.env"),
            false,
        );
        assert_eq!(r.items.len(), 2);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert!(!format!("{r:?}").contains("abcdef0123"));
    }
}
