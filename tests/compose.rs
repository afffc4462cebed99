//! `--compose FILE`: a forge's secrets found through its compose service's volumes, by
//! the real binary, with fixtures beside the compose file (paths relative to it).
//!
//! These tests are about the file alone: forgekeep is shown a docker whose engine does
//! not answer, as on a host where forgekeep runs apart from the engine. What a real
//! engine adds is in `docker.rs`.

use crate::util::*;
use std::fs;
use std::path::Path;

const APP_INI_ROOTFUL: &str = "APP_NAME = test\nRUN_USER = git\n\
[server]\nAPP_DATA_PATH = /data/gitea\nSSH_DOMAIN = localhost\n\
[database]\nDB_TYPE = sqlite3\nPATH = /data/gitea/gitea.db\n\
[security]\nINSTALL_LOCK = true\nSECRET_KEY = test-only-secret-key\n";

/// What the rootless image's template writes (docker/rootless/etc/templates/app.ini).
const APP_INI_ROOTLESS: &str = "APP_NAME = test\nRUN_USER = git\nWORK_PATH = /var/lib/gitea\n\
[server]\nAPP_DATA_PATH = /var/lib/gitea\nSTART_SSH_SERVER = true\n\
[database]\nDB_TYPE = sqlite3\nPATH = /var/lib/gitea/data/gitea.db\n\
[security]\nINSTALL_LOCK = true\nSECRET_KEY = test-only-secret-key\n";

/// The compose file of woodpecker-ci/woodpecker#4850, the report that started the project.
const REPORT: &str = include_str!("fixtures/compose/report/docker-compose.yml");

/// `forgekeep ARGS` with a docker that cannot reach any engine.
fn fk_no_engine(args: &[&str]) -> std::process::Output {
    fk_cmd(args)
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/forgekeep-test/docker.sock",
        )
        .output()
        .unwrap()
}

fn check(compose: &Path) -> (std::process::Output, serde_json::Value) {
    let o = fk_no_engine(&["check", "--json", "--compose", compose.to_str().unwrap()]);
    let v = json_of(&o);
    (o, v)
}

