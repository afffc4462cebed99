//! Docker compose awareness: which services of a compose file run a forge or a CI server,
//! with what environment, and where their container paths live on this host.
//!
//! The report that started forgekeep was a compose file that bind-mounted only some
//! folders of `/var/lib/gitea`: Gitea's JWT signing key went to the image's anonymous
//! volume and a `docker compose down && up` replaced it. So a compose file is read the
//! way compose reads it (interpolation, `.env`, `env_file`, short and long volume
//! syntax, named volumes and their real names) and each service gets a [`Mounts`] that
//! implements [`crate::profile::Locate`]: a container path becomes a host path, or
//! "not persistent" with the `volumes:` line that fixes it, or "unknown" (a named
//! volume without a docker engine to ask).
//!
//! Not read: `include:`, `extends:`, several `-f` files merged, profiles, `!reset` /
//! `!override` tags. A warning names the first two when the file uses them.
//!
//! Environment values are secrets (`GITEA__security__SECRET_KEY`, ...): they are kept
//! for the profiles but never serialized, printed or put in a message; only their keys
//! are.

pub mod advice;
pub mod build;
pub mod engine;
pub mod image;
pub mod interp;
pub mod mounts;

pub use build::Build;
pub use engine::{Container, Engine};
pub use image::{app_of_image, image_version, image_volumes, reference_problem, ImageRef};
pub use mounts::{Mount, Mounts, Source};

use crate::error::{Error, Result};
use crate::findings::Severity;
use crate::profile::{Forge, Layout};
use interp::Vars;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use yaml_rust2::{Yaml, YamlLoader};

/// A compose file, read.
#[derive(Debug, Serialize)]
pub struct Project {
    /// The compose file (absolute).
    pub file: PathBuf,
    /// Its folder: relative paths in the file are relative to it.
    pub dir: PathBuf,
    /// The project name: docker names the named volume `v` of project `p` `p_v`.
    pub name: String,
    /// The name came from the engine (the file's containers run under it), not from
    /// the file, its folder or COMPOSE_PROJECT_NAME: compose commands need `-p NAME`.
    pub name_from_engine: bool,
    /// The engine listed its containers (even none): what it says about them is known.
    pub engine_answered: bool,
    /// A version 1 file: services at the top level, no `services:` (compose 1.x only).
    pub legacy: bool,
    pub services: Vec<Service>,
    /// Files that hold this deployment's configuration and often its secrets, to archive
    /// with it: the compose file, the `.env` next to it, and the `env_file:`s and
    /// `secrets:`/`configs:` files of the forge and CI services. Existing files only.
    pub extra_files: Vec<PathBuf>,
    /// Things compose would warn about (unset variables, missing `env_file`s, ...).
    pub warnings: Vec<String>,
    /// What the file's services and the engine say about what is kept, each with what
    /// to do: a service that looks like a forge but cannot be classified (a warning), a
    /// CI runner, the project the containers run as (notes).
    pub notes: Vec<Note>,
}

/// A finding about a compose file as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub severity: Severity,
    pub message: String,
    pub fix: String,
}

impl Project {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The services that run a forge or CI server forgekeep knows.
    pub fn apps(&self) -> impl Iterator<Item = (&Service, Forge, Layout)> {
        self.services
            .iter()
            .filter_map(|s| s.app.map(|(f, l)| (s, f, l)))
    }
}

/// One service of a compose file.
#[derive(Serialize)]
pub struct Service {
    pub name: String,
    /// The image as written (after interpolation); empty for a build-only service.
    pub image: String,
    /// `build:`, for a service built locally.
    pub build: Option<Build>,
    /// The image its Dockerfile starts from, when it is built and that can be read.
    pub built_from: Option<String>,
    /// The forge it runs, from its image ([`app_of_image`]) or the image it is built from.
    #[serde(serialize_with = "ser_app")]
    pub app: Option<(Forge, Layout)>,
    /// The environment the container gets: its `env_file`s, then `environment:`.
    /// Values are secrets: only the keys are serialized (as `env_keys`).
    #[serde(rename = "env_keys", serialize_with = "ser_keys")]
    pub env: BTreeMap<String, String>,
    /// Its `env_file`s (absolute, whether they exist or not).
    pub env_files: Vec<PathBuf>,
    pub mounts: Mounts,
    /// `container_name:`, when set.
    pub container_name: Option<String>,
    /// Its container on this engine (a running one first), when the engine knows one.
    pub container: Option<Container>,
}

