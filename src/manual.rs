//! Text of the manual that clap cannot derive: the configuration file and the JSON
//! reports. It lives next to the code (not only in the README) because monitoring and
//! scripts parse these reports for years: the schema is part of the contract, printed
//! in `forgekeep(1)` by `generate man`, and a test runs every command with `--json` and
//! checks each key it prints is documented here.

/// The CONFIGURATION section: the commented example file, verbatim.
pub const CONFIGURATION: &str = concat!(
    "forgekeep reads /etc/forgekeep/config.toml when it exists, or the file named by \
--config FILE (or FORGEKEEP_CONFIG). backup, check, prune and status read the job; restore, \
verify, list and diff only its [trust] and [s3] tables (and ignore a broken file). Flags override \
it: command-line sources (paths, -p, --compose) replace the file's sources as a whole, \
-r/-R/--passphrase replace its recipients, --keep-* flags replace its retention rules. \
Unknown keys are errors that name the key and the line. Relative paths are relative to \
the file's folder. The example below is examples/config.toml:\n\n",
    include_str!("../examples/config.toml")
);

/// The EXIT STATUS section of each command's page: (code, meaning) for the codes that
/// command can return. The main page lists them all.
pub fn exit_status(command: Option<&str>) -> Vec<(i32, &'static str)> {
    const USAGE: (i32, &str) = (2, "usage error: a bad flag or value, a missing argument");
    const RUNTIME: (i32, &str) = (
        1,
        "runtime error (I/O, a file that cannot be read or written)",
    );
    const INTEGRITY: (i32, &str) = (
        4,
        "integrity failure: a corrupt, truncated or tampered archive, a checksum mismatch, an unsafe entry",
    );
    const NO_KEY: (i32, &str) = (5, "no identity matches, or a wrong passphrase");
    const LOCKED: (i32, &str) = (6, "another forgekeep run holds the lock on the folder");
    match command {
        Some("backup") => vec![
            (0, "the archive was written; no warnings"),
            (1, "no archive: a runtime error (I/O, disk full), a source that cannot be read or changed while read, or --strict and warnings"),
            USAGE,
            (3, "the archive was written, with warnings or with errors of the profiles (a secret missing or on no persistent storage): see FINDINGS"),
            LOCKED,
        ],
        Some("restore") => vec![
            (0, "restored (with --dry-run: the restore would go through)"),
            RUNTIME,
            USAGE,
            INTEGRITY,
            NO_KEY,
            (7, "refused: existing files differ from the archive and --force was not given; nothing changed"),
        ],
        Some("verify") => vec![
            (0, "every entry and checksum matches (with --latest: and the newest archive is young enough)"),
            (1, "runtime error (I/O), or with --latest and --max-age: the newest archive is older than AGE"),
            USAGE,
            INTEGRITY,
            NO_KEY,
        ],
        Some("list") => vec![(0, "listed"), RUNTIME, USAGE, INTEGRITY, NO_KEY],
        Some("diff") => vec![
            (0, "the live files match the archive"),
            (3, "something differs (missing, changed, drift, extra)"),
            RUNTIME,
            USAGE,
            INTEGRITY,
            NO_KEY,
        ],
        Some("check") => vec![
            (0, "clean"),
            (3, "warnings found"),
            (1, "errors found (see FINDINGS), or the check itself failed"),
            USAGE,
        ],
        Some("detect") => vec![(0, "done, whether or not anything was found"), RUNTIME, USAGE],
        Some("prune") => vec![
            (0, "pruned (or, with --dry-run, planned); archives Object Lock keeps are reported, not an error"),
            RUNTIME,
            (2, "usage error, also: no retention rule (every --keep-* absent or 0, and no [retention] for this folder)"),
            LOCKED,
        ],
        Some("status") => vec![
            (0, "listed (and, with --max-age, every host's newest archive is young enough)"),
            (1, "runtime error (the folder or bucket cannot be listed), or with --max-age a host's newest archive is older than AGE (or there is none), or a host named by --host has no archive"),
            USAGE,
        ],
        Some("keygen") => vec![
            (0, "the identity was written"),
            (1, "the file exists (never overwritten) or cannot be written"),
            USAGE,
        ],
        _ => vec![
            (0, "success"),
            (1, "runtime error (I/O, unreadable source, file changed while read, --strict findings)"),
            (2, "usage error"),
            (3, "done, with warnings (the archive was written); check: warnings found; diff: differences found"),
            INTEGRITY,
            NO_KEY,
            LOCKED,
            (7, "restore refused: existing files differ and --force was not given"),
        ],
    }
}

