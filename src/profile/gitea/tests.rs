//! The Gitea and Forgejo profiles on a fake host (docs/FORGES.md §1, §2).

use super::super::items::testing::{item_paths, run, Prefixed};
use super::super::{Forge, ItemKind, Layout, Resolved};
use crate::findings::{Code, Severity};
use std::path::PathBuf;

fn has(r: &Resolved, code: Code, sev: Severity, needle: &str) -> bool {
    r.findings.iter().any(|f| {
        f.code == code
            && f.severity == sev
            && (f.message.contains(needle) || f.path.contains(needle))
    })
}

const BINARY_INI: &str = "RUN_USER = git\nWORK_PATH = /var/lib/gitea\n\
[server]\nSTART_SSH_SERVER = true\n\
[security]\nINSTALL_LOCK = true\nSECRET_KEY = s3cr3t-value-xyz\nINTERNAL_TOKEN_URI = file:/etc/gitea/internal_token\n\
[database]\nDB_TYPE = sqlite3\n";

#[test]
fn binary_install_relative_to_app_data_path() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write("/etc/gitea/app.ini", BINARY_INI);
    fake.write("/etc/gitea/internal_token", "t");
    fake.write("/var/lib/gitea/data/jwt/private.pem", "k");
    fake.write("/var/lib/gitea/data/ssh/gitea.rsa", "k");
    fake.write("/var/lib/gitea/data/ssh/gitea.rsa.pub", "k");
    fake.write("/var/lib/gitea/data/gitea.db", "db");
    let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, true);
    let paths = item_paths(&r, &fake);
    for want in [
        "/etc/gitea/app.ini",
        "/var/lib/gitea/data/jwt/private.pem",
        "/var/lib/gitea/data/ssh/gitea.rsa",
        "/var/lib/gitea/data/ssh/gitea.rsa.pub",
        "/etc/gitea/internal_token",
        "/var/lib/gitea/data/gitea.db",
    ] {
        assert!(paths.contains(&PathBuf::from(want)), "{want} in {paths:?}");
    }
    let jwt = r
        .items
        .iter()
        .find(|i| i.path.ends_with("jwt/private.pem"))
        .unwrap();
    assert!(jwt.regenerates && jwt.signing_key && jwt.max_mode == Some(0o600));
    let db = r
        .items
        .iter()
        .find(|i| i.path.ends_with("gitea.db"))
        .unwrap();
    assert_eq!(db.kind, ItemKind::Sqlite);
    assert!(r.config.as_ref().unwrap().ends_with("etc/gitea/app.ini"));
    // gogs.rsa is absent but gitea.rsa exists: no warning about it.
    assert!(
        !r.findings.iter().any(|f| f.path.contains("gogs.rsa")),
        "{:?}",
        r.findings
    );
    assert!(!r.findings.iter().any(|f| f.code == Code::ConfigProblem
        && f.severity == Severity::Warning
        && f.message.contains("SECRET_KEY")));
    // No value ever reaches a finding.
    assert!(!format!("{:?}", r).contains("s3cr3t"));
}

#[test]
fn missing_jwt_key_warns_and_absolute_path_is_used_as_is() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/etc/gitea/app.ini",
        "WORK_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n\
         [oauth2]\nJWT_SIGNING_PRIVATE_KEY_FILE = /srv/keys/jwt.pem\n",
    );
    let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, false);
    assert!(r.items.iter().all(|i| !i.path.ends_with("jwt.pem")));
    let f = r
        .findings
        .iter()
        .find(|f| f.code == Code::SecretMissing)
        .unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.path.ends_with("srv/keys/jwt.pem"));
    assert!(f.message.contains("make a new one at start"));

    fake.write("/srv/keys/jwt.pem", "k");
    let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, false);
    assert!(item_paths(&r, &fake).contains(&PathBuf::from("/srv/keys/jwt.pem")));
}

