//! Object storage (`forgekeep::store`) against a real S3 server: moto on 127.0.0.1.
//!
//! Phase 1 of issue 11 has no `s3://` on the command line yet, so these tests drive the
//! library directly; the round trips move to the real binary when the commands take
//! object URLs. The memory test and the killed-upload test run the upload in a child
//! process (this test binary, re-run on one ignored test) so that its peak RSS and its
//! death are its own.

mod commands;
pub mod proxy;
pub mod server;

use forgekeep::store::{
    Deleted, Download, LockMode, ObjectUrl, Retention, S3Options, S3Store, Settings, Upload,
    UploadOptions,
};
use proxy::{Faults, Proxy};
use server::{ACCESS_KEY, SECRET_KEY};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------- helpers

/// A credentials file (mode 0600) with the test key, shared by the tests.
fn credentials_file() -> PathBuf {
    static FILE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = FILE.get_or_init(|| tempfile::Builder::new().prefix("fk-s3.").tempdir().unwrap());
    let path = dir.path().join("credentials");
    if !path.exists() {
        let tmp = dir
            .path()
            .join(format!("credentials.{:?}", std::thread::current().id()));
        std::fs::write(
            &tmp,
            format!("[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// Settings for `endpoint`, from a table only (the process environment is not consulted).
fn settings(endpoint: &str) -> Settings {
    let opts = S3Options {
        endpoint: Some(endpoint.into()),
        credentials_file: Some(credentials_file()),
        ..Default::default()
    };
    Settings::resolve_with(&opts, &|_| None).unwrap()
}

fn store(endpoint: &str) -> Arc<S3Store> {
    S3Store::connect(&settings(endpoint)).unwrap()
}

/// The SDK client the tests use as "someone else": bucket setup and competing writers.
struct Admin {
    rt: tokio::runtime::Runtime,
    c: aws_sdk_s3::Client,
}

fn admin_client(endpoint: &str) -> Admin {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "test",
        ))
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    Admin {
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
        c: aws_sdk_s3::Client::from_conf(conf),
    }
}

impl Admin {
    fn bucket(&self, name: &str, object_lock: bool) {
        self.rt
            .block_on(
                self.c
                    .create_bucket()
                    .bucket(name)
                    .object_lock_enabled_for_bucket(object_lock)
                    .send(),
            )
            .unwrap();
    }

    fn default_retention(&self, bucket: &str, days: i32) {
        use aws_sdk_s3::types::*;
        let conf = ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .rule(
                ObjectLockRule::builder()
                    .default_retention(
                        DefaultRetention::builder()
                            .mode(ObjectLockRetentionMode::Governance)
                            .days(days)
                            .build(),
                    )
                    .build(),
            )
            .build();
        self.rt
            .block_on(
                self.c
                    .put_object_lock_configuration()
                    .bucket(bucket)
                    .object_lock_configuration(conf)
                    .send(),
            )
            .unwrap();
    }

    fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        self.rt
            .block_on(
                self.c
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .body(data.to_vec().into())
                    .send(),
            )
            .unwrap();
    }

    fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.rt.block_on(async {
            let out = self
                .c
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .ok()?;
            Some(out.body.collect().await.ok()?.to_vec())
        })
    }

    /// Keys with unfinished multipart uploads in the bucket.
    fn uploads(&self, bucket: &str) -> Vec<String> {
        let out = self
            .rt
            .block_on(self.c.list_multipart_uploads().bucket(bucket).send())
            .unwrap();
        let mut keys: Vec<String> = out
            .uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }

    fn start_upload(&self, bucket: &str, key: &str) {
        self.rt
            .block_on(
                self.c
                    .create_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .send(),
            )
            .unwrap();
    }

    /// Every version and delete marker of `key` (versioned buckets).
    fn versions(&self, bucket: &str, key: &str) -> usize {
        let out = self
            .rt
            .block_on(
                self.c
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(key)
                    .send(),
            )
            .unwrap();
        out.versions().len() + out.delete_markers().len()
    }
}

