//! The free4chat media core: a sans-I/O SFU on str0m.
//!
//! Fed with datagrams, commands and time, it yields datagrams to send, packets for the other
//! workers of the node, events for the signalling layer, and the next time it wants to be
//! woken. It owns no socket, thread or clock: the worker shell (`free4chat-media`) moves bytes
//! and time between the network and the core, and tests drive it on a simulated clock.
//!
//! The parts, each owning its state:
//!
//! | part | job |
//! |---|---|
//! | [`Sfu`] (`sfu`) | the inputs and outputs, and what ties the parts together |
//! | `demux` | which participant a datagram is for (address, else STUN username) |
//! | `timers` | when each participant's session next wants to be woken |
//! | `participants` | every participant, in a slab keyed by a participant key |
//! | `participant` | one member's media session: `Rtc`, up-tracks, down-tracks |
//! | `negotiation` | the SDP offer/answer with one participant |
//! | `rooms` | each room's shard: its participants and up-tracks here, where to relay |
//! | `uptrack` | a published track (its simulcast layers), holding the index of its subscribers |
//! | `downtrack` | one subscriber's copy: negotiation state, route, rewriter, video layer |
//! | `fanout` | the batch of packets to write, grouped by subscriber |
//! | `forward` | payload type routes, RED, sequence/timestamp rewriting |
//! | `speaking` | who is speaking, from the audio level |
//! | [`speakers`] | whom the listeners hear on their audio slots: the loudest, with hysteresis |
//! | [`link`] | which worker holds which member of a room, and what each worker is told |
//! | [`video`] | video policies: a viewer's simulcast layer, VP8 picture numbering, sharing a viewer's bandwidth, dynacast |

mod api;
mod config;
mod demux;
mod downtrack;
mod fanout;
pub mod forward;
pub mod link;
mod negotiation;
mod participant;
mod participants;
mod prepared;
pub mod quality;
mod rooms;
pub mod sdp;
mod sfu;
pub mod speakers;
pub mod speaking;
mod stats;
mod timers;
mod uptrack;
pub mod video;

pub use api::{MediaCmd, MediaErrorCode, MediaEvent, VideoQuality, WorkerIndex};
pub use config::{SfuConfig, dtls_certificate};
pub use free4chat_ids::{MemberId, RoomId, TrackKind};
pub use participant::MAX_PUBLISHED_TRACKS;
pub use prepared::{Prepared, Relay};
pub use sfu::Sfu;
pub use stats::CoreStats;
pub use str0m::config::DtlsCert;
pub use str0m::net::{Protocol, Transmit};
