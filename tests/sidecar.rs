//! The compose sidecar of `contrib/compose/`, as shipped: the compose CLI reads its file
//! (and forgekeep reads it alike), and on a real engine the stack runs with stand-ins of
//! the forges, the sidecar built from the shipped Dockerfile runs its daily loop and its
//! cron line with its own mounts, and what it writes verifies.
//!
//! The sidecar image is built by `docker build` from `contrib/compose/Dockerfile` with the
//! binary under test as `forgekeep`, as the file says. Only its base differs: no Alpine
//! can be pulled, and the binary is a glibc debug build, so the base is a stand-in
//! (`engine::sidecar_base`: busybox for the loop and the C library the binary links),
//! passed as the Dockerfile's `BASE` argument.

use crate::engine::{self, docker_ok, unique, Stack};
use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

const JWT: &str = "/var/lib/gitea/jwt/private.pem";

pub fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/compose")
        .join(rel)
}

/// The shipped compose file.
pub fn shipped() -> String {
    fs::read_to_string(contrib("docker-compose.yml")).unwrap()
}

/// The cron alternative's line, from the file's comment (an /etc/cron.d line).
pub fn cron_line() -> String {
    shipped()
        .lines()
        .find_map(|l| l.strip_prefix("#   17 3 "))
        .map(|rest| format!("17 3 {rest}"))
        .expect("the cron alternative's line")
}

/// The stack's folder, prepared as the file's header says: the compose file, the job
/// (`forgekeep.toml`), `woodpecker.env` from the example (filled in, 0600), the
/// recipients file and a root-owned 0700 `./forgekeep/backups`.
fn prepare(t: &TestDir, name: &str, compose: &str, recipient: &str) -> PathBuf {
    let dir = t.mkdir(name, 0o755);
    fs::write(dir.join("docker-compose.yml"), compose).unwrap();
    fs::copy(contrib("forgekeep.toml"), dir.join("forgekeep.toml")).unwrap();
    let example = fs::read_to_string(contrib("woodpecker.env.example")).unwrap();
    let filled: String = example
        .lines()
        .map(|l| match l.strip_suffix('=') {
            Some(key) => format!("{key}=test-value-of-{}\n", key.to_lowercase()),
            None => format!("{l}\n"),
        })
        .collect();
    t.write(&format!("{name}/woodpecker.env"), filled.as_bytes(), 0o600);
    t.mkdir(&format!("{name}/forgekeep/backups"), 0o700);
    t.write(
        &format!("{name}/forgekeep/recipients"),
        format!("{recipient}\n").as_bytes(),
        0o644,
    );
    dir
}

