//! The bounds that keep one host from shutting others out: HTTP connection caps and timeouts,
//! WebSocket connections and joins per address, the deadline for a member's media, and the
//! origins the signalling WebSocket accepts (`docs/security.md`). A section of its own beside
//! those of `sections.rs`, gathered into [`Config`] the same way.
//!
//! [`Config`]: super::Config

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::duration;

/// Per-address and total bounds on what a client may hold.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtectionSettings {
    /// An HTTP connection must send a request's whole header within this time of starting it
    /// (and a kept-alive connection its next one within this time of the last answer); an
    /// HTTPS connection must also finish its TLS handshake within it.
    #[arg(
        long,
        env = "FREE4CHAT_HTTP_HEADER_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = duration::parse,
        help_heading = "Protection"
    )]
    #[serde(with = "duration")]
    pub http_header_timeout: Duration,

    /// An HTTP connection on which nothing is read or written for this long is closed (a
    /// WebSocket, once upgraded, is watched by --silence-limit instead).
    #[arg(
        long,
        env = "FREE4CHAT_HTTP_IDLE_TIMEOUT",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = duration::parse,
        help_heading = "Protection"
    )]
    #[serde(with = "duration")]
    pub http_idle_timeout: Duration,

    /// Most HTTP and WebSocket connections open at once; further ones are closed at once.
    #[arg(
        long,
        env = "FREE4CHAT_HTTP_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 16_384,
        help_heading = "Protection"
    )]
    pub http_max_connections: usize,

    /// Most HTTP and WebSocket connections open at once from one IPv4 address or IPv6 /64;
    /// further ones are closed at once.
    #[arg(
        long,
        env = "FREE4CHAT_HTTP_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = 256,
        help_heading = "Protection"
    )]
    pub http_max_connections_per_ip: usize,

    /// Most signalling WebSockets open at once from one IPv4 address or IPv6 /64.
    #[arg(
        long,
        env = "FREE4CHAT_WS_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = 100,
        help_heading = "Protection"
    )]
    pub ws_max_connections_per_ip: usize,

    /// Joins one IPv4 address or IPv6 /64 may make at once, its burst (refilled at
    /// --join-rate-per-ip).
    #[arg(
        long,
        env = "FREE4CHAT_JOIN_BURST_PER_IP",
        value_name = "N",
        default_value_t = 30,
        help_heading = "Protection"
    )]
    pub join_burst_per_ip: u32,

    /// Joins per second that refill an address's join burst.
    #[arg(
        long,
        env = "FREE4CHAT_JOIN_RATE_PER_IP",
        value_name = "PER_SECOND",
        default_value_t = 1.0,
        help_heading = "Protection"
    )]
    pub join_rate_per_ip: f64,

    /// Wrong room passwords one IPv4 address or IPv6 /64 may give at once, its burst (refilled
    /// at --password-rate-per-ip); past it, joins with a password get too_many_attempts.
    #[arg(
        long,
        env = "FREE4CHAT_PASSWORD_BURST_PER_IP",
        value_name = "N",
        default_value_t = 10,
        help_heading = "Protection"
    )]
    pub password_burst_per_ip: u32,

    /// Wrong passwords per second that refill an address's password burst.
    #[arg(
        long,
        env = "FREE4CHAT_PASSWORD_RATE_PER_IP",
        value_name = "PER_SECOND",
        default_value_t = 0.1,
        help_heading = "Protection"
    )]
    pub password_rate_per_ip: f64,

    /// How long a member a moderator removed is kept out of the room, by client key and by
    /// address.
    #[arg(
        long,
        env = "FREE4CHAT_REMOVAL_BAN",
        value_name = "DURATION",
        default_value = "10m",
        value_parser = duration::parse,
        help_heading = "Protection"
    )]
    #[serde(with = "duration")]
    pub removal_ban: Duration,

    /// A member whose media (ICE and DTLS) has not connected this long after joining is
    /// dropped, so that members who never connect cannot hold a room full; 0 turns it off.
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_DEADLINE",
        value_name = "DURATION",
        default_value = "20s",
        value_parser = duration::parse,
        help_heading = "Protection"
    )]
    #[serde(with = "duration")]
    pub media_deadline: Duration,

    /// Origins, besides this server's own host names, whose pages may open the signalling
    /// WebSocket (e.g. https://chat.example.com), comma-separated or repeated; `*` allows any.
    /// Requests without an Origin header (programs other than browsers) are allowed.
    #[arg(
        long = "allowed-origin",
        env = "FREE4CHAT_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN",
        help_heading = "Protection"
    )]
    pub allowed_origins: Vec<String>,

    /// Lines each line of code may write to the log at once, its burst (refilled at
    /// --log-rate): what clients can make the server log is held back past it, and counted.
    #[arg(
        long,
        env = "FREE4CHAT_LOG_BURST",
        value_name = "N",
        default_value_t = 50,
        help_heading = "Protection"
    )]
    pub log_burst: u32,

    /// Lines per second that refill each line of code's log burst.
    #[arg(
        long,
        env = "FREE4CHAT_LOG_RATE",
        value_name = "PER_SECOND",
        default_value_t = 5.0,
        help_heading = "Protection"
    )]
    pub log_rate: f64,

    /// Addresses exempt from every per-address limit above (e.g. a reverse proxy's, through
    /// which every client arrives, or a load generator's), comma-separated or repeated.
    #[arg(
        long = "exempt-ip",
        env = "FREE4CHAT_EXEMPT_IPS",
        value_delimiter = ',',
        value_name = "IP",
        help_heading = "Protection"
    )]
    pub exempt_ips: Vec<IpAddr>,
}

impl Default for ProtectionSettings {
    fn default() -> ProtectionSettings {
        super::declared_defaults()
    }
}
