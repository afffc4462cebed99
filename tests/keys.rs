//! Round trips for every kind of key: age X25519, ssh-ed25519, ssh-rsa (plain and
//! passphrase-protected private keys), recipient files, passphrase archives and
//! passphrase-encrypted identity files; and the wrong key.

use crate::util::*;
use std::fs;
use std::io::Write;
use std::path::Path;

fn round_trip(
    td: &TestDir,
    recipient_args: &[&str],
    identity_args: &[&str],
    env: &[(&str, &Path)],
) {
    let tree = td.gitea_tree();
    let a = td.join("a.tar.zst.age");
    let mut args = vec!["backup", tree.to_str().unwrap(), "-o", a.to_str().unwrap()];
    args.extend(recipient_args);
    let mut c = fk_cmd(&args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let dest = td.join("dest");
    let mut args = vec![
        "restore",
        "--allow-untrusted",
        a.to_str().unwrap(),
        "--to",
        dest.to_str().unwrap(),
    ];
    args.extend(identity_args);
    let mut c = fk_cmd(&args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    expect_code(&o, 0);
    let copy = dest
        .join(tree.strip_prefix("/").unwrap())
        .join("jwt/private.pem");
    assert_eq!(
        fs::read(copy).unwrap(),
        fs::read(tree.join("jwt/private.pem")).unwrap()
    );
}

#[test]
fn age_x25519_round_trip() {
    let td = TestDir::new();
    let (key, r) = td.age_key("k.txt");
    assert_eq!(mode_of(&key), 0o600);
    round_trip(&td, &["-r", &r], &["-i", key.to_str().unwrap()], &[]);
}

#[test]
fn ssh_ed25519_round_trip() {
    let td = TestDir::new();
    let (key, public) = td.ssh_key("id_ed25519", "ed25519", "");
    round_trip(&td, &["-r", &public], &["-i", key.to_str().unwrap()], &[]);
}

#[test]
fn ssh_rsa_round_trip() {
    let td = TestDir::new();
    let (key, public) = td.ssh_key("id_rsa", "rsa", "");
    round_trip(&td, &["-r", &public], &["-i", key.to_str().unwrap()], &[]);
}

#[test]
fn encrypted_openssh_key_asks_for_its_passphrase() {
    let td = TestDir::new();
    let (key, public) = td.ssh_key("id_enc", "ed25519", "correct horse");
    let pass = td.write("pass.txt", b"correct horse\n", 0o600);
    round_trip(
        &td,
        &["-r", &public],
        &["-i", key.to_str().unwrap()],
        &[("FORGEKEEP_PASSPHRASE_FILE", &pass)],
    );
}

#[test]
fn recipients_file_like_authorized_keys() {
    let td = TestDir::new();
    let (key, public) = td.ssh_key("id_ed25519", "ed25519", "");
    let (_k2, r2) = td.age_key("other.txt");
    let file = td.write(
        "recipients",
        format!("# backup keys\n\ncommand=\"/bin/false\",no-pty {public}\n{r2}\necdsa-sha2-nistp256 AAAAE2VjZHNh test\n").as_bytes(),
        0o644,
    );
    round_trip(
        &td,
        &["-R", file.to_str().unwrap()],
        &["-i", key.to_str().unwrap()],
        &[],
    );
}

#[test]
fn several_recipients_each_open_the_archive() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k1, r1) = td.age_key("k1.txt");
    let (k2, public) = td.ssh_key("id2", "ed25519", "");
    let a = td.join("a.age");
    backup(&[&tree], &r1, &a, &["-r", &public]);
    for k in [&k1, &k2] {
        expect_code(
            &fk(&["verify", a.to_str().unwrap(), "-i", k.to_str().unwrap()]),
            0,
        );
    }
}

#[test]
fn passphrase_archive_round_trip_from_a_passphrase_file() {
    let td = TestDir::new();
    let pass = td.write("pass.txt", b"a long enough passphrase\n", 0o600);
    round_trip(
        &td,
        &["--passphrase"],
        &["--passphrase"],
        &[("FORGEKEEP_PASSPHRASE_FILE", &pass)],
    );
}

#[test]
fn passphrase_encrypted_identity_file_round_trip() {
    let td = TestDir::new();
    let (plain_key, r) = td.age_key("plain.txt");
    // Encrypt the identity file with a passphrase (what `age -p` does), cheaply.
    let mut recipient =
        age::scrypt::Recipient::new(age::secrecy::SecretString::from("idpass".to_string()));
    recipient.set_work_factor(10);
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .unwrap();
    let protected = td.join("protected.age");
    let mut w = enc
        .wrap_output(fs::File::create(&protected).unwrap())
        .unwrap();
    w.write_all(&fs::read(&plain_key).unwrap()).unwrap();
    w.finish().unwrap();
    fs::remove_file(&plain_key).unwrap();
    let pass = td.write("pass.txt", b"idpass\n", 0o600);
    round_trip(
        &td,
        &["-r", &r],
        &["-i", protected.to_str().unwrap()],
        &[("FORGEKEEP_PASSPHRASE_FILE", &pass)],
    );
}

