//! The hub lives at the crate root (runs and connections both use it).
pub use crate::hub::*;
