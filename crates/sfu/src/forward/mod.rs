//! Forwarding RTP packets as they are (str0m's RTP mode): what turns one publisher's packet
//! into the packet one subscriber receives.
//!
//! - [`route`]: the payload type, mapped by codec from the publisher's session to the
//!   subscriber's, and RED passed on to subscribers who negotiated it or unwrapped to its
//!   primary block for those who did not.
//! - [`rewriter`]: each down-track's own sequence numbers and timestamps.
//! - [`red`]: RED parsing and the recovery of frames lost on the way in.
//!
//! The payload itself is never copied per subscriber: it is the `Arc` str0m decrypted it into.

pub mod red;
pub mod rewriter;
pub mod route;

pub use red::{Recovered, Red, RedRecovery};
pub use rewriter::Rewriter;
pub use route::Route;
