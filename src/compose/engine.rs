//! What the Docker Engine knows about a compose deployment that its file does not say:
//! where a named volume is, which containers a compose file runs and under which project
//! name, and where a container keeps what it wrote outside persistent storage.
//!
//! `docker-compose -p NAME` renames every volume of a stack; an anonymous volume has a
//! random name; a key the forge wrote into its container's own layer exists only under
//! the engine's folders. The engine knows all three. It is asked through the `docker`
//! CLI (the same commands in every client since compose v1's days), each question once,
//! each answer bounded in time. When it cannot answer (no docker, no engine, no permission
//! on its socket) it is not asked again, and forgekeep works from the file alone.

use crate::findings::Severity;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The compose labels every compose version puts on the containers it makes.
const LABEL_PROJECT: &str = "com.docker.compose.project";
const LABEL_SERVICE: &str = "com.docker.compose.service";
const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
const LABEL_ONE_OFF: &str = "com.docker.compose.oneoff";

/// A docker engine, asked through a docker-compatible client.
pub struct Engine {
    program: Option<PathBuf>,
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    volumes: HashMap<String, Result<PathBuf, String>>,
    containers: Option<Result<Arc<Vec<Container>>, String>>,
    storage: HashMap<String, Result<Arc<Storage>, String>>,
    /// Why docker cannot answer, once that is known.
    down: Option<String>,
}

/// A container compose made (`docker compose run` one-offs left out), from its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub running: bool,
    pub project: String,
    pub service: String,
    /// The compose file's folder (absolute, as compose saw it).
    #[serde(skip)]
    pub working_dir: Option<PathBuf>,
    /// The compose files as given to compose: absolute (v2), or relative to the folder
    /// compose ran in (v1 writes `docker-compose.yml` when it found the file itself).
    #[serde(skip)]
    pub config_files: Vec<String>,
}

impl Container {
    /// Whether compose made this container from `file` (in `dir`).
    pub fn from_file(&self, file: &Path, dir: &Path) -> bool {
        let same_dir = self
            .working_dir
            .as_deref()
            .is_some_and(|w| same_path(w, dir));
        if !same_dir {
            return false;
        }
        self.config_files.is_empty()
            || self.config_files.iter().any(|f| {
                let f = Path::new(f);
                if f.is_absolute() {
                    same_path(f, file)
                } else {
                    same_path(&dir.join(f), file) || f.file_name() == file.file_name()
                }
            })
    }
}

