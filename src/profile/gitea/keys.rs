//! Every file a Gitea or Forgejo app.ini points at that holds a secret, derived as the
//! forge derives it (docs/FORGES.md §1.2, §1.3 and §2.2). Each function adds the items
//! and findings of one feature; what is kept and what is merely expected follows the
//! forge: a key it regenerates is `Need::Regenerates`, one it cannot start without is
//! `Need::Required`, one it no longer uses is kept only when present.

use super::super::ini::Ini;
use super::super::items::{image_openssh_dir, under, Builder, Need, Probe, Want};
use super::super::{Context, Forge, ItemKind, Layout, OAuth2Signer, Owner};
use super::deploy::Paths;
use crate::findings::{Code, Severity};
use std::path::{Path, PathBuf};

/// Which forge, deployed how, running as whom: what every item derivation needs.
pub(crate) struct Scope<'a, 'c> {
    pub forge: Forge,
    /// "Gitea" or "Forgejo", for messages.
    pub name: &'static str,
    pub ctx: &'a Context<'c>,
    /// The forge's run user: the expected owner of its keys.
    pub owner: Owner,
}

/// `HS256`, `HS384`, `HS512`: signed with a secret kept in app.ini, not a key file.
pub(crate) fn is_symmetric(alg: &str) -> bool {
    alg.trim().to_ascii_uppercase().starts_with("HS")
}

/// A key file of the forge's run user, `0600`.
fn key(w: Want, owner: &Owner) -> Want {
    w.owner(Some(owner.clone())).mode(0o600)
}

/// The path `loadSecret` reads for a `file:` URI: Go's `url.Parse(uri).RequestURI()`.
/// `file:/abs` and `file:///abs` are absolute, `file:rel` (an opaque URI) is relative,
/// `file://host/abs` drops the host; the fragment is dropped, the query kept. `None` for
/// any other scheme (the forge refuses those).
pub(crate) fn file_uri_path(v: &str) -> Option<String> {
    let v = v.trim();
    let rest = v.get(..5).filter(|s| s.eq_ignore_ascii_case("file:"))?;
    let rest = &v[rest.len()..];
    let rest = rest.split('#').next().unwrap_or("");
    let path = match rest.strip_prefix("//") {
        Some(authority) => authority.find('/').map_or("/", |i| &authority[i..]),
        None if rest.is_empty() => "/",
        None => rest,
    };
    Some(path.to_string())
}

/// `[oauth2] ENABLED`, or the legacy `ENABLE` when `ENABLED` is absent (`oauth2.go`
/// `loadOAuth2From`, Gitea 1.22+ and Forgejo); before Gitea 1.22 only `ENABLE` existed.
fn oauth2_enabled(ini: &Ini, forge: Forge, ctx: &Context) -> bool {
    let only_legacy = forge == Forge::Gitea && ctx.at_least(&[1, 22]) == Some(false);
    if !only_legacy && ini.get("oauth2", "ENABLED").is_some() {
        return ini.bool_or("oauth2", "ENABLED", true);
    }
    ini.bool_or("oauth2", "ENABLE", true)
}

