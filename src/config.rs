//! The configuration file: what an unattended `forgekeep backup` does with no flags.
//!
//! A timer or cron job should not carry a long command line that drifts from the docs,
//! so the whole job can live in one TOML file (`--config FILE`, default
//! `/etc/forgekeep/config.toml` when it exists). Its tables are the very option structs
//! the command line uses (`[sources]` = [`SourceArgs`], `[backup]` = [`BackupOptions`],
//! `[retention]` = [`KeepArgs`], `[s3]` = [`S3Options`]), as rustic does, so a flag and its key cannot drift
//! apart. Flags override the file. Unknown keys are errors naming the key and the line:
//! a misspelt `keep-dayly` silently ignored would mean a retention nobody asked for.

use crate::cli::{BackupOptions, KeepArgs, SourceArgs, TrustArgs};
use crate::error::{Error, Result};
use crate::store::{Location, ObjectUrl, S3Options};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Read when `--config` is not given and the file exists.
pub const DEFAULT_PATH: &str = "/etc/forgekeep/config.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub sources: SourceArgs,
    pub backup: BackupOptions,
    pub retention: KeepArgs,
    pub trust: TrustConfig,
    pub s3: S3Options,
    /// Where it was read from (for messages); not a key.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl Config {
    /// The file named by `--config`, else the default file when it exists, else nothing.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(DEFAULT_PATH);
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io("cannot read the configuration file", &path, &e))?;
        let mut config = Config::parse(&text, &path)?;
        config.path = Some(path);
        Ok(config)
    }

    /// `[backup] output` when it names a folder of archives (an existing folder, or an
    /// `s3://` prefix): what `prune` and `status` take when given no folder.
    pub fn configured_folder(&self) -> Option<&Path> {
        self.backup
            .output
            .as_deref()
            .filter(|o| o.is_dir() || s3_url(o).is_some_and(|u| u.is_folder()))
    }

    /// The folder the configured job writes into: `[backup] output` when it names a
    /// folder, else the folder of the file it names (for `s3://` outputs, the prefix).
    pub fn output_folder(&self) -> Option<PathBuf> {
        let o = self.backup.output.as_deref()?;
        if let Some(url) = s3_url(o) {
            return Some(PathBuf::from(url.folder().to_string()));
        }
        if o.is_dir() || o.as_os_str().to_string_lossy().ends_with('/') {
            return Some(o.to_path_buf());
        }
        match o.parent() {
            Some(p) if !p.as_os_str().is_empty() => Some(p.to_path_buf()),
            _ => Some(PathBuf::from(".")),
        }
    }

    /// Is `dir` the configured job's folder (the same folder, however named; for a
    /// prefix, the same bucket and prefix)? Only there does `[retention]` apply: it was
    /// written for that folder's archives.
    pub fn is_output_folder(&self, dir: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(folder) = self.output_folder() else {
            return false;
        };
        match (s3_url(dir), s3_url(&folder)) {
            (Some(a), Some(b)) => return a.into_folder() == b,
            (None, None) => {}
            _ => return false,
        }
        match (std::fs::metadata(dir), std::fs::metadata(&folder)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            Error::usage(format!(
                "{}{}: {}",
                path.display(),
                line.map(|l| format!(" line {l}")).unwrap_or_default(),
                e.message().trim_end()
            ))
            .hint("see the example in `man forgekeep` (CONFIGURATION) or examples/config.toml")
        })?;
        // The command line's range, checked here too: a level the reader refuses would
        // make archives forgekeep itself cannot open.
        if let Some(level) = config.backup.level {
            if !crate::archive::LEVEL_RANGE.contains(&i64::from(level)) {
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with("level"))
                    .map(|i| format!(" line {}", i + 1))
                    .unwrap_or_default();
                return Err(Error::usage(format!(
                    "{}{line}: level = {level} is out of range 1..=19",
                    path.display()
                ))
                .hint("zstd levels above 19 need more memory to read than forgekeep allows; 3 is the default"));
            }
        }
        // Relative paths in the file mean relative to the file, not to wherever cron runs.
        let base = path.parent().unwrap_or(Path::new("/"));
        let mut config = config;
        config.absolutize(base);
        Ok(config)
    }

    fn absolutize(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                *p = base.join(&*p);
            }
        };
        self.sources.paths.iter_mut().for_each(fix);
        self.sources.compose.iter_mut().for_each(fix);
        self.backup.recipients_files.iter_mut().for_each(fix);
        self.backup.sign_key.iter_mut().for_each(fix);
        self.trust.signers.iter_mut().for_each(fix);
        self.s3.credentials_file.iter_mut().for_each(fix);
        if let Some(o) = self.backup.output.as_mut().filter(|o| s3_url(o).is_none()) {
            // Keep a trailing slash: it says "a folder".
            let slash = o.as_os_str().to_string_lossy().ends_with('/');
            fix(o);
            if slash && !o.as_os_str().to_string_lossy().ends_with('/') {
                o.as_mut_os_string().push("/");
            }
        }
        for p in &mut self.sources.profiles {
            if let Some((name, file)) = p.split_once('=') {
                let file = Path::new(file);
                if file.is_relative() {
                    *p = format!("{name}={}", base.join(file).display());
                }
            }
        }
    }
}

/// `path` as an object URL, when it is one (a malformed one is reported where it is used).
fn s3_url(path: &Path) -> Option<ObjectUrl> {
    match Location::parse(path) {
        Ok(Location::S3(url)) => Some(url),
        _ => None,
    }
}

