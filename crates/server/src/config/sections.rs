//! The settings, section by section, in the order of `--help` and of README.md's tables. Each
//! field is one option: its clap attributes give the option, its environment variable and its
//! default, and serde reads it from the file under the field's name. [`Config`] gathers the
//! sections flattened, so the option names and the file's keys carry no section.
//!
//! [`Config`]: super::Config

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};
use free4chat_media::priority::{DEFAULT_PRIORITY, Realtime};
use serde::{Deserialize, Serialize};

use super::{ConfigError, TlsSource, declared_defaults, duration};

/// Where the server listens and what it logs.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct GeneralSettings {
    /// HTTP and WebSocket address to listen on.
    #[arg(
        long,
        env = "FREE4CHAT_LISTEN",
        value_name = "ADDR:PORT",
        default_value_t = SocketAddr::from(([127, 0, 0, 1], 4000))
    )]
    pub listen: SocketAddr,

    /// Log filter, in the syntax of RUST_LOG.
    #[arg(
        long,
        env = "FREE4CHAT_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log: String,
}

/// The media workers: their addresses, ports, threads and timings.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaSettings {
    /// IP address(es) to offer to browsers as media candidates, comma-separated or repeated
    /// (e.g. the public address of a server behind 1:1 NAT). Default: the addresses of every
    /// network interface, loopback included.
    #[arg(
        long = "public-ip",
        env = "FREE4CHAT_PUBLIC_IP",
        value_delimiter = ',',
        value_name = "IP",
        help_heading = "Media"
    )]
    pub public_ip: Vec<IpAddr>,

    /// First port for media, UDP (and TCP unless media-tcp is off); worker N uses this port
    /// + N. 0 picks free ports.
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_PORT",
        value_name = "PORT",
        default_value_t = 40000,
        help_heading = "Media"
    )]
    pub media_port: u16,

    /// Media worker threads, each with its own sockets and rooms (by default one per core).
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_WORKERS",
        value_name = "N",
        default_value_t = cores(),
        help_heading = "Media"
    )]
    pub media_workers: usize,

    /// Also accept media over TCP (ICE-TCP) on the same port numbers as UDP, for browsers whose
    /// UDP is blocked; UDP stays preferred when it works.
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_TCP",
        value_name = "BOOL",
        default_value_t = true,
        action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Media"
    )]
    pub media_tcp: bool,

    /// Most media TCP connections per media worker.
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_TCP_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 4096,
        help_heading = "Media"
    )]
    pub media_tcp_max_connections: usize,

    /// Real-time priority (SCHED_RR, 1-99) of the media threads, for prompt forwarding on busy
    /// cores; 0 leaves them at normal priority. Needs CAP_SYS_NICE or LimitRTPRIO; if refused,
    /// they run at normal priority. A media thread busy for most of a second returns to normal
    /// priority until its load falls.
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_REALTIME_PRIORITY",
        value_name = "N",
        default_value_t = DEFAULT_PRIORITY,
        help_heading = "Media"
    )]
    pub media_realtime_priority: u8,

    /// Whether the operator named `media_realtime_priority` (rather than leaving the default):
    /// a refusal is then a warning. Set when the configuration is read; not an option.
    #[arg(skip)]
    #[serde(skip)]
    pub media_realtime_asked: bool,

    /// Members a room keeps on one media worker before it spreads over the others, so that a
    /// large room's forwarding uses every core; 0 keeps each room on one worker.
    #[arg(
        long,
        env = "FREE4CHAT_ROOM_SPREAD_AT",
        value_name = "N",
        default_value_t = 16,
        help_heading = "Media"
    )]
    pub room_spread_at: usize,

    /// Audio slots per member: each member receives the room's loudest current speakers on
    /// this many audio streams, negotiated once when it joins, so that others joining and
    /// leaving never renegotiate; 0 gives each other member's microphone its own stream.
    #[arg(
        long,
        env = "FREE4CHAT_AUDIO_SLOTS",
        value_name = "N",
        default_value_t = 3,
        help_heading = "Media"
    )]
    pub audio_slots: usize,

    /// A member whose media has not connected this long after their offer is dropped.
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_CONNECT_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = duration::parse,
        help_heading = "Media"
    )]
    #[serde(with = "duration")]
    pub media_connect_timeout: Duration,

    /// A member whose media connection stays lost this long is dropped.
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_DISCONNECT_GRACE",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = duration::parse,
        help_heading = "Media"
    )]
    #[serde(with = "duration")]
    pub media_disconnect_grace: Duration,

    /// A media TCP connection must bring a STUN request for a member within this time of being
    /// accepted (counted in whole frames: a trickle of bytes does not extend it).
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_TCP_FIRST_FRAME_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = duration::parse,
        help_heading = "Media"
    )]
    #[serde(with = "duration")]
    pub media_tcp_first_frame_timeout: Duration,

    /// A member's media TCP connection without a whole frame for this long is closed (ICE
    /// consent lapses after 30 s anyway, and browsers check a backup pair every 25 s).
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_TCP_IDLE_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = duration::parse,
        help_heading = "Media"
    )]
    #[serde(with = "duration")]
    pub media_tcp_idle_timeout: Duration,
}

