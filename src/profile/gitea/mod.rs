//! The Gitea and Forgejo profiles (`forge` tells which). Forgejo is a hard fork that kept
//! Gitea's layout but not every rule: its rootless image reads another app.ini, its
//! SQLite file is `forgejo.db`, it has more signing keys, and it resolves relative
//! `file:` secrets elsewhere from v16 (docs/FORGES.md §2).
//!
//! Resolution runs as the forge's own startup does: the deployment decides which app.ini
//! is read ([`deploy`]: the unit's `--config`, the environment, or the image's
//! entrypoint); the images' `environment-to-ini` writes `GITEA__SECTION__KEY` variables
//! into it ([`env`], never natively); then `path.go` derives the work, custom and data
//! paths, `WORK_PATH` and `APP_DATA_PATH` in the file being trusted over any default;
//! and every file the configuration points at is derived from those ([`keys`]).

mod checks;
mod deploy;
mod env;
mod keys;

pub(crate) use checks::{check_secret_key, check_writable};
pub(crate) use deploy::{app_ini_from_env, native_candidates};
pub(crate) use keys::is_symmetric;

use super::ini::Ini;
use super::items::{image_uid, run_owner, Builder, Need, Probe, Want};
use super::{Context, Forge, Layout, OAuth2Facts, Resolved};
use crate::error::Result;
use crate::findings::{Code, Severity};
use keys::Scope;
use std::path::{Path, PathBuf};

/// Gitea's fallback when `[security] SECRET_KEY` is empty (`modules/setting/security.go`).
/// Compared against, never printed.
pub(crate) const BUILTIN_SECRET_KEY: &str = "!#@FDEWREWR&*(";

/// The uid (and gid) of `git` in the official images (Dockerfile, Dockerfile.rootless).
const IMAGE_UID: u32 = 1000;

/// Reads app.ini, or when it cannot be read, what the image's entrypoint would write
/// (`template`, empty natively) with a finding that says so. Returns the ini and
/// whether it came from the file.
fn read_ini(b: &mut Builder, path: &Path, how: &str, template: &str, forge: Forge) -> (Ini, bool) {
    match b.read_text(path) {
        Ok((_, text)) => (Ini::parse(&text), true),
        Err(why) => {
            let name = forge_name(forge);
            b.finding(
                Code::ConfigProblem,
                Severity::Warning,
                path,
                format!(
                    "app.ini ({how}) could not be read ({why}); the items below are {name}'s \
                     defaults for this layout and may not be where this installation keeps them"
                ),
                format!("name the app.ini with -p {}=PATH", forge.as_str()),
            );
            (Ini::parse(template), false)
        }
    }
}

fn forge_name(forge: Forge) -> &'static str {
    if forge == Forge::Forgejo {
        "Forgejo"
    } else {
        "Gitea"
    }
}

/// The configuration itself, and whether the forge can write back what it generates:
/// Gitea writes the secrets it makes (INTERNAL_TOKEN, JWT_SECRET, LFS_JWT_SECRET) into
/// app.ini, and since 1.22 refuses to start when it cannot (gitea#31169); the images'
/// environment-to-ini writes there at every start. /etc/gitea is root:git 750 and
/// app.ini 640 per the from-binary docs; in the images the git user owns it.
fn app_ini_item(
    b: &mut Builder,
    ini: &Ini,
    ini_path: &Path,
    s: &Scope,
    env_to_ini: bool,
) -> Option<PathBuf> {
    let name = s.name;
    let ini_host = match b.probe(ini_path) {
        Probe::Found(h) => Some(h),
        _ => None,
    };
    b.add(
        Want::file(
            ini_path,
            format!("{name} app.ini (SECRET_KEY, INTERNAL_TOKEN, JWT_SECRET, passwords)"),
            Need::Config,
        )
        .owner(Some(s.owner.clone()))
        .mode(0o640),
    );
    let h = ini_host.as_ref()?;
    let has = |sec: &str, key: &str| {
        ini.non_empty(sec, key).is_some() || ini.non_empty(sec, &format!("{key}_URI")).is_some()
    };
    let lfs = ini.bool_or("server", "LFS_START_SERVER", false);
    let prefixes = env_prefixes(s.forge);
    let must_write = !has("security", "INTERNAL_TOKEN")
        || !has("oauth2", "JWT_SECRET")
        || (lfs && !has("server", "LFS_JWT_SECRET"))
        || (env_to_ini
            && s.ctx
                .env
                .keys()
                .any(|k| prefixes.iter().any(|p| k.starts_with(p))));
    if s.ctx.locate.read_only(ini_path) {
        if must_write {
            // A `:ro` mount: no file mode helps; the entrypoint's environment-to-ini and
            // the forge's own write-back of generated secrets both fail (gitea#31169).
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
        }
    } else {
        check_writable(b, h, &s.owner, name);
    }
    ini_host
}