impl std::fmt::Debug for Service {
    /// Never shows environment values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("built_from", &self.built_from)
            .field("app", &self.app)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("env_files", &self.env_files)
            .field("mounts", &self.mounts)
            .finish()
    }
}

impl Service {
    /// The image its forge and version are read from: the image it is built from when
    /// that names a forge, else its own image.
    pub fn reference(&self) -> &str {
        match &self.built_from {
            Some(b) if app_of_image(b).is_some() => b,
            _ => &self.image,
        }
    }

    /// One line per mount: `./gitea/git → /var/lib/gitea/git (bind)`.
    pub fn mount_descriptions(&self) -> Vec<String> {
        self.mounts.descriptions()
    }

    /// What it runs, for humans: its image, or the image it is built from.
    pub fn image_label(&self) -> String {
        match (&self.built_from, &self.build) {
            (Some(base), _) if self.image.is_empty() => format!("built from {base}"),
            (Some(base), _) => format!("{} (built from {base})", self.image),
            (None, Some(b)) if self.image.is_empty() => format!("built from {}", b.context),
            _ => self.image.clone(),
        }
    }
}

fn ser_app<S: Serializer>(
    app: &Option<(Forge, Layout)>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct App {
        forge: Forge,
        layout: Layout,
    }
    app.map(|(forge, layout)| App { forge, layout })
        .serialize(s)
}

fn ser_keys<S: Serializer>(
    env: &BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(env.keys())
}

/// What [`load_with`] reads besides the file.
pub struct LoadOptions {
    /// The process environment (interpolation, bare `KEY`s, `COMPOSE_PROJECT_NAME`, `~`).
    pub env: Vars,
    /// `docker compose -p NAME`: overrides every other source of the project name.
    pub project_name: Option<String>,
    /// Asks docker where named volumes are, and which containers run the file.
    pub engine: Arc<Engine>,
    /// The host's root is mounted here (`detect --root`): absolute and `~` paths of the
    /// file are that host's, so they are looked up under this folder.
    pub root: Option<PathBuf>,
}

impl LoadOptions {
    /// This process's environment and the `docker` on `PATH`.
    pub fn from_process() -> LoadOptions {
        LoadOptions {
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            project_name: None,
            engine: process_engine(),
            root: None,
        }
    }

    /// For a host whose root is mounted at `root` (a dead host's disk): none of this
    /// process's environment, no docker (ours knows nothing of that host's volumes).
    pub fn for_root(root: &Path) -> LoadOptions {
        LoadOptions {
            env: Vars::new(),
            project_name: None,
            engine: Arc::new(Engine::none()),
            root: Some(root.to_path_buf()),
        }
    }
}

/// The docker of this process, one for every compose file a run reads (`--compose` given
/// twice, `detect` finding several): each question (which containers run, where a volume
/// is, whether docker answers at all) is asked once per run, and a docker that hangs
/// costs its timeout once, not once per file.
fn process_engine() -> Arc<Engine> {
    static ENGINE: std::sync::OnceLock<Arc<Engine>> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Arc::new(Engine::docker())).clone()
}

/// Reads a compose file with this process's environment and docker.
pub fn load(file: &Path) -> Result<Project> {
    load_with(file, LoadOptions::from_process())
}

/// The declaration of a top-level named volume.
struct VolumeDecl {
    docker_name: String,
    device: Option<PathBuf>,
}