/// The server and a new bucket on it, or None (after the SKIP line) without moto.
fn setup(bucket: &str, object_lock: bool) -> Option<(&'static server::Moto, Admin)> {
    let moto = server::moto()?;
    let admin = admin_client(&moto.endpoint);
    admin.bucket(bucket, object_lock);
    Some((moto, admin))
}

fn url(bucket: &str, key: &str) -> ObjectUrl {
    ObjectUrl::parse(&format!("s3://{bucket}/{key}")).unwrap()
}

/// Incompressible bytes, the same for the same seed (xorshift64*).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn upload(
    store: &Arc<S3Store>,
    u: &ObjectUrl,
    data: &[u8],
    opts: UploadOptions,
) -> forgekeep::error::Result<forgekeep::store::Committed> {
    let mut up = Upload::create(store.clone(), u, opts)?;
    // Odd-sized writes, as the archive writer's are.
    for chunk in data.chunks(100_003) {
        up.write_all(chunk)
            .map_err(|e| forgekeep::error::Error::runtime(e.to_string()))?;
    }
    up.commit()
}

fn download(store: &Arc<S3Store>, u: &ObjectUrl) -> Vec<u8> {
    let mut d = Download::open(store.clone(), u).unwrap();
    let mut out = Vec::new();
    d.read_to_end(&mut out).unwrap();
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn assert_no_secret(text: &str) {
    assert!(
        !text.contains(SECRET_KEY),
        "the secret key was printed: {text}"
    );
}

// ---------------------------------------------------------------- round trips

#[test]
fn round_trip_of_a_small_and_a_multipart_archive() {
    let Some((moto, admin)) = setup("round-trip", false) else {
        return;
    };
    let s = store(&moto.endpoint);
    for (key, len) in [
        ("f/small.age", 300_000),
        ("f/large.age", 20 * MIB + 7),
        ("f/empty.age", 0),
    ] {
        let data = noise(len as u64, len);
        let c = upload(&s, &url("round-trip", key), &data, UploadOptions::default()).unwrap();
        assert_eq!(c.size, len as u64);
        assert!(
            download(&s, &url("round-trip", key)) == data,
            "{key} differs"
        );
    }
    let listed = s.list(&url("round-trip", "f/")).unwrap();
    let names: Vec<(&str, u64)> = listed
        .iter()
        .map(|o| (o.url.key.as_str(), o.size))
        .collect();
    assert_eq!(
        names,
        [
            ("f/empty.age", 0),
            ("f/large.age", 20 * MIB as u64 + 7),
            ("f/small.age", 300_000)
        ]
    );
    assert!(listed.iter().all(|o| o.last_modified.is_some()));
    assert!(admin.uploads("round-trip").is_empty());
    // Sub-folders are not part of a folder's listing, as with local folders.
    admin.put("round-trip", "f/sub/x.age", b"x");
    assert_eq!(s.list(&url("round-trip", "f/")).unwrap().len(), 3);
}

// ---------------------------------------------------------------- never replace

#[test]
fn an_existing_name_is_refused_at_once_and_replaced_only_when_asked() {
    let Some((moto, admin)) = setup("exists", false) else {
        return;
    };
    let s = store(&moto.endpoint);
    let u = url("exists", "a.age");
    upload(&s, &u, b"first", UploadOptions::default()).unwrap();
    let e = Upload::create(s.clone(), &u, UploadOptions::default())
        .err()
        .expect("refused");
    assert_eq!(e.to_string(), "s3://exists/a.age already exists (hint: choose another name or an output folder, or pass --force to replace it)");
    let replace = UploadOptions {
        replace: true,
        ..Default::default()
    };
    upload(&s, &u, b"second", replace).unwrap();
    assert_eq!(admin.get("exists", "a.age").unwrap(), b"second");
}

/// A writer that commits while our parts are uploading is caught by the HEAD before the
/// final request; one that commits between that HEAD and the final request is caught by
/// `If-None-Match: *`. Either way the other archive survives and ours leaves nothing.
#[test]
fn a_concurrent_writer_is_never_replaced() {
    let Some((moto, admin)) = setup("race", false) else {
        return;
    };
    let proxy = Proxy::start(&moto.endpoint, Faults::None);
    let s = store(&proxy.endpoint);
    for (key, len) in [("small.age", 1000), ("large.age", 12 * MIB)] {
        // Guard 2: the other archive appears while ours is being written.
        let mut up =
            Upload::create(s.clone(), &url("race", key), UploadOptions::default()).unwrap();
        up.write_all(&noise(1, len)).unwrap();
        admin.put("race", key, b"theirs");
        let e = up.commit().unwrap_err();
        // Said by guard 2 (the HEAD before the final request), not by the store.
        assert!(
            e.to_string()
                .starts_with(&format!("s3://race/{key} already exists")),
            "{e}"
        );
        assert_eq!(admin.get("race", key).unwrap(), b"theirs");
        assert!(
            admin.uploads("race").is_empty(),
            "{key}: the multipart upload was not aborted"
        );
    }
    for (key, len) in [("small2.age", 1000), ("large2.age", 12 * MIB)] {
        // Guard 3: the other archive appears just before our final request is forwarded.
        let other = admin_client(&moto.endpoint);
        let key_owned = key.to_string();
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = fired.clone();
        proxy.before_forwarding(move |r| {
            let final_request = (r.method == "PUT" && !r.target.contains("partNumber"))
                || (r.method == "POST" && r.target.contains("uploadId"));
            if final_request
                && r.target.contains(&key_owned)
                && !f.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                other.put("race", &key_owned, b"theirs");
            }
        });
        let e = upload(
            &s,
            &url("race", key),
            &noise(2, len),
            UploadOptions::default(),
        )
        .unwrap_err();
        assert!(fired.load(std::sync::atomic::Ordering::SeqCst));
        // Said by the store's answer to If-None-Match on the final request.
        assert!(
            e.to_string()
                .starts_with(&format!("cannot upload s3://race/{key}: it already exists")),
            "{e}"
        );
        assert_eq!(admin.get("race", key).unwrap(), b"theirs");
        assert!(
            admin.uploads("race").is_empty(),
            "{key}: the multipart upload was not aborted"
        );
    }
}

