//! How forgekeep reaches a store: the `[s3]` table, merged with the AWS environment.
//!
//! Endpoint, region and credentials follow the conventions every S3 tool shares, so the
//! environment alone is enough (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …).
//! The `[s3]` table of the configuration file ([`S3Options`], which is also the command
//! line's option struct, as for the other tables) wins over the environment, the way code
//! configuration wins over it in the AWS SDKs: it was written for forgekeep, while an
//! `AWS_REGION` in root's environment may have been set for something else.
//!
//! Secret keys never pass through here: the table names a credentials *file*, and
//! [`Settings`] holds paths and names only, so neither its `Debug` nor any message built
//! from it can show a secret. Credentials are read by the SDK's own providers
//! (environment, then the shared credentials file, whose profile may assume a role); the
//! SDK's default chain also probes the instance-metadata and container endpoints, which
//! forgekeep leaves out on purpose: forge hosts are self-hosted, and a backup tool should
//! not probe link-local addresses for credentials it was not given (a profile that names
//! such a `credential_source` itself still works).

use crate::error::{Error, Result};
use crate::findings::{Code, Finding, Severity};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The `[s3]` table of the configuration file; its Object Lock keys are also `backup`'s
/// `--s3-lock-days` and `--s3-lock-mode`. Where to connect is not a flag: the
/// environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`, ...) says it for a
/// one-off run, the table for the configured job, as for every other S3 tool.
#[derive(Debug, Args, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3Options {
    /// Endpoint of an S3-compatible store, e.g. http://127.0.0.1:3900 (default: AWS_ENDPOINT_URL, else AWS)
    #[arg(skip)]
    pub endpoint: Option<String>,
    /// The store's region name (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region)
    #[arg(skip)]
    pub region: Option<String>,
    /// path: http://endpoint/BUCKET/KEY; virtual: http://BUCKET.endpoint/KEY (default: path with a custom endpoint)
    #[arg(skip)]
    pub addressing_style: Option<AddressingStyle>,
    /// The shared credentials file (default: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials)
    #[arg(skip)]
    pub credentials_file: Option<PathBuf>,
    /// The profile to use in the credentials file (default: AWS_PROFILE, else "default")
    #[arg(skip)]
    pub profile: Option<String>,
    /// With an s3:// output: give the new archive an Object Lock retention of N days (0: none), so that nobody can delete it before (the bucket needs Object Lock)
    #[arg(long = "s3-lock-days", value_name = "N")]
    pub lock_days: Option<u32>,
    /// The Object Lock mode of that retention: governance (who has s3:BypassGovernanceRetention may still delete) or compliance (nobody can) [default: governance]
    #[arg(long = "s3-lock-mode", value_name = "MODE")]
    pub lock_mode: Option<LockMode>,
}

impl S3Options {
    /// The command line's lock flags over the file's table (the rest is the table's).
    pub fn merged(&self, file: &S3Options) -> S3Options {
        S3Options {
            lock_days: self.lock_days.or(file.lock_days),
            lock_mode: self.lock_mode.or(file.lock_mode),
            ..file.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AddressingStyle {
    Path,
    Virtual,
}

/// S3 Object Lock's two retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete the object.
    Governance,
    /// Nobody, not even the account's root user, can delete it before the date.
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }
}

/// The retention new archives get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    pub days: u32,
    pub mode: LockMode,
}

impl LockPolicy {
    /// The retain-until date of an archive written at `now`: whole seconds, as stores
    /// keep it (and as the archive's stamp has it), so that the date read back equals the
    /// one asked for.
    pub fn until(&self, now: jiff::Timestamp) -> jiff::Timestamp {
        jiff::Timestamp::from_second(now.as_second()).expect("a second of a timestamp")
            + jiff::SignedDuration::from_hours(24 * i64::from(self.days))
    }
}

/// A hundred years: anything longer is a typo, and in compliance mode a typo nobody can undo.
const MAX_LOCK_DAYS: u32 = 36_500;

