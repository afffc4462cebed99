//! The progress bar: on a terminal for big archives, never otherwise (cron mails and
//! systemd journals must not fill with carriage returns).

use crate::util::*;
use std::process::Command;

fn big_tree(t: &TestDir) -> std::path::PathBuf {
    // Above the 32 MiB threshold, incompressible so the bar has time to draw.
    let data: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    t.write("big/blob", &data, 0o600);
    t.join("big")
}

#[test]
fn no_progress_when_stderr_is_not_a_terminal() {
    let t = TestDir::new();
    let tree = big_tree(&t);
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.age");
    let o = backup(&[&tree], &recipient, &archive, &[]);
    assert!(
        !stderr(&o).contains('\r') && !stderr(&o).contains("eta"),
        "{:?}",
        stderr(&o)
    );
    let r = restore(&archive, &key, &["--to", t.join("out").to_str().unwrap()]);
    expect_code(&r, 0);
    assert!(
        !stderr(&r).contains('\r') && !stderr(&r).contains("eta"),
        "{:?}",
        stderr(&r)
    );
}

#[test]
fn progress_on_a_terminal_but_not_with_quiet_or_json() {
    require("script");
    let t = TestDir::new();
    let tree = big_tree(&t);
    let (_key, recipient) = t.age_key("key.txt");
    // script(1) gives the command a pseudo-terminal, as an operator's shell would.
    let run = |extra: &str, name: &str| {
        let cmd = format!(
            "FORGEKEEP_CONFIG=/dev/null {BIN} backup {} -r {recipient} -o {} {extra}",
            tree.display(),
            t.join(name).display()
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = run("", "a.age");
    assert!(
        shown.contains("backup [") && shown.contains("MiB"),
        "{shown:?}"
    );
    let quiet = run("-q", "b.age");
    assert!(!quiet.contains("backup ["), "{quiet:?}");
    let json = run("--json", "c.age");
    assert!(!json.contains("backup ["), "{json:?}");
}
