//! The Gitea and Forgejo profiles (`forge` tells which; Forgejo is a hard fork with the
//! same layout, FORGES.md §2).
//!
//! Resolution follows Gitea's own order (`modules/setting/path.go`): the app.ini named on
//! the command line, else `GITEA_APP_INI`, else `<custom>/conf/app.ini` where custom is
//! `FORGEJO_CUSTOM`/`GITEA_CUSTOM` (Forgejo reads its own names after Gitea's, so they
//! win) or `<work>/custom`, else the layout's known places. Then `GITEA__SECTION__KEY`
//! (and Forgejo's `FORGEJO__…`) environment overrides are applied the way
//! `modules/setting/config_env.go` does, and every file the configuration points at is
//! derived: relative paths resolve against `APP_DATA_PATH` (keys), the custom path (TLS)
//! or the work path (database, `*_URI` files).

use super::ini::Ini;
use super::items::{image_uid, root_owner, run_owner, under, Builder, Need, Probe, Want};
use super::{Context, Forge, ItemKind, Layout, Owner, Resolved};
use crate::error::Result;
use crate::findings::{Code, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Gitea's fallback when `[security] SECRET_KEY` is empty (`modules/setting/security.go`).
/// Compared against, never printed.
pub(crate) const BUILTIN_SECRET_KEY: &str = "!#@FDEWREWR&*(";

/// The uid (and gid) of `git` in the official images (Dockerfile, Dockerfile.rootless).
const IMAGE_UID: u32 = 1000;

fn native_candidates(forge: Forge) -> Vec<&'static str> {
    // FORGES.md §7 "Candidate configs"; the forge's own names first.
    let gitea = [
        "/etc/gitea/app.ini",
        "/etc/gitea/conf/app.ini",
        "/var/lib/gitea/custom/conf/app.ini",
        "/usr/local/etc/gitea/conf/app.ini",
    ];
    let forgejo = [
        "/etc/forgejo/app.ini",
        "/etc/forgejo/conf/app.ini",
        "/var/lib/forgejo/custom/conf/app.ini",
        "/usr/local/etc/forgejo/conf/app.ini",
    ];
    match forge {
        Forge::Forgejo => forgejo.into_iter().chain(gitea).collect(),
        _ => gitea.into_iter().chain(forgejo).collect(),
    }
}

pub(crate) fn layout_candidates(forge: Forge, layout: Layout) -> Vec<&'static str> {
    match layout {
        Layout::Native => native_candidates(forge),
        // docker/root: GITEA_CUSTOM=/data/gitea (Dockerfile).
        Layout::Docker => vec!["/data/gitea/conf/app.ini"],
        // Gitea rootless: GITEA_APP_INI=/etc/gitea/app.ini; Forgejo's newer default is
        // ${GITEA_CUSTOM}/conf/app.ini, the legacy one still used when present
        // (forgejo Dockerfile.rootless, docker-setup.sh).
        Layout::DockerRootless => vec!["/etc/gitea/app.ini", "/var/lib/gitea/custom/conf/app.ini"],
    }
}

/// The env value for `names`, first non-empty wins.
fn env_first<'e>(env: &'e BTreeMap<String, String>, names: &[&str]) -> Option<&'e str> {
    names
        .iter()
        .filter_map(|n| env.get(*n))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

fn custom_env(forge: Forge) -> &'static [&'static str] {
    match forge {
        Forge::Forgejo => &["FORGEJO_CUSTOM", "GITEA_CUSTOM"],
        _ => &["GITEA_CUSTOM"],
    }
}

fn work_env(forge: Forge) -> &'static [&'static str] {
    match forge {
        Forge::Forgejo => &["FORGEJO_WORK_DIR", "GITEA_WORK_DIR"],
        _ => &["GITEA_WORK_DIR"],
    }
}

/// The app.ini the environment points at (`modules/setting/path.go`): `GITEA_APP_INI`,
/// else `<custom>/conf/app.ini` (a relative custom path is relative to the work path),
/// else `<work>/custom/conf/app.ini`. Shared with detection, which reads a systemd
/// unit's environment, so both find the same file.
pub(crate) fn app_ini_from_env(
    forge: Forge,
    env: &BTreeMap<String, String>,
) -> Option<(PathBuf, &'static str)> {
    if let Some(p) = env_first(env, &["GITEA_APP_INI"]) {
        return Some((PathBuf::from(p), "GITEA_APP_INI"));
    }
    let work = env_first(env, work_env(forge));
    if let Some(c) = env_first(env, custom_env(forge)) {
        let base = PathBuf::from(work.unwrap_or("/"));
        return Some((under(&base, c).join("conf/app.ini"), "the custom path"));
    }
    work.map(|w| (Path::new(w).join("custom/conf/app.ini"), "the work path"))
}

/// The app.ini to read, and how it was chosen.
fn find_config(
    forge: Forge,
    config: Option<&Path>,
    ctx: &Context,
    b: &Builder,
) -> (PathBuf, String) {
    if let Some(c) = config {
        return (c.to_path_buf(), "named on the command line".into());
    }
    if let Some((p, how)) = app_ini_from_env(forge, ctx.env) {
        return (p, how.into());
    }
    let cands = layout_candidates(forge, ctx.layout);
    for c in &cands {
        if b.exists(Path::new(c)) {
            return (PathBuf::from(c), "a known location".into());
        }
    }
    (PathBuf::from(cands[0]), "the layout's default".into())
}

