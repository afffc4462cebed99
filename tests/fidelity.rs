//! Forge fidelity on real deployments (issue 8): each rule the forges' own code decides
//! (docs/FORGES.md), through the real binary, on a layout built the way the forge or its
//! image builds it, proving the archive holds the right file or the false alarm is gone.

use crate::util::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECURITY: &str = "[security]\nINSTALL_LOCK = true\nSECRET_KEY = test-only-secret-key\n";

/// The rootless image's template (docker/rootless/etc/templates/app.ini), in short.
const ROOTLESS_INI: &str = "APP_NAME = test\nRUN_USER = git\nWORK_PATH = /var/lib/gitea\n\
[server]\nAPP_DATA_PATH = /var/lib/gitea\nSTART_SSH_SERVER = true\n\
[security]\nINSTALL_LOCK = true\nSECRET_KEY = test-only-secret-key\n";

fn check(args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let mut a = vec!["check", "--json"];
    a.extend(args);
    let o = fk(&a);
    let v = json_of(&o);
    (o, v)
}

fn check_compose(compose: &Path) -> (std::process::Output, serde_json::Value) {
    check(&["--compose", compose.to_str().unwrap()])
}

/// `backup --compose FILE` (or other sources) into `archive`; asserts it was written.
fn backup(t: &TestDir, sources: &[&str]) -> (PathBuf, serde_json::Value) {
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    let mut args = vec!["backup", "--json", "-r", &recipient, "-o"];
    args.push(archive.to_str().unwrap());
    args.extend(sources);
    let o = fk(&args);
    assert!(
        matches!(code(&o), 0 | 3),
        "backup failed ({}): {}\n{}",
        code(&o),
        stdout(&o),
        stderr(&o)
    );
    let list = list_json(&archive, &key);
    (key, list)
}

fn has_entry(list: &serde_json::Value, p: &Path) -> bool {
    entry_paths(list).contains(&p.display().to_string())
}

fn findings_about<'a>(v: &'a serde_json::Value, needle: &str) -> Vec<&'a serde_json::Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["path"].as_str().unwrap().contains(needle)
                || f["message"].as_str().unwrap().contains(needle)
        })
        .collect()
}

// ---- 1. Forgejo rootless is not Gitea rootless ----------------------------------------

fn forgejo_rootless_stack(t: &TestDir, tag: &str) -> PathBuf {
    let compose = t.write(
        "stack/compose.yaml",
        format!(
            "services:\n  forgejo:\n    image: codeberg.org/forgejo/forgejo:{tag}\n    volumes:\n      \
             - ./data:/var/lib/gitea\n      - ./old-config:/etc/gitea\n"
        )
        .as_bytes(),
        0o644,
    );
    // A stale legacy app.ini on the /etc/gitea mount, pointing elsewhere…
    t.write(
        "stack/old-config/app.ini",
        b"[server]\nAPP_DATA_PATH = /var/lib/gitea/stale\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = old\n",
        0o640,
    );
    // …and the real one where Forgejo's rootless image keeps it since v8.
    t.write(
        "stack/data/custom/conf/app.ini",
        ROOTLESS_INI.as_bytes(),
        0o640,
    );
    openssl_rsa(&t.join("stack/data/jwt/private.pem"));
    openssl_rsa(&t.join("stack/data/actions_id_token/private.pem"));
    ssh_host_key(
        &t.join("stack/data/ssh/gitea.rsa"),
        "rsa",
        &["-b", "2048", "-m", "PEM"],
    );
    compose
}

#[test]
fn forgejo_15_rootless_reads_custom_conf_app_ini_not_a_stale_etc_gitea_one() {
    let t = TestDir::new();
    let compose = forgejo_rootless_stack(&t, "15-rootless");
    let (_key, list) = backup(&t, &["--compose", compose.to_str().unwrap()]);
    let real = t.join("stack/data/custom/conf/app.ini");
    assert!(
        source_for(&list, &real)["what"]
            .as_str()
            .unwrap()
            .contains("app.ini"),
        "{list}"
    );
    for p in [
        "stack/data/jwt/private.pem",
        "stack/data/ssh/gitea.rsa",
        "stack/data/actions_id_token/private.pem",
    ] {
        assert!(has_entry(&list, &t.join(p)), "{p} not archived");
    }
    assert!(!has_entry(&list, &t.join("stack/old-config/app.ini")));
    let (_o, v) = check_compose(&compose);
    assert_eq!(
        v["profiles"][0]["config"],
        real.display().to_string().as_str()
    );
    let stale = findings_about(&v, "no longer read");
    assert_eq!(stale.len(), 1, "{v}");
    assert_eq!(stale[0]["severity"], "info");
    assert!(findings_about(&v, "stale/").is_empty(), "{v}");
}

