//! A real Docker Engine and compose CLI: the report that started forgekeep played on real
//! containers; stacks found by the compose project they run as; named, external and
//! anonymous volumes; a backup of a running stack and a restore into a named volume.
//!
//! Every stack lives in a fresh folder with a name of its own (the compose project is
//! named after it), runs with `network_mode: none`, and leaves nothing behind
//! (`engine::Stack`). Without an engine each test prints one SKIP line.

use crate::engine::{self, docker_ok, unique, Stack};
use crate::util::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The compose file of woodpecker-ci/woodpecker#4850, as its author wrote it, without
/// network: Gitea's `jwt/` is on no volume of the file, so it lands in the rootless
/// image's anonymous `/var/lib/gitea` volume.
fn report() -> String {
    include_str!("fixtures/compose/report/docker-compose.yml")
        .replace("\n    image: ", "\n    network_mode: none\n    image: ")
}

const JWT: &str = "/var/lib/gitea/jwt/private.pem";

/// Folders a rootless forge writes into, made as its docs say (`chown 1000:1000`).
fn forge_folders(t: &TestDir, dirs: &[&str]) {
    for d in dirs {
        let p = t.mkdir(d, 0o755);
        nix::unistd::chown(&p, Some(1000.into()), Some(1000.into())).unwrap();
    }
}

/// `forgekeep check --json --compose FILE EXTRA` with `env` added.
fn fk_check(
    file: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, serde_json::Value) {
    let mut c = fk_cmd(&["check", "--json", "--compose", file.to_str().unwrap()]);
    c.args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let v = json_of(&o);
    (o, v)
}

fn finding_at<'a>(v: &'a serde_json::Value, code: &str, path: &str) -> &'a serde_json::Value {
    findings_with(v, code)
        .into_iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no {code} finding at {path}: {v}"))
}

/// The first `…` of a fix: the command it says to run.
fn command_of(fix: &str) -> String {
    fix.split('`').nth(1).unwrap().to_string()
}

/// `forgekeep backup --compose FILE` to `archive`; exits 0 or 3 (not-persistent
/// findings are errors in the report, yet the archive is written).
fn backup_compose(file: &Path, recipient: &str, archive: &Path, extra: &[&str]) {
    let mut args = vec![
        "backup",
        "--compose",
        file.to_str().unwrap(),
        "-r",
        recipient,
        "-o",
        archive.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = fk(&args);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
}

/// The manifest source recorded for a container path.
fn source_in_container<'a>(list: &'a serde_json::Value, container: &str) -> &'a serde_json::Value {
    list["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["container_path"] == container)
        .unwrap_or_else(|| panic!("no source for {container}: {}", list["sources"]))
}

