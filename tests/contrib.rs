//! `contrib/`: the systemd units, the cron file and the compose sidecar say what they
//! claim (hardening present), and every forgekeep command line in them is one the real
//! binary accepts (prune lines are even run, on a temp folder). `systemd-analyze verify`
//! checks the units when it is installed (Debian package `systemd`).

use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(rel)
}

const INSTALLED: &str = "/usr/local/bin/forgekeep";
const UNITS: [&str; 4] = [
    "systemd/forgekeep-backup.service",
    "systemd/forgekeep-backup.timer",
    "systemd/forgekeep-verify.service",
    "systemd/forgekeep-verify.timer",
];

/// A unit file as (section, key, value) triples; comments and blank lines skipped.
fn unit(rel: &str) -> Vec<(String, String, String)> {
    let text = fs::read_to_string(contrib(rel)).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        assert!(!line.ends_with('\\'), "{rel}: keep directives on one line");
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{rel}: not key=value: {line}"));
        out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
    }
    out
}

fn values<'a>(u: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    u.iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

#[track_caller]
fn has(u: &[(String, String, String)], section: &str, key: &str, want: &str) {
    assert!(
        values(u, section, key).contains(&want),
        "[{section}] {key}={want} missing; have {:?}",
        values(u, section, key)
    );
}

/// Runs the forgekeep command line `cmd` (starting with the program) with the real
/// binary: `prune` for real with DIR swapped for a temp folder of synthetic archives,
/// anything else with `--help` appended (clap rejects an unknown flag or a bad value
/// before it gets to `--help`, so exit 0 means every flag and value parsed).
fn accepts(cmd: &str, origin: &str) {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    assert!(
        words[0] == INSTALLED || words[0] == "forgekeep",
        "{origin}: runs {}",
        words[0]
    );
    let args = &words[1..];
    if args.first() == Some(&"prune") {
        let td = TestDir::new();
        let dir = td.mkdir("archives", 0o700);
        for s in ["20261125T030000Z", "20261124T030000Z", "20251124T030000Z"] {
            fs::write(dir.join(format!("forgekeep-h-{s}.tar.zst.age")), b"").unwrap();
        }
        let swapped: Vec<&str> = args
            .iter()
            .enumerate()
            .map(|(i, a)| if i == 1 { dir.to_str().unwrap() } else { a })
            .collect();
        let o = fk(&swapped);
        expect_code(&o, 0);
        assert!(dir
            .join("forgekeep-h-20261125T030000Z.tar.zst.age")
            .exists());
        assert!(stdout(&o).is_empty(), "{origin}: --quiet prune printed");
        return;
    }
    let mut with_help: Vec<&str> = args.to_vec();
    with_help.push("--help");
    let o = fk(&with_help);
    assert_eq!(
        code(&o),
        0,
        "{origin}: forgekeep does not accept `{cmd}`: {}",
        stderr(&o)
    );
}

#[test]
fn systemd_units_are_hardened_and_their_commands_are_accepted() {
    let backup = unit("systemd/forgekeep-backup.service");
    for (k, v) in [
        ("Type", "oneshot"),
        (
            "ExecStart",
            "/usr/local/bin/forgekeep backup --config /etc/forgekeep/config.toml --quiet",
        ),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/backups/forgekeep"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "read-only"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX"),
        ("CapabilityBoundingSet", "CAP_DAC_READ_SEARCH"),
        ("UMask", "0077"),
        ("Nice", "10"),
        ("IOSchedulingClass", "idle"),
    ] {
        has(&backup, "Service", k, v);
    }
    // Exactly one writable path: the archive folder (retention runs inside the backup,
    // from the configuration's [retention], under the same lock: no second rule set).
    assert_eq!(values(&backup, "Service", "ReadWritePaths").len(), 1);
    assert!(values(&backup, "Service", "ExecStartPost").is_empty());

    let verify = unit("systemd/forgekeep-verify.service");
    for (k, v) in [
        ("Type", "oneshot"),
        ("ProtectSystem", "strict"),
        ("PrivateNetwork", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_UNIX"),
    ] {
        has(&verify, "Service", k, v);
    }
    let exec = values(&verify, "Service", "ExecStart");
    assert!(
        exec[0].contains("verify --latest /var/backups/forgekeep")
            && exec[0].contains("--max-age 2d"),
        "{exec:?}"
    );
    assert!(values(&verify, "Service", "ReadWritePaths").is_empty());

    for t in [
        "systemd/forgekeep-backup.timer",
        "systemd/forgekeep-verify.timer",
    ] {
        let timer = unit(t);
        assert_eq!(values(&timer, "Timer", "OnCalendar").len(), 1, "{t}");
        assert_eq!(
            values(&timer, "Timer", "RandomizedDelaySec").len(),
            1,
            "{t}"
        );
        has(&timer, "Timer", "Persistent", "true");
        has(&timer, "Install", "WantedBy", "timers.target");
    }

    for (rel, u) in [
        ("systemd/forgekeep-backup.service", &backup),
        ("systemd/forgekeep-verify.service", &verify),
    ] {
        for key in ["ExecStart", "ExecStartPost"] {
            for cmd in values(u, "Service", key) {
                accepts(cmd, rel);
            }
        }
    }
}

