//! Unattended operation through the real binary: the run lock of the archive folder,
//! pruning after a backup (`--keep-*` and `[retention]`), `verify --latest` with
//! `--max-age`, and `--quiet` for cron. Older archives are synthetic (empty files with
//! valid names: pruning never opens them) or real archives written under chosen names,
//! so no test sleeps to get distinct stamps.

use crate::util::*;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

const LOCK: &str = ".forgekeep.lock";

/// This machine's host name as `backup` puts it in the archive names it generates.
fn host() -> String {
    forgekeep::commands::backup::host_for_filename()
}

fn archive_name(host: &str, stamp: &str) -> String {
    format!("forgekeep-{host}-{stamp}.tar.zst.age")
}

/// The names in `dir`, sorted (the lock file included: a finished run leaves none).
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// A source with nothing to report: one `0600` file in a `0700` folder.
fn private_src(td: &TestDir, rel: &str) -> PathBuf {
    let dir = td.mkdir(rel, 0o700);
    td.write(&format!("{rel}/secret"), b"s3cret\n", 0o600);
    dir
}

/// `forgekeep backup SRC -r RECIPIENT -o OUT EXTRA...`, whatever its exit code.
fn run_backup(src: &Path, recipient: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["backup", src.to_str().unwrap(), "-r", recipient, "-o", out];
    args.extend(extra);
    fk(&args)
}

/// A configuration file for the whole job: `src` to `dir/` for `recipient`, and `extra`
/// (e.g. a `[retention]` table).
fn job_config(td: &TestDir, src: &Path, recipient: &str, dir: &Path, extra: &str) -> PathBuf {
    td.write(
        "etc/config.toml",
        format!(
            "[sources]\npaths = [\"{}\"]\n[backup]\nrecipients = [\"{recipient}\"]\noutput = \"{}/\"\n{extra}",
            src.display(),
            dir.display()
        )
        .as_bytes(),
        0o600,
    )
}

/// `DIR/` as `-o` takes it (a generated name inside).
fn slash(dir: &Path) -> String {
    format!("{}/", dir.display())
}

// --- the run lock -----------------------------------------------------------------------

#[test]
fn a_held_lock_stops_a_backup_at_once_with_exit_6_naming_the_holder() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    let lock = dir.join(LOCK);
    fs::write(
        &lock,
        "pid 4242\nstarted 2026-11-25T03:00:00Z\ncommand backup\n",
    )
    .unwrap();
    let holder = Holder::hold(&lock);

    let o = run_backup(&src, &r, &slash(&dir), &["--json"]);
    expect_code(&o, 6);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "another forgekeep run holds the lock on {}",
            dir.display()
        )) && err.contains("(pid 4242, started 2026-11-25T03:00:00Z, backup)"),
        "{err}"
    );
    let v = json_of(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 6);
    assert!(v["error"].as_str().unwrap().contains("pid 4242"), "{v}");
    assert_eq!(
        names_in(&dir),
        vec![LOCK.to_string()],
        "no archive, no temp file; the holder's lock file untouched"
    );

    // An output FILE in that folder is under the same lock.
    let o = run_backup(&src, &r, dir.join("named.age").to_str().unwrap(), &[]);
    expect_code(&o, 6);
    assert!(!dir.join("named.age").exists());

    // Held by something that wrote nothing about itself (flock(1) on an empty file):
    // still exit 6, and the message does not invent a holder.
    fs::write(&lock, "").unwrap();
    let o = run_backup(&src, &r, &slash(&dir), &[]);
    expect_code(&o, 6);
    assert!(
        stderr(&o).contains("holds the lock") && !stderr(&o).contains("(pid"),
        "{}",
        stderr(&o)
    );

    // A dry run writes nothing and takes no lock.
    expect_code(
        &fk(&["backup", src.to_str().unwrap(), "-r", &r, "--dry-run"]),
        0,
    );

    drop(holder);
    let o = run_backup(&src, &r, &slash(&dir), &[]);
    expect_code(&o, 0);
    only_archive(&dir);
}