/// Where and how to connect, resolved from flags/table and environment. No secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// None: AWS itself.
    pub endpoint: Option<String>,
    /// None: the profile's region, else an error for AWS (us-east-1 for a custom endpoint).
    pub region: Option<String>,
    pub path_style: bool,
    /// None: the SDK's default (~/.aws/credentials).
    pub credentials_file: Option<PathBuf>,
    /// None: "default".
    pub profile: Option<String>,
    pub lock: Option<LockPolicy>,
}

impl Settings {
    /// From the process environment.
    pub fn resolve(opts: &S3Options) -> Result<Settings> {
        Settings::resolve_with(opts, &|name| std::env::var(name).ok())
    }

    /// From `env` (a lookup function, so tests need not touch the process environment).
    pub fn resolve_with(
        opts: &S3Options,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        if let Some(e) = &endpoint {
            check_endpoint(e)?;
        }
        let region = opts
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"));
        // MinIO, Garage, Ceph and test servers on 127.0.0.1 have no per-bucket host names.
        let path_style = match opts.addressing_style {
            Some(style) => style == AddressingStyle::Path,
            None => endpoint.is_some(),
        };
        let lock = match (opts.lock_days, opts.lock_mode) {
            (None | Some(0), None) => None,
            (None | Some(0), Some(_)) => return Err(Error::usage(
                "s3 lock-mode is set but lock-days is not",
            )
            .hint("set lock-days (--s3-lock-days N) to the number of days each archive is kept")),
            (Some(days), _) if days > MAX_LOCK_DAYS => {
                return Err(Error::usage(format!(
                    "s3 lock-days = {days} is more than {MAX_LOCK_DAYS} (a hundred years)"
                ))
                .hint("a retention cannot be shortened once set; give the days you mean"))
            }
            (Some(days), mode) => Some(LockPolicy {
                days,
                mode: mode.unwrap_or(LockMode::Governance),
            }),
        };
        Ok(Settings {
            endpoint,
            region,
            path_style,
            credentials_file: opts
                .credentials_file
                .clone()
                .or_else(|| env("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from)),
            profile: opts.profile.clone().or_else(|| env("AWS_PROFILE")),
            lock,
        })
    }

    /// The credentials file the SDK will read, if any: the named one, else ~/.aws/credentials.
    pub fn credentials_path(&self) -> Option<PathBuf> {
        self.credentials_file
            .clone()
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))
    }
}

