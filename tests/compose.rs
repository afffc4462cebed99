//! `--compose FILE`: a forge's secrets found through its compose service's volumes, by
//! the real binary, with fixtures beside the compose file (paths relative to it).

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
const REPORT: &str = "\
services:
  gitea:
    image: gitea/gitea:1.23-rootless
    volumes:
      - ./gitea/git:/var/lib/gitea/git
      - ./gitea/data:/var/lib/gitea/data
      - ./gitea/config:/etc/gitea
  woodpecker-server:
    image: woodpeckerci/woodpecker-server:v3
    environment:
      - WOODPECKER_GITEA=true
      - WOODPECKER_AGENT_SECRET=${WOODPECKER_AGENT_SECRET}
    volumes:
      - woodpecker-server-data:/var/lib/woodpecker/
volumes:
  woodpecker-server-data:
";

fn check(compose: &Path) -> (std::process::Output, serde_json::Value) {
    let o = fk(&["check", "--json", "--compose", compose.to_str().unwrap()]);
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
    let o = fk(&[
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
    assert!(fix.contains("./gitea/jwt:/var/lib/gitea/jwt"), "{fix}");
    assert!(
        fix.contains("docker compose cp gitea:/var/lib/gitea/jwt ./gitea/jwt"),
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
    let o = fk(&[
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
