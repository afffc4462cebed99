//! Test harness: every test gets a fresh temp folder and runs the real `forgekeep`
//! binary (as ripgrep's tests do), with keys made at test time by the real tools.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_forgekeep");

/// Content that makes a file a secret (a setting named like one, with a value): its
/// permissions are judged, as those of a forge's app.ini or env file. Plain text without
/// one is public configuration, which may be readable by everyone.
pub const SECRET_SETTING: &[u8] = b"SECRET_KEY = a-test-value-not-a-real-secret\n";

/// A fresh folder for one test, removed at the end unless FORGEKEEP_KEEP_TEST_DIRS is set.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix("fk-test.")
            .tempdir()
            .expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        TestDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Writes `content` at `rel` (parents created) with `mode`.
    pub fn write(&self, rel: &str, content: &[u8], mode: u32) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    pub fn mkdir(&self, rel: &str, mode: u32) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A new age identity made by `forgekeep keygen`; returns (identity file, recipient).
    pub fn age_key(&self, name: &str) -> (PathBuf, String) {
        let key = self.join(name);
        let out = fk(&["keygen", "-o", key.to_str().unwrap()]);
        assert!(out.status.success(), "keygen failed: {}", stderr(&out));
        (key, stdout(&out).trim().to_string())
    }

    /// A new SSH key pair made by ssh-keygen; returns (private key, public key line).
    pub fn ssh_key(&self, name: &str, kind: &str, passphrase: &str) -> (PathBuf, String) {
        let key = self.join(name);
        let mut args = vec![
            "-q",
            "-t",
            kind,
            "-N",
            passphrase,
            "-C",
            "test",
            "-f",
            key.to_str().unwrap(),
        ];
        if kind == "rsa" {
            args.extend(["-b", "2048"]);
        }
        run_ok(Command::new("ssh-keygen").args(&args));
        let public = fs::read_to_string(key.with_extension("pub")).unwrap();
        (key, public.trim().to_string())
    }

    /// A small forge-like tree: a Gitea data folder with a real JWT key (openssl) and an app.ini.
    pub fn gitea_tree(&self) -> PathBuf {
        let root = self.mkdir("srv/gitea", 0o750);
        self.mkdir("srv/gitea/jwt", 0o700);
        let pem = self.join("srv/gitea/jwt/private.pem");
        run_ok(Command::new("openssl").args([
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            pem.to_str().unwrap(),
        ]));
        fs::set_permissions(&pem, fs::Permissions::from_mode(0o600)).unwrap();
        self.write(
            "srv/gitea/conf/app.ini",
            b"[security]\nINSTALL_LOCK = true\nSECRET_KEY = not-a-real-secret\n",
            0o600,
        );
        fs::set_permissions(
            self.join("srv/gitea/conf"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        root
    }
}

pub fn fk(args: &[&str]) -> Output {
    fk_cmd(args).output().expect("run forgekeep")
}

pub fn fk_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("FORGEKEEP_PASSPHRASE_FILE")
        // Hermetic: never the host's /etc/forgekeep/config.toml (an empty file is an
        // empty configuration); tests that use one set FORGEKEEP_CONFIG or --config.
        .env("FORGEKEEP_CONFIG", "/dev/null");
    c
}