#[test]
fn forgejo_8_to_14_rootless_still_read_the_legacy_app_ini_when_it_exists() {
    let t = TestDir::new();
    let compose = forgejo_rootless_stack(&t, "14-rootless");
    let (_o, v) = check_compose(&compose);
    let legacy = t.join("stack/old-config/app.ini");
    assert_eq!(
        v["profiles"][0]["config"],
        legacy.display().to_string().as_str(),
        "{v}"
    );
    // v14 has no Actions ID-token key (it came with v15): nothing said about one.
    assert!(findings_about(&v, "actions_id_token").is_empty(), "{v}");
    assert!(
        !item_paths(&v)
            .iter()
            .any(|p| p.contains("actions_id_token")),
        "{v}"
    );
}

#[test]
fn forgejo_rootless_without_an_etc_gitea_mount_raises_no_false_alarm() {
    for tag in ["15-rootless", "latest-rootless"] {
        let t = TestDir::new();
        let compose = t.write(
            "stack/compose.yaml",
            format!(
                "services:\n  forgejo:\n    image: codeberg.org/forgejo/forgejo:{tag}\n    \
                 volumes:\n      - ./data:/var/lib/gitea\n"
            )
            .as_bytes(),
            0o644,
        );
        t.write(
            "stack/data/custom/conf/app.ini",
            ROOTLESS_INI.as_bytes(),
            0o640,
        );
        openssl_rsa(&t.join("stack/data/jwt/private.pem"));
        let (_o, v) = check_compose(&compose);
        assert!(findings_about(&v, "/etc/gitea").is_empty(), "{tag}: {v}");
        assert!(findings_with(&v, "not-persistent").is_empty(), "{tag}: {v}");
        assert!(
            item_paths(&v).contains(&t.join("stack/data/jwt/private.pem").display().to_string()),
            "{tag}: {v}"
        );
    }
}

// ---- 2. A bound app.ini wins, its WORK_PATH / APP_DATA_PATH are trusted ----------------

#[test]
fn a_bound_app_ini_is_read_and_its_work_and_data_paths_are_trusted() {
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.24\n    volumes:\n      \
          - ./gitea.ini:/data/gitea/conf/app.ini\n      - ./state:/srv/state\n",
        0o644,
    );
    // WORK_PATH only: APP_DATA_PATH is <work>/data, never the image's /data/gitea.
    t.write(
        "stack/gitea.ini",
        format!("RUN_USER = git\nWORK_PATH = /srv/state\n{SECURITY}").as_bytes(),
        0o640,
    );
    let jwt = t.join("stack/state/data/jwt/private.pem");
    openssl_rsa(&jwt);
    let (_key, list) = backup(&t, &["--compose", compose.to_str().unwrap()]);
    assert_eq!(
        source_for(&list, &jwt)["container_path"],
        "/srv/state/data/jwt/private.pem"
    );
    assert!(has_entry(&list, &t.join("stack/gitea.ini")));

    // APP_DATA_PATH set: that folder, relative ones under WORK_PATH.
    t.write(
        "stack/gitea.ini",
        format!("WORK_PATH = /srv/state\n[server]\nAPP_DATA_PATH = appdata\n{SECURITY}").as_bytes(),
        0o640,
    );
    let moved = t.join("stack/state/appdata/jwt/private.pem");
    openssl_rsa(&moved);
    let (_o, v) = check_compose(&compose);
    let paths = item_paths(&v);
    assert!(paths.contains(&moved.display().to_string()), "{paths:?}");
    assert!(findings_about(&v, "/data/gitea/jwt").is_empty(), "{v}");
}

