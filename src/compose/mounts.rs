//! A service's mounts, and the translation of the forge's container paths to host paths.
//!
//! Docker lets a deeper mount shadow a shallower one, so the mount that holds a container
//! path is the one whose target is its longest prefix, compared component by component
//! (`/data2` is not under `/data`). What the forge writes where no persistent mount
//! reaches is lost on `docker compose down` (an anonymous volume) or on any recreation
//! of the container (its own layer); [`Mounts::locate`] says so and proposes the
//! `volumes:` line that fixes it, in the style the file already uses.

use super::engine::Engine;
use crate::profile::{Locate, Location};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Where a mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Source {
    /// A host folder or file. `written` is the source as the compose file writes it
    /// (after interpolation), `path` the absolute host path.
    Bind {
        path: PathBuf,
        written: String,
    },
    /// A named volume. `docker_name` is the name docker knows it by (`<project>_<name>`,
    /// or its `name:`, or the external name). `device` is set for a `local` volume with
    /// `driver_opts: {type: none, o: bind, device: PATH}`: a bind in disguise.
    Volume {
        name: String,
        docker_name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        device: Option<PathBuf>,
        /// `volume: {subpath: ...}` of the long syntax.
        #[serde(skip_serializing_if = "Option::is_none")]
        subpath: Option<String>,
    },
    /// A volume with no name: a new one each time the container is created.
    Anonymous,
    Tmpfs,
    /// A `secrets:` or `configs:` entry; `path` is its host file when it has `file:`.
    File {
        what: &'static str,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// Anything else (`npipe`, `cluster`, `image`, ...): reported, never followed.
    Other {
        kind: String,
    },
}

/// One mount of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The container path, cleaned (no trailing slash, no `.`/`..`).
    pub target: PathBuf,
    #[serde(flatten)]
    pub source: Source,
    pub read_only: bool,
}

impl Mount {
    /// A one-line description for humans: `./gitea/git → /var/lib/gitea/git (bind)`.
    pub fn describe(&self) -> String {
        let t = self.target.display();
        let ro = if self.read_only { ", read-only" } else { "" };
        match &self.source {
            Source::Bind { written, .. } => format!("{written} → {t} (bind{ro})"),
            Source::Volume {
                name,
                device: Some(d),
                ..
            } => format!("{name} → {t} (volume bound to {}{ro})", d.display()),
            Source::Volume {
                name, docker_name, ..
            } => format!("{name} → {t} (named volume {docker_name}{ro})"),
            Source::Anonymous => format!("{t} (anonymous volume: lost on `docker compose down`)"),
            Source::Tmpfs => format!("tmpfs → {t} (in memory: lost on every restart)"),
            Source::File {
                what,
                name,
                path: Some(p),
            } => format!("{} → {t} ({what} {name})", p.display()),
            Source::File { what, name, .. } => format!("{what} {name} → {t} (not a file)"),
            Source::Other { kind } => format!("{kind} → {t}"),
        }
    }

    /// Whether what is written under the target survives `docker compose down && up`.
    pub fn persistent(&self) -> bool {
        !matches!(self.source, Source::Anonymous | Source::Tmpfs)
    }
}

/// The mounts of one service; implements [`Locate`] for the forge profiles.
pub struct Mounts {
    pub(crate) service: String,
    pub(crate) list: Vec<Mount>,
    /// The image's `VOLUME` folders ([`super::image_volumes`]).
    pub(crate) image_volumes: &'static [&'static str],
    /// The host folder (as the file would write it) new binds of this service go in
    /// when the service's own binds show no convention: `./<service>`, or the folder
    /// other services' binds suggest (`./volumes/<service>`).
    pub(crate) fallback_base: String,
    pub(crate) engine: Arc<Engine>,
    /// The id of the service's container, when the engine knows one: what it wrote
    /// outside persistent storage can still be read (and kept) while it exists.
    pub(crate) container: Option<String>,
    /// The container paths [`Mounts::in_container`] found there: each is a secret on no
    /// persistent storage, whether the profile keeps it or only looked at it.
    pub(crate) found_in_container: std::sync::Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl std::fmt::Debug for Mounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounts")
            .field("service", &self.service)
            .field("list", &self.list)
            .finish_non_exhaustive()
    }
}

