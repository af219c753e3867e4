//! The free4chat server: HTTP and WebSocket signalling, rooms, and the media workers.

pub mod cluster;
pub mod config;
mod http;
pub mod ice;
pub mod memory;
pub mod metrics;
mod rate;
pub mod rooms;
mod server;
mod session;
pub mod tls;
mod web;
pub mod webhooks;

pub use rooms::Counts;
pub use server::Server;