/// The environment variables forgekeep reads: (name, the commands that read it, what
/// it does). Each page lists those of its command; the main page all.
pub const ENVIRONMENT: [(&str, &[&str], &str); 10] = [
    (
        "FORGEKEEP_CONFIG",
        &["backup", "check", "prune", "status", "restore", "verify", "list", "diff"],
        "The configuration file when --config is not given (default: /etc/forgekeep/config.toml, read when it exists).",
    ),
    (
        "FORGEKEEP_PASSPHRASE_FILE",
        &["backup", "restore", "verify", "list", "diff"],
        "A file whose first line is the passphrase (--passphrase, passphrase-protected identity files), for scripts; without it the passphrase is asked on the terminal. Never on the command line.",
    ),
    (
        "FORGEKEEP_NO_PROGRESS",
        &["backup", "restore", "verify"],
        "When set, no progress bar is drawn (one appears only on a terminal, for archives over 32 MiB, without -q or --json).",
    ),
    (
        "FORGEKEEP_LOG",
        &[],
        "Log filter in env_logger syntax (e.g. debug), over -q and -v.",
    ),
    (
        "TMPDIR",
        &["backup"],
        "Where SQLite database copies are made (default /tmp), used only when nobody but root can rename anything on its path.",
    ),
    (
        "AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3",
        S3_COMMANDS,
        "For s3:// archives: the endpoint of an S3-compatible store (Garage, MinIO, Ceph, R2, B2: e.g. http://127.0.0.1:3900); the S3 one wins; [s3] endpoint wins over both. Without any, AWS itself. A custom endpoint means path-style addressing unless [s3] addressing-style says otherwise.",
    ),
    (
        "AWS_REGION, AWS_DEFAULT_REGION",
        S3_COMMANDS,
        "For s3:// archives: the region ([s3] region wins; then the profile's region; us-east-1 with a custom endpoint, an error for AWS without one). Garage wants its own s3_region.",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        S3_COMMANDS,
        "For s3:// archives: the credentials, tried first. They are handed to the AWS SDK and never printed, logged or put in --json.",
    ),
    (
        "AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, AWS_CONFIG_FILE",
        S3_COMMANDS,
        "For s3:// archives without credentials in the environment: the shared credentials file (default ~/.aws/credentials; [s3] credentials-file wins) and its profile (default default; [s3] profile wins); a profile may assume a role. A credentials file readable by others is a credentials-readable finding.",
    ),
    (
        "AWS_MAX_ATTEMPTS",
        S3_COMMANDS,
        "For s3:// archives: attempts per request, 1 to 20 (default 8): resets, timeouts, 500/502/503/504 and SlowDown are retried with backoff; a download resumes from its last good byte.",
    ),
];

/// The commands that reach an object store.
const S3_COMMANDS: &[&str] = &[
    "backup", "check", "restore", "verify", "list", "diff", "prune", "status",
];

/// The JSON OUTPUT section. Every key a command prints must appear here (a test checks).
pub const JSON_OUTPUT: &str = r#"With --json every command prints exactly one JSON object on stdout (human text moves to stderr). Keys are stable; new keys may be added. Every object has "ok" (true when the command did what it was asked, false for an error or, for check and diff, when something needs attention) and, except errors, "command".

error (any command, exit code != 0 and != 3): {"ok": false, "exit_code": N, "error": "one line", "hint": "what to do" | null}

finding (in backup, check, list): {"code": "world-readable" | "group-readable" | "writable" | "parent-writable" | "owner-mismatch" | "symlink-escapes" | "source-is-symlink" | "special-skipped" | "name-not-utf8" | "unreadable" | "changed-while-read" | "secret-missing" | "mode-too-open" | "owner-unexpected" | "config-problem" | "not-persistent" | "volume-unknown" | "job-problem" | "untrusted-symlink" | "credentials-readable", "severity": "info" | "warning" | "error", "path", "message", "fix"}

