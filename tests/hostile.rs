//! Hostile archives: anyone holding the public recipient can make an archive that
//! decrypts, so restore treats content as untrusted (DESIGN.md, safety invariants 4, 5
//! and 7). Each test makes a genuine archive, re-packs it with one defect (age → zstd →
//! tar, members edited, then tar → zstd → age to the same recipient), and checks that
//! `verify` and `restore` refuse it with the documented exit code and that nothing on
//! disk changed: no file under `--root`, no stale `.forgekeep.tmp.*`, nothing written
//! through a link or outside the root.
//!
//! Hostile members are placed as late as possible (just before `SHA256SUMS`), so that a
//! restore has already staged the genuine entries before it meets the defect: the tests
//! then also prove that the staged work is removed again.

use crate::util::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::iter;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tar::EntryType;

pub(crate) const MANIFEST: &str = "forgekeep/manifest.json";
pub(crate) const SUMS: &str = "forgekeep/SHA256SUMS";

/// Table-driven cases: a path derived from the fixture, a member made for it, an edit.
pub(crate) type PathOf = fn(&Fx) -> String;
pub(crate) type MakeMember = fn(&Fx, &[Member]) -> Member;
pub(crate) type EditText = fn(&mut String);

// ---------------------------------------------------------------------------------------
// Re-packing

/// One tar member as read back: the header (name fields are rewritten from `path` and
/// `link` when written, and the size from `data`), the full path and link name (GNU long
/// names merged), and the content.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) header: tar::Header,
    pub(crate) path: Vec<u8>,
    pub(crate) link: Option<Vec<u8>>,
    pub(crate) data: Vec<u8>,
}

impl Member {
    pub(crate) fn path_str(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// A new member with `template`'s owner, mode and mtime.
    pub(crate) fn like(
        template: &Member,
        path: &str,
        kind: EntryType,
        link: Option<&str>,
        data: &[u8],
    ) -> Member {
        let mut header = template.header.clone();
        header.set_entry_type(kind);
        Member {
            header,
            path: path.as_bytes().to_vec(),
            link: link.map(|l| l.as_bytes().to_vec()),
            data: data.to_vec(),
        }
    }
}

pub(crate) fn secret_key(key: &Path) -> age::x25519::Identity {
    let text = fs::read_to_string(key).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("an age identity line");
    line.parse().expect("age identity")
}

/// age → zstd: the plaintext tar of `archive`.
pub(crate) fn decrypt_tar(archive: &Path, key: &Path) -> Vec<u8> {
    let id = secret_key(key);
    let file = fs::File::open(archive).unwrap();
    let dec = age::Decryptor::new(std::io::BufReader::new(file)).expect("age header");
    let mut reader = dec
        .decrypt(iter::once(&id as &dyn age::Identity))
        .expect("decrypt");
    let mut zst = Vec::new();
    reader.read_to_end(&mut zst).expect("read age payload");
    zstd::stream::decode_all(&zst[..]).expect("zstd")
}

/// age-encrypts `zst` (already compressed) to `recipient` into `out`.
pub(crate) fn encrypt_raw(zst: &[u8], recipient: &str, out: &Path) {
    let r: age::x25519::Recipient = recipient.parse().expect("age recipient");
    let enc =
        age::Encryptor::with_recipients(iter::once(&r as &dyn age::Recipient)).expect("encryptor");
    let mut w = enc
        .wrap_output(fs::File::create(out).unwrap())
        .expect("age output");
    w.write_all(zst).unwrap();
    w.finish().unwrap().sync_all().unwrap();
}

/// zstd → age: `tar` packed as a forgekeep archive for `recipient`.
pub(crate) fn encrypt_tar(tar: &[u8], recipient: &str, out: &Path) {
    let zst = zstd::stream::encode_all(tar, 3).expect("zstd");
    encrypt_raw(&zst, recipient, out);
}

pub(crate) fn parse_members(tar_bytes: &[u8]) -> Vec<Member> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in archive.entries().expect("tar") {
        let mut e = e.expect("tar member");
        let header = e.header().clone();
        let path = e.path_bytes().into_owned();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Member {
            header,
            path,
            link,
            data,
        });
    }
    out
}

pub(crate) fn put_name(field: &mut [u8; 100], bytes: &[u8]) {
    field.fill(0);
    let n = bytes.len().min(100);
    field[..n].copy_from_slice(&bytes[..n]);
}

/// A GNU `././@LongLink` member carrying a name that does not fit in 100 bytes.
pub(crate) fn append_long(b: &mut tar::Builder<Vec<u8>>, kind: EntryType, name: &[u8]) {
    let mut h = tar::Header::new_gnu();
    put_name(&mut h.as_old_mut().name, b"././@LongLink");
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(kind);
    let mut data = name.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..]).unwrap();
}

