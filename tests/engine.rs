//! A real Docker Engine for the tests: whether one answers, small stand-in images of the
//! forges tagged with the official names, and compose stacks that clean up after
//! themselves.
//!
//! No image can be pulled (no registry, no network), so each stand-in is built here: a
//! root file system of Debian's static busybox, an `/etc/passwd` with the image's user and
//! an entrypoint that does what matters for backups the way the forge does it on first
//! start (its configuration and signing key, made only when missing, as the image's uid),
//! then stays up until stopped. `docker import` turns it into an image with the official
//! image's user and `VOLUME`s. Images are built once per test run; a lock file makes
//! parallel runs (other checkouts on the same engine) share them, and an image of that
//! name that is not one of ours (a real `gitea/gitea` someone pulled) is never replaced.
//!
//! Where no engine answers, a test prints one `SKIP` line and returns; with
//! `FORGEKEEP_REQUIRE_DOCKER=1` (set by `.ci/run` once it has an engine) that is a failure.

use crate::util::*;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The label that marks an image as forgekeep's stand-in; its value is the hash of what
/// the image is made of, so a changed entrypoint is rebuilt.
const LABEL: &str = "org.forgekeep.stand-in";

/// What every stand-in's busybox needs: the applets the entrypoints and tests call.
const APPLETS: &[&str] = &[
    "sh", "mkdir", "cat", "head", "base64", "tr", "mv", "cp", "sleep", "chown", "chmod", "stat",
    "id", "ls", "rm", "test", "[", "echo", "true",
];

/// One stand-in image.
struct StandIn {
    tags: &'static [&'static str],
    /// `USER` of the official image ("" for root).
    user: &'static str,
    /// Its `VOLUME`s: they become anonymous volumes when no mount covers them.
    volumes: &'static [&'static str],
    /// Folders in the image, with their owner: (path, uid).
    dirs: &'static [(&'static str, u32)],
    entrypoint: &'static str,
}

/// The lines every entrypoint starts with: stop at once on `docker stop` (a shell as
/// PID 1 ignores SIGTERM unless it traps it, and compose would wait 10 s), and a way to
/// make a new private key: random bytes in PEM armour (a new, different file is what
/// matters; busybox has no openssl).
const PRELUDE: &str = r#"#!/bin/sh
set -e
trap 'exit 0' TERM INT
new_key() { # PATH: a new key, only when there is none (as the forge does)
  [ -f "$1" ] && return 0
  mkdir -p "${1%/*}"
  umask 077
  { echo '-----BEGIN PRIVATE KEY-----'; head -c 1190 /dev/urandom | base64; echo '-----END PRIVATE KEY-----'; } > "$1.tmp"
  mv "$1.tmp" "$1"
}
stay_up() { echo "stand-in ready"; while :; do sleep 3600 & wait $!; done; }
"#;

/// gitea/gitea:*-rootless: runs as 1000:1000; the entrypoint writes /etc/gitea/app.ini
/// from its template when missing (docker/rootless/usr/local/bin/docker-setup.sh), Gitea
/// makes jwt/private.pem under APP_DATA_PATH (/var/lib/gitea) at start.
const GITEA_ROOTLESS: &str = r#"
if [ ! -f /etc/gitea/app.ini ]; then
  umask 027
  cat > /etc/gitea/app.ini <<EOF
APP_NAME = stand-in
RUN_USER = git
WORK_PATH = /var/lib/gitea
[server]
APP_DATA_PATH = /var/lib/gitea
START_SSH_SERVER = false
DISABLE_SSH = true
[database]
DB_TYPE = sqlite3
PATH = /var/lib/gitea/data/gitea.db
[security]
INSTALL_LOCK = true
SECRET_KEY = $(head -c 24 /dev/urandom | base64)
EOF
fi
new_key /var/lib/gitea/jwt/private.pem
stay_up
"#;

/// gitea/gitea:* (rootful): root in the container, files owned by USER_UID (1000) under
/// /data/gitea (docker/root/etc/s6/gitea/setup), a SQLite database at first start.
const GITEA_ROOTFUL: &str = r#"
uid=${USER_UID:-1000}
mkdir -p /data/gitea/conf
if [ ! -f /data/gitea/conf/app.ini ]; then
  umask 027
  cat > /data/gitea/conf/app.ini <<EOF
