//! Text of the manual that clap cannot derive: the configuration file and the JSON
//! reports. It lives next to the code (not only in the README) because monitoring and
//! scripts parse these reports for years: the schema is part of the contract, printed
//! in `forgekeep(1)` by `generate man`, and a test runs every command with `--json` and
//! checks each key it prints is documented here.

/// The CONFIGURATION section: the commented example file, verbatim.
pub const CONFIGURATION: &str = concat!(
    "forgekeep reads /etc/forgekeep/config.toml when it exists, or the file named by \
--config FILE (or FORGEKEEP_CONFIG). Only backup, check and prune read it. Flags override \
it: command-line sources (paths, -p, --compose) replace the file's sources as a whole, \
-r/-R/--passphrase replace its recipients, --keep-* flags replace its retention rules. \
Unknown keys are errors that name the key and the line. Relative paths are relative to \
the file's folder. The example below is examples/config.toml:\n\n",
    include_str!("../examples/config.toml")
);

/// The JSON OUTPUT section. Every key a command prints must appear here (a test checks).
pub const JSON_OUTPUT: &str = r#"With --json every command prints exactly one JSON object on stdout (human text moves to stderr). Keys are stable; new keys may be added. Every object has "ok" (true when the command did what it was asked, false for an error or, for check and diff, when something needs attention) and, except errors, "command".

error (any command, exit code != 0 and != 3): {"ok": false, "exit_code": N, "error": "one line", "hint": "what to do" | null}

finding (in backup, check, list): {"code": "world-readable" | "group-readable" | "writable" | "parent-writable" | "owner-mismatch" | "symlink-escapes" | "source-is-symlink" | "special-skipped" | "name-not-utf8" | "unreadable" | "changed-while-read" | "secret-missing" | "mode-too-open" | "owner-unexpected" | "config-problem" | "not-persistent" | "volume-unknown", "severity": "info" | "warning" | "error", "path", "message", "fix"}

entry (in backup --dry-run, list): {"path", "type": "file" | "dir" | "symlink", "role": "content" | "ancestor", "source": index into sources, "size", "mode": "0600", "uid", "gid", "user"?, "group"?, "mtime": seconds, "target"? (symlinks), "sha256"? (list: files)}

backup: {"command": "backup", "archive": path | "-", "size": bytes | null, "entries", "files", "content_bytes", "findings": [finding], "duration_ms", "prune"?: prune object without "command" (with --keep-*, or [retention] for the configured output folder; this host's archives only), "prune_skipped"?: why no pruning was done (the archive lacks secrets older ones may hold)}
backup --dry-run: {"command": "backup", "dry_run": true, "archive"?: the path the archive would get | "-" (absent without an output), "entries": [entry], "findings": [finding], "prune"?: prune object without "command", the plan retention would carry out after the real run ("dry_run": true, "deleted": [])}; when the real run would be refused (an unreadable source, strict): "ok": false, "exit_code", "error", "hint" in the same object

restore: {"command": "restore", "archive", "dry_run", "steps": [{"action": "create" | "replace" | "fix-metadata" | "unchanged" | "conflict", "path", "dest", "type", "mode", "uid", "gid", "reason"?}], "mappings": [{"kind": "user" | "group", "recorded", "to", "how"}], "counts": {"create", "replace", "fix_metadata", "unchanged", "conflict"}, "undo_archive": path | null, "warnings": [text]}

verify: {"command": "verify", "archive", "host", "created": RFC 3339, "entries", "files", "content_bytes", "age_seconds"? and "max_age_seconds"? (with --latest); when the newest archive is older than --max-age: "ok": false, "stale": true, "exit_code": 1, "error", "hint"}

list: {"command": "list", "archive", "format", "version", "tool", "host", "created", "exclude"? (the backup's --exclude globs), "sources": [{"given", "path", "profile"?, "ownership": "name" | "numeric", "what"?, "container_path"?}], "findings": [finding], "entries": [entry]}

diff: {"command": "diff", "archive", "created", "host", "differences": [{"change": "missing" | "changed" | "drift" | "extra" | "unreadable", "path", "recorded"?, "detail", "consequence"?}], "counts": {"missing", "changed", "drift", "extra", "unreadable"}}

check: {"command": "check", "profiles": [profile], "entries", "findings": [finding], "errors", "warnings"}
profile: {"forge": "gitea" | "forgejo" | "woodpecker" | "woodpecker-agent" | "gitlab" | "gogs" | "drone", "layout": "native" | "docker" | "docker-rootless", "config"?, "service"?, "compose"?, "items": [{"path", "container_path"?, "what", "kind": "file" | "dir" | "sqlite", "required", "regenerates", "signing_key", "owner"?, "max_mode"?}], "findings": [finding]}

detect: {"command": "detect", "installations": [{"forge", "config"?, "via", "profile"?: profile}], "compose": [{"file", "services": [{"name", "image", "forge"?, "layout"?}]}]}

prune: {"command": "prune", "dir", "dry_run", "kept": [{"name", "host", "time": RFC 3339, "reasons": [text]}], "to_delete": [name] (the plan), "deleted": [name] (what was deleted: the plan, or [] with --dry-run)}

keygen: {"command": "keygen", "identity_file", "recipient"}"#;
