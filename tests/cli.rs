//! The command line as a user meets it: help, usage errors, man pages kept current,
//! no secret in any output.

use crate::util::*;
use std::fs;

#[test]
fn man_pages_in_the_repository_are_current() {
    let td = TestDir::new();
    let dir = td.join("man");
    expect_code(&fk(&["generate", "man", dir.to_str().unwrap()]), 0);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for n in &names {
        let fresh = fs::read(dir.join(n)).unwrap();
        let committed = fs::read(repo.join(n)).unwrap_or_default();
        assert!(
            fresh == committed,
            "man/{} is stale: run `cargo run -- generate man man` and commit",
            n.to_string_lossy()
        );
    }
}

#[test]
fn completions_are_generated_for_bash_zsh_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let o = fk(&["generate", "completions", shell]);
        expect_code(&o, 0);
        assert!(stdout(&o).contains("forgekeep"));
    }
}

#[test]
fn usage_errors_exit_2_with_one_line_and_a_hint() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let o = fk(&[
        "backup",
        tree.to_str().unwrap(),
        "-o",
        td.join("a").to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("hint"));
    expect_code(&fk(&["restore"]), 2);
    expect_code(&fk(&["no-such-command"]), 2);
    expect_code(&fk(&["--help"]), 0);
}

#[test]
fn passphrase_file_content_never_appears_in_output_or_help() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let secret = "Sup3rSecretPassphraseValue";
    let pass = td.write("p", format!("{secret}\n").as_bytes(), 0o600);
    let a = td.join("a.age");
    for args in [
        vec![
            "backup",
            tree.to_str().unwrap(),
            "--passphrase",
            "-o",
            a.to_str().unwrap(),
            "--json",
        ],
        vec!["verify", a.to_str().unwrap(), "--passphrase", "--json"],
        vec!["restore", "--help"],
        vec!["backup", "--help"],
    ] {
        let o = fk_cmd(&args)
            .env("FORGEKEEP_PASSPHRASE_FILE", &pass)
            .output()
            .unwrap();
        assert!(!stdout(&o).contains(secret) && !stderr(&o).contains(secret));
    }
    // Secret file contents are not echoed by errors either.
    let o = fk(&["verify", a.to_str().unwrap(), "-i", pass.to_str().unwrap()]);
    assert_ne!(code(&o), 0);
    assert!(!stderr(&o).contains(secret));
}

#[test]
fn broken_pipe_is_not_an_error() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    for i in 0..300 {
        td.write(&format!("srv/gitea/many/f{i}"), b"x", 0o600);
    }
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let o = sh(&format!(
        "set -o pipefail; {BIN} list {} -i {} | head -1",
        a.display(),
        k.display()
    ));
    expect_code(&o, 0);
}

