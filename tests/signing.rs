//! Signed archives (README "Trust"): the backup host signs, a restore proves who made
//! the archive before it writes anything. Keys are made by `forgekeep keygen --sign` and
//! by the real `ssh-keygen`; the signatures are checked both ways with `ssh-keygen -Y`.
//! These tests call `forgekeep restore` directly (never `util::restore`, which consents
//! for the other tests): the trust rule itself is under test here.

use crate::hostile::{
    decrypt_tar, edit_manifest, encrypt_tar, pack, parse_members, pos, sha256_hex, Member,
    MANIFEST, SUMS,
};
use crate::util::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const MANIFEST_SIG: &str = "forgekeep/manifest.json.sig";
const SUMS_SIG: &str = "forgekeep/SHA256SUMS.sig";

/// The host name the manifest records (and the trust file must name).
fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

struct Signed {
    td: TestDir,
    tree: PathBuf,
    key: PathBuf,
    recipient: String,
    sign_key: PathBuf,
    /// `ssh-ed25519 AAAA…` of the signing key.
    public: String,
    /// A trust file listing the signing key for this host.
    trust: PathBuf,
    archive: PathBuf,
}

fn public_of(key: &Path) -> String {
    let o =
        run_ok(std::process::Command::new("ssh-keygen").args(["-y", "-f", key.to_str().unwrap()]));
    stdout(&o)
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn signed() -> Signed {
    require("ssh-keygen");
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (key, recipient) = td.age_key("key.txt");
    let sign_key = td.join("signing-key");
    let o = fk(&["keygen", "--sign", "-o", sign_key.to_str().unwrap()]);
    expect_code(&o, 0);
    let public = public_of(&sign_key);
    let trust = td.write(
        "allowed_signers",
        stdout(&o).as_bytes(), // the line keygen printed, as the README says to use it
        0o644,
    );
    let archive = td.join("signed.tar.zst.age");
    backup(
        &[&tree],
        &recipient,
        &archive,
        &["--sign", sign_key.to_str().unwrap()],
    );
    Signed {
        td,
        tree,
        key,
        recipient,
        sign_key,
        public,
        trust,
        archive,
    }
}

impl Signed {
    fn trust_file(&self, name: &str, line: &str) -> PathBuf {
        self.td.write(name, format!("{line}\n").as_bytes(), 0o644)
    }

    fn members(&self) -> Vec<Member> {
        parse_members(&decrypt_tar(&self.archive, &self.key))
    }

    /// The signed archive re-packed as `name` after `edit`.
    fn repacked(&self, name: &str, edit: impl FnOnce(&mut Vec<Member>)) -> PathBuf {
        let mut m = self.members();
        edit(&mut m);
        let out = self.td.join(name);
        encrypt_tar(&pack(&m), &self.recipient, &out);
        out
    }

    fn run(&self, cmd: &[&str], archive: &Path, extra: &[&str]) -> std::process::Output {
        let mut args = cmd.to_vec();
        args.extend([archive.to_str().unwrap(), "-i", self.key.to_str().unwrap()]);
        args.extend(extra);
        fk(&args)
    }

    fn fingerprint(&self) -> String {
        let o = run_ok(std::process::Command::new("ssh-keygen").args([
            "-l",
            "-f",
            self.sign_key.to_str().unwrap(),
        ]));
        // "256 SHA256:… comment (ED25519)"
        stdout(&o).split_whitespace().nth(1).unwrap().to_string()
    }
}

/// What a run printed, on either stream (human text goes to stdout, errors to stderr).
fn text(o: &std::process::Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// Nothing at all under `dir` (the restore wrote nothing, not even a folder).
#[track_caller]
fn empty(dir: &Path) {
    let names = names_in(dir);
    assert!(names.is_empty(), "{} holds {names:?}", dir.display());
}

#[test]
fn keygen_sign_writes_an_openssh_key_once_and_prints_its_trust_line() {
    require("ssh-keygen");
    let td = TestDir::new();
    let k = td.join("k");
    let o = fk(&["keygen", "--sign", "-o", k.to_str().unwrap()]);
    expect_code(&o, 0);
    assert_eq!(mode_of(&k), 0o600);
    let line = stdout(&o);
    let public = public_of(&k);
    assert_eq!(
        line.trim(),
        format!("{} namespaces=\"forgekeep\" {public}", host())
    );
    let before = fs::read(&k).unwrap();
    let again = fk(&["keygen", "--sign", "-o", k.to_str().unwrap()]);
    expect_code(&again, 1);
    assert!(
        stderr(&again).contains("never overwritten"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs::read(&k).unwrap(), before);
    let v = json_of(&fk(&[
        "keygen",
        "--sign",
        "-o",
        td.join("k2").to_str().unwrap(),
        "--json",
    ]));
    assert!(v["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("ED25519 SHA256:"));
    assert!(v["trust_line"].as_str().unwrap().contains("ssh-ed25519 "));
    assert!(!v.to_string().contains("PRIVATE KEY"));
}

#[test]
fn a_signed_archive_round_trips_and_names_its_signer() {
    let s = signed();
    let fp = s.fingerprint();
    // Without a trust file: the signature is checked, the key named, "not authenticated".
    let o = s.run(&["verify"], &s.archive, &[]);
    expect_code(&o, 0);
    assert!(
        text(&o).contains(&format!(
            "signed by ED25519 {fp} (not checked against a trust file"
        )),
        "{}",
        text(&o)
    );
    // With it: who signed, as the issue words it.
    let o = s.run(
        &["verify"],
        &s.archive,
        &["--trust", s.trust.to_str().unwrap()],
    );
    expect_code(&o, 0);
    assert!(
        text(&o).contains(&format!("signed by {}, ED25519 {fp}", host())),
        "{}",
        text(&o)
    );
    for cmd in ["verify", "list", "diff"] {
        let v = json_of(&s.run(
            &[cmd],
            &s.archive,
            &["--trust", s.trust.to_str().unwrap(), "--json"],
        ));
        assert_eq!(v["signature"]["signed"], true, "{cmd}: {v}");
        assert_eq!(v["signature"]["trusted"], true, "{cmd}: {v}");
        assert_eq!(v["signature"]["key"], format!("ED25519 {fp}"), "{cmd}: {v}");
        assert_eq!(v["signature"]["principal"], host(), "{cmd}: {v}");
    }
    // A trusted archive restores into the live tree with no consent asked.
    let dest = s.td.mkdir("dest", 0o755);
    let o = s.run(
        &["restore"],
        &s.archive,
        &[
            "--trust",
            s.trust.to_str().unwrap(),
            "--root",
            dest.to_str().unwrap(),
            "--json",
        ],
    );
    expect_code(&o, 0);
    assert_eq!(json_of(&o)["signature"]["trusted"], true);
    let restored = dest
        .join(s.tree.strip_prefix("/").unwrap())
        .join("jwt/private.pem");
    assert_eq!(
        fs::read(&restored).unwrap(),
        fs::read(s.tree.join("jwt/private.pem")).unwrap()
    );
    // backup said which key signed it.
    let v = json_of(&fk(&[
        "backup",
        s.tree.to_str().unwrap(),
        "-r",
        &s.recipient,
        "--sign",
        s.sign_key.to_str().unwrap(),
        "-o",
        s.td.join("again.age").to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["signed_by"], format!("ED25519 {fp}"));
}

#[test]
fn plain_age_zstd_tar_sha256sum_and_ssh_keygen_prove_a_signed_archive() {
    require("age");
    let s = signed();
    let x = s.td.mkdir("x", 0o700);
    let script = format!(
        "set -e; age -d -i {key} {a} | zstd -dq | tar -x -C {x}; cd {x}; \
         sha256sum --quiet -c forgekeep/SHA256SUMS; \
         ssh-keygen -Y verify -f {t} -I {host} -n forgekeep -s forgekeep/SHA256SUMS.sig < forgekeep/SHA256SUMS; \
         sha256sum forgekeep/manifest.json | ssh-keygen -Y verify -f {t} -I {host} -n forgekeep -s forgekeep/manifest.json.sig",
        key = s.key.display(),
        a = s.archive.display(),
        x = x.display(),
        t = s.trust.display(),
        host = host()
    );
    let o = sh(&script);
    expect_code(&o, 0);
    assert!(
        stdout(&o).contains("Good \"forgekeep\" signature"),
        "{}",
        stdout(&o)
    );
    // SHA256SUMS lists the manifest: a changed manifest fails sha256sum -c too.
    let sums = fs::read_to_string(x.join("forgekeep/SHA256SUMS")).unwrap();
    assert!(
        sums.lines()
            .next()
            .unwrap()
            .ends_with("  forgekeep/manifest.json"),
        "{sums}"
    );
}

#[test]
fn signatures_made_by_ssh_keygen_verify_in_forgekeep() {
    let s = signed();
    let scratch = s.td.mkdir("sig", 0o700);
    let archive = s.repacked("by-ssh-keygen.age", |m| {
        let sign = |name: &str, msg: &[u8]| -> Vec<u8> {
            let f = scratch.join(name);
            fs::write(&f, msg).unwrap();
            run_ok(std::process::Command::new("ssh-keygen").args([
                "-Y",
                "sign",
                "-f",
                s.sign_key.to_str().unwrap(),
                "-n",
                "forgekeep",
                f.to_str().unwrap(),
            ]));
            fs::read(scratch.join(format!("{name}.sig"))).unwrap()
        };
        let manifest_line = format!("{}  {MANIFEST}\n", sha256_hex(&m[pos(m, MANIFEST)].data));
        let i = pos(m, MANIFEST_SIG);
        m[i].data = sign("manifest-line", manifest_line.as_bytes());
        let sums = m[pos(m, SUMS)].data.clone();
        let i = pos(m, SUMS_SIG);
        m[i].data = sign("sums", &sums);
    });
    let o = s.run(
        &["verify"],
        &archive,
        &["--trust", s.trust.to_str().unwrap()],
    );
    expect_code(&o, 0);
    assert!(
        text(&o).contains(&format!("signed by {},", host())),
        "{}",
        text(&o)
    );
}

/// Each way an archive fails the trust file: exit 4 for verify, list, diff and restore,
/// a one-line reason, and nothing written by the restore.
#[test]
fn every_refusal_exits_4_and_restore_writes_nothing() {
    let s = signed();
    let other = s.td.join("other-key");
    expect_code(&fk(&["keygen", "--sign", "-o", other.to_str().unwrap()]), 0);
    let other_public = public_of(&other);
    let unsigned = s.td.join("unsigned.age");
    backup(&[&s.tree], &s.recipient, &unsigned, &[]);
    // New content, SHA256SUMS recomputed, the old signatures kept.
    let content = s.repacked("content.age", |m| {
        let i = pos(m, "jwt/private.pem");
        let n = m[i].data.len();
        m[i].data = vec![b'x'; n];
        let sums = String::from_utf8(m[pos(m, SUMS)].data.clone()).unwrap();
        let fixed: String = sums
            .lines()
            .map(|l| {
                if l.ends_with("jwt/private.pem") {
                    format!(
                        "{}  {}\n",
                        sha256_hex(&vec![b'x'; n]),
                        l.split_once("  ").unwrap().1
                    )
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let j = pos(m, SUMS);
        m[j].data = fixed.into_bytes();
    });
    // The manifest edited (a mode), its SHA256SUMS line recomputed, old signatures kept.
    let manifest = s.repacked("manifest.age", |m| {
        edit_manifest(m, |j| {
            for e in j["entries"].as_array_mut().unwrap() {
                if e["path"].as_str().unwrap().ends_with("jwt/private.pem") {
                    e["mode"] = "0644".into();
                }
            }
        });
        let i = pos(m, "jwt/private.pem");
        m[i].header.set_mode(0o644);
    });
    let line = |opts: &str, principal: &str, key: &str| {
        if opts.is_empty() {
            format!("{principal} {key}")
        } else {
            format!("{principal} {opts} {key}")
        }
    };
    let h = host();
    let cases: Vec<(&str, PathBuf, PathBuf, &str)> = vec![
        ("unsigned", unsigned.clone(), s.trust.clone(), "not signed"),
        (
            "content changed after signing",
            content,
            s.trust.clone(),
            "changed after it was signed",
        ),
        (
            "manifest changed after signing",
            manifest,
            s.trust.clone(),
            "manifest.json.sig",
        ),
        (
            "a key the file does not list",
            s.archive.clone(),
            s.trust_file("t-other", &line("", &h, &other_public)),
            "is not in",
        ),
        (
            "a principal for another host",
            s.archive.clone(),
            s.trust_file("t-host", &line("", "other.example.org", &s.public)),
            "not for",
        ),
        (
            "another namespace",
            s.archive.clone(),
            s.trust_file("t-ns", &line("namespaces=\"git,file\"", &h, &s.public)),
            "namespaces",
        ),
        (
            "an expired key",
            s.archive.clone(),
            s.trust_file("t-old", &line("valid-before=\"20200101Z\"", &h, &s.public)),
            "only until",
        ),
        (
            "a key not yet valid",
            s.archive.clone(),
            s.trust_file("t-new", &line("valid-after=\"29990101Z\"", &h, &s.public)),
            "only from",
        ),
    ];
    for (what, archive, trust, says) in cases {
        let t = trust.to_str().unwrap();
        for cmd in ["verify", "list"] {
            let o = s.run(&[cmd], &archive, &["--trust", t]);
            expect_code(&o, 4);
            let err = stderr(&o);
            assert!(err.contains(says), "{what}: {cmd}: {err}");
            assert_eq!(
                err.lines().filter(|l| l.contains("error:")).count(),
                1,
                "{err}"
            );
        }
        let dest =
            s.td.mkdir(&format!("dest-{}", what.replace(' ', "-")), 0o755);
        let d = dest.to_str().unwrap();
        expect_code(&s.run(&["diff"], &archive, &["--trust", t, "--root", d]), 4);
        // Consent never overrides a trust file's refusal or a bad signature.
        for extra in [&[][..], &["--allow-untrusted"][..]] {
            let mut args = vec!["--trust", t, "--root", d];
            args.extend(extra);
            let o = s.run(&["restore"], &archive, &args);
            expect_code(&o, 4);
            empty(&dest);
        }
    }
}

#[test]
fn a_bad_signature_is_refused_without_a_trust_file_too() {
    let s = signed();
    let other = s.td.join("other-key");
    expect_code(&fk(&["keygen", "--sign", "-o", other.to_str().unwrap()]), 0);
    // SHA256SUMS re-signed by another key: the manifest's signer and its differ.
    let archive = s.repacked("mixed.age", |m| {
        let f = s.td.join("sums");
        fs::write(&f, &m[pos(m, SUMS)].data).unwrap();
        run_ok(std::process::Command::new("ssh-keygen").args([
            "-Y",
            "sign",
            "-f",
            other.to_str().unwrap(),
            "-n",
            "forgekeep",
            f.to_str().unwrap(),
        ]));
        let i = pos(m, SUMS_SIG);
        m[i].data = fs::read(s.td.join("sums.sig")).unwrap();
    });
    let o = s.run(&["verify"], &archive, &[]);
    expect_code(&o, 4);
    assert!(
        stderr(&o).contains("put together from two archives"),
        "{}",
        stderr(&o)
    );
    // A signature in another namespace (made for git): never an archive's.
    let archive = s.repacked("git-ns.age", |m| {
        let f = s.td.join("sums2");
        fs::write(&f, &m[pos(m, SUMS)].data).unwrap();
        run_ok(std::process::Command::new("ssh-keygen").args([
            "-Y",
            "sign",
            "-f",
            s.sign_key.to_str().unwrap(),
            "-n",
            "git",
            f.to_str().unwrap(),
        ]));
        let i = pos(m, SUMS_SIG);
        m[i].data = fs::read(s.td.join("sums2.sig")).unwrap();
    });
    let o = s.run(&["verify"], &archive, &[]);
    expect_code(&o, 4);
    assert!(stderr(&o).contains("namespace \"git\""), "{}", stderr(&o));
    // The SHA256SUMS signature dropped: cut, not silently "unsigned".
    let archive = s.repacked("cut.age", |m| {
        m.remove(pos(m, SUMS_SIG));
    });
    expect_code(&s.run(&["verify"], &archive, &[]), 4);
}

#[test]
fn an_unsigned_archive_needs_consent_to_write_into_the_live_tree() {
    let s = signed();
    // An archive as forgekeep wrote them before signing existed: no signature, and
    // SHA256SUMS without the manifest's line.
    let members = {
        let unsigned = s.td.join("unsigned.age");
        backup(&[&s.tree], &s.recipient, &unsigned, &[]);
        let mut m = parse_members(&decrypt_tar(&unsigned, &s.key));
        let i = pos(&m, SUMS);
        let text = String::from_utf8(m[i].data.clone()).unwrap();
        m[i].data = text
            .split_inclusive('\n')
            .filter(|l| !l.ends_with("  forgekeep/manifest.json\n"))
            .collect::<String>()
            .into_bytes();
        m
    };
    let old = s.td.join("before-signing.age");
    encrypt_tar(&pack(&members), &s.recipient, &old);
    let dest = s.td.mkdir("dest", 0o755);
    let d = dest.to_str().unwrap();

    // Refused without consent: exit 4, one line naming the sources, nothing written.
    let o = s.run(&["restore"], &old, &["--root", d]);
    expect_code(&o, 4);
    let err = stderr(&o);
    assert!(err.contains("no trust file vouches"), "{err}");
    assert!(
        err.contains(s.tree.to_str().unwrap()),
        "the sources are named: {err}"
    );
    assert!(err.contains("--allow-untrusted"), "{err}");
    empty(&dest);
    // And with a trust file: refused too, consent or not.
    let o = s.run(
        &["restore"],
        &old,
        &[
            "--root",
            d,
            "--trust",
            s.trust.to_str().unwrap(),
            "--allow-untrusted",
        ],
    );
    expect_code(&o, 4);
    empty(&dest);

    // Inspection needs no consent, and says what it is.
    for extra in [vec!["--to", d], vec!["--root", d, "--dry-run"]] {
        let o = s.run(&["restore"], &old, &extra);
        expect_code(&o, 0);
        assert!(text(&o).contains("not authenticated"), "{}", text(&o));
    }
    fs::remove_dir_all(&dest).unwrap();
    fs::create_dir(&dest).unwrap();
    let o = s.run(&["verify"], &old, &[]);
    expect_code(&o, 0);
    assert!(text(&o).contains("not authenticated"), "{}", text(&o));

    // With consent: the sources come first, then the restore goes through.
    let o = s.run(&["restore"], &old, &["--root", d, "--allow-untrusted"]);
    expect_code(&o, 0);
    let err = text(&o);
    let first_source = err
        .find("source (not authenticated)")
        .expect("sources shown");
    let first_step = err.find("create ").expect("plan shown");
    assert!(first_source < first_step, "{err}");
    assert!(dest
        .join(s.tree.strip_prefix("/").unwrap())
        .join("jwt/private.pem")
        .exists());
    // A signed archive whose key no trust file lists is as untrusted.
    let dest2 = s.td.mkdir("dest2", 0o755);
    let o = s.run(
        &["restore"],
        &s.archive,
        &["--root", dest2.to_str().unwrap()],
    );
    expect_code(&o, 4);
    assert!(
        stderr(&o).contains("a key no trust file was given for"),
        "{}",
        stderr(&o)
    );
    empty(&dest2);
}

#[test]
fn the_hosts_own_ssh_host_key_signs_and_an_ssh_keyscan_line_trusts_it() {
    require("ssh-keygen");
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (key, recipient) = td.age_key("key.txt");
    let host_key = td.join("ssh_host_ed25519_key");
    ssh_host_key(&host_key, "ed25519", &[]);
    let archive = td.join("a.age");
    backup(
        &[&tree],
        &recipient,
        &archive,
        &["--sign", host_key.to_str().unwrap()],
    );
    // What `ssh-keyscan -t ed25519 HOST` prints: "HOST ssh-ed25519 AAAA…".
    let pub_line = fs::read_to_string(td.join("ssh_host_ed25519_key.pub")).unwrap();
    let key_part = pub_line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let trust = td.write(
        "known",
        format!("{} {key_part}\n", host()).as_bytes(),
        0o644,
    );
    let dest = td.mkdir("dest", 0o755);
    let o = fk(&[
        "restore",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--root",
        dest.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
}

#[test]
fn a_passphrase_protected_signing_key_asks_for_its_passphrase() {
    require("ssh-keygen");
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (_key, recipient) = td.age_key("key.txt");
    let k = td.join("protected");
    run_ok(std::process::Command::new("ssh-keygen").args([
        "-q",
        "-t",
        "ed25519",
        "-N",
        "sign-pass",
        "-f",
        k.to_str().unwrap(),
    ]));
    let good = td.write("good", b"sign-pass\n", 0o600);
    let bad = td.write("bad", b"nope\n", 0o600);
    let run = |pass: &Path, out: &str| {
        fk_cmd(&[
            "backup",
            tree.to_str().unwrap(),
            "-r",
            &recipient,
            "--sign",
            k.to_str().unwrap(),
            "-o",
            td.join(out).to_str().unwrap(),
        ])
        .env("FORGEKEEP_PASSPHRASE_FILE", pass)
        .output()
        .unwrap()
    };
    let o = run(&good, "a.age");
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let o = run(&bad, "b.age");
    expect_code(&o, 5);
    assert!(!td.join("b.age").exists());
}

#[test]
fn verify_latest_with_a_trust_file_raises_the_alarm_on_a_forged_newest_archive() {
    let s = signed();
    let dir = s.td.mkdir("backups", 0o700);
    let h = host();
    fs::copy(
        &s.archive,
        dir.join(format!("forgekeep-{h}-20261101T030000Z.tar.zst.age")),
    )
    .unwrap();
    let o = s.run(
        &["verify", "--latest"],
        &dir,
        &["--trust", s.trust.to_str().unwrap()],
    );
    expect_code(&o, 0);
    // Someone who can write the folder drops a newer, unsigned archive.
    let forged = s.td.join("forged.age");
    backup(&[&s.tree], &s.recipient, &forged, &[]);
    fs::copy(
        &forged,
        dir.join(format!("forgekeep-{h}-20261102T030000Z.tar.zst.age")),
    )
    .unwrap();
    let o = s.run(
        &["verify", "--latest"],
        &dir,
        &["--trust", s.trust.to_str().unwrap()],
    );
    expect_code(&o, 4);
    assert!(stderr(&o).contains("not signed"), "{}", stderr(&o));
}

#[test]
fn the_undo_archive_is_signed_with_restore_sign_and_then_needs_no_consent() {
    let s = signed();
    let t = s.trust.to_str().unwrap();
    let jwt = s.tree.join("jwt/private.pem");
    let original = fs::read(&jwt).unwrap();
    fs::write(&jwt, b"a key the forge made meanwhile\n").unwrap();
    let undo_dir = s.td.mkdir("undo", 0o700);
    let o = s.run(
        &["restore"],
        &s.archive,
        &[
            "--trust",
            t,
            "--force",
            "--sign",
            s.sign_key.to_str().unwrap(),
            "--undo-dir",
            undo_dir.to_str().unwrap(),
        ],
    );
    expect_code(&o, 0);
    assert_eq!(fs::read(&jwt).unwrap(), original);
    let undo = only_archive(&undo_dir);
    let o = s.run(&["restore"], &undo, &["--trust", t, "--force"]);
    expect_code(&o, 0);
    assert_eq!(fs::read(&jwt).unwrap(), b"a key the forge made meanwhile\n");
}

#[test]
fn the_configuration_file_signs_and_trusts() {
    let s = signed();
    let out = s.td.mkdir("out", 0o700);
    let config = s.td.write(
        "config.toml",
        format!(
            "[sources]\npaths = [\"{}\"]\n[backup]\nrecipients = [\"{}\"]\noutput = \"{}/\"\nsign-key = \"{}\"\n[trust]\nsigners = \"{}\"\n",
            s.tree.display(),
            s.recipient,
            out.display(),
            s.sign_key.display(),
            s.trust.display()
        )
        .as_bytes(),
        0o600,
    );
    let c = config.to_str().unwrap();
    let o = fk(&["backup", "--config", c]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let archive = only_archive(&out);
    let dest = s.td.mkdir("dest", 0o755);
    let o = s.run(
        &["restore"],
        &archive,
        &["--config", c, "--root", dest.to_str().unwrap()],
    );
    expect_code(&o, 0);
    assert!(
        text(&o).contains(&format!("signed by {},", host())),
        "{}",
        text(&o)
    );
    // allow-untrusted = true is standing consent.
    let unsigned = s.td.join("unsigned.age");
    backup(&[&s.tree], &s.recipient, &unsigned, &[]);
    let consent =
        s.td.write("consent.toml", b"[trust]\nallow-untrusted = true\n", 0o600);
    let dest2 = s.td.mkdir("dest2", 0o755);
    let o = s.run(
        &["restore"],
        &unsigned,
        &[
            "--config",
            consent.to_str().unwrap(),
            "--root",
            dest2.to_str().unwrap(),
        ],
    );
    expect_code(&o, 0);
}

#[test]
fn a_signing_key_others_can_read_is_a_finding() {
    let s = signed();
    fs::set_permissions(
        &s.sign_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let o = fk(&[
        "backup",
        s.tree.to_str().unwrap(),
        "-r",
        &s.recipient,
        "--sign",
        s.sign_key.to_str().unwrap(),
        "-o",
        s.td.join("x.age").to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 3);
    let v: Value = json_of(&o);
    let f = findings_with(&v, "world-readable");
    assert!(
        f.iter().any(|f| f["path"] == s.sign_key.to_str().unwrap()),
        "{v}"
    );
    // check validates the configured job's signing key.
    let config = s.td.write(
        "config.toml",
        format!(
            "[sources]\npaths = [\"{}\"]\n[backup]\nrecipients = [\"{}\"]\noutput = \"{}/\"\nsign-key = \"{}\"\n",
            s.tree.display(),
            s.recipient,
            s.td.path().display(),
            s.sign_key.display()
        )
        .as_bytes(),
        0o600,
    );
    let o = fk(&["check", "--config", config.to_str().unwrap(), "--json"]);
    let v: Value = json_of(&o);
    assert!(
        findings_with(&v, "job-problem")
            .iter()
            .any(|f| f["path"] == s.sign_key.to_str().unwrap()),
        "{v}"
    );
    // A public key given as the signing key: a one-line usage error.
    let pubkey =
        s.td.write("pub", format!("{}\n", s.public).as_bytes(), 0o644);
    let o = fk(&[
        "backup",
        s.tree.to_str().unwrap(),
        "-r",
        &s.recipient,
        "--sign",
        pubkey.to_str().unwrap(),
        "-o",
        s.td.join("y.age").to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("public key"), "{}", stderr(&o));
}
