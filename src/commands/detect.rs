//! `forgekeep detect` (being written).

use crate::cli::DetectArgs;
use crate::error::{Error, ExitCode, Result};
use crate::report::Out;

pub fn run(_args: &DetectArgs, _out: &Out) -> Result<ExitCode> {
    Err(Error::runtime("detect is not built yet"))
}