/// The `install` lines of the README's Install section, run as written except that
/// `/usr/local/` is `root/usr/local/` and the release binary is the test binary.
fn install_as_the_readme_says(root: &Path) {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("## Install").unwrap()..];
    let block = &section[section.find("```sh").unwrap() + 5..];
    let block = &block[..block.find("```").unwrap()];
    let lines: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| l.starts_with("install "))
        .collect();
    assert_eq!(lines.len(), 2, "the binary and the man pages: {block}");
    for line in lines {
        let line = line
            .replace("target/release/forgekeep", BIN)
            .replace("/usr/local/", &format!("{}/usr/local/", root.display()));
        let o = Command::new("sh")
            .args(["-c", &line])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{line}: {}", stderr(&o));
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_units_with_the_man_pages_installed_as_documented() {
    // Regression (issue 13): `Documentation=man:forgekeep-backup(1)` failed the check,
    // because no documented step installed the man pages.
    require("systemd-analyze");
    require("man");
    let td = TestDir::new();
    let root = td.mkdir("root", 0o755);
    // Every Debian has /usr/local/bin (base-files); the man folder is made by install -D.
    td.mkdir("root/usr/local/bin", 0o755);
    install_as_the_readme_says(&root);
    let bin = root.join("usr/local/bin/forgekeep");
    let man = root.join("usr/local/share/man");
    assert!(man.join("man1/forgekeep-backup.1").is_file());
    // The documented place is one man searches without any MANPATH.
    let global = sh("manpath -g");
    assert!(
        stdout(&global)
            .split(':')
            .any(|d| d.trim() == "/usr/local/share/man"),
        "{}",
        stdout(&global)
    );
    // The units as shipped, their binary at its installed place.
    let units = td.mkdir("units", 0o755);
    let mut paths = Vec::new();
    for rel in UNITS {
        let text = fs::read_to_string(contrib(rel))
            .unwrap()
            .replace(INSTALLED, bin.to_str().unwrap());
        let p = units.join(Path::new(rel).file_name().unwrap());
        fs::write(&p, text).unwrap();
        paths.push(p);
    }
    // As the recipe runs it (man pages checked too), with man finding the pages where
    // they were installed under the scratch root.
    let analyze = |files: &[PathBuf], manpath: &Path| {
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .args(files)
            .env("MANPATH", manpath)
            .current_dir(&units)
            .output()
            .unwrap();
        // verify exits 0 on mere warnings (unknown key, bad value): read them too.
        let complaints: Vec<String> = stderr(&o)
            .lines()
            .filter(|l| l.contains(units.to_str().unwrap()) || l.contains("forgekeep-"))
            .map(str::to_string)
            .collect();
        (o.status.success(), complaints)
    };
    let (ok, complaints) = analyze(&paths, &man);
    assert!(ok && complaints.is_empty(), "{complaints:#?}");

    // The check itself works: without the pages, or with a broken copy, it complains.
    let (ok, complaints) = analyze(&paths, &td.mkdir("no-pages", 0o755));
    assert!(
        !ok && complaints
            .iter()
            .any(|l| l.contains("man forgekeep-backup(1)")),
        "{complaints:#?}"
    );
    let broken = units.join("forgekeep-broken.service");
    let text = fs::read_to_string(&paths[0])
        .unwrap()
        .replace("IOSchedulingClass=idle", "IOSchedulingClass=sometimes");
    fs::write(&broken, text).unwrap();
    let (_, complaints) = analyze(&[broken], &man);
    assert!(
        complaints.iter().any(|l| l.contains("IO scheduling class")),
        "{complaints:#?}"
    );
}

/// An /etc/cron.d job line checked as cron reads it: five time fields, the user (root),
/// then the command, which must not hold a `%` (cron makes it a newline) and runs
/// forgekeep `--quiet` (cron mails any output). `None` for a variable line (`PATH=`).
pub fn cron_job(line: &str) -> Option<(Vec<String>, String)> {
    let first = line.split_whitespace().next().unwrap();
    if first.contains('=') {
        return None;
    }
    let mut rest = line;
    let mut fields: Vec<String> = Vec::new();
    for _ in 0..6 {
        let (f, r) = rest.split_once(char::is_whitespace).unwrap();
        fields.push(f.to_string());
        rest = r.trim_start();
    }
    for f in &fields[..5] {
        assert!(
            f.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | ',' | '-' | '/')),
            "time field {f:?} in {line}"
        );
    }
    assert_eq!(fields[5], "root", "user field in {line}");
    assert!(!rest.contains('%'), "cron turns % into a newline: {line}");
    assert!(rest.contains("--quiet"), "cron mails any output: {line}");
    Some((fields, rest.to_string()))
}

