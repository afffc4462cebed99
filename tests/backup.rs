//! Backup: collection, findings and their exit codes, output naming and the atomic,
//! never-overwriting, 0600 archive file.

use crate::util::*;
use std::fs;
use std::os::unix::fs::symlink;

#[test]
fn output_dir_gets_a_generated_0600_name_and_nothing_else() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (_k, r) = td.age_key("k.txt");
    let out = td.mkdir("out", 0o755);
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let a = only_archive(&out);
    let name = a.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with("forgekeep-") && name.ends_with(".tar.zst.age"),
        "{name}"
    );
    let stamp = name
        .trim_end_matches(".tar.zst.age")
        .rsplit('-')
        .next()
        .unwrap();
    assert_eq!(stamp.len(), 16, "YYYYmmddTHHMMSSZ: {stamp}");
    assert_eq!(mode_of(&a), 0o600);
    assert_eq!(names_in(&out).len(), 1, "the archive and nothing else");
}

#[test]
fn existing_archive_is_never_replaced_without_force() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    fs::write(&a, "precious").unwrap();
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        a.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert_eq!(fs::read_to_string(&a).unwrap(), "precious");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        a.to_str().unwrap(),
        "--force",
    ]);
    expect_code(&o, 0);
    expect_code(
        &fk(&["verify", a.to_str().unwrap(), "-i", k.to_str().unwrap()]),
        0,
    );
}

#[test]
fn insecure_permissions_give_findings_and_exit_3_but_strict_writes_nothing() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    fs::set_permissions(
        tree.join("jwt/private.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let (_k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        a.to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 3);
    assert!(a.exists());
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("one JSON object on stdout");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"world-readable"), "{codes:?}");
    assert!(v["findings"][0]["fix"].as_str().unwrap().contains("chmod"));
    let b = td.join("b.age");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        b.to_str().unwrap(),
        "--strict",
    ]);
    expect_code(&o, 1);
    assert!(!b.exists());
}

#[test]
fn dry_run_lists_and_writes_nothing() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (_k, r) = td.age_key("k.txt");
    let out = td.mkdir("out", 0o700);
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("private.pem"));
    assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
}

#[test]
fn fifo_is_skipped_with_a_finding_and_never_blocks() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    run_ok(std::process::Command::new("mkfifo").arg(tree.join("conf/pipe")));
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        a.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    assert!(stderr(&o).contains("special-skipped"), "{}", stderr(&o));
    let o = fk(&["list", a.to_str().unwrap(), "-i", k.to_str().unwrap()]);
    assert!(!stdout(&o).contains("pipe"));
}

#[test]
fn symlinks_are_stored_as_links_and_escapes_reported() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    symlink("jwt/private.pem", tree.join("current.pem")).unwrap();
    symlink("/etc/hostname", tree.join("outside")).unwrap();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        a.to_str().unwrap(),
    ]);
    expect_code(&o, 3);
    assert!(stderr(&o).contains("symlink-escapes"));
    let o = fk(&[
        "list",
        a.to_str().unwrap(),
        "-i",
        k.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let link = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("/current.pem"))
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "jwt/private.pem");
}

#[test]
fn exclude_leaves_out_matching_paths() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    td.write("srv/gitea/log/gitea.log", b"noise", 0o600);
    let (_k, r) = td.age_key("k.txt");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "--exclude",
        "*.log",
        "--dry-run",
    ]);
    expect_code(&o, 0);
    assert!(!stdout(&o).contains("gitea.log"));
    assert!(stdout(&o).contains("app.ini"));
}

#[test]
fn missing_source_is_a_runtime_error_and_no_archive() {
    let td = TestDir::new();
    let (_k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    let o = fk(&[
        "backup",
        td.join("nope").to_str().unwrap(),
        "-r",
        &r,
        "-o",
        a.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert!(!a.exists());
}

#[test]
fn stdout_output_and_armor() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.txt");
    let o = sh(&format!(
        "{BIN} backup {} -r {r} -o - --armor > {}",
        tree.display(),
        a.display()
    ));
    expect_code(&o, 0);
    assert!(fs::read_to_string(&a)
        .unwrap()
        .starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    expect_code(
        &fk(&["verify", a.to_str().unwrap(), "-i", k.to_str().unwrap()]),
        0,
    );
}

#[test]
fn disk_full_leaves_no_partial_archive_and_the_earlier_one_intact() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let td = TestDir::new();
    let mnt = td.mkdir("small", 0o755);
    run_ok(std::process::Command::new("mount").args([
        "-t",
        "tmpfs",
        "-o",
        "size=256k",
        "tmpfs",
        mnt.to_str().unwrap(),
    ]));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let (k, r) = td.age_key("k.txt");
    let small = td.gitea_tree();
    let earlier = mnt.join("earlier.tar.zst.age");
    backup(&[&small], &r, &earlier, &[]);
    let before = fs::read(&earlier).unwrap();
    // Incompressible data larger than the file system.
    let big = td.join("big");
    fs::create_dir(&big).unwrap();
    run_ok(
        std::process::Command::new("head")
            .args(["-c", "1000000", "/dev/urandom"])
            .stdout(fs::File::create(big.join("blob")).unwrap()),
    );
    let o = fk(&[
        "backup",
        big.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        mnt.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("space"), "{}", stderr(&o));
    let names = names_in(&mnt);
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("earlier.tar.zst.age")],
        "partial files left"
    );
    assert_eq!(fs::read(&earlier).unwrap(), before);
    expect_code(
        &fk(&[
            "verify",
            earlier.to_str().unwrap(),
            "-i",
            k.to_str().unwrap(),
        ]),
        0,
    );
}

#[test]
fn closed_pipe_while_streaming_an_archive_is_a_failure_regression_silent_success() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let big = td.join("srv/gitea/blob");
    run_ok(
        std::process::Command::new("head")
            .args(["-c", "4000000", "/dev/urandom"])
            .stdout(fs::File::create(&big).unwrap()),
    );
    let (_k, r) = td.age_key("k.txt");
    let o = sh(&format!(
        "set -o pipefail; {BIN} backup {} -r {r} -o - | head -c 10 >/dev/null",
        tree.display()
    ));
    assert_ne!(
        code(&o),
        0,
        "a backup whose output pipe closed must not report success"
    );
}