// ---------------------------------------------------------------- failures leave nothing

#[test]
fn an_upload_dropped_without_commit_leaves_no_object_and_no_parts() {
    let Some((moto, admin)) = setup("dropped", false) else {
        return;
    };
    let s = store(&moto.endpoint);
    let u = url("dropped", "forgekeep-h-20260101T000000Z.tar.zst.age");
    let mut up = Upload::create(s.clone(), &u, UploadOptions::default()).unwrap();
    up.write_all(&noise(3, 20 * MIB)).unwrap();
    assert_eq!(
        admin.uploads("dropped").len(),
        1,
        "parts were being uploaded"
    );
    drop(up);
    assert!(admin.uploads("dropped").is_empty());
    assert!(admin.get("dropped", &u.key).is_none());
}

#[test]
fn a_run_killed_mid_upload_leaves_no_object_and_a_later_run_cleans_its_parts() {
    let Some((moto, admin)) = setup("killed", false) else {
        return;
    };
    let key = "nightly/forgekeep-h-20260101T000000Z.tar.zst.age";
    let mut child = child("kill-me", &moto.endpoint, &format!("s3://killed/{key}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // After libtest's own words, on its "test … " line.
    let said = BufReader::new(child.stdout.as_mut().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.ends_with("PARTS-SENT"));
    assert!(said.is_some(), "the child died before sending parts");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        admin.get("killed", key).is_none(),
        "a killed run left an object"
    );
    assert_eq!(admin.uploads("killed"), [key]);
    let s = store(&moto.endpoint);
    // (moto dates every upload 2010-11-10, so the age limit is tested in objects.rs.)
    let cleaned = s
        .cleanup_stale_uploads(&url("killed", "nightly/"), jiff::SignedDuration::ZERO, None)
        .unwrap();
    assert_eq!(cleaned, [url("killed", key)]);
    assert!(admin.uploads("killed").is_empty());
}

#[test]
fn only_forgekeeps_own_stale_uploads_are_cleaned() {
    let Some((moto, admin)) = setup("stale", false) else {
        return;
    };
    for key in [
        "p/forgekeep-git-20260101T000000Z.tar.zst.age",
        "p/restore-undo-git-20260101T000000Z.tar.zst.age",
        "p/database-dump.sql",
        "p/sub/forgekeep-git-20260101T000000Z.tar.zst.age",
        "forgekeep-git-20260101T000000Z.tar.zst.age",
    ] {
        admin.start_upload("stale", key);
    }
    let s = store(&moto.endpoint);
    let mut cleaned: Vec<String> = s
        .cleanup_stale_uploads(&url("stale", "p/"), jiff::SignedDuration::ZERO, None)
        .unwrap()
        .into_iter()
        .map(|u| u.key)
        .collect();
    cleaned.sort();
    assert_eq!(
        cleaned,
        [
            "p/forgekeep-git-20260101T000000Z.tar.zst.age",
            "p/restore-undo-git-20260101T000000Z.tar.zst.age"
        ]
    );
    assert_eq!(
        admin.uploads("stale"),
        [
            "forgekeep-git-20260101T000000Z.tar.zst.age",
            "p/database-dump.sql",
            "p/sub/forgekeep-git-20260101T000000Z.tar.zst.age"
        ]
    );
}

// ---------------------------------------------------------------- Object Lock

#[test]
fn object_lock_retention_is_set_per_object_and_keeps_it_from_deletion() {
    let Some((moto, admin)) = setup("locked", true) else {
        return;
    };
    let s = store(&moto.endpoint);
    let until = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 86_400).unwrap();
    let lock = Retention {
        mode: LockMode::Governance,
        until,
    };
    for (key, len) in [("small.age", 1000), ("large.age", 12 * MIB)] {
        let u = url("locked", key);
        let opts = UploadOptions {
            lock: Some(lock),
            ..Default::default()
        };
        upload(&s, &u, &noise(4, len), opts).unwrap();
        assert_eq!(s.retention(&u).unwrap(), Some(lock), "{key}");
        let d = s.delete(&u).unwrap();
        assert_eq!(d, Deleted::Kept(Some(lock)));
        assert!(
            d.to_string().starts_with("kept by object lock until "),
            "{d}"
        );
        assert_eq!(
            admin.get("locked", key).unwrap().len(),
            len,
            "{key} was deleted"
        );
    }
    // An archive without retention in the same bucket is deleted, every byte of it:
    // by version id, not hidden behind a delete marker.
    let u = url("locked", "free.age");
    upload(&s, &u, b"free", UploadOptions::default()).unwrap();
    assert_eq!(s.retention(&u).unwrap(), None);
    assert_eq!(s.delete(&u).unwrap(), Deleted::Gone);
    assert_eq!(admin.versions("locked", "free.age"), 0);
    assert_eq!(
        s.delete(&u).unwrap(),
        Deleted::Gone,
        "deleting twice is fine"
    );
}