#[test]
fn wrong_key_exits_5_and_writes_nothing() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (_k, r) = td.age_key("k.txt");
    let (wrong, _) = td.age_key("wrong.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &[]);
    let dest = td.join("dest");
    let o = restore(&a, &wrong, &["--root", dest.to_str().unwrap()]);
    expect_code(&o, 5);
    assert!(!dest.exists());
    assert_eq!(stderr(&o).lines().count(), 1, "one line: {}", stderr(&o));
    expect_code(
        &fk(&["verify", a.to_str().unwrap(), "-i", wrong.to_str().unwrap()]),
        5,
    );
}

#[test]
fn wrong_passphrase_exits_5() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let a = td.join("a.age");
    let pass = td.write("p1", b"first passphrase\n", 0o600);
    let o = fk_cmd(&[
        "backup",
        tree.to_str().unwrap(),
        "--passphrase",
        "-o",
        a.to_str().unwrap(),
    ])
    .env("FORGEKEEP_PASSPHRASE_FILE", &pass)
    .output()
    .unwrap();
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let wrong = td.write("p2", b"second passphrase\n", 0o600);
    let o = fk_cmd(&["verify", a.to_str().unwrap(), "--passphrase"])
        .env("FORGEKEEP_PASSPHRASE_FILE", &wrong)
        .output()
        .unwrap();
    expect_code(&o, 5);
    assert!(!stderr(&o).contains("second passphrase"));
}

#[test]
fn bad_recipients_are_usage_errors_with_a_hint() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let a = td.join("a.age");
    for bad in ["age1notakey", "ssh-ed25519 AAAA", "AGE-SECRET-KEY-1QQQ"] {
        let o = fk(&[
            "backup",
            tree.to_str().unwrap(),
            "-r",
            bad,
            "-o",
            a.to_str().unwrap(),
        ]);
        expect_code(&o, 2);
        assert!(stderr(&o).contains("hint"), "{}", stderr(&o));
        assert!(!a.exists());
    }
}

#[test]
fn keygen_never_overwrites() {
    let td = TestDir::new();
    let (key, _) = td.age_key("k.txt");
    let before = fs::read(&key).unwrap();
    let o = fk(&["keygen", "-o", key.to_str().unwrap()]);
    expect_code(&o, 1);
    assert_eq!(fs::read(&key).unwrap(), before);
}

#[test]
fn keygen_note_is_true_for_a_verification_key_kept_on_the_host() {
    // Regression: keygen -o /etc/forgekeep/verify-identity.txt said "keep it OFF the
    // backed-up host", contradicting contrib/'s on-host verification key.
    let td = TestDir::new();
    let key = td.join("verify-identity.txt");
    let o = fk(&["keygen", "-o", key.to_str().unwrap()]);
    expect_code(&o, 0);
    let err = stderr(&o);
    assert!(!err.to_lowercase().contains("off the"), "{err}");
    assert!(
        err.contains("private key") && err.contains("recipient"),
        "{err}"
    );
    assert!(stdout(&o).trim().starts_with("age1"));
}

#[test]
fn a_public_key_given_as_identity_is_named_as_such() {
    // Regression (issue 13): a recipients file or a .pub as -i said only "no identity found".
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (_key, recipient) = td.age_key("key.txt");
    let (_ssh, ssh_public) = td.ssh_key("id_ed25519", "ed25519", "");
    let a = td.join("a.age");
    backup(&[&tree], &recipient, &a, &[]);
    let recipients = td.write(
        "recipients",
        format!("# ops\n{recipient}\n{ssh_public}\n").as_bytes(),
        0o644,
    );
    for (public, hint) in [
        (recipients, "AGE-SECRET-KEY-1"),
        (td.join("id_ed25519.pub"), "without .pub"),
    ] {
        let o = fk(&[
            "verify",
            a.to_str().unwrap(),
            "-i",
            public.to_str().unwrap(),
        ]);
        expect_code(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains("this is a public key") && err.contains("-i needs the private key"),
            "{err}"
        );
        assert!(err.contains(hint), "{err}");
    }
}

#[test]
fn the_key_and_the_archive_swapped_are_named_as_such() {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (key, recipient) = td.age_key("key.txt");
    let (ssh, ssh_public) = td.ssh_key("id_ed25519", "ed25519", "");
    let a = td.join("a.age");
    backup(&[&tree], &recipient, &a, &["-r", &ssh_public]);
    let (a, key, ssh) = (
        a.to_str().unwrap(),
        key.to_str().unwrap(),
        ssh.to_str().unwrap(),
    );
    for args in [
        vec!["restore", "--allow-untrusted", key, "-i", a, "--dry-run"],
        vec!["verify", key, "-i", key],
        vec!["list", ssh, "-i", ssh],
        vec!["diff", key, "-i", a],
    ] {
        let o = fk(&args);
        expect_code(&o, 2);
        let err = stderr(&o);
        assert!(err.contains("swapped"), "{args:?}: {err}");
        assert!(err.contains("ARCHIVE -i KEY"), "{args:?}: {err}");
    }
    expect_code(&fk(&["verify", a, "-i", ssh]), 0);
}
