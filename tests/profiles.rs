//! Forge profiles (`-p NAME=CONFIG`) through the real binary, on native layouts rebuilt
//! inside the test's folder: the configuration's absolute paths point into it.

use crate::util::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Gitea binary install under `<tmp>`: `/etc/gitea/app.ini` and the work path
/// `/var/lib/gitea` (APP_DATA_PATH default `data`). `body` is appended to app.ini's
/// root section and may add sections; returns the app.ini path.
fn gitea_ini(t: &TestDir, forge: &str, body: &str) -> PathBuf {
    let work = t.join(&format!("var/lib/{forge}"));
    t.mkdir(&format!("var/lib/{forge}/data"), 0o750);
    let ini = format!(
        "APP_NAME = test\nRUN_USER = git\nWORK_PATH = {}\n{body}",
        work.display()
    );
    t.mkdir(&format!("etc/{forge}"), 0o750);
    t.write(&format!("etc/{forge}/app.ini"), ini.as_bytes(), 0o640)
}

const SECURITY: &str = "[security]\nINSTALL_LOCK = true\nSECRET_KEY = 8f0c2b1e-test-only-value\n";

fn check_json(args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let mut a = vec!["check", "--json"];
    a.extend(args);
    let o = fk(&a);
    let v = json_of(&o);
    (o, v)
}

fn profile_arg(name: &str, config: &Path) -> String {
    format!("{name}={}", config.display())
}

/// Backs up with `-p` profiles into `out`; asserts exit 0 or 3 and returns the report.
fn backup_profiles(profiles: &[String], recipient: &str, out: &Path) -> serde_json::Value {
    let mut args: Vec<&str> = vec!["backup", "--json", "-r", recipient, "-o"];
    args.push(out.to_str().unwrap());
    for p in profiles {
        args.extend(["-p", p.as_str()]);
    }
    let o = fk(&args);
    assert!(
        matches!(code(&o), 0 | 3),
        "backup failed ({}): {}\n{}",
        code(&o),
        stdout(&o),
        stderr(&o)
    );
    json_of(&o)
}

/// Where `p` (absolute) lands under `root`.
fn under_root(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap())
}

