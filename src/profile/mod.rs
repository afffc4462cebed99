//! Forge profiles: where each forge keeps the secrets it cannot lose, read from the
//! forge's OWN configuration.
//!
//! A user should not need to know that Gitea's OAuth2 key is `jwt/private.pem` relative
//! to `APP_DATA_PATH`, or that Woodpecker keeps forge tokens in plain text in its SQLite
//! database. Each forge has one module here that finds its configuration (the
//! documented search order, or the file the user names), parses it, and turns it into
//! [`Item`]s: a path, what it is, whether the forge silently regenerates it when lost
//! (the real danger), and the owner and widest mode it should have. The facts, per
//! forge, deployment and version, and the upstream file and function each comes from,
//! are in `docs/FORGES.md`; comments cite its sections and the forge's own code.
//!
//! Profiles work in the forge's own path space. A native install sees host paths; a
//! container sees its paths through volumes. The [`Locate`] trait is that translation:
//! [`HostPaths`] is the identity for native installs, `compose` provides one per service
//! that maps container paths through the service's volumes and says which paths are on
//! no persistent storage at all.

pub mod detect;
pub mod drone;
pub mod envfile;
pub mod gitea;
pub mod gitlab;
pub mod gogs;
pub mod ini;
mod items;
pub mod signing;
pub mod version;
pub mod woodpecker;

pub use version::Version;

use crate::error::{Error, Result};
use crate::findings::{Code, Finding, Severity};
use crate::owners::NameCache;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The forges (and CI servers) forgekeep knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Forge {
    Gitea,
    Forgejo,
    Woodpecker,
    WoodpeckerAgent,
    Gitlab,
    Gogs,
    Drone,
}

impl Forge {
    pub const ALL: [Forge; 7] = [
        Forge::Gitea,
        Forge::Forgejo,
        Forge::Woodpecker,
        Forge::WoodpeckerAgent,
        Forge::Gitlab,
        Forge::Gogs,
        Forge::Drone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Forge::Gitea => "gitea",
            Forge::Forgejo => "forgejo",
            Forge::Woodpecker => "woodpecker",
            Forge::WoodpeckerAgent => "woodpecker-agent",
            Forge::Gitlab => "gitlab",
            Forge::Gogs => "gogs",
            Forge::Drone => "drone",
        }
    }

    pub fn parse(name: &str) -> Result<Forge> {
        Forge::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| {
                Error::usage(format!("unknown profile {name:?}")).hint(format!(
                    "profiles: {}",
                    Forge::ALL.map(|f| f.as_str()).join(", ")
                ))
            })
    }
}

/// How the forge is deployed; it decides the default paths and the expected owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// A package or binary install on this host.
    Native,
    /// The official image running as root inside (Gitea/Forgejo/Gogs `/data`).
    Docker,
    /// The official rootless image (Gitea/Forgejo `-rootless`: `/var/lib/gitea`, `/etc/gitea`).
    DockerRootless,
}

/// What kind of thing an item is, which decides how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    File,
    Dir,
    /// An SQLite database: copied with SQLite's online backup API, so a running service's
    /// database is consistent; its `-wal`/`-shm`/`-journal` companions are not archived.
    Sqlite,
}

/// Who should own an item: a user name on native installs, a number in containers
/// (the uid inside the container is what counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Owner {
    Name(String),
    Uid(u32),
}

/// One thing a profile wants kept.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Where it is on this host (after [`Locate`]).
    pub path: PathBuf,
    /// The path the forge itself uses, when that differs (containers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_path: Option<String>,
    /// What it is, for humans: "OAuth2 JWT signing key".
    pub what: String,
    pub kind: ItemKind,
    /// Missing is a problem (a warning; an error for the configuration itself).
    pub required: bool,
    /// The forge silently makes a new one when it is missing.
    pub regenerates: bool,
    /// Tokens signed with it die when it changes (`diff` says so plainly).
    pub signing_key: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The widest permission bits it should have (e.g. 0o600 for a private key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_mode: Option<u32>,
    /// The host folder of the container mount it is on ([`Locate::confined`]).
    #[serde(skip)]
    pub confined: Option<PathBuf>,
}

/// A profile resolved against one installation.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub forge: Forge,
    pub layout: Layout,
    /// The configuration file it was resolved from, if the forge has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// The compose service and file it was found in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<PathBuf>,
    pub items: Vec<Item>,
    /// Problems found in the configuration itself (an empty SECRET_KEY, an app.ini the
    /// run user cannot write, a secret on no persistent storage, ...).
    pub findings: Vec<Finding>,
    /// For a forge that signs OAuth2 tokens (Gitea, Forgejo): what a CI server's tokens
    /// depend on. Not serialized: it is what the findings already say, for
    /// [`crate::sources`] to link a CI database with it.
    #[serde(skip)]
    pub oauth2: Option<OAuth2Facts>,
}