/// Reads a compose file.
pub fn load_with(file: &Path, opts: LoadOptions) -> Result<Project> {
    let file = if file.is_absolute() {
        mounts::clean(file)
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("find the current folder for", file, &e))?;
        mounts::clean(&cwd.join(file))
    };
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io("read", &file, &e))?;
    let bad = |what: String| {
        Error::usage(format!("{}: {what}", file.display()))
            .hint("check the file with `docker compose config`")
    };
    let mut warnings = BTreeSet::new();
    let mut extra_files = vec![file.clone()];

    // Variables: the process environment over `.env`.
    let dotenv_path = dir.join(".env");
    let mut vars = Vars::new();
    if dotenv_path.is_file() {
        let t = std::fs::read_to_string(&dotenv_path)
            .map_err(|e| Error::io("read", &dotenv_path, &e))?;
        vars = interp::parse_dotenv(&t, &opts.env, &mut warnings)
            .map_err(|e| Error::usage(format!("{}: {e}", dotenv_path.display())))?;
        extra_files.push(dotenv_path.clone());
    }
    vars.extend(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let home = opts.env.get("HOME").map(PathBuf::from);
    let host_path = |written: &str| {
        let p = host_path(written, &dir, home.as_deref());
        match &opts.root {
            // Decided by how the path is written: relative ones are already under the
            // root (the file is); absolute and `~` ones name the other host's folders,
            // even when they happen to start like the mount point.
            Some(root) if written.starts_with('/') || written.starts_with('~') => {
                root.join(p.strip_prefix("/").unwrap_or(&p))
            }
            _ => p,
        }
    };

    // YAML: merge keys, then interpolation of every value.
    let docs = YamlLoader::load_from_str(&text).map_err(|e| bad(format!("not valid YAML: {e}")))?;
    let root = docs.into_iter().next().unwrap_or(Yaml::Null);
    let root = interpolate_tree(merge_keys(root), &vars, &mut warnings, "").map_err(|e| {
        bad(e).hint(format!(
            "set the variable in the environment or in {}",
            dotenv_path.display()
        ))
    })?;
    let Yaml::Hash(top) = &root else {
        return Err(bad("not a compose file (no mapping at the top)".into()));
    };
    for key in ["include", "extends"] {
        if top.contains_key(&s(key)) {
            warnings.insert(format!(
                "`{key}:` is not followed: run forgekeep on the included files too"
            ));
        }
    }
    let legacy = is_legacy(top);
    if legacy {
        warnings.insert(
            "a legacy compose file (version 1: services at the top level, no `services:`): \
             docker-compose 1.x runs it, `docker compose` v2 refuses it; its named volumes \
             are docker volumes of the same name, without the project prefix"
                .into(),
        );
    }
    let service_defs = if legacy { &root } else { &root["services"] };

    // The project name, by compose's precedence: -p, COMPOSE_PROJECT_NAME, name:, folder;
    // then the engine's word when the file's containers run under another one.
    let chosen = opts.project_name.clone().or_else(|| {
        vars.get("COMPOSE_PROJECT_NAME")
            .filter(|v| !v.is_empty())
            .cloned()
    });
    let raw_name = chosen
        .clone()
        .or_else(|| str_of(&root["name"]).filter(|v| !v.is_empty()))
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let name = normalize_project_name(&raw_name);
    if name.is_empty() {
        return Err(bad(format!(
            "the project name {raw_name:?} has no usable character"
        ))
        .hint("set `name:` in the file or COMPOSE_PROJECT_NAME"));
    }
    let deployment = if opts.root.is_some() {
        engine::Deployment::unknown(&name) // another host's disk: our engine knows nothing of it
    } else {
        opts.engine.deployment(&file, &dir, &name, chosen.is_some())
    };
    let name = deployment.name.clone();
    let mut notes: Vec<Note> = deployment.note.clone().into_iter().collect();

    // Top-level volumes, secrets and configs.
    let mut volumes: BTreeMap<String, VolumeDecl> = BTreeMap::new();
    for (k, v) in hash_iter(&root["volumes"]) {
        let key = str_of(k).unwrap_or_default();
        let external = match &v["external"] {
            Yaml::Boolean(b) => *b,
            Yaml::Hash(_) => true,
            _ => false,
        };
        let docker_name = str_of(&v["name"])
            .or_else(|| str_of(&v["external"]["name"]))
            .unwrap_or_else(|| {
                if external {
                    key.clone()
                } else {
                    format!("{name}_{key}")
                }
            });
        let opts_o = str_of(&v["driver_opts"]["o"]).unwrap_or_default();
        let device = str_of(&v["driver_opts"]["device"])
            .filter(|_| {
                opts_o
                    .split(',')
                    .any(|o| matches!(o.trim(), "bind" | "rbind"))
            })
            .map(|d| host_path(&d));
        volumes.insert(
            key,
            VolumeDecl {
                docker_name,
                device,
            },
        );
    }
    let files_of = |section: &str| -> BTreeMap<String, Option<PathBuf>> {
        hash_iter(&root[section])
            .map(|(k, v)| {
                (
                    str_of(k).unwrap_or_default(),
                    str_of(&v["file"]).map(|f| host_path(&f)),
                )
            })
            .collect()
    };
    let secrets = files_of("secrets");
    let configs = files_of("configs");

    // Services.
    let engine = opts.engine.clone();
    let mut services = Vec::new();
    let mut volumes_from: Vec<(usize, String)> = Vec::new();
    for (k, def) in hash_iter(service_defs) {
        let svc_name = str_of(k).unwrap_or_default();
        if svc_name.starts_with("x-") {
            continue;
        }
        let at = |what: &str| format!("service {svc_name}: {what}");
        let image = str_of(&def["image"]).unwrap_or_default();
        let build = Build::parse(&def["build"], &host_path);
        let base = build.as_ref().map(|b| b.base_image(&vars));

        // Environment: env_files in order, then `environment:`.
        let mut env = BTreeMap::new();
        let mut env_files = Vec::new();
        for (path, required) in env_file_entries(&def["env_file"]) {
            let p = host_path(&path);
            match std::fs::read_to_string(&p) {
                Ok(t) => {
                    let parsed = interp::parse_dotenv(&t, &vars, &mut warnings)
                        .map_err(|e| Error::usage(format!("{}: {e}", p.display())))?;
                    env.extend(parsed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if required {
                        warnings
                            .insert(at(&format!("its env_file {} does not exist", p.display())));
                    }
                }
                Err(e) => return Err(Error::io("read", &p, &e)),
            }
            env_files.push(p);
        }
        match &def["environment"] {
            Yaml::Hash(h) => {
                for (k, v) in h {
                    let Some(key) = str_of(k) else { continue };
                    match v {
                        Yaml::Null => {
                            if let Some(val) = vars.get(&key) {
                                env.insert(key, val.clone());
                            }
                        }
                        v => {
                            env.insert(key, str_of(v).unwrap_or_default());
                        }
                    }
                }
            }
            Yaml::Array(a) => {
                for item in a {
                    let Some(item) = str_of(item) else { continue };
                    match item.split_once('=') {
                        Some((k, v)) => {
                            env.insert(k.to_string(), v.to_string());
                        }
                        None => {
                            if let Some(val) = vars.get(&item) {
                                env.insert(item, val.clone());
                            }
                        }
                    }
                }
            }
            _ => {}
        }

        // Mounts.
        let mut list = Vec::new();
        for v in array_or_one(&def["volumes"]) {
            let prefix = if legacy { None } else { Some(name.as_str()) };
            let m = parse_volume(v, &volumes, prefix, &host_path).map_err(|e| bad(at(&e)))?;
            if let Source::Volume { name: vname, .. } = &m.source {
                if !legacy && !volumes.contains_key(vname) {
                    warnings.insert(at(&format!(
                        "the volume {vname} is not declared under the top-level `volumes:`"
                    )));
                }
            }
            list.push(m);
        }
        for t in array_or_one(&def["tmpfs"]) {
            if let Some(t) = str_of(t) {
                let target = t.split(':').next().unwrap_or("");
                list.push(Mount {
                    target: mounts::clean(Path::new(target)),
                    source: Source::Tmpfs,
                    read_only: false,
                });
            }
        }
        for (section, what, default_dir, table) in [
            ("secrets", "secret", "/run/secrets", &secrets),
            ("configs", "config", "/", &configs),
        ] {
            for entry in array_or_one(&def[section]) {
                let (src, target) = match entry {
                    Yaml::Hash(_) => (
                        str_of(&entry["source"]).unwrap_or_default(),
                        str_of(&entry["target"]),
                    ),
                    other => (str_of(other).unwrap_or_default(), None),
                };
                let target = target.unwrap_or_else(|| src.clone());
                let target = Path::new(default_dir).join(target); // an absolute target wins
                list.push(Mount {
                    target: mounts::clean(&target),
                    source: Source::File {
                        what,
                        name: src.clone(),
                        path: table.get(&src).cloned().flatten(),
                    },
                    read_only: true,
                });
            }
        }
        for vf in array_or_one(&def["volumes_from"]) {
            if let Some(vf) = str_of(vf) {
                if vf.starts_with("container:") {
                    warnings.insert(at(&format!("volumes_from {vf} is not followed")));
                } else {
                    let other = vf.split(':').next().unwrap_or("").to_string();
                    volumes_from.push((services.len(), other));
                }
            }
        }

        // The app: from the image the service is built from, else its image. An image
        // pinned by digest alone does not say whether it is rootless, the mounts do.
        let (reference, mut app) = match &base {
            Some(Ok(b)) if app_of_image(b).is_some() => (b.clone(), app_of_image(b)),
            _ => (image.clone(), app_of_image(&image)),
        };
        if app.is_none() {
            notes.extend(classify_failure(
                &svc_name,
                &image,
                build.as_ref(),
                base.as_ref(),
            ));
        }
        if let (Some((f @ (Forge::Gitea | Forge::Forgejo), _)), Ok(r)) =
            (app, ImageRef::parse(&reference))
        {
            let under = |p: &str| list.iter().any(|m: &Mount| m.target.starts_with(p));
            if r.tag.is_none()
                && r.digest.is_some()
                && (under("/var/lib/gitea") || under("/etc/gitea"))
                && !under("/data")
            {
                app = Some((f, Layout::DockerRootless));
            }
        }
        if app.is_some() {
            for p in env_files.iter().filter(|p| p.is_file()) {
                extra_files.push(p.clone());
            }
            for m in &list {
                if let Source::File { path: Some(p), .. } = &m.source {
                    if p.is_file() {
                        extra_files.push(p.clone());
                    }
                }
            }
        }
        let container = deployment.container_of(&svc_name);
        services.push(Service {
            mounts: Mounts {
                service: svc_name.clone(),
                list,
                image_volumes: app
                    .map(|a| image_volumes(a, image_version(&reference).as_ref()))
                    .unwrap_or(&[]),
                fallback_base: String::new(),
                engine: engine.clone(),
                container: container.as_ref().map(|c| c.id.clone()),
                found_in_container: Default::default(),
            },
            name: svc_name,
            image,
            built_from: base.and_then(Result::ok),
            build,
            app,
            env,
            env_files,
            container_name: str_of(&def["container_name"]),
            container,
        });
    }
    for (i, other) in volumes_from {
        match services.iter().position(|s| s.name == other) {
            Some(j) if j != i => {
                let copied = services[j].mounts.list.clone();
                services[i].mounts.list.extend(copied);
            }
            _ => {
                warnings.insert(format!(
                    "service {}: volumes_from {other}: no such service",
                    services[i].name
                ));
            }
        }
    }

    // Where new binds go when a service has no bind to imitate: the folder other
    // services keep theirs in (`./volumes/<service>/...` → `./volumes/<this>`).
    let sibling_root = services.iter().find_map(|s| {
        s.mounts.list.iter().find_map(|m| match &m.source {
            Source::Bind { written, .. } => {
                let parent = mounts::written_parent(written)?;
                let (root, last) = parent.rsplit_once('/')?;
                // `/etc/gitea/app.ini` of a service `gitea` is no `/etc/<service>` rule.
                let system = root.starts_with('/') && mounts::is_system_folder(Path::new(root));
                (last == s.name && !system).then(|| root.to_string())
            }
            _ => None,
        })
    });
    for s in &mut services {
        s.mounts.fallback_base = format!("{}/{}", sibling_root.as_deref().unwrap_or("."), s.name);
    }

    let mut seen = BTreeSet::new();
    extra_files.retain(|p| seen.insert(p.clone()));
    Ok(Project {
        file,
        dir,
        name,
        name_from_engine: deployment.from_engine,
        engine_answered: deployment.answered,
        legacy,
        services,
        extra_files,
        warnings: warnings.into_iter().collect(),
        notes,
    })
}

/// compose 1.x's rule for a version 1 file: no `version:`, and none of `services:`,
/// `networks:`, `volumes:` (with any of them it is a later format).
fn is_legacy(top: &yaml_rust2::yaml::Hash) -> bool {
    let set = |k: &str| top.get(&s(k)).is_some_and(|v| !matches!(v, Yaml::Null));
    !set("version") && !set("services") && !set("networks") && !set("volumes") && !top.is_empty()
}

/// Why a service that is no forge forgekeep knows may still be one: a warning when its
/// image, build context or base image names a forge; a note for a CI runner, or a built
/// image whose base cannot be read. `None`: nothing suggests a forge.
fn classify_failure(
    service: &str,
    image: &str,
    build: Option<&Build>,
    base: Option<&std::result::Result<String, String>>,
) -> Option<Note> {
    let mut names = vec![image.to_string()];
    if let Some(b) = build {
        names.push(b.context.clone());
    }
    if let Some(Ok(base)) = base {
        names.push(base.clone());
    }
    let shown = names
        .iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let unreadable = match base {
        Some(Err(why)) => format!(" ({why})"),
        _ => String::new(),
    };
    let note = |severity, message, fix: &str| {
        Some(Note {
            severity,
            message,
            fix: fix.to_string(),
        })
    };
    // An image docker would refuse names no image: said, never read as another one.
    if let Some(why) = image::reference_problem(image) {
        return note(
            Severity::Warning,
            format!("service {service}: {why}, so its secrets were not looked for"),
            "write the image as docker does, name[:tag][@digest], e.g. gitea/gitea:1.23-rootless",
        );
    }
    match names.iter().find_map(|n| build::forge_word(n)) {
        Some(_) if names.iter().any(|n| build::is_runner(n)) => note(
            Severity::Info,
            format!("service {service} ({shown}) is a CI runner: forgekeep keeps no runner state"),
            "nothing to keep: register the runner again after a restore",
        ),
        Some(word) => note(
            Severity::Warning,
            format!(
                "service {service} ({shown}) looks like {word}, but forgekeep cannot tell which \
                 forge image it runs{unreadable}: its secrets are NOT kept"
            ),
            "if it runs a forge, build it FROM the forge's official image (forgekeep then knows \
             its layout), or name its configuration and data folders as PATHs",
        ),
        None if !unreadable.is_empty() => note(
            Severity::Info,
            format!("service {service}: forgekeep cannot tell what it runs{unreadable}"),
            "nothing to do unless it runs a forge",
        ),
        None => None,
    }
}

/// Compose's project-name normalization: lowercase, keep `[a-z0-9_-]`, no leading `_`/`-`.
pub fn normalize_project_name(raw: &str) -> String {
    let kept: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// A host path as compose resolves it: `~` is `$HOME`, relative is relative to the file.
fn host_path(written: &str, dir: &Path, home: Option<&Path>) -> PathBuf {
    let p = if written == "~" {
        home.map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("~"))
    } else if let (Some(rest), Some(h)) = (written.strip_prefix("~/"), home) {
        h.join(rest)
    } else {
        dir.join(written) // an absolute `written` replaces `dir`
    };
    mounts::clean(&p)
}

/// One entry of a service's `volumes:`, short or long syntax. An undeclared named volume
/// is `<project>_<name>`, or just `<name>` in a version 1 file (`project` is `None`).
fn parse_volume(
    v: &Yaml,
    volumes: &BTreeMap<String, VolumeDecl>,
    project: Option<&str>,
    host_path: &dyn Fn(&str) -> PathBuf,
) -> std::result::Result<Mount, String> {
    let named = |n: &str, subpath: Option<String>| {
        let decl = volumes.get(n);
        let undeclared = || match project {
            Some(p) => format!("{p}_{n}"),
            None => n.to_string(),
        };
        Source::Volume {
            name: n.to_string(),
            docker_name: decl.map_or_else(undeclared, |d| d.docker_name.clone()),
            device: decl.and_then(|d| d.device.clone()),
            subpath,
        }
    };
    let is_path = |s: &str| s.starts_with('.') || s.starts_with('/') || s.starts_with('~');
    match v {
        Yaml::Hash(_) => {
            let kind = str_of(&v["type"]).unwrap_or_else(|| "volume".into());
            let target = str_of(&v["target"]).ok_or("a volume without `target`")?;
            let source = str_of(&v["source"]).filter(|s| !s.is_empty());
            let read_only = matches!(v["read_only"], Yaml::Boolean(true));
            let source = match (kind.as_str(), source) {
                ("bind", Some(src)) => Source::Bind {
                    path: host_path(&src),
                    written: src,
                },
                ("bind", None) => {
                    return Err(format!("the bind mount on {target} has no `source`"))
                }
                ("volume", Some(src)) => {
                    let subpath = str_of(&v["volume"]["subpath"]);
                    // docker refuses a subpath that leaves the volume; so do we (it would
                    // point forgekeep at a folder outside it).
                    if subpath.as_deref().is_some_and(|p| {
                        Path::new(p)
                            .components()
                            .any(|c| matches!(c, std::path::Component::ParentDir))
                    }) {
                        return Err(format!("volume subpath {subpath:?} leaves the volume"));
                    }
                    named(&src, subpath)
                }
                ("volume", None) => Source::Anonymous,
                ("tmpfs", _) => Source::Tmpfs,
                (other, _) => Source::Other {
                    kind: other.to_string(),
                },
            };
            Ok(Mount {
                target: mounts::clean(Path::new(&target)),
                source,
                read_only,
            })
        }
        other => {
            let spec = str_of(other).ok_or("a volume that is neither a string nor a mapping")?;
            let parts: Vec<&str> = spec.split(':').collect();
            let (src, target, mode) = match parts.as_slice() {
                [t] => (None, *t, ""),
                [s, t] => (Some(*s), *t, ""),
                [s, t, m] => (Some(*s), *t, *m),
                _ => return Err(format!("cannot read the volume {spec:?}")),
            };
            if target.is_empty() {
                return Err(format!("the volume {spec:?} has no target"));
            }
            // What compose itself refuses: an empty source before the colon, a relative
            // container path.
            if src == Some("") {
                return Err(format!("the volume {spec:?} has an empty source"));
            }
            if !target.starts_with('/') {
                return Err(format!(
                    "the volume {spec:?} has a relative container path {target:?}"
                ));
            }
            let read_only = mode.split(',').any(|m| m == "ro");
            let source = match src {
                None => Source::Anonymous,
                Some(s) if is_path(s) => Source::Bind {
                    path: host_path(s),
                    written: s.to_string(),
                },
                Some(s) => named(s, None),
            };
            Ok(Mount {
                target: mounts::clean(Path::new(target)),
                source,
                read_only,
            })
        }
    }
}

/// `env_file:` as a string, a list of strings, or a list of `{path, required}`.
fn env_file_entries(v: &Yaml) -> Vec<(String, bool)> {
    array_or_one(v)
        .into_iter()
        .filter_map(|e| match e {
            Yaml::Hash(_) => Some((
                str_of(&e["path"])?,
                !matches!(e["required"], Yaml::Boolean(false)),
            )),
            other => Some((str_of(other)?, true)),
        })
        .collect()
}

fn s(key: &str) -> Yaml {
    Yaml::String(key.to_string())
}

/// A scalar's text (`true`, `8080` included); `None` for null, lists and mappings.
pub fn str_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A mapping's entries; nothing for anything else.
pub fn hash_iter(y: &Yaml) -> Box<dyn Iterator<Item = (&Yaml, &Yaml)> + '_> {
    match y {
        Yaml::Hash(h) => Box::new(h.iter()),
        _ => Box::new(std::iter::empty()),
    }
}