/// `environment-to-ini`'s prefixes (`config_env.go`: Forgejo reads `^(FORGEJO|GITEA)__`).
fn env_prefixes(forge: Forge) -> &'static [&'static str] {
    match forge {
        Forge::Forgejo => &["GITEA__", "FORGEJO__"],
        _ => &["GITEA__"],
    }
}

pub fn resolve(forge: Forge, config: Option<&Path>, ctx: &Context) -> Result<Resolved> {
    let name = forge_name(forge);
    let layout = ctx.layout;
    let mut b = Builder::new(ctx);
    let dep = deploy::deployment(forge, config, ctx, &mut b);
    let ini_path = dep.config.clone();
    let (mut ini, from_file) = read_ini(&mut b, &ini_path, &dep.how, &dep.template, forge);
    let env_files = if dep.env_to_ini {
        env::apply_env(&mut ini, ctx.env, env_prefixes(forge), &b)
    } else {
        Vec::new()
    };

    let run_user = ini.non_empty("", "RUN_USER").unwrap_or("git").to_string();
    // The rootful image honours USER_UID; the rootless one runs as its USER (1000).
    let uid = match layout {
        Layout::Docker => image_uid(ctx, "USER_UID"),
        _ => IMAGE_UID,
    };
    let s = Scope {
        forge,
        name,
        ctx,
        owner: run_owner(ctx, &run_user, uid),
    };
    let ini_host = app_ini_item(&mut b, &ini, &ini_path, &s, dep.env_to_ini);
    let mut paths = deploy::Paths::derive(forge, &ini, &dep, ctx, &ini_path, from_file, &mut b);

    let jwt_secret_file_kept = keys::uri_secrets(&mut b, &ini, &mut paths);
    // HS256/384/512 sign with [oauth2] JWT_SECRET: app.ini itself, or its _URI file.
    let secret_kept = if ini.non_empty("oauth2", "JWT_SECRET_URI").is_some() {
        jwt_secret_file_kept
    } else {
        ini_host.is_some()
    };
    let signer = keys::oauth2(&mut b, &ini, &paths, &s, secret_kept);
    keys::ssh_host_keys(&mut b, &ini, &paths, &s.owner);
    keys::image_openssh_keys(&mut b, &ini, layout);
    for (sec, k, p) in env_files {
        b.add(
            Want::file(
                p,
                format!("file for [{sec}] {k} (from the {name} environment, __FILE)"),
                Need::Required,
            )
            .mode(0o640),
        );
    }
    let at = ini_host.clone().unwrap_or_else(|| ini_path.clone());
    keys::tls(&mut b, &ini, &mut paths, &s.owner, &at);
    keys::mailer(&mut b, &ini, &mut paths, &s.owner);
    if forge == Forge::Forgejo {
        keys::forgejo_keys(&mut b, &ini, &paths, &s);
    }
    keys::repository_signing(&mut b, &ini, &mut paths, &s);

    if from_file {
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
    let database_kept = keys::database(&mut b, &ini, &mut paths, &s, &at);
    // Forgejo counts every refresh in its database by default (`oauth2.go`
    // InvalidateRefreshTokens: true; Gitea false).
    let invalidates_refresh_tokens = ini.bool_or(
        "oauth2",
        "INVALIDATE_REFRESH_TOKENS",
        forge == Forge::Forgejo,
    );

    Ok(Resolved {
        service: None,
        compose: None,
        forge,
        layout,
        config: Some(ini_host.unwrap_or(ini_path)),
        items: b.items,
        findings: b.findings,
        oauth2: Some(OAuth2Facts {
            signer,
            invalidates_refresh_tokens,
            database_kept,
        }),
    })
}

#[cfg(test)]
mod tests;
