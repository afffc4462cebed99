//! Docker compose awareness (being written).

pub mod image;
pub mod interp;
pub mod mounts;

pub use image::{app_of_image, image_volumes, ImageRef};
pub use mounts::{Mount, Mounts, Source, VolumeResolver};
