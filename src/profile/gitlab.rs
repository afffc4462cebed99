//! The gitlab profile (being written).

use super::{Context, Resolved};
use crate::error::{Error, Result};
use std::path::Path;

pub fn resolve(_config: Option<&Path>, _ctx: &Context) -> Result<Resolved> {
    Err(Error::runtime("the gitlab profile is not built yet"))
}
