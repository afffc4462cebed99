//! `detect`: the forges on a host (here a host's root mounted elsewhere, `--root`) and
//! what each profile would collect.

use crate::util::*;

#[test]
fn finds_a_systemd_gitea_and_a_compose_project_on_a_mounted_root() {
    let t = TestDir::new();
    t.write(
        "host/etc/systemd/system/gitea.service",
        b"[Service]\nUser=git\nExecStart=/usr/local/bin/gitea web --config /etc/gitea/app.ini\nEnvironment=GITEA_WORK_DIR=/var/lib/gitea\n",
        0o644,
    );
    t.write(
        "host/etc/gitea/app.ini",
        b"WORK_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = s\n",
        0o640,
    );
    t.mkdir("host/var/lib/gitea/data/jwt", 0o700);
    let pem = t.join("host/var/lib/gitea/data/jwt/private.pem");
    openssl_ed25519(&pem);
    t.write(
        "host/srv/forge/docker-compose.yml",
        b"services:\n  ci:\n    image: woodpeckerci/woodpecker-server:v3\n    volumes:\n      - ./wp:/var/lib/woodpecker\n  db:\n    image: postgres:16\n",
        0o600,
    );
    let root = t.join("host");
    let o = fk(&["detect", "--root", root.to_str().unwrap()]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(
            "gitea: /etc/gitea/app.ini (found via systemd unit /etc/systemd/system/gitea.service)"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("would collect {}", pem.display())),
        "{text}"
    );
    assert!(
        text.contains("ci: woodpeckerci/woodpecker-server:v3 (woodpecker, docker)"),
        "{text}"
    );
    assert!(
        text.contains("db: postgres:16 (not a forge or CI service)"),
        "{text}"
    );
    assert!(
        text.contains("forgekeep backup -p gitea=/etc/gitea/app.ini --compose"),
        "{text}"
    );

    let o = fk(&["detect", "--root", root.to_str().unwrap(), "--json"]);
    expect_code(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["installations"][0]["forge"], "gitea");
    let items = v["installations"][0]["profile"]["items"]
        .as_array()
        .unwrap();
    assert!(items.iter().any(|i| i["signing_key"] == true), "{v}");
    assert_eq!(v["compose"][0]["services"][0]["forge"], "woodpecker");
    // The SECRET_KEY value never appears, only its name.
    assert!(!stdout(&o).contains("SECRET_KEY = s"));
}

#[test]
fn nothing_found_is_said_and_exits_0() {
    let t = TestDir::new();
    let root = t.mkdir("empty", 0o755);
    let o = fk(&["detect", "--root", root.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("no forge installation found"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_units_environment_decides_where_the_keys_are() {
    // Regression: the unit's GITEA_WORK_DIR was ignored, the key under it was not
    // collected and a guess was reported as the unit's.
    let t = TestDir::new();
    t.write(
        "host/etc/systemd/system/gitea.service",
        b"[Service]\nExecStart=/usr/local/bin/gitea web --config /etc/gitea/app.ini\nEnvironment=GITEA_WORK_DIR=/srv/gitea\n",
        0o644,
    );
    t.write(
        "host/etc/gitea/app.ini",
        b"[security]\nINSTALL_LOCK = true\nSECRET_KEY = s\n",
        0o640,
    );
    t.mkdir("host/srv/gitea/data/jwt", 0o700);
    let pem = t.join("host/srv/gitea/data/jwt/private.pem");
    openssl_ed25519(&pem);
    let o = fk(&["detect", "--root", t.join("host").to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("would collect {}", pem.display())),
        "{}",
        stdout(&o)
    );
}

#[test]
fn absolute_compose_paths_are_read_under_the_mounted_root() {
    // Regression: under --root, `/srv/gitea/data:/data` was looked up on the rescue host.
    let t = TestDir::new();
    t.write(
        "host/opt/forge/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.23\n    volumes:\n      - /srv/gitea/data:/data\n",
        0o600,
    );
    t.write(
        "host/srv/gitea/data/gitea/conf/app.ini",
        b"[server]\nAPP_DATA_PATH = /data/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = s\n",
        0o600,
    );
    t.mkdir("host/srv/gitea/data/gitea/jwt", 0o700);
    let pem = t.join("host/srv/gitea/data/gitea/jwt/private.pem");
    openssl_ed25519(&pem);
    let o = fk(&["detect", "--root", t.join("host").to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("would collect {}", pem.display())),
        "{}",
        stdout(&o)
    );
}

#[test]
fn detect_compose_shows_the_findings_that_matter_regression_count_only() {
    // Regression (issue 13): detect --compose hid the lost JWT key behind "2 problem(s)
    // ... see forgekeep check".
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.23-rootless\n    volumes:\n      - ./gitea/data:/var/lib/gitea/data\n      - ./gitea/config:/etc/gitea\n",
        0o644,
    );
    t.write(
        "stack/gitea/config/app.ini",
        b"RUN_USER = git\nWORK_PATH = /var/lib/gitea\n[server]\nAPP_DATA_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = test-only-secret-key\n",
        0o640,
    );
    t.mkdir("stack/gitea/data", 0o755);
    // An empty root: nothing of this host's own installations in the output.
    let root = t.mkdir("empty", 0o755);
    let o = fk(&[
        "detect",
        "--root",
        root.to_str().unwrap(),
        "--compose",
        compose.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let text = stdout(&o);
    let lost = text
        .lines()
        .find(|l| l.contains("error [not-persistent] /var/lib/gitea/jwt/private.pem"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        lost.contains("; fix: ") && lost.contains("/var/lib/gitea/jwt"),
        "{lost}"
    );
    assert!(!text.contains("problem(s)"), "{text}");
    assert!(
        !text.contains("test-only-secret-key"),
        "no secret value: {text}"
    );
}