/// Decodes an env-to-ini name part: `_0X2E_` is `.`, `_0X2D_` is `-`
/// (`modules/setting/config_env.go` `decodeEnvSectionKey`).
fn decode_part(s: &str) -> String {
    // `_0X<hex>_` is the UTF-8 bytes written in hex (`_0X2E_` is `.`, `_0XC3A9_` is `é`);
    // `_0x` as well, as config_env.go's pattern `_0[xX]([0-9a-fA-F]+)_` allows.
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("_0X").into_iter().chain(rest.find("_0x")).min() {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let decoded = after.find('_').and_then(|end| {
            let hex = &after[..end];
            if hex.is_empty() || !hex.len().is_multiple_of(2) {
                return None;
            }
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|j| u8::from_str_radix(&hex[j..j + 2], 16).ok())
                .collect();
            Some((String::from_utf8(bytes?).ok()?, end))
        });
        match decoded {
            Some((text, end)) => {
                out.push_str(&text);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[i..i + 3]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Applies `GITEA__SECTION__KEY=value` and `GITEA__SECTION__KEY__FILE=/path` overrides.
/// Returns the `__FILE` targets: `(section, KEY, path)`; their content is read into the
/// ini (it stays in memory and is never printed).
pub(crate) fn apply_env(
    ini: &mut Ini,
    env: &BTreeMap<String, String>,
    prefixes: &[&str],
    b: &Builder,
) -> Vec<(String, String, PathBuf)> {
    let mut files = Vec::new();
    for (name, value) in env {
        let Some(rest) = prefixes.iter().find_map(|p| name.strip_prefix(p)) else {
            continue;
        };
        // config_env.go: an exact `__FILE` suffix reads the value from a file; the
        // section ends at the FIRST `__`, the key is the rest (it may contain `__`).
        let (rest, is_file) = match rest.strip_suffix("__FILE") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let Some((sec, key)) = rest.split_once("__") else {
            continue;
        };
        if key.is_empty() {
            continue;
        }
        let sec = decode_part(sec);
        let sec = if sec.eq_ignore_ascii_case("DEFAULT") {
            String::new()
        } else {
            sec
        };
        let key = decode_part(key);
        if is_file {
            let path = PathBuf::from(value.trim());
            let content = b
                .read_text(&path)
                .map(|(_, t)| t.trim_end_matches(['\r', '\n']).to_string())
                .unwrap_or_else(|_| "\0unread".to_string());
            ini.set(&sec, &key, &content);
            files.push((sec, key.to_ascii_uppercase(), path));
        } else {
            ini.set(&sec, &key, value);
        }
    }
    files
}

/// Whether `uid`/`gid` may write a file with this metadata (owner/group/other bits;
/// supplementary groups are not looked at).
pub(crate) fn may_write(meta: &std::fs::Metadata, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode();
    uid == 0
        || (meta.uid() == uid && mode & 0o200 != 0)
        || (meta.uid() != uid && meta.gid() == gid && mode & 0o020 != 0)
        || (meta.uid() != uid && meta.gid() != gid && mode & 0o002 != 0)
}

/// ConfigProblem when the run user cannot write app.ini: Gitea writes the secrets it
/// generates (INTERNAL_TOKEN, JWT_SECRET, LFS_JWT_SECRET) back into app.ini, and 1.22
/// refuses to start when it cannot (go-gitea/gitea#31169).
pub(crate) fn check_writable(b: &mut Builder, host: &Path, owner: &Owner, name: &str) {
    let Ok(meta) = std::fs::metadata(host) else {
        return;
    };
    let (uid, gid) = match owner {
        Owner::Uid(u) => (*u, *u),
        Owner::Name(n) => match nix::unistd::User::from_name(n) {
            Ok(Some(u)) => (u.uid.as_raw(), u.gid.as_raw()),
            _ => return, // the run user does not exist here: nothing to compare
        },
    };
    if !may_write(&meta, uid, gid) {
        let who = match owner {
            Owner::Uid(u) => format!("uid {u}"),
            Owner::Name(n) => n.clone(),
        };
        b.finding(
            Code::ConfigProblem,
            Severity::Warning,
            host,
            format!(
                "{name} cannot write app.ini as {who}: secrets it generates (INTERNAL_TOKEN, \
                 JWT_SECRET) are written back there, and since 1.22 it refuses to start when \
                 it cannot (go-gitea/gitea#31169)"
            ),
            match owner {
                Owner::Uid(u) => format!(
                    "let {who} write it (chown {u}:{u} {}), or set those keys yourself",
                    host.display()
                ),
                Owner::Name(n) => format!(
                    "let {who} write it, e.g. chown root:{n} and chmod 660, or set those keys yourself"
                ),
            },
        );
    }
}

/// ConfigProblem when `[security] SECRET_KEY` is empty or the built-in constant.
pub(crate) fn check_secret_key(b: &mut Builder, ini: &Ini, at: &Path, name: &str, extra: &[&str]) {
    let from_uri = ini.non_empty("security", "SECRET_KEY_URI").is_some();
    let value = ini
        .get("security", "SECRET_KEY")
        .map(str::trim)
        .unwrap_or("");
    if from_uri {
        return;
    }
    let weak = value.is_empty() || value == BUILTIN_SECRET_KEY || extra.contains(&value);
    if weak {
        b.finding(
            Code::ConfigProblem,
            Severity::Warning,
            at,
            format!(
                "[security] SECRET_KEY is empty or a published default: {name} then encrypts \
                 2FA secrets, Actions secrets and auth-source passwords with a constant \
                 anyone knows, and a restore with another app.ini breaks them"
            ),
            format!(
                "keep this app.ini with the database as a pair; a new key needs a re-enrolment \
                 of 2FA ({} generate secret SECRET_KEY only for a fresh install)",
                name.to_ascii_lowercase()
            ),
        );
    }
}

fn is_symmetric(alg: &str) -> bool {
    alg.trim().to_ascii_uppercase().starts_with("HS")
}

pub fn resolve(forge: Forge, config: Option<&Path>, ctx: &Context) -> Result<Resolved> {
    let name = if forge == Forge::Forgejo {
        "Forgejo"
    } else {
        "Gitea"
    };
    let layout = ctx.layout;
    let mut b = Builder::new(ctx);
    let (ini_path, how) = find_config(forge, config, ctx, &b);

    let mut from_defaults = false;
    let mut ini = match b.read_text(&ini_path) {
        Ok((_, text)) => Ini::parse(&text),
        Err(why) => {
            from_defaults = true;
            b.finding(
                Code::ConfigProblem,
                Severity::Warning,
                &ini_path,
                format!(
                    "app.ini ({how}) could not be read ({why}); the items below are {name}'s \
                     defaults for this layout and may not be where this installation keeps them"
                ),
                format!("name the app.ini with -p {}=PATH", forge.as_str()),
            );
            Ini::default()
        }
    };
    let prefixes: &[&str] = match forge {
        Forge::Forgejo => &["GITEA__", "FORGEJO__"],
        _ => &["GITEA__"],
    };
    let env_files = apply_env(&mut ini, ctx.env, prefixes, &b);

    let run_user = ini.non_empty("", "RUN_USER").unwrap_or("git").to_string();
    // The rootful image honours USER_UID; the rootless one runs as its USER (1000).
    let uid = match layout {
        Layout::Docker => image_uid(ctx, "USER_UID"),
        _ => IMAGE_UID,
    };
    let owner = run_owner(layout, &run_user, uid);

    // The configuration itself. /etc/gitea is root:git 750 and app.ini 640 per the
    // from-binary docs; in the images the git user (1000) owns it.
    let ini_host = match b.probe(&ini_path) {
        Probe::Found(h) => Some(h),
        _ => None,
    };
    b.add(
        Want::file(
            &ini_path,
            format!("{name} app.ini (SECRET_KEY, INTERNAL_TOKEN, JWT_SECRET, passwords)"),
            Need::Config,
        )
        .owner(Some(owner.clone()))
        .mode(0o640),
    );
    if let Some(h) = &ini_host {
        // What would have to be written into app.ini at start: a secret Gitea generates
        // when it is missing (since 1.22 JWT_SECRET always), or the image entrypoint's
        // environment-to-ini applying GITEA__/FORGEJO__ variables.
        let has = |sec: &str, key: &str| {
            ini.non_empty(sec, key).is_some() || ini.non_empty(sec, &format!("{key}_URI")).is_some()
        };
        let lfs = ini
            .non_empty("server", "LFS_START_SERVER")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let must_write = !has("security", "INTERNAL_TOKEN")
            || !has("oauth2", "JWT_SECRET")
            || (lfs && !has("server", "LFS_JWT_SECRET"))
            || ctx
                .env
                .keys()
                .any(|k| prefixes.iter().any(|p| k.starts_with(p)));
        if ctx.locate.read_only(&ini_path) && must_write {
            // A `:ro` mount: no file mode helps; the entrypoint's environment-to-ini and
            // Gitea's own write-back of generated secrets both fail (gitea#31169).
            b.finding(
                Code::ConfigProblem,
                Severity::Warning,
                h,
                format!(
                    "{name}'s app.ini ({}) is on a read-only mount: secrets it generates \
                     (INTERNAL_TOKEN, JWT_SECRET) cannot be written back, and since 1.22 it \
                     refuses to start when it cannot (go-gitea/gitea#31169)",
                    ini_path.display()
                ),
                "drop :ro from that volume, or set those keys in app.ini yourself",
            );
        } else if !ctx.locate.read_only(&ini_path) {
            check_writable(&mut b, h, &owner, name);
        }
    }

    // Paths (modules/setting/path.go): WORK_PATH in app.ini wins over env and flags.
    let image_work = match layout {
        Layout::Native => None,
        Layout::Docker => Some("/app/gitea"), // binary at /app/gitea/gitea
        Layout::DockerRootless => Some("/var/lib/gitea"), // GITEA_WORK_DIR in the image
    };
    let work: PathBuf = if let Some(w) = ini.non_empty("", "WORK_PATH") {
        PathBuf::from(w.trim())
    } else if let Some(w) = env_first(ctx.env, work_env(forge)).or(image_work) {
        PathBuf::from(w)
    } else if ini_path.ends_with("custom/conf/app.ini") {
        ini_path
            .ancestors()
            .nth(3)
            .unwrap_or(Path::new("/"))
            .to_path_buf()
    } else {
        let guess = if forge == Forge::Forgejo {
            "/var/lib/forgejo"
        } else {
            "/var/lib/gitea"
        };
        if !from_defaults {
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &ini_path,
                format!(
                    "app.ini has no WORK_PATH and no GITEA_WORK_DIR is known; assuming \
                     {guess} (the packaged unit's default); relative paths may be wrong"
                ),
                "start the forge once (it writes WORK_PATH since 1.21) or set WORK_PATH",
            );
        }
        PathBuf::from(guess)
    };
    let image_custom = match layout {
        Layout::Native => None,
        Layout::Docker => Some("/data/gitea"),
        Layout::DockerRootless => Some("/var/lib/gitea/custom"),
    };
    let custom = match env_first(ctx.env, custom_env(forge)).or(image_custom) {
        Some(c) => under(&work, c),
        None => work.join("custom"),
    };
    let data = match ini.non_empty("server", "APP_DATA_PATH") {
        Some(d) => under(&work, d),
        None => match layout {
            Layout::Native => work.join("data"),
            Layout::Docker => PathBuf::from("/data/gitea"),
            Layout::DockerRootless => PathBuf::from("/var/lib/gitea"),
        },
    };
    let key = |w: Want| w.owner(Some(owner.clone())).mode(0o600);

    // [oauth2] JWT signing key: generated silently when missing and the algorithm is
    // asymmetric (services/oauth2_provider/jwtsigningkey.go loadOrCreateAsymmetricKey);
    // only used with [oauth2] ENABLED (default true).
    if ini.bool_or("oauth2", "ENABLED", true) {
        let alg = ini
            .non_empty("oauth2", "JWT_SIGNING_ALGORITHM")
            .unwrap_or("RS256");
        if !is_symmetric(alg) {
            let file = ini
                .non_empty("oauth2", "JWT_SIGNING_PRIVATE_KEY_FILE")
                .unwrap_or("jwt/private.pem");
            let path = under(&data, file);
            let added = b.add(key(Want::file(
                &path,
                "OAuth2 JWT signing key (tokens issued to Woodpecker, Drone, … die with it)",
                Need::Regenerates,
            )
            .signing()));
            // Before 1.15 the key was in the custom dir (gitea#16218, PR #16227).
            let legacy = custom.join("jwt/private.pem");
            if !added && file == "jwt/private.pem" && b.exists(&legacy) {
                b.finding(
                    Code::ConfigProblem,
                    Severity::Warning,
                    &legacy,
                    format!(
                        "an OAuth2 key from before Gitea 1.15 is in the custom dir; {name} now \
                         reads {} and makes a new key there (gitea#16218)",
                        path.display()
                    ),
                    format!("move it to {}", path.display()),
                );
            }
        }
    }

    // Built-in SSH server host keys (modules/setting/ssh.go; modules/ssh/ssh.go makes the
    // first listed one when none exists). The rootless image always runs it.
    let ssh_disabled = ini.bool_or("server", "DISABLE_SSH", false);
    let builtin_ssh =
        layout == Layout::DockerRootless || ini.bool_or("server", "START_SSH_SERVER", false);
    if builtin_ssh && !ssh_disabled {
        let list = ini
            .non_empty("server", "SSH_SERVER_HOST_KEYS")
            .unwrap_or("ssh/gitea.rsa, ssh/gogs.rsa");
        let keys: Vec<PathBuf> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| under(&data, s))
            .collect();
        let present: Vec<&PathBuf> = keys.iter().filter(|k| b.exists(k)).collect();
        if present.is_empty() {
            if let Some(first) = keys.first() {
                b.add(key(Want::file(
                    first,
                    "built-in SSH server host key",
                    Need::Regenerates,
                )));
            }
        } else {
            for k in present {
                b.add(key(Want::file(
                    k,
                    "built-in SSH server host key",
                    Need::Regenerates,
                )));
                let mut pubk = k.clone().into_os_string();
                pubk.push(".pub");
                b.add(
                    Want::file(pubk, "built-in SSH server host public key", Need::IfPresent)
                        .owner(Some(owner.clone()))
                        .mode(0o644),
                );
            }
        }
    }

    // The rootful image runs OpenSSH with host keys in /data/ssh, root 0700/0600,
    // made by ssh-keygen at start when missing (docker/root/etc/s6/openssh/setup).
    if layout == Layout::Docker && !ssh_disabled {
        b.add(
            Want::new(
                "/data/ssh",
                "OpenSSH host keys of the image's sshd",
                ItemKind::Dir,
                Need::Regenerates,
            )
            .owner(Some(root_owner(layout)))
            .mode(0o700),
        );
    }

    // `<KEY>_URI = file:/path` secrets (modules/setting/security.go loadSecret): the file
    // must exist and be non-empty or Gitea exits.
    let uris: Vec<(String, String, PathBuf)> = ini
        .entries()
        .filter(|(_, k, _)| k.ends_with("_URI"))
        .filter_map(|(s, k, v)| {
            let rest = v.trim().strip_prefix("file:")?;
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            Some((s.to_string(), k.to_string(), under(&work, rest)))
        })
        .collect();
    for (s, k, p) in uris {
        b.add(Want::file(p, format!("[{s}] {k} secret file"), Need::Required).mode(0o640));
    }
    for (s, k, p) in env_files {
        b.add(
            Want::file(
                p,
                format!("file for [{s}] {k} (from the {name} environment, __FILE)"),
                Need::Required,
            )
            .mode(0o640),
        );
    }

    // TLS: [server] CERT_FILE / KEY_FILE relative to the custom path (cheat sheet).
    if ini
        .get("server", "PROTOCOL")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    {
        if ini.bool_or("server", "ENABLE_ACME", false)
            || ini.bool_or("server", "ENABLE_LETSENCRYPT", false)
        {
            // ACME account and certificates: re-issued when lost. Base of a relative
            // ACME_DIRECTORY taken as the work path (UNCONFIRMED).
            let dir = ini.non_empty("server", "ACME_DIRECTORY").unwrap_or("https");
            b.add(
                Want::new(
                    under(&work, dir),
                    "ACME account and certificates",
                    ItemKind::Dir,
                    Need::Optional,
                )
                .owner(Some(owner.clone())),
            );
        } else {
            let cert = ini
                .non_empty("server", "CERT_FILE")
                .unwrap_or("https/cert.pem");
            let tkey = ini
                .non_empty("server", "KEY_FILE")
                .unwrap_or("https/key.pem");
            b.add(Want::file(
                under(&custom, cert),
                "HTTPS certificate",
                Need::Required,
            ));
            b.add(key(Want::file(
                under(&custom, tkey),
                "HTTPS private key",
                Need::Required,
            )));
        }
    }

    // [mailer] client certificate (defaults custom/mailer/*.pem, relative to work).
    if ini.bool_or("mailer", "USE_CLIENT_CERT", false) {
        let cert = ini
            .non_empty("mailer", "CLIENT_CERT_FILE")
            .unwrap_or("custom/mailer/cert.pem");
        let mkey = ini
            .non_empty("mailer", "CLIENT_KEY_FILE")
            .unwrap_or("custom/mailer/key.pem");
        b.add(Want::file(
            under(&work, cert),
            "SMTP client certificate",
            Need::Required,
        ));
        b.add(key(Want::file(
            under(&work, mkey),
            "SMTP client private key",
            Need::Required,
        )));
    }

    // Forgejo's unified signing keys (modules/setting/security.go loadKeyCfg, PR #11194).
    if forge == Forge::Forgejo {
        if ini.bool_or("actions", "ENABLED", true) {
            let alg = ini
                .non_empty("actions", "ID_TOKEN_SIGNING_ALGORITHM")
                .unwrap_or("RS256");
            if !is_symmetric(alg) {
                let file = ini
                    .non_empty("actions", "ID_TOKEN_SIGNING_PRIVATE_KEY_FILE")
                    .unwrap_or("actions_id_token/private.pem");
                b.add(key(Want::file(
                    under(&data, file),
                    "Actions OIDC ID-token signing key",
                    Need::Regenerates,
                )
                .signing()));
            }
        }
        let alg = ini
            .non_empty("server", "LFS_JWT_SIGNING_ALGORITHM")
            .unwrap_or("HS256");
        if !is_symmetric(alg) {
            let file = ini
                .non_empty("server", "LFS_JWT_SIGNING_PRIVATE_KEY_FILE")
                .unwrap_or("lfs/private.pem");
            b.add(key(Want::file(
                under(&data, file),
                "LFS JWT signing key",
                Need::Regenerates,
            )
            .signing()));
        }
    }

    let at = ini_host.clone().unwrap_or_else(|| ini_path.clone());
    if !from_defaults {
        check_secret_key(&mut b, &ini, &at, name, &[]);
        if !ini.bool_or("security", "INSTALL_LOCK", false) {
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &at,
                "[security] INSTALL_LOCK is not true: the web installer is open, and after a \
                 restore anyone who reaches it can reconfigure the forge",
                "set INSTALL_LOCK = true once installed",
            );
        }
    }

    // The database: [database] PATH defaults to APP_DATA_PATH/gitea.db and a relative one
    // is joined to the WORK path (modules/setting/database.go), so the cheat sheet's
    // "data/gitea.db" is <work>/data/gitea.db. Kept only with --with-db: for Gitea the DB
    // is data, not a secret, but it is encrypted with SECRET_KEY.
    let db_type = ini
        .non_empty("database", "DB_TYPE")
        .map(|t| t.trim().to_ascii_lowercase());
    if db_type.as_deref() == Some("sqlite3") {
        let db = match ini.non_empty("database", "PATH") {
            Some(p) => under(&work, p),
            None => data.join("gitea.db"),
        };
        if ctx.with_db {
            b.add(
                Want::new(
                    &db,
                    format!("{name} SQLite database"),
                    ItemKind::Sqlite,
                    Need::Required,
                )
                .owner(Some(owner.clone()))
                .mode(0o640),
            );
        } else {
            // Not archived without --with-db, but a database on no persistent storage
            // is lost with the container all the same: that is said whatever the flag.
            if let Probe::NotPersistent(volume_line) = b.probe(&db) {
                b.finding(
                    Code::NotPersistent,
                    Severity::Error,
                    &db,
                    format!(
                        "the {name} SQLite database ({}) is in the container's own layer or an \
                         anonymous volume: it is lost on `docker compose down` (users, \
                         repositories' metadata, 2FA, everything)",
                        db.display()
                    ),
                    format!(
                        "add `{volume_line}` to the service's volumes (copy the file out of the \
                         running container first: docker compose cp)"
                    ),
                );
            }
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &db,
                "the SQLite database is not included: its 2FA, Actions secrets and auth-source \
                 passwords are encrypted with SECRET_KEY, so the database and this app.ini must \
                 be restored as a pair",
                "add --with-db, or back up the database at the same time by other means",
            );
        }
    } else if db_type.is_some() {
        b.finding(
            Code::ConfigProblem,
            Severity::Info,
            &at,
            "the database is external and not included; it and SECRET_KEY must be restored \
             as a pair",
            "back it up with the database's own tool at the same time",
        );
    }

    let config = Some(ini_host.unwrap_or(ini_path));
    Ok(Resolved {
        service: None,
        compose: None,
        forge,
        layout,
        config,
        items: b.items,
        findings: b.findings,
    })
}