#[test]
fn gitea_binary_install_backs_up_app_ini_jwt_and_ssh_keys_and_restores_them_byte_identical() {
    let t = TestDir::new();
    let ini = gitea_ini(
        &t,
        "gitea",
        &format!("[server]\nSTART_SSH_SERVER = true\n{SECURITY}"),
    );
    let data = t.join("var/lib/gitea/data");
    let jwt = data.join("jwt/private.pem");
    openssl_rsa(&jwt);
    let ssh = data.join("ssh/gitea.rsa");
    ssh_host_key(&ssh, "rsa", &["-b", "2048", "-m", "PEM"]);
    let ssh_pub = data.join("ssh/gitea.rsa.pub");
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");

    let report = backup_profiles(&[profile_arg("gitea", &ini)], &recipient, &archive);
    assert!(report["files"].as_u64().unwrap() >= 4, "{report}");

    let list = list_json(&archive, &key);
    for (p, what) in [
        (&ini, "app.ini"),
        (&jwt, "OAuth2 JWT signing key"),
        (&ssh, "SSH server host key"),
        (&ssh_pub, "SSH server host public key"),
    ] {
        let s = source_for(&list, p);
        assert_eq!(s["profile"], "gitea", "{s}");
        assert!(s["what"].as_str().unwrap().contains(what), "{s}");
        assert!(
            list["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["path"] == p.display().to_string().as_str()),
            "{} not among the entries",
            p.display()
        );
    }
    // No secret content in the listing.
    assert!(!stdout(&fk(&[
        "list",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--json"
    ]))
    .contains("test-only-value"));

    let mnt = t.mkdir("mnt", 0o755);
    let r = restore_under(&archive, &key, &mnt);
    expect_code(&r, 0);
    for p in [&ini, &jwt, &ssh, &ssh_pub] {
        assert_eq!(
            fs::read(under_root(&mnt, p)).unwrap(),
            fs::read(p).unwrap(),
            "{} restored differently",
            p.display()
        );
    }
    assert_eq!(mode_of(&under_root(&mnt, &jwt)), 0o600);
}

#[test]
fn gitea_jwt_key_file_relative_resolves_against_app_data_path_absolute_as_is() {
    let t = TestDir::new();
    let data = t.join("srv/gitea-data");
    let ini = gitea_ini(
        &t,
        "gitea",
        &format!(
            "[server]\nAPP_DATA_PATH = {}\n{SECURITY}[oauth2]\nJWT_SIGNING_PRIVATE_KEY_FILE = keys/oauth.pem\n",
            data.display()
        ),
    );
    let relative = data.join("keys/oauth.pem");
    openssl_rsa(&relative);
    // A key where the default would be must not be picked instead.
    openssl_rsa(&data.join("jwt/private.pem"));
    let (o, v) = check_json(&["-p", &profile_arg("gitea", &ini)]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let paths = item_paths(&v);
    assert!(paths.contains(&relative.display().to_string()), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.ends_with("jwt/private.pem")),
        "{paths:?}"
    );

    let absolute = t.join("etc/keys/gitea-jwt.pem");
    openssl_rsa(&absolute);
    let ini = gitea_ini(
        &t,
        "gitea",
        &format!(
            "[server]\nAPP_DATA_PATH = {}\n{SECURITY}[oauth2]\nJWT_SIGNING_PRIVATE_KEY_FILE = {}\n",
            data.display(),
            absolute.display()
        ),
    );
    let (o, v) = check_json(&["-p", &profile_arg("gitea", &ini)]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let paths = item_paths(&v);
    assert!(paths.contains(&absolute.display().to_string()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with("oauth.pem")), "{paths:?}");
}

#[test]
fn gitea_empty_secret_key_is_a_config_problem() {
    let t = TestDir::new();
    let ini = gitea_ini(
        &t,
        "gitea",
        "[security]\nINSTALL_LOCK = true\nSECRET_KEY =\n",
    );
    openssl_rsa(&t.join("var/lib/gitea/data/jwt/private.pem"));
    let (o, v) = check_json(&["-p", &profile_arg("gitea", &ini)]);
    expect_code(&o, 3);
    let f = findings_with(&v, "config-problem");
    assert!(
        f.iter().any(|f| f["severity"] == "warning"
            && f["message"].as_str().unwrap().contains("SECRET_KEY")
            && f["path"] == ini.display().to_string().as_str()),
        "{v}"
    );
    assert_eq!(v["ok"], false);
}

#[test]
fn gitea_missing_jwt_key_warns_that_gitea_makes_a_new_one() {
    let t = TestDir::new();
    let ini = gitea_ini(&t, "gitea", SECURITY);
    let (o, v) = check_json(&["-p", &profile_arg("gitea", &ini)]);
    expect_code(&o, 3);
    let jwt = t.join("var/lib/gitea/data/jwt/private.pem");
    let f = findings_with(&v, "secret-missing");
    let f = f
        .iter()
        .find(|f| f["path"] == jwt.display().to_string().as_str())
        .unwrap_or_else(|| panic!("no secret-missing for {}: {v}", jwt.display()));
    assert_eq!(f["severity"], "warning");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("will make a new one at start"),
        "{f}"
    );
    assert_eq!(v["errors"], 0, "{v}");

    // With [oauth2] disabled there is nothing to keep, and nothing to say about it.
    let ini = gitea_ini(
        &t,
        "gitea",
        &format!("{SECURITY}[oauth2]\nENABLED = false\n"),
    );
    let (_, v) = check_json(&["-p", &profile_arg("gitea", &ini)]);
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"].as_str().unwrap().contains("jwt")),
        "{v}"
    );
}

#[test]
fn forgejo_actions_id_token_and_asymmetric_lfs_keys_are_collected() {
    let t = TestDir::new();
    let ini = gitea_ini(
        &t,
        "forgejo",
        &format!(
            "[server]\nLFS_START_SERVER = true\nLFS_JWT_SIGNING_ALGORITHM = EdDSA\n{SECURITY}"
        ),
    );
    let data = t.join("var/lib/forgejo/data");
    let jwt = data.join("jwt/private.pem");
    let actions = data.join("actions_id_token/private.pem");
    let lfs = data.join("lfs/private.pem");
    openssl_rsa(&jwt);
    openssl_rsa(&actions);
    openssl_ed25519(&lfs);
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    backup_profiles(&[profile_arg("forgejo", &ini)], &recipient, &archive);
    let list = list_json(&archive, &key);
    for (p, what) in [
        (&jwt, "OAuth2 JWT signing key"),
        (&actions, "Actions OIDC ID-token signing key"),
        (&lfs, "LFS JWT signing key"),
    ] {
        let s = source_for(&list, p);
        assert_eq!(s["profile"], "forgejo", "{s}");
        assert!(s["what"].as_str().unwrap().contains(what), "{s}");
    }

    // The default HS256 LFS algorithm needs no key file: none is expected.
    let ini = gitea_ini(&t, "forgejo", SECURITY);
    fs::remove_file(&lfs).unwrap();
    let (_, v) = check_json(&["-p", &profile_arg("forgejo", &ini)]);
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"].as_str().unwrap().contains("lfs")),
        "{v}"
    );
}

