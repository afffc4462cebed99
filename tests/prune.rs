//! `forgekeep prune`: the real binary on folders of synthetic archive files (empty files
//! with valid names: prune never opens them), plus one archive made by a real backup.

use crate::util::*;
use std::fs;
use std::path::Path;

fn name(host: &str, stamp: &str) -> String {
    format!("forgekeep-{host}-{stamp}.tar.zst.age")
}

/// Empty archive files for `stamps` of host `git`, in the test folder's `backups/`.
fn folder(td: &TestDir, stamps: &[&str]) -> std::path::PathBuf {
    let dir = td.mkdir("backups", 0o700);
    for s in stamps {
        fs::write(dir.join(name("git", s)), b"").unwrap();
    }
    dir
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn prune(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["prune", dir.to_str().unwrap()];
    args.extend(extra);
    fk(&args)
}

const MONTHS: [&str; 8] = [
    "20270115T030000Z",
    "20270101T030000Z",
    "20261231T030000Z",
    "20261231T010000Z",
    "20261130T030000Z",
    "20261015T030000Z",
    "20260601T030000Z",
    "20251201T030000Z",
];

#[test]
fn dry_run_deletes_nothing_and_says_what_it_would() {
    let td = TestDir::new();
    let dir = folder(&td, &MONTHS);
    let before = names_in(&dir);
    let o = prune(&dir, &["--keep-monthly", "2", "--dry-run"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "keep   {}  monthly 2027-01",
            name("git", MONTHS[0])
        )),
        "{text}"
    );
    assert!(text.contains(&format!("delete {}", name("git", MONTHS[7]))));
    assert!(text.contains("would delete 6 of 8"), "{text}");
    let after: Vec<String> = names_in(&dir);
    assert_eq!(after, before);
}