#[test]
fn a_second_backup_while_the_first_runs_exits_6_and_the_first_completes() {
    let td = TestDir::new();
    let (key, r) = td.age_key("key.txt");
    // Enough world-readable files that their warnings (one stderr line each; -v prints
    // them all) overflow a pipe nobody reads yet: the first backup blocks on stderr
    // while it holds the lock, until the test drains it. No timing is involved.
    let busy = td.mkdir("busy", 0o755);
    for i in 0..1500 {
        td.write(&format!("busy/f{i:04}"), SECRET_SETTING, 0o644);
    }
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    let mut first = fk_cmd(&[
        "-v",
        "backup",
        busy.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        &slash(&dir),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mine = format!("pid {}\n", first.id());
    let lock = dir.join(LOCK);
    let mut held = false;
    for _ in 0..3000 {
        if fs::read_to_string(&lock).is_ok_and(|t| t.starts_with(&mine)) {
            held = true;
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first backup ended before taking the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(held, "the first backup never wrote its pid into {LOCK}");

    let second = run_backup(&src, &r, &slash(&dir), &[]);
    // The first is still there (it cannot end before stderr is drained).
    assert!(first.try_wait().unwrap().is_none());
    expect_code(&second, 6);
    let err = stderr(&second);
    assert!(
        err.contains(&format!("(pid {}, started ", first.id())) && err.contains(", backup)"),
        "{err}"
    );

    let mut first_err = String::new();
    first
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut first_err)
        .unwrap();
    let status = first.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "the first backup completes (exit 3: its world-readable files); stderr:\n{first_err}"
    );
    assert!(first_err.contains("[world-readable]"));
    let archive = only_archive(&dir);
    let v = fk(&[
        "verify",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ]);
    expect_code(&v, 0);
}

#[test]
fn a_lock_file_left_by_a_dead_process_does_not_block() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    let lock = dir.join(LOCK);
    fs::write(
        &lock,
        "pid 999999\nstarted 2020-01-01T00:00:00Z\ncommand backup\n",
    )
    .unwrap();
    let o = run_backup(&src, &r, &slash(&dir), &[]);
    expect_code(&o, 0);
    only_archive(&dir);
    // Taken over, then removed at the end like any lock this run took.
    assert!(!lock.exists(), "a finished run leaves no lock file");
}

// --- pruning after a backup ---------------------------------------------------------------

const OLD: [&str; 5] = [
    "20250101T030000Z",
    "20250102T030000Z",
    "20250103T030000Z",
    "20250104T030000Z",
    "20250105T030000Z",
];

/// Files in `backups/` that pruning must never touch: not named like an archive.
fn untouchable() -> Vec<String> {
    let h = host();
    vec![
        "notes.txt".into(),
        format!("forgekeep-{h}-20240101T030000Z.tar.zst.age.bak"),
        format!("forgekeep-{h}-2024-01-01.tar.zst.age"),
        format!("restore-undo-{h}-20240101T030000Z.tar.zst.age"),
    ]
}

/// `backups/` with five empty archives of this host for 2025-01-01..05, one of another
/// host, and files that are not archives.
fn folder_with_old_archives(td: &TestDir) -> PathBuf {
    let dir = td.mkdir("backups", 0o700);
    for s in OLD {
        fs::write(dir.join(archive_name(&host(), s)), b"").unwrap();
    }
    fs::write(dir.join(archive_name("other-box", "20240101T030000Z")), b"").unwrap();
    for n in untouchable() {
        fs::write(dir.join(n), b"keep me").unwrap();
    }
    dir
}

/// What must be left after keeping the 2 newest of this host: the new archive (not
/// listed here), the 2025-01-05 one, the other host's only archive, the non-archives.
fn left_after_keep_last_2() -> Vec<String> {
    let mut v = vec![
        archive_name(&host(), OLD[4]),
        archive_name("other-box", "20240101T030000Z"),
    ];
    v.extend(untouchable());
    v
}

fn assert_kept_two(dir: &Path, new_archive: &Path) {
    let new_name = new_archive
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut want = left_after_keep_last_2();
    want.push(new_name);
    want.sort();
    assert_eq!(names_in(dir), want);
    for n in untouchable() {
        assert_eq!(fs::read(dir.join(&n)).unwrap(), b"keep me", "{n} untouched");
    }
}

/// The archive this test wrote: the one of this host not among the synthetic stamps.
fn the_new_archive(dir: &Path) -> PathBuf {
    let h = host();
    let new: Vec<String> = names_in(dir)
        .into_iter()
        .filter(|n| {
            n.starts_with(&format!("forgekeep-{h}-"))
                && n.ends_with(".tar.zst.age")
                && !OLD.iter().any(|s| n.contains(s))
                && !untouchable().contains(n)
        })
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    dir.join(&new[0])
}

#[test]
fn backup_with_keep_last_prunes_the_folder_after_writing_and_reports_it_in_json() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = folder_with_old_archives(&td);
    let o = run_backup(&src, &r, &slash(&dir), &["--keep-last", "2", "--json"]);
    expect_code(&o, 0);
    let new = the_new_archive(&dir);
    assert_kept_two(&dir, &new);

    let v = json_of(&o);
    assert_eq!(v["archive"], new.to_str().unwrap());
    let p = &v["prune"];
    assert!(p.is_object(), "{v}");
    assert!(p.get("command").is_none(), "{p}");
    assert_eq!(p["dry_run"], false);
    assert_eq!(p["dir"], slash(&dir), "the folder as given");
    let mut deleted: Vec<String> = p["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    deleted.sort();
    let want: Vec<String> = OLD[..4].iter().map(|s| archive_name(&host(), s)).collect();
    assert_eq!(deleted, want);
    let kept: Vec<&str> = p["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(
        kept.contains(&new.file_name().unwrap().to_str().unwrap()),
        "{kept:?}"
    );
    // The plan went to stderr with the other human text.
    // Only this host's archives were considered: the other host's is not counted.
    assert!(stderr(&o).contains("deleted 4 of 6"), "{}", stderr(&o));
}

#[test]
fn retention_in_the_config_file_prunes_after_a_backup_without_flags() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = folder_with_old_archives(&td);
    // The file's rules are for the file's job: its sources, keys and output folder.
    let config = job_config(&td, &src, &r, &dir, "[retention]\nkeep-last = 2\n");
    let o = fk(&["backup", "--config", config.to_str().unwrap()]);
    expect_code(&o, 0);
    let new = the_new_archive(&dir);
    assert_kept_two(&dir, &new);
    assert!(stdout(&o).contains("deleted 4 of 6"), "{}", stdout(&o));
}