#[test]
fn rootful_data_volume_archives_host_paths_numeric_with_container_paths() {
    let t = TestDir::new();
    let compose = t.write(
        "forge/docker-compose.yml",
        b"services:\n  server:\n    image: gitea/gitea:1.22\n    volumes:\n      - ./data:/data\n      - /etc/timezone:/etc/timezone:ro\n",
        0o644,
    );
    let ini = t.write(
        "forge/data/gitea/conf/app.ini",
        APP_INI_ROOTFUL.as_bytes(),
        0o640,
    );
    let jwt = t.join("forge/data/gitea/jwt/private.pem");
    openssl_rsa(&jwt);
    let hostkey = t.join("forge/data/ssh/ssh_host_ed25519_key");
    ssh_host_key(&hostkey, "ed25519", &[]);
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    let o = fk_no_engine(&[
        "backup",
        "--json",
        "--compose",
        compose.to_str().unwrap(),
        "-r",
        &recipient,
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert!(matches!(code(&o), 0 | 3), "{}\n{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    assert!(findings_with(&v, "not-persistent").is_empty(), "{v}");

    let list = list_json(&archive, &key);
    for (host, container) in [
        (&ini, "/data/gitea/conf/app.ini"),
        (&jwt, "/data/gitea/jwt/private.pem"),
    ] {
        let s = source_for(&list, host);
        assert_eq!(s["ownership"], "numeric", "{s}");
        assert_eq!(s["container_path"], container, "{s}");
        assert!(s["profile"].as_str().unwrap().starts_with("gitea"), "{s}");
    }
    let ssh = source_for(&list, &t.join("forge/data/ssh"));
    assert_eq!(ssh["ownership"], "numeric", "{ssh}");
    assert_eq!(ssh["container_path"], "/data/ssh", "{ssh}");
    let entries: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for p in [&ini, &jwt, &hostkey, &compose] {
        assert!(
            entries.contains(&p.to_str().unwrap()),
            "{p:?} in {entries:?}"
        );
    }
    // The compose file itself is kept (environment values may be secrets).
    assert!(source_for(&list, &compose)["profile"]
        .as_str()
        .unwrap()
        .starts_with("compose"));

    let mnt = t.mkdir("mnt", 0o755);
    let r = restore_under(&archive, &key, &mnt);
    expect_code(&r, 0);
    for p in [&ini, &jwt, &hostkey] {
        let back = mnt.join(p.strip_prefix("/").unwrap());
        assert_eq!(fs::read(back).unwrap(), fs::read(p).unwrap());
    }
}

#[test]
fn the_reports_rootless_setup_names_the_lost_jwt_key_and_the_volume_that_fixes_it() {
    let t = TestDir::new();
    let compose = t.write("stack/docker-compose.yml", REPORT.as_bytes(), 0o644);
    t.write(
        "stack/.env",
        b"WOODPECKER_AGENT_SECRET=test-only-agent-secret\n",
        0o600,
    );
    t.write(
        "stack/gitea/config/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o640,
    );
    t.mkdir("stack/gitea/git", 0o755);
    t.mkdir("stack/gitea/data", 0o755);

    let (o, v) = check(&compose);
    expect_code(&o, 1);
    assert!(
        !stdout(&o).contains("test-only"),
        "a secret value in the report"
    );
    let lost = findings_with(&v, "not-persistent");
    let jwt = lost
        .iter()
        .find(|f| f["path"] == "/var/lib/gitea/jwt/private.pem")
        .unwrap_or_else(|| panic!("no not-persistent finding for the JWT key: {v}"));
    assert_eq!(jwt["severity"], "error");
    let fix = jwt["fix"].as_str().unwrap();
    assert!(fix.contains("`./gitea/jwt:/var/lib/gitea/jwt`"), "{fix}");
    // Issue 13 item 9: a command compose v1 has too (no `docker compose cp`), naming the
    // container (here by its compose labels: no engine to ask), owners kept, the host
    // side next to the compose file.
    let host = t.join("stack/gitea/jwt");
    let copy = format!(
        "`mkdir -p {h} && docker cp \"$(docker ps -q -f label=com.docker.compose.project=stack -f label=com.docker.compose.service=gitea)\":/var/lib/gitea/jwt/. - | tar -x --numeric-owner -C {h}`",
        h = host.display()
    );
    assert!(fix.contains(&copy), "{fix}\n{copy}");
    assert!(!fix.contains("docker compose cp"), "{fix}");
    assert!(
        fix.contains(&format!("`docker-compose -f {} up -d`", compose.display())),
        "{fix}"
    );

    // Following the advice: the volume line, and the key copied out beside it.
    let fixed = REPORT.replace(
        "      - ./gitea/config:/etc/gitea\n",
        "      - ./gitea/config:/etc/gitea\n      - ./gitea/jwt:/var/lib/gitea/jwt\n",
    );
    fs::write(&compose, fixed).unwrap();
    let key = t.join("stack/gitea/jwt/private.pem");
    openssl_rsa(&key);
    let (_, v) = check(&compose);
    assert!(
        !v["findings"].as_array().unwrap().iter().any(|f| f["path"]
            .as_str()
            .unwrap()
            .contains("jwt")
            && matches!(
                f["code"].as_str(),
                Some("not-persistent" | "secret-missing")
            )),
        "{v}"
    );
    assert!(item_paths(&v).contains(&key.display().to_string()), "{v}");
}

#[test]
fn long_volume_syntax_and_default_interpolation_locate_the_keys() {
    let t = TestDir::new();
    let compose = t.write(
        "stack/compose.yaml",
        b"services:
  forge:
    image: ${GITEA_IMAGE:-docker.gitea.com/gitea:1.23-rootless}
    volumes:
      - type: bind
        source: ${FK_TEST_GITEA_DATA:-./gitea/data}
        target: /var/lib/gitea
      - type: bind
        source: ${FK_TEST_GITEA_CONFIG:-./gitea/config}
        target: /etc/gitea
",
        0o644,
    );
    t.write(
        "stack/gitea/config/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o640,
    );
    let jwt = t.join("stack/gitea/data/jwt/private.pem");
    openssl_rsa(&jwt);
    let rsa = t.join("stack/gitea/data/ssh/gitea.rsa");
    ssh_host_key(&rsa, "rsa", &["-b", "2048", "-m", "PEM"]);

    let (o, v) = check(&compose);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    assert!(findings_with(&v, "not-persistent").is_empty(), "{v}");
    let paths = item_paths(&v);
    for p in [&jwt, &rsa, &t.join("stack/gitea/config/app.ini")] {
        assert!(
            paths.contains(&p.display().to_string()),
            "{p:?} in {paths:?}"
        );
    }

    // The variable set (as the process environment would): the other folder is used.
    let elsewhere = t.join("srv/gitea-data");
    let moved = elsewhere.join("jwt/private.pem");
    openssl_rsa(&moved);
    let o = fk_cmd(&["check", "--json", "--compose", compose.to_str().unwrap()])
        .env(
            "DOCKER_HOST",
            "unix:///nonexistent/forgekeep-test/docker.sock",
        )
        .env("FK_TEST_GITEA_DATA", &elsewhere)
        .output()
        .unwrap();
    let v = json_of(&o);
    let paths = item_paths(&v);
    assert!(paths.contains(&moved.display().to_string()), "{paths:?}");
    assert!(!paths.contains(&jwt.display().to_string()), "{paths:?}");
}

#[test]
fn forgejo_rootless_compose_collects_actions_and_lfs_signing_keys() {
    // Forgejo 16's rootless image: app.ini in /var/lib/gitea/custom/conf, the Actions
    // ID-token key (v15+) and, with the LFS server on, an asymmetric LFS key (v16+).
    let t = TestDir::new();
    let compose = t.write(
        "stack/compose.yaml",
        b"services:
  forgejo:
    image: codeberg.org/forgejo/forgejo:16-rootless
    environment:
      - FORGEJO__server__LFS_JWT_SIGNING_ALGORITHM=EdDSA
      - FORGEJO__server__LFS_START_SERVER=true
    volumes:
      - ./forgejo/data:/var/lib/gitea
",
        0o644,
    );
    t.write(
        "stack/forgejo/data/custom/conf/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o640,
    );
    let jwt = t.join("stack/forgejo/data/jwt/private.pem");
    let actions = t.join("stack/forgejo/data/actions_id_token/private.pem");
    let lfs = t.join("stack/forgejo/data/lfs/private.pem");
    openssl_rsa(&jwt);
    openssl_rsa(&actions);
    openssl_ed25519(&lfs);
    ssh_host_key(
        &t.join("stack/forgejo/data/ssh/gitea.rsa"),
        "rsa",
        &["-b", "2048", "-m", "PEM"],
    );
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    let o = fk_no_engine(&[
        "backup",
        "--compose",
        compose.to_str().unwrap(),
        "-r",
        &recipient,
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let list = list_json(&archive, &key);
    for (p, container, what) in [
        (&jwt, "/var/lib/gitea/jwt/private.pem", "OAuth2"),
        (
            &actions,
            "/var/lib/gitea/actions_id_token/private.pem",
            "Actions OIDC",
        ),
        (&lfs, "/var/lib/gitea/lfs/private.pem", "LFS JWT"),
    ] {
        let s = source_for(&list, p);
        assert_eq!(s["container_path"], container, "{s}");
        assert!(s["what"].as_str().unwrap().contains(what), "{s}");
        assert!(s["profile"].as_str().unwrap().starts_with("forgejo"), "{s}");
    }
}

#[test]
fn app_ini_on_a_read_only_mount_is_a_config_problem() {
    // Review: `./gitea/config:/etc/gitea:ro` was not flagged, yet Gitea 1.22+ refuses to
    // start when it cannot write the secrets it generates back into app.ini.
    let t = TestDir::new();
    t.write(
        "stack/gitea/config/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o600,
    );
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.23-rootless\n    volumes:\n      - ./gitea/data:/var/lib/gitea\n      - ./gitea/config:/etc/gitea:ro\n",
        0o600,
    );
    let (_o, v) = check(&compose);
    let ro = findings_with(&v, "config-problem");
    assert!(
        ro.iter()
            .any(|f| f["message"].as_str().unwrap().contains("read-only mount")),
        "{v}"
    );
    // With every secret Gitea would generate already set, nothing needs writing: fine.
    t.write(
        "stack/gitea/config/app.ini",
        format!("{APP_INI_ROOTLESS}INTERNAL_TOKEN = t\n[oauth2]\nJWT_SECRET = j\n").as_bytes(),
        0o600,
    );
    let (_o, v) = check(&compose);
    assert!(
        !findings_with(&v, "config-problem")
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains("read-only mount")),
        "{v}"
    );
    t.write(
        "stack/gitea/config/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o600,
    );
    // Without :ro, no such finding.
    fs::write(
        &compose,
        "services:\n  gitea:\n    image: gitea/gitea:1.23-rootless\n    volumes:\n      - ./gitea/data:/var/lib/gitea\n      - ./gitea/config:/etc/gitea\n",
    )
    .unwrap();
    let (_o, v) = check(&compose);
    assert!(!findings_with(&v, "config-problem")
        .iter()
        .any(|f| f["message"].as_str().unwrap().contains("read-only mount")));
}

#[test]
fn woodpeckers_tokens_are_tied_to_giteas_jwt_key() {
    // FORGES.md §7: Woodpecker's database holds refresh tokens signed by Gitea's OAuth2
    // key; with the key on no persistent storage, backing up the database alone is the
    // report's failure waiting to happen.
    require("sqlite3");
    let t = TestDir::new();
    t.write(
        "stack/gitea/config/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o600,
    );
    t.mkdir("stack/woodpecker", 0o700);
    let db = t.join("stack/woodpecker/woodpecker.sqlite");
    run_ok(
        std::process::Command::new("sqlite3")
            .args([db.to_str().unwrap(), "create table users(token text);"]),
    );
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.23-rootless\n    volumes:\n      - ./gitea/git:/var/lib/gitea/git\n      - ./gitea/config:/etc/gitea\n  woodpecker-server:\n    image: woodpeckerci/woodpecker-server:v3\n    volumes:\n      - ./woodpecker:/var/lib/woodpecker\n",
        0o600,
    );
    let (_o, v) = check(&compose);
    let tie = findings_with(&v, "config-problem")
        .into_iter()
        .find(|f| f["message"].as_str().unwrap().contains("refresh tokens"))
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(tie["severity"], "warning", "{tie}");
    assert!(
        tie["message"].as_str().unwrap().contains("does NOT keep"),
        "{tie}"
    );
}

#[test]
fn a_service_built_from_an_official_image_is_that_forge() {
    // Issue 8 item 8: `build:` services were "not a forge or CI service", so their keys
    // and databases were never archived and nothing said so.
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:
  gitea:
    build: ./gitea-image
    volumes:
      - ./gitea/data:/var/lib/gitea
      - ./gitea/config:/etc/gitea
  ci:
    image: example/ci-server:local
    build:
      context: ./ci
      dockerfile: docker/Dockerfile.server
      args:
        WOODPECKER_VERSION: v3
    volumes:
      - ./ci/data:/var/lib/woodpecker
  mystery:
    image: example/gitea-custom:1
  runner:
    image: gitea/act_runner:0.2.11
  db:
    image: postgres:16
",
        0o644,
    );
    t.write(
        "stack/gitea-image/Dockerfile",
        b"# A theme on top of the official image.\nARG VERSION=1.22\nFROM docker.io/gitea/gitea:${VERSION}-rootless\nCOPY custom/ /var/lib/gitea/custom/\n",
        0o644,
    );
    t.write(
        "stack/ci/docker/Dockerfile.server",
        b"ARG WOODPECKER_VERSION=latest\nFROM alpine:3 AS certs\nRUN apk add ca-certificates\nFROM woodpeckerci/woodpecker-server:${WOODPECKER_VERSION}\nCOPY --from=certs /etc/ssl /etc/ssl\n",
        0o644,
    );
    t.write(
        "stack/gitea/config/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o600,
    );
    let jwt = t.join("stack/gitea/data/jwt/private.pem");
    openssl_rsa(&jwt);

    let (o, v) = check(&compose);
    let profiles = v["profiles"].as_array().unwrap();
    let by_service = |s: &str| {
        profiles
            .iter()
            .find(|p| p["service"] == s)
            .unwrap_or_else(|| panic!("no profile for service {s}: {v}"))
    };
    assert_eq!(by_service("gitea")["forge"], "gitea");
    assert_eq!(by_service("gitea")["layout"], "docker-rootless");
    assert_eq!(by_service("ci")["forge"], "woodpecker");
    assert!(item_paths(&v).contains(&jwt.display().to_string()), "{v}");

    // The look-alike is a warning, the runner a note; the database nothing.
    let about = |s: &str| {
        findings_with(&v, "config-problem")
            .into_iter()
            .filter(|f| f["message"].as_str().unwrap().contains(s))
            .collect::<Vec<_>>()
    };
    let mystery = about("service mystery");
    assert_eq!(mystery.len(), 1, "{v}");
    assert_eq!(mystery[0]["severity"], "warning");
    assert!(
        mystery[0]["message"]
            .as_str()
            .unwrap()
            .contains("looks like gitea"),
        "{}",
        mystery[0]
    );
    assert_eq!(about("service runner")[0]["severity"], "info");
    assert!(about("service db").is_empty(), "{v}");
    assert!(code(&o) >= 1, "{}", stderr(&o));

    // detect says what the built service is built from.
    let o = fk_no_engine(&["detect", "--compose", compose.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(
        text.contains(
            "gitea: built from docker.io/gitea/gitea:1.22-rootless (gitea, docker rootless)"
        ),
        "{text}"
    );
    assert!(text.contains("warning: service mystery"), "{text}");

    // A file whose only forge-like service cannot be classified is checked, not refused.
    let lone = t.write(
        "lone/docker-compose.yml",
        b"services:\n  forge:\n    build: ./forgejo-custom\n",
        0o644,
    );
    let (o, v) = check(&lone);
    expect_code(&o, 3);
    let f = &findings_with(&v, "config-problem")[0];
    assert!(
        f["message"].as_str().unwrap().contains("its Dockerfile"),
        "{f}"
    );
}

#[test]
fn unrelated_binds_do_not_decide_where_the_fix_puts_a_secret() {
    // Issue 8: `/etc/timezone` gave `/etc/config:/etc/gitea`, `/root/.docker` gave
    // `/root/woodpecker:/etc/woodpecker`.
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:
  gitea:
    image: gitea/gitea:1.22-rootless
    volumes:
      - ./gitea/data:/var/lib/gitea
      - /etc/timezone:/etc/timezone:ro
      - /etc/localtime:/etc/localtime:ro
  woodpecker-agent:
    image: woodpeckerci/woodpecker-agent:v3
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - /root/.docker:/root/.docker
",
        0o644,
    );
    let (_o, v) = check(&compose);
    let fix_for = |path: &str| {
        findings_with(&v, "not-persistent")
            .into_iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("no not-persistent finding for {path}: {v}"))["fix"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let app_ini = fix_for("/etc/gitea/app.ini");
    assert!(app_ini.contains("`./gitea/config:/etc/gitea`"), "{app_ini}");
    let agent = fix_for("/etc/woodpecker/agent.conf");
    assert!(
        agent.contains("`./woodpecker-agent/woodpecker:/etc/woodpecker`"),
        "{agent}"
    );
    let all = v["findings"].to_string();
    for wrong in ["/etc/config", "/root/woodpecker", "/var/run/woodpecker"] {
        assert!(!all.contains(wrong), "{wrong} in {all}");
    }
}

#[test]
fn an_empty_mounted_folder_says_the_stack_has_not_run_yet() {
    // Issue 8: a stack not started yet got "check the service's volumes", as if the mount
    // were wrong.
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.22-rootless\n    volumes:\n      - ./gitea/data:/var/lib/gitea\n      - ./gitea/config:/etc/gitea\n",
        0o644,
    );
    t.mkdir("stack/gitea/config", 0o755); // made by hand; data/ not even that
    let (o, v) = check(&compose);
    expect_code(&o, 1);
    let missing = findings_with(&v, "secret-missing");
    let f = missing
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with("gitea/config/app.ini")
        })
        .unwrap_or_else(|| panic!("{v}"));
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "the folder {} mounted at /etc/gitea is empty: the stack has not been started with it yet",
            t.join("stack/gitea/config").display()
        )),
        "{message}"
    );
    let fix = f["fix"].as_str().unwrap();
    assert!(fix.starts_with("start the stack once"), "{fix}");
    assert!(!fix.contains("check the service's volumes"), "{fix}");

    // Once something is there, the usual advice.
    t.write("stack/gitea/config/other.ini", b"x", 0o600);
    let (_o, v) = check(&compose);
    let f = findings_with(&v, "secret-missing")
        .into_iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with("gitea/config/app.ini")
        })
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert!(!f["message"].as_str().unwrap().contains("is empty"), "{f}");
}