#[test]
fn symlinked_source_with_a_trailing_slash_is_stored_as_the_link() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let link = td.join("current");
    symlink(&tree, &link).unwrap();
    let (_k, r) = td.age_key("k.txt");
    let given = format!("{}/", link.display());
    let o = fk(&["backup", &given, "-r", &r, "--dry-run"]);
    expect_code(&o, 3);
    assert!(stderr(&o).contains("source-is-symlink"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("private.pem"), "{}", stdout(&o));
}

#[test]
fn many_findings_of_one_kind_are_summed_up_unless_verbose() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    for i in 0..15 {
        td.write(&format!("srv/gitea/open/f{i}"), SECRET_SETTING, 0o644);
    }
    let (_k, r) = td.age_key("k.txt");
    let o = fk(&["backup", tree.to_str().unwrap(), "-r", &r, "--dry-run"]);
    expect_code(&o, 3);
    let err = stderr(&o);
    assert_eq!(err.matches("warning [world-readable]").count(), 10, "{err}");
    assert!(err.contains("5 more [world-readable]"), "{err}");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "--dry-run",
        "-v",
    ]);
    assert_eq!(stderr(&o).matches("warning [world-readable]").count(), 15);
}

/// Archive names of this host for `times`, as `backup -o DIR/` makes them.
fn dated_names(times: &[jiff::Timestamp]) -> Vec<String> {
    let host = forgekeep::commands::backup::host_for_filename();
    times
        .iter()
        .map(|t| forgekeep::retention::archive_name(&host, *t))
        .collect()
}

#[test]
fn two_backups_in_the_same_second_get_distinct_sortable_names_regression_collision() {
    // Regression (issue 13): a second backup into the folder in the same second failed
    // ("already exists"), and with --force replaced the first, a different archive.
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let out = td.mkdir("out", 0o700);
    // The names of this second and the next are taken (as by runs that just finished):
    // the backup waits for a free second rather than fail or replace one.
    let now = jiff::Timestamp::now();
    let taken = dated_names(&[now, now + jiff::SignedDuration::from_secs(1)]);
    for n in &taken {
        fs::write(out.join(n), n.as_bytes()).unwrap();
    }
    let slash = format!("{}/", out.display());
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["backup", tree.to_str().unwrap(), "-r", &r, "-o", &slash];
        args.extend(extra);
        expect_code(&fk(&args), 0);
    }
    for n in &taken {
        assert_eq!(
            fs::read_to_string(out.join(n)).unwrap(),
            *n,
            "never replaced"
        );
    }
    let mut names: Vec<String> = names_in(&out)
        .into_iter()
        .map(|n| n.into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    // Sortable: by name is by time, and every name is one prune and verify --latest read.
    let mut times: Vec<jiff::Timestamp> = names
        .iter()
        .map(|n| forgekeep::retention::parse_name(n).expect("a dated name").1)
        .collect();
    let by_name = times.clone();
    times.sort();
    times.dedup();
    assert_eq!(times, by_name, "unique and in time order: {names:?}");
    for n in &names[2..] {
        expect_code(
            &fk(&[
                "verify",
                out.join(n).to_str().unwrap(),
                "-i",
                k.to_str().unwrap(),
            ]),
            0,
        );
    }
}

#[test]
fn force_never_replaces_a_dated_archive() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (_k, r) = td.age_key("k.txt");
    let out = td.mkdir("out", 0o700);
    let name = &dated_names(&["2026-11-26T03:17:00Z".parse().unwrap()])[0];
    let dated = out.join(name);
    fs::write(&dated, "an earlier archive").unwrap();
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "-o",
        dated.to_str().unwrap(),
        "--force",
    ]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("--force never replaces"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read_to_string(&dated).unwrap(), "an earlier archive");
}
