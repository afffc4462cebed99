//! `forgekeep prune` (being written).

use crate::cli::PruneArgs;
use crate::error::{Error, ExitCode, Result};
use crate::report::Out;

pub fn run(_args: &PruneArgs, _config: &crate::config::Config, _out: &Out) -> Result<ExitCode> {
    Err(Error::runtime("prune is not built yet"))
}
