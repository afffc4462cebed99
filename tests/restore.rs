//! Restore: the all-or-nothing path, plans, conflicts, --force with its undo archive,
//! subsets, relocation and plain copies.

use crate::util::*;
use std::fs;

/// Back up the Gitea tree of `td` into `td/out/a.tar.zst.age`.
fn setup() -> (
    TestDir,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (key, r) = td.age_key("key.txt");
    td.mkdir("out", 0o700);
    let a = td.join("out/a.tar.zst.age");
    backup(&[&tree], &r, &a, &[]);
    (td, tree, key, a)
}

#[test]
fn lost_key_comes_back_byte_for_byte_with_its_mode() {
    let (td, tree, key, a) = setup();
    let pem = tree.join("jwt/private.pem");
    let orig = fs::read(&pem).unwrap();
    fs::remove_dir_all(tree.join("jwt")).unwrap();
    let o = restore(&a, &key, &[]);
    expect_code(&o, 0);
    assert_eq!(fs::read(&pem).unwrap(), orig);
    assert_eq!(mode_of(&pem), 0o600);
    assert_eq!(mode_of(&tree.join("jwt")), 0o700);
    // Nothing left behind.
    let leftovers = sh(&format!(
        "find {} -name '.forgekeep.tmp.*'",
        td.path().display()
    ));
    assert_eq!(stdout(&leftovers), "");
}

#[test]
fn identical_files_are_left_alone() {
    let (_td, tree, key, a) = setup();
    let pem = tree.join("jwt/private.pem");
    let before = fs::metadata(&pem).unwrap();
    let o = restore(&a, &key, &[]);
    expect_code(&o, 0);
    use std::os::unix::fs::MetadataExt;
    let after = fs::metadata(&pem).unwrap();
    assert_eq!(
        before.ino(),
        after.ino(),
        "an identical file must not be replaced"
    );
    assert!(stdout(&o).contains("unchanged"), "{}", stdout(&o));
}

#[test]
fn dry_run_changes_nothing_and_shows_the_plan() {
    let (td, tree, key, a) = setup();
    fs::remove_file(tree.join("jwt/private.pem")).unwrap();
    fs::write(tree.join("conf/app.ini"), "changed").unwrap();
    let snapshot = sh(&format!(
        "cd {} && find . -printf '%p %m %s %T@\\n' | sort",
        td.path().display()
    ));
    let o = restore(&a, &key, &["--dry-run", "--force"]);
    expect_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("create") && out.contains("private.pem"),
        "{out}"
    );
    assert!(out.contains("replace") && out.contains("app.ini"), "{out}");
    let again = sh(&format!(
        "cd {} && find . -printf '%p %m %s %T@\\n' | sort",
        td.path().display()
    ));
    assert_eq!(
        stdout(&snapshot),
        stdout(&again),
        "dry run changed the tree"
    );
}

#[test]
fn differing_file_is_a_conflict_and_nothing_changes_regression_hint_force_all() {
    let (_td, tree, key, a) = setup();
    let pem = tree.join("jwt/private.pem");
    fs::write(&pem, "rotated key").unwrap();
    fs::remove_file(tree.join("conf/app.ini")).unwrap();
    let o = restore(&a, &key, &[]);
    expect_code(&o, 7);
    assert_eq!(fs::read_to_string(&pem).unwrap(), "rotated key");
    assert!(
        !tree.join("conf/app.ini").exists(),
        "a refused restore must not create the other files either"
    );
    // The hint names the way to replace only some (the disaster-recovery recipe's), not
    // only "--force", which would also roll back what changed on purpose since.
    let err = stderr(&o);
    assert!(
        err.contains("--only PATH --force") && err.contains("forgekeep diff"),
        "{err}"
    );
}

