//! The pure pod core.

pub mod convert;
pub mod downward;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod layout;
pub mod objects;
pub mod observed;
pub mod plan;
pub mod probe;
pub mod status;
pub mod volumes;
