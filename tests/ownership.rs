//! Ownership (as root): by name by default, numeric for `--numeric-ids` sources,
//! explicit maps, the fallback to the number for unknown names, set-id bits dropped.

use crate::util::*;
use std::fs;
use std::os::unix::fs::MetadataExt;

fn uid_of(p: &std::path::Path) -> u32 {
    fs::symlink_metadata(p).unwrap().uid()
}

fn gid_of(p: &std::path::Path) -> u32 {
    fs::symlink_metadata(p).unwrap().gid()
}

fn daemon() -> (u32, u32) {
    let u = nix::unistd::User::from_name("daemon")
        .unwrap()
        .expect("a daemon user");
    (u.uid.as_raw(), u.gid.as_raw())
}

#[test]
fn map_user_and_group_to_an_existing_system_user() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let dest = td.join("nh");
    let o = restore(
        &a,
        &k,
        &[
            "--root",
            dest.to_str().unwrap(),
            "--map-user",
            "root=daemon",
            "--map-group",
            "0=daemon",
            "--dry-run",
        ],
    );
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("mapped"),
        "the plan shows mappings: {}",
        stdout(&o)
    );
    let o = restore(
        &a,
        &k,
        &[
            "--root",
            dest.to_str().unwrap(),
            "--map-user",
            "root=daemon",
            "--map-group",
            "0=daemon",
        ],
    );
    expect_code(&o, 0);
    let pem = dest
        .join(tree.strip_prefix("/").unwrap())
        .join("jwt/private.pem");
    assert_eq!((uid_of(&pem), gid_of(&pem)), daemon());
    assert_eq!(mode_of(&pem), 0o600);
}

#[test]
fn names_win_over_numbers_and_unknown_names_fall_back_to_numbers() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (d_uid, d_gid) = daemon();
    let unknown = 4242u32; // no such user: falls back to the number
    nix::unistd::chown(
        &tree.join("jwt/private.pem"),
        Some(nix::unistd::Uid::from_raw(d_uid)),
        Some(nix::unistd::Gid::from_raw(d_gid)),
    )
    .unwrap();
    nix::unistd::chown(
        &tree.join("conf/app.ini"),
        Some(nix::unistd::Uid::from_raw(unknown)),
        Some(nix::unistd::Gid::from_raw(unknown)),
    )
    .unwrap();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let dest = td.join("nh");
    let o = restore(&a, &k, &["--root", dest.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("by name") && stdout(&o).contains("by number"),
        "{}",
        stdout(&o)
    );
    let base = dest.join(tree.strip_prefix("/").unwrap());
    assert_eq!(
        (
            uid_of(&base.join("jwt/private.pem")),
            gid_of(&base.join("jwt/private.pem"))
        ),
        (d_uid, d_gid)
    );
    assert_eq!(uid_of(&base.join("conf/app.ini")), unknown);
}

#[test]
fn numeric_source_restores_by_number() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (d_uid, _) = daemon();
    nix::unistd::chown(
        &tree.join("jwt/private.pem"),
        Some(nix::unistd::Uid::from_raw(d_uid)),
        None,
    )
    .unwrap();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &["--numeric-ids"]);
    let dest = td.join("nh");
    // Even with a map of daemon's name, numeric sources keep numbers unless mapped by number.
    let o = restore(&a, &k, &["--root", dest.to_str().unwrap(), "--dry-run"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("by number"), "{}", stdout(&o));
}