/// Equal as written (cleaned), or as the file system resolves them.
fn same_path(a: &Path, b: &Path) -> bool {
    super::mounts::clean(a) == super::mounts::clean(b)
        || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Where a container's writes go on this host.
#[derive(Debug, Clone, Default)]
pub struct Storage {
    /// (container path, host folder) of its volumes, named and anonymous; binds too.
    pub mounts: Vec<(PathBuf, PathBuf)>,
    /// Container paths of its tmpfs mounts (on no disk at all).
    pub tmpfs: Vec<PathBuf>,
    /// Its own writable layer (overlay2's upper folder): what it wrote outside mounts.
    pub layer: Option<PathBuf>,
}

impl Storage {
    /// The host path of a container path, through the deepest mount holding it, or
    /// the container's layer when no mount does. `None` when it is on a tmpfs, the
    /// engine keeps no layer folder, or a folder on the way is a symlink: the container
    /// writes there, and a link it made must not lead forgekeep (root, on the host) to
    /// the host's own files.
    pub fn host_path(&self, path: &Path) -> Option<PathBuf> {
        let (base, host) = self.unchecked_host_path(path)?;
        if crate::collect::links::untrusted_link(&host, Some(&base)).is_some() {
            return None;
        }
        Some(host)
    }

    /// (the host folder it is under, the host path) of a container path.
    pub fn unchecked_host_path(&self, path: &Path) -> Option<(PathBuf, PathBuf)> {
        let deepest = |targets: &mut dyn Iterator<Item = &PathBuf>| {
            targets
                .filter(|t| path.starts_with(t))
                .map(|t| t.components().count())
                .max()
        };
        let in_mount = deepest(&mut self.mounts.iter().map(|(t, _)| t));
        let in_tmpfs = deepest(&mut self.tmpfs.iter());
        if in_tmpfs.is_some() && in_tmpfs >= in_mount {
            return None;
        }
        if in_mount.is_some() {
            let (target, source) = self
                .mounts
                .iter()
                .filter(|(t, _)| path.starts_with(t))
                .max_by_key(|(t, _)| t.components().count())?;
            let rest = path.strip_prefix(target).ok()?;
            return Some((source.clone(), source.join(rest)));
        }
        let layer = self.layer.as_ref()?;
        Some((
            layer.clone(),
            layer.join(path.strip_prefix("/").unwrap_or(path)),
        ))
    }
}

impl Engine {
    /// Asks the `docker` found on `PATH`, waiting at most 5 seconds per question.
    pub fn docker() -> Engine {
        let program = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("docker"))
                .find(|p| p.is_file())
        });
        Engine::with_program(program, Duration::from_secs(5))
    }

    /// Never asks anyone: every named volume is unknown, no container is known.
    pub fn none() -> Engine {
        Engine::with_program(None, Duration::from_secs(5))
    }

    /// Asks `program` (a docker-compatible client), waiting at most `timeout`.
    pub fn with_program(program: Option<PathBuf>, timeout: Duration) -> Engine {
        Engine {
            program,
            timeout,
            state: Mutex::new(State::default()),
        }
    }

    /// Runs `docker args`, unless docker is already known not to answer; a docker that
    /// cannot be run or does not answer in time is not asked again.
    fn ask(&self, state: &mut State, args: &[&str]) -> Result<String, RunError> {
        let Some(program) = &self.program else {
            return Err(RunError::Unavailable("no docker command here".into()));
        };
        if let Some(down) = &state.down {
            return Err(RunError::Unavailable(down.clone()));
        }
        let answer = run_with_timeout(program, args, self.timeout);
        if let Err(RunError::Unavailable(why)) = &answer {
            state.down = Some(why.clone());
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host folder of the volume docker calls `name`, or why it is unknown.
    pub fn mountpoint(&self, name: &str) -> Result<PathBuf, String> {
        let unknown = |detail: &str| {
            format!(
                "named volume {name}: its host folder is unknown without docker \
                 (docker volume inspect {name}: {detail})"
            )
        };
        let mut state = self.lock();
        if let Some(done) = state.volumes.get(name) {
            return done.clone();
        }
        let answer = match self.ask(
            &mut state,
            &["volume", "inspect", "--format", "{{.Mountpoint}}", name],
        ) {
            Ok(out) => match out.lines().next().map(str::trim) {
                Some(line) if !line.is_empty() => Ok(PathBuf::from(line)),
                _ => Err(unknown("no Mountpoint in its answer")),
            },
            Err(RunError::Failed(msg)) if msg.to_ascii_lowercase().contains("no such volume") => {
                Err(format!(
                    "named volume {name} does not exist: docker has no volume of that name \
                     (the stack was never started here, or under another project name: \
                     for a stack started with `docker-compose -p NAME`, run forgekeep with \
                     COMPOSE_PROJECT_NAME=NAME; `docker volume ls` lists the volumes)"
                ))
            }
            Err(RunError::Failed(msg)) => {
                // No engine, no permission on its socket: the next question fails alike.
                state.down = Some(msg.clone());
                Err(unknown(&msg))
            }
            Err(RunError::Unavailable(msg)) => Err(unknown(&msg)),
        };
        state.volumes.insert(name.to_string(), answer.clone());
        answer
    }

    /// Every container compose made on this engine (running or not), or why the engine
    /// cannot say.
    pub fn containers(&self) -> Result<Arc<Vec<Container>>, String> {
        let mut state = self.lock();
        if let Some(done) = &state.containers {
            return done.clone();
        }
        let format = [
            "{{.ID}}".to_string(),
            "{{.Names}}".into(),
            "{{.State}}".into(),
            label(LABEL_PROJECT),
            label(LABEL_SERVICE),
            label(LABEL_WORKING_DIR),
            label(LABEL_CONFIG_FILES),
            label(LABEL_ONE_OFF),
        ]
        .join("\t");
        let answer = match self.ask(
            &mut state,
            &[
                "ps",
                "--all",
                "--no-trunc",
                "--filter",
                &format!("label={LABEL_PROJECT}"),
                "--format",
                &format,
            ],
        ) {
            Ok(out) => Ok(Arc::new(out.lines().filter_map(parse_ps_line).collect())),
            Err(RunError::Failed(msg)) => {
                state.down = Some(msg.clone());
                Err(msg)
            }
            Err(RunError::Unavailable(msg)) => Err(msg),
        };
        state.containers = Some(answer.clone());
        answer
    }

    /// Where the container `id` keeps its volumes and its own layer on this host.
    pub fn storage(&self, id: &str) -> Result<Arc<Storage>, String> {
        let mut state = self.lock();
        if let Some(done) = state.storage.get(id) {
            return done.clone();
        }
        let answer = match self.ask(&mut state, &["container", "inspect", id]) {
            Ok(out) => parse_inspect(&out).map(Arc::new),
            Err(RunError::Failed(msg)) | Err(RunError::Unavailable(msg)) => Err(msg),
        };
        state.storage.insert(id.to_string(), answer.clone());
        answer
    }
}

/// What the engine says about the containers of one compose file.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// The project name to use.
    pub name: String,
    /// It is the engine's (the file's containers run under it), not the computed one.
    pub from_engine: bool,
    /// The engine listed its containers.
    pub answered: bool,
    /// The file's containers in that project.
    pub containers: Vec<Container>,
    /// What is worth saying: the name is the engine's (a note), the user's name is not
    /// the containers' (a note), or the file runs as several projects (a warning: the
    /// backup may miss the deployment's volumes).
    pub note: Option<super::Note>,
}