#[test]
fn json_list_is_one_object_with_entries_and_digests() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let o = fk(&[
        "list",
        a.to_str().unwrap(),
        "-i",
        k.to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pem = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("private.pem"))
        .unwrap();
    assert_eq!(pem["mode"], "0600");
    assert_eq!(pem["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn readme_try_it_commands_work_with_the_sample_key() {
    let td = TestDir::new();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let a = td.join("sample.tar.zst.age");
    let o = fk(&[
        "backup",
        repo.join("examples/forge").to_str().unwrap(),
        "-R",
        repo.join("examples/sample-recipients.txt")
            .to_str()
            .unwrap(),
        "-o",
        a.to_str().unwrap(),
        "--force",
    ]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let inspect = td.join("inspect");
    let o = fk(&[
        "restore",
        a.to_str().unwrap(),
        "-i",
        repo.join("examples/sample-key.txt").to_str().unwrap(),
        "--to",
        inspect.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let copy = inspect
        .join(repo.strip_prefix("/").unwrap())
        .join("examples/forge/gitea/jwt/private.pem");
    assert_eq!(
        fs::read(copy).unwrap(),
        fs::read(repo.join("examples/forge/gitea/jwt/private.pem")).unwrap()
    );
}

#[test]
fn help_never_shows_environment_values() {
    // The invariant: no value from the environment in --help (clap shows them by default
    // for `env = ...` flags; FORGEKEEP_CONFIG was one).
    let marker = "/nowhere/marker-value-in-the-environment";
    for cmd in [
        vec!["--help"],
        vec!["backup", "--help"],
        vec!["check", "--help"],
        vec!["prune", "--help"],
    ] {
        let o = fk_cmd(&cmd)
            .env("FORGEKEEP_CONFIG", marker)
            .output()
            .unwrap();
        assert!(o.status.success());
        assert!(
            !stdout(&o).contains(marker),
            "{cmd:?} shows it:\n{}",
            stdout(&o)
        );
    }
}

#[test]
fn argument_errors_are_one_line_with_a_hint_naming_the_usage() {
    // Regression (issue 13): clap's multi-line blocks, and `verify A` without -i showed a
    // usage that named neither --passphrase nor --latest.
    let td = TestDir::new();
    let a = td.write("A", b"not an archive", 0o600);
    let cases: [(Vec<&str>, &[&str]); 4] = [
        (
            vec!["verify", a.to_str().unwrap()],
            &["--passphrase", "--latest", "-i"],
        ),
        (
            vec!["backup", "--levl", "3"],
            &["--level", "forgekeep backup --help"],
        ),
        (vec!["restore"], &["ARCHIVE", "--passphrase"]),
        (vec!["no-such-command"], &["forgekeep --help"]),
    ];
    for (args, wanted) in cases {
        let o = fk(&args);
        expect_code(&o, 2);
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("forgekeep: error: ") && err.contains(" (hint: "),
            "{args:?}: {err}"
        );
        for w in wanted {
            assert!(err.contains(w), "{args:?}: {w} in {err}");
        }
    }
    // With --json: the same line on stderr and one error object on stdout.
    let o = fk(&["verify", a.to_str().unwrap(), "--json"]);
    expect_code(&o, 2);
    let v = json_of(&o);
    assert_eq!(
        (v["ok"].as_bool(), v["exit_code"].as_i64()),
        (Some(false), Some(2))
    );
    assert!(v["hint"].as_str().unwrap().contains("--passphrase"), "{v}");
}

#[test]
fn config_flag_only_on_the_commands_that_read_the_file() {
    let td = TestDir::new();
    let config = td.write("c.toml", b"this is not toml", 0o600);
    for cmd in ["backup", "check", "prune"] {
        let o = fk(&[cmd, "--config", config.to_str().unwrap()]);
        expect_code(&o, 2);
        assert!(
            stderr(&o).contains("c.toml line 1"),
            "{cmd}: {}",
            stderr(&o)
        );
        let help = stdout(&fk(&[cmd, "--help"]));
        assert!(
            help.contains("--config <FILE>") && help.contains("FORGEKEEP_CONFIG"),
            "{help}"
        );
    }
    // The readers take --config for its [trust] table only, and a broken file never
    // stops them (tests/config.rs, tests/signing.rs).
    for cmd in ["restore", "verify", "list", "diff"] {
        let help = stdout(&fk(&[cmd, "--help"]));
        assert!(
            help.contains("--config <FILE>") && help.contains("[trust]"),
            "{cmd}: {help}"
        );
    }
    for cmd in ["detect", "keygen"] {
        let help = stdout(&fk(&[cmd, "--help"]));
        assert!(
            !help.contains("--config <FILE>"),
            "{cmd} --help shows --config"
        );
        let o = fk(&[cmd, "--config", config.to_str().unwrap()]);
        expect_code(&o, 2);
        assert!(stderr(&o).contains("'--config'"), "{cmd}: {}", stderr(&o));
    }
}

#[test]
fn man_pages_have_a_synopsis_with_values_exit_status_findings_and_no_help_page() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let page = |n: &str| fs::read_to_string(repo.join(format!("{n}.1"))).unwrap();
    let synopsis = |text: &str| {
        let start = text.find(".SH SYNOPSIS").unwrap();
        let end = text[start + 4..].find(".SH").unwrap() + start + 4;
        text[start..end].to_string()
    };
    let verify = synopsis(&page("forgekeep-verify"));
    for bit in [
        "\\fB\\-\\-max\\-age\\fR \\fIAGE\\fR",
        "\\fB\\-\\-latest\\fR \\fIDIR\\fR",
        "\\fB\\-\\-passphrase\\fR",
    ] {
        assert!(verify.contains(bit), "{bit} in {verify}");
    }
    assert!(
        synopsis(&page("forgekeep-backup"))
            .contains("\\fB\\-o|\\-\\-output\\fR \\fIFILE|DIR|URL|\\-\\fR"),
        "{}",
        synopsis(&page("forgekeep-backup"))
    );
    for n in [
        "backup", "restore", "verify", "list", "diff", "check", "detect", "prune", "status",
        "keygen",
    ] {
        let text = page(&format!("forgekeep-{n}"));
        assert!(text.contains(".SH \"EXIT STATUS\""), "{n}");
        // The readers have --config too, for [trust] and [s3] only.
        let reads_config = [
            "backup", "check", "prune", "status", "restore", "verify", "list", "diff",
        ]
        .contains(&n);
        assert_eq!(
            text.contains("\\fB\\-\\-config\\fR"),
            reads_config,
            "{n}: --config"
        );
        assert_eq!(
            text.contains("FORGEKEEP_CONFIG"),
            reads_config,
            "{n}: FORGEKEEP_CONFIG"
        );
        if ["backup", "check"].contains(&n) {
            for c in forgekeep::findings::Code::ALL {
                assert!(
                    text.contains(&format!("\\fB{} (", c.as_str().replace('-', "\\-"))),
                    "{n}: FINDINGS lacks {}",
                    c.as_str()
                );
            }
        }
    }
    for entry in fs::read_dir(&repo).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains("forgekeep\\-help"),
            "a forgekeep-help(1) reference"
        );
    }
    assert!(page("forgekeep").contains(".SH ENVIRONMENT"));
}

#[test]
fn readme_findings_table_lists_every_code() {
    let readme =
        fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for c in forgekeep::findings::Code::ALL {
        assert!(
            readme.contains(&format!("| `{}` |", c.as_str())),
            "README's findings table lacks {}",
            c.as_str()
        );
    }
}