#[test]
fn the_report_played_for_real() {
    let Some(docker) = engine::docker("docker::the_report_played_for_real") else {
        return;
    };
    let t = TestDir::new();
    let name = unique("report");
    let file = t.write(
        &format!("{name}/docker-compose.yml"),
        report().as_bytes(),
        0o644,
    );
    t.write(
        &format!("{name}/.env"),
        b"WOODPECKER_AGENT_SECRET=test-only-agent-secret\n",
        0o600,
    );
    let at = |p: &str| t.join(&format!("{name}/{p}"));
    forge_folders(
        &t,
        &[
            &format!("{name}/gitea"),
            &format!("{name}/gitea/git"),
            &format!("{name}/gitea/data"),
            &format!("{name}/gitea/config"),
        ],
    );
    let stack = Stack::new(docker, &file);

    // The loss, for real: `down && up` gives Gitea a new key.
    stack.up();
    let k1 = stack.exec("gitea", &["cat", JWT]);
    stack.down();
    stack.up();
    let k2 = stack.exec("gitea", &["cat", JWT]);
    assert_ne!(k1, k2, "down && up made no new key");

    // check names it: the volume line, the container to copy it from.
    let (o, v) = fk_check(&file, &[], &[]);
    expect_code(&o, 1);
    let f = finding_at(&v, "not-persistent", JWT);
    assert_eq!(f["severity"], "error");
    let fix = f["fix"].as_str().unwrap();
    assert!(fix.contains("`./gitea/jwt:/var/lib/gitea/jwt`"), "{fix}");
    let container = stack.container_name("gitea");
    assert!(
        fix.contains(&format!(
            "`mkdir -p {jwt} && docker cp {container}:/var/lib/gitea/jwt/. - | tar -x --numeric-owner -C {jwt}`",
            jwt = at("gitea/jwt").display()
        )),
        "{fix}"
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("this run keeps the current one"),
        "{f}"
    );
    // The listing marks the key read from the anonymous volume as the error it is.
    let text = stdout(&fk(&["check", "--compose", file.to_str().unwrap()]));
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("error")
            && l.contains(&format!("{}/volumes/", engine::root_dir()))
            && l.contains("/jwt/private.pem")),
        "{text}"
    );
    // Woodpecker's database, through its named volume `<folder>_woodpecker-server-data`.
    let db = item_paths(&v)
        .into_iter()
        .find(|p| p.ends_with("/woodpecker.sqlite"))
        .unwrap_or_else(|| panic!("{v}"));
    let mountpoint = docker_ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        &format!("{name}_woodpecker-server-data"),
    ]);
    assert_eq!(db, format!("{}/woodpecker.sqlite", mountpoint.trim()));

    // A backup of the running stack keeps the live key, read from the anonymous volume.
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("report.tar.zst.age");
    backup_compose(&file, &recipient, &archive, &[]);
    let list = list_json(&archive, &key);
    let kept = source_in_container(&list, JWT);
    assert_eq!(kept["ownership"], "numeric", "{kept}");
    let kept_at = PathBuf::from(kept["path"].as_str().unwrap());
    assert!(
        kept_at.starts_with(format!("{}/volumes", engine::root_dir())),
        "{kept_at:?}"
    );
    let inspect = t.mkdir("inspect", 0o700);
    expect_code(
        &restore(&archive, &key, &["--to", inspect.to_str().unwrap()]),
        0,
    );
    let archived = fs::read_to_string(inspect.join(kept_at.strip_prefix("/").unwrap())).unwrap();
    assert_eq!(archived, k2);
    assert!(
        source_in_container(&list, "/var/lib/woodpecker/woodpecker.sqlite")["path"]
            .as_str()
            .unwrap()
            .ends_with("/woodpecker.sqlite")
    );

    // Nobody acted: the next `down && up` loses that key too.
    stack.down();
    stack.up();
    let k3 = stack.exec("gitea", &["cat", JWT]);
    assert_ne!(k3, k2);

    // The fix, as written: copy out (owners kept), add the line, recreate: the forge
    // keeps the key it has.
    let (_o, v) = fk_check(&file, &[], &[]);
    let fix = finding_at(&v, "not-persistent", JWT)["fix"]
        .as_str()
        .unwrap()
        .to_string();
    run_ok(std::process::Command::new("sh").args(["-c", &command_of(&fix)]));
    let text = fs::read_to_string(&file).unwrap().replace(
        "      - ./gitea/config:/etc/gitea\n",
        "      - ./gitea/config:/etc/gitea\n      - ./gitea/jwt:/var/lib/gitea/jwt\n",
    );
    fs::write(&file, text).unwrap();
    stack.up();
    assert_eq!(stack.exec("gitea", &["cat", JWT]), k3);
    assert_eq!(
        stack.exec("gitea", &["stat", "-c", "%u", JWT]).trim(),
        "1000"
    );
    let (_o, v) = fk_check(&file, &[], &[]);
    assert!(
        !findings_with(&v, "not-persistent")
            .iter()
            .any(|f| f["path"] == JWT),
        "{v}"
    );
    let host_key = at("gitea/jwt/private.pem");
    assert!(
        item_paths(&v).contains(&host_key.display().to_string()),
        "{v}"
    );

    // And the report's ending: the key from the archive back into the host folder; after
    // a recreation the container serves it, owned by the image's uid.
    let from = kept_at.parent().unwrap().display().to_string();
    let o = restore(
        &archive,
        &key,
        &[
            "--only",
            kept_at.to_str().unwrap(),
            "--relocate",
            &format!("{from}={}", at("gitea/jwt").display()),
            "--force",
        ],
    );
    expect_code(&o, 0);
    assert_eq!(fs::read_to_string(&host_key).unwrap(), k2);
    assert_eq!(fs::metadata(&host_key).unwrap().uid(), 1000);
    stack.down();
    stack.up();
    assert_eq!(stack.exec("gitea", &["cat", JWT]), k2);
    assert_eq!(
        stack.exec("gitea", &["stat", "-c", "%u", JWT]).trim(),
        "1000"
    );
}