APP_NAME = stand-in
RUN_USER = git
WORK_PATH = /data/gitea
[server]
APP_DATA_PATH = /data/gitea
DISABLE_SSH = true
[database]
DB_TYPE = sqlite3
PATH = /data/gitea/gitea.db
[security]
INSTALL_LOCK = true
SECRET_KEY = $(head -c 24 /dev/urandom | base64)
EOF
fi
new_key /data/gitea/jwt/private.pem
[ -f /data/gitea/gitea.db ] || cp /usr/share/stand-in/blank.db /data/gitea/gitea.db
chown -R "$uid:$uid" /data/gitea
stay_up
"#;

/// woodpeckerci/woodpecker-server:v3: root, no VOLUME; its SQLite database at
/// /var/lib/woodpecker/woodpecker.sqlite, made at first start.
const WOODPECKER_SERVER: &str = r#"
mkdir -p /var/lib/woodpecker
[ -f /var/lib/woodpecker/woodpecker.sqlite ] || cp /usr/share/stand-in/blank.db /var/lib/woodpecker/woodpecker.sqlite
stay_up
"#;

/// woodpeckerci/woodpecker-agent:v3: root, no VOLUME; the agent ID file
/// /etc/woodpecker/agent.conf (`{"agent_id":N}`, 0644), which the real agent writes once
/// the server registered it (cmd/agent/core/config.go): here at first start.
const WOODPECKER_AGENT: &str = r#"
if [ ! -f /etc/woodpecker/agent.conf ]; then
  mkdir -p /etc/woodpecker
  echo '{"agent_id":1}' > /etc/woodpecker/agent.conf
fi
stay_up
"#;

const STAND_INS: &[StandIn] = &[
    StandIn {
        tags: &["gitea/gitea:1.22-rootless", "gitea/gitea:1.23-rootless"],
        user: "1000:1000",
        volumes: &["/var/lib/gitea", "/etc/gitea"],
        dirs: &[("var/lib/gitea", 1000), ("etc/gitea", 1000)],
        entrypoint: GITEA_ROOTLESS,
    },
    StandIn {
        tags: &["gitea/gitea:1.22"],
        user: "",
        volumes: &["/data"],
        dirs: &[("data", 0)],
        entrypoint: GITEA_ROOTFUL,
    },
    StandIn {
        tags: &["woodpeckerci/woodpecker-server:v3"],
        user: "",
        volumes: &[],
        dirs: &[],
        entrypoint: WOODPECKER_SERVER,
    },
    StandIn {
        tags: &["woodpeckerci/woodpecker-agent:v3"],
        user: "",
        volumes: &[],
        dirs: &[],
        entrypoint: WOODPECKER_AGENT,
    },
];

/// A docker engine that answers, a compose CLI, and the stand-in images.
pub struct Docker {
    /// The compose command: `docker-compose` (v1) or `docker compose` (v2).
    pub compose: Vec<String>,
}

/// The engine for test `name`, or `None` after one SKIP line when there is none to use.
pub fn docker(name: &str) -> Option<&'static Docker> {
    static READY: OnceLock<Result<Docker, String>> = OnceLock::new();
    match READY.get_or_init(prepare) {
        Ok(d) => Some(d),
        Err(why) => {
            skip(name, why);
            None
        }
    }
}

/// One line on the real stderr (libtest captures only `eprintln!`), or a failure when
/// the run requires an engine.
pub fn skip(name: &str, why: &str) {
    if std::env::var_os("FORGEKEEP_REQUIRE_DOCKER").is_some_and(|v| v == "1") {
        panic!("{name}: {why} (FORGEKEEP_REQUIRE_DOCKER=1 requires it)");
    }
    let _ = writeln!(std::io::stderr(), "SKIP {name}: {why}");
}

fn prepare() -> Result<Docker, String> {
    let info = bounded(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        30,
    );
    if !info.status.success() {
        return Err(format!(
            "no Docker Engine answers ({})",
            first_line(&info.stderr)
        ));
    }
    let compose = compose_cli().ok_or("no compose CLI (docker-compose or docker compose)")?;
    match build_images() {
        Ok(()) => Ok(Docker { compose }),
        Err(Unusable::Skip(why)) => Err(why),
        // An engine that answers but where the images cannot be made: a broken setup,
        // never a silent pass.
        Err(Unusable::Broken(why)) => panic!("stand-in images: {why}"),
    }
}