#[test]
fn cron_file_lines_are_valid_and_their_commands_are_accepted() {
    let path = contrib("cron/forgekeep");
    assert!(
        !path.file_name().unwrap().to_str().unwrap().contains('.'),
        "cron ignores /etc/cron.d files with a dot in the name"
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'), "cron needs a final newline");
    let mut jobs = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((_, command)) = cron_job(line) else {
            continue; // SHELL=, PATH=, MAILTO=
        };
        for part in command.split("&&") {
            accepts(part.trim(), "cron/forgekeep");
        }
        jobs += 1;
    }
    assert_eq!(jobs, 2, "a backup line and a verify line");
    assert!(text.contains("MAILTO="));
}

#[test]
fn compose_sidecar_is_read_only_and_its_commands_are_accepted() {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = YamlLoader::load_from_str(&crate::sidecar::shipped()).expect("valid YAML");
    let fk_svc = &docs[0]["services"]["forgekeep"];
    assert!(!fk_svc.is_badvalue(), "a forgekeep service");
    assert_eq!(fk_svc["network_mode"].as_str(), Some("none"));
    assert_eq!(fk_svc["read_only"].as_bool(), Some(true));
    // Regression (issue 13 item 4): read_only with no writable /tmp, where SQLite's
    // online backup writes its copy: no archive, ever.
    assert_eq!(fk_svc["tmpfs"][0].as_str(), Some("/tmp:mode=1777"));
    assert_eq!(fk_svc["cap_drop"][0].as_str(), Some("ALL"));
    assert!(fk_svc["hostname"].as_str().is_some(), "a fixed host name");
    let volumes: Vec<&str> = fk_svc["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let writable: Vec<&&str> = volumes.iter().filter(|v| !v.ends_with(":ro")).collect();
    assert_eq!(
        writable,
        vec![&"./forgekeep/backups:/backups"],
        "only the output is writable"
    );
    // The forge's volumes at the same paths as in the forge's containers.
    for svc in ["gitea", "woodpecker-server", "woodpecker-agent"] {
        for v in docs[0]["services"][svc]["volumes"].as_vec().unwrap() {
            let v = v.as_str().unwrap();
            if v.contains("docker.sock") {
                continue;
            }
            assert!(
                volumes.contains(&format!("{v}:ro").as_str()),
                "{svc}: {v} mounted :ro"
            );
        }
    }
    let target = |source: &str| {
        volumes
            .iter()
            .find_map(|v| v.strip_prefix(&format!("{source}:")))
            .and_then(|t| t.split(':').next())
            .unwrap_or_else(|| panic!("{source} is not mounted: {volumes:?}"))
    };

    // The job is the file mounted where forgekeep reads its configuration by default,
    // and every path it names is one of the sidecar's mounts.
    assert_eq!(target("./forgekeep.toml"), forgekeep::config::DEFAULT_PATH);
    let job = forgekeep::config::Config::parse(
        &fs::read_to_string(contrib("compose/forgekeep.toml")).unwrap(),
        Path::new(forgekeep::config::DEFAULT_PATH),
    )
    .expect("the sidecar's job parses");
    let env = target("./woodpecker.env");
    assert_eq!(
        job.sources.profiles,
        vec![
            "gitea=/etc/gitea/app.ini".to_string(),
            format!("woodpecker={env}"),
            format!("woodpecker-agent={env}"),
        ]
    );
    assert_eq!(
        job.sources.paths,
        vec![PathBuf::from(target("./docker-compose.yml"))]
    );
    assert!(!job.sources.with_db, "documented: gitea.db is data");
    assert_eq!(
        job.backup.recipients_files,
        vec![PathBuf::from(target("./forgekeep/recipients"))]
    );
    assert_eq!(
        job.backup.output,
        Some(PathBuf::from(format!("{}/", target("./forgekeep/backups"))))
    );
    assert!(job.backup.numeric_ids, "the containers' owners are numbers");
    assert_eq!(job.retention.keep_daily, Some(14));

    // The loop is valid sh (compose turns $$ into $) and runs the job with the binary's
    // accepted arguments.
    let script = match &fk_svc["command"] {
        Yaml::Array(a) => a[0].as_str().unwrap().replace("$$", "$"),
        other => panic!("command: {other:?}"),
    };
    let o = Command::new("sh")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "sh -n: {}", stderr(&o));
    let runs: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("forgekeep "))
        .collect();
    assert_eq!(runs, vec!["forgekeep backup --quiet"]);
    accepts(runs[0], "compose/docker-compose.yml");

    // The cron alternative runs the very same job (nothing of its own to drift).
    let line = crate::sidecar::cron_line();
    let (_, command) = cron_job(&line).expect("a job line");
    assert!(
        command.contains("run --rm -T --entrypoint forgekeep forgekeep backup --quiet 2>&1"),
        "{command}"
    );
    let o = Command::new("sh")
        .args(["-n", "-c", &command])
        .output()
        .unwrap();
    assert!(o.status.success(), "sh -n: {}", stderr(&o));

    let dockerfile = fs::read_to_string(contrib("compose/Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY forgekeep /usr/local/bin/forgekeep"));
    assert!(dockerfile.contains("ARG BASE=alpine:3\nFROM ${BASE}"));
}