/// The mountpoint of a docker volume.
fn mountpoint(volume: &str) -> PathBuf {
    PathBuf::from(docker_ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", volume]).trim())
}

#[test]
fn a_stack_started_with_dash_p_is_found_backed_up_running_and_restored_into_its_volume() {
    // Issue 13 item 10: `docker-compose -p NAME` stacks had "named volumes that do not exist".
    let Some(docker) = engine::docker(
        "docker::a_stack_started_with_dash_p_is_found_backed_up_running_and_restored_into_its_volume",
    ) else {
        return;
    };
    let t = TestDir::new();
    let folder = unique("named");
    let file = t.write(
        &format!("{folder}/docker-compose.yml"),
        b"services:\n  gitea:\n    image: gitea/gitea:1.22\n    network_mode: none\n    volumes:\n      - gitea:/data\nvolumes:\n  gitea:\n",
        0o644,
    );
    let project = unique("fkp");
    let mut stack = Stack::new(docker, &file);
    stack.project = Some(project.clone());
    stack.up();
    let live_key = stack.exec("gitea", &["cat", "/data/gitea/jwt/private.pem"]);
    let volume = mountpoint(&format!("{project}_gitea"));
    let jwt = volume.join("gitea/jwt/private.pem");
    let db = volume.join("gitea/gitea.db");

    // Nothing says `-p` but the containers' labels: forgekeep asks the engine.
    let (o, v) = fk_check(&file, &["--with-db"], &[]);
    let items = item_paths(&v);
    for p in [&jwt, &db] {
        assert!(items.contains(&p.display().to_string()), "{p:?}: {v}");
    }
    assert!(findings_with(&v, "volume-unknown").is_empty(), "{v}");
    assert!(
        findings_with(&v, "config-problem").iter().any(|f| {
            let m = f["message"].as_str().unwrap();
            m.contains(&format!("run as compose project {project}"))
                && m.contains(&format!("COMPOSE_PROJECT_NAME={project}"))
        }),
        "{v}"
    );
    assert!(code(&o) != 2, "{}", stderr(&o));
    // Named explicitly, the same.
    let (_o, v) = fk_check(&file, &[], &[("COMPOSE_PROJECT_NAME", project.as_str())]);
    assert!(item_paths(&v).contains(&jwt.display().to_string()), "{v}");

    // A backup of the running stack: the database through SQLite's online backup.
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("named.tar.zst.age");
    backup_compose(&file, &recipient, &archive, &["--with-db"]);
    let list = list_json(&archive, &key);
    assert_eq!(
        source_in_container(&list, "/data/gitea/jwt/private.pem")["path"],
        jwt.display().to_string()
    );

    // The volume is gone; named volumes of an unknown project say how to name it.
    stack.compose(&["down", "-v"]);
    let (_o, v) = fk_check(&file, &[], &[]);
    let unknown = findings_with(&v, "volume-unknown");
    assert!(
        unknown.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("run forgekeep with COMPOSE_PROJECT_NAME=NAME")),
        "{v}"
    );

    // A restore into a new, empty named volume of the same name; the forge, started on
    // it, serves the archived key (it makes none of its own) as uid 1000.
    stack.compose(&["up", "--no-start"]);
    assert!(!jwt.exists());
    expect_code(&restore(&archive, &key, &[]), 0);
    assert_eq!(fs::metadata(&jwt).unwrap().uid(), 1000);
    stack.up();
    assert_eq!(
        stack.exec("gitea", &["cat", "/data/gitea/jwt/private.pem"]),
        live_key
    );
    assert_eq!(
        stack
            .exec(
                "gitea",
                &["stat", "-c", "%u", "/data/gitea/jwt/private.pem"]
            )
            .trim(),
        "1000"
    );
    let c = rusqlite::Connection::open(&db).unwrap();
    let first: String = c
        .query_row("SELECT k FROM stand_in", [], |r| r.get(0))
        .unwrap();
    assert_eq!(first, "first start");
}

