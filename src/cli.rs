//! The command line, and nothing else.
//!
//! Kept apart (as rage does) because this one definition is the source of `--help`, the
//! man pages in `man/` and the shell completions (`forgekeep generate ...`): change a
//! flag here and all three follow. No value shown here is ever a secret: passphrases are
//! read from the terminal or a file, never from an argument.

use clap::{Args, Parser, Subcommand, ValueHint};
use serde::Deserialize;
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 runtime error, 2 usage error, 3 done with warnings,
4 corrupt/tampered/unsafe archive, 5 no identity matches or wrong passphrase,
6 another run holds the lock, 7 restore refused: existing files differ.

Passphrases are read from the terminal, or from the file named by
FORGEKEEP_PASSPHRASE_FILE (first line) for scripts.";

#[derive(Debug, Parser)]
#[command(
    name = "forgekeep",
    version,
    about = "Back up and restore the secrets of self-hosted code forges, encrypted with age",
    long_about = "forgekeep gathers the small files a forge cannot lose (Gitea's jwt/private.pem and \
app.ini, SSH host keys, ...), checks their permissions, and stores them in one zstd-compressed, \
age-encrypted tar archive that plain age, zstd and tar can still open. It restores them with \
the right owner, group and mode, atomically, refusing anything unsafe.",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Print one JSON object on stdout (human text goes to stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only problems
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more (repeat for debug output)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// `--config FILE`: only on the commands that read the configuration file (backup, check,
/// prune, status), so that a broken file never stands in the way of a restore and no other
/// command pretends to read it.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArg {
    /// Read the job from this TOML file instead of $FORGEKEEP_CONFIG or /etc/forgekeep/config.toml (read when it exists); flags override it
    #[arg(long = "config", value_name = "FILE", value_hint = ValueHint::FilePath, env = "FORGEKEEP_CONFIG", hide_env_values = true)]
    pub path: Option<PathBuf>,
}

/// `--config FILE` for the commands that read archives: of the configuration file they
/// read only `[trust]` (the trust file, and standing consent for untrusted archives) and
/// `[s3]` (where an `s3://` archive is).
#[derive(Debug, Args, Clone, Default)]
pub struct TrustConfigArg {
    /// Read [trust] (signers, allow-untrusted) and [s3] from this TOML file instead of $FORGEKEEP_CONFIG or /etc/forgekeep/config.toml (read when it exists)
    #[arg(long = "config", value_name = "FILE", value_hint = ValueHint::FilePath, env = "FORGEKEEP_CONFIG", hide_env_values = true)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect secrets, check their permissions, write an encrypted archive
    Backup(BackupArgs),
    /// Put the secrets of an archive back, with their owners and modes, all or nothing
    Restore(RestoreArgs),
    /// Decrypt and check every entry and checksum of an archive; write nothing
    Verify(VerifyArgs),
    /// List the entries of an archive
    List(ListArgs),
    /// Compare an archive with the live files: missing, changed, extra, owner and mode drift
    Diff(DiffArgs),
    /// Audit the live secrets without archiving: presence, owner, mode, configuration, storage
    Check(CheckArgs),
    /// Show the forge installations found on this host and what each profile would collect
    Detect(DetectArgs),
    /// Delete old archives of a folder by retention rules (forgekeep-*.tar.zst.age only)
    Prune(PruneArgs),
    /// Per host, the newest archive of a folder or bucket prefix, its age, how many, their size
    Status(StatusArgs),
    /// Make a new age identity (private key) and print its recipient (public key)
    Keygen(KeygenArgs),
    /// Write man pages or shell completions
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// Ceilings for reading an untrusted archive (verify, list, diff, restore): what a
/// forge's secrets never approach, raised by these flags for an archive known to be big.
#[derive(Debug, Args, Clone)]
pub struct ReadLimitArgs {
    /// Refuse an archive whose manifest lists more than N entries (or sources, or findings)
    #[arg(long, value_name = "N", default_value_t = crate::archive::limits::DEFAULT_MAX_ENTRIES)]
    pub max_entries: usize,
    /// Refuse an archive whose manifest is larger than SIZE (e.g. 64M, 1G)
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::archive::limits::parse_size)]
    pub max_manifest_bytes: u64,
    /// Refuse an archive whose files add up to more than SIZE (e.g. 16G, 100G)
    #[arg(long, value_name = "SIZE", default_value = "16G", value_parser = crate::archive::limits::parse_size)]
    pub max_content_bytes: u64,
}

