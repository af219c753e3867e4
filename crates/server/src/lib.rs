//! The free4chat server: HTTP and WebSocket signalling, rooms, and the media workers.

pub mod admin;
pub mod admission;
pub mod cluster;
pub mod config;
pub mod fds;
mod http;
pub mod ice;
mod listen;
pub mod log_limit;
pub mod memory;
pub mod metrics;
mod origin;
mod qr;
mod rate;
pub mod rooms;
mod server;
mod session;
pub mod tls;
mod web;
pub mod webhooks;

pub use rooms::Counts;
pub use server::Server;