#[test]
fn empty_secret_key_and_install_lock() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/etc/gitea/app.ini",
        "WORK_PATH = /var/lib/gitea\n[security]\nSECRET_KEY =\n",
    );
    let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, false);
    assert!(has(
        &r,
        Code::ConfigProblem,
        Severity::Warning,
        "SECRET_KEY"
    ));
    assert!(has(&r, Code::ConfigProblem, Severity::Info, "INSTALL_LOCK"));
    // The OAuth2 key is expected (default RS256) and missing.
    assert!(has(
        &r,
        Code::SecretMissing,
        Severity::Warning,
        "jwt/private.pem"
    ));
}

#[test]
fn env_overrides_and_file_variants_apply_in_the_images_only() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/etc/gitea/app.ini",
        "WORK_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\n",
    );
    fake.write("/run/secrets/secret_key", "from-a-file\n");
    fake.write("/var/lib/gitea/jwt/private.pem", "k");
    let env = [
        (
            "GITEA__security__SECRET_KEY__FILE",
            "/run/secrets/secret_key",
        ),
        ("GITEA__oauth2__JWT_SIGNING_ALGORITHM", "HS256"),
        ("GITEA__database__DB_TYPE", "sqlite3"),
        ("GITEA__database__PATH", "/srv/db/gitea.db"),
    ];
    // The rootless image's environment-to-ini writes them into app.ini.
    let r = run(
        Forge::Gitea,
        &fake,
        Layout::DockerRootless,
        &env,
        None,
        false,
    );
    let paths = item_paths(&r, &fake);
    assert!(paths.contains(&PathBuf::from("/run/secrets/secret_key")));
    // HS256: no key file expected.
    assert!(!paths.iter().any(|p| p.ends_with("jwt/private.pem")));
    assert!(!has(
        &r,
        Code::ConfigProblem,
        Severity::Warning,
        "SECRET_KEY"
    ));
    assert!(has(
        &r,
        Code::ConfigProblem,
        Severity::Info,
        "srv/db/gitea.db"
    ));
    assert!(!format!("{:?}", r).contains("from-a-file"));

    // A native binary never reads them (only the images run environment-to-ini): the
    // unit's variables change nothing, and app.ini's own settings stand.
    let r = run(Forge::Gitea, &fake, Layout::Native, &env, None, false);
    let paths = item_paths(&r, &fake);
    assert!(!paths.contains(&PathBuf::from("/run/secrets/secret_key")));
    assert!(has(
        &r,
        Code::ConfigProblem,
        Severity::Warning,
        "SECRET_KEY"
    ));
    assert!(has(
        &r,
        Code::SecretMissing,
        Severity::Warning,
        "var/lib/gitea/data/jwt/private.pem"
    ));
    assert!(!r.findings.iter().any(|f| f.path.contains("srv/db")));
}

#[test]
fn rootful_docker_data() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/data/gitea/conf/app.ini",
        "APP_NAME = x\nRUN_USER = git\n[server]\nAPP_DATA_PATH = /data/gitea\n\
         [security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n[database]\nDB_TYPE = sqlite3\nPATH = /data/gitea/gitea.db\n",
    );
    fake.write("/data/gitea/jwt/private.pem", "k");
    fake.write("/data/ssh/ssh_host_ed25519_key", "k");
    let r = run(Forge::Gitea, &fake, Layout::Docker, &[], None, false);
    let paths = item_paths(&r, &fake);
    assert!(paths.contains(&PathBuf::from("/data/gitea/conf/app.ini")));
    assert!(paths.contains(&PathBuf::from("/data/gitea/jwt/private.pem")));
    assert!(paths.contains(&PathBuf::from("/data/ssh")));
    let ssh = r
        .items
        .iter()
        .find(|i| i.path.ends_with("data/ssh"))
        .unwrap();
    assert_eq!(ssh.kind, ItemKind::Dir);
    assert_eq!(ssh.owner, Some(crate::profile::Owner::Uid(0)));
    let jwt = r
        .items
        .iter()
        .find(|i| i.path.ends_with("private.pem"))
        .unwrap();
    assert_eq!(jwt.owner, Some(crate::profile::Owner::Uid(1000)));
    assert_eq!(
        jwt.container_path.as_deref(),
        Some("/data/gitea/jwt/private.pem")
    );
    assert!(has(
        &r,
        Code::ConfigProblem,
        Severity::Info,
        "data/gitea/gitea.db"
    ));
}

