//! SQLite databases against their backups (issue 13 item 2): compared by what SQLite
//! reads from them, not by the header fields SQLite rewrites on a copy, with the
//! service's connection open the whole time, as on a running host. The live side is
//! the real `sqlite3` (Debian's, another SQLite version than forgekeep's).

use crate::util::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// A service's connection to its database: one `sqlite3` process that keeps it open
/// (and in WAL mode its `-wal`) for the whole test and runs statements when told.
pub struct Service {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Service {
    pub fn open(db: &Path, journal_mode: &str) -> Service {
        require("sqlite3");
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut s = Service { child, stdin, out };
        let mode = s.run(&format!(".bail on\nPRAGMA journal_mode={journal_mode};"));
        assert_eq!(mode, [journal_mode.to_lowercase()]);
        s
    }

    /// Runs `sql` and returns the lines it printed (once it has finished).
    pub fn run(&mut self, sql: &str) -> Vec<String> {
        const DONE: &str = "forgekeep-test-statements-done";
        writeln!(self.stdin, "{sql}\nSELECT '{DONE}';").unwrap();
        self.stdin.flush().unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "sqlite3 stopped (an error in {sql:?}?)");
            if line.trim() == DONE {
                return lines;
            }
            lines.push(line.trim().to_string());
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a Woodpecker server keeps in its database: users' forge tokens, pipeline
/// secrets in plain text, and enough pipelines to fill a few pages.
pub const WOODPECKER_SCHEMA: &str = "\
    CREATE TABLE users(id INTEGER PRIMARY KEY, login TEXT, access_token TEXT, refresh_token TEXT);\n\
    CREATE TABLE secrets(id INTEGER PRIMARY KEY, name TEXT, value TEXT);\n\
    CREATE TABLE pipelines(id INTEGER PRIMARY KEY, repo TEXT, log BLOB);\n\
    INSERT INTO users VALUES(1, 'alice', 'test-only-access', 'test-only-refresh');\n\
    INSERT INTO secrets VALUES(1, 'registry', 'test-only-plain-text');\n\
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)\n\
    INSERT INTO pipelines(repo, log) SELECT 'org/repo', randomblob(3000) FROM n;";

/// A native Woodpecker server under the test folder: its env file names its database,
/// which the running service (returned) created in `journal_mode` and wrote to.
pub fn woodpecker(t: &TestDir, journal_mode: &str) -> (PathBuf, PathBuf, Service) {
    let dir = t.mkdir("var/lib/woodpecker", 0o700);
    let db = dir.join("woodpecker.sqlite");
    let mut service = Service::open(&db, journal_mode);
    service.run(WOODPECKER_SCHEMA);
    let env = t.write(
        "etc/woodpecker/woodpecker-server.env",
        format!(
            "WOODPECKER_GRPC_SECRET=test-only-grpc\nWOODPECKER_DATABASE_DATASOURCE={}\n",
            db.display()
        )
        .as_bytes(),
        0o600,
    );
    (db, env, service)
}

pub fn companion(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

/// A backup of the Woodpecker server whose env file is `env`: (identity, archive).
pub fn backed_up(t: &TestDir, env: &Path) -> (PathBuf, PathBuf) {
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("a.tar.zst.age");
    let o = fk(&[
        "backup",
        "-p",
        &format!("woodpecker={}", env.display()),
        "-r",
        &recipient,
        "-o",
        archive.to_str().unwrap(),
    ]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    (key, archive)
}

/// `diff ARCHIVE -i KEY --json`: its exit code and report.
fn diff_json(archive: &Path, key: &Path) -> (i32, serde_json::Value) {
    let o = diff(archive, key, &["--json"]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    (code(&o), json_of(&o))
}

/// The plan line of `path` in a restore's output (`ACTION TYPE MODE UID:GID PATH …`).
fn plan_line(o: &std::process::Output, path: &Path) -> String {
    let text = stdout(o);
    let path = path.display().to_string();
    text.lines()
        .find(|l| l.split_whitespace().nth(4) == Some(path.as_str()))
        .unwrap_or_else(|| panic!("no plan line for {path}:\n{text}\n{}", stderr(o)))
        .to_string()
}

/// Right after its backup a database is unchanged, with its service still connected;
/// after one real write it differs, and a restore refuses to roll it back.
fn unchanged_until_the_service_writes(journal_mode: &str) {
    let t = TestDir::new();
    let (db, env, mut service) = woodpecker(&t, journal_mode);
    let (key, archive) = backed_up(&t, &env);
    let wal = companion(&db, "-wal");
    if journal_mode == "WAL" {
        // The case where the file alone is not the database: committed pages are in the
        // WAL, which the running service keeps.
        assert!(fs::metadata(&wal).unwrap().len() > 0);
    } else {
        assert!(!wal.exists());
    }

    let (exit, v) = diff_json(&archive, &key);
    assert_eq!(exit, 0, "{v}");
    assert_eq!(v["differences"], serde_json::json!([]), "{v}");
    let dry = restore(&archive, &key, &["--dry-run"]);
    expect_code(&dry, 0);
    assert!(
        plan_line(&dry, &db).starts_with("unchanged"),
        "{}",
        stdout(&dry)
    );
    // A real restore leaves it alone: the very same file, its rows as they were.
    let inode = fs::metadata(&db).unwrap().ino();
    let r = restore(&archive, &key, &[]);
    expect_code(&r, 0);
    assert_eq!(fs::metadata(&db).unwrap().ino(), inode);

    // The service writes: a refreshed token and a pipeline.
    let file_before = fs::read(&db).unwrap();
    service.run(
        "UPDATE users SET refresh_token = 'test-only-refresh-2' WHERE id = 1;\n\
         INSERT INTO pipelines(repo, log) VALUES('org/repo', randomblob(100));",
    );
    if journal_mode == "WAL" {
        // The new rows are only in the WAL: the file alone would still look unchanged.
        assert_eq!(fs::read(&db).unwrap(), file_before);
    }
    let (exit, v) = diff_json(&archive, &key);
    assert_eq!(exit, 3, "{v}");
    let d = &v["differences"][0];
    assert_eq!(d["change"], "changed", "{v}");
    assert_eq!(d["path"], db.display().to_string(), "{v}");
    assert!(d["detail"].as_str().unwrap().contains("SQLite"), "{v}");
    assert_eq!(v["differences"].as_array().unwrap().len(), 1, "{v}");

    let dry = restore(&archive, &key, &["--dry-run"]);
    expect_code(&dry, 7);
    let line = plan_line(&dry, &db);
    assert!(line.starts_with("CONFLICT"), "{line}");
    assert!(
        line.contains("--force would replace its data with the backup's"),
        "{line}"
    );
    let r = restore(&archive, &key, &[]);
    expect_code(&r, 7);
    assert_eq!(
        service.run("SELECT refresh_token FROM users WHERE id = 1;"),
        ["test-only-refresh-2"]
    );
    assert_eq!(service.run("SELECT count(*) FROM pipelines;"), ["41"]);
}

#[test]
fn a_database_in_wal_mode_matches_its_backup_until_written_regression() {
    unchanged_until_the_service_writes("WAL");
}

#[test]
fn a_database_in_rollback_journal_mode_matches_its_backup_until_written_regression() {
    unchanged_until_the_service_writes("DELETE");
}

#[test]
fn a_write_under_way_counts_once_it_reaches_the_file() {
    // What SQLite reads is what is committed. A transaction that has only journalled
    // (its journal's header not yet written) has not touched the file: unchanged.
    // One that wrote pages into the file (a cache spill: the journal then begins with
    // its header, and SQLite would roll it back before reading) is not settled, and a
    // database that is not settled is never unchanged.
    let t = TestDir::new();
    let (db, env, mut service) = woodpecker(&t, "DELETE");
    let (key, archive) = backed_up(&t, &env);
    let journal = companion(&db, "-journal");
    const HEADER: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

    service.run("BEGIN; UPDATE users SET refresh_token = 'test-only-refresh-2';");
    assert_ne!(fs::read(&journal).unwrap()[..8], HEADER);
    assert_eq!(diff_json(&archive, &key).0, 0);
    service.run("ROLLBACK;");

    service.run(
        "PRAGMA cache_size = 2; BEGIN;\n\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)\n\
         INSERT INTO pipelines(repo, log) SELECT 'org/other', randomblob(3000) FROM n;",
    );
    assert_eq!(fs::read(&journal).unwrap()[..8], HEADER);
    let (exit, v) = diff_json(&archive, &key);
    assert_eq!(exit, 3, "{v}");
    assert_eq!(v["differences"][0]["change"], "changed", "{v}");
    expect_code(&restore(&archive, &key, &["--dry-run"]), 7);
    service.run("ROLLBACK;");
    assert!(!journal.exists());
    assert_eq!(diff_json(&archive, &key).0, 0);

    service.run("UPDATE users SET refresh_token = 'test-only-refresh-2';");
    assert_eq!(diff_json(&archive, &key).0, 3);
}

#[test]
fn only_the_header_fields_sqlite_rewrites_are_ignored() {
    // Every other byte counts, in the header too.
    let t = TestDir::new();
    let (db, env, service) = woodpecker(&t, "DELETE");
    let (key, archive) = backed_up(&t, &env);
    drop(service);
    let mut bytes = fs::read(&db).unwrap();
    // A change outside the header fields SQLite rewrites: the page size.
    bytes[16] ^= 0x01;
    fs::write(&db, &bytes).unwrap();
    let (exit, v) = diff_json(&archive, &key);
    assert_eq!(exit, 3, "{v}");
    expect_code(&restore(&archive, &key, &["--dry-run"]), 7);
    // Only the bookkeeping changed: the same database.
    bytes[16] ^= 0x01;
    for at in [24, 40, 92, 96] {
        bytes[at + 3] = bytes[at + 3].wrapping_add(7);
    }
    fs::write(&db, &bytes).unwrap();
    let (exit, v) = diff_json(&archive, &key);
    assert_eq!(exit, 0, "{v}");
}

/// The commands of the README's "Disaster recovery on the same host", as written, with
/// the recipe's archive, key and JWT key replaced by the test's.
fn disaster_recovery_recipe(archive: &Path, key: &Path, trust: &Path, jwt: &Path) -> Vec<String> {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme
        .find("### Disaster recovery on the same host")
        .unwrap()..];
    let section = &section[..section[4..].find("\n### ").unwrap()];
    let mut commands = Vec::new();
    for block in section.split("```sh\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        commands.extend(block.lines().filter(|l| !l.trim().is_empty()).map(|l| {
            l.replacen("forgekeep ", &format!("{BIN} "), 1)
                .replace(
                    "/backups/forgekeep-git-20261126T031700Z.tar.zst.age",
                    archive.to_str().unwrap(),
                )
                .replace("~/forgekeep-key.txt", key.to_str().unwrap())
                .replace("~/forgekeep-signers", trust.to_str().unwrap())
                .replace("/var/lib/gitea/jwt/private.pem", jwt.to_str().unwrap())
        }));
    }
    commands
}

#[test]
fn the_disaster_recovery_recipe_puts_the_key_back_and_keeps_rows_written_since_regression() {
    // Issue 13: the recipe said to add --force to the whole archive when the regenerated
    // key conflicted; the database conflicted too (its header's bookkeeping), and
    // --force rolled Woodpecker's database back, losing the rows written since.
    let t = TestDir::new();
    let tree = t.gitea_tree();
    let jwt = tree.join("jwt/private.pem");
    let old_key = fs::read(&jwt).unwrap();
    let (db, env, mut service) = woodpecker(&t, "WAL");
    let (key, recipient) = t.age_key("key.txt");
    let archive = t.join("backups/forgekeep-git-20261126T031700Z.tar.zst.age");
    fs::create_dir_all(archive.parent().unwrap()).unwrap();
    // Signed, as the nightly recipe sets it up; the trust file is the line keygen printed.
    let signing_key = t.join("signing-key");
    let line = fk(&["keygen", "--sign", "-o", signing_key.to_str().unwrap()]);
    expect_code(&line, 0);
    let trust = t.write("forgekeep-signers", stdout(&line).as_bytes(), 0o644);
    backup(
        &[&tree],
        &recipient,
        &archive,
        &[
            "-p",
            &format!("woodpecker={}", env.display()),
            "--sign",
            signing_key.to_str().unwrap(),
        ],
    );

    // The Woodpecker failure: Gitea made a new signing key; meanwhile Woodpecker kept
    // working (a refreshed token, a pipeline).
    fs::remove_file(&jwt).unwrap();
    openssl_ed25519(&jwt);
    service.run(
        "UPDATE users SET refresh_token = 'test-only-refresh-2' WHERE id = 1;\n\
         INSERT INTO pipelines(repo, log) VALUES('org/repo', 'written after the backup');",
    );

    let commands = disaster_recovery_recipe(&archive, &key, &trust, &jwt);
    assert_eq!(commands.len(), 5, "{commands:#?}");
    let mut diff_said = String::new();
    for command in &commands {
        let o = Command::new("sh")
            .args(["-c", command])
            .env("FORGEKEEP_CONFIG", "/dev/null")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let expected = if command.contains(" verify ") || command.contains(" --only ") {
            0
        } else if command.contains(" diff ") {
            diff_said = stdout(&o);
            3
        } else {
            7 // the database and the key differ: nothing changes
        };
        assert_eq!(
            code(&o),
            expected,
            "{command}\n{}\n{}",
            stdout(&o),
            stderr(&o)
        );
    }
    // The recipe's line is the one diff printed.
    let only = commands.iter().find(|c| c.contains(" --only ")).unwrap();
    let advised = only
        .replace(BIN, "forgekeep")
        .replace(key.to_str().unwrap(), "KEY");
    assert!(diff_said.contains(&advised), "{advised}\n{diff_said}");
    assert!(
        diff_said.contains(&format!("changed  {}", db.display())),
        "{diff_said}"
    );

    // The old key is back; every row written since the backup is still there, for the
    // running service and for a new connection.
    assert_eq!(fs::read(&jwt).unwrap(), old_key);
    assert_eq!(
        service.run("SELECT refresh_token FROM users WHERE id = 1;"),
        ["test-only-refresh-2"]
    );
    drop(service);
    let rows = run_ok(
        Command::new("sqlite3")
            .arg(&db)
            .arg("SELECT count(*) FROM pipelines WHERE log = 'written after the backup';"),
    );
    assert_eq!(stdout(&rows).trim(), "1");
    // The regenerated key is in the undo archive next to the backup.
    let undo: Vec<_> = names_in(archive.parent().unwrap())
        .into_iter()
        .filter(|n| n.to_string_lossy().starts_with("restore-undo-"))
        .collect();
    assert_eq!(undo.len(), 1, "{undo:?}");
}