impl Serialize for Mounts {
    /// A list of `{target, type, ..., read_only, description}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            mount: &'a Mount,
            description: String,
        }
        let mut seq = s.serialize_seq(Some(self.list.len()))?;
        for m in &self.list {
            seq.serialize_element(&Out {
                mount: m,
                description: m.describe(),
            })?;
        }
        seq.end()
    }
}

impl Mounts {
    pub fn list(&self) -> &[Mount] {
        &self.list
    }

    /// One line per mount, for `check`.
    pub fn descriptions(&self) -> Vec<String> {
        self.list.iter().map(Mount::describe).collect()
    }

    /// The mount holding `path` (longest target prefix, component-wise) and the rest of
    /// the path below its target.
    pub fn find(&self, path: &Path) -> Option<(&Mount, PathBuf)> {
        let path = clean(path);
        self.list
            .iter()
            .filter_map(|m| path.strip_prefix(&m.target).ok().map(|rest| (m, rest)))
            .max_by_key(|(m, _)| m.target.components().count())
            .map(|(m, rest)| (m, rest.to_path_buf()))
    }

    /// Where a path that [`Locate::locate`] called not persistent actually lives, for
    /// humans: an anonymous volume, a tmpfs, or the container's own layer. `None` when
    /// the path is on persistent storage.
    pub fn lost_how(&self, path: &Path) -> Option<&'static str> {
        let path = clean(path);
        match self.find(&path).map(|(m, _)| &m.source) {
            Some(Source::Tmpfs) => Some("a tmpfs (lost on every restart)"),
            Some(Source::Anonymous) => Some("an anonymous volume (lost on `docker compose down`)"),
            Some(_) => None,
            None if self.image_volumes.iter().any(|v| path.starts_with(v)) => {
                Some("an anonymous volume (lost on `docker compose down`)")
            }
            None => Some("the container's own layer (lost when the container is recreated)"),
        }
    }

    /// The `volumes:` line that would put `path` on persistent storage.
    pub fn suggest_line(&self, path: &Path) -> String {
        let dir = self.suggest_target(path);
        let base = self.suggest_base(&dir);
        let last = volume_nickname(&dir)
            .map(str::to_string)
            .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "data".into());
        let taken = |src: &str| {
            self.list.iter().any(|m| match &m.source {
                Source::Bind { written, .. } => written.trim_end_matches('/') == src,
                _ => false,
            })
        };
        let mut src = format!("{base}/{last}");
        if taken(&src) {
            // `./gitea/data` already holds another folder: name the new one after the
            // whole container path instead.
            let flat: Vec<String> = dir
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            src = format!("{base}/{}", flat.join("-"));
        }
        format!("{src}:{}", dir.display())
    }

    /// The deepest container folder worth mounting for `path`: its folder when it names
    /// a file; the whole image `VOLUME` when nothing of that volume is mounted yet.
    fn suggest_target(&self, path: &Path) -> PathBuf {
        let trailing_slash = path.as_os_str().to_string_lossy().ends_with('/');
        let path = clean(path);
        let mut dir = if !trailing_slash && looks_like_file(&path) {
            path.parent().map(Path::to_path_buf).unwrap_or(path.clone())
        } else {
            path.clone()
        };
        for v in self.image_volumes {
            let v = Path::new(v);
            if dir.starts_with(v)
                && !self.list.iter().any(|m| {
                    m.persistent() && (m.target.starts_with(v) || v.starts_with(&m.target))
                })
            {
                dir = v.to_path_buf();
            }
        }
        if dir.parent().is_none() {
            return path; // never suggest mounting `/`
        }
        dir
    }

    /// The host folder new binds for `dir` go in: the folder of this service's bind
    /// whose target is nearest to `dir`, when that bind is the forge's own (its target
    /// shares a folder with `dir` that is not a system folder such as `/etc` or `/root`)
    /// and its host folder is a real one (not `.` or `/`). Otherwise next to the
    /// compose file: `./<service>`. A bind of `/etc/timezone` or `/root/.docker` says
    /// nothing about where the forge's data belongs (they once gave
    /// `/etc/config:/etc/gitea` and `/root/woodpecker:/etc/woodpecker`).
    fn suggest_base(&self, dir: &Path) -> String {
        let best = self
            .list
            .iter()
            .filter_map(|m| match &m.source {
                Source::Bind { written, path } if !looks_like_file(path) && !path.is_file() => {
                    let common = common_folder(&m.target, dir);
                    (!is_system_folder(&common)).then(|| (common.components().count(), written))
                }
                _ => None,
            })
            .max_by_key(|(n, _)| *n); // last of the equals: fine, they share a folder or not
        if let Some((_, written)) = best {
            if let Some(parent) = written_parent(written) {
                return parent;
            }
        }
        self.fallback_base.clone()
    }
}