#[test]
fn the_rootful_images_work_path_is_data_gitea() {
    // The image's wrapper sets GITEA_WORK_DIR=/data/gitea: an app.ini without WORK_PATH
    // and APP_DATA_PATH keeps its data, and the JWT key, in /data/gitea/data.
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.24\n    volumes:\n      - ./data:/data\n",
        0o644,
    );
    t.write(
        "stack/data/gitea/conf/app.ini",
        format!("RUN_USER = git\n{SECURITY}").as_bytes(),
        0o640,
    );
    let jwt = t.join("stack/data/gitea/data/jwt/private.pem");
    openssl_rsa(&jwt);
    let (_o, v) = check_compose(&compose);
    assert!(item_paths(&v).contains(&jwt.display().to_string()), "{v}");
    assert!(
        !findings_with(&v, "secret-missing")
            .iter()
            .any(|f| f["path"].as_str().unwrap().contains("jwt")),
        "{v}"
    );
}

// ---- 3. Relative file: URIs ------------------------------------------------------------

fn rootful_uri_stack(t: &TestDir, image: &str, extra_volume: &str) -> PathBuf {
    let compose = t.write(
        "stack/docker-compose.yml",
        format!(
            "services:\n  forge:\n    image: {image}\n    volumes:\n      - ./data:/data\n{extra_volume}"
        )
        .as_bytes(),
        0o644,
    );
    t.write(
        "stack/data/gitea/conf/app.ini",
        b"RUN_USER = git\n[server]\nAPP_DATA_PATH = /data/gitea\n\
          [security]\nINSTALL_LOCK = true\nSECRET_KEY_URI = file:secret_key\n",
        0o640,
    );
    openssl_rsa(&t.join("stack/data/gitea/jwt/private.pem"));
    compose
}

#[test]
fn relative_file_uris_resolve_as_each_forge_and_image_does() {
    // Gitea reads `file:secret_key` from its working directory: /app/gitea in the rootful
    // image (its s6 run script), which is the container's layer unless mounted.
    let t = TestDir::new();
    let compose = rootful_uri_stack(&t, "gitea/gitea:1.24", "");
    let (o, v) = check_compose(&compose);
    expect_code(&o, 1);
    let lost = findings_with(&v, "not-persistent");
    assert!(
        lost.iter().any(|f| f["path"] == "/app/gitea/secret_key"
            && f["message"].as_str().unwrap().contains("SECRET_KEY_URI")),
        "{v}"
    );
    assert!(
        findings_about(&v, "data/gitea/secret_key").is_empty(),
        "{v}"
    );

    // Mounted there, it is archived from the host.
    let t = TestDir::new();
    let compose = rootful_uri_stack(
        &t,
        "gitea/gitea:1.24",
        "      - ./secret_key:/app/gitea/secret_key:ro\n",
    );
    let secret = t.write("stack/secret_key", b"test-only-secret-from-a-file\n", 0o600);
    let (_key, list) = backup(&t, &["--compose", compose.to_str().unwrap()]);
    assert_eq!(
        source_for(&list, &secret)["container_path"],
        "/app/gitea/secret_key"
    );

    // Forgejo 16 reads it from APP_DATA_PATH (forgejo#11194); 15 still from the
    // working directory.
    let t = TestDir::new();
    let compose = rootful_uri_stack(&t, "codeberg.org/forgejo/forgejo:16", "");
    let secret = t.write("stack/data/gitea/secret_key", b"test-only\n", 0o600);
    let (_key, list) = backup(&t, &["--compose", compose.to_str().unwrap()]);
    assert_eq!(
        source_for(&list, &secret)["container_path"],
        "/data/gitea/secret_key"
    );
    let compose = rootful_uri_stack(&t, "codeberg.org/forgejo/forgejo:15", "");
    let (_o, v) = check_compose(&compose);
    assert!(
        findings_with(&v, "not-persistent")
            .iter()
            .any(|f| f["path"] == "/app/gitea/secret_key"),
        "{v}"
    );
}

