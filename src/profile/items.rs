//! What every profile does with a path it derived: locate it on this host, check it is
//! there, and turn it into an [`Item`] or a finding.
//!
//! Items that are not on this host (missing, on no persistent storage, on a volume that
//! cannot be found) are NOT returned as items, so collection never fails on them; they
//! are reported, with a severity that says how bad losing them is.

use super::{Context, Item, ItemKind, Layout, Location, Owner};
use crate::collect::links::{untrusted_link, UntrustedLink};
use crate::findings::{Code, Finding, Severity};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// How much a missing item matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// The forge's configuration itself (app.ini, gitlab-secrets.json): missing is an error.
    Config,
    /// Named by the configuration and not regenerated: missing is a warning.
    Required,
    /// Regenerated silently by the forge when missing: a warning that says so.
    Regenerates,
    /// An extra worth keeping: missing is an info.
    Optional,
    /// Kept when there; nothing to say when not.
    IfPresent,
}

/// An item a profile wants, in the forge's own path space.
#[derive(Debug, Clone)]
pub(crate) struct Want {
    pub path: PathBuf,
    pub what: String,
    pub kind: ItemKind,
    pub need: Need,
    pub signing_key: bool,
    pub owner: Option<Owner>,
    pub max_mode: Option<u32>,
}

impl Want {
    pub fn new(
        path: impl Into<PathBuf>,
        what: impl Into<String>,
        kind: ItemKind,
        need: Need,
    ) -> Want {
        Want {
            path: path.into(),
            what: what.into(),
            kind,
            need,
            signing_key: false,
            owner: None,
            max_mode: None,
        }
    }

    pub fn file(path: impl Into<PathBuf>, what: impl Into<String>, need: Need) -> Want {
        Want::new(path, what, ItemKind::File, need)
    }

    pub fn signing(mut self) -> Want {
        self.signing_key = true;
        self
    }

    pub fn owner(mut self, owner: Option<Owner>) -> Want {
        self.owner = owner;
        self
    }

    pub fn mode(mut self, max_mode: u32) -> Want {
        self.max_mode = Some(max_mode);
        self
    }
}

/// Where a forge path is on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    Found(PathBuf),
    Missing(PathBuf),
    NotPersistent(String),
    Unknown(String),
    /// On this host, but a folder on its way is a symlink the forge or its container
    /// could have made: never followed (`collect::links`).
    Untrusted(PathBuf, UntrustedLink),
}

/// `p` made absolute against `base` when relative (the forges' `filepath.Join` rule).
pub(crate) fn under(base: &Path, p: &str) -> PathBuf {
    let p = p.trim();
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p.strip_prefix("./").unwrap_or(p))
    }
}

/// The owner an item should have: the run user by name on a native install; the uid
/// inside the image in a container, and for a container's files seen from elsewhere
/// (`--numeric-ids`: a sidecar has no `git`, and its own users' names mean nothing to
/// the forge's container).
pub(crate) fn run_owner(ctx: &Context, native_user: &str, container_uid: u32) -> Owner {
    match ctx.layout {
        Layout::Native if !ctx.numeric_ids => Owner::Name(native_user.to_string()),
        _ => Owner::Uid(container_uid),
    }
}

/// The uid an image runs the forge as, from the variable its entrypoint reads to change
/// git's uid (`USER_UID` for Gitea/Forgejo's rootful images, `PUID` for Gogs'), else 1000.
pub(crate) fn image_uid(ctx: &Context, variable: &str) -> u32 {
    ctx.env
        .get(variable)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1000)
}

/// `root` by name natively, uid 0 in a container (the same user either way).
pub(crate) fn root_owner(layout: Layout) -> Owner {
    match layout {
        Layout::Native => Owner::Name("root".into()),
        Layout::Docker | Layout::DockerRootless => Owner::Uid(0),
    }
}