/// The OAuth2 provider's signing secret (docs/FORGES.md §1.2): an asymmetric key file
/// made silently when missing (`jwtsigningkey.go` `loadOrCreateAsymmetricKey`), or with
/// HS256/384/512 `[oauth2] JWT_SECRET` in app.ini, which this profile keeps anyway.
/// With OAuth2 off, Gitea from 1.23 and Forgejo from 16 make no key, older ones still
/// do: a key that is there is kept, a missing one is nothing to say.
pub(crate) fn oauth2(
    b: &mut Builder,
    ini: &Ini,
    paths: &Paths,
    s: &Scope,
    secret_kept: bool,
) -> OAuth2Signer {
    let (owner, name) = (&s.owner, s.name);
    let enabled = oauth2_enabled(ini, s.forge, s.ctx);
    let alg = ini
        .non_empty("oauth2", "JWT_SIGNING_ALGORITHM")
        .unwrap_or("RS256");
    if is_symmetric(alg) {
        return if enabled {
            OAuth2Signer::Secret { kept: secret_kept }
        } else {
            OAuth2Signer::Off
        };
    }
    let file = ini
        .non_empty("oauth2", "JWT_SIGNING_PRIVATE_KEY_FILE")
        .unwrap_or("jwt/private.pem");
    let path = under(&paths.data, file);
    let what = "OAuth2 JWT signing key (tokens issued to Woodpecker, Drone, … die with it)";
    if !enabled {
        b.add(key(Want::file(&path, what, Need::IfPresent), owner).signing());
        return OAuth2Signer::Off;
    }
    let kept = b.add(key(Want::file(&path, what, Need::Regenerates), owner).signing());
    // Before 1.15 the key was in the custom dir (gitea#16218, PR #16227).
    let legacy = paths.custom.join("jwt/private.pem");
    if !kept && file == "jwt/private.pem" && b.exists(&legacy) {
        b.finding(
            Code::ConfigProblem,
            Severity::Warning,
            &legacy,
            format!(
                "an OAuth2 key from before Gitea 1.15 is in the custom dir; {name} now reads \
                 {} and makes a new key there (gitea#16218)",
                path.display()
            ),
            format!("move it to {}", path.display()),
        );
    }
    OAuth2Signer::KeyFile { kept }
}

/// The built-in SSH server's host keys (`ssh.go`: `SSH_SERVER_HOST_KEYS` relative to
/// `APP_DATA_PATH`; `modules/ssh` makes the first one when none exists). Only when the
/// server runs: `START_SSH_SERVER = true` (set by the rootless image's template, false
/// by default) and SSH not disabled.
pub(crate) fn ssh_host_keys(b: &mut Builder, ini: &Ini, paths: &Paths, owner: &Owner) {
    if ini.bool_or("server", "DISABLE_SSH", false)
        || !ini.bool_or("server", "START_SSH_SERVER", false)
    {
        return;
    }
    let list = ini
        .non_empty("server", "SSH_SERVER_HOST_KEYS")
        .unwrap_or("ssh/gitea.rsa, ssh/gogs.rsa");
    let keys: Vec<PathBuf> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| under(&paths.data, s))
        .collect();
    let what = "built-in SSH server host key";
    let present: Vec<&PathBuf> = keys.iter().filter(|k| b.exists(k)).collect();
    if present.is_empty() {
        if let Some(first) = keys.first() {
            b.add(key(Want::file(first, what, Need::Regenerates), owner));
        }
        return;
    }
    for k in present {
        b.add(key(Want::file(k, what, Need::Regenerates), owner));
        let mut pubk = k.clone().into_os_string();
        pubk.push(".pub");
        b.add(
            Want::file(pubk, "built-in SSH server host public key", Need::IfPresent)
                .owner(Some(owner.clone()))
                .mode(0o644),
        );
    }
}

/// The rootful image runs OpenSSH with host keys in /data/ssh, root 0700/0600, made by
/// ssh-keygen at every start when missing (`docker/root/etc/s6/openssh/setup`).
pub(crate) fn image_openssh_keys(b: &mut Builder, ini: &Ini, layout: Layout) {
    if layout == Layout::Docker && !ini.bool_or("server", "DISABLE_SSH", false) {
        b.add(image_openssh_dir(layout));
    }
}

/// `<KEY>_URI = file:…` secrets (`security.go` `loadSecret`: the file must exist and be
/// non-empty, or the forge stops at start). A relative one is read from the working
/// directory, or in Forgejo from v16 from `APP_DATA_PATH`. Returns whether the file
/// `[oauth2] JWT_SECRET_URI` names is kept.
pub(crate) fn uri_secrets(b: &mut Builder, ini: &Ini, paths: &mut Paths) -> bool {
    let uris: Vec<(String, String, String)> = ini
        .entries()
        .filter(|(_, k, _)| k.ends_with("_URI"))
        .filter_map(|(s, k, v)| Some((s.to_string(), k.to_string(), file_uri_path(v)?)))
        .collect();
    let mut jwt_kept = false;
    for (s, k, p) in uris {
        let candidates = paths.secret_file(&p, b);
        let w = Want::file(
            &candidates[0],
            format!("[{s}] {k} secret file"),
            Need::Required,
        )
        .mode(0o640);
        let kept = b.add_first(&candidates, w);
        if s == "oauth2" && k == "JWT_SECRET_URI" {
            jwt_kept = kept;
        }
    }
    jwt_kept
}