#[test]
fn force_keeps_the_replaced_version_in_an_undo_archive_that_restores() {
    let (td, tree, key, a) = setup();
    let pem = tree.join("jwt/private.pem");
    let orig = fs::read(&pem).unwrap();
    fs::write(&pem, "rotated key").unwrap();
    let o = restore(&a, &key, &["--force"]);
    expect_code(&o, 0);
    assert_eq!(fs::read(&pem).unwrap(), orig);
    // No plaintext copy next to the secret.
    let names: Vec<_> = fs::read_dir(tree.join("jwt"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let undo = fs::read_dir(td.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("restore-undo-")
        })
        .expect("undo archive in the archive's folder");
    assert!(
        stderr(&o).contains(undo.to_str().unwrap()),
        "the output must name the undo archive (on stderr, so even -q shows it)"
    );
    assert_eq!(mode_of(&undo), 0o600);
    // Undo the restore with the undo archive.
    let o = restore(
        &undo,
        &key,
        &["--force", "--undo-dir", td.join("out").to_str().unwrap()],
    );
    expect_code(&o, 0);
    assert_eq!(fs::read_to_string(&pem).unwrap(), "rotated key");
}

#[test]
fn only_restores_the_matching_subset() {
    let (_td, tree, key, a) = setup();
    fs::remove_dir_all(&tree).unwrap();
    let pattern = format!("{}/jwt/*", tree.display());
    let o = restore(&a, &key, &["--only", &pattern]);
    expect_code(&o, 0);
    assert!(tree.join("jwt/private.pem").exists());
    assert!(!tree.join("conf/app.ini").exists());
    let o = restore(&a, &key, &["--only", "/nothing/*"]);
    expect_code(&o, 2);
}

#[test]
fn relocate_and_root_move_entries() {
    let (td, tree, key, a) = setup();
    let newroot = td.join("newhost");
    let rule = format!("{}={}", tree.display(), "/opt/forge");
    let o = restore(
        &a,
        &key,
        &["--root", newroot.to_str().unwrap(), "--relocate", &rule],
    );
    expect_code(&o, 0);
    let moved = newroot.join("opt/forge/jwt/private.pem");
    assert_eq!(
        fs::read(&moved).unwrap(),
        fs::read(tree.join("jwt/private.pem")).unwrap()
    );
    assert_eq!(mode_of(&newroot.join("opt/forge/jwt")), 0o700);
}

#[test]
fn to_makes_plain_copies_owned_by_the_caller() {
    let (td, tree, key, a) = setup();
    let dest = td.join("inspect");
    let o = restore(&a, &key, &["--to", dest.to_str().unwrap()]);
    expect_code(&o, 0);
    let copy = dest
        .join(tree.strip_prefix("/").unwrap())
        .join("conf/app.ini");
    assert_eq!(
        fs::read(&copy).unwrap(),
        fs::read(tree.join("conf/app.ini")).unwrap()
    );
}

#[test]
fn stale_temp_files_of_a_killed_run_are_swept() {
    let (_td, tree, key, a) = setup();
    // A temp file as a killed run (a pid that cannot exist) leaves it.
    let stale = tree.join("jwt/.forgekeep.tmp.999999999.deadbeef");
    fs::write(&stale, "half a secret").unwrap();
    let o = restore(&a, &key, &[]);
    expect_code(&o, 0);
    assert!(!stale.exists(), "stale temp file was not cleaned up");
}

#[test]
fn a_stale_temp_folder_is_swept_only_when_it_is_ours() {
    if !is_root() {
        eprintln!("skipped: needs root (a folder owned by someone else)");
        return;
    }
    let (_td, tree, key, a) = setup();
    // As a killed restore leaves a new folder staged whole: ours, with what it held.
    let ours = tree.join(".forgekeep.tmp.999999999.0a");
    fs::create_dir_all(ours.join("deep")).unwrap();
    fs::write(ours.join("deep/half"), "half a secret").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ours.join("link")).unwrap();
    // The same name planted by another user: theirs to remove, not root's to empty.
    let theirs = tree.join(".forgekeep.tmp.999999999.0b");
    fs::create_dir(&theirs).unwrap();
    fs::write(theirs.join("their-file"), "theirs").unwrap();
    let daemon = nix::unistd::User::from_name("daemon").unwrap().unwrap();
    for p in [&theirs, &theirs.join("their-file")] {
        std::os::unix::fs::chown(p, Some(daemon.uid.as_raw()), None).unwrap();
    }
    let o = restore(&a, &key, &[]);
    expect_code(&o, 0);
    assert!(!ours.exists(), "the stale staged folder was not swept");
    assert!(
        fs::metadata("/etc/passwd").is_ok(),
        "a link inside was followed"
    );
    assert_eq!(fs::read(theirs.join("their-file")).unwrap(), b"theirs");
}

