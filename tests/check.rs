//! `check`: the audit without the archive; exit 0 clean, 3 warnings, 1 errors.

use crate::util::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn clean_tree_exits_0_and_writes_nothing() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let before: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let o = fk(&["check", tree.to_str().unwrap()]);
    expect_code(&o, 0);
    let after: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn world_readable_key_is_a_warning_in_json() {
    let t = TestDir::new();
    let tree = t.gitea_tree();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tree.join("jwt/private.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = fk(&["check", tree.to_str().unwrap(), "--json"]);
    expect_code(&o, 3);
    let v = json_of(&o);
    assert_eq!(v["warnings"], 1, "{v}");
    assert_eq!(v["findings"][0]["code"], "world-readable");
    assert_eq!(v["ok"], false);
}

#[test]
fn nothing_to_check_is_a_usage_error() {
    let o = fk(&["check"]);
    expect_code(&o, 2);
}

/// The findings of `check PATH... --json` on `path`.
fn findings_on(args: &[&str], path: &std::path::Path) -> Vec<serde_json::Value> {
    let mut all = vec!["check", "--json"];
    all.extend(args);
    let o = fk(&all);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    json_of(&o)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == path.to_str().unwrap())
        .cloned()
        .collect()
}

/// Runs a finding's fix as a shell command (the part before any explanation).
fn apply_fix(f: &serde_json::Value) {
    let fix = f["fix"].as_str().unwrap();
    let command = fix.split(" (").next().unwrap();
    assert!(command.starts_with("chmod "), "{fix}");
    run_ok(std::process::Command::new("sh").args(["-c", command]));
}