/// `[server] PROTOCOL = https`: `CERT_FILE`/`KEY_FILE`, relative to the custom path
/// (`server.go`); no default, and the forge cannot serve without them. With ACME, the
/// account and certificates in `ACME_DIRECTORY` (default `https`, relative to the working
/// directory: certmagic's `FileStorage`), re-issued when lost.
pub(crate) fn tls(b: &mut Builder, ini: &Ini, paths: &mut Paths, owner: &Owner, at: &Path) {
    if !ini
        .get("server", "PROTOCOL")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    {
        return;
    }
    if ini.bool_or("server", "ENABLE_ACME", false)
        || ini.bool_or("server", "ENABLE_LETSENCRYPT", false)
    {
        let dir = ini
            .non_empty("server", "ACME_DIRECTORY")
            .or(ini.non_empty("server", "LETSENCRYPT_DIRECTORY"))
            .unwrap_or("https");
        let dir = paths.at_cwd(dir, b);
        b.add(
            Want::new(
                dir,
                "ACME account and certificates",
                ItemKind::Dir,
                Need::Optional,
            )
            .owner(Some(owner.clone())),
        );
        return;
    }
    let mut any = false;
    for (k, what, private) in [
        ("CERT_FILE", "HTTPS certificate", false),
        ("KEY_FILE", "HTTPS private key", true),
    ] {
        let Some(f) = ini.non_empty("server", k) else {
            continue;
        };
        any = true;
        let w = Want::file(under(&paths.custom, f), what, Need::Required);
        b.add(if private { key(w, owner) } else { w });
    }
    if !any {
        b.finding(
            Code::ConfigProblem,
            Severity::Warning,
            at,
            "[server] PROTOCOL = https names no CERT_FILE or KEY_FILE: the forge cannot serve \
             HTTPS without them",
            "set CERT_FILE and KEY_FILE, or ENABLE_ACME",
        );
    }
}

/// `[mailer] USE_CLIENT_CERT` (legacy `USE_CERTIFICATE`): `CLIENT_CERT_FILE` and
/// `CLIENT_KEY_FILE`, no default, opened as given (`services/mailer` `tls.LoadX509KeyPair`),
/// so relative to the working directory.
pub(crate) fn mailer(b: &mut Builder, ini: &Ini, paths: &mut Paths, owner: &Owner) {
    let use_cert = if ini.get("mailer", "USE_CLIENT_CERT").is_some() {
        ini.bool_or("mailer", "USE_CLIENT_CERT", false)
    } else {
        ini.bool_or("mailer", "USE_CERTIFICATE", false)
    };
    if !use_cert {
        return;
    }
    for (k, what, private) in [
        ("CLIENT_CERT_FILE", "SMTP client certificate", false),
        ("CLIENT_KEY_FILE", "SMTP client private key", true),
    ] {
        if let Some(f) = ini.non_empty("mailer", k) {
            let w = Want::file(paths.at_cwd(f, b), what, Need::Required);
            b.add(if private { key(w, owner) } else { w });
        }
    }
}

/// A signing key configured as Forgejo's `security.go` `loadKeyCfg` reads it:
/// `[section] <PFX>SIGNING_ALGORITHM` and, when that is asymmetric,
/// `<PFX>SIGNING_PRIVATE_KEY_FILE` relative to `APP_DATA_PATH`, made when missing.
struct KeyCfg {
    section: &'static str,
    prefix: &'static str,
    default_alg: &'static str,
    default_file: &'static str,
    what: &'static str,
}

