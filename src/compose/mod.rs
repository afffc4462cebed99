//! Docker compose awareness (being written).

pub mod image;
pub mod interp;

pub use image::{app_of_image, image_volumes, ImageRef};
