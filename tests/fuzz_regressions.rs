//! Inputs the fuzzers (`fuzz/`) found to crash, hang or exhaust memory, each run
//! through the real binary: the reader must answer with an error (or a result), never a
//! panic, an abort or a hang.

use crate::util::*;

#[test]
fn compose_interpolation_with_a_non_ascii_operator_is_an_error_not_a_panic() {
    // fuzz/compose: `${th` followed by a two-byte character; the operator was cut at
    // byte 1, inside the character (panic, exit 101).
    let td = TestDir::new();
    let file = td.write(
        "compose.yaml",
        "nfffff ${th\u{75e}\u{7d9}orgegitea:.SECRET:?v}\n".as_bytes(),
        0o644,
    );
    for yaml in [
        "services:\n  gitea:\n    image: gitea/gitea\n    environment:\n      A: ${th\u{75e}x}\n",
        "services:\n  gitea:\n    image: gitea/gitea\n    environment:\n      A: ${X:\u{e9}}\n",
    ] {
        let f = td.write("c2/compose.yaml", yaml.as_bytes(), 0o644);
        let out = fk(&["check", "--compose", f.to_str().unwrap()]);
        expect_code(&out, 2);
        assert!(
            stderr(&out).contains("invalid interpolation format"),
            "{}",
            stderr(&out)
        );
    }
    let out = fk(&["check", "--compose", file.to_str().unwrap()]);
    expect_code(&out, 2);
}

/// An `ssh-rsa` public key whose exponent is the SSH integer made of one zero byte:
/// age 0.12.1's parser indexes past its end (`ssh.rs`, `mpint`).
const ZERO_MPINT_RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAABAAAAAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ== fuzz";

#[test]
fn ssh_key_with_an_all_zero_integer_is_an_error_not_a_panic() {
    // fuzz/recipients: a recipients line (or -r) with that key panicked inside age
    // (exit 101, a backtrace on stderr); now it is the usual one-line error, exit 2.
    let td = TestDir::new();
    let src = td.write("secret", b"x\n", 0o600);
    let file = td.write(
        "recipients",
        format!("# authorized_keys\n{ZERO_MPINT_RSA}\n").as_bytes(),
        0o644,
    );
    let out_path = td.join("a.age");
    let (s, o) = (src.to_str().unwrap(), out_path.to_str().unwrap());
    for args in [
        vec!["backup", s, "-r", ZERO_MPINT_RSA, "-o", o],
        vec!["backup", s, "-R", file.to_str().unwrap(), "-o", o],
    ] {
        let out = fk(&args);
        expect_code(&out, 2);
        assert!(
            stderr(&out).contains("not a usable SSH public key"),
            "{}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        assert!(!out_path.exists());
    }
}

#[test]
fn trust_file_time_with_a_multibyte_character_is_an_error_not_a_panic() {
    // fuzz/trust: a valid-after value whose last character before `Z` is two bytes long;
    // the UTC suffix was cut inside it (panic, exit 101).
    let td = TestDir::new();
    let (key, _) = td.age_key("key.txt");
    let trust = td.write(
        "allowed_signers",
        "git valid-after=\"2026010\u{3a5}Z\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOiKKC7lLUcyvJMo1gjvMr56XvOq814Hhin0OCYFAoT4\n"
            .as_bytes(),
        0o644,
    );
    let out = fk(&[
        "verify",
        td.join("any.tar.zst.age").to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
    ]);
    expect_code(&out, 2);
    assert!(
        stderr(&out).contains("line 1: invalid \"valid-after\" time"),
        "{}",
        stderr(&out)
    );
}
