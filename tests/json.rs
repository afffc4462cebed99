//! `--json` through the real binary: every command prints exactly one JSON object on one
//! line of stdout, every key it prints is documented in forgekeep(1)'s JSON OUTPUT
//! (`forgekeep::manual::JSON_OUTPUT`, the contract monitoring parses), and no secret
//! value from the backed-up files ever reaches a report or stderr.

use crate::util::*;
use forgekeep::manual::JSON_OUTPUT;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The schema of `label` in JSON_OUTPUT: the text after `{` on its line, which starts
/// with `label: {` or `label (where it appears): {` (`backup`, `backup --dry-run`, `finding`).
fn schema(label: &str) -> &'static str {
    JSON_OUTPUT
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(label)?;
            if !(rest.starts_with(": {") || rest.starts_with(" (")) {
                return None;
            }
            rest.split_once('{').map(|(_, schema)| schema)
        })
        .unwrap_or_else(|| panic!("JSON_OUTPUT documents no `{label}: {{...}}`"))
}

/// Asserts that each key of the object `v` is documented as `"key"` in the schema of
/// `label`. `"ok"` is documented for every object (in the preamble).
#[track_caller]
fn assert_documented(label: &str, v: &Value) {
    let doc = schema(label);
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{label}: not an object: {v}"));
    let missing: Vec<&String> = obj
        .keys()
        .filter(|k| *k != "ok" && !doc.contains(&format!("\"{k}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys of `{label}` printed but not documented in manual::JSON_OUTPUT: {missing:?}\nobject: {v}"
    );
}

/// Asserts each object of the array `v[key]` is documented as `label`.
#[track_caller]
fn assert_each_documented(label: &str, v: &Value, key: &str) {
    for item in v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array: {v}"))
    {
        assert_documented(label, item);
    }
}

/// The one JSON object of a `--json` run: exactly one line on stdout, an object.
#[track_caller]
fn one_object(o: &Output) -> Value {
    let text = stdout(o);
    assert_eq!(
        text.lines().count(),
        1,
        "exactly one line on stdout:\n{text}\nstderr:\n{}",
        stderr(o)
    );
    assert!(text.ends_with('\n'));
    let v = json_of(o);
    assert!(v.is_object(), "{v}");
    assert!(v["ok"].is_boolean(), "every object has ok: {v}");
    v
}

/// Findings and entries inside a report are documented objects too.
#[track_caller]
fn assert_parts_documented(v: &Value) {
    if v.get("findings").is_some() {
        assert_each_documented("finding", v, "findings");
    }
    if v["entries"].is_array() {
        assert_each_documented("entry", v, "entries");
    }
}

/// An error object: documented keys, `ok` false, the process's exit code inside.
#[track_caller]
fn assert_error_object(o: &Output, exit: i32) -> Value {
    expect_code(o, exit);
    let v = one_object(o);
    assert_documented("error", &v);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["exit_code"], exit, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(v["hint"].is_string() || v["hint"].is_null(), "{v}");
    v
}

fn args<'a>(head: &[&'a str], paths: &'a [&'a Path], tail: &[&'a str]) -> Vec<&'a str> {
    let mut v = head.to_vec();
    v.extend(paths.iter().map(|p| p.to_str().unwrap()));
    v.extend(tail);
    v
}

struct Fixture {
    td: TestDir,
    key: PathBuf,
    recipient: String,
    tree: PathBuf,
    archive: PathBuf,
}

/// A Gitea tree, its age key, and an archive of the tree in `backups/`.
fn fixture() -> Fixture {
    let td = TestDir::new();
    let (key, recipient) = td.age_key("key.txt");
    let tree = td.gitea_tree();
    td.mkdir("backups", 0o700);
    let archive = td.join("backups/a.tar.zst.age");
    backup(&[&tree], &recipient, &archive, &[]);
    Fixture {
        td,
        key,
        recipient,
        tree,
        archive,
    }
}

#[test]
fn backup_json_is_one_documented_object_with_and_without_pruning() {
    let f = fixture();
    let dir = f.td.mkdir("out", 0o700);
    let out = format!("{}/", dir.display());
    let o = fk(&args(
        &["backup"],
        &[&f.tree],
        &["-r", &f.recipient, "-o", &out, "--json"],
    ));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_eq!(v["command"], "backup");
    assert_documented("backup", &v);
    assert_parts_documented(&v);
    assert!(
        v.get("prune").is_none(),
        "no prune key without a rule (documented as optional): {v}"
    );
    assert!(v["size"].as_u64().unwrap() > 0);

    // With a rule: the prune object, documented like prune's own report (over this
    // host's archives only).
    let host = forgekeep::commands::backup::host_for_filename();
    let old = [
        format!("forgekeep-{host}-20200101T000000Z.tar.zst.age"),
        format!("forgekeep-{host}-20190101T000000Z.tar.zst.age"),
    ];
    for n in &old {
        fs::write(dir.join(n), b"").unwrap();
    }
    let o = fk(&args(
        &["backup"],
        &[&f.tree],
        &[
            "-r",
            &f.recipient,
            "-o",
            dir.join("explicit.age").to_str().unwrap(),
            "--keep-last",
            "1",
            "--json",
        ],
    ));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_documented("backup", &v);
    let p = &v["prune"];
    assert!(p.is_object(), "{v}");
    assert_documented("prune", p);
    assert_each_documented("prune", p, "kept");
    // The archive the first backup above wrote into this folder is the newest: kept.
    assert_eq!(p["deleted"], serde_json::json!(old));

    // With findings (exit 3) the report is still the one object, ok true.
    let open = f.td.write("srv/gitea/open.key", SECRET_SETTING, 0o644);
    let o = fk(&args(
        &["backup"],
        &[&f.tree],
        &["-r", &f.recipient, "-o", &out, "--json", "--force"],
    ));
    expect_code(&o, 3);
    let v = one_object(&o);
    assert_eq!(v["ok"], true);
    assert_parts_documented(&v);
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["path"] == open.to_str().unwrap()),
        "{v}"
    );
}