#[test]
fn rootless_not_persistent_jwt_is_an_error() {
    // The #4850 setup: only /var/lib/gitea/git is mounted.
    let dir = tempfile::TempDir::new().unwrap();
    let mut fake = Prefixed::new(dir.path());
    fake.write(
        "/etc/gitea/app.ini",
        "RUN_USER = git\n[server]\nAPP_DATA_PATH = /var/lib/gitea\nSTART_SSH_SERVER = true\n\
         [security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n",
    );
    fake.write("/var/lib/gitea/ssh/gitea.rsa", "k");
    fake.not_persistent.push((
        PathBuf::from("/var/lib/gitea/jwt"),
        "./gitea/data:/var/lib/gitea".into(),
    ));
    let r = run(
        Forge::Gitea,
        &fake,
        Layout::DockerRootless,
        &[],
        None,
        false,
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.code == Code::NotPersistent)
        .unwrap();
    assert_eq!(f.severity, Severity::Error);
    assert!(f.message.contains("docker compose down"));
    assert!(f.fix.contains("./gitea/data:/var/lib/gitea"));
    let paths = item_paths(&r, &fake);
    assert!(paths.contains(&PathBuf::from("/etc/gitea/app.ini")));
    // the rootless image's template starts the built-in SSH server
    assert!(paths.contains(&PathBuf::from("/var/lib/gitea/ssh/gitea.rsa")));
    assert!(!paths.iter().any(|p| p.ends_with("jwt/private.pem")));
}

#[test]
fn env_names_decode_any_escaped_character() {
    use super::env::decode_part;
    assert_eq!(decode_part("repository_0X2E_signing"), "repository.signing");
    assert_eq!(decode_part("A_0X2D_B_0X5F_C"), "A-B_C");
    assert_eq!(decode_part("odd_0XZZ_x"), "odd_0XZZ_x");
    assert_eq!(decode_part("a_0x2e_b"), "a.b");
    assert_eq!(decode_part("caf_0XC3A9_"), "café");
    assert_eq!(decode_part("odd_0X2_x"), "odd_0X2_x");
}

#[test]
fn the_rootful_images_user_uid_is_the_expected_owner() {
    // Review: USER_UID=1001 in the service's environment, files owned by 1001, and
    // forgekeep told the user to chown them to 1000 (breaking the forge).
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/data/gitea/conf/app.ini",
        "[server]\nAPP_DATA_PATH = /data/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n",
    );
    fake.write("/data/gitea/jwt/private.pem", "k");
    let r = run(
        Forge::Gitea,
        &fake,
        Layout::Docker,
        &[("USER_UID", "1001")],
        None,
        false,
    );
    let jwt = r
        .items
        .iter()
        .find(|i| i.path.ends_with("jwt/private.pem"))
        .unwrap();
    assert_eq!(jwt.owner, Some(crate::profile::Owner::Uid(1001)));
}

#[test]
fn a_database_on_no_persistent_storage_is_an_error_even_without_with_db() {
    // Review: without --with-db the database was never located, so a forge whose whole
    // database lived in an anonymous volume got an info line only.
    let dir = tempfile::TempDir::new().unwrap();
    let mut fake = Prefixed::new(dir.path());
    fake.write(
        "/etc/gitea/app.ini",
        "[server]\nAPP_DATA_PATH = /var/lib/gitea\n[database]\nDB_TYPE = sqlite3\nPATH = /var/lib/gitea/data/gitea.db\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n",
    );
    fake.not_persistent.push((
        PathBuf::from("/var/lib/gitea/data"),
        "./gitea/data:/var/lib/gitea/data".into(),
    ));
    let r = run(
        Forge::Gitea,
        &fake,
        Layout::DockerRootless,
        &[],
        None,
        false,
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.code == Code::NotPersistent && f.path.ends_with("gitea.db"))
        .unwrap_or_else(|| panic!("{:?}", r.findings));
    assert_eq!(f.severity, Severity::Error);
    assert!(f.fix.contains("./gitea/data:/var/lib/gitea/data"));
}