#[test]
fn a_legacy_version_1_file_is_named_and_read() {
    // compose 1.x still runs files with services at the top level; its named volumes have
    // no project prefix.
    let t = TestDir::new();
    let compose = t.write(
        "old/docker-compose.yml",
        b"gitea:\n  image: gitea/gitea:1.22\n  volumes:\n    - ./data:/data\n    - gitea-ssh:/data/ssh\n",
        0o644,
    );
    t.write(
        "old/data/gitea/conf/app.ini",
        APP_INI_ROOTFUL.as_bytes(),
        0o600,
    );
    let jwt = t.join("old/data/gitea/jwt/private.pem");
    openssl_rsa(&jwt);
    let (_o, v) = check(&compose);
    assert!(item_paths(&v).contains(&jwt.display().to_string()), "{v}");
    let legacy = findings_with(&v, "config-problem")
        .into_iter()
        .find(|f| {
            f["message"]
                .as_str()
                .unwrap()
                .starts_with("a legacy compose file (version 1")
        })
        .unwrap_or_else(|| panic!("the file is not named legacy: {v}"));
    assert_eq!(legacy["severity"], "info");
    // Its volume is the docker volume `gitea-ssh`, not `old_gitea-ssh`.
    let unknown = findings_with(&v, "volume-unknown");
    assert!(
        unknown.iter().any(|f| f["message"]
            .as_str()
            .unwrap()
            .contains("named volume gitea-ssh:")),
        "{v}"
    );
    let o = fk_no_engine(&["detect", "--compose", compose.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("(project old, a legacy version 1 file)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_symlinked_folder_in_a_bind_mount_is_never_followed_to_the_host_regression_redirected_jwt() {
    // Review: `resolve_source` resolved symlinks in a source's folders. A container that
    // can write its bind-mounted folder replaced `jwt/` by a link to a host folder, and
    // root archived the host's file in its place (a restore would write there too).
    let t = TestDir::new();
    let compose = t.write(
        "forge/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.23-rootless\n    volumes:\n      - ./gitea/data:/var/lib/gitea\n      - ./gitea/config:/etc/gitea\n",
        0o644,
    );
    let ini = t.write(
        "forge/gitea/config/app.ini",
        APP_INI_ROOTLESS.as_bytes(),
        0o640,
    );
    // What the container made: its jwt/ folder is now a link to a folder of the host
    // (root's own, holding a file of the name the profile asks for).
    let host_secret = t.write(
        "root-only/private.pem",
        b"-----BEGIN PRIVATE KEY-----\nthe host's, not the forge's\n-----END PRIVATE KEY-----\n",
        0o600,
    );
    t.mkdir("forge/gitea/data", 0o755);
    std::os::unix::fs::symlink(
        host_secret.parent().unwrap(),
        t.join("forge/gitea/data/jwt"),
    )
    .unwrap();
    let jwt = t.join("forge/gitea/data/jwt/private.pem");

    // check names it: an error, the link, who could have made it; never the host file.
    let (o, v) = check(&compose);
    expect_code(&o, 1);
    let f = findings_with(&v, "untrusted-symlink");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["severity"], "error");
    assert_eq!(f[0]["path"], jwt.to_str().unwrap());
    let msg = f[0]["message"].as_str().unwrap();
    for part in [
        t.join("forge/gitea/data/jwt").to_str().unwrap(),
        "the container",
        "NOT archived",
    ] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    assert!(!item_paths(&v)
        .iter()
        .any(|p| p.contains("root-only") || p.ends_with("jwt/private.pem")));

    // backup keeps the rest (exit 3) and nothing of the host's folder.
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    let o = fk_no_engine(&[
        "backup",
        "--compose",
        compose.to_str().unwrap(),
        "-r",
        &recipient,
        "-o",
        archive.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    assert!(
        stderr(&o).contains("error [untrusted-symlink]"),
        "{}",
        stderr(&o)
    );
    let entries = entry_paths(&list_json(&archive, &key));
    assert!(entries.contains(&ini.display().to_string()), "{entries:?}");
    assert!(
        !entries
            .iter()
            .any(|p| p.contains("root-only") || p.contains("/jwt")),
        "{entries:?}"
    );

    // A PATH the user names keeps its documented behaviour: its folders are resolved
    // (the user chose the path), and the file is stored under its real path.
    let named = t.join("named.tar.zst.age");
    backup(&[&jwt], &recipient, &named, &[]);
    assert!(entry_paths(&list_json(&named, &key)).contains(&host_secret.display().to_string()));
}
