//! Video forwarding policies, each a sans-I/O type with its own tests.

pub mod clock;
pub mod layer;
pub mod vp8;