/// How much the server takes on: rooms and members, and the signalling messages each
/// connection may send.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Most rooms at once.
    #[arg(
        long,
        env = "FREE4CHAT_MAX_ROOMS",
        value_name = "N",
        default_value_t = 10_000,
        help_heading = "Limits"
    )]
    pub max_rooms: usize,

    /// Most members in one room.
    #[arg(
        long,
        env = "FREE4CHAT_MAX_ROOM_MEMBERS",
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Limits"
    )]
    pub max_room_members: usize,

    /// Most members across all rooms.
    #[arg(
        long,
        env = "FREE4CHAT_MAX_PEERS",
        value_name = "N",
        default_value_t = 10_000,
        help_heading = "Limits"
    )]
    pub max_peers: usize,

    /// Signalling messages one connection may send at once, its burst (refilled at
    /// --message-rate).
    #[arg(
        long,
        env = "FREE4CHAT_MESSAGE_BURST",
        value_name = "N",
        default_value_t = 40,
        help_heading = "Limits"
    )]
    pub message_burst: u32,

    /// Signalling messages per second that refill a connection's burst.
    #[arg(
        long,
        env = "FREE4CHAT_MESSAGE_RATE",
        value_name = "PER_SECOND",
        default_value_t = 20.0,
        help_heading = "Limits"
    )]
    pub message_rate: f64,

    /// Chat messages one connection may send at once, its burst (refilled at --chat-rate).
    #[arg(
        long,
        env = "FREE4CHAT_CHAT_BURST",
        value_name = "N",
        default_value_t = 10,
        help_heading = "Limits"
    )]
    pub chat_burst: u32,

    /// Chat messages per second that refill a connection's chat burst.
    #[arg(
        long,
        env = "FREE4CHAT_CHAT_RATE",
        value_name = "PER_SECOND",
        default_value_t = 2.0,
        help_heading = "Limits"
    )]
    pub chat_rate: f64,

    /// Refused messages in a row that end a connection.
    #[arg(
        long,
        env = "FREE4CHAT_MAX_REFUSALS",
        value_name = "N",
        default_value_t = 50,
        help_heading = "Limits"
    )]
    pub max_refusals: u32,
}

/// The timings of the signalling WebSocket connections.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionSettings {
    /// A WebSocket connection must join a room within this time.
    #[arg(
        long,
        env = "FREE4CHAT_JOIN_DEADLINE",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = duration::parse,
        help_heading = "Connections"
    )]
    #[serde(with = "duration")]
    pub join_deadline: Duration,

    /// Each WebSocket connection is pinged this often.
    #[arg(
        long,
        env = "FREE4CHAT_PING_INTERVAL",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = duration::parse,
        help_heading = "Connections"
    )]
    #[serde(with = "duration")]
    pub ping_interval: Duration,

    /// A WebSocket connection from which nothing (not even a pong) arrives for this long is
    /// closed; checked at each ping.
    #[arg(
        long,
        env = "FREE4CHAT_SILENCE_LIMIT",
        value_name = "DURATION",
        default_value = "45s",
        value_parser = duration::parse,
        help_heading = "Connections"
    )]
    #[serde(with = "duration")]
    pub silence_limit: Duration,

    /// How long a closing WebSocket connection waits for its last messages to go out and for
    /// the client's close.
    #[arg(
        long,
        env = "FREE4CHAT_CLOSE_LINGER",
        value_name = "DURATION",
        default_value = "3s",
        value_parser = duration::parse,
        help_heading = "Connections"
    )]
    #[serde(with = "duration")]
    pub close_linger: Duration,
}

