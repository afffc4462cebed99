//! Checks of an app.ini shared by Gitea, Forgejo and Gogs: can the forge write back the
//! secrets it generates, and is `SECRET_KEY` a real one (docs/FORGES.md §1.3).

use super::super::ini::Ini;
use super::super::items::Builder;
use super::super::Owner;
use super::BUILTIN_SECRET_KEY;
use crate::findings::{Code, Severity};
use std::path::Path;

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
