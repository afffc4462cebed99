//! The woodpecker profile (being written).

use super::{Context, Forge, Resolved};
use crate::error::{Error, Result};
use std::path::Path;

pub fn resolve(_forge: Forge, _config: Option<&Path>, _ctx: &Context) -> Result<Resolved> {
    Err(Error::runtime("the woodpecker profile is not built yet"))
}