#[test]
fn backup_dry_run_json_is_one_documented_object() {
    let f = fixture();
    let o = fk(&args(
        &["backup"],
        &[&f.tree],
        &["-r", &f.recipient, "--dry-run", "--json"],
    ));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_eq!(v["command"], "backup");
    assert_eq!(v["dry_run"], true);
    assert_documented("backup --dry-run", &v);
    assert_parts_documented(&v);
    assert!(!v["entries"].as_array().unwrap().is_empty());
}

#[test]
fn restore_json_is_one_documented_object_for_a_plan_and_a_restore() {
    let f = fixture();
    let to = f.td.join("inspect");
    for extra in [&["--dry-run"][..], &[][..]] {
        let mut tail = vec![
            "-i",
            f.key.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
            "--json",
        ];
        tail.extend(extra);
        let o = fk(&args(
            &["restore", "--allow-untrusted"],
            &[&f.archive],
            &tail,
        ));
        expect_code(&o, 0);
        let v = one_object(&o);
        assert_eq!(v["command"], "restore");
        assert_documented("restore", &v);
        assert_each_documented("restore", &v, "steps");
        assert_each_documented("restore", &v, "mappings");
        assert_documented("restore", &v["counts"]);
    }
    assert!(to
        .join(f.tree.strip_prefix("/").unwrap())
        .join("jwt/private.pem")
        .exists());

    // In place, where everything is unchanged: no undo archive.
    let o = fk(&args(
        &["restore"],
        &[&f.archive],
        &["-i", f.key.to_str().unwrap(), "--dry-run", "--json"],
    ));
    let v = one_object(&o);
    assert_eq!(v["undo_archive"], Value::Null);
    assert!(v["warnings"].is_array(), "{v}");
}