impl KeyCfg {
    fn add(&self, b: &mut Builder, ini: &Ini, paths: &Paths, owner: &Owner) {
        let get = |k: &str| ini.non_empty(self.section, &format!("{}{k}", self.prefix));
        if is_symmetric(get("SIGNING_ALGORITHM").unwrap_or(self.default_alg)) {
            return; // a secret in app.ini, kept with it
        }
        let file = get("SIGNING_PRIVATE_KEY_FILE").unwrap_or(self.default_file);
        let w = Want::file(under(&paths.data, file), self.what, Need::Regenerates);
        b.add(key(w, owner).signing());
    }
}

/// Forgejo's other signing keys (docs/FORGES.md §2.2): the Actions OIDC ID-token key
/// from v15 (`[actions] ID_TOKEN_SIGNING_*`, asymmetric only, forgejo#10481), and from
/// v16 an asymmetric LFS key (`[server] LFS_JWT_SIGNING_*`, forgejo#11194), loaded only
/// when the LFS server runs. A tag that states no version gets the current release's
/// keys.
pub(crate) fn forgejo_keys(b: &mut Builder, ini: &Ini, paths: &Paths, s: &Scope) {
    if s.ctx.at_least(&[15]) != Some(false) && ini.bool_or("actions", "ENABLED", true) {
        KeyCfg {
            section: "actions",
            prefix: "ID_TOKEN_",
            default_alg: "RS256",
            default_file: "actions_id_token/private.pem",
            what: "Actions OIDC ID-token signing key",
        }
        .add(b, ini, paths, &s.owner);
    }
    if s.ctx.at_least(&[16]) != Some(false) && ini.bool_or("server", "LFS_START_SERVER", false) {
        KeyCfg {
            section: "server",
            prefix: "LFS_JWT_",
            default_alg: "HS256",
            default_file: "lfs/private.pem",
            what: "LFS JWT signing key",
        }
        .add(b, ini, paths, &s.owner);
    }
}

/// The key the forge signs commits with (docs/FORGES.md §1.2, `[repository.signing]`).
///
/// * `SIGNING_KEY = none`: nothing.
/// * SSH format (Forgejo `FORMAT = ssh` from v11, Gitea `SIGNING_FORMAT = ssh` from
///   1.25): `SIGNING_KEY` is a public key file; git's `ssh-keygen -Y sign` takes the
///   private half beside it, the same name without `.pub`. Forgejo reads every value but
///   `none` and empty as that file and stops at start when it is missing; Gitea treats
///   `default` as "ask git's global config".
/// * OpenPGP: the keyring in `[git] HOME_PATH` (default `APP_DATA_PATH/home`), `.gnupg`,
///   with `.gitconfig` beside it (`user.signingkey`, `commit.gpgsign` for `default`).
pub(crate) fn repository_signing(b: &mut Builder, ini: &Ini, paths: &mut Paths, s: &Scope) {
    let (forge, owner) = (s.forge, &s.owner);
    let sec = "repository.signing";
    let signing_key = ini
        .get(sec, "SIGNING_KEY")
        .map(str::trim)
        .unwrap_or("default");
    if signing_key == "none" {
        return;
    }
    let (format_key, since): (&str, &[u32]) = match forge {
        Forge::Forgejo => ("FORMAT", &[11]),
        _ => ("SIGNING_FORMAT", &[1, 25]),
    };
    let ssh = s.ctx.at_least(since) != Some(false)
        && ini
            .get(sec, format_key)
            .is_some_and(|f| f.trim().eq_ignore_ascii_case("ssh"));
    let default = signing_key.is_empty() || (signing_key == "default" && forge == Forge::Gitea);
    let home = under(
        &paths.data,
        ini.non_empty("git", "HOME_PATH").unwrap_or("home"),
    );
    if ssh && !signing_key.is_empty() && !default {
        let public = paths.at_cwd(signing_key, b);
        // Forgejo reads it at start and stops without it (`repository.go`); Gitea when
        // it verifies a commit.
        b.add(
            Want::file(
                &public,
                format!("commit signing SSH public key ([{sec}] SIGNING_KEY)"),
                Need::Required,
            )
            .owner(Some(owner.clone()))
            .mode(0o644),
        );
        let text = public.to_string_lossy();
        match ["-cert.pub", ".pub"]
            .iter()
            .find_map(|s| text.strip_suffix(s))
        {
            Some(private) => {
                b.add(key(
                    Want::file(private, "commit signing SSH private key", Need::Required),
                    owner,
                ));
            }
            None => b.finding(
                Code::ConfigProblem,
                Severity::Info,
                &public,
                format!(
                    "[{sec}] SIGNING_KEY does not end in .pub, so the private key git signs \
                     with cannot be located beside it"
                ),
                "name the public key file (KEY.pub, the private key being KEY)",
            ),
        }
        return;
    }
    b.add(
        Want::file(
            home.join(".gitconfig"),
            "git configuration of the forge (user.signingkey)",
            Need::IfPresent,
        )
        .owner(Some(owner.clone())),
    );
    if ssh {
        return; // Gitea `default` with SSH: the key git's config names, wherever it is.
    }
    let need = if default || signing_key == "default" {
        Need::IfPresent
    } else {
        Need::Required
    };
    b.add(
        Want::new(
            home.join(".gnupg"),
            format!("GPG keyring with the commit signing key ([{sec}] SIGNING_KEY)"),
            ItemKind::Dir,
            need,
        )
        .owner(Some(owner.clone()))
        .mode(0o700),
    );
}