/// A bucket with a default retention requires a checksum header on every PutObject
/// (AWS, and moto after it): without one, the upload would fail. (moto applies the
/// default retention to PutObject only, not to a completed multipart upload, so the
/// retention is checked on the small archive; the large one must simply succeed.)
#[test]
fn a_bucket_default_retention_is_honoured() {
    let Some((moto, admin)) = setup("default-lock", true) else {
        return;
    };
    admin.default_retention("default-lock", 2);
    let s = store(&moto.endpoint);
    let small = url("default-lock", "small.age");
    upload(&s, &small, &noise(5, 1000), UploadOptions::default()).unwrap();
    let r = s
        .retention(&small)
        .unwrap()
        .expect("the bucket's default retention");
    assert_eq!(r.mode, LockMode::Governance);
    assert!(
        r.until > jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
        "{r:?}"
    );
    assert!(matches!(s.delete(&small).unwrap(), Deleted::Kept(Some(_))));
    let large = url("default-lock", "large.age");
    upload(&s, &large, &noise(5, 12 * MIB), UploadOptions::default()).unwrap();
    assert_eq!(download(&s, &large).len(), 12 * MIB);
}

// ---------------------------------------------------------------- faults

#[test]
fn upload_and_download_survive_resets_and_slow_downs() {
    let Some((moto, admin)) = setup("flaky", false) else {
        return;
    };
    let proxy = Proxy::start(&moto.endpoint, Faults::Flaky);
    let s = store(&proxy.endpoint);
    for (key, len) in [("small.age", 200_000), ("large.age", 40 * MIB + 3)] {
        let data = noise(6, len);
        let u = url("flaky", key);
        upload(&s, &u, &data, UploadOptions::default()).unwrap();
        let mut d = Download::open(s.clone(), &u).unwrap();
        let mut back = Vec::new();
        d.read_to_end(&mut back).unwrap();
        assert!(back == data, "{key} differs after the round trip");
        assert!(
            d.resumes() > 0,
            "{key}: the download was never cut, so never resumed"
        );
    }
    let st = &proxy.stats;
    assert!(
        proxy.count(&st.resets) > 0
            && proxy.count(&st.slow_downs) > 0
            && proxy.count(&st.cut_responses) > 0,
        "{st:?}"
    );
    assert!(proxy.count(&st.puts_with_checksum) >= 6, "{st:?}");
    assert_eq!(
        proxy.count(&st.puts_without_checksum),
        0,
        "a part went without its checksum: {st:?}"
    );
    assert!(admin.uploads("flaky").is_empty());
}