#[test]
fn verify_json_is_one_documented_object_with_and_without_latest() {
    let f = fixture();
    let key = f.key.to_str().unwrap();
    let o = fk(&args(&["verify"], &[&f.archive], &["-i", key, "--json"]));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_eq!(v["command"], "verify");
    assert_documented("verify", &v);

    let dir = f.td.mkdir("latest", 0o700);
    fs::copy(
        &f.archive,
        dir.join("forgekeep-git-20260101T000000Z.tar.zst.age"),
    )
    .unwrap();
    let o = fk(&args(
        &["verify", "--latest"],
        &[&dir],
        &["-i", key, "--max-age", "1w", "--json"],
    ));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_documented("verify", &v);
    assert!(
        v["age_seconds"].is_i64() && v["max_age_seconds"] == 604_800,
        "{v}"
    );

    // Stale: still the verify object (not a second, error object), every key documented.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let o = fk(&args(
        &["verify", "--latest"],
        &[&dir],
        &["-i", key, "--max-age", "0", "--json"],
    ));
    expect_code(&o, 1);
    let v = one_object(&o);
    assert_documented("verify", &v);
    assert_eq!(
        (&v["ok"], &v["stale"], &v["exit_code"]),
        (&Value::Bool(false), &Value::Bool(true), &Value::from(1))
    );
}

#[test]
fn list_json_is_one_documented_object() {
    let f = fixture();
    let o = fk(&args(
        &["list"],
        &[&f.archive],
        &["-i", f.key.to_str().unwrap(), "--json"],
    ));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_eq!(v["command"], "list");
    assert_documented("list", &v);
    assert_parts_documented(&v);
    assert_each_documented("list", &v, "sources");
    let pem = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("jwt/private.pem"))
        .expect("the key is listed");
    assert_eq!(pem["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn diff_json_is_one_documented_object() {
    let f = fixture();
    let key = f.key.to_str().unwrap();
    let o = fk(&args(&["diff"], &[&f.archive], &["-i", key, "--json"]));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_eq!(
        (&v["command"], &v["ok"]),
        (&Value::from("diff"), &Value::Bool(true))
    );
    assert_documented("diff", &v);
    assert_documented("diff", &v["counts"]);

    // A missing key, a changed file, an extra file, and the same tree seen under --root.
    fs::remove_file(f.tree.join("jwt/private.pem")).unwrap();
    f.td.write(
        "srv/gitea/conf/app.ini",
        b"[security]\nINSTALL_LOCK = false\n",
        0o600,
    );
    f.td.write("srv/gitea/conf/extra.ini", b"x", 0o600);
    let o = fk(&args(&["diff"], &[&f.archive], &["-i", key, "--json"]));
    expect_code(&o, 3);
    let v = one_object(&o);
    assert_eq!(v["ok"], false);
    assert_documented("diff", &v);
    assert_each_documented("diff", &v, "differences");
    let changes: Vec<&str> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["change"].as_str().unwrap())
        .collect();
    for c in ["missing", "changed", "extra"] {
        assert!(changes.contains(&c), "{c}: {v}");
    }
    let root = f.td.mkdir("elsewhere", 0o755);
    let o = fk(&args(
        &["diff"],
        &[&f.archive],
        &["-i", key, "--root", root.to_str().unwrap(), "--json"],
    ));
    expect_code(&o, 3);
    let v = one_object(&o);
    assert_each_documented("diff", &v, "differences");
}

#[test]
fn check_json_is_one_documented_object_with_profiles() {
    let f = fixture();
    let ini = f.tree.join("conf/app.ini");
    f.td.write(
        "srv/gitea/conf/app.ini",
        format!(
            "WORK_PATH = {}\n[server]\nAPP_DATA_PATH = {}\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = a-long-enough-secret\n",
            f.tree.display(),
            f.tree.display()
        )
        .as_bytes(),
        0o600,
    );
    let o = fk(&["check", "-p", &format!("gitea={}", ini.display()), "--json"]);
    assert!(matches!(code(&o), 0 | 1 | 3), "{}", stderr(&o));
    let v = one_object(&o);
    assert_eq!(v["command"], "check");
    assert_documented("check", &v);
    assert_parts_documented(&v);
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 1, "{v}");
    assert_documented("profile", &profiles[0]);
    assert_each_documented("profile", &profiles[0], "items");
    assert_each_documented("finding", &profiles[0], "findings");

    let o = fk(&args(&["check"], &[&f.tree], &["--json"]));
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_documented("check", &v);
    assert_eq!(v["ok"], true);
}