/// The SQLite database (`database.go`: `PATH`, default `APP_DATA_PATH/gitea.db`, in
/// Forgejo from 1.19 `forgejo.db`; a relative `PATH` is opened as given, from the working
/// directory). Kept only with `--with-db`: for the forge the database is data, not a
/// secret, but it is encrypted with `SECRET_KEY`. Returns whether it is kept.
pub(crate) fn database(
    b: &mut Builder,
    ini: &Ini,
    paths: &mut Paths,
    s: &Scope,
    at: &Path,
) -> bool {
    let (forge, ctx, owner, name) = (s.forge, s.ctx, &s.owner, s.name);
    let db_type = ini
        .non_empty("database", "DB_TYPE")
        .map(|t| t.trim().to_ascii_lowercase());
    if db_type.as_deref() != Some("sqlite3") {
        if db_type.is_some() {
            b.finding(
                Code::ConfigProblem,
                Severity::Info,
                at,
                "the database is external and not included; it and SECRET_KEY must be \
                 restored as a pair",
                "back it up with the database's own tool at the same time",
            );
        }
        return false;
    }
    let default_name = if forge == Forge::Forgejo && ctx.at_least(&[1, 19]) != Some(false) {
        "forgejo.db"
    } else {
        "gitea.db"
    };
    let db = match ini.non_empty("database", "PATH") {
        Some(p) => paths.at_cwd(p, b),
        None => paths.data.join(default_name),
    };
    if ctx.with_db {
        return b.add(
            Want::new(
                &db,
                format!("{name} SQLite database"),
                ItemKind::Sqlite,
                Need::Required,
            )
            .owner(Some(owner.clone()))
            .mode(0o640),
        );
    }
    // Not archived without --with-db, but a database on no persistent storage is lost
    // with the container all the same: that is said whatever the flag.
    if let Probe::NotPersistent(volume_line) = b.probe(&db) {
        b.finding(
            Code::NotPersistent,
            Severity::Error,
            &db,
            format!(
                "the {name} SQLite database ({}) is in the container's own layer or an \
                 anonymous volume: it is lost on `docker compose down` (users, repositories' \
                 metadata, 2FA, everything)",
                db.display()
            ),
            format!(
                "add `{volume_line}` to the service's volumes (copy the file out of the \
                 running container first, with its owners)"
            ),
        );
    }
    b.finding(
        Code::ConfigProblem,
        Severity::Info,
        &db,
        "the SQLite database is not included: its 2FA, Actions secrets and auth-source \
         passwords are encrypted with SECRET_KEY, so the database and this app.ini must be \
         restored as a pair",
        "add --with-db, or back up the database at the same time by other means",
    );
    false
}