/// What the refresh tokens a forge issued to a CI server depend on (docs/FORGES.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Facts {
    pub signer: OAuth2Signer,
    /// `[oauth2] INVALIDATE_REFRESH_TOKENS` (default true in Forgejo, false in Gitea):
    /// each refresh is counted in the forge's database, so a CI database restored
    /// without the forge database of the same moment holds spent tokens ("token was
    /// already used").
    pub invalidates_refresh_tokens: bool,
    /// The forge's own database is in this backup (SQLite and `--with-db`).
    pub database_kept: bool,
}

/// What signs the forge's OAuth2 tokens, and whether this backup keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuth2Signer {
    /// OAuth2 is off: the forge issues no tokens.
    Off,
    /// An asymmetric key file (`JWT_SIGNING_PRIVATE_KEY_FILE`).
    KeyFile { kept: bool },
    /// HS256/384/512: `[oauth2] JWT_SECRET` in app.ini (or the file `JWT_SECRET_URI`
    /// names).
    Secret { kept: bool },
}

/// Where a path the forge uses lives on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Host(PathBuf),
    /// In the container's own layer or an anonymous volume: lost on `compose down`.
    /// `volume_line` is the line to add to the service's `volumes:`.
    NotPersistent {
        volume_line: String,
    },
    /// On a volume whose host folder cannot be found (a named volume without docker).
    Unknown {
        why: String,
    },
}

/// Translates the forge's paths to this host's.
pub trait Locate {
    fn locate(&self, path: &Path) -> Location;

    /// The host folder of the container mount holding `path`: the container writes
    /// everything below it, so no symlink there may be followed
    /// ([`crate::collect::links`]). `None` natively.
    fn confined(&self, _path: &Path) -> Option<PathBuf> {
        None
    }

    /// Is `path` on a mount the forge cannot write (`:ro`)? Only containers know.
    fn read_only(&self, _path: &Path) -> bool {
        false
    }
}

/// Native installs: the forge's paths are this host's paths.
pub struct HostPaths;

impl Locate for HostPaths {
    fn locate(&self, path: &Path) -> Location {
        Location::Host(path.to_path_buf())
    }
}

/// A host's root mounted elsewhere (`detect --root`): `/etc/gitea/app.ini` is
/// `ROOT/etc/gitea/app.ini`.
pub struct RootedPaths(pub PathBuf);

impl Locate for RootedPaths {
    fn locate(&self, path: &Path) -> Location {
        Location::Host(self.0.join(path.strip_prefix("/").unwrap_or(path)))
    }
}

/// Everything a profile may look at to resolve an installation.
pub struct Context<'a> {
    /// The environment the forge runs with: this process's for native installs, the
    /// service's `environment:` for compose.
    pub env: &'a BTreeMap<String, String>,
    pub locate: &'a dyn Locate,
    pub layout: Layout,
    /// `--with-db`: include the forge's own database where it is SQLite.
    pub with_db: bool,
    /// `--numeric-ids`: the files are a container's, seen through its volumes (the compose
    /// sidecar mounts them at the forge's own paths): the owners that count are the uids
    /// inside the image, never names of the users of the host (or sidecar) forgekeep
    /// runs on. Always so for compose services, whatever their layout.
    pub numeric_ids: bool,
    /// The version the image's tag states; `None` natively, for `latest`, no tag or a
    /// digest: the profiles then follow the current release.
    pub version: Option<Version>,
    /// The process's working directory, where the forge resolves some relative paths
    /// (Gitea's relative `file:` secrets and SQLite path): a systemd unit's
    /// `WorkingDirectory=`. Images have their own (docs/FORGES.md §1.1).
    pub working_dir: Option<PathBuf>,
}

impl Context<'_> {
    /// Whether the deployment runs `min` or later, when its image tag says (see
    /// [`Version::at_least`]).
    pub fn at_least(&self, min: &[u32]) -> Option<bool> {
        self.version.as_ref().and_then(|v| v.at_least(min))
    }
}

/// Resolves `forge` on this host. `config` is the file the user named (`-p gitea=PATH`);
/// without it each profile runs its documented search. `config` is in the FORGE's path
/// space like every other path: it goes through `ctx.locate` (the identity natively).
///
/// Only items that exist on this host are returned in `items`; a missing one, one on no
/// persistent storage or on an unknown volume is a finding instead (`secret-missing`,
/// `not-persistent`, `volume-unknown`), so collection never fails on them. Findings name
/// keys and paths, never values.
pub fn resolve(forge: Forge, config: Option<&Path>, ctx: &Context) -> Result<Resolved> {
    match forge {
        Forge::Gitea | Forge::Forgejo => gitea::resolve(forge, config, ctx),
        Forge::Woodpecker | Forge::WoodpeckerAgent => woodpecker::resolve(forge, config, ctx),
        Forge::Gitlab => gitlab::resolve(config, ctx),
        Forge::Gogs => gogs::resolve(config, ctx),
        Forge::Drone => drone::resolve(config, ctx),
    }
}