#[test]
fn prune_json_is_one_documented_object() {
    let td = TestDir::new();
    let dir = td.mkdir("backups", 0o700);
    for s in ["20260103T000000Z", "20260102T000000Z", "20260101T000000Z"] {
        fs::write(dir.join(format!("forgekeep-git-{s}.tar.zst.age")), b"").unwrap();
    }
    for extra in [&["--dry-run"][..], &[][..]] {
        let mut tail = vec!["--keep-last", "1", "--json"];
        tail.extend(extra);
        let o = fk(&args(&["prune"], &[&dir], &tail));
        expect_code(&o, 0);
        let v = one_object(&o);
        assert_eq!(v["command"], "prune");
        assert_documented("prune", &v);
        assert_each_documented("prune", &v, "kept");
    }
}

#[test]
fn keygen_json_is_one_documented_object_without_the_private_key() {
    let td = TestDir::new();
    let key = td.join("k.txt");
    let o = fk(&["keygen", "-o", key.to_str().unwrap(), "--json"]);
    expect_code(&o, 0);
    let v = one_object(&o);
    assert_eq!(v["command"], "keygen");
    assert_documented("keygen", &v);
    assert_eq!(v["identity_file"], key.to_str().unwrap());
    assert!(v["recipient"].as_str().unwrap().starts_with("age1"));
    assert!(!stdout(&o).contains("AGE-SECRET-KEY"));
    // Without -o the report would carry the private key: refused, as an error object.
    let o = fk(&["keygen", "--json"]);
    assert_error_object(&o, 2);
    assert!(!stdout(&o).contains("AGE-SECRET-KEY"));
}

#[test]
fn errors_are_one_documented_object_with_the_exit_code() {
    let f = fixture();
    let key = f.key.to_str().unwrap();
    // Runtime: a missing archive.
    let missing = f.td.join("missing.age");
    assert_error_object(
        &fk(&args(&["verify"], &[&missing], &["-i", key, "--json"])),
        1,
    );
    // Integrity: a damaged archive.
    let bad = f.td.write("bad.age", b"not an archive", 0o600);
    assert_error_object(&fk(&args(&["list"], &[&bad], &["-i", key, "--json"])), 4);
    // No identity matches.
    let (other, _) = f.td.age_key("other.txt");
    assert_error_object(
        &fk(&args(
            &["verify"],
            &[&f.archive],
            &["-i", other.to_str().unwrap(), "--json"],
        )),
        5,
    );
    // Usage, found by forgekeep: no output.
    assert_error_object(
        &fk(&args(
            &["backup"],
            &[&f.tree],
            &["-r", &f.recipient, "--json"],
        )),
        2,
    );
    // Usage, found by the argument parser: an unknown flag, a missing value, a bad
    // number. Scripts that pass --json get the object there too.
    for bad_args in [
        &["backup", "--json", "--no-such-flag"][..],
        &["--json", "prune", "/tmp", "--keep-last"][..],
        &["prune", "/tmp", "--keep-last", "many", "--json"][..],
        &["--json", "no-such-command"][..],
    ] {
        let o = fk(bad_args);
        let v = assert_error_object(&o, 2);
        assert!(
            !v["error"].as_str().unwrap().contains('\n'),
            "one line: {v}"
        );
    }
    // Restore refused (exit 7).
    f.td.write("srv/gitea/conf/app.ini", b"changed\n", 0o600);
    assert_error_object(
        &fk(&args(
            &["restore", "--allow-untrusted"],
            &[&f.archive],
            &["-i", key, "--json"],
        )),
        7,
    );
    // Locked (exit 6).
    let dir = f.td.mkdir("locked", 0o700);
    let _holder = Holder::hold(&dir.join(".forgekeep.lock"));
    assert_error_object(
        &fk(&args(&["prune"], &[&dir], &["--keep-last", "1", "--json"])),
        6,
    );
}

// --- secrets never reach a report --------------------------------------------------------

const SECRET: &str = "very-secret-value-123";

#[track_caller]
fn assert_no_secret(what: &str, o: &Output) {
    for (stream, text) in [("stdout", stdout(o)), ("stderr", stderr(o))] {
        assert!(
            !text.contains(SECRET),
            "{what}: the secret value is in {stream}:\n{text}"
        );
    }
}