// ---------------------------------------------------------------- permanent errors

#[test]
fn permanent_failures_are_one_line_at_once() {
    let Some(moto) = server::moto() else { return };
    let proxy = Proxy::start(&moto.endpoint, Faults::None);
    let s = store(&proxy.endpoint);
    // HeadObject on a missing bucket is a bare 404 (no such object); the PutObject then
    // names the bucket.
    let e = upload(
        &s,
        &url("no-such-bucket", "a.age"),
        b"x",
        UploadOptions::default(),
    )
    .unwrap_err();
    let line = e.to_string();
    assert!(
        line.contains("the bucket no-such-bucket does not exist"),
        "{line}"
    );
    assert!(e.hint.is_some() && !line.contains('\n'), "{line}");
    assert!(
        proxy.count(&proxy.stats.requests) <= 3,
        "retried a permanent failure: {:?}",
        proxy.stats
    );
    let missing = Download::open(s.clone(), &url("no-such-bucket", "a.age"))
        .err()
        .unwrap();
    assert!(missing.to_string().contains("no such object"), "{missing}");
    assert_no_secret(&format!("{e} {e:?} {missing:?} {s:?}"));
}

// ---------------------------------------------------------------- memory, in a child

/// The child process: the test binary re-run on [`child_process`] with FK_S3_CHILD set.
fn child(mode: &str, endpoint: &str, target: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "s3::child_process",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("FK_S3_CHILD", mode)
    .env("FK_S3_TARGET", target)
    // The environment alone configures the store here, as it will for cron jobs.
    .env("AWS_ENDPOINT_URL", endpoint)
    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    .env("AWS_REGION", "us-east-1")
    .env("RUST_LOG", "trace")
    .stdin(Stdio::null());
    c
}

