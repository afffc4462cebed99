//! `forgekeep restore`: see [`crate::restore`] for the all-or-nothing machinery.

pub use crate::restore::run;