/// HTTPS and WSS, and the certificate they serve (TURN over TLS serves it too).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSettings {
    /// PEM certificate chain: serve HTTPS and WSS instead of HTTP (needs --tls-key).
    #[arg(
        long,
        env = "FREE4CHAT_TLS_CERT",
        value_name = "FILE",
        help_heading = "TLS"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "FREE4CHAT_TLS_KEY",
        value_name = "FILE",
        help_heading = "TLS"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS and WSS with a certificate made at start (for a LAN: browsers grant the
    /// microphone only to secure origins, and will ask to accept this certificate once).
    #[arg(long, env = "FREE4CHAT_TLS_SELF_SIGNED", help_heading = "TLS")]
    pub tls_self_signed: bool,
}

/// The integrated TURN server, and the external TURN servers handed to browsers.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct TurnSettings {
    /// Integrated TURN server: UDP address to listen on (e.g. 0.0.0.0:3478).
    #[arg(
        long,
        env = "FREE4CHAT_TURN_UDP",
        value_name = "ADDR:PORT",
        help_heading = "TURN"
    )]
    pub turn_udp: Option<SocketAddr>,

    /// Integrated TURN server: TCP address to listen on (e.g. 0.0.0.0:3478).
    #[arg(
        long,
        env = "FREE4CHAT_TURN_TCP",
        value_name = "ADDR:PORT",
        help_heading = "TURN"
    )]
    pub turn_tcp: Option<SocketAddr>,

    /// Integrated TURN server: TLS address to listen on (e.g. 0.0.0.0:5349, or :443 on a
    /// dedicated address); uses the HTTPS certificate.
    #[arg(
        long,
        env = "FREE4CHAT_TURN_TLS",
        value_name = "ADDR:PORT",
        help_heading = "TURN"
    )]
    pub turn_tls: Option<SocketAddr>,

    /// Shared secret of the integrated TURN server's credentials (default: random at start).
    #[arg(
        long,
        env = "FREE4CHAT_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "TURN"
    )]
    pub turn_secret: Option<String>,

    /// Host name or IP put in the integrated TURN server's URLs (default: the first
    /// --public-ip, else the host the browser used to reach this server).
    #[arg(
        long,
        env = "FREE4CHAT_TURN_HOST",
        value_name = "HOST",
        help_heading = "TURN"
    )]
    pub turn_host: Option<String>,

    /// Integrated TURN server: most relay allocations in all.
    #[arg(
        long,
        env = "FREE4CHAT_TURN_MAX_ALLOCATIONS",
        value_name = "N",
        default_value_t = 2000,
        help_heading = "TURN"
    )]
    pub turn_max_allocations: usize,

    /// Integrated TURN server: most relay allocations from one IPv4 address or IPv6 /64.
    #[arg(
        long,
        env = "FREE4CHAT_TURN_MAX_ALLOCATIONS_PER_IP",
        value_name = "N",
        default_value_t = 32,
        help_heading = "TURN"
    )]
    pub turn_max_allocations_per_ip: usize,

    /// Integrated TURN server: most TCP and TLS connections open at once, in all.
    #[arg(
        long,
        env = "FREE4CHAT_TURN_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 1000,
        help_heading = "TURN"
    )]
    pub turn_max_connections: usize,

    /// Integrated TURN server: most TCP and TLS connections open at once from one IPv4
    /// address or IPv6 /64.
    #[arg(
        long,
        env = "FREE4CHAT_TURN_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = 32,
        help_heading = "TURN"
    )]
    pub turn_max_connections_per_ip: usize,

    /// External TURN/TURNS/STUN URL(s) handed to browsers, comma-separated or repeated
    /// (e.g. turns:turn.example.com:443?transport=tcp).
    #[arg(
        long = "external-turn",
        env = "FREE4CHAT_EXTERNAL_TURN",
        value_delimiter = ',',
        value_name = "URL",
        help_heading = "TURN"
    )]
    pub external_turn: Vec<String>,

    /// The shared secret (coturn's static-auth-secret) of the external TURN servers.
    #[arg(
        long,
        env = "FREE4CHAT_EXTERNAL_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "TURN"
    )]
    pub external_turn_secret: Option<String>,

    /// How long issued TURN credentials stay valid, 10 s to 7 days (a bare number is seconds).
    /// A member in its room is sent fresh ones at half this lifetime.
    #[arg(
        long,
        env = "FREE4CHAT_TURN_TTL",
        value_name = "DURATION",
        default_value = "10m",
        value_parser = duration::parse,
        help_heading = "TURN"
    )]
    #[serde(with = "duration")]
    pub turn_ttl: Duration,
}