impl ReadLimitArgs {
    pub fn limits(&self) -> crate::archive::limits::Limits {
        crate::archive::limits::Limits {
            max_entries: self.max_entries,
            max_manifest_bytes: self.max_manifest_bytes,
            max_content_bytes: self.max_content_bytes,
        }
    }
}

impl Default for ReadLimitArgs {
    fn default() -> Self {
        let l = crate::archive::limits::Limits::default();
        ReadLimitArgs {
            max_entries: l.max_entries,
            max_manifest_bytes: l.max_manifest_bytes,
            max_content_bytes: l.max_content_bytes,
        }
    }
}

/// Where the archive's keys come from when decrypting: identity files or a passphrase,
/// one of the two (a group, so that usage lines and errors name both).
#[derive(Debug, Args, Clone)]
#[group(id = "keys", required = true, multiple = false)]
pub struct IdentityArgs {
    /// Identity file: an age identity, an OpenSSH private key, or a passphrase-encrypted identity file (repeatable)
    #[arg(short = 'i', long = "identity", value_name = "IDENTITY", value_hint = ValueHint::FilePath)]
    pub identities: Vec<PathBuf>,
    /// The archive was encrypted with a passphrase (asked on the terminal, or FORGEKEEP_PASSPHRASE_FILE)
    #[arg(long)]
    pub passphrase: bool,
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Examples:
  forgekeep backup /var/lib/gitea/jwt /etc/gitea/app.ini -R /etc/forgekeep/recipients -o /var/backups/forgekeep/
  forgekeep backup ./volumes/gitea --numeric-ids -r age1... -o backup.tar.zst.age
  forgekeep backup /etc/ssh --exclude '*.pub' -r age1... --dry-run
  forgekeep backup -p gitea -p woodpecker -R /etc/forgekeep/recipients -o /var/backups/forgekeep/ --keep-daily 14
  forgekeep backup --compose /srv/forge/docker-compose.yml -R /etc/forgekeep/recipients -o /var/backups/forgekeep/
  forgekeep backup -p gitea -R /etc/forgekeep/recipients -o s3://backups/forges/ --s3-lock-days 30
  forgekeep backup                      (everything from /etc/forgekeep/config.toml)

--keep-* prune the output folder after a complete archive is in place (this host's archives
only; see forgekeep prune --help for the rules). A run that names its own sources or
recipients is not the configured job: it needs its own -o and never applies [retention].
-o DIR/ names archives forgekeep-<host>-<YYYYmmddTHHMMSSZ>.tar.zst.age; a run that finds the
name of its second taken waits for the next one, so names stay unique and in time order.
-o s3://BUCKET/PREFIX/ does the same in a bucket (endpoint, region and credentials from the
AWS environment or [s3]; see OFF-HOST ARCHIVES in forgekeep(1)): streamed, created only if
the name is free, visible only once complete, never replaced without --force.")]
pub struct BackupArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    #[command(flatten)]
    pub options: BackupOptions,
    /// Encrypt with a passphrase instead of recipients (asked twice on the terminal, or FORGEKEEP_PASSPHRASE_FILE)
    #[arg(long, conflicts_with_all = ["recipients", "recipients_files"])]
    pub passphrase: bool,
    /// Replace an existing output FILE (never a dated forgekeep-<host>-<stamp> archive)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub keep: KeepArgs,
    #[command(flatten)]
    pub s3: crate::store::S3Options,
    /// List what would be archived, the findings, where the archive would go and what retention would delete; write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Turn off `strict = true` of the configuration file for this run
    #[arg(long, conflicts_with = "strict")]
    pub no_strict: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// How `backup` encrypts and writes; also the `[backup]` table of the configuration file.