#[test]
fn etc_ssh_warns_only_for_key_material_regression_nightly_exit_3() {
    // Regression (issue 13): the example's paths = ["/etc/ssh"] warned that ssh_config,
    // sshd_config and moduli are world-readable, which they must be, so every night
    // exited 3. Files are judged by what they hold.
    let t = TestDir::new();
    let ssh = t.mkdir("etc/ssh", 0o755);
    t.write(
        "etc/ssh/ssh_config",
        b"Host *\n    SendEnv LANG LC_*\n    HashKnownHosts yes\n    GSSAPIAuthentication yes\n",
        0o644,
    );
    t.write(
        "etc/ssh/sshd_config",
        b"Include /etc/ssh/sshd_config.d/*.conf\nHostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
        0o644,
    );
    t.write(
        "etc/ssh/moduli",
        b"# Time Type Tests Tries Size Generator Modulus\n20230316035455 2 6 100 2047 5 C9F3C0A38CE1\n",
        0o644,
    );
    t.mkdir("etc/ssh/sshd_config.d", 0o755);
    ssh_host_key(&ssh.join("ssh_host_ed25519_key"), "ed25519", &[]);
    ssh_host_key(&ssh.join("ssh_host_rsa_key"), "rsa", &["-b", "2048"]);
    for pubkey in ["ssh_host_ed25519_key.pub", "ssh_host_rsa_key.pub"] {
        fs::set_permissions(ssh.join(pubkey), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let ssh_arg = ssh.to_str().unwrap();
    let o = fk(&["check", ssh_arg, "--json"]);
    expect_code(&o, 0);
    assert_eq!(json_of(&o)["findings"], serde_json::json!([]));

    // Key material others may read: a warning, whatever its name.
    let rsa = ssh.join("ssh_host_rsa_key");
    fs::set_permissions(&rsa, fs::Permissions::from_mode(0o644)).unwrap();
    let pem = ssh.join("extra.pem");
    openssl_ed25519(&pem);
    fs::set_permissions(&pem, fs::Permissions::from_mode(0o640)).unwrap();
    let (age, _) = t.age_key("etc/ssh/notes");
    fs::set_permissions(&age, fs::Permissions::from_mode(0o604)).unwrap();
    let o = fk(&["check", ssh_arg, "--json"]);
    expect_code(&o, 3);
    let v = json_of(&o);
    let mut flagged: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    flagged.sort();
    assert_eq!(
        flagged,
        [
            ("extra.pem", "group-readable"),
            ("notes", "world-readable"),
            ("ssh_host_rsa_key", "world-readable"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{v}"
    );
    let rsa_finding = &findings_with(&v, "world-readable")
        .into_iter()
        .find(|f| f["path"] == rsa.to_str().unwrap())
        .unwrap()["message"];
    assert!(
        rsa_finding
            .as_str()
            .unwrap()
            .contains("OpenSSH private key"),
        "{rsa_finding}"
    );
}

#[test]
fn one_finding_per_file_whose_fix_ends_the_findings() {
    // Regression (issue 13): following `chmod o-rwx` gave `group-readable`, following
    // `chmod 640` from a profile gave `group-readable` again.
    let t = TestDir::new();
    let dir = t.mkdir("secrets", 0o700);
    for mode in [0o666, 0o644, 0o640, 0o660, 0o606, 0o622, 0o604] {
        let f = t.write("secrets/key.ini", SECRET_SETTING, mode);
        let found = findings_on(&[dir.to_str().unwrap()], &f);
        assert_eq!(found.len(), 1, "mode {mode:o}: {found:?}");
        apply_fix(&found[0]);
        let after = findings_on(&[dir.to_str().unwrap()], &f);
        assert!(after.is_empty(), "mode {mode:o}, after the fix: {after:?}");
        fs::remove_file(&f).unwrap();
    }
    // Public text writable by others: one finding; the fix keeps it readable.
    let f = t.write("secrets/motd", b"Welcome\n", 0o666);
    let found = findings_on(&[dir.to_str().unwrap()], &f);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["code"], "writable");
    apply_fix(&found[0]);
    assert_eq!(mode_of(&f), 0o644);
    assert!(findings_on(&[dir.to_str().unwrap()], &f).is_empty());

    // A profile's expected mode is never contradicted: app.ini may be 0640.
    let work = t.mkdir("gitea", 0o700);
    openssl_rsa(&work.join("data/jwt/private.pem"));
    let ini = t.write(
        "gitea/app.ini",
        format!(
            "WORK_PATH = {w}\n[server]\nAPP_DATA_PATH = {w}/data\n[security]\nINSTALL_LOCK = true\nSECRET_KEY = a-long-enough-secret\n",
            w = work.display()
        )
        .as_bytes(),
        0o644,
    );
    let profile = format!("gitea={}", ini.display());
    let found = findings_on(&["-p", &profile], &ini);
    let modes: Vec<&serde_json::Value> = found
        .iter()
        .filter(|f| f["code"] != "owner-unexpected")
        .collect();
    assert_eq!(modes.len(), 1, "{found:?}");
    assert_eq!(modes[0]["code"], "mode-too-open");
    apply_fix(modes[0]);
    assert_eq!(mode_of(&ini), 0o640);
    let after = findings_on(&["-p", &profile], &ini);
    assert!(
        after.iter().all(|f| f["code"] == "owner-unexpected"),
        "0640 is what the profile expects: {after:?}"
    );
}

#[test]
fn check_without_sources_validates_the_configured_job_regression_night_failure() {
    // Regression (issue 13): the example config named a recipients file the recipe never
    // wrote, and check did not look at [backup]: the first run failed at night.
    let t = TestDir::new();
    let src = t.mkdir("src", 0o700);
    t.write("src/secret", b"s3cret\n", 0o600);
    let config = t.write(
        "etc/config.toml",
        format!(
            "[sources]\npaths = [\"{}\"]\n[backup]\nrecipients-files = [\"recipients\"]\noutput = \"{}/\"\n",
            src.display(),
            t.join("out").display()
        )
        .as_bytes(),
        0o600,
    );
    let c = config.to_str().unwrap();
    let recipients = t.join("etc/recipients");
    let out = t.join("out");
    let job = |want: i32| {
        let o = fk(&["check", "--config", c, "--json"]);
        expect_code(&o, want);
        let v = json_of(&o);
        assert_eq!(v["job"]["config"], c, "{v}");
        findings_with(&v, "job-problem")
            .into_iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["severity"].as_str().unwrap().to_string(),
                    f["message"].as_str().unwrap().to_string(),
                    f["fix"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Nothing there yet: two errors, each with the command that fixes it.
    let found = job(1);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, recipients.to_str().unwrap());
    assert!(found[0].3.contains("echo 'age1"), "{found:?}");
    assert!(found[1].3.contains("install -d -m 0700"), "{found:?}");
    // The private key where the public key belongs: an error that says so.
    let (key, recipient) = t.age_key("etc/key.txt");
    fs::copy(&key, &recipients).unwrap();
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
    let found = job(1);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].2.contains("private key"), "{found:?}");
    // Others could add their key, or delete archives: warnings.
    fs::write(&recipients, format!("{recipient}\n")).unwrap();
    fs::set_permissions(&recipients, fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let found = job(3);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .all(|f| f.1 == "warning" && f.3.starts_with("chmod go-w")),
        "{found:?}"
    );
    fs::set_permissions(&recipients, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o700)).unwrap();
    let o = fk(&["check", "--config", c]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "ok       {}  (recipients file (1 recipient(s)))",
            recipients.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("ok       {}/  (output folder)", out.display())),
        "{text}"
    );
    // The job really runs as checked.
    expect_code(&fk(&["backup", "--config", c]), 0);
    // A check with its own sources is an audit of those, not of the job.
    fs::remove_file(&recipients).unwrap();
    let o = fk(&["check", src.to_str().unwrap(), "--config", c, "--json"]);
    expect_code(&o, 0);
    assert!(json_of(&o).get("job").is_none());
}

#[test]
fn check_on_plain_paths_prints_each_item_regression_summary_only() {
    // Regression (issue 13): check on plain paths printed only the summary line; its
    // --help said PATHs are "stored"; a missing path said "nothing was archived".
    let t = TestDir::new();
    let clean = t.mkdir("clean", 0o700);
    t.write("clean/secret", SECRET_SETTING, 0o600);
    let open = t.mkdir("open", 0o700);
    t.write("open/secret", SECRET_SETTING, 0o644);
    let o = fk(&["check", clean.to_str().unwrap(), open.to_str().unwrap()]);
    expect_code(&o, 3);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "paths", "{text}");
    assert_eq!(
        lines[1],
        format!("  ok       {}", clean.display()),
        "{text}"
    );
    assert_eq!(lines[2], format!("  warning  {}", open.display()), "{text}");
    let help = stdout(&fk(&["check", "--help"]));
    assert!(!help.contains("stored"), "{help}");
    let o = fk(&["check", t.join("missing").to_str().unwrap()]);
    expect_code(&o, 1);
    assert!(!stderr(&o).contains("archived"), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}
