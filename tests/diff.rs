//! `diff`: an archive against the live files, and the plain words when a key rotated.

use crate::util::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn identical_tree_has_no_differences() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    let o = diff(&archive, &key, &["--json"]);
    expect_code(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["differences"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["ok"], true);
}

#[test]
fn rotated_signing_key_is_said_plainly() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    // What Gitea does when jwt/ was not persistent: a brand-new key at the next start.
    let pem = tree.join("jwt/private.pem");
    fs::remove_file(&pem).unwrap();
    openssl_ed25519(&pem);
    let o = diff(&archive, &key, &[]);
    expect_code(&o, 3);
    let text = stdout(&o);
    assert!(
        text.contains("the OAuth2 signing key changed since this backup: tokens issued before it are no longer valid"),
        "{text}"
    );
    assert!(
        text.contains("restore it with: forgekeep restore"),
        "{text}"
    );
    assert!(text.contains("--only"), "{text}");
    // Following the advice puts the old key back, and then nothing differs.
    let line = text
        .lines()
        .find(|l| l.contains("restore it with:"))
        .unwrap();
    let only = line
        .split("--only '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    let r = restore(
        &archive,
        &key,
        &[
            "--only",
            only,
            "--force",
            "--undo-dir",
            t.path().to_str().unwrap(),
        ],
    );
    expect_code(&r, 0);
    let o = diff(&archive, &key, &[]);
    expect_code(&o, 0);
}

#[test]
fn missing_extra_and_drift_are_reported_in_json() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    fs::remove_file(tree.join("jwt/private.pem")).unwrap();
    fs::set_permissions(tree.join("conf/app.ini"), fs::Permissions::from_mode(0o644)).unwrap();
    t.write("srv/gitea/conf/new.ini", b"x", 0o600);
    let o = diff(&archive, &key, &["--json"]);
    expect_code(&o, 3);
    let v = json_of(&o);
    assert_eq!(v["counts"]["missing"], 1, "{v}");
    assert_eq!(v["counts"]["drift"], 1, "{v}");
    assert_eq!(v["counts"]["extra"], 1, "{v}");
    let missing = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["change"] == "missing")
        .unwrap();
    assert!(missing["path"]
        .as_str()
        .unwrap()
        .ends_with("jwt/private.pem"));
    assert!(
        missing["consequence"].as_str().unwrap().contains("new one"),
        "{missing}"
    );
    // No secret content or digest of a live file in the report.
    assert!(!stdout(&o).contains("PRIVATE KEY"));
}

#[test]
fn root_compares_a_tree_mounted_elsewhere() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    let mnt = t.mkdir("mnt", 0o755);
    let r = restore(&archive, &key, &["--root", mnt.to_str().unwrap()]);
    expect_code(&r, 0);
    let o = diff(&archive, &key, &["--root", mnt.to_str().unwrap()]);
    expect_code(&o, 0);
}

#[test]
fn files_left_out_by_exclude_are_not_extra() {
    // Regression: a backup with --exclude '*.log' made every later diff exit 3 for the
    // log files it had left out on purpose.
    let t = TestDir::new();
    let tree = t.gitea_tree();
    t.write("srv/gitea/conf/gitea.log", b"log", 0o600);
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &["--exclude", "*.log"]);
    let o = diff(&archive, &key, &[]);
    expect_code(&o, 0);
    t.write("srv/gitea/conf/new.ini", b"x", 0o600);
    let o = diff(&archive, &key, &["--json"]);
    expect_code(&o, 3);
    assert_eq!(json_of(&o)["counts"]["extra"], 1);
}

#[test]
fn an_unreadable_live_file_is_not_called_changed() {
    // Regression: a user who could not read a live key was told it had changed (and that
    // every token it signed was dead).
    if !is_root() {
        return; // needs setpriv to another user; CI runs as root
    }
    require("setpriv");
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o644)).unwrap();
    // The key's folder is open to others, the key itself (0600) is not; conf/ stays closed.
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(tree.join("jwt"), fs::Permissions::from_mode(0o755)).unwrap();
    let o = sh(&format!(
        "setpriv --reuid=daemon --regid=daemon --clear-groups env FORGEKEEP_CONFIG=/dev/null {BIN} diff {} -i {} --json",
        archive.display(),
        key.display()
    ));
    let v = json_of(&o);
    let pem = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str().unwrap().ends_with("jwt/private.pem"))
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(pem["change"], "unreadable", "{pem}");
    assert!(pem.get("consequence").is_none(), "{pem}");
    assert_eq!(v["counts"]["changed"], 0, "{v}");
}

#[test]
fn a_missing_folder_is_reported_once() {
    // Review: a deleted folder was "missing" and also "unreadable" (cannot be listed).
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    fs::remove_dir_all(tree.join("jwt")).unwrap();
    let o = diff(&archive, &key, &["--json"]);
    expect_code(&o, 3);
    let v = json_of(&o);
    assert_eq!(v["counts"]["missing"], 2, "the folder and the key: {v}");
    assert_eq!(v["counts"]["unreadable"], 0, "{v}");
}