#[test]
fn gitlab_omnibus_secrets_rb_and_host_keys_are_archived() {
    let t = TestDir::new();
    t.mkdir("etc/gitlab", 0o775);
    let secrets = t.write(
        "etc/gitlab/gitlab-secrets.json",
        br#"{"gitlab_rails":{"db_key_base":"test-only","otp_key_base":"test-only"}}"#,
        0o600,
    );
    let rb = t.write(
        "etc/gitlab/gitlab.rb",
        b"external_url 'https://gitlab.example.com'\n",
        0o600,
    );
    let etc = t.join("etc/gitlab");
    let ed = etc.join("ssh_host_ed25519_key");
    let rsa = etc.join("ssh_host_rsa_key");
    ssh_host_key(&ed, "ed25519", &[]);
    ssh_host_key(&rsa, "rsa", &["-b", "2048"]);
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    let report = backup_profiles(&[profile_arg("gitlab", &etc)], &recipient, &archive);
    assert!(
        findings_with(&report, "mode-too-open").is_empty(),
        "{report}"
    );
    let list = list_json(&archive, &key);
    let ed_pub = etc.join("ssh_host_ed25519_key.pub");
    let rsa_pub = etc.join("ssh_host_rsa_key.pub");
    for p in [&secrets, &rb, &ed, &ed_pub, &rsa, &rsa_pub] {
        assert_eq!(source_for(&list, p)["profile"], "gitlab");
    }

    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o644)).unwrap();
    let (o, v) = check_json(&["-p", &profile_arg("gitlab", &etc)]);
    expect_code(&o, 3);
    let f = findings_with(&v, "mode-too-open");
    assert!(
        f.iter()
            .any(|f| f["path"] == secrets.display().to_string().as_str()
                && f["fix"].as_str().unwrap().starts_with("chmod 600")),
        "{v}"
    );
}

