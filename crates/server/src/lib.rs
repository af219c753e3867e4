//! The free4chat server: HTTP and WebSocket signalling, rooms, and the media workers.

pub mod admin;
pub mod admission;
pub mod cluster;
pub mod config;
pub mod fds;
pub mod history;
mod http;
pub mod ice;
pub mod join_token;
mod listen;
pub mod log_limit;
pub mod memory;
pub mod metrics;
mod origin;
mod qr;
pub mod quality;
mod rate;
pub mod rooms;
mod server;
mod session;
pub mod telemetry;
pub mod tls;
mod web;
pub mod webhooks;

pub use rooms::Counts;
pub use server::Server;
