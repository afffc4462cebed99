//! The configuration file: the whole job from one file, flags over the file, and errors
//! that name the key and the line.

use crate::util::*;
use std::fs;

fn write_config(t: &TestDir, text: &str) -> std::path::PathBuf {
    t.write("etc/forgekeep/config.toml", text.as_bytes(), 0o600)
}

#[test]
fn backup_with_only_the_config_file_does_the_whole_job() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    t.write(
        "etc/forgekeep/recipients",
        format!("# ops\n{recipient}\n").as_bytes(),
        0o644,
    );
    t.mkdir("backups", 0o700);
    let config = write_config(
        &t,
        &format!(
            "[sources]\npaths = [\"{}\"]\n\n[backup]\nrecipients-files = [\"recipients\"]\noutput = \"{}/\"\nlevel = 5\n",
            tree.display(),
            t.join("backups").display()
        ),
    );
    let o = fk_cmd(&["backup"])
        .env("FORGEKEEP_CONFIG", &config)
        .output()
        .unwrap();
    expect_code(&o, 0);
    let archive = only_archive(&t.join("backups"));
    let v = fk(&[
        "verify",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ]);
    expect_code(&v, 0);
    // --config on the command line works the same way.
    let o = fk(&["backup", "--config", config.to_str().unwrap(), "--dry-run"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("jwt/private.pem"), "{}", stdout(&o));
}

#[test]
fn flags_override_the_file() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let other = t.write("other/secret", b"s", 0o600);
    let (_key, recipient) = t.age_key("key.txt");
    let config = write_config(
        &t,
        &format!(
            "[sources]\npaths = [\"{}\"]\n[backup]\nrecipients = [\"{recipient}\"]\noutput = \"{}\"\n",
            tree.display(),
            t.join("from-config.age").display()
        ),
    );
    let out = t.join("from-flag.age");
    let o = fk(&[
        "backup",
        "--config",
        config.to_str().unwrap(),
        other.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 0);
    assert!(out.exists() && !t.join("from-config.age").exists());
    // Command-line sources replace the file's as a whole.
    let v = json_of(&o);
    assert_eq!(v["files"].as_u64(), Some(1), "{v}");
    assert_eq!(v["content_bytes"].as_u64(), Some(1), "{v}");
}

#[test]
fn unknown_key_is_an_error_naming_key_and_line() {
    let t = TestDir::new();
    let config = write_config(
        &t,
        "[sources]\npaths = [\"/etc\"]\n\n[retention]\nkeep-dayly = 7\n",
    );
    let o = fk(&["backup", "--config", config.to_str().unwrap(), "--dry-run"]);
    expect_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("keep-dayly") && err.contains("line 5"),
        "{err}"
    );
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one line with its hint: {err}"
    );
}

#[test]
fn a_broken_config_does_not_stop_a_restore() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    backup(&[&tree], &recipient, &archive, &[]);
    let config = write_config(&t, "this is not toml");
    let o = fk_cmd(&[
        "verify",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ])
    .env("FORGEKEEP_CONFIG", &config)
    .output()
    .unwrap();
    expect_code(&o, 0);
}

#[test]
fn missing_config_file_is_a_clear_error() {
    let t = TestDir::new();
    let o = fk(&[
        "backup",
        "--config",
        t.join("nope.toml").to_str().unwrap(),
        "--dry-run",
    ]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("nope.toml"), "{}", stderr(&o));
    assert!(!fs::read_dir(t.path())
        .unwrap()
        .any(|e| e.unwrap().file_name() == "nope.toml"));
}

#[test]
fn config_retention_does_not_refuse_an_archive_to_stdout() {
    // Regression: [retention] in the file made `backup -o - | ssh ...` a usage error, as
    // if --keep-* had been given for stdout.
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let (key, recipient) = t.age_key("key.txt");
    let config = write_config(&t, "[retention]\nkeep-daily = 7\n");
    let archive = t.join("piped.age");
    let o = fk_cmd(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &recipient,
        "-o",
        "-",
    ])
    .env("FORGEKEEP_CONFIG", &config)
    .stdout(fs::File::create(&archive).unwrap())
    .output()
    .unwrap();
    expect_code(&o, 0);
    let v = fk(&[
        "verify",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
    ]);
    expect_code(&v, 0);
    // A --keep-* flag with stdout is still refused: there is no folder to prune.
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-r",
        &recipient,
        "-o",
        "-",
        "--keep-daily",
        "1",
    ]);
    expect_code(&o, 2);
}

#[test]
fn no_strict_turns_off_the_files_strict() {
    // Review: `strict = true` in the file could not be turned off, and the hint said to
    // "run without --strict", which the user had not passed.
    let t = TestDir::new();
    let tree = t.gitea_tree();
    t.write("srv/gitea/open.key", SECRET_SETTING, 0o644);
    let (_key, recipient) = t.age_key("key.txt");
    let config = write_config(&t, "[backup]\nstrict = true\n");
    let c = config.to_str().unwrap();
    let out = t.join("a.age");
    let o = fk(&[
        "backup",
        "--config",
        c,
        tree.to_str().unwrap(),
        "-r",
        &recipient,
        "-o",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("--no-strict"), "{}", stderr(&o));
    assert!(!out.exists());
    let o = fk(&[
        "backup",
        "--config",
        c,
        tree.to_str().unwrap(),
        "-r",
        &recipient,
        "-o",
        out.to_str().unwrap(),
        "--no-strict",
    ]);
    expect_code(&o, 3);
    assert!(out.exists());
}

#[test]
fn the_example_config_names_the_recipients_file_the_recipe_writes() {
    // Regression (issue 13): examples/config.toml pointed at sample-recipients.txt while
    // the recipe wrote /etc/forgekeep/recipients.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(repo.join("README.md")).unwrap();
    let recipe = &readme[readme.find("### Nightly backup").unwrap()..];
    let written: Vec<&str> = recipe
        .lines()
        .filter_map(|l| l.split("> ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap())
        .collect();
    let example = forgekeep::config::Config::parse(
        &fs::read_to_string(repo.join("examples/config.toml")).unwrap(),
        std::path::Path::new("/etc/forgekeep/config.toml"),
    )
    .unwrap();
    for f in &example.backup.recipients_files {
        assert!(
            written.contains(&f.to_str().unwrap()),
            "the recipe writes {written:?}, the example reads {f:?}"
        );
    }
    assert!(!example.backup.recipients_files.is_empty());
}