#[test]
fn a_units_working_directory_decides_a_native_relative_file_uri() {
    let t = TestDir::new();
    t.write(
        "host/etc/systemd/system/gitea.service",
        b"[Service]\nWorkingDirectory=/srv/gitea-run/\n\
          ExecStart=/usr/local/bin/gitea web --config /etc/gitea/app.ini\n\
          Environment=GITEA_WORK_DIR=/var/lib/gitea\n",
        0o644,
    );
    t.write(
        "host/etc/gitea/app.ini",
        format!("WORK_PATH = /var/lib/gitea\n{SECURITY}INTERNAL_TOKEN_URI = file:internal_token\n")
            .as_bytes(),
        0o640,
    );
    let token = t.write("host/srv/gitea-run/internal_token", b"t\n", 0o600);
    openssl_ed25519(&t.join("host/var/lib/gitea/data/jwt/private.pem"));
    let o = fk(&["detect", "--root", t.join("host").to_str().unwrap()]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(&format!("would collect {}", token.display())),
        "{text}"
    );
}

// ---- 4. Forgejo's SQLite file is forgejo.db --------------------------------------------

#[test]
fn with_db_finds_forgejos_default_forgejo_db() {
    require("sqlite3");
    let t = TestDir::new();
    let work = t.mkdir("var/lib/forgejo", 0o750);
    let ini = t.write(
        "etc/forgejo/app.ini",
        format!(
            "RUN_USER = git\nWORK_PATH = {}\n{SECURITY}[database]\nDB_TYPE = sqlite3\n",
            work.display()
        )
        .as_bytes(),
        0o640,
    );
    t.mkdir("var/lib/forgejo/data", 0o750);
    let db = t.join("var/lib/forgejo/data/forgejo.db");
    run_ok(
        Command::new("sqlite3")
            .arg(&db)
            .arg("create table two_factor(secret text); insert into two_factor values('x');"),
    );
    openssl_ed25519(&t.join("var/lib/forgejo/data/jwt/private.pem"));
    let profile = format!("forgejo={}", ini.display());
    let (_key, list) = backup(&t, &["-p", &profile, "--with-db"]);
    assert!(has_entry(&list, &db), "{:?}", entry_paths(&list));
    assert!(source_for(&list, &db)["what"]
        .as_str()
        .unwrap()
        .contains("SQLite"));
}

// ---- 5. GitLab: all of /etc/gitlab, as gitlab-ctl backup-etc ---------------------------

#[test]
fn gitlab_keeps_all_of_etc_gitlab_but_backup_etcs_own_output() {
    let t = TestDir::new();
    let etc = t.mkdir("etc/gitlab", 0o775);
    let secrets = t.write(
        "etc/gitlab/gitlab-secrets.json",
        br#"{"gitlab_rails":{"db_key_base":"test-only"}}"#,
        0o644,
    );
    t.write(
        "etc/gitlab/gitlab.rb",
        b"from_file '/etc/gitlab/smtp.rb'\n",
        0o600,
    );
    let smtp = t.write(
        "etc/gitlab/smtp.rb",
        b"gitlab_rails['smtp_password'] = 'test-only'\n",
        0o600,
    );
    let ldap = t.write("etc/gitlab/ldap/bind.pw", b"test-only\n", 0o600);
    let old = t.write(
        "etc/gitlab/config_backup/gitlab_config_1700000000_2026_01_01.tar",
        b"x",
        0o600,
    );
    let profile = format!("gitlab={}", etc.display());
    let (_key, list) = backup(&t, &["-p", &profile]);
    for p in [&secrets, &smtp, &ldap] {
        assert!(has_entry(&list, p), "{p:?} not archived");
    }
    assert!(
        !has_entry(&list, &old),
        "backup-etc's own archives are left out"
    );
    // The known secrets keep their findings.
    let (_o, v) = check(&["-p", &profile]);
    assert!(
        findings_with(&v, "mode-too-open")
            .iter()
            .any(|f| f["path"] == secrets.display().to_string().as_str()),
        "{v}"
    );
}

// ---- 6. Gogs with PROTOCOL = https -----------------------------------------------------

fn openssl_cert(t: &TestDir, cert: &Path, key: &Path) {
    fs::create_dir_all(cert.parent().unwrap()).unwrap();
    fs::create_dir_all(key.parent().unwrap()).unwrap();
    run_ok(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ed25519",
        "-nodes",
        "-subj",
        "/CN=forge.test",
        "-days",
        "1",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]));
    let _ = t;
}