impl Deployment {
    /// Nothing is known: the computed name stands.
    pub fn unknown(name: &str) -> Deployment {
        Deployment {
            name: name.to_string(),
            ..Deployment::default()
        }
    }

    /// The service's container: a running one first.
    pub fn container_of(&self, service: &str) -> Option<Container> {
        self.containers
            .iter()
            .filter(|c| c.service == service)
            .max_by_key(|c| c.running)
            .cloned()
    }
}

impl Engine {
    /// The compose project `file` runs as on this engine. `computed` is the name compose
    /// would give it now (COMPOSE_PROJECT_NAME, `name:`, the folder); `chosen` says the
    /// user named it (-p or COMPOSE_PROJECT_NAME), which the engine never overrides.
    /// Otherwise, when every container made from this file runs under one other name
    /// (`docker-compose -p NAME up`), that name is the deployment's: its volumes are
    /// `NAME_…`.
    pub fn deployment(&self, file: &Path, dir: &Path, computed: &str, chosen: bool) -> Deployment {
        let Ok(all) = self.containers() else {
            return Deployment::unknown(computed);
        };
        let mine: Vec<&Container> = all.iter().filter(|c| c.from_file(file, dir)).collect();
        let projects: std::collections::BTreeSet<&str> =
            mine.iter().map(|c| c.project.as_str()).collect();
        let listed = projects.iter().copied().collect::<Vec<_>>().join(", ");
        let mut d = Deployment {
            answered: true,
            ..Deployment::unknown(computed)
        };
        let note = |severity, message: String, fix: &str| {
            Some(super::Note {
                severity,
                message,
                fix: fix.to_string(),
            })
        };
        if projects.is_empty() || projects.contains(computed) {
            // As computed.
        } else if chosen {
            d.note = note(
                Severity::Info,
                format!(
                    "COMPOSE_PROJECT_NAME names project {computed}, but the containers of this \
                     file run as {listed}: forgekeep follows the name given"
                ),
                "unset COMPOSE_PROJECT_NAME to follow the containers",
            );
        } else if projects.len() == 1 {
            d.name = listed.clone();
            d.from_engine = true;
            d.note = note(
                Severity::Info,
                format!(
                    "the containers of this file run as compose project {listed} (started with \
                     `docker-compose -p {listed}` or COMPOSE_PROJECT_NAME={listed}), not \
                     {computed}: its named volumes are {listed}_…"
                ),
                "nothing to do: forgekeep follows the containers (COMPOSE_PROJECT_NAME chooses \
                 another project)",
            );
        } else {
            d.note = note(
                Severity::Warning,
                format!(
                    "this file runs as several compose projects ({listed}), none of them \
                     {computed}: forgekeep cannot tell which one to back up"
                ),
                "set COMPOSE_PROJECT_NAME to the project to back up (one run each; `docker ps` \
                 shows each container's project)",
            );
        }
        d.containers = mine
            .into_iter()
            .filter(|c| c.project == d.name)
            .cloned()
            .collect();
        d
    }
}

fn label(name: &str) -> String {
    format!("{{{{.Label \"{name}\"}}}}")
}