/// The host keys of the OpenSSH the rootful Gitea, Forgejo and Gogs images run, in
/// `/data/ssh`, root 0700/0600, made by ssh-keygen at start when missing
/// (`docker/root/etc/s6/openssh/setup`, Gogs' `docker/s6/openssh/setup`;
/// docs/FORGES.md §1.2, §6).
pub(crate) fn image_openssh_dir(layout: Layout) -> Want {
    Want::new(
        "/data/ssh",
        "OpenSSH host keys of the image's sshd",
        ItemKind::Dir,
        Need::Regenerates,
    )
    .owner(Some(root_owner(layout)))
    .mode(0o700)
}

pub(crate) struct Builder<'a, 'c> {
    pub ctx: &'a Context<'c>,
    pub items: Vec<Item>,
    pub findings: Vec<Finding>,
    seen: BTreeSet<PathBuf>,
}

impl<'a, 'c> Builder<'a, 'c> {
    pub fn new(ctx: &'a Context<'c>) -> Self {
        Builder {
            ctx,
            items: Vec::new(),
            findings: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    pub fn probe(&self, path: &Path) -> Probe {
        match self.ctx.locate.locate(path) {
            Location::Host(p) => {
                // Checked before anything is read there (app.ini included): the forge
                // or its container may have redirected a folder on the way.
                let confined = self.ctx.locate.confined(path);
                if let Some(link) = untrusted_link(&p, confined.as_deref()) {
                    return Probe::Untrusted(p, link);
                }
                match std::fs::symlink_metadata(&p) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Probe::Missing(p),
                    // Present but perhaps not stat-able by us: collection reports that.
                    _ => Probe::Found(p),
                }
            }
            Location::NotPersistent { volume_line } => Probe::NotPersistent(volume_line),
            Location::Unknown { why } => Probe::Unknown(why),
        }
    }

    pub fn exists(&self, path: &Path) -> bool {
        matches!(self.probe(path), Probe::Found(_))
    }

    /// Reads a (non-secret-bearing for messages) text file at a forge path.
    pub fn read_text(&self, path: &Path) -> Result<(PathBuf, String), String> {
        match self.probe(path) {
            Probe::Found(p) | Probe::Missing(p) => match std::fs::read(&p) {
                Ok(b) => Ok((p, String::from_utf8_lossy(&b).into_owned())),
                Err(e) => Err(format!(
                    "cannot read {}: {}",
                    p.display(),
                    crate::error::plain_io(&e)
                )),
            },
            Probe::NotPersistent(_) => {
                Err(format!("{} is on no persistent storage", path.display()))
            }
            Probe::Unknown(why) => Err(format!("{}: {why}", path.display())),
            Probe::Untrusted(p, link) => Err(format!(
                "{} was not read: {} on its way is a symbolic link {} could have made",
                p.display(),
                link.link.display(),
                link.who
            )),
        }
    }

    pub fn finding(
        &mut self,
        code: Code,
        severity: Severity,
        path: &Path,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            code,
            severity,
            path: path.display().to_string(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// Adds `w` at the first of `paths` that is on this host, or reports it at the first
    /// when none is: for a file the forge reads from one of several places depending on
    /// a version the deployment does not state. Returns whether it became an item.
    pub fn add_first(&mut self, paths: &[PathBuf], w: Want) -> bool {
        let pick = paths.iter().find(|p| self.exists(p)).or(paths.first());
        match pick {
            Some(p) => self.add(Want {
                path: p.clone(),
                ..w
            }),
            None => false,
        }
    }

    /// Locates `w`, checks it is there, and keeps it as an item or reports it.
    /// Returns whether it became an item.
    pub fn add(&mut self, w: Want) -> bool {
        match self.probe(&w.path) {
            Probe::Found(host) => {
                if !self.seen.insert(host.clone()) {
                    return false;
                }
                let container_path = (host != w.path).then(|| w.path.display().to_string());
                self.items.push(Item {
                    confined: self.ctx.locate.confined(&w.path),
                    path: host,
                    container_path,
                    what: w.what,
                    kind: w.kind,
                    required: matches!(w.need, Need::Config | Need::Required | Need::Regenerates),
                    regenerates: w.need == Need::Regenerates,
                    signing_key: w.signing_key,
                    owner: w.owner,
                    max_mode: w.max_mode,
                });
                true
            }
            Probe::Missing(host) => {
                let at = if host == w.path {
                    host.display().to_string()
                } else {
                    format!("{} ({} on this host)", w.path.display(), host.display())
                };
                let (sev, msg, fix) = match w.need {
                    Need::Config => (
                        Severity::Error,
                        format!(
                            "{} is not at {at}: the secrets it holds cannot be kept",
                            w.what
                        ),
                        if self.ctx.layout == Layout::Native {
                            "name the configuration file with -p PROFILE=PATH, or check the path"
                                .to_string()
                        } else {
                            // -p would resolve it as a native install: wrong for a container.
                            "check the service's volumes: the folder holding it must be mounted \
                             from the host (and the compose file's paths must point at it)"
                                .to_string()
                        },
                    ),
                    Need::Required => (
                        Severity::Warning,
                        format!(
                            "{} is not at {at}, yet the configuration names it: the forge fails \
                             to start, or that feature breaks, without it",
                            w.what
                        ),
                        "put it back from an older backup, or correct the configuration"
                            .to_string(),
                    ),
                    Need::Regenerates => (
                        Severity::Warning,
                        format!(
                            "{} is not at {at}: the forge will make a new one at start; \
                             everything that trusted the old one breaks",
                            w.what
                        ),
                        "if the forge already made one, find where it went (an unmounted \
                         volume, an old location) and put it there before the next start"
                            .to_string(),
                    ),
                    Need::Optional => (
                        Severity::Info,
                        format!("{} is not at {at}: nothing to keep", w.what),
                        "nothing to do unless you expected one".to_string(),
                    ),
                    Need::IfPresent => return false,
                };
                self.finding(Code::SecretMissing, sev, &host, msg, fix);
                false
            }
            Probe::NotPersistent(volume_line) => {
                if w.need == Need::IfPresent {
                    return false;
                }
                let sev = if w.need == Need::Optional {
                    Severity::Warning
                } else {
                    Severity::Error
                };
                self.finding(
                    Code::NotPersistent,
                    sev,
                    &w.path,
                    format!(
                        "{} is in the container's own layer or an anonymous volume: it is \
                         lost on `docker compose down`{}",
                        w.what,
                        if w.need == Need::Regenerates {
                            ", and the forge silently makes a new one"
                        } else {
                            ""
                        }
                    ),
                    format!(
                        "add `{volume_line}` to the service's volumes (copy the file out of the \
                         running container first, with its owners)"
                    ),
                );
                false
            }
            Probe::Untrusted(host, link) => {
                // An extra is reported only when something is there (a look through the
                // link at its name, nothing read): every absent optional item below one
                // link would repeat the finding. What the forge needs is reported
                // always: it is not in the archive.
                if matches!(w.need, Need::Optional | Need::IfPresent)
                    && std::fs::symlink_metadata(&host).is_err()
                {
                    return false;
                }
                self.finding(
                    Code::UntrustedSymlink,
                    Severity::Error,
                    &host,
                    link.message(&w.what, &host),
                    link.fix(),
                );
                false
            }
            Probe::Unknown(why) => {
                if w.need == Need::IfPresent {
                    return false;
                }
                self.finding(
                    Code::VolumeUnknown,
                    Severity::Warning,
                    &w.path,
                    format!(
                        "{} ({}) is on a volume whose host folder cannot be found: {why}",
                        w.what,
                        w.path.display()
                    ),
                    "run forgekeep where the container engine can be asked, or bind-mount \
                     that volume to a host folder",
                );
                false
            }
        }
    }
}

/// The file a sqlite datasource names (`file:` prefix and `?options` stripped).
pub(crate) fn sqlite_path(dsn: &str) -> &str {
    let d = dsn.trim();
    let d = d.strip_prefix("file:").unwrap_or(d);
    d.split('?').next().unwrap_or(d)
}

/// Reads the env file at `file` (a forge path) into `env`; findings for problems.
/// Returns the file's own assignments when it was read.
pub(crate) fn merge_env_file(
    b: &mut Builder,
    file: &Path,
    env: &mut BTreeMap<String, String>,
    what: &str,
    need: Need,
    layout: Layout,
) -> Option<BTreeMap<String, String>> {
    let read = b.read_text(file).ok();
    b.add(
        Want::file(file, what, need)
            .owner(Some(root_owner(layout)))
            .mode(0o600),
    );
    let vars = super::envfile::parse(&read?.1);
    env.extend(vars.clone());
    Some(vars)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fake host: forge paths `/x` live at `<tmp>/x`; some prefixes can be declared
    //! not persistent or unknown. And the profile tests' shared way to resolve on it.
    use super::super::{Context, Forge, Layout, Locate, Location, Resolved};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    /// Resolves `forge` on the fake host with `env`.
    pub fn run(
        forge: Forge,
        fake: &Prefixed,
        layout: Layout,
        env: &[(&str, &str)],
        config: Option<&str>,
        with_db: bool,
    ) -> Resolved {
        run_tagged(forge, fake, layout, None, env, config, with_db)
    }

    /// [`run`] for an image whose tag is `tag` (`Some("1.23-rootless")`).
    pub fn run_tagged(
        forge: Forge,
        fake: &Prefixed,
        layout: Layout,
        tag: Option<&str>,
        env: &[(&str, &str)],
        config: Option<&str>,
        with_db: bool,
    ) -> Resolved {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ctx = Context {
            env: &env,
            locate: fake,
            layout,
            with_db,
            numeric_ids: false,
            version: tag.and_then(super::super::Version::from_tag),
            working_dir: None,
        };
        super::super::resolve(forge, config.map(Path::new), &ctx).unwrap()
    }

    /// The items' paths as the forge sees them (`/x`, not `<tmp>/x`).
    pub fn item_paths(r: &Resolved, fake: &Prefixed) -> Vec<PathBuf> {
        r.items
            .iter()
            .map(|i| Path::new("/").join(i.path.strip_prefix(&fake.root).unwrap()))
            .collect()
    }

    pub struct Prefixed {
        pub root: PathBuf,
        pub not_persistent: Vec<(PathBuf, String)>,
        pub unknown: Vec<PathBuf>,
    }

    impl Prefixed {
        pub fn new(root: &Path) -> Self {
            Prefixed {
                root: root.to_path_buf(),
                not_persistent: Vec::new(),
                unknown: Vec::new(),
            }
        }

        /// Writes `content` at forge path `p` (creating folders).
        pub fn write(&self, p: &str, content: &str) -> PathBuf {
            let host = self.host(Path::new(p));
            std::fs::create_dir_all(host.parent().unwrap()).unwrap();
            std::fs::write(&host, content).unwrap();
            host
        }

        pub fn mkdir(&self, p: &str) -> PathBuf {
            let host = self.host(Path::new(p));
            std::fs::create_dir_all(&host).unwrap();
            host
        }

        pub fn host(&self, p: &Path) -> PathBuf {
            self.root.join(p.strip_prefix("/").unwrap_or(p))
        }
    }

    impl Locate for Prefixed {
        fn locate(&self, path: &Path) -> Location {
            for (pfx, line) in &self.not_persistent {
                if path.starts_with(pfx) {
                    return Location::NotPersistent {
                        volume_line: line.clone(),
                    };
                }
            }
            if self.unknown.iter().any(|u| path.starts_with(u)) {
                return Location::Unknown {
                    why: "named volume".into(),
                };
            }
            Location::Host(self.host(path))
        }
    }
}