#[derive(Debug, Args, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupOptions {
    /// Encrypt to this recipient: age1..., ssh-ed25519 ... or ssh-rsa ... (repeatable)
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Encrypt to the recipients in FILE, one per line, # comments (an authorized_keys file works; repeatable)
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub recipients_files: Vec<PathBuf>,
    /// Output: a FILE, an existing DIR (named forgekeep-<host>-<UTC stamp>.tar.zst.age), s3://BUCKET/KEY, s3://BUCKET/PREFIX/ (named as in a DIR), or - for stdout
    #[arg(short = 'o', long = "output", value_name = "FILE|DIR|URL|-", value_hint = ValueHint::AnyPath)]
    pub output: Option<PathBuf>,
    /// Findings of severity warning abort the backup (exit 1, no archive)
    #[arg(long)]
    pub strict: bool,
    /// Owners are numbers: the sources are a container's volumes (a sidecar), recorded and restored by number, and the profiles expect the uid inside the image (1000), not a user of this host
    #[arg(long)]
    pub numeric_ids: bool,
    /// zstd compression level [default: 3]
    #[arg(long, value_parser = clap::value_parser!(i32).range(crate::archive::LEVEL_RANGE))]
    pub level: Option<i32>,
    /// Write ASCII-armored age (PEM-style text) instead of binary
    #[arg(short, long)]
    pub armor: bool,
    /// Sign the archive with this OpenSSH Ed25519 private key (forgekeep keygen --sign, or the host's ssh_host_ed25519_key)
    #[arg(long = "sign", value_name = "KEY", value_hint = ValueHint::FilePath)]
    pub sign_key: Option<PathBuf>,
}