/// Checks an item that exists against the owner and widest mode its profile expects.
/// `meta` is the item's own metadata (`symlink_metadata` or `metadata`, as collection
/// reads it); `names` turns its uid into a user name for [`Owner::Name`].
///
/// * `mode-too-open` (warning): permission bits outside `max_mode`.
/// * `owner-unexpected` (warning): another owner than the forge's run user.
pub fn audit(item: &Item, meta: &std::fs::Metadata, names: &mut NameCache) -> Vec<Finding> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mode = meta.mode() & 0o7777;
    if let Some(max) = item.max_mode {
        let extra = mode & !max & 0o777;
        if extra != 0 {
            out.push(Finding {
                code: Code::ModeTooOpen,
                severity: Severity::Warning,
                path: item.path.display().to_string(),
                message: format!(
                    "{} has mode {:04o}; it needs no more than {:04o}",
                    item.what, mode, max
                ),
                fix: format!("chmod {:o} {}", mode & max & 0o777, item.path.display()),
            });
        }
    }
    if let Some(owner) = &item.owner {
        if let Some(f) = owner_finding(item, owner, meta.uid(), names) {
            out.push(f);
        }
    }
    out
}

/// `owner-unexpected` when a file's owner is not the one the forge runs as. An owner
/// expected by number (a container's uid) is spoken of by number only: the names of
/// this host's users (a sidecar's `nobody`, a host's `systemd-network` at 100) mean
/// nothing inside the forge's container. A name this host does not have cannot be
/// given (`chown git` fails): the files are likely a container's.
fn owner_finding(item: &Item, owner: &Owner, uid: u32, names: &mut NameCache) -> Option<Finding> {
    let (want, have, fix) = match owner {
        Owner::Uid(u) if *u == uid => return None,
        Owner::Uid(u) => (
            format!("uid {u}"),
            format!("uid {uid}"),
            format!("chown {u} {}", item.path.display()),
        ),
        Owner::Name(n) if names.user(uid).as_deref() == Some(n.as_str()) => return None,
        Owner::Name(n) => {
            let have = names
                .user(uid)
                .map(|name| format!("{name} (uid {uid})"))
                .unwrap_or_else(|| format!("uid {uid}"));
            let fix = if nix::unistd::User::from_name(n).ok().flatten().is_some() {
                format!("chown {n} {}", item.path.display())
            } else {
                format!(
                    "this host has no user {n}: if these are a container's files (seen through its volumes), \
                     back them up with --numeric-ids, which expects the uid inside the image; \
                     else create the user the forge runs as"
                )
            };
            (n.clone(), have, fix)
        }
    };
    Some(Finding {
        code: Code::OwnerUnexpected,
        severity: Severity::Warning,
        path: item.path.display().to_string(),
        message: format!("{} belongs to {have}; the forge runs as {want}", item.what),
        fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn item(path: &Path, owner: Option<Owner>, max_mode: Option<u32>) -> Item {
        Item {
            path: path.to_path_buf(),
            container_path: None,
            what: "OAuth2 JWT signing key".into(),
            kind: ItemKind::File,
            required: true,
            regenerates: true,
            signing_key: true,
            owner,
            max_mode,
            confined: None,
        }
    }

    #[test]
    fn owners_expected_by_number_are_spoken_of_by_number() {
        // Issue 13 item 4: the sidecar told the user to `chown git` files that must stay
        // uid 1000 inside the containers (the sidecar has no git).
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("private.pem");
        std::fs::write(&p, "x").unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        let mut names = NameCache::default();
        let want = meta.uid() + 1;
        let f = audit(&item(&p, Some(Owner::Uid(want)), None), &meta, &mut names);
        assert_eq!(
            f[0].message,
            format!(
                "OAuth2 JWT signing key belongs to uid {}; the forge runs as uid {want}",
                meta.uid()
            )
        );
        assert_eq!(f[0].fix, format!("chown {want} {}", p.display()));
        // A name this host lacks is not given as a fix.
        let f = audit(
            &item(&p, Some(Owner::Name("no-such-user-forgekeep".into())), None),
            &meta,
            &mut names,
        );
        assert!(
            f[0].fix
                .starts_with("this host has no user no-such-user-forgekeep")
                && f[0].fix.contains("--numeric-ids"),
            "{}",
            f[0].fix
        );
    }

    #[test]
    fn audit_mode_and_owner() {
        let dir = tempfile::TempDir::new().unwrap();
        let p = dir.path().join("private.pem");
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        let mut names = NameCache::default();

        let ok = item(&p, Some(Owner::Uid(meta.uid())), Some(0o644));
        assert!(audit(&ok, &meta, &mut names).is_empty());

        let f = audit(
            &item(&p, Some(Owner::Uid(meta.uid() + 1)), Some(0o600)),
            &meta,
            &mut names,
        );
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec![Code::ModeTooOpen, Code::OwnerUnexpected]);
        assert!(f[0].message.contains("0644") && f[0].fix.starts_with("chmod 600 "));

        if let Some(me) = names.user(meta.uid()) {
            let by_name = item(&p, Some(Owner::Name(me)), None);
            assert!(audit(&by_name, &meta, &mut names).is_empty());
        }
        let other = item(&p, Some(Owner::Name("no-such-user-forgekeep".into())), None);
        assert_eq!(
            audit(&other, &meta, &mut names)[0].code,
            Code::OwnerUnexpected
        );
    }
}