#[test]
fn gogs_https_and_mail_client_certificates_are_archived() {
    let t = TestDir::new();
    let ini = t.write(
        "home/git/gogs/custom/conf/app.ini",
        format!(
            "RUN_USER = git\n[server]\nPROTOCOL = https\n{SECURITY}\
             [email]\nENABLED = true\nUSE_CERTIFICATE = true\nCERT_FILE = custom/email/client.crt\n\
             KEY_FILE = custom/email/client.key\n"
        )
        .as_bytes(),
        0o640,
    );
    // PROTOCOL = https with the shipped defaults: custom/https/*.pem under the work folder.
    let (cert, key) = (
        t.join("home/git/gogs/custom/https/cert.pem"),
        t.join("home/git/gogs/custom/https/key.pem"),
    );
    openssl_cert(&t, &cert, &key);
    let (mcert, mkey) = (
        t.join("home/git/gogs/custom/email/client.crt"),
        t.join("home/git/gogs/custom/email/client.key"),
    );
    openssl_cert(&t, &mcert, &mkey);
    let profile = format!("gogs={}", ini.display());
    let (_key, list) = backup(&t, &["-p", &profile]);
    for (p, what) in [
        (&cert, "HTTPS certificate"),
        (&key, "HTTPS private key"),
        (&mcert, "SMTP client certificate"),
        (&mkey, "SMTP client private key"),
    ] {
        assert!(
            source_for(&list, p)["what"]
                .as_str()
                .unwrap()
                .contains(what),
            "{p:?}"
        );
    }
}

// ---- 7. Repository signing keys --------------------------------------------------------

#[test]
fn forgejo_ssh_commit_signing_key_and_its_private_half_are_archived() {
    let t = TestDir::new();
    let work = t.mkdir("var/lib/forgejo", 0o750);
    let private = t.join("etc/forgejo/signing/instance");
    ssh_host_key(&private, "ed25519", &[]);
    let public = t.join("etc/forgejo/signing/instance.pub");
    let ini = t.write(
        "etc/forgejo/app.ini",
        format!(
            "WORK_PATH = {}\n{SECURITY}[repository.signing]\nFORMAT = ssh\nSIGNING_KEY = {}\n",
            work.display(),
            public.display()
        )
        .as_bytes(),
        0o640,
    );
    openssl_ed25519(&t.join("var/lib/forgejo/data/jwt/private.pem"));
    let profile = format!("forgejo={}", ini.display());
    let (_key, list) = backup(&t, &["-p", &profile]);
    assert!(source_for(&list, &public)["what"]
        .as_str()
        .unwrap()
        .contains("SSH public key"));
    assert!(source_for(&list, &private)["what"]
        .as_str()
        .unwrap()
        .contains("SSH private key"));

    // Forgejo stops at start without it: a missing one is said.
    fs::remove_file(&public).unwrap();
    let (_o, v) = check(&["-p", &profile]);
    assert!(
        findings_with(&v, "secret-missing")
            .iter()
            .any(|f| f["path"] == public.display().to_string().as_str()),
        "{v}"
    );
}

#[test]
fn gitea_gpg_commit_signing_keyring_under_home_path_is_archived() {
    require("gpg");
    let t = TestDir::new();
    let work = t.mkdir("var/lib/gitea", 0o750);
    let home = t.mkdir("var/lib/gitea/data/home", 0o750);
    let gnupg = home.join(".gnupg");
    fs::create_dir_all(&gnupg).unwrap();
    fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run_ok(Command::new("gpg").args([
        "--batch",
        "--homedir",
        gnupg.to_str().unwrap(),
        "--passphrase",
        "",
        "--quick-gen-key",
        "Forge Test <forge@test.invalid>",
        "ed25519",
        "sign",
        "1d",
    ]));
    let ini = t.write(
        "etc/gitea/app.ini",
        format!(
            "WORK_PATH = {}\n{SECURITY}[repository.signing]\nSIGNING_KEY = forge@test.invalid\n",
            work.display()
        )
        .as_bytes(),
        0o640,
    );
    openssl_ed25519(&t.join("var/lib/gitea/data/jwt/private.pem"));
    let profile = format!("gitea={}", ini.display());
    let (_key, list) = backup(&t, &["-p", &profile]);
    assert!(source_for(&list, &gnupg)["what"]
        .as_str()
        .unwrap()
        .contains("GPG keyring"));
    assert!(
        entry_paths(&list)
            .iter()
            .any(|e| e.starts_with(&format!("{}/private-keys-v1.d/", gnupg.display()))),
        "{:?}",
        entry_paths(&list)
    );
}