/// One line of `docker ps --format` with the fields [`Engine::containers`] asks for.
fn parse_ps_line(line: &str) -> Option<Container> {
    let f: Vec<&str> = line.split('\t').collect();
    let [id, names, state, project, service, working_dir, config_files, one_off] = f[..] else {
        return None;
    };
    if project.is_empty() || service.is_empty() || one_off.eq_ignore_ascii_case("true") {
        return None;
    }
    Some(Container {
        id: id.to_string(),
        // Old engines list links as extra names: the first is the container's own.
        name: names.split(',').next().unwrap_or(names).to_string(),
        running: state == "running",
        project: project.to_string(),
        service: service.to_string(),
        working_dir: (!working_dir.is_empty()).then(|| PathBuf::from(working_dir)),
        config_files: config_files
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The mounts and the layer folder of `docker container inspect ID`.
fn parse_inspect(out: &str) -> Result<Storage, String> {
    let v: serde_json::Value = serde_json::from_str(out)
        .map_err(|e| format!("docker container inspect gave no JSON: {e}"))?;
    let c = &v[0];
    let mut storage = Storage::default();
    for m in c["Mounts"].as_array().into_iter().flatten() {
        let (Some(kind), Some(dest)) = (m["Type"].as_str(), m["Destination"].as_str()) else {
            continue;
        };
        match (kind, m["Source"].as_str()) {
            ("tmpfs", _) => storage.tmpfs.push(PathBuf::from(dest)),
            ("volume" | "bind", Some(src)) if !src.is_empty() => storage
                .mounts
                .push((PathBuf::from(dest), PathBuf::from(src))),
            _ => {}
        }
    }
    if c["GraphDriver"]["Name"] == "overlay2" {
        storage.layer = c["GraphDriver"]["Data"]["UpperDir"]
            .as_str()
            .map(PathBuf::from);
    }
    Ok(storage)
}

enum RunError {
    /// The command ran and failed; its first line of stderr.
    Failed(String),
    /// It could not be run or did not answer in time.
    Unavailable(String),
}

/// Runs `program args`, returns its stdout; kills it after `timeout`.
fn run_with_timeout(program: &Path, args: &[&str], timeout: Duration) -> Result<String, RunError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RunError::Unavailable(format!(
                "cannot run {}: {}",
                program.display(),
                crate::error::plain_io(&e)
            ))
        })?;
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(1 << 20).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunError::Unavailable(format!(
                    "docker did not answer within {} s",
                    timeout.as_secs()
                )));
            }
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("it failed without a message");
        let first: String = first.chars().take(200).collect();
        Err(RunError::Failed(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_docker() {
        let e = Engine::none();
        let why = e.mountpoint("p_v").unwrap_err();
        assert!(
            why.starts_with("named volume p_v: its host folder is unknown without docker (docker volume inspect p_v"),
            "{why}"
        );
        assert!(e.containers().is_err());
    }

    #[test]
    fn ps_lines() {
        let c = parse_ps_line(
            "abc\tstack_gitea_1\trunning\tstack\tgitea\t/srv/stack\tdocker-compose.yml\tFalse",
        )
        .unwrap();
        assert_eq!((c.name.as_str(), c.running), ("stack_gitea_1", true));
        assert!(c.from_file(
            Path::new("/srv/stack/docker-compose.yml"),
            Path::new("/srv/stack")
        ));
        assert!(!c.from_file(
            Path::new("/srv/other/docker-compose.yml"),
            Path::new("/srv/other")
        ));
        assert!(!c.from_file(
            Path::new("/srv/stack/compose.prod.yml"),
            Path::new("/srv/stack")
        ));
        // `docker-compose run` one-offs are not the service's container.
        assert!(parse_ps_line("abc\tx\texited\tstack\tgitea\t/srv/stack\t\tTrue").is_none());
        // Not made by compose.
        assert!(parse_ps_line("abc\tx\trunning\t\t\t\t\t").is_none());
    }

    #[test]
    fn storage_paths() {
        let t = tempfile::TempDir::new().unwrap();
        let root = t.path().display().to_string();
        for d in [
            "volumes/0af3/_data/jwt",
            "git",
            "overlay2/77/diff/etc/woodpecker",
        ] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        let s = parse_inspect(
            &r#"[{"Mounts": [
                {"Type": "volume", "Name": "0af3", "Source": "ROOT/volumes/0af3/_data", "Destination": "/var/lib/gitea"},
                {"Type": "bind", "Source": "ROOT/git", "Destination": "/var/lib/gitea/git"},
                {"Type": "tmpfs", "Source": "", "Destination": "/var/lib/gitea/tmp"}],
              "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": "ROOT/overlay2/77/diff"}}}]"#
                .replace("ROOT", &root),
        )
        .unwrap();
        let at = |p: &str| s.host_path(Path::new(p));
        assert_eq!(
            at("/var/lib/gitea/jwt/private.pem"),
            Some(t.path().join("volumes/0af3/_data/jwt/private.pem"))
        );
        assert_eq!(at("/var/lib/gitea/git/x"), Some(t.path().join("git/x")));
        assert_eq!(at("/var/lib/gitea/tmp/x"), None);
        assert_eq!(
            at("/etc/woodpecker/agent.conf"),
            Some(t.path().join("overlay2/77/diff/etc/woodpecker/agent.conf"))
        );
        // A link the container made on the way leads nowhere (it would be the host's
        // /root for forgekeep); the last component may be one (it is archived as a link).
        std::os::unix::fs::symlink("/root", t.path().join("volumes/0af3/_data/ssh")).unwrap();
        assert_eq!(at("/var/lib/gitea/ssh/id_rsa"), None);
        assert_eq!(
            at("/var/lib/gitea/ssh"),
            Some(t.path().join("volumes/0af3/_data/ssh"))
        );
    }
}