/// A list's items, or a lone scalar/mapping as a list of one; nothing for null.
pub fn array_or_one(y: &Yaml) -> Vec<&Yaml> {
    match y {
        Yaml::Array(a) => a.iter().collect(),
        Yaml::Null | Yaml::BadValue => Vec::new(),
        other => vec![other],
    }
}

/// Applies YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`): the mapping's own keys win,
/// then the merged mappings in order. yaml-rust2 resolves the anchors but not `<<`.
fn merge_keys(y: Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let merge_key = s("<<");
            let mut out = yaml_rust2::yaml::Hash::new();
            let mut merged = Vec::new();
            for (k, v) in h {
                if k == merge_key {
                    match v {
                        Yaml::Array(a) => merged.extend(a),
                        v => merged.push(v),
                    }
                } else {
                    out.insert(k, merge_keys(v));
                }
            }
            for m in merged {
                if let Yaml::Hash(mh) = merge_keys(m) {
                    for (k, v) in mh {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(a) => Yaml::Array(a.into_iter().map(merge_keys).collect()),
        other => other,
    }
}

/// Interpolates every string value (not the keys), as compose does.
fn interpolate_tree(
    y: Yaml,
    vars: &Vars,
    warnings: &mut BTreeSet<String>,
    at: &str,
) -> std::result::Result<Yaml, String> {
    Ok(match y {
        Yaml::String(text) => Yaml::String(
            interp::interpolate(&text, vars, warnings).map_err(|e| format!("{at}: {e}"))?,
        ),
        Yaml::Hash(h) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            for (k, v) in h {
                let key = str_of(&k).unwrap_or_default();
                let here = if at.is_empty() {
                    key
                } else {
                    format!("{at}.{key}")
                };
                let v = interpolate_tree(v, vars, warnings, &here)?;
                out.insert(k, v);
            }
            Yaml::Hash(out)
        }
        Yaml::Array(a) => Yaml::Array(
            a.into_iter()
                .enumerate()
                .map(|(i, v)| interpolate_tree(v, vars, warnings, &format!("{at}[{i}]")))
                .collect::<std::result::Result<_, _>>()?,
        ),
        other => other,
    })
}

#[cfg(test)]
mod tests;
