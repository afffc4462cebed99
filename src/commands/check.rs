//! `forgekeep check` (being written).

use crate::cli::CheckArgs;
use crate::error::{Error, ExitCode, Result};
use crate::report::Out;

pub fn run(_args: &CheckArgs, _config: &crate::config::Config, _out: &Out) -> Result<ExitCode> {
    Err(Error::runtime("check is not built yet"))
}