// ---- 8. False alarms and wrong advice --------------------------------------------------

/// A Gitea (or Forgejo) rootless service and a Woodpecker server with its SQLite DB.
fn forge_and_ci(t: &TestDir, image: &str, ini_at: &str, ini: &str) -> PathBuf {
    require("sqlite3");
    t.write(ini_at, ini.as_bytes(), 0o640);
    t.mkdir("stack/woodpecker", 0o700);
    run_ok(
        Command::new("sqlite3").args([
            t.join("stack/woodpecker/woodpecker.sqlite")
                .to_str()
                .unwrap(),
            "create table users(token text);",
        ]),
    );
    t.write(
        "stack/docker-compose.yml",
        format!(
            "services:\n  forge:\n    image: {image}\n    volumes:\n      - ./data:/var/lib/gitea\n      \
             - ./config:/etc/gitea\n  woodpecker-server:\n    image: woodpeckerci/woodpecker-server:v3\n    \
             environment:\n      - WOODPECKER_GRPC_SECRET=test-only\n    volumes:\n      \
             - ./woodpecker:/var/lib/woodpecker\n"
        )
        .as_bytes(),
        0o644,
    )
}

fn consistency_finding(v: &serde_json::Value) -> serde_json::Value {
    findings_with(v, "config-problem")
        .into_iter()
        .find(|f| f["message"].as_str().unwrap().contains("refresh tokens"))
        .cloned()
        .unwrap_or_else(|| panic!("no consistency-group finding: {v}"))
}

#[test]
fn hs256_signing_keeps_its_secret_in_app_ini_no_false_not_kept_warning() {
    let t = TestDir::new();
    let compose = forge_and_ci(
        &t,
        "gitea/gitea:1.24-rootless",
        "stack/config/app.ini",
        &format!("{ROOTLESS_INI}[oauth2]\nJWT_SIGNING_ALGORITHM = HS256\nJWT_SECRET = test-only-jwt-secret\n"),
    );
    let (_o, v) = check_compose(&compose);
    let f = consistency_finding(&v);
    assert_eq!(f["severity"], "info", "{f}");
    assert!(f["message"].as_str().unwrap().contains("JWT_SECRET"), "{f}");
    assert!(!f["message"].as_str().unwrap().contains("NOT"), "{f}");
    assert!(findings_about(&v, "jwt/private.pem").is_empty(), "{v}");
}

#[test]
fn forgejo_refresh_tokens_need_the_forge_database_of_the_same_moment() {
    let t = TestDir::new();
    let compose = forge_and_ci(
        &t,
        "codeberg.org/forgejo/forgejo:15-rootless",
        "stack/data/custom/conf/app.ini",
        ROOTLESS_INI,
    );
    openssl_rsa(&t.join("stack/data/jwt/private.pem"));
    let (_o, v) = check_compose(&compose);
    let f = consistency_finding(&v);
    assert_eq!(f["severity"], "info", "{f}");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("database of the same moment") && m.contains("token was already used"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().contains("--with-db"), "{f}");

    // Gitea does not count refreshes unless told to: the signing key is enough.
    let t = TestDir::new();
    let compose = forge_and_ci(
        &t,
        "gitea/gitea:1.24-rootless",
        "stack/config/app.ini",
        ROOTLESS_INI,
    );
    openssl_rsa(&t.join("stack/data/jwt/private.pem"));
    let (_o, v) = check_compose(&compose);
    assert!(
        !consistency_finding(&v)["message"]
            .as_str()
            .unwrap()
            .contains("same moment"),
        "{v}"
    );
}