#[test]
fn volumes_named_by_the_file_and_external_ones_are_found_through_the_engine() {
    let Some(docker) = engine::docker(
        "docker::volumes_named_by_the_file_and_external_ones_are_found_through_the_engine",
    ) else {
        return;
    };
    let t = TestDir::new();
    // Top-level `name:` (compose v2; compose v1 refuses it, so the volumes are made here
    // as compose v2 would name them) and an external volume under its own name.
    let name = unique("fkn");
    let external = unique("fkext");
    let file = t.write(
        "stack/compose.yaml",
        format!(
            "name: {name}\nservices:\n  gitea:\n    image: gitea/gitea:1.22-rootless\n    network_mode: none\n    volumes:\n      - data:/var/lib/gitea\n      - config:/etc/gitea\nvolumes:\n  data:\n  config:\n    external: true\n    name: {external}\n"
        )
        .as_bytes(),
        0o644,
    );
    let mut stack = Stack::new(docker, &file);
    for v in [format!("{name}_data"), external.clone()] {
        docker_ok(&["volume", "create", &v]);
        stack.extra_volumes.push(v);
    }
    let ini = mountpoint(&external).join("app.ini");
    fs::write(
        &ini,
        "WORK_PATH = /var/lib/gitea\n[server]\nAPP_DATA_PATH = /var/lib/gitea\nDISABLE_SSH = true\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = test-only\n",
    )
    .unwrap();
    let jwt = mountpoint(&format!("{name}_data")).join("jwt/private.pem");
    openssl_rsa(&jwt);

    let (_o, v) = fk_check(&file, &[], &[]);
    let items = item_paths(&v);
    for p in [&ini, &jwt] {
        assert!(items.contains(&p.display().to_string()), "{p:?}: {v}");
    }
    assert!(findings_with(&v, "volume-unknown").is_empty(), "{v}");

    // COMPOSE_PROJECT_NAME beats `name:`: that project has no such volume, and says so.
    let (_o, v) = fk_check(
        &file,
        &[],
        &[("COMPOSE_PROJECT_NAME", "fk-no-such-project")],
    );
    let f = finding_at(&v, "volume-unknown", "/var/lib/gitea/jwt/private.pem");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("named volume fk-no-such-project_data does not exist"),
        "{f}"
    );
    // The external volume keeps its name whatever the project.
    assert!(item_paths(&v).contains(&ini.display().to_string()), "{v}");
    drop(stack);
}