#[test]
fn restore_from_stdin_works() {
    let (td, tree, key, a) = setup();
    fs::remove_dir_all(tree.join("jwt")).unwrap();
    let o = sh(&format!(
        "{BIN} restore - -i {} --allow-untrusted < {}",
        key.display(),
        a.display()
    ));
    expect_code(&o, 0);
    assert!(tree.join("jwt/private.pem").exists());
    drop(td);
}

#[test]
fn destination_symlink_parent_is_refused_regression_write_through_link() {
    let (td, tree, key, a) = setup();
    let newroot = td.join("nh");
    let elsewhere = td.mkdir("elsewhere", 0o755);
    // newroot/<tree's first component> is a symlink to `elsewhere`.
    let first = tree.strip_prefix("/").unwrap().components().next().unwrap();
    fs::create_dir_all(&newroot).unwrap();
    std::os::unix::fs::symlink(&elsewhere, newroot.join(first)).unwrap();
    let o = restore(&a, &key, &["--root", newroot.to_str().unwrap()]);
    assert_ne!(code(&o), 0);
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "wrote through a symlink"
    );
}

#[test]
fn relocate_leaves_no_stray_folders_above_the_old_location() {
    let (td, tree, key, a) = setup();
    let newroot = td.join("nh");
    let rule = format!("{}=/var/lib/gitea", tree.display());
    let o = restore(
        &a,
        &key,
        &["--root", newroot.to_str().unwrap(), "--relocate", &rule],
    );
    expect_code(&o, 0);
    assert!(newroot.join("var/lib/gitea/jwt/private.pem").exists());
    let top: Vec<_> = fs::read_dir(&newroot)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        top,
        vec![std::ffi::OsString::from("var")],
        "stray folders: {top:?}"
    );
}

