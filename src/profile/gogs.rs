//! The Gogs profile (docs/FORGES.md §6, gogs/gogs@eb1054e).
//!
//! app.ini is `<custom>/conf/app.ini`, custom being `GOGS_CUSTOM` or `<work>/custom`
//! (`internal/conf`); the image sets `GOGS_CUSTOM=/data/gogs` and links
//! `/app/gogs/data` to `/data/gogs/data` (`docker/s6/gogs/setup`). Values may use
//! `${ENV}` expansion. Kept: app.ini (SECRET_KEY encrypts 2FA codes and cookies), the
//! built-in SSH server's host keys `APP_DATA_PATH/ssh/gogs.<algo>` (made by
//! `internal/ssh/ssh.go` `setupHostKeys` when missing), the image's OpenSSH host keys in
//! `/data/ssh`, and with `PROTOCOL = https` the certificate and key, with a mail client
//! certificate that one too (both relative to the work folder, `internal/conf`
//! `ensureAbs`).

use super::gitea::check_secret_key;
use super::ini::Ini;
use super::items::{image_openssh_dir, image_uid, run_owner, under, Builder, Need, Probe, Want};
use super::{Context, Forge, ItemKind, Layout, Resolved};
use crate::error::Result;
use crate::findings::{Code, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The placeholder shipped in `conf/app.ini`; current Gogs refuses to start with it.
const PLACEHOLDER: &str = "CHANGE-ME-OR-FAIL-TO-START";

/// Native places seen in the install docs (`/home/git/gogs` is the binary install's
/// home); the others are common packaging choices (UNCONFIRMED).
const NATIVE: [&str; 3] = [
    "/home/git/gogs/custom/conf/app.ini",
    "/opt/gogs/custom/conf/app.ini",
    "/var/lib/gogs/custom/conf/app.ini",
];

/// `${NAME}` expansion from the environment (Gogs expands env in values).
fn expand(v: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(j) => {
                let name = &rest[i + 2..i + 2 + j];
                out.push_str(env.get(name).map(String::as_str).unwrap_or(""));
                rest = &rest[i + 3 + j..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn resolve(config: Option<&Path>, ctx: &Context) -> Result<Resolved> {
    let layout = ctx.layout;
    let mut b = Builder::new(ctx);
    let env = ctx.env;
    let get = |k: &str| env.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let docker = layout != Layout::Native;

    let work_env = get("GOGS_WORK_DIR").map(PathBuf::from);
    let custom_env = get("GOGS_CUSTOM")
        .map(PathBuf::from)
        .or_else(|| docker.then(|| PathBuf::from("/data/gogs")));
    let ini_path = if let Some(c) = config {
        c.to_path_buf()
    } else if let Some(c) = &custom_env {
        c.join("conf/app.ini")
    } else if let Some(w) = &work_env {
        w.join("custom/conf/app.ini")
    } else {
        NATIVE
            .iter()
            .map(PathBuf::from)
            .find(|p| b.exists(p))
            .unwrap_or_else(|| PathBuf::from(NATIVE[0]))
    };

    let (ini, read) = match b.read_text(&ini_path) {
        Ok((_, t)) => (Ini::parse(&t), true),
        Err(why) => {
            b.finding(
                Code::ConfigProblem,
                Severity::Warning,
                &ini_path,
                format!("app.ini could not be read ({why}); the items below are Gogs' defaults"),
                "name the app.ini with -p gogs=PATH",
            );
            (Ini::default(), false)
        }
    };
    let val = |ini: &Ini, s: &str, k: &str| ini.non_empty(s, k).map(|v| expand(v.trim(), env));

    let run_user = val(&ini, "", "RUN_USER").unwrap_or_else(|| "git".into());
    // gogs/gogs docker/start.sh: `usermod -o -u "$PUID" git`.
    let owner = run_owner(ctx, &run_user, image_uid(ctx, "PUID"));
    let ini_host = match b.probe(&ini_path) {
        Probe::Found(h) => Some(h),
        _ => None,
    };
    b.add(
        Want::file(
            &ini_path,
            "Gogs app.ini (SECRET_KEY, passwords)",
            Need::Config,
        )
        .owner(Some(owner.clone()))
        .mode(0o640),
    );

    let work = work_env
        .or_else(|| docker.then(|| PathBuf::from("/app/gogs")))
        .or_else(|| {
            ini_path
                .ends_with("custom/conf/app.ini")
                .then(|| ini_path.ancestors().nth(3).map(Path::to_path_buf))
                .flatten()
        })
        .unwrap_or_else(|| PathBuf::from("/home/git/gogs"));
    // In the image /app/gogs/data is a symlink to /data/gogs/data: follow it, since the
    // container's view of volumes knows only /data.
    let relink = |p: PathBuf| -> PathBuf {
        match p.strip_prefix("/app/gogs/data") {
            Ok(rest) if docker => Path::new("/data/gogs/data").join(rest),
            _ => p,
        }
    };
    let data = relink(under(
        &work,
        &val(&ini, "server", "APP_DATA_PATH").unwrap_or_else(|| "data".into()),
    ));

    if ini.bool_or("server", "START_SSH_SERVER", false)
        && !ini.bool_or("server", "DISABLE_SSH", false)
    {
        let algos = val(&ini, "server", "SSH_SERVER_ALGORITHMS")
            .unwrap_or_else(|| "rsa, ecdsa, ed25519".into());
        for a in algos.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let a = a.strip_prefix("ssh-").unwrap_or(a);
            let k = data.join(format!("ssh/gogs.{a}"));
            b.add(
                Want::file(
                    &k,
                    format!("built-in SSH server host key ({a})"),
                    Need::Regenerates,
                )
                .owner(Some(owner.clone()))
                .mode(0o600),
            );
        }
    }
    tls_files(&mut b, &ini, env, &work, &relink, &owner);
    if docker {
        b.add(image_openssh_dir(layout));
    }

    let at = ini_host.clone().unwrap_or_else(|| ini_path.clone());
    if read {
        check_secret_key(&mut b, &ini, &at, "Gogs", &[PLACEHOLDER]);
        if !ini.bool_or("security", "INSTALL_LOCK", false) {
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &at,
                "[security] INSTALL_LOCK is not true: the web installer is open",
                "set INSTALL_LOCK = true once installed",
            );
        }
    }

    // [database] TYPE (DB_TYPE in older versions); PATH default data/gogs.db, relative
    // to the work dir.
    let db_type = val(&ini, "database", "TYPE").or_else(|| val(&ini, "database", "DB_TYPE"));
    if db_type.as_deref().map(str::to_ascii_lowercase).as_deref() == Some("sqlite3") {
        let db = relink(under(
            &work,
            &val(&ini, "database", "PATH").unwrap_or_else(|| "data/gogs.db".into()),
        ));
        if ctx.with_db {
            b.add(
                Want::new(db, "Gogs SQLite database", ItemKind::Sqlite, Need::Required)
                    .owner(Some(owner.clone()))
                    .mode(0o640),
            );
        } else {
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &db,
                "the SQLite database is not included: its 2FA secrets are encrypted with \
                 SECRET_KEY, so the database and this app.ini must be restored as a pair",
                "add --with-db, or back up the database at the same time (gogs backup)",
            );
        }
    }

    Ok(Resolved {
        service: None,
        compose: None,
        forge: Forge::Gogs,
        layout,
        config: Some(ini_host.unwrap_or(ini_path)),
        items: b.items,
        findings: b.findings,
        oauth2: None,
    })
}

/// `[server] PROTOCOL = https`: `CERT_FILE`/`KEY_FILE` (default `custom/https/*.pem` in
/// `conf/app.ini`); Gogs does not start without them. `[email]` (`[mailer]` before 0.12)
/// `ENABLED` and `USE_CERTIFICATE`: the client certificate it authenticates to the SMTP
/// server with (default `custom/email/*.pem`, `custom/mailer/*.pem` before 0.12). All
/// relative to the work folder (`internal/conf/utils.go` `ensureAbs`), which in the image
/// is `/app/gogs`: a relative default there is in the container's layer.
fn tls_files(
    b: &mut Builder,
    ini: &Ini,
    env: &BTreeMap<String, String>,
    work: &Path,
    relink: &dyn Fn(PathBuf) -> PathBuf,
    owner: &super::Owner,
) {
    let val = |s: &str, k: &str| ini.non_empty(s, k).map(|v| expand(v.trim(), env));
    let mut pair = |cert: String, key: String, what: &str| {
        b.add(
            Want::file(
                relink(under(work, &cert)),
                format!("{what} certificate"),
                Need::Required,
            )
            .owner(Some(owner.clone()))
            .mode(0o644),
        );
        b.add(
            Want::file(
                relink(under(work, &key)),
                format!("{what} private key"),
                Need::Required,
            )
            .owner(Some(owner.clone()))
            .mode(0o600),
        );
    };
    if val("server", "PROTOCOL").is_some_and(|p| p.eq_ignore_ascii_case("https")) {
        pair(
            val("server", "CERT_FILE").unwrap_or_else(|| "custom/https/cert.pem".into()),
            val("server", "KEY_FILE").unwrap_or_else(|| "custom/https/key.pem".into()),
            "HTTPS",
        );
    }
    let (sec, dir) =
        if ini.get("email", "ENABLED").is_some() || ini.get("mailer", "ENABLED").is_none() {
            ("email", "custom/email")
        } else {
            ("mailer", "custom/mailer")
        };
    if ini.bool_or(sec, "ENABLED", false) && ini.bool_or(sec, "USE_CERTIFICATE", false) {
        pair(
            val(sec, "CERT_FILE").unwrap_or_else(|| format!("{dir}/cert.pem")),
            val(sec, "KEY_FILE").unwrap_or_else(|| format!("{dir}/key.pem")),
            "SMTP client",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::items::testing::{item_paths, run, Prefixed};
    use super::super::{Forge, Layout};
    use crate::findings::{Code, Severity};
    use std::path::PathBuf;

    #[test]
    fn docker_gogs() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/data/gogs/conf/app.ini",
            "RUN_USER = git\n[server]\nSTART_SSH_SERVER = true\nSSH_SERVER_ALGORITHMS = ed25519\n\
             [security]\nINSTALL_LOCK = true\nSECRET_KEY = CHANGE-ME-OR-FAIL-TO-START\n[database]\nTYPE = sqlite3\n",
        );
        fake.write("/data/gogs/data/ssh/gogs.ed25519", "k");
        fake.mkdir("/data/ssh");
        fake.write("/data/gogs/data/gogs.db", "db");
        let r = run(Forge::Gogs, &fake, Layout::Docker, &[], None, true);
        let paths = item_paths(&r, &fake);
        assert_eq!(
            paths,
            [
                "/data/gogs/conf/app.ini",
                "/data/gogs/data/ssh/gogs.ed25519",
                "/data/ssh",
                "/data/gogs/data/gogs.db"
            ]
            .map(PathBuf::from)
        );
        assert!(r.findings.iter().any(|f| f.code == Code::ConfigProblem
            && f.severity == Severity::Warning
            && f.message.contains("SECRET_KEY")));
    }

    #[test]
    fn expand_env() {
        let env = std::collections::BTreeMap::from([("HOME".to_string(), "/home/git".to_string())]);
        assert_eq!(
            super::expand("${HOME}/gogs-data", &env),
            "/home/git/gogs-data"
        );
        assert_eq!(super::expand("a${NOPE}b${", &env), "ab${");
    }

    #[test]
    fn https_and_mail_client_certificates_are_relative_to_the_work_folder() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/home/git/gogs/custom/conf/app.ini",
            "[server]\nPROTOCOL = https\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = s\n\
             [email]\nENABLED = true\nUSE_CERTIFICATE = true\nCERT_FILE = /etc/gogs/mail.pem\n\
             KEY_FILE = mail.key\n",
        );
        for f in [
            "/home/git/gogs/custom/https/cert.pem",
            "/home/git/gogs/custom/https/key.pem",
            "/etc/gogs/mail.pem",
            "/home/git/gogs/mail.key",
        ] {
            fake.write(f, "x");
        }
        let r = run(Forge::Gogs, &fake, Layout::Native, &[], None, false);
        let paths = item_paths(&r, &fake);
        for want in [
            "/home/git/gogs/custom/https/cert.pem",
            "/home/git/gogs/custom/https/key.pem",
            "/etc/gogs/mail.pem",
            "/home/git/gogs/mail.key",
        ] {
            assert!(paths.contains(&PathBuf::from(want)), "{want} in {paths:?}");
        }
        let key = r
            .items
            .iter()
            .find(|i| i.path.ends_with("https/key.pem"))
            .unwrap();
        assert_eq!(key.max_mode, Some(0o600));

        // In the image the work folder is /app/gogs: a relative default lands in the
        // container's layer, and is said to be missing there, not looked for in /data.
        fake.write(
            "/data/gogs/conf/app.ini",
            "[server]\nPROTOCOL = https\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = s\n",
        );
        let r = run(Forge::Gogs, &fake, Layout::Docker, &[], None, false);
        assert!(
            r.findings.iter().any(|f| f.code == Code::SecretMissing
                && f.path.ends_with("app/gogs/custom/https/cert.pem")),
            "{:?}",
            r.findings
        );
    }
}