#[test]
fn setuid_bits_are_dropped_with_a_warning() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    fs::set_permissions(
        tree.join("conf/app.ini"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4700),
    )
    .unwrap();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let dest = td.join("nh");
    let o = restore(&a, &k, &["--root", dest.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(stderr(&o).contains("set-uid"), "{}", stderr(&o));
    let ini = dest
        .join(tree.strip_prefix("/").unwrap())
        .join("conf/app.ini");
    assert_eq!(mode_of(&ini), 0o700);
}

#[test]
fn non_root_restore_that_needs_chown_is_refused_but_to_works() {
    if !is_root() {
        eprintln!("skipped: needs root to switch to another user");
        return;
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    // daemon may read the archive and key, and write in `work`.
    let work = td.mkdir("work", 0o777);
    for f in [&a, &k] {
        fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    let as_daemon = |args: &str| {
        sh(&format!(
            "setpriv --reuid=daemon --regid=daemon --clear-groups {BIN} {args}"
        ))
    };
    let o = as_daemon(&format!(
        "restore --allow-untrusted {} -i {} --root {}/nh",
        a.display(),
        k.display(),
        work.display()
    ));
    expect_code(&o, 1);
    assert!(stderr(&o).contains("only root"), "{}", stderr(&o));
    let o = as_daemon(&format!(
        "restore {} -i {} --to {}/copy",
        a.display(),
        k.display(),
        work.display()
    ));
    expect_code(&o, 0);
}

#[test]
fn owner_mismatch_is_a_warning_only_when_the_folder_owner_can_replace_the_file() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (d_uid, d_gid) = daemon();
    let (uid, gid) = (
        nix::unistd::Uid::from_raw(d_uid),
        nix::unistd::Gid::from_raw(d_gid),
    );
    // A daemon-owned file in root's folder: worth knowing, not a warning.
    nix::unistd::chown(&tree.join("conf/app.ini"), Some(uid), Some(gid)).unwrap();
    let (_k, r) = td.age_key("k.txt");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "--dry-run",
        "--json",
    ]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &v["findings"].as_array().unwrap()[0];
    assert_eq!(
        (f["code"].as_str(), f["severity"].as_str()),
        (Some("owner-mismatch"), Some("info"))
    );
    // A root-owned key in daemon's folder: daemon can replace it.
    nix::unistd::chown(&tree.join("jwt"), Some(uid), Some(gid)).unwrap();
    let o = fk(&["backup", tree.to_str().unwrap(), "-r", &r, "--dry-run"]);
    expect_code(&o, 3);
    assert!(
        stderr(&o).contains("warning [owner-mismatch]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unreadable_secret_is_an_error_finding_and_no_archive() {
    if !is_root() {
        eprintln!("skipped: needs root to switch to another user");
        return;
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (_k, r) = td.age_key("k.txt");
    // daemon may walk the tree and write the output, but not read the root-owned key.
    let out = td.mkdir("out", 0o777);
    for d in ["srv", "srv/gitea", "srv/gitea/jwt", "srv/gitea/conf"] {
        fs::set_permissions(
            td.join(d),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    let o = sh(&format!(
        "setpriv --reuid=daemon --regid=daemon --clear-groups {BIN} backup {} -r {r} -o {}/",
        tree.display(),
        out.display()
    ));
    expect_code(&o, 1);
    assert!(stderr(&o).contains("[unreadable]"), "{}", stderr(&o));
    assert_eq!(names_in(&out).len(), 0, "no archive, no temp file");
}

#[test]
fn root_without_cap_chown_is_told_the_capability_and_to_regression_run_as_root() {
    // Regression (issue 13): root in a container or unit without CAP_CHOWN was told to
    // run as root.
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    require("setpriv");
    let td = TestDir::new();
    let src = td.mkdir("src", 0o700);
    let f = td.write("src/secret", b"s3cret\n", 0o600);
    let (uid, gid) = daemon();
    std::os::unix::fs::chown(&f, Some(uid), Some(gid)).unwrap();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&src], &r, &a, &[]);
    let without_chown = |extra: &str| {
        sh(&format!(
            "setpriv --bounding-set -chown env FORGEKEEP_CONFIG=/dev/null {BIN} restore --allow-untrusted {} -i {} {extra}",
            a.display(),
            k.display()
        ))
    };
    let dest = td.join("newroot");
    for extra in [
        format!("--root {}", dest.display()),
        format!("--root {} --dry-run", dest.display()),
    ] {
        let o = without_chown(&extra);
        expect_code(&o, 1);
        let err = stderr(&o);
        assert!(err.contains("lacks CAP_CHOWN"), "{err}");
        assert!(err.contains("--to DIR"), "{err}");
        assert!(!err.contains("run as root"), "{err}");
        assert!(!dest.exists(), "nothing changed");
    }
    // --to needs no capability: plain copies owned by the caller.
    let plain = td.join("plain");
    let o = without_chown(&format!("--to {}", plain.display()));
    expect_code(&o, 0);
    let copy = plain.join(f.strip_prefix("/").unwrap());
    assert_eq!(fs::read(&copy).unwrap(), b"s3cret\n");
    assert_eq!(uid_of(&copy), 0);
}