/// Who may have made the archives a command reads; also the `[trust]` table of the
/// configuration file (with `allow-untrusted`).
#[derive(Debug, Args, Clone, Default)]
pub struct TrustArgs {
    /// Accept only archives signed by a key this file lists for the archive's host (OpenSSH allowed_signers format)
    #[arg(long = "trust", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub signers: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(after_help = "Examples:
  forgekeep restore backup.tar.zst.age -i key.txt --dry-run
  forgekeep restore backup.tar.zst.age -i key.txt
  forgekeep restore backup.tar.zst.age -i key.txt --root /mnt/newhost --map-user git=gitea
  forgekeep restore backup.tar.zst.age -i key.txt --relocate /data=/srv/gitea --only '*/jwt/*'
  forgekeep restore backup.tar.zst.age -i key.txt --to ./inspect
  forgekeep restore s3://backups/forges/forgekeep-git-20261126T030000Z.tar.zst.age -i key.txt --trust signers")]
pub struct RestoreArgs {
    /// The archive: a file, s3://BUCKET/KEY, or - for stdin
    #[arg(value_name = "ARCHIVE", value_hint = ValueHint::FilePath)]
    pub archive: PathBuf,
    #[command(flatten)]
    pub keys: IdentityArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub config: TrustConfigArg,
    /// Write into the live tree (/ or --root) from an archive no trust file vouches for (unsigned, or signed by an unlisted key)
    #[arg(long)]
    pub allow_untrusted: bool,
    /// Sign the undo archive of --force with this key (OpenSSH Ed25519), so that restoring it needs no --allow-untrusted
    #[arg(long = "sign", value_name = "KEY", value_hint = ValueHint::FilePath)]
    pub sign_key: Option<PathBuf>,
    /// Prefix every destination with DIR (a new host's root mounted elsewhere)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath, conflicts_with = "to")]
    pub root: Option<PathBuf>,
    /// Rewrite a recorded path prefix FROM to TO (repeatable; the longest FROM wins)
    #[arg(long, value_name = "FROM=TO")]
    pub relocate: Vec<String>,
    /// Restore only entries whose recorded absolute path matches GLOB (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Extract plain copies under DIR, owned by you (for inspection; owners are not set)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub to: Option<PathBuf>,
    /// Print the plan (create / replace / unchanged, owner mapping) and change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Replace files that differ; their previous versions go to an undo archive encrypted to the same keys
    #[arg(long)]
    pub force: bool,
    /// Folder for the undo archive of --force (default: the archive's folder; the current folder for stdin or an s3:// archive)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub undo_dir: Option<PathBuf>,
    /// Set owners by recorded number, not by name
    #[arg(long)]
    pub numeric_ids: bool,
    /// Give files of user FROM to user TO (names or numbers; repeatable)
    #[arg(long, value_name = "FROM=TO")]
    pub map_user: Vec<String>,
    /// Give files of group FROM to group TO (names or numbers; repeatable)
    #[arg(long, value_name = "FROM=TO")]
    pub map_group: Vec<String>,
    #[command(flatten)]
    pub limits: ReadLimitArgs,
}

#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("which").required(true).args(["archive", "latest"])),
    after_help = "Examples:
  forgekeep verify /var/backups/forgekeep/forgekeep-git-20261126T030000Z.tar.zst.age -i key.txt
  forgekeep verify --latest /var/backups/forgekeep -i key.txt --json
  forgekeep verify --latest s3://backups/forges/ --host git.example.org -i key.txt --max-age 2d"
)]
pub struct VerifyArgs {
    /// The archive: a file, s3://BUCKET/KEY, or - for stdin
    #[arg(value_name = "ARCHIVE", value_hint = ValueHint::FilePath)]
    pub archive: Option<PathBuf>,
    /// Verify the newest forgekeep-*.tar.zst.age in DIR (or s3://BUCKET/PREFIX/) and print its age (for monitoring)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub latest: Option<PathBuf>,
    /// With --latest: exit 1 when the newest archive is older than this (e.g. 26h, 2d)
    #[arg(long, value_name = "AGE", requires = "latest")]
    pub max_age: Option<String>,
    /// With --latest: the newest archive of this host (the <host> in the archive name); default: of any host
    #[arg(long, value_name = "HOST", requires = "latest")]
    pub host: Option<String>,
    #[command(flatten)]
    pub keys: IdentityArgs,
    #[command(flatten)]
    pub limits: ReadLimitArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub config: TrustConfigArg,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  forgekeep diff /var/backups/forgekeep/forgekeep-git-20261126T030000Z.tar.zst.age -i key.txt
  forgekeep diff backup.tar.zst.age -i key.txt --root /mnt/oldhost --json")]
pub struct DiffArgs {
    /// The archive: a file, s3://BUCKET/KEY, or - for stdin
    #[arg(value_name = "ARCHIVE", value_hint = ValueHint::FilePath)]
    pub archive: PathBuf,
    #[command(flatten)]
    pub keys: IdentityArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub config: TrustConfigArg,
    /// Compare with the files under DIR instead of / (a host's root mounted elsewhere)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub root: Option<PathBuf>,
    /// Rewrite a recorded path prefix FROM to TO before comparing (repeatable)
    #[arg(long, value_name = "FROM=TO")]
    pub relocate: Vec<String>,
    #[command(flatten)]
    pub limits: ReadLimitArgs,
}

#[derive(Debug, Args)]
#[command(
    mut_arg("paths", |a| a.help("Files or folders to audit (symlinks are not followed)")),
    after_help = "Resolves the same sources as backup (paths, -p, --compose, or the configuration \
file's [sources]) and writes nothing; of the content it reads only the first 64 KiB of files others may read, to tell key material and secret settings from public text. Without sources on the command line it checks the configured job as a whole: the [backup] table's recipients and output folder too. Exit 0 clean, 3 warnings, 1 errors \
(the configuration itself missing, a secret on no persistent storage in a container, an unreadable file).

Examples:
  forgekeep check -p gitea
  forgekeep check -p gitea=/etc/gitea/app.ini -p woodpecker --json
  forgekeep check --compose /srv/forge/docker-compose.yml"
)]
pub struct CheckArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Audit as backup --numeric-ids does: the sources are a container's volumes, whose owners are the uids inside the image (also numeric-ids in the configuration file)
    #[arg(long)]
    pub numeric_ids: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Looks at systemd units (gitea, forgejo, woodpecker-server/agent, gitlab-runsvdir, \
gogs, drone) and their --config and Environment=, the forges' configuration files at their \
documented places, and compose files (compose.yaml, docker-compose.yml, ...) up to three folders \
deep under /srv, /opt, /home, /root and /etc. Prints what each profile would collect and the \
backup command line that covers it all. Exit 0 whether or not anything is found.

