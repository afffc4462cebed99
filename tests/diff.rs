//! `diff`: an archive against the live files, and the plain words when a key rotated.

use crate::util::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn identical_tree_has_no_differences() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    let o = fk(&[
        "diff",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--json",
    ]);
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
    run_ok(Command::new("openssl").args([
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        pem.to_str().unwrap(),
    ]));
    fs::set_permissions(&pem, fs::Permissions::from_mode(0o600)).unwrap();
    let o = fk(&[
        "diff",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ]);
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
    let o = fk(&[
        "diff",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ]);
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
    let o = fk(&[
        "diff",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--json",
    ]);
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
    let o = fk(&[
        "diff",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--root",
        mnt.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
}