impl Mounts {
    /// Where the service's container keeps `path`, which no persistent mount holds: its
    /// anonymous volume or its own layer, as the engine says, when the file is there.
    /// Still lost on `docker compose down` (see [`Mounts::lost_how`]), but it can be
    /// archived before that happens.
    pub fn in_container(&self, path: &Path) -> Option<PathBuf> {
        let id = self.container.as_ref()?;
        let host = self.engine.storage(id).ok()?.host_path(path)?;
        std::fs::symlink_metadata(&host).ok()?;
        self.found_in_container
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf());
        Some(host)
    }

    /// What [`Mounts::in_container`] found since the last call, forgotten.
    pub fn take_found_in_container(&self) -> Vec<PathBuf> {
        std::mem::take(
            &mut *self
                .found_in_container
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
        .into_iter()
        .collect()
    }
}

/// The host folder names the forges' docs use for their images' volumes (Gitea rootless
/// `./data:/var/lib/gitea`, `./config:/etc/gitea`; GitLab `$GITLAB_HOME/{config,logs,data}`).
fn volume_nickname(dir: &Path) -> Option<&'static str> {
    Some(match dir.to_str()? {
        "/var/lib/gitea" | "/var/opt/gitlab" | "/data" => "data",
        "/etc/gitea" | "/etc/gitlab" => "config",
        "/var/log/gitlab" => "logs",
        _ => return None,
    })
}

/// The deepest folder both paths are in (component-wise).
fn common_folder(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// Folders shared by unrelated software: a bind below one of them (`/etc/timezone`,
/// `/var/run/docker.sock`, `/root/.docker`) is no convention for the forge's own data.
pub(crate) fn is_system_folder(p: &Path) -> bool {
    const SYSTEM: &[&str] = &[
        "",
        "/",
        "/etc",
        "/var",
        "/var/lib",
        "/var/run",
        "/var/log",
        "/run",
        "/usr",
        "/usr/local",
        "/usr/share",
        "/opt",
        "/srv",
        "/home",
        "/root",
        "/tmp",
        "/mnt",
        "/media",
        "/dev",
        "/proc",
        "/sys",
    ];
    p.to_str().is_some_and(|s| SYSTEM.contains(&s))
}

/// The folder part of a bind source as written, when it is a folder worth reusing.
pub(crate) fn written_parent(written: &str) -> Option<String> {
    let (parent, _) = written.trim_end_matches('/').rsplit_once('/')?;
    match parent {
        "" | "." | ".." | "~" => None,
        p => Some(p.to_string()),
    }
}

/// Whether a container path most likely names a file rather than a folder: it has an
/// extension (`app.ini`, `private.pem`, `woodpecker.sqlite`), or is one of the
/// extension-less key files forges use (`ssh_host_rsa_key`, `authorized_keys`).
pub fn looks_like_file(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
        return false;
    };
    path.extension().is_some()
        || name.ends_with("_key")
        || matches!(&*name, "authorized_keys" | "authorized_principals")
}

/// What holds a mount's content.
enum Backing {
    /// A folder (or file) of this host.
    Host(PathBuf),
    /// The container's anonymous volume: only its engine knows where.
    Container,
    /// A tmpfs: the container's memory, on no disk.
    Memory,
    Unknown(String),
}

