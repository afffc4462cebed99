//! Hostile tar layers: extension headers that would cost memory before any check, and
//! archives that forgekeep and GNU tar could read differently (the README's recovery
//! path is `age -d | zstd -d | tar -x`, so such an archive is unsafe). Each case is the
//! genuine archive with raw tar bytes spliced in; each shows with the real GNU tar that
//! GNU tar sees something the manifest does not say, then that forgekeep refuses it.

use crate::hostile::*;
use crate::util::*;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use tar::EntryType;

/// The members packed without the end-of-archive blocks, so pieces can be spliced.
fn body(members: &[Member]) -> Vec<u8> {
    let mut t = pack(members);
    t.truncate(t.len() - 1024);
    t
}

/// A raw member: `template`'s header with `name`, `kind` and `size` written in, then
/// `data` padded to a block. Nothing is checked: that is the point.
fn raw(template: &tar::Header, name: &[u8], kind: u8, size: u64, data: &[u8]) -> Vec<u8> {
    let mut h = template.clone();
    put_name(&mut h.as_old_mut().name, name);
    h.set_entry_type(EntryType::new(kind));
    h.set_size(size);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

/// PAX records `LEN KEY=VALUE\n`.
fn pax_records(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = 3 + k.len() + v.len(); // ' ', '=', '\n'
        let mut len = body + 1;
        while len.to_string().len() + body != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// A PAX (`x`, or `g` for global) header carrying `records`.
fn pax(template: &tar::Header, kind: u8, records: &[(&str, &[u8])]) -> Vec<u8> {
    let data = pax_records(records);
    raw(template, b"././@PaxHeader", kind, data.len() as u64, &data)
}

/// The genuine archive with `splice(members)` inserted before the member whose path
/// ends with `before`, and that member replaced by `replace` when given.
fn spliced(
    fx: &Fx,
    before: &str,
    splice: impl FnOnce(&Fx, &[Member]) -> Vec<u8>,
    replace: bool,
) -> Vec<u8> {
    let members = fx.members();
    let i = pos(&members, before);
    let mut tar = body(&members[..i]);
    tar.extend(splice(fx, &members));
    tar.extend(body(&members[if replace { i + 1 } else { i }..]));
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

/// `tar -tv --numeric-owner` of `tar_bytes` by the real GNU tar (its stdout, lossy).
fn gnu_tar_listing(fx: &Fx, tar_bytes: &[u8]) -> String {
    require("tar");
    let f = fx.td.join("plain.tar");
    fs::write(&f, tar_bytes).unwrap();
    let out = Command::new("tar")
        .args(["-tv", "--numeric-owner", "-f"])
        .arg(&f)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Encrypts `tar_bytes` as `name` and checks that verify, restore and restore --force
/// refuse it (exit 4), changing nothing.
fn refused(fx: &Fx, name: &str, tar_bytes: &[u8], what: &str) -> PathBuf {
    let a = fx.td.join(name);
    encrypt_tar(tar_bytes, &fx.recipient, &a);
    fx.assert_refused(&a, 4, what);
    a
}

fn pem_member(members: &[Member]) -> &Member {
    &members[pos(members, "jwt/private.pem")]
}

// ---------------------------------------------------------------------------------------
// Extension headers: capped before they are read

/// A zstd stream of `prefix`, then an extension header of kind `kind` declaring
/// `declared` bytes, then that many zeros, then `suffix`: 1 GiB of zeros compresses to
/// a few KiB, so the archive is small and the header is all the cost.
fn bomb(fx: &Fx, name: &str, kind: u8, declared: u64) -> PathBuf {
    let members = fx.members();
    let i = pos(&members, "jwt/private.pem");
    let mut z = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    z.write_all(&body(&members[..i])).unwrap();
    let header = raw(&members[i].header, b"././@LongLink", kind, declared, b"");
    z.write_all(&header).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(declared >> 20) {
        z.write_all(&zeros).unwrap();
    }
    z.write_all(&body(&members[i..])).unwrap();
    z.write_all(&[0u8; 1024]).unwrap();
    let zst = z.finish().unwrap();
    let a = fx.td.join(name);
    encrypt_raw(&zst, &fx.recipient, &a);
    a
}

#[test]
fn huge_extension_headers_are_refused_before_they_are_read() {
    // A GNU long name, long link or PAX header declaring 1 GiB (a few KiB compressed).
    // Under a 512 MiB address-space limit a reader that buffers it dies (the old one
    // took 1.5 GiB of RSS); this one refuses it unread, exit 4.
    let fx = fixture();
    for (kind, what) in [
        (b'L', "GNU long name"),
        (b'K', "GNU long link"),
        (b'x', "PAX header"),
    ] {
        let a = bomb(&fx, "bomb.tar.zst.age", kind, 1 << 30);
        assert!(
            fs::metadata(&a).unwrap().len() < 2 << 20,
            "{what}: the bomb should be small"
        );
        for cmd in ["verify", "list", "restore"] {
            let script = format!(
                "ulimit -v 524288; exec \"$0\" {cmd} \"$1\" -i \"$2\" {}",
                if cmd == "restore" {
                    "--root \"$3\" --allow-untrusted"
                } else {
                    ""
                }
            );
            let out = Command::new("bash")
                .args(["-c", &script, BIN])
                .arg(&a)
                .arg(&fx.key)
                .arg(&fx.dest)
                .env("FORGEKEEP_CONFIG", "/dev/null")
                .output()
                .unwrap();
            expect_code(&out, 4);
            assert!(
                stderr(&out).contains(what) && stderr(&out).contains("bytes"),
                "{what}: {cmd} says why: {}",
                stderr(&out)
            );
        }
        assert_empty_dest(&fx.dest, what);
    }
}

// ---------------------------------------------------------------------------------------
// Archives GNU tar reads differently

#[test]
fn folder_whose_pax_size_hides_a_member_is_refused() {
    // The `jwt` folder gets a PAX size covering a whole member: GNU tar never skips a
    // folder's data and extracts the member hidden in it; a reader that honoured the
    // PAX size skipped it and said OK.
    let fx = fixture();
    let tar = spliced(
        &fx,
        "/jwt",
        |fx, m| {
            let dir = &m[pos(m, "/jwt")];
            let hidden_name = format!("{}/jwt/EVIL-hidden", fx.src_rel());
            let hidden = raw(
                &pem_member(m).header,
                hidden_name.as_bytes(),
                b'0',
                5,
                b"evil\n",
            );
            let mut out = pax(
                &dir.header,
                b'x',
                &[("size", hidden.len().to_string().as_bytes())],
            );
            out.extend(raw(&dir.header, &dir.path, b'5', 0, b""));
            out.extend(hidden);
            out
        },
        true,
    );
    let gnu = gnu_tar_listing(&fx, &tar);
    assert!(
        gnu.contains("jwt/EVIL-hidden"),
        "GNU tar sees the hidden member:\n{gnu}"
    );
    refused(&fx, "hidden.tar.zst.age", &tar, "folder with a PAX size");
}

#[test]
fn folder_with_data_is_refused() {
    // The same with the size in the folder's own header.
    let fx = fixture();
    let tar = spliced(
        &fx,
        "/jwt",
        |fx, m| {
            let dir = &m[pos(m, "/jwt")];
            let hidden_name = format!("{}/jwt/EVIL-hidden", fx.src_rel());
            let hidden = raw(
                &pem_member(m).header,
                hidden_name.as_bytes(),
                b'0',
                5,
                b"evil\n",
            );
            let mut out = raw(&dir.header, &dir.path, b'5', hidden.len() as u64, b"");
            out.extend(hidden);
            out
        },
        true,
    );
    let gnu = gnu_tar_listing(&fx, &tar);
    assert!(
        gnu.contains("jwt/EVIL-hidden"),
        "GNU tar sees the hidden member:\n{gnu}"
    );
    refused(&fx, "dirdata.tar.zst.age", &tar, "folder with header size");
}

#[test]
fn a_name_from_two_sources_is_refused() {
    // The genuine key member named twice: by a GNU long name (the genuine name) and by a
    // PAX path, or by its ustar prefix and a PAX path, or by two long names. GNU tar
    // reads the second name; a reader that took the first would check the genuine one.
    type Names = fn(&Fx, &Member) -> Vec<u8>;
    let cases: [(&str, Names); 3] = [
        ("GNU long name and PAX path", |fx, pem| {
            let mut out = Vec::new();
            let mut long = pem.path.clone();
            long.push(0);
            out.extend(raw(
                &pem.header,
                b"././@LongLink",
                b'L',
                long.len() as u64,
                &long,
            ));
            let evil = format!("{}/jwt/EVIL.pem", fx.src_rel());
            out.extend(pax(&pem.header, b'x', &[("path", evil.as_bytes())]));
            out.extend(raw(
                &pem.header,
                &pem.path,
                b'0',
                pem.data.len() as u64,
                &pem.data,
            ));
            out
        }),
        ("ustar prefix and PAX path", |fx, pem| {
            let mut h = tar::Header::new_ustar();
            h.as_mut_bytes()[100..257].copy_from_slice(&pem.header.as_bytes()[100..257]);
            let path = pem.path_str();
            let (dir, file) = path.rsplit_once('/').unwrap();
            h.as_ustar_mut().unwrap().prefix[..dir.len()].copy_from_slice(dir.as_bytes());
            let evil = format!("{}/jwt/EVIL.pem", fx.src_rel());
            let mut out = pax(&h, b'x', &[("path", evil.as_bytes())]);
            out.extend(raw(
                &h,
                file.as_bytes(),
                b'0',
                pem.data.len() as u64,
                &pem.data,
            ));
            out
        }),
        ("two GNU long names", |fx, pem| {
            let mut out = Vec::new();
            for name in [
                pem.path.clone(),
                format!("{}/jwt/EVIL.pem", fx.src_rel()).into_bytes(),
            ] {
                let mut long = name;
                long.push(0);
                out.extend(raw(
                    &pem.header,
                    b"././@LongLink",
                    b'L',
                    long.len() as u64,
                    &long,
                ));
            }
            out.extend(raw(
                &pem.header,
                &pem.path,
                b'0',
                pem.data.len() as u64,
                &pem.data,
            ));
            out
        }),
    ];
    for (what, names) in cases {
        let fx = fixture();
        let tar = spliced(
            &fx,
            "jwt/private.pem",
            |fx, m| names(fx, pem_member(m)),
            true,
        );
        let gnu = gnu_tar_listing(&fx, &tar);
        assert!(
            gnu.contains("jwt/EVIL.pem"),
            "{what}: GNU tar reads the other name:\n{gnu}"
        );
        refused(&fx, "twonames.tar.zst.age", &tar, what);
    }
}

#[test]
fn pax_values_that_disagree_with_the_header_are_refused() {
    // A PAX size larger than the header's (GNU tar then reads the next member as data),
    // and a PAX uid that GNU tar would give the file instead of the header's.
    type Records = fn(&Member) -> Vec<(&'static str, Vec<u8>)>;
    let cases: [(&str, Records, &str); 2] = [
        (
            "PAX size",
            |pem| vec![("size", (pem.data.len() + 512).to_string().into_bytes())],
            "forgekeep/SHA256SUMS",
        ),
        ("PAX uid", |_| vec![("uid", b"4242".to_vec())], " 4242/"),
    ];
    for (what, records, gnu_sees) in cases {
        let fx = fixture();
        let tar = spliced(
            &fx,
            "jwt/private.pem",
            |_, m| {
                let pem = pem_member(m);
                let r = records(pem);
                let r: Vec<(&str, &[u8])> = r.iter().map(|(k, v)| (*k, &v[..])).collect();
                let mut out = pax(&pem.header, b'x', &r);
                out.extend(raw(
                    &pem.header,
                    &pem.path,
                    b'0',
                    pem.data.len() as u64,
                    &pem.data,
                ));
                out
            },
            true,
        );
        let gnu = gnu_tar_listing(&fx, &tar);
        let pem_line = gnu
            .lines()
            .find(|l| l.contains("jwt/private.pem"))
            .unwrap_or("");
        match what {
            "PAX size" => assert!(
                !gnu.contains(gnu_sees),
                "{what}: GNU tar swallows the next member:\n{gnu}"
            ),
            _ => assert!(
                pem_line.contains(gnu_sees),
                "{what}: GNU tar uses the PAX uid:\n{gnu}"
            ),
        }
        refused(&fx, "paxvalue.tar.zst.age", &tar, what);
    }
}

#[test]
fn global_pax_header_is_refused() {
    // GNU tar applies a global header's uid to every later member.
    let fx = fixture();
    let tar = spliced(
        &fx,
        "/srv",
        |_, m| pax(&pem_member(m).header, b'g', &[("uid", b"4242")]),
        false,
    );
    let gnu = gnu_tar_listing(&fx, &tar);
    assert!(
        gnu.lines()
            .any(|l| l.contains("jwt/private.pem") && l.contains(" 4242/")),
        "GNU tar applies the global uid:\n{gnu}"
    );
    refused(&fx, "global.tar.zst.age", &tar, "global PAX header");
}

#[test]
fn sparse_member_is_refused() {
    // A GNU sparse file (type S) of 1 MiB holding 0 bytes of data: GNU tar lists the
    // expanded size, not the stored one.
    let fx = fixture();
    let tar = spliced(
        &fx,
        "jwt/private.pem",
        |_, m| {
            let pem = pem_member(m);
            let mut h = pem.header.clone();
            {
                let g = h.as_gnu_mut().unwrap();
                g.sparse[0].offset.copy_from_slice(b"00004000000\0");
                g.sparse[0].numbytes.copy_from_slice(b"00000000000\0");
                g.realsize.copy_from_slice(b"00004000000\0");
            }
            raw(&h, &pem.path, b'S', 0, b"")
        },
        true,
    );
    let gnu = gnu_tar_listing(&fx, &tar);
    assert!(
        gnu.lines()
            .any(|l| l.contains("jwt/private.pem") && l.contains(" 1048576 ")),
        "GNU tar expands the sparse file:\n{gnu}"
    );
    refused(&fx, "sparse.tar.zst.age", &tar, "sparse member");
}

#[test]
fn pax_format_archive_that_gnu_tar_reads_alike_is_accepted() {
    // The genuine archive re-written with PAX headers that only name the members (as
    // POSIX tar writers do for long names): nothing is ambiguous, GNU tar reads the same
    // names, and forgekeep accepts it.
    let fx = fixture();
    let members = fx.members();
    let mut tar = Vec::new();
    for m in &members {
        let mut h = tar::Header::new_ustar();
        // Everything but the name and the magic: mode, owner, size, type, owner names.
        h.as_mut_bytes()[100..257].copy_from_slice(&m.header.as_bytes()[100..257]);
        h.as_mut_bytes()[265..345].copy_from_slice(&m.header.as_bytes()[265..345]);
        let link = m.link.clone().unwrap_or_default();
        let mut records: Vec<(&str, &[u8])> = vec![("path", &m.path)];
        if !link.is_empty() {
            records.push(("linkpath", &link));
        }
        tar.extend(pax(&h, b'x', &records));
        tar.extend(raw(
            &h,
            b"x",
            m.header.entry_type().as_byte(),
            m.data.len() as u64,
            &m.data,
        ));
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let gnu = gnu_tar_listing(&fx, &tar);
    assert!(
        gnu.contains("jwt/private.pem") && !gnu.lines().any(|l| l.ends_with(" x")),
        "{gnu}"
    );
    let a = fx.td.join("pax.tar.zst.age");
    encrypt_tar(&tar, &fx.recipient, &a);
    expect_code(&fx.verify(&a), 0);
    expect_code(&fx.restore(&a, &[]), 0);
    let restored = fx.dest.join(fx.src_rel()).join("jwt/private.pem");
    assert_eq!(fs::read(restored).unwrap(), pem_member(&members).data);
}

#[test]
fn owner_name_disagreeing_with_the_manifest_is_refused() {
    // GNU tar extracting as root without --numeric-owner gives the file the user NAMED in
    // its header; forgekeep the one named in the manifest. They must agree.
    let fx = fixture();
    let tar = spliced(
        &fx,
        "jwt/private.pem",
        |_, m| {
            let pem = pem_member(m);
            let mut h = pem.header.clone();
            h.set_username("daemon").unwrap();
            raw(&h, &pem.path, b'0', pem.data.len() as u64, &pem.data)
        },
        true,
    );
    let f = fx.td.join("plain.tar");
    fs::write(&f, &tar).unwrap();
    let out = Command::new("tar").args(["-tvf"]).arg(&f).output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.contains("jwt/private.pem") && l.contains("daemon/")),
        "GNU tar names the owner from the header:\n{listing}"
    );
    refused(&fx, "uname.tar.zst.age", &tar, "owner name");
}