#[cfg(test)]
mod tests {
    use super::super::items::testing::{item_paths, run, Prefixed};
    use super::super::{Forge, ItemKind, Layout, Resolved};
    use crate::findings::{Code, Severity};
    use std::path::PathBuf;

    fn has(r: &Resolved, code: Code, sev: Severity, needle: &str) -> bool {
        r.findings.iter().any(|f| {
            f.code == code
                && f.severity == sev
                && (f.message.contains(needle) || f.path.contains(needle))
        })
    }

    const BINARY_INI: &str = "RUN_USER = git\nWORK_PATH = /var/lib/gitea\n\
[server]\nSTART_SSH_SERVER = true\n\
[security]\nINSTALL_LOCK = true\nSECRET_KEY = s3cr3t-value-xyz\nINTERNAL_TOKEN_URI = file:/etc/gitea/internal_token\n\
[database]\nDB_TYPE = sqlite3\n";

    #[test]
    fn binary_install_relative_to_app_data_path() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write("/etc/gitea/app.ini", BINARY_INI);
        fake.write("/etc/gitea/internal_token", "t");
        fake.write("/var/lib/gitea/data/jwt/private.pem", "k");
        fake.write("/var/lib/gitea/data/ssh/gitea.rsa", "k");
        fake.write("/var/lib/gitea/data/ssh/gitea.rsa.pub", "k");
        fake.write("/var/lib/gitea/data/gitea.db", "db");
        let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, true);
        let paths = item_paths(&r, &fake);
        for want in [
            "/etc/gitea/app.ini",
            "/var/lib/gitea/data/jwt/private.pem",
            "/var/lib/gitea/data/ssh/gitea.rsa",
            "/var/lib/gitea/data/ssh/gitea.rsa.pub",
            "/etc/gitea/internal_token",
            "/var/lib/gitea/data/gitea.db",
        ] {
            assert!(paths.contains(&PathBuf::from(want)), "{want} in {paths:?}");
        }
        let jwt = r
            .items
            .iter()
            .find(|i| i.path.ends_with("jwt/private.pem"))
            .unwrap();
        assert!(jwt.regenerates && jwt.signing_key && jwt.max_mode == Some(0o600));
        let db = r
            .items
            .iter()
            .find(|i| i.path.ends_with("gitea.db"))
            .unwrap();
        assert_eq!(db.kind, ItemKind::Sqlite);
        assert!(r.config.as_ref().unwrap().ends_with("etc/gitea/app.ini"));
        // gogs.rsa is absent but gitea.rsa exists: no warning about it.
        assert!(
            !r.findings.iter().any(|f| f.path.contains("gogs.rsa")),
            "{:?}",
            r.findings
        );
        assert!(!r.findings.iter().any(|f| f.code == Code::ConfigProblem
            && f.severity == Severity::Warning
            && f.message.contains("SECRET_KEY")));
        // No value ever reaches a finding.
        assert!(!format!("{:?}", r).contains("s3cr3t"));
    }

    #[test]
    fn missing_jwt_key_warns_and_absolute_path_is_used_as_is() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/etc/gitea/app.ini",
            "WORK_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n\
             [oauth2]\nJWT_SIGNING_PRIVATE_KEY_FILE = /srv/keys/jwt.pem\n",
        );
        let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, false);
        assert!(r.items.iter().all(|i| !i.path.ends_with("jwt.pem")));
        let f = r
            .findings
            .iter()
            .find(|f| f.code == Code::SecretMissing)
            .unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.path.ends_with("srv/keys/jwt.pem"));
        assert!(f.message.contains("make a new one at start"));

        fake.write("/srv/keys/jwt.pem", "k");
        let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, false);
        assert!(item_paths(&r, &fake).contains(&PathBuf::from("/srv/keys/jwt.pem")));
    }

    #[test]
    fn empty_secret_key_and_install_lock() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/etc/gitea/app.ini",
            "WORK_PATH = /var/lib/gitea\n[security]\nSECRET_KEY =\n",
        );
        let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, false);
        assert!(has(
            &r,
            Code::ConfigProblem,
            Severity::Warning,
            "SECRET_KEY"
        ));
        assert!(has(&r, Code::ConfigProblem, Severity::Info, "INSTALL_LOCK"));
        // The OAuth2 key is expected (default RS256) and missing.
        assert!(has(
            &r,
            Code::SecretMissing,
            Severity::Warning,
            "jwt/private.pem"
        ));
    }

    #[test]
    fn env_overrides_and_file_variants() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/etc/gitea/app.ini",
            "WORK_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\n",
        );
        fake.write("/run/secrets/secret_key", "from-a-file\n");
        fake.write("/var/lib/gitea/data/jwt/private.pem", "k");
        let r = run(
            Forge::Gitea,
            &fake,
            Layout::Native,
            &[
                (
                    "GITEA__security__SECRET_KEY__FILE",
                    "/run/secrets/secret_key",
                ),
                ("GITEA__oauth2__JWT_SIGNING_ALGORITHM", "HS256"),
                ("GITEA__database__DB_TYPE", "sqlite3"),
                ("GITEA__database__PATH", "/srv/db/gitea.db"),
            ],
            None,
            false,
        );
        let paths = item_paths(&r, &fake);
        assert!(paths.contains(&PathBuf::from("/run/secrets/secret_key")));
        // HS256: no key file expected.
        assert!(!paths.iter().any(|p| p.ends_with("jwt/private.pem")));
        assert!(!has(
            &r,
            Code::ConfigProblem,
            Severity::Warning,
            "SECRET_KEY"
        ));
        assert!(has(
            &r,
            Code::ConfigProblem,
            Severity::Info,
            "srv/db/gitea.db"
        ));
        assert!(!format!("{:?}", r).contains("from-a-file"));
    }

    #[test]
    fn rootful_docker_data() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/data/gitea/conf/app.ini",
            "APP_NAME = x\nRUN_USER = git\n[server]\nAPP_DATA_PATH = /data/gitea\n\
             [security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n[database]\nDB_TYPE = sqlite3\nPATH = /data/gitea/gitea.db\n",
        );
        fake.write("/data/gitea/jwt/private.pem", "k");
        fake.write("/data/ssh/ssh_host_ed25519_key", "k");
        let r = run(Forge::Gitea, &fake, Layout::Docker, &[], None, false);
        let paths = item_paths(&r, &fake);
        assert!(paths.contains(&PathBuf::from("/data/gitea/conf/app.ini")));
        assert!(paths.contains(&PathBuf::from("/data/gitea/jwt/private.pem")));
        assert!(paths.contains(&PathBuf::from("/data/ssh")));
        let ssh = r
            .items
            .iter()
            .find(|i| i.path.ends_with("data/ssh"))
            .unwrap();
        assert_eq!(ssh.kind, ItemKind::Dir);
        assert_eq!(ssh.owner, Some(super::Owner::Uid(0)));
        let jwt = r
            .items
            .iter()
            .find(|i| i.path.ends_with("private.pem"))
            .unwrap();
        assert_eq!(jwt.owner, Some(super::Owner::Uid(1000)));
        assert_eq!(
            jwt.container_path.as_deref(),
            Some("/data/gitea/jwt/private.pem")
        );
        assert!(has(
            &r,
            Code::ConfigProblem,
            Severity::Info,
            "data/gitea/gitea.db"
        ));
    }

    #[test]
    fn rootless_not_persistent_jwt_is_an_error() {
        // The #4850 setup: only /var/lib/gitea/git is mounted.
        let dir = tempfile::TempDir::new().unwrap();
        let mut fake = Prefixed::new(dir.path());
        fake.write(
            "/etc/gitea/app.ini",
            "RUN_USER = git\n[server]\nAPP_DATA_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n",
        );
        fake.write("/var/lib/gitea/ssh/gitea.rsa", "k");
        fake.not_persistent.push((
            PathBuf::from("/var/lib/gitea/jwt"),
            "./gitea/data:/var/lib/gitea".into(),
        ));
        let r = run(
            Forge::Gitea,
            &fake,
            Layout::DockerRootless,
            &[],
            None,
            false,
        );
        let f = r
            .findings
            .iter()
            .find(|f| f.code == Code::NotPersistent)
            .unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("docker compose down"));
        assert!(f.fix.contains("./gitea/data:/var/lib/gitea"));
        let paths = item_paths(&r, &fake);
        assert!(paths.contains(&PathBuf::from("/etc/gitea/app.ini")));
        // rootless always runs the built-in SSH server
        assert!(paths.contains(&PathBuf::from("/var/lib/gitea/ssh/gitea.rsa")));
        assert!(!paths.iter().any(|p| p.ends_with("jwt/private.pem")));
    }

    #[test]
    fn env_names_decode_any_escaped_character() {
        use super::decode_part;
        assert_eq!(decode_part("repository_0X2E_signing"), "repository.signing");
        assert_eq!(decode_part("A_0X2D_B_0X5F_C"), "A-B_C");
        assert_eq!(decode_part("odd_0XZZ_x"), "odd_0XZZ_x");
        assert_eq!(decode_part("a_0x2e_b"), "a.b");
        assert_eq!(decode_part("caf_0XC3A9_"), "café");
        assert_eq!(decode_part("odd_0X2_x"), "odd_0X2_x");
    }

    #[test]
    fn the_rootful_images_user_uid_is_the_expected_owner() {
        // Review: USER_UID=1001 in the service's environment, files owned by 1001, and
        // forgekeep told the user to chown them to 1000 (breaking the forge).
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/data/gitea/conf/app.ini",
            "[server]\nAPP_DATA_PATH = /data/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n",
        );
        fake.write("/data/gitea/jwt/private.pem", "k");
        let r = run(
            Forge::Gitea,
            &fake,
            Layout::Docker,
            &[("USER_UID", "1001")],
            None,
            false,
        );
        let jwt = r
            .items
            .iter()
            .find(|i| i.path.ends_with("jwt/private.pem"))
            .unwrap();
        assert_eq!(jwt.owner, Some(super::Owner::Uid(1001)));
    }

    #[test]
    fn a_database_on_no_persistent_storage_is_an_error_even_without_with_db() {
        // Review: without --with-db the database was never located, so a forge whose whole
        // database lived in an anonymous volume got an info line only.
        let dir = tempfile::TempDir::new().unwrap();
        let mut fake = Prefixed::new(dir.path());
        fake.write(
            "/etc/gitea/app.ini",
            "[server]\nAPP_DATA_PATH = /var/lib/gitea\n[database]\nDB_TYPE = sqlite3\nPATH = /var/lib/gitea/data/gitea.db\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n",
        );
        fake.not_persistent.push((
            PathBuf::from("/var/lib/gitea/data"),
            "./gitea/data:/var/lib/gitea/data".into(),
        ));
        let r = run(
            Forge::Gitea,
            &fake,
            Layout::DockerRootless,
            &[],
            None,
            false,
        );
        let f = r
            .findings
            .iter()
            .find(|f| f.code == Code::NotPersistent && f.path.ends_with("gitea.db"))
            .unwrap_or_else(|| panic!("{:?}", r.findings));
        assert_eq!(f.severity, Severity::Error);
        assert!(f.fix.contains("./gitea/data:/var/lib/gitea/data"));
    }

    #[test]
    fn forgejo_rootless_custom_conf_with_actions_and_lfs_keys() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/var/lib/gitea/custom/conf/app.ini",
            "[server]\nAPP_DATA_PATH = /var/lib/gitea\nLFS_JWT_SIGNING_ALGORITHM = EdDSA\n\
             [security]\nINSTALL_LOCK = true\nSECRET_KEY_URI = file:/etc/gitea/secret_key\n",
        );
        fake.write("/etc/gitea/secret_key", "x");
        fake.write("/var/lib/gitea/jwt/private.pem", "k");
        fake.write("/var/lib/gitea/actions_id_token/private.pem", "k");
        fake.write("/var/lib/gitea/lfs/private.pem", "k");
        fake.write("/var/lib/gitea/ssh/gitea.rsa", "k");
        let r = run(
            Forge::Forgejo,
            &fake,
            Layout::DockerRootless,
            &[],
            None,
            false,
        );
        let paths = item_paths(&r, &fake);
        for want in [
            "/var/lib/gitea/custom/conf/app.ini",
            "/etc/gitea/secret_key",
            "/var/lib/gitea/jwt/private.pem",
            "/var/lib/gitea/actions_id_token/private.pem",
            "/var/lib/gitea/lfs/private.pem",
        ] {
            assert!(paths.contains(&PathBuf::from(want)), "{want} in {paths:?}");
        }
        assert!(!has(
            &r,
            Code::ConfigProblem,
            Severity::Warning,
            "SECRET_KEY"
        ));
    }

    #[test]
    fn unreadable_app_ini_falls_back_to_defaults() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        let r = run(
            Forge::Gitea,
            &fake,
            Layout::DockerRootless,
            &[],
            None,
            false,
        );
        assert!(has(&r, Code::SecretMissing, Severity::Error, "app.ini"));
        assert!(has(&r, Code::ConfigProblem, Severity::Warning, "defaults"));
        // defaults still name the JWT key under /var/lib/gitea
        assert!(has(
            &r,
            Code::SecretMissing,
            Severity::Warning,
            "var/lib/gitea/jwt/private.pem"
        ));
    }

    #[test]
    fn custom_env_names_the_config() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write(
            "/srv/forgejo/custom/conf/app.ini",
            "[oauth2]\nENABLED = false\n",
        );
        let r = run(
            Forge::Forgejo,
            &fake,
            Layout::Native,
            &[
                ("GITEA_CUSTOM", "/nope"),
                ("FORGEJO_CUSTOM", "/srv/forgejo/custom"),
                ("FORGEJO_WORK_DIR", "/srv/forgejo"),
            ],
            None,
            false,
        );
        assert!(item_paths(&r, &fake).contains(&PathBuf::from("/srv/forgejo/custom/conf/app.ini")));
        assert!(!r.findings.iter().any(|f| f.path.contains("jwt")));
    }
}