impl Mounts {
    fn backing(&self, mount: &Mount) -> Backing {
        match &mount.source {
            Source::Bind { path, .. } => Backing::Host(path.clone()),
            Source::File { path: Some(p), .. } => Backing::Host(p.clone()),
            Source::File { what, name, .. } => Backing::Unknown(format!(
                "{what} {name} is not a file of this host (external or from the environment)"
            )),
            Source::Volume {
                device: Some(d),
                subpath,
                ..
            } => Backing::Host(join_sub(d, subpath)),
            Source::Volume {
                docker_name,
                subpath,
                ..
            } => match self.engine.mountpoint(docker_name) {
                Ok(mp) => Backing::Host(join_sub(&mp, subpath)),
                Err(why) => Backing::Unknown(why),
            },
            Source::Anonymous => Backing::Container,
            Source::Tmpfs => Backing::Memory,
            Source::Other { kind } => Backing::Unknown(format!(
                "{} is a mount of type {kind}, which forgekeep cannot follow",
                mount.target.display()
            )),
        }
    }
}

impl Locate for Mounts {
    fn read_only(&self, path: &Path) -> bool {
        self.find(&clean(path)).is_some_and(|(m, _)| m.read_only)
    }

    /// The host folder of the mount [`Mounts::locate`] goes through (or of the
    /// container's anonymous volume or layer): the container writes below it.
    fn confined(&self, path: &Path) -> Option<PathBuf> {
        let path = clean(path);
        let in_container = || {
            let id = self.container.as_ref()?;
            let storage = self.engine.storage(id).ok()?;
            storage.unchecked_host_path(&path).map(|(base, _)| base)
        };
        match self.find(&path).map(|(mount, _)| self.backing(mount)) {
            Some(Backing::Host(base)) => Some(base),
            None | Some(Backing::Container) => in_container(),
            Some(Backing::Memory | Backing::Unknown(_)) => None,
        }
    }

    fn locate(&self, path: &Path) -> Location {
        let path = clean(path);
        let not_persistent = || match self.in_container(&path) {
            Some(host) => Location::Host(host),
            None => Location::NotPersistent {
                volume_line: self.suggest_line(&path),
            },
        };
        let Some((mount, rest)) = self.find(&path) else {
            return not_persistent();
        };
        match self.backing(mount) {
            Backing::Host(base) if rest.as_os_str().is_empty() => Location::Host(base),
            Backing::Host(base) => Location::Host(base.join(&rest)),
            Backing::Container => not_persistent(),
            // In the container's memory: not on this host's disk at all.
            Backing::Memory => Location::NotPersistent {
                volume_line: self.suggest_line(&path),
            },
            Backing::Unknown(why) => Location::Unknown { why },
        }
    }
}

fn join_sub(base: &Path, subpath: &Option<String>) -> PathBuf {
    match subpath {
        Some(s) if !s.is_empty() => base.join(s.trim_start_matches('/')),
        _ => base.to_path_buf(),
    }
}