/// `docker-compose` when it runs, else the `docker compose` plugin.
pub fn compose_cli() -> Option<Vec<String>> {
    static CLI: OnceLock<Option<Vec<String>>> = OnceLock::new();
    CLI.get_or_init(|| {
        [vec!["docker-compose"], vec!["docker", "compose"]]
            .into_iter()
            .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
            .find(|cmd| {
                Command::new(&cmd[0])
                    .args(&cmd[1..])
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
    })
    .clone()
}

fn first_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .to_string()
}

/// Runs `c` under coreutils' `timeout`: a hung engine fails the test instead of hanging it.
pub fn bounded(c: &mut Command, secs: u32) -> Output {
    let mut t = Command::new("timeout");
    t.arg(secs.to_string())
        .arg(c.get_program())
        .args(c.get_args());
    if let Some(dir) = c.get_current_dir() {
        t.current_dir(dir);
    }
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    t.stdin(Stdio::null()).output().expect("run timeout")
}

/// `docker ARGS`, which must succeed; its stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let o = bounded(Command::new("docker").args(args), 120);
    assert!(o.status.success(), "docker {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

enum Unusable {
    /// Not ours to change (a real image of that name): the tests skip.
    Skip(String),
    /// Something that should work did not.
    Broken(String),
}

impl From<String> for Unusable {
    fn from(s: String) -> Unusable {
        Unusable::Broken(s)
    }
}

/// Builds (or finds) every stand-in image, under a lock shared with parallel test runs.
fn build_images() -> Result<(), Unusable> {
    let _held = image_lock()?;
    let busybox = std::fs::read("/bin/busybox")
        .map_err(|e| format!("no /bin/busybox ({e}): apt-get install busybox-static"))?;
    let blank_db = blank_sqlite()?;
    for image in STAND_INS {
        let hash = image.hash(&busybox);
        for tag in image.tags {
            let have = bounded(
                Command::new("docker").args([
                    "image",
                    "inspect",
                    "--format",
                    &format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"),
                    tag,
                ]),
                30,
            );
            let label = stdout(&have).trim().to_string();
            if have.status.success() && label != hash {
                if label.is_empty() || label == "<no value>" {
                    return Err(Unusable::Skip(format!(
                        "the engine has an image {tag} that is not forgekeep's stand-in: not replacing it"
                    )));
                }
            } else if have.status.success() {
                continue; // built by an earlier run, same content
            }
            image.import(tag, &hash, &busybox, &blank_db)?;
        }
    }
    // busybox must be the static one: the root file system has no C library.
    let o = bounded(
        Command::new("docker").args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/sh",
            STAND_INS[0].tags[0],
            "-c",
            "echo ok",
        ]),
        60,
    );
    if stdout(&o).trim() != "ok" {
        return Err(Unusable::Broken(format!(
            "the stand-in image does not run ({}): /bin/busybox must be Debian's busybox-static",
            first_line(&o.stderr)
        )));
    }
    Ok(())
}

/// An empty SQLite database with one table, for the stand-ins to copy at first start.
fn blank_sqlite() -> Result<Vec<u8>, String> {
    let dir = tempfile::TempDir::new().map_err(|e| e.to_string())?;
    let p = dir.path().join("blank.db");
    let c = rusqlite::Connection::open(&p).map_err(|e| e.to_string())?;
    c.execute_batch("CREATE TABLE stand_in(k TEXT); INSERT INTO stand_in VALUES ('first start');")
        .map_err(|e| e.to_string())?;
    drop(c);
    std::fs::read(&p).map_err(|e| e.to_string())
}

