//! Video forwarding policies, each a sans-I/O type with its own tests.

pub mod allocation;
pub mod clock;
pub mod dynacast;
pub mod fall;
pub mod keyframe;
pub mod layer;
pub mod throttle;
pub mod vp8;
pub mod vp9;