/// The `[trust]` table: the trust file of `--trust` (`signers`), and the operator's
/// standing consent to restore archives no trust file vouches for (`allow-untrusted`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrustConfig {
    pub signers: Option<PathBuf>,
    pub allow_untrusted: bool,
}

impl TrustConfig {
    /// The command line's `--trust` wins over the file's `signers`.
    pub fn merged(&self, cli: &TrustArgs) -> TrustArgs {
        TrustArgs {
            signers: cli.signers.clone().or_else(|| self.signers.clone()),
        }
    }
}

/// Command-line sources win as a whole: `forgekeep backup /tmp/x` backs up /tmp/x, not
/// /tmp/x plus everything the file lists.
pub fn merge_sources(cli: &SourceArgs, file: &SourceArgs) -> SourceArgs {
    let base = if cli.names_sources() { cli } else { file };
    SourceArgs {
        paths: base.paths.clone(),
        profiles: base.profiles.clone(),
        compose: base.compose.clone(),
        with_db: cli.with_db || file.with_db,
        exclude: if cli.exclude.is_empty() {
            file.exclude.clone()
        } else {
            cli.exclude.clone()
        },
    }
}

/// Each flag given on the command line wins over the file's key.
pub fn merge_backup(cli: &BackupOptions, file: &BackupOptions, passphrase: bool) -> BackupOptions {
    let keys_given = !cli.recipients.is_empty() || !cli.recipients_files.is_empty() || passphrase;
    BackupOptions {
        recipients: if keys_given {
            cli.recipients.clone()
        } else {
            file.recipients.clone()
        },
        recipients_files: if keys_given {
            cli.recipients_files.clone()
        } else {
            file.recipients_files.clone()
        },
        output: cli.output.clone().or_else(|| file.output.clone()),
        strict: cli.strict || file.strict,
        numeric_ids: cli.numeric_ids || file.numeric_ids,
        level: cli.level.or(file.level),
        armor: cli.armor || file.armor,
        sign_key: cli.sign_key.clone().or_else(|| file.sign_key.clone()),
    }
}

/// Retention flags replace the file's rules as a whole (mixing them would keep archives
/// by rules nobody wrote down in one place).
pub fn merge_keep(cli: &KeepArgs, file: &KeepArgs) -> KeepArgs {
    if *cli != KeepArgs::default() {
        cli.clone()
    } else {
        file.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "[sources]\npaths = [\"/etc/gitea\"]\n\n[retention]\nkeep-dayly = 7\n";
        let err = Config::parse(text, Path::new("/etc/forgekeep/config.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("keep-dayly"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn level_out_of_range_is_refused_with_its_line() {
        let err = Config::parse("[backup]\nlevel = 22\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(Config::parse("[backup]\nlevel = 19\n", Path::new("c.toml")).is_ok());
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let text = "[sources]\npaths = [\"jwt\"]\nprofiles = [\"gitea=app.ini\", \"woodpecker\"]\n[backup]\noutput = \"out/\"\n";
        let c = Config::parse(text, Path::new("/srv/fk/config.toml")).unwrap();
        assert_eq!(c.sources.paths, vec![PathBuf::from("/srv/fk/jwt")]);
        assert_eq!(
            c.sources.profiles,
            vec!["gitea=/srv/fk/app.ini", "woodpecker"]
        );
        assert_eq!(c.backup.output, Some(PathBuf::from("/srv/fk/out/")));
    }

    #[test]
    fn an_s3_output_is_a_url_not_a_relative_path() {
        let text = "[backup]\noutput = \"s3://backups/forge/\"\n[s3]\ncredentials-file = \"s3-credentials\"\nlock-days = 30\n";
        let c = Config::parse(text, Path::new("/etc/forgekeep/config.toml")).unwrap();
        assert_eq!(c.backup.output, Some(PathBuf::from("s3://backups/forge/")));
        assert_eq!(
            c.s3.credentials_file,
            Some(PathBuf::from("/etc/forgekeep/s3-credentials"))
        );
        assert_eq!(c.s3.lock_days, Some(30));
        assert!(c.is_output_folder(Path::new("s3://backups/forge/")));
        assert!(c.is_output_folder(Path::new("s3://backups/forge")));
        assert!(!c.is_output_folder(Path::new("s3://backups/other/")));
        assert!(!c.is_output_folder(Path::new("/var/backups")));
        let named = Config::parse(
            "[backup]\noutput = \"s3://backups/forge/a.tar.zst.age\"\n",
            Path::new("/c.toml"),
        )
        .unwrap();
        assert_eq!(
            named.output_folder(),
            Some(PathBuf::from("s3://backups/forge/"))
        );
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../examples/config.toml");
        let c = Config::parse(text, Path::new("/etc/forgekeep/config.toml")).unwrap();
        assert!(!c.sources.profiles.is_empty());
        assert_eq!(c.retention.keep_daily, Some(7));
    }

    #[test]
    fn flags_win() {
        let file = BackupOptions {
            recipients: vec!["age1file".into()],
            output: Some("/var/backups/".into()),
            level: Some(9),
            ..Default::default()
        };
        let cli = BackupOptions {
            level: Some(1),
            ..Default::default()
        };
        let m = merge_backup(&cli, &file, false);
        assert_eq!(m.level, Some(1));
        assert_eq!(m.recipients, vec!["age1file"]);
        let m = merge_backup(&cli, &file, true);
        assert!(
            m.recipients.is_empty(),
            "a passphrase replaces the file's recipients"
        );
    }
}