impl StandIn {
    fn hash(&self, busybox: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [self.user, PRELUDE, self.entrypoint] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for part in self.volumes.iter().chain(APPLETS) {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for (d, uid) in self.dirs {
            h.update(format!("{d}:{uid}\0").as_bytes());
        }
        h.update(busybox);
        let digest = h.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The root file system as a tar stream, owners and modes set in its headers.
    fn rootfs(&self, busybox: &[u8], blank_db: &[u8]) -> Vec<u8> {
        let mut fs = Rootfs::with_busybox(busybox, APPLETS);
        fs.dir("usr/share/stand-in", 0, 0o755);
        for (d, uid) in self.dirs {
            fs.dir(d, *uid, 0o755);
        }
        fs.file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\ngit:x:1000:1000:git:/var/lib/gitea/git:/bin/sh\n",
        );
        fs.file("etc/group", 0o644, b"root:x:0:\ngit:x:1000:\n");
        fs.file(
            "usr/local/bin/stand-in",
            0o755,
            format!("{PRELUDE}{}", self.entrypoint).as_bytes(),
        );
        fs.file("usr/share/stand-in/blank.db", 0o644, blank_db);
        fs.into_tar()
    }

    fn import(&self, tag: &str, hash: &str, busybox: &[u8], blank_db: &[u8]) -> Result<(), String> {
        let mut changes = vec![
            "ENV PATH=/bin:/usr/local/bin".to_string(),
            "ENTRYPOINT [\"/usr/local/bin/stand-in\"]".to_string(),
            format!("LABEL {LABEL}={hash}"),
        ];
        if !self.user.is_empty() {
            changes.push(format!("USER {}", self.user));
        }
        if !self.volumes.is_empty() {
            let list: Vec<String> = self.volumes.iter().map(|v| format!("\"{v}\"")).collect();
            changes.push(format!("VOLUME [{}]", list.join(", ")));
        }
        import(self.rootfs(busybox, blank_db), &changes, tag)
    }
}

/// A root file system being written as a tar stream: folders (each once, parents
/// first), files and links, with the owners and modes the image must have.
struct Rootfs {
    b: tar::Builder<Vec<u8>>,
    made: BTreeSet<String>,
}

impl Rootfs {
    /// The folders every image has, Debian's static busybox as /bin/busybox and the
    /// `applets` linked to it.
    fn with_busybox(busybox: &[u8], applets: &[&str]) -> Rootfs {
        let mut fs = Rootfs {
            b: tar::Builder::new(Vec::new()),
            made: BTreeSet::new(),
        };
        for d in ["bin", "etc", "usr/local/bin", "usr/share"] {
            fs.dir(d, 0, 0o755);
        }
        fs.dir("tmp", 0, 0o1777);
        fs.file("bin/busybox", 0o755, busybox);
        for applet in applets {
            fs.link(&format!("bin/{applet}"), "busybox");
        }
        fs
    }

    /// `path` and the folders above it (root's, 0755); `path` itself as given.
    fn dir(&mut self, path: &str, uid: u32, mode: u32) {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            self.one_dir(&parts[..i].join("/"), 0, 0o755);
        }
        self.one_dir(path, uid, mode);
    }

    fn one_dir(&mut self, path: &str, uid: u32, mode: u32) {
        if !self.made.insert(path.to_string()) {
            return; // the engine refuses a tar with a path twice
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(uid.into());
        h.set_gid(uid.into());
        h.set_size(0);
        self.b
            .append_data(&mut h, format!("{path}/"), std::io::empty())
            .unwrap();
    }

    /// A root-owned file; its folder must have been made.
    fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
    }

    fn link(&mut self, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        self.b.append_link(&mut h, path, target).unwrap();
    }

    fn into_tar(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// `docker import` of a root file system with `--change` lines, as `tag`.
fn import(rootfs: Vec<u8>, changes: &[String], tag: &str) -> Result<(), String> {
    let mut args: Vec<String> = vec!["import".into()];
    for c in changes {
        args.push("--change".into());
        args.push(c.clone());
    }
    args.extend(["-".into(), tag.into()]);
    let mut child = Command::new("docker")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run docker import: {e}"))?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&rootfs));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(format!(
            "docker import {tag} failed: {}",
            first_line(&out.stderr)
        ));
    }
    Ok(())
}

/// The shared lock of image builds (parallel test runs, other checkouts on one engine).
fn image_lock() -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("forgekeep-test-stand-in-images.lock"))
        .map_err(|e| format!("cannot open the image lock: {e}"))?;
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("cannot lock the image lock: {e}"))
}

/// What the compose sidecar's image needs of its base (contrib/compose/Dockerfile):
/// `/bin/sh`, `date` and `sleep` for its daily loop.
const SIDECAR_APPLETS: &[&str] = &["sh", "date", "sleep", "cat", "ls"];