#[test]
fn forgejo_rootless_custom_conf_with_actions_and_lfs_keys() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/var/lib/gitea/custom/conf/app.ini",
        "[server]\nAPP_DATA_PATH = /var/lib/gitea\nLFS_START_SERVER = true\nLFS_JWT_SIGNING_ALGORITHM = EdDSA\n\
         [security]\nINSTALL_LOCK = true\nSECRET_KEY_URI = file:/etc/gitea/secret_key\n",
    );
    fake.write("/etc/gitea/secret_key", "x");
    fake.write("/var/lib/gitea/jwt/private.pem", "k");
    fake.write("/var/lib/gitea/actions_id_token/private.pem", "k");
    fake.write("/var/lib/gitea/lfs/private.pem", "k");
    fake.write("/var/lib/gitea/ssh/gitea.rsa", "k");
    let r = run(
        Forge::Forgejo,
        &fake,
        Layout::DockerRootless,
        &[],
        None,
        false,
    );
    let paths = item_paths(&r, &fake);
    for want in [
        "/var/lib/gitea/custom/conf/app.ini",
        "/etc/gitea/secret_key",
        "/var/lib/gitea/jwt/private.pem",
        "/var/lib/gitea/actions_id_token/private.pem",
        "/var/lib/gitea/lfs/private.pem",
    ] {
        assert!(paths.contains(&PathBuf::from(want)), "{want} in {paths:?}");
    }
    assert!(!has(
        &r,
        Code::ConfigProblem,
        Severity::Warning,
        "SECRET_KEY"
    ));
}

#[test]
fn unreadable_app_ini_falls_back_to_defaults() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    let r = run(
        Forge::Gitea,
        &fake,
        Layout::DockerRootless,
        &[],
        None,
        false,
    );
    assert!(has(&r, Code::SecretMissing, Severity::Error, "app.ini"));
    assert!(has(&r, Code::ConfigProblem, Severity::Warning, "defaults"));
    // defaults still name the JWT key under /var/lib/gitea
    assert!(has(
        &r,
        Code::SecretMissing,
        Severity::Warning,
        "var/lib/gitea/jwt/private.pem"
    ));
}

#[test]
fn custom_env_names_the_config() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/srv/forgejo/custom/conf/app.ini",
        "[oauth2]\nENABLED = false\n",
    );
    let r = run(
        Forge::Forgejo,
        &fake,
        Layout::Native,
        &[
            ("GITEA_CUSTOM", "/nope"),
            ("FORGEJO_CUSTOM", "/srv/forgejo/custom"),
            ("FORGEJO_WORK_DIR", "/srv/forgejo"),
        ],
        None,
        false,
    );
    assert!(item_paths(&r, &fake).contains(&PathBuf::from("/srv/forgejo/custom/conf/app.ini")));
    assert!(!r.findings.iter().any(|f| f.path.contains("jwt")));
}