#[test]
fn a_changed_jwt_secret_in_app_ini_is_linked_to_dead_tokens_by_diff() {
    let t = TestDir::new();
    let work = t.mkdir("var/lib/gitea", 0o750);
    let body = |secret: &str, extra: &str| {
        format!(
            "WORK_PATH = {}\n{SECURITY}[oauth2]\nJWT_SIGNING_ALGORITHM = HS256\nJWT_SECRET = {secret}\n{extra}",
            work.display()
        )
    };
    let ini = t.write(
        "etc/gitea/app.ini",
        body("test-only-jwt-secret-one", "").as_bytes(),
        0o640,
    );
    let profile = format!("gitea={}", ini.display());
    let (key, _list) = backup(&t, &["-p", &profile]);
    let archive = t.join("a.tar.zst.age");
    let diff = || {
        let o = fk(&[
            "diff",
            archive.to_str().unwrap(),
            "-i",
            key.to_str().unwrap(),
            "--json",
        ]);
        expect_code(&o, 3);
        assert!(
            !stdout(&o).contains("test-only-jwt-secret"),
            "a value shown"
        );
        json_of(&o)
    };

    // An edited setting: app.ini changed, nothing that was signed breaks.
    fs::write(
        &ini,
        body(
            "test-only-jwt-secret-one",
            "[service]\nDISABLE_REGISTRATION = true\n",
        ),
    )
    .unwrap();
    let v = diff();
    let d = &v["differences"][0];
    assert_eq!(d["change"], "changed", "{v}");
    assert!(d.get("consequence").is_none(), "{d}");

    // A new JWT_SECRET: every HS256 token is dead, and diff says so.
    fs::write(&ini, body("test-only-jwt-secret-two", "")).unwrap();
    let v = diff();
    let c = v["differences"][0]["consequence"].as_str().unwrap();
    assert!(
        c.contains("JWT_SECRET changed") && c.contains("unable to parse refresh token"),
        "{c}"
    );
}

#[test]
fn version_gated_keys_follow_the_image_tag() {
    let t = TestDir::new();
    let stack = |image: &str, env: &str| {
        t.write(
            "stack/compose.yaml",
            format!(
                "services:\n  f:\n    image: {image}\n    environment:\n      - FORGEJO__server__LFS_START_SERVER={env}\n      \
                 - FORGEJO__server__LFS_JWT_SIGNING_ALGORITHM=EdDSA\n    volumes:\n      - ./data:/var/lib/gitea\n"
            )
            .as_bytes(),
            0o644,
        )
    };
    t.write(
        "stack/data/custom/conf/app.ini",
        ROOTLESS_INI.as_bytes(),
        0o640,
    );
    openssl_rsa(&t.join("stack/data/jwt/private.pem"));
    // (tag, LFS server on, Actions ID-token key expected, LFS key expected)
    for (tag, lfs, actions, lfs_key) in [
        ("14-rootless", "true", false, false),
        ("15-rootless", "true", true, false),
        ("16-rootless", "false", true, false),
        ("16-rootless", "true", true, true),
        ("latest-rootless", "true", true, true),
    ] {
        let compose = stack(&format!("codeberg.org/forgejo/forgejo:{tag}"), lfs);
        let (_o, v) = check_compose(&compose);
        assert_eq!(
            !findings_about(&v, "actions_id_token").is_empty(),
            actions,
            "{tag}: {v}"
        );
        assert_eq!(
            !findings_about(&v, "lfs/private.pem").is_empty(),
            lfs_key,
            "{tag} LFS={lfs}: {v}"
        );
    }

    // Woodpecker's agent ID file came with 1.0.
    for (tag, expected) in [("v0.15.11", false), ("v3", true)] {
        let compose = t.write(
            "agent/compose.yaml",
            format!("services:\n  a:\n    image: woodpeckerci/woodpecker-agent:{tag}\n").as_bytes(),
            0o644,
        );
        let (_o, v) = check_compose(&compose);
        assert_eq!(
            !findings_about(&v, "agent.conf").is_empty(),
            expected,
            "{tag}: {v}"
        );
    }
}