#[test]
fn secret_values_never_reach_json_reports_or_stderr() {
    let td = TestDir::new();
    let (key, r) = td.age_key("key.txt");
    let tree = td.gitea_tree();
    let ini_text = format!(
        "WORK_PATH = {root}\nRUN_USER = root\n[server]\nAPP_DATA_PATH = {root}\nLFS_JWT_SECRET = {SECRET}-lfs\n\
         [database]\nPASSWD = {SECRET}-db\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = {SECRET}\n\
         INTERNAL_TOKEN = {SECRET}-token\n[oauth2]\nJWT_SECRET = {SECRET}-jwt\n",
        root = tree.display()
    );
    // World-readable: a finding is made about the file (its path, never its content).
    let ini = td.write("srv/gitea/conf/app.ini", ini_text.as_bytes(), 0o644);
    td.write("srv/gitea/data/gitea.db.bak", SECRET.as_bytes(), 0o600);
    let profile = format!("gitea={}", ini.display());
    let dir = td.mkdir("backups", 0o700);
    let out = format!("{}/", dir.display());

    let o = fk(&args(
        &["backup"],
        &[&tree],
        &["-p", &profile, "-r", &r, "-o", &out, "--json", "-v"],
    ));
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    one_object(&o);
    assert_no_secret("backup", &o);
    let archive = only_archive(&dir);
    let k = key.to_str().unwrap();

    let o = fk(&args(
        &["backup"],
        &[&tree],
        &["-p", &profile, "-r", &r, "--dry-run", "--json", "-v"],
    ));
    assert_no_secret("backup --dry-run", &o);
    let o = fk(&args(&["list"], &[&archive], &["-i", k, "--json", "-v"]));
    expect_code(&o, 0);
    assert_no_secret("list", &o);
    let o = fk(&args(&["verify"], &[&archive], &["-i", k, "--json", "-v"]));
    expect_code(&o, 0);
    assert_no_secret("verify", &o);
    let o = fk(&["check", "-p", &profile, "--json", "-v"]);
    one_object(&o);
    assert_no_secret("check", &o);
    let o = fk(&args(
        &["restore"],
        &[&archive],
        &["-i", k, "--dry-run", "--json", "-v"],
    ));
    assert_no_secret("restore --dry-run", &o);

    // The live app.ini now holds other values: diff says it changed, never how.
    td.write(
        "srv/gitea/conf/app.ini",
        ini_text.replace(SECRET, "other-value-456").as_bytes(),
        0o600,
    );
    let o = fk(&args(&["diff"], &[&archive], &["-i", k, "--json", "-v"]));
    expect_code(&o, 3);
    let v = one_object(&o);
    assert!(
        v["differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == ini.to_str().unwrap() && d["change"] == "changed"),
        "{v}"
    );
    assert_no_secret("diff", &o);
    assert!(!stdout(&o).contains("other-value-456"), "{}", stdout(&o));
    let o = fk(&args(&["diff"], &[&archive], &["-i", k, "-v"]));
    assert_no_secret("diff (text)", &o);
}

#[test]
fn a_refused_dry_run_is_one_object_with_the_real_runs_verdict() {
    // Regression: `backup --dry-run --json` printed its report (ok true) and then an error
    // object; and --strict was not applied to dry runs.
    let td = TestDir::new();
    let tree = td.gitea_tree();
    td.write("srv/gitea/open.key", SECRET_SETTING, 0o644);
    let (_key, r) = td.age_key("key.txt");
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &r,
        "--dry-run",
        "--strict",
        "--json",
    ]);
    expect_code(&o, 1);
    let v = one_object(&o);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["dry_run"], true);
    assert!(v["error"].as_str().unwrap().contains("strict"), "{v}");
    let doc = forgekeep::manual::JSON_OUTPUT
        .lines()
        .find(|l| l.starts_with("backup --dry-run:"))
        .unwrap();
    for key in v.as_object().unwrap().keys() {
        assert!(doc.contains(&format!("\"{key}\"")), "{key} not in: {doc}");
    }
}
