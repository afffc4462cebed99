//! The GitLab profile (Linux package "omnibus" and the official image; docs/FORGES.md §4).
//!
//! `gitlab-backup create` deliberately leaves out `/etc/gitlab` ("storing encrypted
//! information in the same location as its key defeats the purpose",
//! `doc/administration/backup_restore/backup_gitlab.md`); its companion
//! `gitlab-ctl backup-etc` (omnibus-gitlab `files/gitlab-ctl-commands/lib/gitlab_ctl/
//! backup.rb`) tars ALL of `/etc/gitlab` except its own output folder
//! (`config_backup`). This profile keeps the same: every entry of the folder, because
//! files `gitlab.rb` loads with `from_file` often hold the SMTP, LDAP or object-storage
//! passwords. The known secrets carry their expectations: `gitlab-secrets.json`
//! (db_key_base, otp_key_base, … written by `gitlab-ctl reconfigure`, root 0600, missing
//! values regenerated), `gitlab.rb`, the image's SSH host keys (`/etc/gitlab/ssh_host_*`,
//! generated at first start by the docker wrapper) and the TLS folders. `config` is that
//! folder (default `/etc/gitlab`), for an image whose `/etc/gitlab` is mounted from
//! elsewhere.

use super::items::{root_owner, Builder, Need, Probe, Want};
use super::{Context, Forge, ItemKind, Resolved};
use crate::error::Result;
use crate::findings::{Code, Severity};
use std::path::{Path, PathBuf};

const HOST_KEYS: [&str; 4] = [
    "ssh_host_rsa_key",
    "ssh_host_ecdsa_key",
    "ssh_host_ed25519_key",
    "ssh_host_dsa_key",
];

pub fn resolve(config: Option<&Path>, ctx: &Context) -> Result<Resolved> {
    let layout = ctx.layout;
    let mut b = Builder::new(ctx);
    let dir: PathBuf = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/etc/gitlab"));
    let root = Some(root_owner(layout));

    let secrets = dir.join("gitlab-secrets.json");
    let kept = b.add(
        Want::file(
            &secrets,
            "gitlab-secrets.json (db_key_base, otp_key_base, secret_key_base, signing keys)",
            Need::Config,
        )
        .owner(root.clone())
        .mode(0o600),
    );
    // Missing values are generated at reconfigure, silently (omnibus SecretsHelper).
    if let Some(i) = b.items.last_mut().filter(|_| kept) {
        i.regenerates = true;
        i.signing_key = true;
    }
    b.add(
        Want::file(
            dir.join("gitlab.rb"),
            "gitlab.rb (may hold LDAP/SMTP/object-storage passwords)",
            Need::Required,
        )
        .owner(root.clone())
        .mode(0o600),
    );
    for k in HOST_KEYS {
        b.add(
            Want::file(dir.join(k), "SSH host key (GitLab image)", Need::IfPresent)
                .owner(root.clone())
                .mode(0o600),
        );
        b.add(
            Want::file(
                dir.join(format!("{k}.pub")),
                "SSH host public key",
                Need::IfPresent,
            )
            .owner(root.clone())
            .mode(0o644),
        );
    }
    for (sub, what) in [
        ("ssl", "TLS certificates and keys"),
        ("trusted-certs", "trusted CA certificates"),
    ] {
        b.add(
            Want::new(dir.join(sub), what, ItemKind::Dir, Need::IfPresent)
                .owner(root.clone())
                .mode(0o755),
        );
    }
    rest_of_the_folder(&mut b, &dir, root);
    if kept {
        let at = b.items[0].path.clone();
        b.finding(
            Code::ConfigProblem,
            Severity::Info,
            &at,
            "gitlab-secrets.json must be restored with a database backup of the same or an \
             older vintage, and it may change on upgrades: back it up after each upgrade",
            "after a restore run `gitlab-rake gitlab:doctor:secrets` to find what it cannot decrypt",
        );
    }
    Ok(Resolved {
        service: None,
        compose: None,
        forge: Forge::Gitlab,
        layout,
        config: Some(
            b.items
                .first()
                .filter(|_| kept)
                .map(|i| i.path.clone())
                .unwrap_or(secrets),
        ),
        items: b.items,
        findings: b.findings,
        oauth2: None,
    })
}

/// `gitlab-ctl backup-etc`'s own output folder, which it leaves out (`--exclude`).
const BACKUP_ETC_OUTPUT: &str = "config_backup";

/// Everything else in the folder, as `gitlab-ctl backup-etc` keeps it (items already
/// added are skipped by the builder).
fn rest_of_the_folder(b: &mut Builder, dir: &Path, root: Option<super::Owner>) {
    let Probe::Found(host) = b.probe(dir) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&host) else {
        return; // unreadable: the known items above have said what is missing
    };
    let mut names: Vec<std::ffi::OsString> = entries
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| n != BACKUP_ETC_OUTPUT)
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let is_dir = std::fs::symlink_metadata(host.join(&name)).is_ok_and(|m| m.is_dir());
        b.add(
            Want::new(
                path,
                "GitLab configuration (gitlab-ctl backup-etc keeps all of /etc/gitlab; files \
                 gitlab.rb includes may hold passwords)",
                if is_dir {
                    ItemKind::Dir
                } else {
                    ItemKind::File
                },
                Need::IfPresent,
            )
            .owner(root.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::items::testing::{run, Prefixed};
    use super::super::{Forge, Layout};
    use crate::findings::{Code, Severity};

    #[test]
    fn docker_gitlab_folder() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        fake.write("/srv/gitlab/config/gitlab-secrets.json", "{}");
        fake.write("/srv/gitlab/config/gitlab.rb", "");
        fake.write("/srv/gitlab/config/ssh_host_ed25519_key", "k");
        fake.write("/srv/gitlab/config/ssh_host_ed25519_key.pub", "k");
        fake.mkdir("/srv/gitlab/config/trusted-certs");
        fake.write("/srv/gitlab/config/smtp_password.rb", "x");
        fake.write(
            "/srv/gitlab/config/config_backup/gitlab_config_1_2026_01_01.tar",
            "x",
        );
        let r = run(
            Forge::Gitlab,
            &fake,
            Layout::Docker,
            &[],
            Some("/srv/gitlab/config"),
            false,
        );
        let names: Vec<_> = r
            .items
            .iter()
            .map(|i| i.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "gitlab-secrets.json",
                "gitlab.rb",
                "ssh_host_ed25519_key",
                "ssh_host_ed25519_key.pub",
                "trusted-certs",
                "smtp_password.rb",
            ]
        );
        assert!(r.items[0].regenerates && r.items[0].max_mode == Some(0o600));
        assert!(r.findings.iter().all(|f| f.severity == Severity::Info));
    }

    #[test]
    fn missing_secrets_json_is_an_error() {
        let dir = tempfile::TempDir::new().unwrap();
        let fake = Prefixed::new(dir.path());
        let r = run(Forge::Gitlab, &fake, Layout::Native, &[], None, false);
        assert!(r.items.is_empty());
        let f = &r.findings[0];
        assert_eq!((f.code, f.severity), (Code::SecretMissing, Severity::Error));
        assert!(f.path.ends_with("etc/gitlab/gitlab-secrets.json"));
    }
}
