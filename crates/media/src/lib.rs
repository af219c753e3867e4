//! The media workers of a free4chat node: the I/O shell around the media core
//! (`free4chat-sfu`).
//!
//! Each [`worker`] is a thread with its own single-threaded runtime, UDP sockets, TCP
//! listeners and connections (ICE-TCP, RFC 6544 with RFC 4571 framing), and one core. The
//! signalling layer talks to it over channels; the workers hand each other the packets of rooms
//! spread over several of them.
//!
//! | module | job |
//! |---|---|
//! | `worker` | the thread, its tasks, and the signalling layer's handle on it |
//! | `shell` | handing the core its input and sending what that caused |
//! | `wire` | datagrams to sockets and TCP queues, relays to other workers |
//! | `tcp_conn` | accepting, reading and closing TCP connections |
//! | `tcp` | RFC 4571 framing and bounded write queues |
//! | `udp` | batched `recvmmsg`/`sendmmsg`, arrival stamps, socket drops |
//! | [`priority`] | real-time scheduling and the governor that gives it up when busy |
//! | [`latency`] | the residence and send-delay histograms |
//! | [`stats`] | the worker's figures as data, published on a board |

/// Entry points for fuzzing the ICE-TCP deframer (the `fuzzing` feature).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod latency;
pub mod priority;
mod shell;
pub mod stats;
mod tcp;
mod tcp_conn;
mod udp;
mod wire;
pub mod worker;

pub use latency::LatencyHistogram;
pub use stats::{Boards, StatsBoard, Traffic, WorkerStats};
pub use tcp_conn::TcpOptions;