/// Lexical clean-up of a path: drops `.`, resolves `..` against the previous component,
/// removes trailing slashes. Never touches the file system (the folders may not exist).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(src: &str, written: &str, target: &str) -> Mount {
        Mount {
            target: target.into(),
            source: Source::Bind {
                path: src.into(),
                written: written.into(),
            },
            read_only: false,
        }
    }

    fn mounts(list: Vec<Mount>, image_volumes: &'static [&'static str]) -> Mounts {
        Mounts {
            service: "gitea".into(),
            list,
            image_volumes,
            fallback_base: "./gitea".into(),
            engine: Arc::new(Engine::none()),
            container: None,
            found_in_container: Default::default(),
        }
    }

    #[test]
    fn component_wise_longest_prefix() {
        let m = mounts(
            vec![
                bind("/h/data", "./data", "/data"),
                bind("/h/deep", "./deep", "/data/gitea/jwt"),
            ],
            &["/data"],
        );
        assert_eq!(
            m.locate(Path::new("/data/gitea/jwt/private.pem")),
            Location::Host("/h/deep/private.pem".into())
        );
        assert_eq!(
            m.locate(Path::new("/data/gitea/conf/app.ini")),
            Location::Host("/h/data/gitea/conf/app.ini".into())
        );
        assert_eq!(
            m.locate(Path::new("/data")),
            Location::Host("/h/data".into())
        );
        assert_eq!(
            m.locate(Path::new("/data/./x/../y/")),
            Location::Host("/h/data/y".into())
        );
        // `/data2` is not under `/data`.
        assert!(matches!(
            m.locate(Path::new("/data2/x")),
            Location::NotPersistent { .. }
        ));
        assert_eq!(
            m.lost_how(Path::new("/data2/x")).unwrap(),
            "the container's own layer (lost when the container is recreated)"
        );
        assert_eq!(m.lost_how(Path::new("/data/x")), None);
    }

    #[test]
    fn suggestions() {
        let m = mounts(vec![], &["/var/lib/gitea", "/etc/gitea"]);
        // Nothing of the image volume is mounted: suggest the whole volume.
        assert_eq!(
            m.suggest_line(Path::new("/var/lib/gitea/jwt/private.pem")),
            "./gitea/data:/var/lib/gitea"
        );
        assert_eq!(
            m.suggest_line(Path::new("/etc/gitea/app.ini")),
            "./gitea/config:/etc/gitea"
        );
        assert!(m
            .lost_how(Path::new("/etc/gitea/app.ini"))
            .unwrap()
            .contains("anonymous volume"));
        // Outside image volumes: the file's folder.
        assert_eq!(
            m.suggest_line(Path::new("/srv/x/key.pem")),
            "./gitea/x:/srv/x"
        );
        assert_eq!(
            m.suggest_line(Path::new("/srv/ssh_host_rsa_key")),
            "./gitea/srv:/srv"
        );
        assert_eq!(
            m.suggest_line(Path::new("/srv/ssh/")),
            "./gitea/ssh:/srv/ssh"
        );

        let m = mounts(
            vec![
                bind(
                    "/h/v/gitea/git",
                    "./volumes/gitea/git",
                    "/var/lib/gitea/git",
                ),
                bind("/opt/cfg", "/opt/cfg", "/etc/gitea"),
            ],
            &["/var/lib/gitea", "/etc/gitea"],
        );
        assert_eq!(
            m.suggest_line(Path::new("/var/lib/gitea/jwt/private.pem")),
            "./volumes/gitea/jwt:/var/lib/gitea/jwt"
        );
        // A name already used gets the whole path.
        assert_eq!(
            m.suggest_line(Path::new("/var/lib/gitea/x/git/a.txt")),
            "./volumes/gitea/var-lib-gitea-x-git:/var/lib/gitea/x/git"
        );
    }

    #[test]
    fn unrelated_binds_are_no_convention() {
        // Review (issue 8): `/etc/timezone` gave `/etc/config:/etc/gitea`, `/root/.docker`
        // gave `/root/woodpecker:/etc/woodpecker`; `/var/run/docker.sock` the same.
        let m = mounts(
            vec![
                bind("/etc/timezone", "/etc/timezone", "/etc/timezone"),
                bind("/root/.docker", "/root/.docker", "/root/.docker"),
                bind("/var/lib/docker", "/var/lib/docker", "/var/lib/docker"),
            ],
            &["/var/lib/gitea", "/etc/gitea"],
        );
        assert_eq!(
            m.suggest_line(Path::new("/etc/gitea/app.ini")),
            "./gitea/config:/etc/gitea"
        );
        assert_eq!(
            m.suggest_line(Path::new("/etc/woodpecker/agent.conf")),
            "./gitea/woodpecker:/etc/woodpecker"
        );
        assert_eq!(
            m.suggest_line(Path::new("/var/lib/gitea/jwt/private.pem")),
            "./gitea/data:/var/lib/gitea"
        );
        // The forge's own absolute binds still set the convention.
        let m = mounts(
            vec![bind(
                "/srv/gitea/git",
                "/srv/gitea/git",
                "/var/lib/gitea/git",
            )],
            &["/var/lib/gitea", "/etc/gitea"],
        );
        assert_eq!(
            m.suggest_line(Path::new("/var/lib/gitea/jwt/private.pem")),
            "/srv/gitea/jwt:/var/lib/gitea/jwt"
        );
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(
            clean(Path::new("/srv/compose/../data")),
            PathBuf::from("/srv/data")
        );
    }
}