Examples:
  forgekeep detect
  forgekeep detect --compose /srv/forge/docker-compose.yml --json
  forgekeep detect --root /mnt/oldhost"
)]
pub struct DetectArgs {
    /// Also look at these compose files (docker-compose.yml / compose.yaml; repeatable)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub compose: Vec<PathBuf>,
    /// Look at a host's root mounted at DIR (the disk of a dead host) instead of /
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub root: Option<PathBuf>,
    /// Include the forges' SQLite databases in what would be collected
    #[arg(long)]
    pub with_db: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Rules (as restic's forget): --keep-last N keeps the N newest archives; \
--keep-hourly/daily/weekly/monthly/yearly N keep the newest archive of each of the N newest \
hours/days/ISO weeks/months/years that have one; when fewer periods have an archive than a rule \
asks for, the oldest archive is kept as well (as restic 0.17 does). An archive kept by any rule is \
kept. The newest archive is always kept. Rules apply to each host's archives separately (--host \
limits the run to one). At least one rule with \
N > 0 is required: --keep-* flags, or, for the configuration's own output folder only (DIR \
omitted or that folder), its [retention] table. Times come from the UTC stamp in the file name. Only regular files named \
forgekeep-<host>-<YYYYmmddTHHMMSSZ>.tar.zst.age are considered; nothing else in the folder is touched. \
Runs under the folder's lock (exit 6 while a backup or prune of it runs). \
A bucket prefix (s3://BUCKET/PREFIX/) has no lock and needs none: an archive is deleted only when the \
prune's own listing holds a newer one of its host, so concurrent backups and prunes never lose a \
host's newest. An archive Object Lock keeps is reported (kept by object lock until ...), not an error.

Examples:
  forgekeep prune /var/backups/forgekeep --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run
  forgekeep prune /var/backups/forgekeep --keep-last 30 --json
  forgekeep prune s3://backups/forges/ --keep-daily 14 --keep-monthly 12"
)]
pub struct PruneArgs {
    /// The folder of archives, or s3://BUCKET/PREFIX/ (default: the output folder of the configuration file)
    #[arg(value_name = "DIR|s3://BUCKET/PREFIX/", value_hint = ValueHint::DirPath)]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Only the archives of this host (the <host> in forgekeep-<host>-<stamp>.tar.zst.age); default: every host, each by the same rules
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Say what would be deleted; delete nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The fleet view for whoever keeps many forges' archives in one place: one line per host \
(the <host> in forgekeep-<host>-<YYYYmmddTHHMMSSZ>.tar.zst.age) with its newest archive, how old that is \
(from the time in its name), how many archives it has and their total size. It reads names and sizes \
only (a folder listing, or one ListObjectsV2 per 1000 objects): nothing is downloaded or decrypted, \
no key is needed, and a credential that may only list the bucket is enough. To prove the newest \
archive opens, use verify --latest. Exit 0; 1 when, with --max-age, a host's newest archive is older, \
or a host named by --host has no archive (the error line names them all).

Examples:
  forgekeep status /var/backups/forgekeep
  forgekeep status s3://backups/forges/ --max-age 26h          (one cron line for the whole fleet)
  forgekeep status s3://backups/forges/ --host git.example.org --host ci.example.org --max-age 26h --json"
)]
pub struct StatusArgs {
    /// The folder of archives, or s3://BUCKET/PREFIX/ (default: the output folder of the configuration file)
    #[arg(value_name = "DIR|s3://BUCKET/PREFIX/", value_hint = ValueHint::AnyPath)]
    pub folder: Option<PathBuf>,
    /// Exit 1 naming the hosts whose newest archive is older than this (e.g. 26h, 2d)
    #[arg(long, value_name = "AGE")]
    pub max_age: Option<String>,
    /// Only this host; one with no archive at all is a failure (repeatable: the hosts of the fleet)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// What to back up or check: paths, forge profiles, compose files; also the `[sources]`
/// table of the configuration file.
#[derive(Debug, Args, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceArgs {
    /// Files or folders (stored under their absolute paths; symlinks are stored as links)
    #[arg(value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub paths: Vec<PathBuf>,
    /// A forge profile, optionally with its configuration file: gitea, forgejo, woodpecker, woodpecker-agent, gitlab, gogs, drone (repeatable)
    #[arg(short = 'p', long = "profile", value_name = "NAME[=CONFIG]")]
    pub profiles: Vec<String>,
    /// A docker-compose file: its forge and CI services' secrets, found through their volumes; named volumes are the project's that COMPOSE_PROJECT_NAME names, else the one its containers run as (repeatable)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub compose: Vec<PathBuf>,
    /// Include the forge's SQLite database (taken with SQLite's online backup, consistent while the service runs)
    #[arg(long)]
    pub with_db: bool,
    /// Leave out paths matching GLOB (matched against the absolute path and the file name; repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

impl SourceArgs {
    /// Does this name what to back up (paths, profiles or compose files)? A command line
    /// that does replaces the configuration file's sources as a whole.
    pub fn names_sources(&self) -> bool {
        !self.paths.is_empty() || !self.profiles.is_empty() || !self.compose.is_empty()
    }
}

/// Retention rules, for `prune` and for `backup` (which prunes after a successful run);
/// also the `[retention]` table of the configuration file.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeepArgs {
    /// Keep the N newest archives
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest archive of each of the last N hours that have one
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest archive of each of the last N days that have one
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest archive of each of the last N ISO weeks that have one
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest archive of each of the last N months that have one
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest archive of each of the last N years that have one
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The archive: a file, s3://BUCKET/KEY, or - for stdin
    #[arg(value_name = "ARCHIVE", value_hint = ValueHint::FilePath)]
    pub archive: PathBuf,
    #[command(flatten)]
    pub keys: IdentityArgs,
    #[command(flatten)]
    pub limits: ReadLimitArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    #[command(flatten)]
    pub config: TrustConfigArg,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  forgekeep keygen -o ~/forgekeep-key.txt          (an age identity: decrypts archives; keep it off the host)
  forgekeep keygen --sign -o /etc/forgekeep/signing-key
                                                   (a signing key: stays on the backup host; prints the
                                                    line for the trust files of whoever restores)")]
pub struct KeygenArgs {
    /// Write the key to FILE (mode 0600; never overwritten) instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub output: Option<PathBuf>,
    /// Make an Ed25519 signing key (OpenSSH format) for `backup --sign` instead of an age identity
    #[arg(long)]
    pub sign: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: GenerateWhat,
}

#[derive(Debug, Subcommand)]
pub enum GenerateWhat {
    /// Write one man page per command into DIR
    Man {
        #[arg(value_name = "DIR", value_hint = ValueHint::DirPath)]
        dir: PathBuf,
    },
    /// Print the completion script for SHELL
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
