//! `forgekeep diff` (being written).

use crate::cli::DiffArgs;
use crate::error::{Error, ExitCode, Result};
use crate::report::Out;

pub fn run(_args: &DiffArgs, _out: &Out) -> Result<ExitCode> {
    Err(Error::runtime("diff is not built yet"))
}
