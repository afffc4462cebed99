//! forgekeep: back up and restore the secrets of self-hosted code forges.
//!
//! A forge that loses its OAuth2 signing key, its `SECRET_KEY` or its SSH host keys
//! quietly makes new ones, and everything that trusted the old ones breaks later. This
//! library gathers those files with permission checks ([`collect`]), stores them in one
//! tar → zstd → age archive that standard tools can still open ([`archive`]), and puts
//! them back with the right owner, group and mode, all or nothing ([`restore`]).
//! The binary (`src/main.rs`) only parses the command line and maps errors to exit codes.
//!
//! The modules follow the data: `collect` → `archive::writer` on the way in,
//! `archive::reader` → `restore` on the way out; `keys` and `owners` serve both;
//! `store` carries archives to and from S3-compatible object storage.

pub mod archive;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod compose;
pub mod config;
pub mod error;
pub mod findings;
pub mod fsx;
pub mod job;
pub mod keys;
pub mod lock;
pub mod manual;
pub mod owners;
pub mod profile;
pub mod report;
pub mod restore;
pub mod retention;
pub mod signature;
pub mod sources;
pub mod store;
pub mod usage;

use cli::{Cli, Command};
use error::{ExitCode, Result};

/// Runs one parsed command line and returns its exit code.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    let out = report::Out::new(&cli.global);
    match &cli.command {
        Command::Backup(a) => commands::backup::run(a, &config(&a.config)?, &out),
        Command::Restore(a) => commands::restore::run(a, &trust(&a.config), &out),
        Command::Verify(a) => commands::verify::run(a, &trust(&a.config), &out),
        Command::List(a) => commands::list::run(a, &trust(&a.config), &out),
        Command::Diff(a) => commands::diff::run(a, &trust(&a.config), &out),
        Command::Check(a) => commands::check::run(a, &config(&a.config)?, &out),
        Command::Detect(a) => commands::detect::run(a, &out),
        Command::Prune(a) => commands::prune::run(a, &config(&a.config)?, &out),
        Command::Status(a) => commands::status::run(a, &config(&a.config)?, &out),
        Command::Keygen(a) => commands::keygen::run(a, &out),
        Command::Generate(a) => commands::generate::run(a),
    }
}

/// The configuration's `[trust]` and `[s3]` tables, for the commands that read archives
/// (a broken file is ignored there: see [`commands::reader_config`]).
fn trust(arg: &cli::TrustConfigArg) -> config::Config {
    commands::reader_config(arg.path.as_deref())
}

/// The configuration file, read only by the commands that use it (backup, check, prune):
/// a broken config file must not stand in the way of a restore.
fn config(arg: &cli::ConfigArg) -> Result<config::Config> {
    config::Config::load(arg.path.as_deref())
}