#[test]
fn monthly_rules_delete_the_rest_and_json_tells_it() {
    let td = TestDir::new();
    let dir = folder(&td, &MONTHS);
    let o = prune(&dir, &["--keep-monthly", "3", "--keep-last", "1", "--json"]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("one JSON object");
    assert_eq!(v["command"], "prune");
    assert_eq!(v["ok"], true);
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["dir"], dir.to_str().unwrap());
    let kept: Vec<&str> = v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    let want_kept = [
        name("git", "20270115T030000Z"),
        name("git", "20261231T030000Z"),
        name("git", "20261130T030000Z"),
    ];
    assert_eq!(kept, want_kept);
    assert_eq!(
        v["kept"][0]["reasons"],
        serde_json::json!(["last", "monthly 2027-01"])
    );
    assert_eq!(v["kept"][0]["time"], "2027-01-15T03:00:00Z");
    assert_eq!(v["kept"][0]["host"], "git");
    let deleted: Vec<&str> = v["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(deleted.len(), 5);
    assert_eq!(v["to_delete"], v["deleted"]);
    let left = names_in(&dir);
    let mut want: Vec<String> = want_kept.to_vec();
    want.sort();
    assert_eq!(left, want);
    // Human text went to stderr under --json.
    assert!(stderr(&o).contains("deleted 5 of 8"), "{}", stderr(&o));
    // A second run finds nothing more to do.
    let o = prune(&dir, &["--keep-monthly", "3", "--keep-last", "1"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("nothing to delete"), "{}", stdout(&o));
}

#[test]
fn other_files_are_never_touched() {
    let td = TestDir::new();
    let dir = folder(&td, &["20261125T030000Z", "20261001T030000Z"]);
    let old = dir.join(name("git", "20261001T030000Z"));
    let untouchable = [
        "notes.txt",
        "restore-undo-git-20250101T030000Z.tar.zst.age",
        "forgekeep-git-20250101T030000Z.tar.zst.age.bak",
        "forgekeep-git-20250101T030000Z.tar.gz",
        "forgekeep-git-2025-01-01.tar.zst.age",
        ".forgekeep.tmp.1.0000000000000000",
    ];
    for n in untouchable {
        fs::write(dir.join(n), b"x").unwrap();
    }
    // Named like old archives, but a symlink and a folder.
    let link = name("git", "20240101T030000Z");
    std::os::unix::fs::symlink(&old, dir.join(&link)).unwrap();
    let sub = name("git", "20230101T030000Z");
    fs::create_dir(dir.join(&sub)).unwrap();
    fs::write(dir.join(&sub).join("inside"), b"x").unwrap();

    let o = prune(&dir, &["--keep-last", "1"]);
    expect_code(&o, 0);
    assert!(!old.exists(), "the old archive is deleted");
    assert!(dir.join(name("git", "20261125T030000Z")).exists());
    for n in untouchable {
        assert_eq!(fs::read(dir.join(n)).unwrap(), b"x", "{n} untouched");
    }
    assert!(fs::symlink_metadata(dir.join(&link))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(dir.join(&sub).join("inside").exists());
    let text = stdout(&o);
    assert!(
        !text.contains("notes.txt") && !text.contains(&link),
        "{text}"
    );
}

#[test]
fn the_newest_survives_and_hosts_are_independent() {
    let td = TestDir::new();
    let dir = folder(&td, &["20261125T030000Z", "20261124T030000Z"]);
    // An older host: its newest is older than everything of `git`.
    for s in ["20250101T030000Z", "20240101T030000Z"] {
        fs::write(dir.join(name("old-box", s)), b"").unwrap();
    }
    let o = prune(&dir, &["--keep-last", "1"]);
    expect_code(&o, 0);
    let left = names_in(&dir);
    assert_eq!(
        left,
        vec![
            name("git", "20261125T030000Z"),
            name("old-box", "20250101T030000Z")
        ]
    );
}

#[test]
fn an_archive_made_by_backup_is_recognised_and_kept_as_the_newest() {
    let td = TestDir::new();
    let dir = folder(&td, &["20200101T030000Z", "20190101T030000Z"]);
    let (_key, r) = td.age_key("k.txt");
    let src = td.write("src/secret", b"s3cret\n", 0o600);
    let out_dir = format!("{}/", dir.display());
    backup(&[&src], &r, Path::new(&out_dir), &[]);
    let real: Vec<String> = names_in(&dir)
        .into_iter()
        .filter(|n| !n.contains("-2020") && !n.contains("-2019") && n.ends_with(".age"))
        .collect();
    assert_eq!(real.len(), 1, "{real:?}");
    // Whether this machine's host name is `git` or not, the real archive is the newest
    // of its host, and the 2019 one is not the newest of `git`.
    let o = prune(&dir, &["--keep-last", "1", "--json"]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let kept: Vec<&str> = v["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(kept.contains(&real[0].as_str()), "{kept:?}");
    assert!(dir.join(&real[0]).exists());
    assert!(!dir.join(name("git", "20190101T030000Z")).exists());
}

#[test]
fn no_rule_or_no_folder_is_a_usage_error() {
    let td = TestDir::new();
    let dir = folder(&td, &MONTHS);
    let before = names_in(&dir);
    for extra in [
        &[][..],
        &["--keep-last", "0"][..],
        &["--keep-daily", "0", "--keep-monthly", "0"][..],
    ] {
        let o = prune(&dir, extra);
        expect_code(&o, 2);
        assert!(stderr(&o).contains("no retention rule"), "{}", stderr(&o));
    }
    assert_eq!(
        names_in(&dir),
        before,
        "nothing deleted, not even a lock made"
    );
    let o = fk(&["prune", "--keep-last", "1"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("no archive folder"), "{}", stderr(&o));
    let o = fk(&["prune", "--keep-last", "1", "--json"]);
    expect_code(&o, 2);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    // A folder that does not exist: a runtime error naming it.
    let missing = td.join("missing");
    let o = prune(&missing, &["--keep-last", "1"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

#[test]
fn a_held_lock_stops_prune_with_exit_6_and_a_dead_holder_does_not() {
    let td = TestDir::new();
    let dir = folder(&td, &MONTHS);
    let lock = dir.join(".forgekeep.lock");
    fs::write(
        &lock,
        "pid 4242\nstarted 2026-11-25T03:00:00Z\ncommand backup\n",
    )
    .unwrap();
    let holder = Holder::hold(&lock);
    let before = names_in(&dir);
    let o = prune(&dir, &["--keep-last", "1", "--json"]);
    expect_code(&o, 6);
    let err = stderr(&o);
    assert!(
        err.contains("another forgekeep run holds the lock")
            && err.contains("(pid 4242, started 2026-11-25T03:00:00Z, backup)"),
        "{err}"
    );
    assert!(err.contains("wait for it to finish"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["exit_code"], 6);
    assert_eq!(names_in(&dir), before, "nothing deleted while locked");
    // --dry-run takes the lock too: a plan made beside a running writer would be stale.
    expect_code(&prune(&dir, &["--keep-last", "1", "--dry-run"]), 6);

    // The holder dies (as a killed backup would): its lock goes with it, and the file it
    // left behind is taken over, then removed when the run ends.
    drop(holder);
    let o = prune(&dir, &["--keep-last", "1"]);
    expect_code(&o, 0);
    assert!(!lock.exists(), "a finished run leaves no lock file");
}

#[test]
fn a_read_only_folder_is_a_clear_error() {
    if !is_root() {
        eprintln!("skipped: needs root to run prune as another user (setpriv)");
        return;
    }
    require("setpriv");
    let td = TestDir::new();
    let dir = td.mkdir("ro", 0o755); // root's; `daemon` may read it, not write
    for s in MONTHS {
        fs::write(dir.join(name("git", s)), b"").unwrap();
    }
    let o = sh(&format!(
        "setpriv --reuid=daemon --regid=daemon --clear-groups {BIN} prune {} --keep-last 1",
        dir.display()
    ));
    expect_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("cannot create the lock file") && err.contains("must be writable"),
        "{err}"
    );
    assert_eq!(names_in(&dir).len(), MONTHS.len());
}