pub fn run_ok(c: &mut Command) -> Output {
    let out = c.output().expect("spawn");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sh(script: &str) -> Output {
    Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("bash")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn expect_code(o: &Output, want: i32) {
    assert_eq!(
        code(o),
        want,
        "exit code; stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The only archive in `dir`.
pub fn only_archive(dir: &Path) -> PathBuf {
    let all: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.zst.age"))
        .collect();
    assert_eq!(all.len(), 1, "archives in {}: {all:?}", dir.display());
    all[0].clone()
}

pub fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Backs `sources` up to `out` (a file path) for `recipient`; asserts exit 0 or 3.
pub fn backup(sources: &[&Path], recipient: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec!["backup".into()];
    args.extend(sources.iter().map(|s| s.display().to_string()));
    args.extend([
        "-r".into(),
        recipient.into(),
        "-o".into(),
        out.display().to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = fk(&refs);
    assert!(matches!(code(&o), 0 | 3), "backup failed: {}", stderr(&o));
    o
}

/// Requires an external tool; CI installs them (.ci/run), so a missing one is a failure.
pub fn require(tool: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is needed by this test (apt-get install it; .ci/run does)"
    );
}

/// `forgekeep restore --allow-untrusted ARCHIVE -i IDENTITY EXTRA...`: the tests make
/// their own archives, unsigned, and consent as an operator restoring their own archive
/// would (tests/signing.rs checks the trust rule itself, without this helper).
pub fn restore(archive: &Path, identity: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--allow-untrusted"];
    args.extend(extra);
    on_archive("restore", archive, identity, &args)
}

/// `forgekeep diff ARCHIVE -i IDENTITY EXTRA...`
pub fn diff(archive: &Path, identity: &Path, extra: &[&str]) -> Output {
    on_archive("diff", archive, identity, extra)
}

/// `forgekeep COMMAND ARCHIVE -i IDENTITY EXTRA...`
fn on_archive(command: &str, archive: &Path, identity: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        command,
        archive.to_str().unwrap(),
        "-i",
        identity.to_str().unwrap(),
    ];
    args.extend(extra);
    fk(&args)
}

/// Parses the one JSON object a `--json` run prints on stdout.
#[track_caller]
pub fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

/// Every name in `dir`, sorted (a finished run leaves nothing but its archive: no temp
/// file, no lock file).
pub fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    v.sort();
    v
}

/// A real RSA private key in PKCS#8 PEM (what Gitea writes as jwt/private.pem), 0600.
pub fn openssl_rsa(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    run_ok(Command::new("openssl").args([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        path.to_str().unwrap(),
    ]));
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A real Ed25519 private key in PKCS#8 PEM (an EdDSA signing key), 0600.
pub fn openssl_ed25519(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    run_ok(Command::new("openssl").args([
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        path.to_str().unwrap(),
    ]));
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A real OpenSSH host key pair without passphrase at `path` (+ `.pub`); `extra` e.g.
/// `["-b", "2048", "-m", "PEM"]` for an RSA key in Gitea's format.
pub fn ssh_host_key(path: &Path, kind: &str, extra: &[&str]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", "host", "-f"];
    args.push(path.to_str().unwrap());
    args.extend(extra);
    run_ok(Command::new("ssh-keygen").args(&args));
}

/// The findings of a `--json` report with this code.
pub fn findings_with<'a>(v: &'a serde_json::Value, code: &str) -> Vec<&'a serde_json::Value> {
    v["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["code"] == code).collect())
        .unwrap_or_default()
}

/// Every item path of every profile in a `check --json` report.
pub fn item_paths(v: &serde_json::Value) -> Vec<String> {
    v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter())
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect()
}

/// The paths of the entries of a `list --json` report.
pub fn entry_paths(list: &serde_json::Value) -> Vec<String> {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

/// Restores all of `archive` under `dir` (the recorded absolute paths below it): with
/// `--root` as root (owners set), with `--to` otherwise (a non-root user cannot give the
/// recorded owners, e.g. root's of `/tmp`, and restore refuses rather than half-do it).
pub fn restore_under(archive: &Path, identity: &Path, dir: &Path) -> Output {
    let flag = if is_root() { "--root" } else { "--to" };
    restore(archive, identity, &[flag, dir.to_str().unwrap()])
}

/// Holds an flock on `lock` in a child process (bash exec'ing into sleep, so the one
/// process holding the descriptor is the one we kill) until the guard is dropped.
pub struct Holder(std::process::Child);

impl Holder {
    pub fn hold(lock: &Path) -> Holder {
        require("flock");
        let mut child = Command::new("bash")
            .args([
                "-c",
                r#"exec 9<>"$1" && flock -n 9 && echo locked && exec sleep 60"#,
                "holder",
                lock.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `forgekeep list ARCHIVE -i KEY --json`, which must succeed.
pub fn list_json(archive: &Path, key: &Path) -> serde_json::Value {
    let o = fk(&[
        "list",
        archive.to_str().unwrap(),
        "-i",
        key.to_str().unwrap(),
        "--json",
    ]);
    expect_code(&o, 0);
    json_of(&o)
}

/// The manifest source recorded for the host path `p` (by absolute path or as given).
pub fn source_for<'a>(list: &'a serde_json::Value, p: &Path) -> &'a serde_json::Value {
    let want = p.display().to_string();
    list["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == want.as_str() || s["given"] == want.as_str())
        .unwrap_or_else(|| panic!("no source {want} in {}", list["sources"]))
}