/// 256 MiB of incompressible data through the uploader and back, in a child process
/// whose peak RSS is its own: within the 64 MiB the issue allows for 1 GiB.
#[test]
fn a_256_mib_upload_and_download_stay_within_64_mib() {
    let Some((moto, _)) = setup("big", false) else {
        return;
    };
    let out = child(
        "memory",
        &moto.endpoint,
        "s3://big/forgekeep-h-20260101T000000Z.tar.zst.age",
    )
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_no_secret(&text);
    let field = |name: &str| -> String {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    let expected = hex(&Sha256::digest(noise(7, child_len())));
    assert_eq!(field("sha256"), expected);
    let rss: u64 = field("peak_rss_kib").parse().unwrap();
    assert!(rss < 64 * 1024, "peak RSS {rss} KiB");
    // The figures (not asserted: the machine is shared), for the notes.
    for line in text.lines().filter(|l| l.contains("mib_s=")) {
        let figures = line.trim_start_matches("test s3::child_process ... ");
        let _ = writeln!(std::io::stderr(), "s3 memory test: {figures}");
    }
}

/// 256 MiB; FK_S3_CHILD_MIB=1024 measures the 1 GiB of the bound by hand.
fn child_len() -> usize {
    std::env::var("FK_S3_CHILD_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(256)
        * MIB
}

#[test]
#[ignore = "the child process of the memory and killed-upload tests, run by them"]
fn child_process() {
    let mode =
        std::env::var("FK_S3_CHILD").expect("run by a_256_mib_upload… or a_run_killed…, not alone");
    let _ = env_logger::builder().is_test(false).try_init();
    let target = ObjectUrl::parse(&std::env::var("FK_S3_TARGET").unwrap()).unwrap();
    let settings = Settings::resolve(&S3Options::default()).unwrap();
    let s = S3Store::connect(&settings).unwrap();
    let start_rss = peak_rss_kib();
    let mut up = Upload::create(s.clone(), &target, UploadOptions::default()).unwrap();
    // Generated as it goes, 1 MiB at a time: the data is never all in memory.
    let mut x = 7u64 | 1;
    let mut block = vec![0u8; MIB];
    let started = std::time::Instant::now();
    let mut written = 0;
    let len = child_len();
    while written < len {
        for w in block.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            w.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        up.write_all(&block).unwrap();
        written += MIB;
        if mode == "kill-me" && written == 24 * MIB {
            println!("PARTS-SENT");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
    }
    up.commit().unwrap();
    let up_secs = started.elapsed().as_secs_f64();
    let upload_rss = peak_rss_kib();
    let started = std::time::Instant::now();
    let mut d = Download::open(s.clone(), &target).unwrap();
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = d.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    let down_secs = started.elapsed().as_secs_f64();
    let (disk_write, disk_read) = local_disk_baseline();
    println!("disk_write_mib_s={disk_write:.1} disk_read_mib_s={disk_read:.1}");
    println!(
        "sha256={} peak_rss_kib={} connected_rss_kib={start_rss} upload_peak_rss_kib={upload_rss} upload_mib_s={:.1} download_mib_s={:.1}",
        hex(&hash.finalize()),
        peak_rss_kib(),
        (child_len() / MIB) as f64 / up_secs,
        (child_len() / MIB) as f64 / down_secs
    );
}

/// The same bytes written to (with fsync, as forgekeep does) and read from a local
/// file: the baseline the throughput figures are compared with, in the same run.
fn local_disk_baseline() -> (f64, f64) {
    let dir = tempfile::Builder::new()
        .prefix("fk-s3-disk.")
        .tempdir_in("/var/tmp")
        .unwrap();
    let path = dir.path().join("archive");
    let started = std::time::Instant::now();
    let mut f = std::fs::File::create(&path).unwrap();
    let data = noise(7, 8 * MIB);
    for _ in 0..child_len() / data.len() {
        f.write_all(&data).unwrap();
    }
    f.sync_all().unwrap();
    let write = (child_len() / MIB) as f64 / started.elapsed().as_secs_f64();
    drop(f);
    let started = std::time::Instant::now();
    let mut f = std::fs::File::open(&path).unwrap();
    let mut buf = vec![0u8; 256 << 10];
    while f.read(&mut buf).unwrap() > 0 {}
    let read = (child_len() / MIB) as f64 / started.elapsed().as_secs_f64();
    (write, read)
}

/// This process's peak RSS: VmHWM, the high-water mark of its own memory map.
/// (getrusage's ru_maxrss would not do: Linux carries it across fork and exec, so the
/// child would report the test binary's peak at the moment it was forked.)
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}