/// `http(s)://host[:port][/]`; anything else would fail later with a less clear error, and
/// credentials in the URL would be printed with it.
fn check_endpoint(e: &str) -> Result<()> {
    let rest = e
        .strip_prefix("http://")
        .or_else(|| e.strip_prefix("https://"));
    let ok = match rest {
        Some(r) => {
            let host = r.split('/').next().unwrap_or("");
            !host.is_empty() && !host.contains('@') && !r.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        // Not echoed: it may hold user:password@.
        Err(Error::usage("the S3 endpoint is not an http:// or https:// URL with a host")
            .hint("set AWS_ENDPOINT_URL or [s3] endpoint to e.g. https://s3.example.org or http://127.0.0.1:3900, with no user name or password in it"))
    }
}

/// A credentials file that others may read is a leaked key waiting to happen: the
/// finding `credentials-readable`, as for the forge's own secrets.
pub fn credentials_file_findings(settings: &Settings) -> Vec<Finding> {
    let Some(path) = settings.credentials_path() else {
        return Vec::new();
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Vec::new();
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Vec::new();
    }
    vec![Finding {
        code: Code::CredentialsReadable,
        severity: Severity::Warning,
        path: path.display().to_string(),
        message: format!(
            "the S3 credentials file is mode {mode:04o}: its group or others may read the secret key"
        ),
        fix: format!("chmod 600 {}", path.display()),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(opts: &S3Options, vars: &[(&str, &str)]) -> Result<Settings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve_with(opts, &|k| vars.get(k).cloned())
    }

    #[test]
    fn environment_alone_is_enough_and_a_custom_endpoint_means_path_style() {
        let s = resolve(
            &S3Options::default(),
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:3900"),
                ("AWS_DEFAULT_REGION", "garage"),
                ("AWS_PROFILE", "backup"),
            ],
        )
        .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(s.region.as_deref(), Some("garage"));
        assert_eq!(s.profile.as_deref(), Some("backup"));
        assert!(s.path_style);
        let aws = resolve(&S3Options::default(), &[("AWS_REGION", "eu-west-1")]).unwrap();
        assert!(!aws.path_style && aws.endpoint.is_none());
    }

    #[test]
    fn the_table_wins_over_the_environment() {
        let opts = S3Options {
            endpoint: Some("https://s3.example.org".into()),
            region: Some("garage".into()),
            addressing_style: Some(AddressingStyle::Virtual),
            ..Default::default()
        };
        let s = resolve(
            &opts,
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2"),
                ("AWS_REGION", "us-east-1"),
            ],
        )
        .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("https://s3.example.org"));
        assert_eq!(s.region.as_deref(), Some("garage"));
        assert!(!s.path_style);
        // The S3-specific variable wins over the general one.
        let s = resolve(
            &S3Options::default(),
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2"),
            ],
        )
        .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:2"));
    }

    #[test]
    fn an_endpoint_with_a_password_is_refused_without_echoing_it() {
        let e = resolve(
            &S3Options::default(),
            &[("AWS_ENDPOINT_URL", "http://KEYID:SECRETKEY@127.0.0.1:9000")],
        )
        .unwrap_err();
        assert!(!e.to_string().contains("SECRETKEY"), "{e}");
        assert!(resolve(
            &S3Options::default(),
            &[("AWS_ENDPOINT_URL", "127.0.0.1:9000")]
        )
        .is_err());
    }

    #[test]
    fn lock_policy() {
        let opts = |days, mode| S3Options {
            lock_days: days,
            lock_mode: mode,
            ..Default::default()
        };
        let s = resolve(&opts(Some(30), None), &[]).unwrap();
        assert_eq!(
            s.lock,
            Some(LockPolicy {
                days: 30,
                mode: LockMode::Governance
            })
        );
        let now: jiff::Timestamp = "2026-11-25T03:00:00.750Z".parse().unwrap();
        assert_eq!(
            s.lock.unwrap().until(now).to_string(),
            "2026-12-25T03:00:00Z"
        );
        assert!(resolve(&opts(None, Some(LockMode::Compliance)), &[]).is_err());
        assert!(resolve(&opts(Some(40_000), None), &[]).is_err());
        assert_eq!(resolve(&opts(Some(0), None), &[]).unwrap().lock, None);
    }

    #[test]
    fn the_table_parses_from_toml() {
        let t: S3Options = toml::from_str(
            "endpoint = \"http://127.0.0.1:3900\"\nregion = \"garage\"\naddressing-style = \"path\"\ncredentials-file = \"/etc/forgekeep/s3-credentials\"\nlock-days = 30\nlock-mode = \"compliance\"\n",
        )
        .unwrap();
        assert_eq!(t.lock_mode, Some(LockMode::Compliance));
        assert_eq!(t.addressing_style, Some(AddressingStyle::Path));
        assert!(toml::from_str::<S3Options>("secret-access-key = \"x\"\n").is_err());
    }

    #[test]
    fn a_credentials_file_readable_by_others_is_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, "[default]\n").unwrap();
        let settings = resolve(
            &S3Options {
                credentials_file: Some(file.clone()),
                ..Default::default()
            },
            &[],
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let f = credentials_file_findings(&settings);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code.as_str(), "credentials-readable");
        assert!(f[0].message.contains("0644"), "{}", f[0]);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(credentials_file_findings(&settings).is_empty());
    }
}