#[test]
fn a_failed_backup_never_prunes() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let dir = folder_with_old_archives(&td);
    let before = names_in(&dir);
    let missing = td.join("no-such-source");
    let config = job_config(&td, &missing, &r, &dir, "[retention]\nkeep-last = 1\n");
    // A source that does not exist: exit 1, with the flag and with the config file.
    let o = run_backup(&missing, &r, &slash(&dir), &["--keep-last", "1", "--json"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    assert_eq!(json_of(&o)["exit_code"], 1);
    assert_eq!(names_in(&dir), before);
    let o = fk(&["backup", "--config", config.to_str().unwrap()]);
    expect_code(&o, 1);
    assert_eq!(names_in(&dir), before);

    // A source that cannot be read: exit 1 (no archive: it would be incomplete).
    td.mkdir("locked", 0o755);
    let unreadable = td.write("locked/secret", b"s", 0o600);
    if is_root() {
        // root reads everything: run as `daemon`, in a folder it may write (the runs
        // above left no lock file behind).
        require("setpriv");
        assert!(!dir.join(LOCK).exists());
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let o = sh(&format!(
            "setpriv --reuid=daemon --regid=daemon --clear-groups env FORGEKEEP_CONFIG=/dev/null {BIN} backup {} -r {r} -o {}/ --keep-last 1",
            unreadable.display(),
            dir.display()
        ));
        expect_code(&o, 1);
        assert!(stderr(&o).contains("cannot be read"), "{}", stderr(&o));
    } else {
        fs::set_permissions(
            &unreadable,
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        let o = run_backup(&unreadable, &r, &slash(&dir), &["--keep-last", "1"]);
        expect_code(&o, 1);
    }
    assert_eq!(names_in(&dir), before, "nothing written, nothing pruned");

    // A dry run writes nothing and so prunes nothing.
    let src = private_src(&td, "src");
    let o = run_backup(&src, &r, &slash(&dir), &["--keep-last", "1", "--dry-run"]);
    expect_code(&o, 0);
    assert_eq!(names_in(&dir), before);
}

#[test]
fn keep_rules_with_the_archive_on_stdout_are_a_usage_error() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let o = run_backup(&src, &r, "-", &["--keep-daily", "1"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("--keep-* needs an output folder"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "no archive bytes on stdout");
}

// --- verify --latest ----------------------------------------------------------------------

/// `verify --latest DIR -i KEY EXTRA...`
fn verify_latest(dir: &Path, key: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "verify",
        "--latest",
        dir.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ];
    args.extend(extra);
    fk(&args)
}

#[test]
fn verify_latest_checks_the_newest_archive_by_its_name_and_prints_its_age() {
    let td = TestDir::new();
    let (key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    let older = dir.join(archive_name("git", "20250101T030000Z"));
    let newer = dir.join(archive_name("git", "20250102T030000Z"));
    backup(&[&src], &r, &older, &[]);
    backup(&[&src], &r, &newer, &[]);
    // The older one is damaged: verifying it would fail.
    fs::write(&older, b"not an archive").unwrap();
    fs::write(dir.join("notes.txt"), b"x").unwrap();

    let o = verify_latest(&dir, &key, &[]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(text.contains(&format!("{}: OK", newer.display())), "{text}");
    let age_line = text
        .lines()
        .find(|l| l.starts_with("newest archive is "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(age_line.ends_with("s old"), "to the second: {age_line}");

    let o = verify_latest(&dir, &key, &["--json"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    let v = json_of(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["archive"], newer.to_str().unwrap());
    let age = v["age_seconds"].as_i64().expect("age_seconds");
    assert!((0..600).contains(&age), "{v}");
    assert!(v.get("max_age_seconds").is_none(), "{v}");

    let o = verify_latest(&dir, &key, &["--max-age", "1h", "--json"]);
    expect_code(&o, 0);
    assert_eq!(json_of(&o)["max_age_seconds"], 3600);

    // The newest is the damaged one now: verify fails on it, never falls back to an older.
    fs::copy(&older, dir.join(archive_name("git", "20250103T030000Z"))).unwrap();
    let o = verify_latest(&dir, &key, &[]);
    expect_code(&o, 4);
    assert!(stderr(&o).contains("20250103T030000Z"), "{}", stderr(&o));
}

#[test]
fn verify_latest_past_max_age_exits_1_with_one_json_object() {
    let td = TestDir::new();
    let (key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    backup(&[&src], &r, Path::new(&slash(&dir)), &[]);
    let archive = only_archive(&dir);
    // The manifest's time has whole seconds: after 1.1 s the archive is >= 1 s old, older
    // than --max-age 0s. (A wait, not a timing assertion.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = verify_latest(&dir, &key, &["--max-age", "0s", "--json"]);
    expect_code(&o, 1);
    assert_eq!(stdout(&o).lines().count(), 1, "one object: {}", stdout(&o));
    let v = json_of(&o);
    assert_eq!(v["command"], "verify");
    assert_eq!(v["ok"], false);
    assert_eq!(v["stale"], true);
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["archive"], archive.to_str().unwrap());
    assert!(v["age_seconds"].as_i64().unwrap() >= 1, "{v}");
    assert_eq!(v["max_age_seconds"], 0);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("more than --max-age 0s"),
        "{v}"
    );
    assert!(
        v["hint"].as_str().unwrap().contains("backups have stopped"),
        "{v}"
    );
    let err = stderr(&o);
    assert!(
        err.contains("forgekeep: error: the newest archive") && err.contains("more than --max-age"),
        "{err}"
    );
    // Regression: the age was rounded down to minutes ("is 1m old, more than --max-age
    // 1m"); it is the real age, to the second, the same number as age_seconds.
    let age = v["age_seconds"].as_i64().unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains(&format!("is {age}s old, more than --max-age 0s")),
        "{v}"
    );
    // The same without --json: exit 1, the error on stderr.
    let o = verify_latest(&dir, &key, &["--max-age", "0s"]);
    expect_code(&o, 1);
    assert!(
        stderr(&o).contains("more than --max-age 0s"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_latest_of_a_folder_without_archives_is_a_clear_error() {
    let td = TestDir::new();
    let (key, _r) = td.age_key("key.txt");
    let dir = td.mkdir("backups", 0o700);
    fs::write(dir.join("notes.txt"), b"x").unwrap();
    fs::write(
        dir.join(format!("{}.bak", archive_name("git", "20250101T030000Z"))),
        b"",
    )
    .unwrap();
    let o = verify_latest(&dir, &key, &[]);
    expect_code(&o, 1);
    assert!(
        stderr(&o).contains(&format!("no forgekeep archive in {}", dir.display())),
        "{}",
        stderr(&o)
    );
    let o = verify_latest(&dir, &key, &["--json", "--max-age", "1d"]);
    expect_code(&o, 1);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    let v = json_of(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 1);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no forgekeep archive"),
        "{v}"
    );
    // A folder that does not exist names it.
    let o = verify_latest(&td.join("missing"), &key, &[]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
}

// --- --quiet ------------------------------------------------------------------------------

#[test]
fn quiet_prints_nothing_for_a_clean_run_and_only_the_findings_otherwise() {
    let td = TestDir::new();
    let (key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    // Old archives to prune: pruning says nothing under -q either.
    for s in OLD {
        fs::write(dir.join(archive_name(&host(), s)), b"").unwrap();
    }
    let o = run_backup(&src, &r, &slash(&dir), &["-q", "--keep-last", "1"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "", "stdout");
    assert_eq!(stderr(&o), "", "stderr");
    only_archive(&dir);

    // The cron verify job: silent when fine.
    let o = verify_latest(&dir, &key, &["-q", "--max-age", "1d"]);
    expect_code(&o, 0);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));

    // A key readable by everyone: only its finding, on stderr, and exit 3.
    let open = td.write("src/open.key", SECRET_SETTING, 0o644);
    let o = run_backup(&src, &r, dir.join("second.age").to_str().unwrap(), &["-q"]);
    expect_code(&o, 3);
    assert_eq!(stdout(&o), "", "stdout");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l.starts_with("forgekeep: warning ["),
            "only findings: {err}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("[world-readable]") && l.contains(open.to_str().unwrap())),
        "{err}"
    );
}

#[test]
fn backup_prunes_only_its_own_hosts_archives() {
    // Regression: a backup's --keep-last 1 cut another host's archives in a shared folder.
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    let others: Vec<String> = ["20261120T030000Z", "20261121T030000Z", "20261122T030000Z"]
        .iter()
        .map(|s| archive_name("otherhost", s))
        .collect();
    for n in &others {
        fs::write(dir.join(n), b"").unwrap();
    }
    let mine = archive_name(&host(), "20260101T030000Z");
    fs::write(dir.join(&mine), b"").unwrap();
    let o = run_backup(&src, &r, &slash(&dir), &["--keep-last", "1", "--json"]);
    expect_code(&o, 0);
    let names = names_in(&dir);
    for n in &others {
        assert!(names.contains(n), "{n} was deleted: {names:?}");
    }
    assert!(
        !names.contains(&mine),
        "this host's old archive is pruned: {names:?}"
    );
    assert_eq!(json_of(&o)["prune"]["deleted"], serde_json::json!([mine]));

    // prune --host does the same by hand; without it every host is pruned.
    let o = fk(&[
        "prune",
        dir.to_str().unwrap(),
        "--keep-last",
        "1",
        "--host",
        "otherhost",
        "--dry-run",
        "--json",
    ]);
    expect_code(&o, 0);
    assert_eq!(json_of(&o)["to_delete"].as_array().unwrap().len(), 2);
}

#[test]
fn config_retention_applies_to_the_config_folder_only() {
    // Regression: an ad-hoc `backup -o other/` on a configured host pruned that folder.
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let configured = td.mkdir("backups", 0o700);
    let adhoc = td.mkdir("before-upgrade", 0o700);
    let old = archive_name(&host(), "20250101T030000Z");
    fs::write(adhoc.join(&old), b"").unwrap();
    fs::write(configured.join(&old), b"").unwrap();
    let config = job_config(&td, &src, &r, &configured, "[retention]\nkeep-last = 1\n");
    let c = config.to_str().unwrap();
    // The configured job sent to another folder: that folder is not pruned.
    let o = fk(&["backup", "--config", c, "-o", &slash(&adhoc)]);
    expect_code(&o, 0);
    assert!(
        adhoc.join(&old).exists(),
        "the ad-hoc folder is not pruned by the file's rules"
    );
    // Ad-hoc sources into the configured folder: not the configured job, not pruned.
    let o = run_backup(&src, &r, &slash(&configured), &["--config", c]);
    expect_code(&o, 0);
    assert!(configured.join(&old).exists(), "an ad-hoc run never prunes");
    let o = fk(&["backup", "--config", c]);
    expect_code(&o, 0);
    assert!(!configured.join(&old).exists(), "the configured job does");
}

#[test]
fn an_adhoc_backup_on_a_configured_host_needs_its_own_output_regression_pruned_nightly() {
    // Regression (issue 13): `backup /etc/gitea -r age1...` without -o on a configured
    // host wrote into the configured folder, pruned it by the file's [retention], and
    // became the newest archive, for a key the verify job does not hold.
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let (_other, other_r) = td.age_key("other.txt");
    let src = private_src(&td, "src");
    let dir = td.mkdir("backups", 0o700);
    let nightly = archive_name(&host(), "20250101T030000Z");
    fs::write(dir.join(&nightly), b"a good nightly archive").unwrap();
    let config = job_config(&td, &src, &r, &dir, "[retention]\nkeep-last = 1\n");
    let c = config.to_str().unwrap();
    let adhoc = private_src(&td, "adhoc");
    for (args, what) in [
        (vec!["backup", adhoc.to_str().unwrap()], "sources"),
        (vec!["backup", "-r", &other_r], "recipients"),
        (
            vec![
                "backup",
                adhoc.to_str().unwrap(),
                "-r",
                &other_r,
                "--dry-run",
            ],
            "sources and recipients",
        ),
    ] {
        let o = fk_cmd(&args).env("FORGEKEEP_CONFIG", c).output().unwrap();
        expect_code(&o, 2);
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("names its own {what} on the command line"))
                && err.contains("-o")
                && err.contains("(hint: "),
            "{err}"
        );
        assert_eq!(
            names_in(&dir),
            vec![nightly.clone()],
            "nothing written or pruned"
        );
    }
    // With its own -o it runs, and the configured folder is left alone.
    let elsewhere = td.mkdir("adhoc-out", 0o700);
    let o = fk_cmd(&["backup", adhoc.to_str().unwrap(), "-o", &slash(&elsewhere)])
        .env("FORGEKEEP_CONFIG", c)
        .output()
        .unwrap();
    expect_code(&o, 0);
    only_archive(&elsewhere);
    assert_eq!(names_in(&dir), vec![nightly.clone()]);
}

#[test]
fn backup_dry_run_says_where_the_archive_would_go_and_what_retention_would_delete() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let dir = folder_with_old_archives(&td);
    let before = names_in(&dir);
    let config = job_config(&td, &src, &r, &dir, "[retention]\nkeep-last = 2\n");
    let o = fk(&["backup", "--config", config.to_str().unwrap(), "--dry-run"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    let path_prefix = format!("{}/forgekeep-{}-", dir.display(), host());
    assert!(
        text.contains(&format!("would write the archive to {path_prefix}")),
        "{text}"
    );
    for s in &OLD[..4] {
        assert!(
            text.contains(&format!("delete {}", archive_name(&host(), s))),
            "{text}"
        );
    }
    assert!(
        text.contains(&format!("keep   {}", archive_name(&host(), OLD[4]))),
        "{text}"
    );
    assert!(text.contains("dry run: would delete 4 of 6"), "{text}");
    assert_eq!(names_in(&dir), before, "a dry run deletes nothing");

    let o = fk(&[
        "backup",
        "--config",
        config.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    expect_code(&o, 0);
    let v = json_of(&o);
    assert!(
        v["archive"].as_str().unwrap().starts_with(&path_prefix),
        "{v}"
    );
    assert_eq!(v["prune"]["to_delete"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["prune"]["dry_run"], true);
    assert_eq!(names_in(&dir), before);
}

#[test]
fn prune_of_another_folder_does_not_take_the_configs_retention() {
    // Regression: `prune DIR --dry-run` applied the file's [retention] to any folder,
    // while --help said a rule is required.
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let src = private_src(&td, "src");
    let configured = folder_with_old_archives(&td);
    let other = td.mkdir("other", 0o700);
    for s in OLD {
        fs::write(other.join(archive_name(&host(), s)), b"").unwrap();
    }
    let config = job_config(&td, &src, &r, &configured, "[retention]\nkeep-last = 1\n");
    let c = config.to_str().unwrap();
    let o = fk(&["prune", other.to_str().unwrap(), "--dry-run", "--config", c]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("no retention rule") && err.contains("applies only to its own output folder"),
        "{err}"
    );
    // Its own folder (named, or by default) takes the file's rules.
    for args in [
        vec![
            "prune",
            configured.to_str().unwrap(),
            "--dry-run",
            "--config",
            c,
        ],
        vec!["prune", "--dry-run", "--config", c],
    ] {
        let o = fk(&args);
        expect_code(&o, 0);
        assert!(stdout(&o).contains("would delete 4 of 6"), "{}", stdout(&o));
    }
    // Another folder with its own rule: fine.
    let o = fk(&[
        "prune",
        other.to_str().unwrap(),
        "--keep-last",
        "1",
        "--dry-run",
        "--config",
        c,
    ]);
    expect_code(&o, 0);
}

#[test]
fn a_backup_missing_a_secret_does_not_prune_the_archives_that_have_it() {
    let td = TestDir::new();
    let (_key, r) = td.age_key("key.txt");
    let dir = td.mkdir("backups", 0o700);
    let old = archive_name(&host(), "20250101T030000Z");
    fs::write(dir.join(&old), b"").unwrap();
    // A Gitea whose JWT key is gone (the forge will make a new one): secret-missing.
    let work = td.mkdir("gitea", 0o700);
    let ini = td.write(
        "gitea/app.ini",
        format!(
            "WORK_PATH = {w}\n[server]\nAPP_DATA_PATH = {w}/data\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = a-long-enough-secret\n",
            w = work.display()
        )
        .as_bytes(),
        0o600,
    );
    let o = fk(&[
        "backup",
        "-p",
        &format!("gitea={}", ini.display()),
        "-r",
        &r,
        "-o",
        &slash(&dir),
        "--keep-last",
        "1",
        "--json",
    ]);
    expect_code(&o, 3);
    let v = json_of(&o);
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "secret-missing"),
        "{v}"
    );
    assert!(v["prune_skipped"].is_string(), "{v}");
    assert!(v.get("prune").is_none(), "{v}");
    assert!(
        dir.join(&old).exists(),
        "the archive that still has the key is kept"
    );
    assert!(stderr(&o).contains("not pruning"), "{}", stderr(&o));
}
