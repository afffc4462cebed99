//! Docker compose awareness (being written).

pub mod interp;