/// A stand-in for the sidecar Dockerfile's base (`ARG BASE`, `alpine:3` by default): no
/// image can be pulled, and the forgekeep the tests run is a glibc debug build, not the
/// static one the Dockerfile recommends for Alpine. So: busybox for the loop, and the
/// C library files `binary` is linked against (from `ldd`), at their paths. Tagged
/// `forgekeep-test/sidecar-base:<hash of its content>`, never an official name; built
/// once, shared by parallel runs. Returns the tag.
pub fn sidecar_base(binary: &Path) -> String {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
        let ldd = Command::new("ldd").arg(binary).output().expect("ldd");
        assert!(
            ldd.status.success(),
            "ldd {}: {}",
            binary.display(),
            stderr(&ldd)
        );
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and the loader's own
        // `/lib64/ld-linux-x86-64.so.2 (0x…)`.
        let libs: BTreeSet<PathBuf> = stdout(&ldd)
            .lines()
            .filter_map(|l| {
                let l = l.split(" (0x").next()?.trim();
                let path = l.rsplit("=> ").next()?.trim();
                path.starts_with('/').then(|| PathBuf::from(path))
            })
            .collect();
        let mut fs = Rootfs::with_busybox(&busybox, SIDECAR_APPLETS);
        fs.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
        fs.file("etc/group", 0o644, b"root:x:0:\n");
        let mut hash_input = busybox.clone();
        for lib in &libs {
            let rel = lib.strip_prefix("/").unwrap().to_str().unwrap().to_string();
            if let Some(dir) = Path::new(&rel).parent() {
                fs.dir(dir.to_str().unwrap(), 0, 0o755);
            }
            // The file itself, whatever links lead to it on this host.
            let data = std::fs::read(lib).unwrap();
            fs.file(&rel, 0o755, &data);
            hash_input.extend(rel.as_bytes());
            hash_input.extend(&data);
        }
        for a in SIDECAR_APPLETS {
            hash_input.extend(a.as_bytes());
        }
        let hash = {
            use sha2::{Digest, Sha256};
            let d = Sha256::digest(&hash_input);
            d[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let tag = format!("forgekeep-test/sidecar-base:{hash}");
        let _held = image_lock().unwrap();
        let have = bounded(Command::new("docker").args(["image", "inspect", &tag]), 30);
        if !have.status.success() {
            let changes = [
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
                // Not the stand-in label: its containers never say "stand-in ready".
                format!("LABEL org.forgekeep.sidecar-base={hash}"),
            ];
            import(fs.into_tar(), &changes, &tag).unwrap();
        }
        tag
    })
    .clone()
}

/// A compose stack of one test: its folder, its compose file, and whatever the engine
/// made for it, removed when dropped (containers with their anonymous volumes, the
/// project's named volumes, the volumes the test names).
pub struct Stack {
    pub docker: &'static Docker,
    pub dir: PathBuf,
    /// The file's name in `dir`.
    pub file: String,
    /// `-p NAME`, when the test starts it so.
    pub project: Option<String>,
    /// Volumes the test made itself (external ones).
    pub extra_volumes: Vec<String>,
    /// Anonymous volumes left behind by `down` (compose keeps them without `-v`).
    orphans: std::cell::RefCell<BTreeSet<String>>,
}