#[test]
fn rotated_jwt_key_after_a_profile_backup_is_said_plainly_by_diff() {
    let t = TestDir::new();
    let ini = gitea_ini(&t, "gitea", SECURITY);
    let jwt = t.join("var/lib/gitea/data/jwt/private.pem");
    openssl_rsa(&jwt);
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    backup_profiles(&[profile_arg("gitea", &ini)], &recipient, &archive);

    // What Gitea does at start when the key went missing: a new one.
    fs::remove_file(&jwt).unwrap();
    openssl_rsa(&jwt);
    let o = fk(&[
        "diff",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    let text = stdout(&o);
    assert!(
        text.contains("the OAuth2 signing key changed since this backup"),
        "{text}\n{}",
        stderr(&o)
    );
    assert!(text.contains(&jwt.display().to_string()), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

/// A Woodpecker server with its SQLite database in WAL mode and a writer inserting
/// and committing without pause for the whole backup.
#[test]
fn woodpecker_sqlite_with_a_live_writer_is_archived_consistent() {
    require("sqlite3");
    let t = TestDir::new();
    let dir = t.mkdir("var/lib/woodpecker", 0o700);
    let db = dir.join("woodpecker.sqlite");
    run_ok(Command::new("sqlite3").arg(&db).arg(
        "PRAGMA journal_mode=WAL; create table t(i integer, b blob); \
         create table secrets(name text, value text); \
         insert into secrets values('registry', 'test-only-plain-text');",
    ));
    let env = t.write(
        "etc/woodpecker/woodpecker-server.env",
        format!(
            "WOODPECKER_HOST=https://ci.example.com\nWOODPECKER_GRPC_SECRET=test-only-grpc\n\
             WOODPECKER_DATABASE_DATASOURCE={}\n",
            db.display()
        )
        .as_bytes(),
        0o600,
    );

    // The writer: one sqlite3 process, one committed insert per statement, for longer
    // than any backup takes; killed when the backup is done.
    let mut writer = Command::new("bash")
        .args([
            "-c",
            "for i in $(seq 1 2000000); do echo \"insert into t values($i, randomblob(200));\"; done | sqlite3 \"$1\"",
            "writer",
            db.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // Wait until it is really writing (no timing assertion: just until rows appear).
    let mut rows = 0u64;
    for _ in 0..600 {
        let o = Command::new("sqlite3")
            .arg(&db)
            .arg("select count(*) from t")
            .output()
            .unwrap();
        rows = stdout(&o).trim().parse().unwrap_or(0);
        if rows > 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(rows > 100, "the writer never wrote");

    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    let o = fk(&[
        "backup",
        "--json",
        "-p",
        &profile_arg("woodpecker", &env),
        "-r",
        &recipient,
        "-o",
        archive.to_str().unwrap(),
    ]);
    let still_writing = writer.try_wait().unwrap().is_none();
    // End the writer's whole pipeline (its own process group).
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(writer.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = writer.wait();
    assert!(still_writing, "the writer stopped before the backup ended");
    assert!(
        matches!(code(&o), 0 | 3),
        "backup failed ({}): {}\n{}",
        code(&o),
        stdout(&o),
        stderr(&o)
    );
    let v = json_of(&o);
    assert!(findings_with(&v, "changed-while-read").is_empty(), "{v}");

    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".forgekeep.tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let list = list_json(&archive, &key);
    let entries: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(entries.contains(&db.to_str().unwrap()), "{entries:?}");
    assert!(
        !entries
            .iter()
            .any(|p| p.ends_with("-wal") || p.ends_with("-shm") || p.ends_with("-journal")),
        "{entries:?}"
    );
    assert!(
        source_for(&list, &db)["what"]
            .as_str()
            .unwrap()
            .contains("SQLite"),
        "{list}"
    );

    let mnt = t.mkdir("mnt", 0o755);
    let r = restore_under(&archive, &key, &mnt);
    expect_code(&r, 0);
    let restored = under_root(&mnt, &db);
    let ok = run_ok(
        Command::new("sqlite3")
            .arg(&restored)
            .arg("PRAGMA integrity_check"),
    );
    assert_eq!(stdout(&ok).trim(), "ok");
    let n = run_ok(
        Command::new("sqlite3")
            .arg(&restored)
            .arg("select count(*) from t"),
    );
    assert!(stdout(&n).trim().parse::<u64>().unwrap() > 0);
    let s = run_ok(
        Command::new("sqlite3")
            .arg(&restored)
            .arg("select value from secrets"),
    );
    assert_eq!(stdout(&s).trim(), "test-only-plain-text");
}

#[test]
fn relative_config_gives_absolute_items_and_findings() {
    let t = TestDir::new();
    let ini = gitea_ini(&t, "gitea", SECURITY);
    fs::set_permissions(&ini, fs::Permissions::from_mode(0o644)).unwrap();
    let jwt = t.join("var/lib/gitea/data/jwt/private.pem");
    openssl_rsa(&jwt);
    let o = fk_cmd(&["check", "--json", "-p", "gitea=etc/gitea/app.ini"])
        .current_dir(t.path())
        .output()
        .unwrap();
    expect_code(&o, 3);
    let v = json_of(&o);
    let paths = item_paths(&v);
    assert!(paths.contains(&ini.display().to_string()), "{paths:?}");
    assert!(paths.contains(&jwt.display().to_string()), "{paths:?}");
    // The profile's audit names the file as the item does; collection does not add a
    // second finding for it (issue 13: one finding per file).
    let on_ini = |code: &str| {
        findings_with(&v, code)
            .iter()
            .filter(|f| f["path"] == ini.display().to_string().as_str())
            .count()
    };
    assert_eq!(on_ini("mode-too-open"), 1, "{v}");
    assert_eq!(on_ini("world-readable"), 0, "{v}");
}

/// A native Woodpecker server whose env file names its SQLite database (a table
/// `secrets` with one row): (the database, the env file).
fn woodpecker_with_sqlite(t: &TestDir) -> (PathBuf, PathBuf) {
    let dir = t.mkdir("var/lib/woodpecker", 0o700);
    let db = dir.join("woodpecker.sqlite");
    run_ok(
        Command::new("sqlite3")
            .arg(&db)
            .arg("create table secrets(v text); insert into secrets values('x');"),
    );
    let env = t.write(
        "etc/woodpecker/woodpecker-server.env",
        format!(
            "WOODPECKER_GRPC_SECRET=g\nWOODPECKER_DATABASE_DATASOURCE={}\n",
            db.display()
        )
        .as_bytes(),
        0o600,
    );
    (db, env)
}

#[test]
fn database_copies_are_never_made_in_a_folder_others_can_rename_in() {
    // Review: the copy was made in the database's own folder, whose owner (the forge's
    // user) could swap its name and have root write the database into a file of theirs.
    // Now it goes to a private folder under a trusted temp folder; an untrusted TMPDIR is
    // refused rather than used.
    require("sqlite3");
    let t = TestDir::new();
    let (db, env) = woodpecker_with_sqlite(&t);
    let dir = db.parent().unwrap().to_path_buf();
    let (_key, recipient) = t.age_key("key.txt");
    let open_tmp = t.mkdir("open-tmp", 0o777); // world-writable, not sticky
    let out = t.join("a.age");
    let o = fk_cmd(&[
        "backup",
        "-p",
        &profile_arg("woodpecker", &env),
        "-r",
        &recipient,
        "-o",
        out.to_str().unwrap(),
    ])
    .env("TMPDIR", &open_tmp)
    .output()
    .unwrap();
    expect_code(&o, 1);
    assert!(
        stderr(&o).contains("is not safe for a database copy"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
    // With a private temp folder it works, and nothing is left in it or next to the DB.
    let private_tmp = t.mkdir("private-tmp", 0o700);
    let o = fk_cmd(&[
        "backup",
        "-p",
        &profile_arg("woodpecker", &env),
        "-r",
        &recipient,
        "-o",
        out.to_str().unwrap(),
    ])
    .env("TMPDIR", &private_tmp)
    .output()
    .unwrap();
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&private_tmp).unwrap().count(), 0);
    assert!(!std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".forgekeep.tmp")));
}

#[test]
fn a_read_only_or_missing_temp_folder_names_the_tmpfs_and_tmpdir_regression_sidecar() {
    // Issue 13 item 4: the compose sidecar (read_only: true, no tmpfs) failed every night
    // with "cannot create a private folder in /tmp: Read-only file system" and no hint.
    if !is_root() {
        eprintln!("skipped: needs root (a read-only mount in a mount namespace)");
        return;
    }
    require("sqlite3");
    require("unshare");
    let t = TestDir::new();
    let (_, env) = woodpecker_with_sqlite(&t);
    let (_key, recipient) = t.age_key("key.txt");
    let out = t.join("a.age");
    let run = |tmpdir: &Path, setup: &str| {
        let script = format!(
            "{setup} exec env TMPDIR={} {BIN} backup -p {} -r {recipient} -o {}",
            tmpdir.display(),
            profile_arg("woodpecker", &env),
            out.display()
        );
        Command::new("unshare")
            .args(["--mount", "sh", "-c", &script])
            .output()
            .unwrap()
    };
    // A read-only file system, as in a read_only container.
    let ro = t.mkdir("ro-tmp", 0o755);
    let o = run(
        &ro,
        &format!("mount -t tmpfs -o ro,mode=1777 tmpfs {} &&", ro.display()),
    );
    expect_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("cannot create a private folder in")
            && err.contains(
                "Read-only file system (hint: the temp folder is on a read-only file system"
            )
            && err.contains("a tmpfs at /tmp (compose: `tmpfs: [\"/tmp:mode=1777\"]`")
            && err.contains("TMPDIR naming a folder only root can write"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!out.exists());
    // No temp folder at all (a minimal image).
    let o = run(&t.join("no-such-tmp"), "");
    expect_code(&o, 1);
    assert!(
        stderr(&o).contains("(hint: there is no temp folder, and a database copy needs one"),
        "{}",
        stderr(&o)
    );
    // A writable tmpfs, as the sidecar now has: the copy is made, nothing is left.
    let tmpfs = t.mkdir("tmpfs", 0o755);
    let o = run(
        &tmpfs,
        &format!("mount -t tmpfs -o mode=1777 tmpfs {} &&", tmpfs.display()),
    );
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    assert!(out.exists());
}

#[test]
fn a_symlinked_folder_the_forges_user_could_make_is_not_followed_one_of_roots_is() {
    // Issue: `resolve_source` resolved symlinks in a profile item's folders. Natively the
    // work path belongs to git, who could replace `data/` by a link to any folder of the
    // host and have root archive what is there.
    if !is_root() {
        eprintln!("skipped: needs root (a folder owned by another user)");
        return;
    }
    let t = TestDir::new();
    let ini = gitea_ini(&t, "gitea", SECURITY);
    let work = t.join("var/lib/gitea");
    fs::remove_dir(work.join("data")).unwrap();
    let elsewhere = t.mkdir("srv/gitea-data", 0o750);
    openssl_rsa(&elsewhere.join("jwt/private.pem"));
    std::os::unix::fs::symlink(&elsewhere, work.join("data")).unwrap();
    let jwt = work.join("data/jwt/private.pem");

    // git owns the work path: a link there is git's to make.
    nix::unistd::chown(&work, Some(1000.into()), Some(1000.into())).unwrap();
    let (o, v) = check_json(&["-p", &profile_arg("gitea", &ini)]);
    expect_code(&o, 1);
    let f = findings_with(&v, "untrusted-symlink");
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["path"], jwt.to_str().unwrap());
    let msg = f[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("below {}", work.join("data").display()))
            && msg.contains("uid 1000")
            && msg.contains(&format!("who owns {}", work.display())),
        "{msg}"
    );
    assert!(
        !item_paths(&v).iter().any(|p| p.contains("jwt")),
        "{:?}",
        item_paths(&v)
    );
    let (key, recipient) = t.age_key("key.txt");
    let a = t.join("a.age");
    let o = fk(&[
        "backup",
        "-p",
        &profile_arg("gitea", &ini),
        "-r",
        &recipient,
        "-o",
        a.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    assert!(!entry_paths(&list_json(&a, &key))
        .iter()
        .any(|p| p.contains("jwt")));

    // The same link in a folder only root writes is the administrator's: followed.
    nix::unistd::chown(&work, Some(0.into()), Some(0.into())).unwrap();
    let (_, v) = check_json(&["-p", &profile_arg("gitea", &ini)]);
    assert!(findings_with(&v, "untrusted-symlink").is_empty(), "{v}");
    assert!(
        item_paths(&v)
            .iter()
            .any(|p| p == elsewhere.join("jwt/private.pem").to_str().unwrap()
                || p == jwt.to_str().unwrap()),
        "{:?}",
        item_paths(&v)
    );
}

#[test]
fn numeric_ids_expects_the_images_uid_in_check_and_backup_alike_regression_sidecar_chown_git() {
    // Issue 13 item 4: the sidecar (profiles over the containers' volumes) warned every
    // day that files of uid 1000 should be `chown git`: a user the sidecar does not have,
    // and in the containers the files must stay 1000. With --numeric-ids the owners are
    // the image's uids, in check as in backup.
    let t = TestDir::new();
    let ini = gitea_ini(&t, "gitea", SECURITY);
    let jwt = t.join("var/lib/gitea/data/jwt/private.pem");
    openssl_rsa(&jwt);
    let p = profile_arg("gitea", &ini);
    let me = nix::unistd::geteuid().as_raw();

    let (_, v) = check_json(&["-p", &p, "--numeric-ids"]);
    let owner = findings_with(&v, "owner-unexpected");
    assert!(!owner.is_empty(), "{v}");
    for f in &owner {
        let path = f["path"].as_str().unwrap();
        assert_eq!(f["fix"], format!("chown 1000 {path}").as_str(), "{f}");
        assert!(
            f["message"]
                .as_str()
                .unwrap()
                .ends_with(&format!("belongs to uid {me}; the forge runs as uid 1000")),
            "{f}"
        );
    }
    let (key, recipient) = t.age_key("key.txt");
    let a = t.join("a.age");
    let o = fk(&[
        "backup",
        "--json",
        "-p",
        &p,
        "--numeric-ids",
        "-r",
        &recipient,
        "-o",
        a.to_str().unwrap(),
    ]);
    let b = json_of(&o);
    assert_eq!(findings_with(&b, "owner-unexpected"), owner, "{b}");
    assert!(!stdout(&o).contains("chown git"));
    assert_eq!(
        source_for(&list_json(&a, &key), &jwt)["ownership"],
        "numeric"
    );

    // The configuration's numeric-ids counts for check too.
    let config = t.write(
        "config.toml",
        format!("[sources]\nprofiles = [\"{p}\"]\n[backup]\nnumeric-ids = true\n").as_bytes(),
        0o600,
    );
    let (_, v) = check_json(&["--config", config.to_str().unwrap()]);
    assert_eq!(findings_with(&v, "owner-unexpected"), owner, "{v}");

    // Without it, natively, the owner is the run user by name.
    let (_, v) = check_json(&["-p", &p]);
    assert!(findings_with(&v, "owner-unexpected")
        .iter()
        .all(|f| !f["fix"].as_str().unwrap().starts_with("chown 1000")));
}