#[test]
fn the_shipped_sidecar_file_is_what_docker_compose_config_reads_and_forgekeep_reads_alike() {
    let name = "sidecar::the_shipped_sidecar_file_is_what_docker_compose_config_reads_and_forgekeep_reads_alike";
    let Some(cli) = engine::compose_cli() else {
        engine::skip(name, "no compose CLI (docker-compose or docker compose)");
        return;
    };
    let t = TestDir::new();
    let dir = prepare(&t, "forge", &shipped(), "age1unused");
    let file = dir.join("docker-compose.yml");

    // The oracle's comparison: services, images, environment, volumes, tmpfs, names.
    let theirs = crate::compose_cli::cli_reading(&cli, &file);
    let ours = crate::compose_cli::forgekeep_reading(&file);
    assert_eq!(ours, theirs, "left: forgekeep, right: {}", cli.join(" "));

    // What the sidecar is, as the CLI normalised it.
    let o = engine::bounded(
        Command::new(&cli[0])
            .args(&cli[1..])
            .arg("config")
            .current_dir(&dir),
        60,
    );
    assert!(o.status.success(), "config: {}", stderr(&o));
    let doc = YamlLoader::load_from_str(&stdout(&o)).unwrap().remove(0);
    let fk = &doc["services"]["forgekeep"];
    assert_eq!(fk["read_only"], Yaml::Boolean(true), "{fk:?}");
    assert_eq!(fk["network_mode"].as_str(), Some("none"));
    assert_eq!(fk["user"].as_str(), Some("0:0"));
    assert_eq!(fk["hostname"].as_str(), Some("forge-backup"));
    let strings = |y: &Yaml| -> Vec<String> {
        y.as_vec()
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    // The writable /tmp a database copy needs: root's, sticky (forgekeep's rule for a
    // temp folder), on a read-only root.
    assert_eq!(strings(&fk["tmpfs"]), vec!["/tmp:mode=1777"]);
    assert_eq!(strings(&fk["cap_drop"]), vec!["ALL"]);
    assert_eq!(strings(&fk["cap_add"]), vec!["DAC_READ_SEARCH"]);
    // Every mount read-only but the archives' folder; the job at forgekeep's default
    // configuration path.
    let volumes = fk["volumes"].as_vec().unwrap();
    let target_of = |v: &Yaml| -> (String, bool) {
        match v {
            Yaml::Hash(_) => (
                v["target"].as_str().unwrap().to_string(),
                v["read_only"] == Yaml::Boolean(true),
            ),
            s => {
                let parts: Vec<&str> = s.as_str().unwrap().split(':').collect();
                (parts[1].to_string(), parts.get(2) == Some(&"ro"))
            }
        }
    };
    let mounts: Vec<(String, bool)> = volumes.iter().map(target_of).collect();
    for (target, ro) in &mounts {
        assert_eq!(*ro, target != "/backups", "{target}: {mounts:?}");
    }
    assert!(
        mounts
            .iter()
            .any(|(t, _)| t == "/etc/forgekeep/config.toml"),
        "{mounts:?}"
    );
}

/// Builds the sidecar's image from the shipped Dockerfile (the binary under test as
/// `forgekeep`, the stand-in base as `BASE`); removed again on drop.
struct SidecarImage(String);

impl SidecarImage {
    fn build(t: &TestDir) -> SidecarImage {
        let ctx = t.mkdir("sidecar-build", 0o755);
        fs::copy(contrib("Dockerfile"), ctx.join("Dockerfile")).unwrap();
        fs::copy(BIN, ctx.join("forgekeep")).unwrap();
        let base = engine::sidecar_base(Path::new(BIN));
        let tag = format!("forgekeep-test/sidecar:{}", unique("s"));
        docker_ok(&[
            "build",
            "-q",
            "--build-arg",
            &format!("BASE={base}"),
            "-t",
            &tag,
            ctx.to_str().unwrap(),
        ]);
        SidecarImage(tag)
    }
}

impl Drop for SidecarImage {
    fn drop(&mut self) {
        let _ = engine::bounded(Command::new("docker").args(["rmi", "-f", &self.0]), 60);
    }
}

/// The shipped stack with what a test run needs changed, and nothing else: no network
/// (`network_mode: none`, so no published ports), no docker socket for the agent (the
/// stand-in does not use it), and the sidecar's image tag. The sidecar service is
/// otherwise as shipped: its command, mounts, tmpfs, user and capabilities.
fn for_the_test(compose: &str, image: &str) -> String {
    let mut doc = YamlLoader::load_from_str(compose).unwrap().remove(0);
    let Yaml::Hash(services) = &mut doc["services"] else {
        panic!("services");
    };
    for (name, svc) in services.iter_mut() {
        let Yaml::Hash(svc) = svc else {
            panic!("{name:?}")
        };
        svc.remove(&Yaml::String("ports".into()));
        svc.insert(
            Yaml::String("network_mode".into()),
            Yaml::String("none".into()),
        );
        if let Some(Yaml::Array(volumes)) = svc.get_mut(&Yaml::String("volumes".into())) {
            volumes.retain(|v| !v.as_str().is_some_and(|s| s.contains("docker.sock")));
        }
        if name.as_str() == Some("forgekeep") {
            svc.insert(Yaml::String("image".into()), Yaml::String(image.into()));
        }
    }
    let mut out = String::new();
    YamlEmitter::new(&mut out).dump(&doc).unwrap();
    out
}

/// The archives in `dir`, once at least `n` are there and no run holds the folder
/// (sooner a failure when the sidecar's log says its run failed).
fn archives_once(dir: &Path, n: usize, logs: impl Fn() -> String) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in 0.. {
        let mut all: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".tar.zst.age"))
            .collect();
        all.sort();
        if all.len() >= n && !dir.join(".forgekeep.lock").exists() {
            return all;
        }
        let failed = round % 10 == 9 && logs().contains("FAILED");
        assert!(
            Instant::now() < deadline && !failed,
            "{n} archive(s) expected in {}, have {all:?}; sidecar log:\n{}",
            dir.display(),
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    unreachable!()
}