/// Writes the members as a tar, names written byte for byte (`..`, absolute names and
/// all: `set_path` would refuse them).
pub(crate) fn pack(members: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        if m.path.len() > 100 {
            append_long(&mut b, EntryType::GNULongName, &m.path);
        }
        let link = m.link.clone().unwrap_or_default();
        if link.len() > 100 {
            append_long(&mut b, EntryType::GNULongLink, &link);
        }
        let mut h = m.header.clone();
        put_name(&mut h.as_old_mut().name, &m.path);
        put_name(&mut h.as_old_mut().linkname, &link);
        h.set_size(m.data.len() as u64);
        h.set_cksum();
        b.append(&h, &m.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

pub(crate) fn pos(members: &[Member], suffix: &str) -> usize {
    members
        .iter()
        .position(|m| m.path_str().ends_with(suffix))
        .unwrap_or_else(|| panic!("no member ending in {suffix}"))
}

pub(crate) fn manifest(members: &[Member]) -> Value {
    serde_json::from_slice(&members[pos(members, MANIFEST)].data).expect("manifest JSON")
}

/// Edits the manifest, and SHA256SUMS's line for it (as whoever edits an archive would:
/// the archive stays consistent; only a signature could tell).
pub(crate) fn edit_manifest(members: &mut [Member], f: impl FnOnce(&mut Value)) {
    let i = pos(members, MANIFEST);
    let mut m: Value = serde_json::from_slice(&members[i].data).unwrap();
    f(&mut m);
    let mut json = serde_json::to_vec_pretty(&m).unwrap();
    json.push(b'\n');
    let line = format!("{}  {MANIFEST}\n", sha256_hex(&json));
    members[i].data = json;
    if let Some(j) = members.iter().position(|m| m.path_str() == SUMS) {
        let text = String::from_utf8(members[j].data.clone()).unwrap();
        let rest: String = text
            .split_inclusive('\n')
            .filter(|l| !l.ends_with(&format!("  {MANIFEST}\n")))
            .collect();
        members[j].data = format!("{line}{rest}").into_bytes();
    }
}

pub(crate) fn entries_mut(m: &mut Value) -> &mut Vec<Value> {
    m["entries"].as_array_mut().expect("entries")
}

pub(crate) fn entry_mut<'a>(m: &'a mut Value, path_suffix: &str) -> &'a mut Value {
    entries_mut(m)
        .iter_mut()
        .find(|e| e["path"].as_str().unwrap().ends_with(path_suffix))
        .unwrap_or_else(|| panic!("no manifest entry ending in {path_suffix}"))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Rewrites SHA256SUMS so that it has a correct line for every regular-file member and
/// for every member the manifest lists as a file (a hard link, device or FIFO posing as
/// one): the defect under test is then the only one.
pub(crate) fn resum(members: &mut [Member]) {
    let listed_files: Vec<String> = members
        .iter()
        .find(|m| m.path_str() == MANIFEST)
        .and_then(|m| serde_json::from_slice::<Value>(&m.data).ok())
        .and_then(|m| m["entries"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|e| e["type"] == "file")
        .filter_map(|e| {
            e["path"]
                .as_str()
                .map(|p| p.trim_start_matches('/').to_string())
        })
        .collect();
    let manifest_line = members
        .iter()
        .find(|m| m.path_str() == MANIFEST)
        .map(|m| format!("{}  {MANIFEST}\n", sha256_hex(&m.data)))
        .unwrap_or_default();
    let text: String = iter::once(manifest_line)
        .chain(
            members
                .iter()
                .filter(|m| {
                    let p = m.path_str();
                    (m.header.entry_type() == EntryType::Regular && !p.starts_with("forgekeep/"))
                        || listed_files.contains(&p)
                })
                .map(|m| format!("{}  {}\n", sha256_hex(&m.data), m.path_str())),
        )
        .collect();
    let i = pos(members, SUMS);
    members[i].data = text.into_bytes();
}

/// A manifest entry like the genuine `jwt/private.pem` one (owner, mode, mtime) for
/// `path`, a `kind` ("file", "dir", "symlink") of `size` bytes.
pub(crate) fn entry_like(
    members: &[Member],
    path: &str,
    kind: &str,
    size: u64,
    target: Option<&str>,
) -> Value {
    let m = manifest(members);
    let mut e = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str().unwrap().ends_with("jwt/private.pem"))
        .unwrap()
        .clone();
    let o = e.as_object_mut().unwrap();
    o.insert("path".into(), path.into());
    o.insert("type".into(), kind.into());
    o.insert("role".into(), "content".into());
    o.insert("source".into(), 0.into());
    o.insert("size".into(), size.into());
    o.remove("sha256");
    match target {
        Some(t) => o.insert("target".into(), t.into()),
        None => o.remove("target"),
    };
    e
}

/// A member like the genuine `jwt/private.pem` one.
pub(crate) fn member_like(
    members: &[Member],
    path: &str,
    kind: EntryType,
    link: Option<&str>,
    data: &[u8],
) -> Member {
    Member::like(
        &members[pos(members, "jwt/private.pem")],
        path,
        kind,
        link,
        data,
    )
}

/// Lists `entry` last in the manifest, puts `member` last before SHA256SUMS, and
/// brings SHA256SUMS up to date: an archive consistent in every way but the entry.
pub(crate) fn add_listed(members: &mut Vec<Member>, entry: Value, member: Member) {
    edit_manifest(members, |m| entries_mut(m).push(entry));
    add_unlisted(members, member);
}

/// Puts `member` last before SHA256SUMS (the manifest unchanged), SHA256SUMS updated.
pub(crate) fn add_unlisted(members: &mut Vec<Member>, member: Member) {
    let at = pos(members, SUMS);
    members.insert(at, member);
    resum(members);
}

// ---------------------------------------------------------------------------------------
// The genuine archive and the checks

/// A test folder with a Gitea tree, a key, a genuine archive of the tree and an empty
/// destination root.
pub(crate) struct Fx {
    pub(crate) td: TestDir,
    pub(crate) key: PathBuf,
    pub(crate) recipient: String,
    pub(crate) genuine: PathBuf,
    /// The source as the manifest records it (absolute).
    pub(crate) src: String,
    /// The recorded path of the test folder (the source minus `/srv/gitea`).
    pub(crate) base: String,
    pub(crate) dest: PathBuf,
}

pub(crate) fn fixture() -> Fx {
    let td = TestDir::new();
    let tree = td.gitea_tree();
    let (key, recipient) = td.age_key("key.txt");
    let genuine = td.join("genuine.tar.zst.age");
    backup(&[&tree], &recipient, &genuine, &[]);
    let dest = td.mkdir("dest", 0o755);
    let members = parse_members(&decrypt_tar(&genuine, &key));
    let src = manifest(&members)["sources"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let base = src
        .strip_suffix("/srv/gitea")
        .expect("source path ends in /srv/gitea")
        .to_string();
    Fx {
        td,
        key,
        recipient,
        genuine,
        src,
        base,
        dest,
    }
}

impl Fx {
    pub(crate) fn members(&self) -> Vec<Member> {
        parse_members(&decrypt_tar(&self.genuine, &self.key))
    }

    /// `src` without its leading `/`: the member prefix of the source.
    pub(crate) fn base_rel(&self) -> String {
        self.base.trim_start_matches('/').to_string()
    }

    pub(crate) fn src_rel(&self) -> String {
        self.src.trim_start_matches('/').to_string()
    }

    /// The genuine archive re-packed as `name` after `edit`.
    pub(crate) fn hostile(&self, name: &str, edit: impl FnOnce(&mut Vec<Member>)) -> PathBuf {
        let mut members = self.members();
        edit(&mut members);
        let out = self.td.join(name);
        encrypt_tar(&pack(&members), &self.recipient, &out);
        out
    }

    /// The genuine plaintext tar re-packed as `name` after a byte-level `edit`.
    pub(crate) fn hostile_tar(&self, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
        let mut tar = decrypt_tar(&self.genuine, &self.key);
        edit(&mut tar);
        let out = self.td.join(name);
        encrypt_tar(&tar, &self.recipient, &out);
        out
    }

    /// A folder outside the destination root with a canary file in it: whatever an
    /// archive points at must stay as it is.
    pub(crate) fn elsewhere(&self) -> PathBuf {
        self.td.write("elsewhere/canary", b"canary\n", 0o644);
        self.td.join("elsewhere")
    }

    pub(crate) fn verify(&self, archive: &Path) -> std::process::Output {
        fk(&[
            "verify",
            archive.to_str().unwrap(),
            "-i",
            self.key.to_str().unwrap(),
        ])
    }

    pub(crate) fn restore(&self, archive: &Path, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "restore",
            "--allow-untrusted",
            archive.to_str().unwrap(),
            "-i",
            self.key.to_str().unwrap(),
            "--root",
            self.dest.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fk(&args)
    }

    /// `verify`, `restore` and `restore --force` all exit with `want`, and nothing in
    /// the test folder (destination, sources, keys, archives) changed.
    #[track_caller]
    pub(crate) fn assert_refused(&self, archive: &Path, want: i32, what: &str) {
        let before = snapshot(self.td.path());
        for cmd in ["verify", "restore", "restore --force"] {
            let out = &match cmd {
                "verify" => self.verify(archive),
                "restore" => self.restore(archive, &[]),
                _ => self.restore(archive, &["--force"]),
            };
            assert_eq!(
                code(out),
                want,
                "{what}: `{cmd}` exit code; stdout:\n{}\nstderr:\n{}",
                stdout(out),
                stderr(out)
            );
            assert!(
                !stderr(out).trim().is_empty(),
                "{what}: `{cmd}` refused without a message"
            );
            let all = format!("{}{}", stdout(out), stderr(out));
            assert!(
                !all.contains("not-a-real-secret") && !all.contains("PRIVATE KEY"),
                "{what}: `{cmd}` printed secret content:\n{all}"
            );
            assert_same(
                &before,
                &snapshot(self.td.path()),
                &format!("{what}: `{cmd}`"),
            );
        }
        assert_empty_dest(&self.dest, what);
    }
}

/// Every path below `root` (links not followed) with its type, mode, owner and, for
/// files, size, mtime and content digest.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    pub(crate) fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let owner = format!("{:04o} {}:{}", md.mode() & 0o7777, md.uid(), md.gid());
            let ft = md.file_type();
            let desc = if ft.is_symlink() {
                format!("link -> {}", fs::read_link(&p).unwrap().display())
            } else if ft.is_dir() {
                format!("dir {owner}")
            } else if ft.is_file() {
                format!(
                    "file {owner} {} bytes mtime {} sha256 {}",
                    md.len(),
                    md.mtime(),
                    sha256_hex(&fs::read(&p).unwrap())
                )
            } else {
                format!("special {owner} {:o}", md.mode())
            };
            out.insert(rel, desc);
            if ft.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[track_caller]
pub(crate) fn assert_same(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
    what: &str,
) {
    if before == after {
        return;
    }
    let mut diff = String::new();
    for (p, d) in after {
        match before.get(p) {
            None => diff.push_str(&format!("  + {}  {d}\n", p.display())),
            Some(b) if b != d => diff.push_str(&format!("  ~ {}  {b}  =>  {d}\n", p.display())),
            _ => {}
        }
    }
    for (p, d) in before {
        if !after.contains_key(p) {
            diff.push_str(&format!("  - {}  {d}\n", p.display()));
        }
    }
    panic!("{what} changed the disk:\n{diff}");
}

#[track_caller]
pub(crate) fn assert_empty_dest(dest: &Path, what: &str) {
    let left: Vec<_> = fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        left.is_empty(),
        "{what}: the destination root is not empty: {left:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The harness itself

#[test]
fn repacked_genuine_archive_is_accepted() {
    // Without this, a hostile test could pass because the re-packing is broken.
    let fx = fixture();
    let archive = fx.hostile("same.tar.zst.age", |_| {});
    expect_code(&fx.verify(&archive), 0);
    expect_code(&fx.restore(&archive, &[]), 0);
    let pem = fx.dest.join(fx.src_rel()).join("jwt/private.pem");
    assert_eq!(
        fs::read(pem).unwrap(),
        fs::read(fx.td.join("srv/gitea/jwt/private.pem")).unwrap()
    );

    // GNU long names round-trip too (a TMPDIR with a long path must not break the tests).
    let members = fx.members();
    let long = format!("{}/{}", fx.src_rel(), "l".repeat(120));
    let m = Member::like(
        &members[1],
        &long,
        EntryType::Symlink,
        Some(&"t".repeat(150)),
        b"",
    );
    let back = parse_members(&pack(&[m]));
    assert_eq!(back[0].path_str(), long);
    assert_eq!(back[0].link.as_deref(), Some("t".repeat(150).as_bytes()));
}

// ---------------------------------------------------------------------------------------
// Unsafe member names

#[test]
fn dotdot_member_is_refused_whole() {
    // `..` enough times to climb from dest/<src>/jwt out of the destination root into
    // the test folder: a tar that followed it would write <test dir>/EVIL-dotdot.
    let climb = |fx: &Fx| {
        let n = fx.src_rel().split('/').count() + 2;
        format!("{}/jwt/{}EVIL-dotdot", fx.src_rel(), "../".repeat(n))
    };

    // The genuine key's member renamed; the manifest still lists the genuine path.
    let fx = fixture();
    let a = fx.hostile("renamed.tar.zst.age", |m| {
        let i = pos(m, "jwt/private.pem");
        m[i].path = climb(&fx).into_bytes();
        resum(m);
    });
    fx.assert_refused(&a, 4, "member renamed with ..");

    // The manifest lists the same `..` path (so member and manifest agree).
    let fx = fixture();
    let a = fx.hostile("listed.tar.zst.age", |m| {
        let name = climb(&fx);
        let i = pos(m, "jwt/private.pem");
        m[i].path = name.clone().into_bytes();
        edit_manifest(m, |j| {
            entry_mut(j, "jwt/private.pem")["path"] = format!("/{name}").into()
        });
        resum(m);
    });
    fx.assert_refused(&a, 4, "manifest and member with ..");

    // An extra member that starts with `..`.
    let fx = fixture();
    let a = fx.hostile("leading.tar.zst.age", |m| {
        let evil = member_like(m, "../EVIL-dotdot", EntryType::Regular, None, b"evil\n");
        add_unlisted(m, evil);
    });
    fx.assert_refused(&a, 4, "extra member ../EVIL-dotdot");
}

#[test]
fn absolute_member_name_is_refused_whole() {
    // The genuine member with a leading `/`: it must not be silently made relative.
    let fx = fixture();
    let a = fx.hostile("slash.tar.zst.age", |m| {
        let i = pos(m, "jwt/private.pem");
        m[i].path = format!("/{}/jwt/private.pem", fx.src_rel()).into_bytes();
        resum(m);
    });
    fx.assert_refused(&a, 4, "genuine member with a leading /");

    // An absolute member aimed at the test folder, listed in the manifest.
    let fx = fixture();
    let a = fx.hostile("absolute.tar.zst.age", |m| {
        let path = format!("{}/EVIL-abs", fx.base);
        let e = entry_like(m, &format!("{}/EVIL-abs", fx.src), "file", 5, None);
        let evil = member_like(m, &path, EntryType::Regular, None, b"evil\n");
        add_listed(m, e, evil);
    });
    fx.assert_refused(&a, 4, "absolute member /<test dir>/EVIL-abs");
    assert!(!fx.td.join("EVIL-abs").exists());
}

#[test]
fn unsafe_manifest_paths_are_refused_whole() {
    // Each edit makes the manifest itself unsafe; the members stay genuine.
    type Edit = fn(&Fx, &mut Value);
    let cases: Vec<(&str, Edit)> = vec![
        ("entry with ..", |fx, m| {
            entry_mut(m, "jwt/private.pem")["path"] = format!("{}/jwt/../../../EVIL", fx.src).into()
        }),
        ("entry with .", |fx, m| {
            entry_mut(m, "jwt/private.pem")["path"] = format!("{}/jwt/./private.pem", fx.src).into()
        }),
        ("entry with //", |fx, m| {
            entry_mut(m, "jwt/private.pem")["path"] = format!("{}/jwt//private.pem", fx.src).into()
        }),
        ("entry with NUL", |fx, m| {
            entry_mut(m, "jwt/private.pem")["path"] =
                format!("{}/jwt/private.pem\u{0}EVIL", fx.src).into()
        }),
        ("relative entry", |fx, m| {
            entry_mut(m, "jwt/private.pem")["path"] =
                format!("{}/jwt/private.pem", fx.src_rel()).into()
        }),
        ("entry listed twice", |_, m| {
            let e = entry_mut(m, "jwt/private.pem").clone();
            entries_mut(m).push(e);
        }),
        ("source /", |_, m| m["sources"][0]["path"] = "/".into()),
        ("relative source", |fx, m| {
            m["sources"][0]["path"] = fx.src_rel().into()
        }),
        ("source index out of range", |_, m| {
            entry_mut(m, "jwt/private.pem")["source"] = 7.into()
        }),
        ("symlink with an empty target", |_, m| {
            let e = entry_mut(m, "jwt/private.pem");
            e["type"] = "symlink".into();
            e["size"] = 0.into();
            e["target"] = "".into();
        }),
        (
            "entries out of order (a child before its parent)",
            |_, m| {
                entries_mut(m).reverse();
            },
        ),
        ("unknown field", |_, m| m["EVIL"] = true.into()),
        ("other format", |_, m| m["format"] = "tar".into()),
        ("future version", |_, m| m["version"] = 2.into()),
    ];
    for (what, edit) in cases {
        let fx = fixture();
        let a = fx.hostile("manifest.tar.zst.age", |m| {
            edit_manifest(m, |j| edit(&fx, j))
        });
        fx.assert_refused(&a, 4, what);
    }
}

// ---------------------------------------------------------------------------------------
// Links, devices and FIFOs

#[test]
fn file_through_symlink_entry_is_refused_whole() {
    // A symlink entry, then a file "inside" it: written naively, the file lands in the
    // folder the link points at.
    for (what, relative, list_file) in [
        ("absolute link, both listed", false, true),
        ("relative link, both listed", true, true),
        ("absolute link, only the link listed", false, false),
    ] {
        let fx = fixture();
        let elsewhere = fx.elsewhere();
        let target = if relative {
            "../../elsewhere".to_string() // from <base>/srv/gitea
        } else {
            format!("{}/elsewhere", fx.base)
        };
        let a = fx.hostile("through.tar.zst.age", |m| {
            let link = format!("{}/EVIL-link", fx.src);
            let e = entry_like(m, &link, "symlink", 0, Some(&target));
            let l = member_like(
                m,
                link.trim_start_matches('/'),
                EntryType::Symlink,
                Some(&target),
                b"",
            );
            add_listed(m, e, l);
            let file = format!("{link}/EVIL-through");
            let f = member_like(
                m,
                file.trim_start_matches('/'),
                EntryType::Regular,
                None,
                b"evil\n",
            );
            if list_file {
                add_listed(m, entry_like(m, &file, "file", 5, None), f);
            } else {
                add_unlisted(m, f);
            }
        });
        fx.assert_refused(&a, 4, what);
        assert!(
            !elsewhere.join("EVIL-through").exists(),
            "{what}: written through the link"
        );
    }

    // A genuine folder turned into a symlink, its genuine content still below it.
    let fx = fixture();
    let elsewhere = fx.elsewhere();
    let a = fx.hostile("folder-link.tar.zst.age", |m| {
        let target = format!("{}/elsewhere", fx.base);
        let i = pos(m, "srv/gitea/jwt");
        m[i].header.set_entry_type(EntryType::Symlink);
        m[i].link = Some(target.clone().into_bytes());
        edit_manifest(m, |j| {
            let e = entry_mut(j, "srv/gitea/jwt");
            e["type"] = "symlink".into();
            e["target"] = target.into();
        });
    });
    fx.assert_refused(&a, 4, "folder jwt replaced by a symlink");
    assert!(!elsewhere.join("private.pem").exists());
}

#[test]
fn hard_link_member_is_refused_whole() {
    // To a file outside the archive, and to another member of the archive.
    for (what, outside) in [
        ("hard link to a file outside", true),
        ("hard link to a member", false),
    ] {
        let fx = fixture();
        let elsewhere = fx.elsewhere();
        let a = fx.hostile("hard.tar.zst.age", |m| {
            let target = if outside {
                format!("{}/elsewhere/canary", fx.base)
            } else {
                format!("{}/jwt/private.pem", fx.src_rel())
            };
            let path = format!("{}/EVIL-hard", fx.src);
            let e = entry_like(m, &path, "file", 0, None);
            let h = member_like(
                m,
                path.trim_start_matches('/'),
                EntryType::Link,
                Some(&target),
                b"",
            );
            add_listed(m, e, h);
        });
        fx.assert_refused(&a, 4, what);
        assert_eq!(fs::read(elsewhere.join("canary")).unwrap(), b"canary\n");
    }
}

/// A special member (device, FIFO) listed in the manifest as an empty file.
fn special_member(fx: &Fx, name: &str, kind: EntryType, dev: Option<(u32, u32)>) -> PathBuf {
    fx.hostile(name, |m| {
        let path = format!("{}/EVIL-special", fx.src);
        let e = entry_like(m, &path, "file", 0, None);
        let mut s = member_like(m, path.trim_start_matches('/'), kind, None, b"");
        if let Some((major, minor)) = dev {
            s.header.set_device_major(major).unwrap();
            s.header.set_device_minor(minor).unwrap();
        }
        add_listed(m, e, s);
    })
}

#[test]
fn character_device_member_is_refused_whole() {
    let fx = fixture();
    let a = special_member(&fx, "char.tar.zst.age", EntryType::Char, Some((1, 3)));
    fx.assert_refused(&a, 4, "character device 1:3");

    let fx = fixture();
    let a = special_member(&fx, "block.tar.zst.age", EntryType::Block, Some((7, 0)));
    fx.assert_refused(&a, 4, "block device 7:0");
}

#[test]
fn fifo_member_is_refused_whole() {
    let fx = fixture();
    let a = special_member(&fx, "fifo.tar.zst.age", EntryType::Fifo, None);
    fx.assert_refused(&a, 4, "FIFO");
}

// ---------------------------------------------------------------------------------------
// The manifest as allow-list

#[test]
fn entry_outside_the_sources_is_refused_whole() {
    // Each case lists an entry (manifest and member agree, SHA256SUMS up to date) that
    // the sources the manifest records do not cover.
    let cases: [(&str, PathOf, &str, &str); 4] = [
        (
            "content file outside",
            |fx| format!("{}/etc/EVIL-outside", fx.base),
            "file",
            "content",
        ),
        (
            "sibling sharing the source's prefix",
            |fx| format!("{}-EVIL", fx.src),
            "file",
            "content",
        ),
        (
            "ancestor that is a file",
            |fx| format!("{}/srv/EVIL-anc", fx.base),
            "file",
            "ancestor",
        ),
        (
            "ancestor folder not above a source",
            |fx| format!("{}/EVIL-anc", fx.base),
            "dir",
            "ancestor",
        ),
    ];
    for (what, path, kind, role) in cases {
        let fx = fixture();
        let a = fx.hostile("outside.tar.zst.age", |m| {
            let path = path(&fx);
            let (ty, data): (EntryType, &[u8]) = if kind == "file" {
                (EntryType::Regular, b"evil\n")
            } else {
                (EntryType::Directory, b"")
            };
            let mut e = entry_like(m, &path, kind, data.len() as u64, None);
            e["role"] = role.into();
            let mem = member_like(m, path.trim_start_matches('/'), ty, None, data);
            add_listed(m, e, mem);
        });
        fx.assert_refused(&a, 4, what);
    }
}

#[test]
fn member_not_in_the_manifest_is_refused_whole() {
    // Last before SHA256SUMS, which lists it.
    let fx = fixture();
    let a = fx.hostile("extra-last.tar.zst.age", |m| {
        let evil = member_like(
            m,
            &format!("{}/jwt/EVIL-extra.pem", fx.src_rel()),
            EntryType::Regular,
            None,
            b"evil\n",
        );
        add_unlisted(m, evil);
    });
    fx.assert_refused(&a, 4, "unlisted member last");

    // In the middle, between two listed members.
    let fx = fixture();
    let a = fx.hostile("extra-middle.tar.zst.age", |m| {
        let evil = member_like(
            m,
            &format!("{}/conf/EVIL-extra", fx.src_rel()),
            EntryType::Regular,
            None,
            b"evil\n",
        );
        let at = pos(m, "conf/app.ini") + 1;
        m.insert(at, evil);
        resum(m);
    });
    fx.assert_refused(&a, 4, "unlisted member in the middle");

    // The genuine key twice, the second copy different.
    let fx = fixture();
    let a = fx.hostile("duplicate.tar.zst.age", |m| {
        let i = pos(m, "jwt/private.pem");
        let mut twin = m[i].clone();
        twin.data = b"EVIL twin\n".to_vec();
        m.insert(i + 1, twin);
    });
    fx.assert_refused(&a, 4, "member twice");
}

#[test]
fn listed_entry_without_member_is_refused_whole() {
    let fx = fixture();
    let a = fx.hostile("missing.tar.zst.age", |m| {
        let i = pos(m, "jwt/private.pem");
        m.remove(i);
        resum(m);
    });
    fx.assert_refused(&a, 4, "listed file missing");
}

#[test]
fn extra_member_after_sha256sums_is_refused_whole() {
    // The "re-encrypted with an extra member appended" case: everything before it is
    // genuine and valid.
    let cases: [(&str, MakeMember); 3] = [
        ("file after SHA256SUMS", |fx, m| {
            member_like(
                m,
                &format!("{}/EVIL-after", fx.src_rel()),
                EntryType::Regular,
                None,
                b"evil\n",
            )
        }),
        ("second SHA256SUMS", |_, m| {
            let mut s = m[pos(m, SUMS)].clone();
            s.data = b"EVIL\n".to_vec();
            s
        }),
        ("second manifest", |_, m| m[pos(m, MANIFEST)].clone()),
    ];
    for (what, extra) in cases {
        let fx = fixture();
        let a = fx.hostile("after.tar.zst.age", |m| {
            let e = extra(&fx, m);
            m.push(e);
        });
        fx.assert_refused(&a, 4, what);
    }
}

#[test]
fn data_after_the_tar_end_is_refused() {
    let fx = fixture();
    let a = fx.hostile_tar("trailing.tar.zst.age", |tar| {
        tar.extend_from_slice(b"EVIL trailing data");
        tar.resize(tar.len().next_multiple_of(512), 0);
    });
    fx.assert_refused(&a, 4, "bytes after the end-of-archive blocks");
}

#[test]
fn manifest_not_first_is_refused_whole() {
    let fx = fixture();
    let a = fx.hostile("second.tar.zst.age", |m| m.swap(0, 1));
    fx.assert_refused(&a, 4, "manifest second");

    let fx = fixture();
    let a = fx.hostile("late.tar.zst.age", |m| {
        let man = m.remove(pos(m, MANIFEST));
        let at = pos(m, SUMS);
        m.insert(at, man);
    });
    fx.assert_refused(&a, 4, "manifest before SHA256SUMS");

    let fx = fixture();
    let a = fx.hostile("none.tar.zst.age", |m| {
        m.remove(pos(m, MANIFEST));
    });
    fx.assert_refused(&a, 4, "no manifest");
}

// ---------------------------------------------------------------------------------------
// Sizes and checksums

#[test]
fn member_size_disagreeing_with_the_manifest_is_refused_whole() {
    for (what, grow) in [
        ("member longer than listed", true),
        ("member shorter than listed", false),
    ] {
        let fx = fixture();
        let a = fx.hostile("size.tar.zst.age", |m| {
            let i = pos(m, "jwt/private.pem");
            if grow {
                m[i].data.extend_from_slice(b"EVIL appended\n");
            } else {
                let half = m[i].data.len() / 2;
                m[i].data.truncate(half);
            }
            resum(m);
        });
        fx.assert_refused(&a, 4, what);
    }
}

#[test]
fn wrong_digest_in_sha256sums_is_refused_whole() {
    let cases: [(&str, EditText); 4] = [
        ("one digit changed", |s| {
            let i = s.find("jwt/private.pem").unwrap();
            let start = s[..i].rfind('\n').map_or(0, |n| n + 1);
            let c = if &s[start..start + 1] == "0" {
                "1"
            } else {
                "0"
            };
            s.replace_range(start..start + 1, c);
        }),
        ("line missing", |s| {
            *s = s
                .lines()
                .filter(|l| !l.ends_with("jwt/private.pem"))
                .map(|l| format!("{l}\n"))
                .collect();
        }),
        ("line for a file the archive does not hold", |s| {
            s.push_str(&format!("{}  etc/EVIL\n", "0".repeat(64)));
        }),
        ("malformed", |s| s.push_str("EVIL\n")),
    ];
    for (what, edit) in cases {
        let fx = fixture();
        let a = fx.hostile("sums.tar.zst.age", |m| {
            let i = pos(m, SUMS);
            let mut s = String::from_utf8(m[i].data.clone()).unwrap();
            edit(&mut s);
            m[i].data = s.into_bytes();
        });
        fx.assert_refused(&a, 4, what);
    }
}

/// The genuine archive with one byte of `app.ini` changed (same size) and the genuine
/// SHA256SUMS: only the checksum can tell.
fn tampered_content(fx: &Fx) -> PathBuf {
    fx.hostile("tampered.tar.zst.age", |m| {
        let i = pos(m, "conf/app.ini");
        let j = m[i].data.iter().position(|b| *b == b'=').unwrap();
        m[i].data[j] = b'!';
    })
}

#[test]
fn modified_content_with_old_sha256sums_is_refused_whole() {
    let fx = fixture();
    let a = tampered_content(&fx);
    fx.assert_refused(&a, 4, "content changed, checksums not");
}

#[test]
fn tampered_archive_with_force_leaves_existing_files_alone() {
    // The destination already holds the tree (one file edited since): a tampered archive
    // with --force must neither replace it nor leave temp files or an undo archive.
    let fx = fixture();
    expect_code(&fx.restore(&fx.genuine, &[]), 0);
    let ini = fx.dest.join(fx.src_rel()).join("conf/app.ini");
    fs::write(&ini, b"[security]\nSECRET_KEY = edited-since\n").unwrap();
    let a = tampered_content(&fx);
    let before = snapshot(fx.td.path());
    for extra in [&[][..], &["--force"][..]] {
        let out = fx.restore(&a, extra);
        expect_code(&out, 4);
        assert_same(
            &before,
            &snapshot(fx.td.path()),
            &format!("restore {extra:?} of a tampered archive"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Damaged ciphertext and compressed stream

#[test]
fn truncated_archive_is_refused_whole() {
    let fx = fixture();
    let bytes = fs::read(&fx.genuine).unwrap();
    for cut in [1, 16, 100, bytes.len() / 2] {
        let a = fx.td.join(&format!("cut-{cut}.tar.zst.age"));
        fs::write(&a, &bytes[..bytes.len() - cut]).unwrap();
        fx.assert_refused(&a, 4, &format!("{cut} bytes cut off the end"));
    }

    // Intact encryption around a truncated zstd stream, and around a truncated tar.
    let tar = decrypt_tar(&fx.genuine, &fx.key);
    let zst = zstd::stream::encode_all(&tar[..], 3).unwrap();
    let a = fx.td.join("zstd-cut.tar.zst.age");
    encrypt_raw(&zst[..zst.len() - 8], &fx.recipient, &a);
    fx.assert_refused(&a, 4, "zstd stream cut short");

    let sums_at = tar
        .windows(SUMS.len())
        .position(|w| w == SUMS.as_bytes())
        .unwrap();
    let a = fx.hostile_tar("tar-cut.tar.zst.age", |t| t.truncate(sums_at));
    fx.assert_refused(&a, 4, "tar cut before SHA256SUMS");
}

#[test]
fn bit_flipped_archive_is_refused_whole() {
    let fx = fixture();
    let bytes = fs::read(&fx.genuine).unwrap();
    for at in [bytes.len() / 2, bytes.len() * 3 / 4, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        let a = fx.td.join(&format!("flip-{at}.tar.zst.age"));
        fs::write(&a, &flipped).unwrap();
        fx.assert_refused(
            &a,
            4,
            &format!("bit flipped at byte {at} of {}", bytes.len()),
        );
    }

    // A flip inside the zstd stream, re-encrypted (so age is happy).
    let tar = decrypt_tar(&fx.genuine, &fx.key);
    let mut zst = zstd::stream::encode_all(&tar[..], 3).unwrap();
    let mid = zst.len() / 2;
    zst[mid] ^= 0x10;
    let a = fx.td.join("zstd-flip.tar.zst.age");
    encrypt_raw(&zst, &fx.recipient, &a);
    fx.assert_refused(&a, 4, "bit flipped inside the zstd stream");
}

#[test]
fn zstd_window_above_the_cap_is_refused() {
    // A frame that asks for a 1 GiB window: decompression must stay bounded.
    let fx = fixture();
    let tar = decrypt_tar(&fx.genuine, &fx.key);
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.window_log(30).unwrap();
    enc.include_contentsize(false).unwrap();
    enc.write_all(&tar).unwrap();
    let zst = enc.finish().unwrap();
    let a = fx.td.join("window.tar.zst.age");
    encrypt_raw(&zst, &fx.recipient, &a);
    fx.assert_refused(&a, 4, "zstd window 2^30");
}

#[test]
fn wrong_key_exits_5_and_writes_nothing() {
    let fx = fixture();
    let (other, _) = fx.td.age_key("other.txt");
    let before = snapshot(fx.td.path());
    let archive = fx.genuine.to_str().unwrap();
    let dest = fx.dest.to_str().unwrap();
    let other = other.to_str().unwrap();
    let runs: [&[&str]; 3] = [
        &["verify", archive, "-i", other],
        &[
            "restore",
            "--allow-untrusted",
            archive,
            "-i",
            other,
            "--root",
            dest,
        ],
        &[
            "restore",
            "--allow-untrusted",
            archive,
            "-i",
            other,
            "--root",
            dest,
            "--force",
        ],
    ];
    for args in runs {
        let out = fk(args);
        expect_code(&out, 5);
        assert!(!stderr(&out).trim().is_empty(), "{args:?}: no message");
        assert_same(
            &before,
            &snapshot(fx.td.path()),
            &format!("{args:?} with a wrong key"),
        );
    }
    assert_empty_dest(&fx.dest, "wrong key");
}

// ---------------------------------------------------------------------------------------
// Symlinks planted in the destination

#[test]
fn symlinked_destination_parent_is_not_followed() {
    // dest/<base>/srv, dest/<first component of base>, dest/<src>/jwt: each a symlink
    // to a folder outside the root. A genuine archive must not write through any of them.
    let cases: [(&str, PathOf); 3] = [
        ("srv", |fx| format!("{}/srv", fx.base_rel())),
        ("top", |fx| {
            fx.base_rel().split('/').next().unwrap().to_string()
        }),
        ("jwt", |fx| format!("{}/jwt", fx.src_rel())),
    ];
    for (what, link_at) in cases {
        for force in [false, true] {
            let fx = fixture();
            let elsewhere = fx.elsewhere();
            let link = fx.dest.join(link_at(&fx));
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
            let before = snapshot(fx.td.path());
            let out = fx.restore(&fx.genuine, if force { &["--force"] } else { &[] });
            let c = code(&out);
            assert!(
                matches!(c, 1 | 4 | 7),
                "{what} (force {force}): restore through a symlinked parent exited {c}; stdout:\n{}\nstderr:\n{}",
                stdout(&out),
                stderr(&out)
            );
            assert_same(
                &before,
                &snapshot(fx.td.path()),
                &format!("{what} (force {force})"),
            );
            let inside: Vec<_> = fs::read_dir(&elsewhere)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(
                inside,
                vec![std::ffi::OsString::from("canary")],
                "{what}: written through the link"
            );
        }
    }
}

#[test]
fn symlink_at_a_file_destination_is_replaced_not_followed() {
    // dest/<src>/jwt/private.pem is a symlink to a file outside the root. Without
    // --force: a conflict, nothing changes. With --force: the link itself is replaced
    // and its target stays as it was.
    let fx = fixture();
    expect_code(&fx.restore(&fx.genuine, &[]), 0);
    let elsewhere = fx.elsewhere();
    let pem = fx.dest.join(fx.src_rel()).join("jwt/private.pem");
    fs::remove_file(&pem).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("canary"), &pem).unwrap();
    let before = snapshot(fx.td.path());
    expect_code(&fx.restore(&fx.genuine, &[]), 7);
    assert_same(
        &before,
        &snapshot(fx.td.path()),
        "restore onto a symlinked file without --force",
    );

    let out = fx.restore(&fx.genuine, &["--force"]);
    expect_code(&out, 0);
    assert_eq!(
        fs::read(elsewhere.join("canary")).unwrap(),
        b"canary\n",
        "written through the link"
    );
    let md = fs::symlink_metadata(&pem).unwrap();
    assert!(
        md.file_type().is_file(),
        "the link was not replaced by the file"
    );
    assert_eq!(
        fs::read(&pem).unwrap(),
        fs::read(fx.td.join("srv/gitea/jwt/private.pem")).unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// Modes a crafted archive could use

#[test]
fn setuid_bits_from_the_archive_are_dropped() {
    let fx = fixture();
    let a = fx.hostile("setuid.tar.zst.age", |m| {
        let i = pos(m, "jwt/private.pem");
        m[i].header.set_mode(0o6755);
        edit_manifest(m, |j| {
            entry_mut(j, "jwt/private.pem")["mode"] = "6755".into()
        });
    });
    expect_code(&fx.verify(&a), 0);
    let out = fx.restore(&a, &[]);
    assert!(matches!(code(&out), 0 | 3), "restore: {}", stderr(&out));
    let pem = fx.dest.join(fx.src_rel()).join("jwt/private.pem");
    assert_eq!(
        mode_of(&pem) & 0o7000,
        0,
        "set-uid/set-gid restored: {:04o}",
        mode_of(&pem)
    );
    assert!(
        stderr(&out).contains("set-uid"),
        "no warning about the dropped bits: {}",
        stderr(&out)
    );
}