/// Cluster mode: nodes that share rooms through Redis (`docs/cluster.md`).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSettings {
    /// Redis URL that makes this node one of a cluster: redis://[:PASSWORD@]HOST[:PORT][/DB],
    /// or rediss:// for TLS. Without it the node stands alone and uses no Redis.
    #[arg(
        long,
        env = "FREE4CHAT_REDIS",
        value_name = "URL",
        hide_env_values = true,
        help_heading = "Cluster"
    )]
    pub redis: Option<String>,

    /// In cluster mode, how long SIGTERM waits for this node's members to move to other
    /// nodes before it exits anyway.
    #[arg(
        long,
        env = "FREE4CHAT_DRAIN_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = duration::parse,
        help_heading = "Cluster"
    )]
    #[serde(with = "duration")]
    pub drain_timeout: Duration,
}

/// Webhooks: the rooms' events POSTed to receivers, signed (`docs/webhooks.md`).
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// URL(s) that receive the rooms' events (room_started, room_finished, member_joined,
    /// member_left) as signed JSON POSTs, comma-separated or repeated; http:// or https://.
    #[arg(
        long = "webhook",
        env = "FREE4CHAT_WEBHOOK",
        value_delimiter = ',',
        value_name = "URL",
        help_heading = "Webhooks"
    )]
    pub webhook: Vec<String>,

    /// The shared secret the webhooks are signed with (HMAC-SHA256); or --webhook-secret-file.
    #[arg(
        long,
        env = "FREE4CHAT_WEBHOOK_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        help_heading = "Webhooks"
    )]
    pub webhook_secret: Option<String>,

    /// A file holding the webhooks' shared secret (a final newline is not part of it).
    #[arg(
        long,
        env = "FREE4CHAT_WEBHOOK_SECRET_FILE",
        value_name = "FILE",
        help_heading = "Webhooks"
    )]
    pub webhook_secret_file: Option<PathBuf>,

    /// Events that may wait for one receiver; more are dropped, and counted.
    #[arg(
        long,
        env = "FREE4CHAT_WEBHOOK_QUEUE",
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Webhooks"
    )]
    pub webhook_queue: usize,

    /// How long one delivery of an event may take, connecting included.
    #[arg(
        long,
        env = "FREE4CHAT_WEBHOOK_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = duration::parse,
        help_heading = "Webhooks"
    )]
    #[serde(with = "duration")]
    pub webhook_timeout: Duration,
}

/// One media worker per core.
pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl MediaSettings {
    /// How the media threads are to be scheduled.
    pub fn realtime(&self) -> Realtime {
        Realtime {
            priority: self.media_realtime_priority,
            asked: self.media_realtime_asked,
        }
    }
}

impl TlsSettings {
    /// HTTPS and WSS instead of HTTP, and with which certificate.
    pub fn source(&self) -> Result<Option<TlsSource>, ConfigError> {
        match (&self.tls_cert, &self.tls_key, self.tls_self_signed) {
            (None, None, false) => Ok(None),
            (None, None, true) => Ok(Some(TlsSource::SelfSigned)),
            (Some(cert), Some(key), false) => Ok(Some(TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (_, _, true) => Err(ConfigError::Invalid(
                "tls_self_signed and tls_cert/tls_key exclude each other",
            )),
            _ => Err(ConfigError::Invalid("tls_cert and tls_key go together")),
        }
    }
}

impl TurnSettings {
    /// Whether the integrated TURN server listens anywhere.
    pub fn enabled(&self) -> bool {
        self.turn_udp.is_some() || self.turn_tcp.is_some() || self.turn_tls.is_some()
    }
}

/// The defaults declared on the options, section by section.
macro_rules! declared_defaults_of {
    ($($section:ty),*) => {$(
        impl Default for $section {
            fn default() -> $section {
                declared_defaults()
            }
        }
    )*};
}
declared_defaults_of!(
    GeneralSettings,
    MediaSettings,
    LimitSettings,
    ConnectionSettings,
    TlsSettings,
    TurnSettings,
    ClusterSettings,
    WebhookSettings
);