impl Stack {
    pub fn new(docker: &'static Docker, compose_file: &Path) -> Stack {
        let text = std::fs::read_to_string(compose_file).unwrap();
        let doc = &yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0];
        for (name, service) in doc["services"].as_hash().unwrap() {
            assert_eq!(
                service["network_mode"].as_str(),
                Some("none"),
                "test service {name:?} must run with `network_mode: none`"
            );
        }
        Stack {
            docker,
            dir: compose_file.parent().unwrap().to_path_buf(),
            file: compose_file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            project: None,
            extra_volumes: Vec::new(),
            orphans: Default::default(),
        }
    }

    /// `compose [-f FILE] [-p NAME] ARGS` in the stack's folder (as a user types it:
    /// compose v1 then records the file relative to the folder), which must succeed.
    pub fn compose(&self, args: &[&str]) -> Output {
        let o = self.compose_output(args);
        assert!(
            o.status.success(),
            "compose {args:?} failed: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        o
    }

    /// [`Stack::compose`], whatever its exit code.
    pub fn compose_output(&self, args: &[&str]) -> Output {
        // `down` without -v, and `up` recreating a container, leave anonymous volumes
        // behind: note them first, for the clean-up.
        self.note_orphans();
        let cli = &self.docker.compose;
        let mut c = Command::new(&cli[0]);
        c.args(&cli[1..]).current_dir(&self.dir);
        if self.file != "docker-compose.yml" {
            c.args(["-f", &self.file]);
        }
        if let Some(p) = &self.project {
            c.args(["-p", p]);
        }
        c.args(args);
        bounded(&mut c, 180)
    }

    /// `up -d`, then waits until every running service says it is ready.
    pub fn up(&self) {
        self.up_services(&[]);
    }

    /// `up -d SERVICES` (all when empty), then waits until every running stand-in says
    /// it is ready (other containers, such as the sidecar, have nothing to say).
    pub fn up_services(&self, services: &[&str]) {
        let mut args = vec!["up", "-d"];
        args.extend(services);
        self.compose(&args);
        let deadline = Instant::now() + Duration::from_secs(60);
        for id in self.container_ids() {
            let label = docker_ok(&[
                "inspect",
                "--format",
                &format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"),
                &id,
            ]);
            if matches!(label.trim(), "" | "<no value>") {
                continue;
            }
            loop {
                let logs = bounded(Command::new("docker").args(["logs", &id]), 30);
                if stdout(&logs).contains("stand-in ready") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "container {id} never got ready: {}{}",
                    stdout(&logs),
                    stderr(&logs)
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `down` (without `-v`, as users do).
    pub fn down(&self) {
        self.compose(&["down"]);
    }

    fn note_orphans(&self) {
        for id in self.container_ids() {
            let names = docker_ok(&[
                "container",
                "inspect",
                "--format",
                "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
                &id,
            ]);
            self.orphans
                .borrow_mut()
                .extend(names.split_whitespace().map(str::to_string));
        }
    }

    /// Every container compose made from this folder (any project).
    pub fn container_ids(&self) -> Vec<String> {
        docker_ok(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!(
                "label=com.docker.compose.project.working_dir={}",
                self.dir.display()
            ),
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect()
    }

    /// The container of `service` (there is one).
    pub fn container(&self, service: &str) -> String {
        let ids = docker_ok(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!(
                "label=com.docker.compose.project.working_dir={}",
                self.dir.display()
            ),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        assert_eq!(ids.len(), 1, "running containers of {service}: {ids:?}");
        ids[0].to_string()
    }

    /// The container's name, as `docker ps` shows it.
    pub fn container_name(&self, service: &str) -> String {
        docker_ok(&["inspect", "--format", "{{.Name}}", &self.container(service)])
            .trim()
            .trim_start_matches('/')
            .to_string()
    }

    /// `docker exec` in the service's container; its stdout.
    pub fn exec(&self, service: &str, cmd: &[&str]) -> String {
        let id = self.container(service);
        let mut args = vec!["exec", id.as_str()];
        args.extend(cmd);
        docker_ok(&args)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let ids = self.container_ids();
        let mut projects = BTreeSet::new();
        for id in &ids {
            let p = bounded(
                Command::new("docker").args([
                    "inspect",
                    "--format",
                    "{{index .Config.Labels \"com.docker.compose.project\"}}",
                    id,
                ]),
                30,
            );
            projects.insert(stdout(&p).trim().to_string());
        }
        projects.extend(self.project.clone());
        if !ids.is_empty() {
            // -v: with their anonymous volumes.
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            bounded(Command::new("docker").args(&args), 120);
        }
        let mut volumes: BTreeSet<String> = self.orphans.borrow().clone();
        volumes.extend(self.extra_volumes.iter().cloned());
        for p in projects.iter().filter(|p| !p.is_empty()) {
            let named = bounded(
                Command::new("docker").args([
                    "volume",
                    "ls",
                    "-q",
                    "--filter",
                    &format!("label=com.docker.compose.project={p}"),
                ]),
                30,
            );
            volumes.extend(stdout(&named).split_whitespace().map(str::to_string));
        }
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(volumes.iter().map(String::as_str));
            bounded(Command::new("docker").args(&args), 120);
        }
    }
}

/// The engine's own folder (`/var/lib/docker` by default): volumes and layers are below it.
pub fn root_dir() -> String {
    docker_ok(&["info", "--format", "{{.DockerRootDir}}"])
        .trim()
        .to_string()
}

/// A name no other test (or test run) uses: for projects and volumes.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