#[test]
fn forgejo_rootless_app_ini_by_version() {
    use super::super::items::testing::run_tagged;
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    let custom = "/var/lib/gitea/custom/conf/app.ini";
    let legacy = "/etc/gitea/app.ini";
    let config = |tag: Option<&str>| {
        let r = run_tagged(
            Forge::Forgejo,
            &fake,
            Layout::DockerRootless,
            tag,
            &[],
            None,
            false,
        );
        let at = r.config.as_ref().unwrap().clone();
        // The host path when the file is there, the forge's path when it is not.
        let at = match at.strip_prefix(&fake.root) {
            Ok(rel) => PathBuf::from("/").join(rel),
            Err(_) => at,
        };
        (at, r)
    };
    // Only the custom one: every version from 8 reads it; before 8, Gitea's path.
    fake.write(custom, "[security]\nINSTALL_LOCK = true\nSECRET_KEY = x\n");
    for tag in [Some("8"), Some("14-rootless"), Some("15-rootless"), None] {
        assert_eq!(config(tag).0, PathBuf::from(custom), "{tag:?}");
    }
    assert_eq!(config(Some("7.0.15-rootless")).0, PathBuf::from(legacy));
    // A legacy file too: 8-14 take it, 15+ and an unstated version the custom one, with
    // a note about the stale file.
    fake.write(legacy, "[security]\nSECRET_KEY = old\n");
    assert_eq!(config(Some("14-rootless")).0, PathBuf::from(legacy));
    for tag in [Some("15-rootless"), None] {
        let (at, r) = config(tag);
        assert_eq!(at, PathBuf::from(custom), "{tag:?}");
        assert!(has(
            &r,
            Code::ConfigProblem,
            Severity::Info,
            "etc/gitea/app.ini"
        ));
    }
    // Only the legacy one and no version stated: read it, and warn about upgrading.
    std::fs::remove_file(fake.host(std::path::Path::new(custom))).unwrap();
    let (at, r) = config(None);
    assert_eq!(at, PathBuf::from(legacy));
    assert!(has(
        &r,
        Code::ConfigProblem,
        Severity::Warning,
        "15 and later ignore"
    ));
    // Gitea's rootless image always reads GITEA_APP_INI.
    let r = run_tagged(
        Forge::Gitea,
        &fake,
        Layout::DockerRootless,
        Some("1.24-rootless"),
        &[("GITEA_APP_INI", "/srv/app.ini")],
        None,
        false,
    );
    assert!(r.config.unwrap().ends_with("srv/app.ini"));
}

#[test]
fn file_uris_read_as_go_reads_them() {
    use super::keys::file_uri_path;
    assert_eq!(
        file_uri_path("file:/etc/gitea/k").as_deref(),
        Some("/etc/gitea/k")
    );
    assert_eq!(
        file_uri_path("file:///etc/gitea/k").as_deref(),
        Some("/etc/gitea/k")
    );
    assert_eq!(
        file_uri_path(" file:secret_key ").as_deref(),
        Some("secret_key")
    );
    assert_eq!(file_uri_path("FILE:rel/k#frag").as_deref(), Some("rel/k"));
    assert_eq!(
        file_uri_path("file://host/etc/k").as_deref(),
        Some("/etc/k")
    );
    assert_eq!(file_uri_path("https://example.com/k"), None);
}

#[test]
fn native_relative_paths_use_the_units_working_directory_or_say_the_guess() {
    let dir = tempfile::TempDir::new().unwrap();
    let fake = Prefixed::new(dir.path());
    fake.write(
        "/etc/gitea/app.ini",
        "WORK_PATH = /var/lib/gitea\n[security]\nINSTALL_LOCK = true\nSECRET_KEY_URI = file:secret_key\n\
         [database]\nDB_TYPE = sqlite3\nPATH = data/gitea.db\n",
    );
    fake.write("/var/lib/gitea/secret_key", "k");
    fake.write("/var/lib/gitea/data/gitea.db", "db");
    let r = run(Forge::Gitea, &fake, Layout::Native, &[], None, true);
    let paths = item_paths(&r, &fake);
    assert!(paths.contains(&PathBuf::from("/var/lib/gitea/secret_key")));
    assert!(paths.contains(&PathBuf::from("/var/lib/gitea/data/gitea.db")));
    assert!(has(
        &r,
        Code::ConfigProblem,
        Severity::Info,
        "working directory"
    ));
}