#[test]
fn nested_sources_in_any_order_restore_the_outer_folder_in_full() {
    for order in [["jwt", ""], ["", "jwt"]] {
        let td = TestDir::new();
        let tree = td.gitea_tree();
        let (key, r) = td.age_key("key.txt");
        let a = td.join("a.age");
        let srcs: Vec<std::path::PathBuf> = order.iter().map(|p| tree.join(p)).collect();
        backup(&[&srcs[0], &srcs[1]], &r, &a, &[]);
        fs::set_permissions(&tree, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        // A changed mode on an existing folder is a conflict; --force puts it back.
        expect_code(&restore(&a, &key, &[]), 7);
        let o = restore(&a, &key, &["--force"]);
        expect_code(&o, 0);
        assert_eq!(
            mode_of(&tree),
            0o750,
            "order {order:?}: the outer source's own mode"
        );
    }
}

#[test]
fn json_errors_are_one_object_on_stdout() {
    let (td, _tree, _key, a) = setup();
    let (wrong, _) = td.age_key("wrong.txt");
    let o = fk(&[
        "verify",
        a.to_str().unwrap(),
        "-i",
        wrong.to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 5);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 5);
    assert!(v["hint"].as_str().is_some());
}

#[test]
fn not_an_archive_or_cut_inside_the_header_is_an_integrity_failure() {
    let (td, _tree, key, a) = setup();
    let bytes = fs::read(&a).unwrap();
    for (what, content) in [
        ("empty", Vec::new()),
        ("text", b"hello world\n".to_vec()),
        ("cut in the header", bytes[..50].to_vec()),
    ] {
        let f = td.join("bad.age");
        fs::write(&f, &content).unwrap();
        let o = fk(&["verify", f.to_str().unwrap(), "-i", key.to_str().unwrap()]);
        assert_eq!(code(&o), 4, "{what}: {}", stderr(&o));
    }
}

#[test]
fn control_characters_in_names_cannot_forge_plan_lines() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    td.write(
        "srv/gitea/conf/evil\ncreate file 0600 0:0 /etc/shadow",
        b"x",
        0o600,
    );
    td.write("srv/gitea/conf/cr\r", b"y", 0o600);
    let (key, r) = td.age_key("key.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let o = restore(&a, &key, &["--dry-run"]);
    expect_code(&o, 0);
    assert!(
        !stdout(&o).lines().any(|l| l.starts_with("create file")),
        "{}",
        stdout(&o)
    );
    expect_code(
        &fk(&["verify", a.to_str().unwrap(), "-i", key.to_str().unwrap()]),
        0,
    );
}

#[test]
fn read_only_folders_still_restore_regression_locked_out_of_staging() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    fs::set_permissions(
        tree.join("conf"),
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    let (key, r) = td.age_key("key.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    for how in ["--to", "--root"] {
        let dest = td.join(&format!("dest{how}"));
        let o = restore(&a, &key, &[how, dest.to_str().unwrap()]);
        expect_code(&o, 0);
        let conf = dest.join(tree.strip_prefix("/").unwrap()).join("conf");
        assert_eq!(mode_of(&conf), 0o555, "{how}");
        assert!(conf.join("app.ini").exists(), "{how}");
    }
    fs::set_permissions(
        tree.join("conf"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
}

#[test]
fn early_refusal_does_not_wait_for_a_stalled_input_regression_hang() {
    // age can only release its last chunk at the end of the input, so the refusal must
    // come from data before it: a large file after the secrets.
    let td = TestDir::new();
    let tree = td.gitea_tree();
    run_ok(
        std::process::Command::new("head")
            .args(["-c", "2000000", "/dev/urandom"])
            .stdout(fs::File::create(td.join("srv/gitea/zz-blob")).unwrap()),
    );
    let (key, r) = td.age_key("key.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let newroot = td.join("nh");
    let first = tree.strip_prefix("/").unwrap().components().next().unwrap();
    fs::create_dir_all(&newroot).unwrap();
    std::os::unix::fs::symlink(td.mkdir("elsewhere", 0o755), newroot.join(first)).unwrap();
    use std::io::Write;
    let mut child = fk_cmd(&[
        "restore",
        "--allow-untrusted",
        "-",
        "-i",
        key.to_str().unwrap(),
        "--root",
        newroot.to_str().unwrap(),
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Only the first part of the archive (enough to reach the refusal), and the pipe
    // stays open: the child may refuse (and close its end) before it read even that.
    let _ = stdin.write_all(&fs::read(&a).unwrap()[..300_000]);
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(stdin);
    let status = status.expect("the refusal waited for the input to end");
    assert_eq!(status.code(), Some(1));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the refusal waited for the input to end"
    );
}

#[test]
fn endless_input_without_an_age_header_is_refused_regression_unbounded_memory() {
    let (_td, _tree, key, _a) = setup();
    let o = restore(std::path::Path::new("/dev/zero"), &key, &["--dry-run"]);
    expect_code(&o, 4);
    let o = fk(&["verify", "/dev/zero", "-i", key.to_str().unwrap()]);
    expect_code(&o, 4);
}

/// Plain copies whose mode lets nobody else in get it while staged (no second open at
/// apply); every other mode still at apply. Both kinds come out exact, over an existing
/// copy too (--force), and no temp stays behind.
#[test]
fn plain_copies_get_private_and_wider_modes_exactly() {
    let td = TestDir::new();
    let modes = [0o600, 0o400, 0o700, 0o500, 0o640, 0o644, 0o755, 0o604];
    for m in modes {
        td.write(
            &format!("data/m{m:o}"),
            format!("mode {m:o}\n").as_bytes(),
            m,
        );
    }
    let tree = td.join("data");
    let (key, r) = td.age_key("key.txt");
    let a = td.join("a.tar.zst.age");
    backup(&[&tree], &r, &a, &[]);
    let to = td.join("copy");
    let copied = to.join(tree.strip_prefix("/").unwrap());
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["--to", to.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = restore(&a, &key, &args);
        expect_code(&o, 0);
        for m in modes {
            let f = copied.join(format!("m{m:o}"));
            assert_eq!(mode_of(&f), m, "{}", f.display());
            assert_eq!(fs::read(&f).unwrap(), format!("mode {m:o}\n").as_bytes());
            fs::write(&f, b"changed since").unwrap(); // the --force pass replaces it
        }
    }
    let leftovers = sh(&format!("find {} -name '.forgekeep.tmp.*'", to.display()));
    assert_eq!(stdout(&leftovers), "");
}

/// A tree whose folder `new` (20 files, a nested folder with a file and a link) the
/// restore must create, `top.txt` beside it to be created too, and 3 MB of random data
/// last so that half the archive stages `new` without finishing. Returns the archive.
fn staged_whole_setup(
    td: &TestDir,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    for i in 0..20 {
        td.write(
            &format!("data/new/f{i:02}"),
            format!("file {i}\n").as_bytes(),
            0o640,
        );
    }
    td.write("data/new/deep/secret", b"deep\n", 0o600);
    std::os::unix::fs::symlink("../f00", td.join("data/new/deep/link")).unwrap();
    td.write("data/top.txt", b"top\n", 0o644);
    run_ok(
        std::process::Command::new("head")
            .args(["-c", "3000000", "/dev/urandom"])
            .stdout(fs::File::create(td.join("data/zz-blob")).unwrap()),
    );
    let tree = td.join("data");
    let (key, r) = td.age_key("key.txt");
    let a = td.join("a.tar.zst.age");
    backup(&[&tree], &r, &a, &[]);
    fs::remove_dir_all(tree.join("new")).unwrap();
    fs::remove_file(tree.join("top.txt")).unwrap();
    (tree, key, a)
}

/// A restore of `a` from stdin that has been given the first half of the archive and
/// has staged `data/new` whole: returns the child (its stdin still open) and the
/// staged folder's hidden name. (Every caller waits for the child it gets.)
#[allow(clippy::zombie_processes)]
fn restore_stalled_after_staging(
    tree: &std::path::Path,
    key: &std::path::Path,
    a: &std::path::Path,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    std::path::PathBuf,
) {
    use std::io::Write;
    let mut child = fk_cmd(&[
        "restore",
        "--allow-untrusted",
        "-",
        "-i",
        key.to_str().unwrap(),
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = fs::read(a).unwrap();
    stdin.write_all(&bytes[..bytes.len() / 2]).unwrap();
    let staged = wait_for(&mut child, tree, "data/new staged", |p| {
        p.is_dir() && fs::symlink_metadata(p.join("deep/link")).is_ok()
    });
    (child, stdin, staged)
}

/// Polls `tree` (30 s at most) for a `.forgekeep.tmp.*` entry that `ready` accepts; on
/// timeout the child is killed and waited for, and the test fails naming `what`.
fn wait_for(
    child: &mut std::process::Child,
    tree: &std::path::Path,
    what: &str,
    ready: impl Fn(&std::path::Path) -> bool,
) -> std::path::PathBuf {
    let started = std::time::Instant::now();
    loop {
        let found = names_in(tree)
            .into_iter()
            .filter(|n| n.to_string_lossy().starts_with(".forgekeep.tmp."))
            .map(|n| tree.join(n))
            .find(|p| ready(p));
        if let Some(p) = found {
            return p;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("never seen: {what}: {:?}", names_in(tree));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Gives a stalled restore the second half of `a` and waits for it: its exit code and
/// stderr.
fn feed_the_rest(
    mut child: std::process::Child,
    mut stdin: std::process::ChildStdin,
    a: &std::path::Path,
) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    let bytes = fs::read(a).unwrap();
    stdin.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn a_new_folder_is_staged_whole_under_a_hidden_name_and_a_killed_run_leaves_only_that() {
    let td = TestDir::new();
    let (tree, key, a) = staged_whole_setup(&td);
    let (mut child, stdin, staged) = restore_stalled_after_staging(&tree, &key, &a);
    // Staged under final names inside the hidden folder; nothing at the final name yet.
    assert!(
        !tree.join("new").exists(),
        "data/new visible before the archive is proven"
    );
    assert_eq!(mode_of(&staged), 0o700);
    assert_eq!(fs::read(staged.join("f07")).unwrap(), b"file 7\n");
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    // The rerun sweeps the killed run's folder and restores everything.
    let o = restore(&a, &key, &[]);
    expect_code(&o, 0);
    assert!(
        !staged.exists(),
        "the killed run's staged folder was not swept"
    );
    for i in 0..20 {
        let f = tree.join(format!("new/f{i:02}"));
        assert_eq!(fs::read(&f).unwrap(), format!("file {i}\n").as_bytes());
        assert_eq!(mode_of(&f), 0o640);
    }
    assert_eq!(fs::read(tree.join("new/deep/secret")).unwrap(), b"deep\n");
    assert_eq!(
        fs::read_link(tree.join("new/deep/link")).unwrap(),
        std::path::Path::new("../f00")
    );
    assert_eq!(fs::read(tree.join("top.txt")).unwrap(), b"top\n");
    let leftovers = sh(&format!("find {} -name '.forgekeep.tmp.*'", tree.display()));
    assert_eq!(stdout(&leftovers), "");
}

#[test]
fn something_at_a_new_folders_name_before_apply_stops_the_restore_and_nothing_is_left() {
    let td = TestDir::new();
    let (tree, key, a) = staged_whole_setup(&td);
    let (child, stdin, staged) = restore_stalled_after_staging(&tree, &key, &a);
    // Someone makes data/new while the restore is still reading the archive.
    td.write("data/new/planted", b"not ours\n", 0o644);
    let (code, err) = feed_the_rest(child, stdin, &a);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot put in place"), "{err}");
    // The newcomer is untouched and alone; top.txt (renamed before the folder) went back.
    assert_eq!(
        names_in(&tree.join("new")),
        vec![std::ffi::OsString::from("planted")]
    );
    assert_eq!(fs::read(tree.join("new/planted")).unwrap(), b"not ours\n");
    assert!(
        !tree.join("top.txt").exists(),
        "top.txt stayed after a failed restore"
    );
    assert!(
        !staged.exists(),
        "the staged folder stayed after a failed restore"
    );
    let leftovers = sh(&format!("find {} -name '.forgekeep.tmp.*'", tree.display()));
    assert_eq!(stdout(&leftovers), "");
}

#[test]
fn a_staged_file_swapped_for_a_hard_link_before_apply_is_refused() {
    let td = TestDir::new();
    let (tree, key, a) = staged_whole_setup(&td);
    let victim = td.write("victim", b"someone else's\n", 0o600);
    let (mut child, stdin, _staged) = restore_stalled_after_staging(&tree, &key, &a);
    // top.txt is staged as a temp file in the existing folder; whoever can write there
    // swaps it for a hard link to another file before apply gives it top.txt's mode.
    let temp = wait_for(&mut child, &tree, "top.txt staged", |p| p.is_file());
    fs::remove_file(&temp).unwrap();
    fs::hard_link(&victim, &temp).unwrap();
    let (code, err) = feed_the_rest(child, stdin, &a);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no longer what this restore staged"), "{err}");
    assert_eq!(
        mode_of(&victim),
        0o600,
        "the linked file was given top.txt's mode"
    );
    assert_eq!(fs::read(&victim).unwrap(), b"someone else's\n");
    assert!(!tree.join("top.txt").exists());
    assert!(!tree.join("new").exists());
    let leftovers = sh(&format!("find {} -name '.forgekeep.tmp.*'", tree.display()));
    assert_eq!(stdout(&leftovers), "");
}
