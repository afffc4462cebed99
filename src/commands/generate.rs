//! `forgekeep generate man DIR | completions SHELL` (hidden): man pages and completions
//! rendered from the clap definition in `cli.rs`, so they cannot drift from `--help`.
//! `man/` in the repository holds the output of `generate man man/`; a test fails when
//! it is stale.

use crate::cli::{Cli, GenerateArgs, GenerateWhat};
use crate::error::{Error, ExitCode, Result};
use clap::CommandFactory;
use std::path::Path;

pub fn run(args: &GenerateArgs) -> Result<ExitCode> {
    match &args.what {
        GenerateWhat::Man { dir } => write_man_pages(dir)?,
        GenerateWhat::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "forgekeep", &mut std::io::stdout());
        }
    }
    Ok(ExitCode::Success)
}

/// One page per visible command: forgekeep.1, forgekeep-backup.1, ...
pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, &e))?;
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    clap_mangen::generate_to(cmd, dir)
        .map_err(|e| Error::io("cannot write man pages to", dir, &e))?;
    Ok(())
}