fn verify(archive: &Path, key: &Path) {
    let o = fk(&[
        "verify",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
}

#[test]
fn the_shipped_sidecar_backs_up_the_stand_in_stack_and_its_archives_verify() {
    let name = "sidecar::the_shipped_sidecar_backs_up_the_stand_in_stack_and_its_archives_verify";
    let Some(docker) = engine::docker(name) else {
        return;
    };
    let t = TestDir::new();
    let (key, recipient) = t.age_key("offline-key.txt");
    let image = SidecarImage::build(&t);
    let dir = prepare(
        &t,
        &unique("forge"),
        &for_the_test(&shipped(), &image.0),
        &recipient,
    );
    let backups = dir.join("forgekeep/backups");
    let stack = Stack::new(docker, &dir.join("docker-compose.yml"));

    // The forge's stack first (the sidecar is added to a stack that runs), then the
    // sidecar, whose loop backs up at once.
    stack.up_services(&["gitea", "woodpecker-server", "woodpecker-agent"]);
    stack.up_services(&["forgekeep"]);
    let sidecar = stack.container("forgekeep");
    let logs = || {
        let o = engine::bounded(Command::new("docker").args(["logs", &sidecar]), 30);
        format!("{}{}", stdout(&o), stderr(&o))
    };
    let first = archives_once(&backups, 1, logs);
    assert_eq!(first.len(), 1);
    let name = first[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("forgekeep-forge-backup-"), "{name}");
    // Regression (issue 13 item 4): the database copy needs a writable /tmp; and the
    // owners of the containers' files are numbers, never `chown git` (the sidecar has no
    // git). Woodpecker makes its database 0644, wider than the profile's 0640: the one
    // warning, and the loop says the archive was written with it.
    let log = logs();
    assert!(!log.contains("Read-only file system"), "{log}");
    assert!(!log.contains("FAILED"), "{log}");
    assert!(!log.contains("chown git"), "{log}");
    assert!(!log.contains("owner-unexpected"), "{log}");
    let warned: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("forgekeep: "))
        .filter(|l| l.starts_with("warning [") || l.starts_with("error ["))
        .collect();
    assert_eq!(
        warned,
        vec!["warning [mode-too-open] /var/lib/woodpecker/woodpecker.sqlite: Woodpecker SQLite database (forge OAuth tokens and pipeline secrets, in plain text) has mode 0644; it needs no more than 0640; fix: chmod 640 /var/lib/woodpecker/woodpecker.sqlite"],
        "{log}"
    );
    assert!(
        log.contains("archive written, with the warnings above (exit 3)"),
        "{log}"
    );
    verify(&first[0], &key);

    // What the archive holds: every secret of the stack, at the containers' paths,
    // owned by number.
    let list = list_json(&first[0], &key);
    let entry = |p: &str| {
        list["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == p)
            .unwrap_or_else(|| panic!("no entry {p}: {}", list["entries"]))
            .clone()
    };
    for (path, uid) in [
        ("/etc/gitea/app.ini", 1000),
        (JWT, 1000),
        ("/var/lib/woodpecker/woodpecker.sqlite", 0),
        ("/etc/woodpecker/agent.conf", 0),
        ("/forge/woodpecker.env", 0),
        ("/forge/docker-compose.yml", 0),
    ] {
        assert_eq!(entry(path)["uid"], uid, "{path}");
    }
    for s in list["sources"].as_array().unwrap() {
        assert_eq!(s["ownership"], "numeric", "{s}");
    }
    // The key is the one the forge serves; the database copy is a database.
    let out = t.mkdir("out", 0o700);
    expect_code(
        &restore(&first[0], &key, &["--to", out.to_str().unwrap()]),
        0,
    );
    let live_key = stack.exec("gitea", &["cat", JWT]);
    assert_eq!(
        fs::read_to_string(out.join(JWT.trim_start_matches('/'))).unwrap(),
        live_key
    );
    let db = rusqlite::Connection::open(out.join("var/lib/woodpecker/woodpecker.sqlite")).unwrap();
    let row: String = db
        .query_row("SELECT k FROM stand_in", [], |r| r.get(0))
        .unwrap();
    assert_eq!(row, "first start");

    // The cron alternative, as the file's comment writes it, run by sh in the stack's
    // folder (with this machine's compose CLI).
    let line = cron_line();
    let cron = crate::contrib::cron_job(&line).expect("a job line").1;
    let cron = cron
        .replace("cd /srv/forge", &format!("cd {}", dir.display()))
        .replace("docker compose ", &format!("{} ", docker.compose.join(" ")));
    let run_cron = || sh(&cron);

    // An owner the forge would not accept is reported by number, with a fix that works
    // where the file is used: in the forge's container (the paths are the same).
    docker_ok(&[
        "exec",
        "-u",
        "0",
        &stack.container("gitea"),
        "chown",
        "0",
        JWT,
    ]);
    docker_ok(&[
        "exec",
        &stack.container("woodpecker-server"),
        "chmod",
        "640",
        "/var/lib/woodpecker/woodpecker.sqlite",
    ]);
    let o = run_cron();
    expect_code(&o, 0);
    // Printed because the run exited 3 (the owner finding is a warning).
    let err = stdout(&o);
    let owner = err
        .lines()
        .find(|l| l.starts_with("forgekeep: warning [owner-unexpected]"))
        .unwrap_or_else(|| panic!("no owner finding: {err}"));
    assert!(
        owner.contains("belongs to uid 0; the forge runs as uid 1000")
            && owner.ends_with(&format!("fix: chown 1000 {JWT}")),
        "{owner}"
    );
    assert!(!err.contains("chown git"), "{err}");
    let fix = owner.rsplit("fix: ").next().unwrap();
    docker_ok(&[
        "exec",
        "-u",
        "0",
        &stack.container("gitea"),
        "sh",
        "-c",
        fix,
    ]);
    let o = run_cron();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).is_empty() && stderr(&o).is_empty(),
        "a clean run says nothing (no cron mail): {}{}",
        stdout(&o),
        stderr(&o)
    );
    // Three runs today; the job's retention (keep-daily 14 …) keeps the newest of the
    // day and, as fewer days than 14 have one, the oldest.
    let all = archives_once(&backups, 2, logs);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], first[0]);
    for a in &all {
        verify(a, &key);
    }

    // Regression: without the tmpfs (read_only alone, as shipped before) the database
    // copy fails, and the error says what to give the container.
    let o = engine::bounded(
        Command::new("docker").args([
            "run",
            "--rm",
            "--read-only",
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "DAC_READ_SEARCH",
            "--volumes-from",
            &format!("{}:ro", stack.container("woodpecker-server")),
            "-v",
            &format!(
                "{}:/forge/woodpecker.env:ro",
                dir.join("woodpecker.env").display()
            ),
            "--entrypoint",
            "forgekeep",
            &image.0,
            "backup",
            "-p",
            "woodpecker=/forge/woodpecker.env",
            "-r",
            &recipient,
            "-o",
            "-",
        ]),
        120,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing written");
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("cannot create a private folder in /tmp: Read-only file system"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("(hint: the temp folder is on a read-only file system")
            && line.contains("tmpfs")
            && line.contains("TMPDIR"),
        "{line}"
    );
}
