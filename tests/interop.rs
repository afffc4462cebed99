//! Interoperability: our archives open with the real `age`, `zstd`, GNU `tar` and
//! `sha256sum`, exactly as the README's "forgekeep is gone" recipe says.

use crate::util::*;
use std::fs;

#[test]
fn archive_opens_with_age_zstd_tar_and_sha256sum() {
    for t in ["age", "zstd", "tar", "sha256sum"] {
        require(t);
    }
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.tar.zst.age");
    backup(&[&tree], &r, &a, &[]);
    let x = td.mkdir("x", 0o700);
    let o = sh(&format!(
        "age -d -i {} {} | zstd -dq | tar -x -C {}",
        k.display(),
        a.display(),
        x.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sh(&format!(
        "cd {} && sha256sum --quiet -c forgekeep/SHA256SUMS",
        x.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let first = sh(&format!(
        "age -d -i {} {} | zstd -dq | tar -t | head -1",
        k.display(),
        a.display()
    ));
    assert_eq!(stdout(&first).trim(), "forgekeep/manifest.json");
    let last = sh(&format!(
        "age -d -i {} {} | zstd -dq | tar -t | tail -1",
        k.display(),
        a.display()
    ));
    assert_eq!(stdout(&last).trim(), "forgekeep/SHA256SUMS");
    let copy = x
        .join(tree.strip_prefix("/").unwrap())
        .join("jwt/private.pem");
    assert_eq!(
        fs::read(copy).unwrap(),
        fs::read(tree.join("jwt/private.pem")).unwrap()
    );
    // Owner names are in the headers for GNU tar.
    let v = sh(&format!(
        "age -d -i {} {} | zstd -dq | tar -tv | grep private.pem",
        k.display(),
        a.display()
    ));
    let owner = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    assert!(stdout(&v).contains(&owner), "{}", stdout(&v));
}

#[test]
fn armored_archive_opens_with_age() {
    require("age");
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.age");
    backup(&[&tree], &r, &a, &["--armor"]);
    let o = sh(&format!(
        "age -d -i {} {} | zstd -dq | tar -t >/dev/null",
        k.display(),
        a.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn ssh_key_made_archive_opens_with_age() {
    require("age");
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (key, public) = td.ssh_key("id_ed25519", "ed25519", "");
    let a = td.join("a.age");
    backup(&[&tree], &public, &a, &[]);
    let o = sh(&format!(
        "age -d -i {} {} | zstd -dq | tar -t >/dev/null",
        key.display(),
        a.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn age_cli_identity_opens_our_archive_through_forgekeep() {
    require("age-keygen");
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let key = td.join("agekey.txt");
    run_ok(std::process::Command::new("age-keygen").args(["-o", key.to_str().unwrap()]));
    let r = stdout(&run_ok(
        std::process::Command::new("age-keygen").args(["-y", key.to_str().unwrap()]),
    ));
    let a = td.join("a.age");
    backup(&[&tree], r.trim(), &a, &[]);
    expect_code(
        &fk(&["verify", a.to_str().unwrap(), "-i", key.to_str().unwrap()]),
        0,
    );
}

/// The writer stores data that does not compress (zstd jobs at its fastest level, raw
/// blocks) and compresses the rest: an archive mixing both is still one stream that the
/// real `age`, `zstd` and GNU `tar` read, with every byte right, and only the part that
/// compresses shrinks.
#[test]
fn archive_mixing_random_and_text_files_opens_with_age_zstd_tar() {
    for t in ["age", "zstd", "tar", "sha256sum"] {
        require(t);
    }
    let td = TestDir::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let text = |n: usize| -> Vec<u8> {
        b"[oauth2]\nJWT_SECRET = woodpecker gitea runner\n"
            .iter()
            .copied()
            .cycle()
            .take(n)
            .collect()
    };
    // Files of about 1.5 MiB, alternating: zstd's 1 MiB jobs hold one kind alone, and
    // both kinds; small files in between.
    let mut random_bytes = 0;
    for i in 0..6 {
        let n = 1_500_000 + 977 * i;
        let data = if i % 2 == 0 {
            text(n)
        } else {
            random_bytes += n;
            noise(n)
        };
        td.write(&format!("data/f{i}"), &data, 0o600);
        td.write(&format!("data/small{i}"), &text(100 + i), 0o600);
    }
    let tree = td.join("data");
    let (k, r) = td.age_key("k.txt");
    let a = td.join("a.tar.zst.age");
    backup(&[&tree], &r, &a, &[]);
    let size = fs::metadata(&a).unwrap().len() as usize;
    assert!(
        size > random_bytes && size < random_bytes + random_bytes / 50,
        "archive of {size} bytes for {random_bytes} random bytes and 4.5 MB of text"
    );
    let x = td.mkdir("x", 0o700);
    let o = sh(&format!(
        "age -d -i {} {} | zstd -dq | tar -x -C {} && cd {} && sha256sum --quiet -c forgekeep/SHA256SUMS",
        k.display(),
        a.display(),
        x.display(),
        x.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sh(&format!(
        "diff -r {} {}",
        tree.display(),
        x.join(tree.strip_prefix("/").unwrap()).display()
    ));
    assert!(o.status.success(), "{}", stdout(&o));
}