#[test]
fn a_stack_without_volumes_is_read_from_its_running_container() {
    // Everything of the rootful image in its anonymous `/data`: while the container
    // exists, forgekeep reads the configuration there and keeps the keys, each still an
    // error; what it only looks at (the database without --with-db) is said too.
    let Some(docker) =
        engine::docker("docker::a_stack_without_volumes_is_read_from_its_running_container")
    else {
        return;
    };
    let t = TestDir::new();
    let folder = unique("bare");
    let file = t.write(
        &format!("{folder}/docker-compose.yml"),
        b"services:\n  gitea:\n    image: gitea/gitea:1.22\n    network_mode: none\n",
        0o644,
    );
    let stack = Stack::new(docker, &file);
    stack.up();
    let (o, v) = fk_check(&file, &[], &[]);
    expect_code(&o, 1);
    for (path, says) in [
        ("/data/gitea/conf/app.ini", "this run keeps the current one"),
        (
            "/data/gitea/jwt/private.pem",
            "this run keeps the current one",
        ),
        ("/data/gitea/gitea.db", "this run does not keep it"),
    ] {
        let f = finding_at(&v, "not-persistent", path);
        assert!(f["message"].as_str().unwrap().contains(says), "{f}");
        assert_eq!(f["severity"], "error", "{f}");
    }
    let (_o, v) = fk_check(&file, &["--with-db"], &[]);
    assert!(
        finding_at(&v, "not-persistent", "/data/gitea/gitea.db")["message"]
            .as_str()
            .unwrap()
            .contains("this run keeps the current one"),
        "{v}"
    );
    assert!(
        item_paths(&v)
            .iter()
            .any(|p| p.starts_with(&engine::root_dir()) && p.ends_with("/gitea/gitea.db")),
        "{v}"
    );

    // Gone with the container: still said, and nothing is left to copy.
    stack.down();
    let (_o, v) = fk_check(&file, &[], &[]);
    let f = finding_at(&v, "not-persistent", "/data/gitea/jwt/private.pem");
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .starts_with("nothing to copy: no container of service gitea exists"),
        "{f}"
    );
}

#[test]
fn a_link_the_container_makes_in_its_volume_never_leads_root_to_the_hosts_files() {
    // Issue: a folder on the way to a key was resolved through symlinks. The forge's
    // container (here the rootless stand-in, as uid 1000 in its own named volume)
    // replaces jwt/ by a link to a folder of the HOST; forgekeep, root on the host, must
    // not follow it.
    let name =
        "docker::a_link_the_container_makes_in_its_volume_never_leads_root_to_the_hosts_files";
    let Some(docker) = engine::docker(name) else {
        return;
    };
    let t = TestDir::new();
    let project = unique("redirect");
    let file = t.write(
        &format!("{project}/docker-compose.yml"),
        b"services:\n  gitea:\n    image: gitea/gitea:1.23-rootless\n    network_mode: none\n    volumes:\n      - gitea-data:/var/lib/gitea\n      - gitea-config:/etc/gitea\nvolumes:\n  gitea-data:\n  gitea-config:\n",
        0o644,
    );
    let host_secret = t.write(
        "host-secrets/private.pem",
        b"-----BEGIN PRIVATE KEY-----\nthe host's own\n-----END PRIVATE KEY-----\n",
        0o600,
    );
    let stack = Stack::new(docker, &file);
    stack.up();
    let (_, v) = fk_check(&file, &[], &[]);
    assert!(findings_with(&v, "untrusted-symlink").is_empty(), "{v}");
    let jwt = item_paths(&v)
        .into_iter()
        .find(|p| p.ends_with("/jwt/private.pem"))
        .unwrap_or_else(|| panic!("the key in the volume: {v}"));

    stack.exec(
        "gitea",
        &[
            "sh",
            "-c",
            &format!(
                "rm -r /var/lib/gitea/jwt && ln -s {} /var/lib/gitea/jwt",
                host_secret.parent().unwrap().display()
            ),
        ],
    );
    let (o, v) = fk_check(&file, &[], &[]);
    expect_code(&o, 1);
    let f = finding_at(&v, "untrusted-symlink", &jwt);
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"].as_str().unwrap().contains("the container"),
        "{f}"
    );
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    backup_compose(&file, &recipient, &archive, &[]);
    let entries = entry_paths(&list_json(&archive, &key));
    assert!(
        entries.iter().any(|p| p.ends_with("/app.ini")),
        "the rest is kept: {entries:?}"
    );
    assert!(
        !entries
            .iter()
            .any(|p| p.contains("host-secrets") || p.contains("/jwt")),
        "{entries:?}"
    );
}