#[test]
fn oauth2_and_the_builtin_ssh_server_turned_off_raise_no_key_findings() {
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:1.24-rootless\n    volumes:\n      \
          - ./config:/etc/gitea\n      - ./data/git:/var/lib/gitea/git\n",
        0o644,
    );
    // The legacy `ENABLE = false` turns OAuth2 off as ENABLED does; the built-in SSH
    // server off: neither the JWT key nor the host keys are on persistent storage, and
    // neither matters.
    t.write(
        "stack/config/app.ini",
        ROOTLESS_INI
            .replace("START_SSH_SERVER = true", "START_SSH_SERVER = false")
            .replace("[security]", "[oauth2]\nENABLE = false\n[security]")
            .as_bytes(),
        0o640,
    );
    let (_o, v) = check_compose(&compose);
    for needle in ["jwt", "gitea.rsa", "ssh/"] {
        assert!(findings_about(&v, needle).is_empty(), "{needle}: {v}");
    }
}

#[test]
fn woodpecker_ui_customisation_files_are_not_secrets() {
    let t = TestDir::new();
    let css = t.write("etc/woodpecker/custom.css", b"body{}", 0o644);
    let env = t.write(
        "etc/woodpecker/woodpecker-server.env",
        format!(
            "WOODPECKER_GRPC_SECRET=test-only\nWOODPECKER_DATABASE_DRIVER=postgres\n\
             WOODPECKER_CUSTOM_CSS_FILE={}\n",
            css.display()
        )
        .as_bytes(),
        0o600,
    );
    let (_o, v) = check(&["-p", &format!("woodpecker={}", env.display())]);
    assert!(!item_paths(&v).contains(&css.display().to_string()), "{v}");
}

#[test]
fn an_image_reference_docker_refuses_is_reported_not_half_read() {
    // The Gitea docs' placeholder, copied verbatim.
    let t = TestDir::new();
    let compose = t.write(
        "stack/docker-compose.yml",
        b"services:\n  gitea:\n    image: gitea/gitea:@version@-rootless\n    volumes:\n      - ./data:/var/lib/gitea\n",
        0o644,
    );
    let o = fk(&["check", "--compose", compose.to_str().unwrap()]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("not a valid image reference") && err.contains("name[:tag][@digest]"),
        "{err}"
    );

    // Beside a service forgekeep knows: a warning, and the other service is resolved.
    fs::write(
        &compose,
        "services:\n  gitea:\n    image: gitea/gitea:@version@-rootless\n  \
         ci:\n    image: woodpeckerci/woodpecker-server:v3\n    environment:\n      \
         - WOODPECKER_GRPC_SECRET=x\n    volumes:\n      - ./wp:/var/lib/woodpecker\n",
    )
    .unwrap();
    let (_o, v) = check_compose(&compose);
    let f = findings_about(&v, "not a valid image reference");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["severity"], "warning");
    assert_eq!(v["profiles"].as_array().unwrap().len(), 1, "{v}");
    // detect says the same, not "not a forge".
    let o = fk(&["detect", "--compose", compose.to_str().unwrap()]);
    assert!(
        stdout(&o).contains(
            "gitea: the image \"gitea/gitea:@version@-rootless\" is not a valid image reference"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn detect_does_not_apply_a_native_units_gitea_variables() {
    // Only the images' environment-to-ini writes GITEA__* into app.ini; the binary never
    // reads them, so a unit that sets them changes nothing: the RS256 key stays expected.
    let t = TestDir::new();
    t.write(
        "host/etc/systemd/system/gitea.service",
        b"[Service]\nExecStart=/usr/local/bin/gitea web --config /etc/gitea/app.ini\n\
          Environment=GITEA_WORK_DIR=/var/lib/gitea GITEA__oauth2__JWT_SIGNING_ALGORITHM=HS256\n",
        0o644,
    );
    t.write(
        "host/etc/gitea/app.ini",
        format!("WORK_PATH = /var/lib/gitea\n{SECURITY}").as_bytes(),
        0o640,
    );
    let pem = t.join("host/var/lib/gitea/data/jwt/private.pem");
    openssl_ed25519(&pem);
    let o = fk(&["detect", "--root", t.join("host").to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("would collect {}", pem.display())),
        "{}",
        stdout(&o)
    );
}