signature (in verify, list, diff, restore): {"signed": bool, "trusted": bool (a trust file vouches for it), "key"?: "ED25519 SHA256:…" (the signer), "principal"?: the host the trust file line matched, "trust_file"?, "trust_line"?: line number}

entry (in backup --dry-run, list): {"path", "type": "file" | "dir" | "symlink", "role": "content" | "ancestor", "source": index into sources, "size", "mode": "0600", "uid", "gid", "user"?, "group"?, "mtime": seconds, "target"? (symlinks), "sha256"? (list: files)}

backup: {"command": "backup", "archive": path | "-", "size": bytes | null, "entries", "files", "content_bytes", "signed_by": "ED25519 SHA256:…" | null (with --sign), "findings": [finding], "duration_ms", "prune"?: prune object without "command" (with --keep-*, or [retention] for the configured output folder; this host's archives only), "prune_skipped"?: why no pruning was done (the archive lacks secrets older ones may hold)}
backup --dry-run: {"command": "backup", "dry_run": true, "archive"?: the path the archive would get | "-" (absent without an output), "entries": [entry], "findings": [finding], "prune"?: prune object without "command", the plan retention would carry out after the real run ("dry_run": true, "deleted": [])}; when the real run would be refused (an unreadable source, strict): "ok": false, "exit_code", "error", "hint" in the same object

restore: {"command": "restore", "archive", "dry_run", "steps": [{"action": "create" | "replace" | "fix-metadata" | "unchanged" | "conflict", "path", "dest", "type", "mode", "uid", "gid", "reason"?}], "mappings": [{"kind": "user" | "group", "recorded", "to", "how"}], "counts": {"create", "replace", "fix_metadata", "unchanged", "conflict"}, "undo_archive": path | null, "warnings": [text], "signature": signature}

verify: {"command": "verify", "archive", "host", "created": RFC 3339, "signature": signature, "entries", "files", "content_bytes", "age_seconds"? and "max_age_seconds"? (with --latest); when the newest archive is older than --max-age: "ok": false, "stale": true, "exit_code": 1, "error", "hint"}

list: {"command": "list", "archive", "format", "version", "tool", "host", "created", "signature": signature, "exclude"? (the backup's --exclude globs), "sources": [{"given", "path", "profile"?, "ownership": "name" | "numeric", "what"?, "container_path"?}], "findings": [finding], "entries": [entry]}

diff: {"command": "diff", "archive", "created", "host", "signature": signature, "differences": [{"change": "missing" | "changed" | "drift" | "extra" | "unreadable", "path", "recorded"?, "detail", "consequence"?}], "counts": {"missing", "changed", "drift", "extra", "unreadable"}}

check: {"command": "check", "profiles": [profile], "paths": [{"path", "label"?, "status"}] (sources that are no profile's item: plain paths, compose files), "job"?: {"config", "parts": [{"what", "path", "status"}]} (when the configured job was checked: no sources on the command line), "entries", "findings": [finding], "errors", "warnings"}
profile: {"forge": "gitea" | "forgejo" | "woodpecker" | "woodpecker-agent" | "gitlab" | "gogs" | "drone", "layout": "native" | "docker" | "docker-rootless", "config"?, "service"?, "compose"?, "items": [{"path", "container_path"?, "what", "kind": "file" | "dir" | "sqlite", "required", "regenerates", "signing_key", "owner"?, "max_mode"?}], "findings": [finding]}

detect: {"command": "detect", "installations": [{"forge", "config"?, "via", "profile"?: profile}], "compose": [{"file", "services": [{"name", "image", "forge"?, "layout"?}]}]}

prune: {"command": "prune", "dir": the folder or s3:// prefix, "dry_run", "kept": [{"name", "host", "time": RFC 3339, "reasons": [text]}], "to_delete": [name] (the plan), "deleted": [name] (what was deleted: the plan less what Object Lock keeps, or [] with --dry-run), "locked": [{"name", "until": RFC 3339 | null, "mode": "governance" | "compliance" | null}] (of the plan, what Object Lock keeps: not deleted, not an error; null when the store does not say)}

status: {"command": "status", "folder": the folder or s3:// prefix, "hosts": [{"host", "newest": its newest archive's name, "newest_time": RFC 3339 (from the name), "age_seconds", "archives": how many, "bytes": their total size, "stale"?: bool (with --max-age)}], "archives", "bytes" (over the hosts shown), "max_age_seconds"? and "stale_hosts"?: [host] (with --max-age), "missing_hosts"?: [host] (named by --host, no archive); when a host is stale or missing: "ok": false, "exit_code": 1, "error", "hint"}

keygen: {"command": "keygen", "identity_file", "recipient"}; with --sign: {"command": "keygen", "signing_key_file", "public_key": "ssh-ed25519 …", "fingerprint": "ED25519 SHA256:…", "trust_line": the line for a trust file}"#;

/// The TRUST section (forgekeep(1), and the pages of the commands it concerns).
pub const TRUST: &str = "age encrypts; it does not say who encrypted. The recipient sits on the forge host, often in a world-readable file, and anyone who has it can make an archive that decrypts and passes every checksum, with sources of their choosing (/etc/cron.d, /root/.ssh). So forgekeep signs archives on the backup host and checks the signature before a restore writes anything.

Signing: forgekeep keygen --sign -o /etc/forgekeep/signing-key makes an Ed25519 key in OpenSSH format (0600, never overwritten) and prints its trust-file line, HOST namespaces=\"forgekeep\" ssh-ed25519 AAAA...; an existing OpenSSH Ed25519 key works too, the host's /etc/ssh/ssh_host_ed25519_key included (a passphrase-protected key asks for its passphrase, or reads FORGEKEEP_PASSPHRASE_FILE). backup --sign KEY (sign-key in [backup]) adds forgekeep/manifest.json.sig after the manifest and forgekeep/SHA256SUMS.sig after SHA256SUMS: sshsig signatures (what ssh-keygen -Y sign writes), namespace forgekeep, of the manifest's SHA256SUMS line and of SHA256SUMS, which lists the manifest and every file, so the signature covers every entry's content, path, type, owner, mode and link target, the sources, the host and the time. The key stays on the backup host, 0600, outside the backup folder; backup audits its permissions like any secret's. It signs; it cannot decrypt.

Trusting: --trust FILE on verify, list, diff and restore (signers in [trust]) names a file in OpenSSH's allowed_signers format: principals (patterns of the host names whose archives the key may sign), optional namespaces=, valid-after=, valid-before=, then the key. With it, each of these commands refuses with exit 4, before anything is written and with one line saying why: an unsigned archive; a signature that does not verify; a key the file does not list; a key listed only for other hosts than the one the manifest records (host A's key cannot sign an archive that claims to be host B's); a namespaces= that excludes forgekeep; a validity window that excludes the present time (as ssh-keygen -Y verify judges it). Success prints who signed it: signed by git.example.org, ED25519 SHA256:..., and --json carries it as \"signature\". Without a trust file a signed archive's signature is still checked (a bad one is exit 4), and the output names the key's fingerprint, not checked against a trust file.

Secure by default: a restore into the live tree (/, or --root DIR) from an archive no trust file vouches for (unsigned, or signed by a key no trust file lists; every archive made before signing existed) is refused with exit 4, nothing written, the archive's sources named, unless the operator consents with --allow-untrusted (or allow-untrusted = true in [trust]); with consent the sources are printed before the plan. --to DIR, --dry-run, verify, list and diff need no consent and say not authenticated. --allow-untrusted is accepted wherever restore runs. verify --latest DIR --trust FILE fails when the newest archive is not signed by a trusted key, so a forged archive dropped into the folder raises the monitoring alarm. The undo archive of restore --force is signed when restore is given --sign KEY; otherwise restoring it needs consent.

Without forgekeep: after age -d | zstd -d | tar -x, ssh-keygen -Y verify -f allowed_signers -I HOST -n forgekeep -s forgekeep/SHA256SUMS.sig < forgekeep/SHA256SUMS and sha256sum -c forgekeep/SHA256SUMS together prove the whole archive.";

/// The OFF-HOST ARCHIVES section (forgekeep(1), and the pages of the commands that take
/// `s3://` URLs).
pub const OFF_HOST: &str = "A backup that lives on the host it protects dies with it. Every archive argument also takes an S3 object URL, for Garage, MinIO, Ceph RGW, Backblaze B2, Cloudflare R2 or AWS S3: backup -o s3://BUCKET/PREFIX/ (a folder: the archive is named forgekeep-<host>-<stamp>.tar.zst.age, as in -o DIR/) or -o s3://BUCKET/KEY; restore, verify, list and diff read s3://BUCKET/KEY; verify --latest, prune and status take s3://BUCKET/PREFIX/ (the trailing slash may be left out there). A prefix is a folder: only the objects directly in it count. Keys are taken literally (no percent-decoding).

Where and who: the AWS environment alone is enough (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE; see ENVIRONMENT); the [s3] table of the configuration file (endpoint, region, addressing-style = path | virtual, credentials-file, profile, lock-days, lock-mode) wins over it. A custom endpoint means path-style addressing. Credentials are never printed, logged or put in --json; a credentials file others may read is a credentials-readable finding (backup, check). The instance-metadata and container credential endpoints are not probed.

Writing: the archive is streamed (no local copy) in 8 MiB parts, one on the wire while the next fills (peak memory stays under 64 MiB whatever the size: 47 MiB measured for a 1 GiB source), each part with its SHA-256 (x-amz-checksum-sha256, which buckets with a default Object Lock retention require). The object appears only when complete; its size and ETag are checked after. A failed run leaves no object and aborts its multipart upload; one killed outright leaves an unfinished upload that a later successful backup into the same prefix aborts once it is a day old (forgekeep's own names only). The name is created only if it is free (If-None-Match: *), replaced only with --force (a dated forgekeep-<host>-<stamp> name never). Stores that ignore If-None-Match (Garage) are guarded by a HEAD when the upload starts and another right before the final request: an object that existed before that last HEAD is never replaced; one written by someone else in the round trip between it and the final request can be, and the check after the upload then reports it as an error if ours was the one replaced.

Reading: a download resumes from its last good byte after a reset (bounded, with backoff), pinned to the object it opened (If-Match), so two archives are never spliced. Transient failures (reset, timeout, 500/502/503/504, SlowDown) are retried with backoff (AWS_MAX_ATTEMPTS, default 8); permanent ones (no such bucket, access denied, a wrong key) are one error line with a hint, at once. Signatures and --trust work as for files: they are inside the archive.

Object Lock: --s3-lock-days N (lock-days in [s3]; lock-mode = governance | compliance, default governance) gives each new archive a retain-until date N days after its stamp, so that a compromised forge host cannot destroy its own backups; the bucket must have Object Lock enabled. A bucket's default retention applies as well. prune reports an archive it may not delete yet as kept by object lock until DATE (in --json: locked), not as an error.

Concurrent runs on a prefix: S3 has no lock. Names carry the host and the second and are created only if free; two backups of one host into one prefix are serialised by a lock on that host (/run/forgekeep, or $XDG_RUNTIME_DIR/forgekeep when not root; the second exits 6; a systemd unit with ProtectSystem=strict needs RuntimeDirectory=forgekeep), so they never pick one name. Without that folder the run goes on with a warning, and only a store that ignores If-None-Match (Garage) could then let a second run in the same second replace the first. prune deletes an archive only when its own listing holds a newer archive of the same host, so a backup landing meanwhile is never touched and each host's newest survives any mix of concurrent backups and prunes.

Permissions: a backup-only credential (it cannot delete an archive, so a compromised host cannot remove its backups) needs s3:PutObject, s3:GetObject (HeadObject), s3:ListBucket, s3:ListBucketMultipartUploads and s3:AbortMultipartUpload (cleaning up after killed runs), plus s3:PutObjectRetention with --s3-lock-days (on stores that drop the lock headers of a multipart upload forgekeep sets the retention after). No s3:DeleteObject. --keep-* on such a host needs the pruning credential's rights; run prune elsewhere instead. A pruning credential: s3:ListBucket, s3:GetObject, s3:GetObjectRetention (to say until when), s3:DeleteObject and s3:DeleteObjectVersion (Object Lock buckets are versioned: the archive's version is deleted, not hidden behind a delete marker). Reading (restore, verify, list, diff): s3:GetObject and, for verify --latest and status, s3:ListBucket.

status DIR|s3://BUCKET/PREFIX/ lists, per host, the newest archive, its age, how many and their total size, from names and sizes alone (nothing is downloaded or decrypted); --max-age AGE exits 1 naming the hosts whose newest archive is older.";
