//! Configuration: command line, then environment, then a TOML file, then defaults.
//!
//! Every setting is declared once, as a field of [`Config`]: its clap attributes give the
//! option, its environment variable and its default (the one place defaults live; `--help`
//! shows them), and serde reads the same field from the TOML file under the field's name.
//! clap resolves the command line over the environment over the defaults and tells, through
//! [`ArgMatches::value_source`], which values it took from neither of the first two: those the
//! file may set.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};
use free4chat_media::priority::{DEFAULT_PRIORITY, Realtime};
use serde::{Deserialize, Serialize};

/// free4chat: voice chat rooms in the browser, from one binary.
///
/// Every option can also be set in the environment (the variable named beside it) or in a
/// TOML file given with --config (the same names in snake_case, e.g. `media_port = 40000`).
/// The command line wins over the environment, which wins over the file. Durations are
/// written like `30s`, `500ms` or `2m`; a bare number is seconds.
#[derive(Debug, Clone, PartialEq, Parser, Serialize, Deserialize)]
#[command(name = "free4chat", version, about, long_about)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// TOML configuration file.
    // Not a key of the file itself: a file naming another file would be refused as unknown.
    #[arg(long, env = "FREE4CHAT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

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
        default_value_t = 50,
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

    /// Integrated TURN server: most relay allocations from one IP address.
    #[arg(
        long,
        env = "FREE4CHAT_TURN_MAX_ALLOCATIONS_PER_IP",
        value_name = "N",
        default_value_t = 100,
        help_heading = "TURN"
    )]
    pub turn_max_allocations_per_ip: usize,

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

    /// How long issued TURN credentials stay valid, 60 s to 7 days (a bare number is seconds).
    #[arg(
        long,
        env = "FREE4CHAT_TURN_TTL",
        value_name = "DURATION",
        default_value = "24h",
        value_parser = duration::parse,
        help_heading = "TURN"
    )]
    #[serde(with = "duration")]
    pub turn_ttl: Duration,
}

/// One media worker per core.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for Config {
    /// The defaults declared on the options: the command line read with no arguments and no
    /// environment.
    fn default() -> Config {
        let command = Config::command().mut_args(|arg| arg.env(None));
        // Only the declared defaults are parsed here, and a unit test parses them all, so a
        // failure is a mistake in this file, never in anyone's input.
        let matches = command
            .try_get_matches_from(["free4chat"])
            .expect("the declared defaults parse");
        Config::from_arg_matches(&matches).expect("the declared defaults make a configuration")
    }
}

/// Where HTTPS gets its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Args(#[from] clap::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("cannot combine {path} with the command line and environment: {message}")]
    Combine { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
}

impl Config {
    /// Reads `args` (the program name first) and this process's environment, then the file
    /// they name, and checks the result.
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Config::command().try_get_matches_from(args)?;
        Config::from_matches(&matches)
    }

    /// Completes what clap read from the command line and environment with the file it names,
    /// and checks the result.
    pub fn from_matches(matches: &ArgMatches) -> Result<Config, ConfigError> {
        let config = match matches.get_one::<PathBuf>("config") {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Config::layered(matches, Some((path, &text)))?
            }
            None => Config::layered(matches, None)?,
        };
        config.check()?;
        Ok(config)
    }

    /// The command line and environment over the file's text over the defaults, unchecked.
    fn layered(matches: &ArgMatches, file: Option<(&Path, &str)>) -> Result<Config, ConfigError> {
        let from_args = Config::from_arg_matches(matches)?;
        let given_by_args = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let Some((path, text)) = file else {
            let asked = given_by_args("media_realtime_priority");
            return Ok(Config {
                media_realtime_asked: asked,
                ..from_args
            });
        };
        let parse_error = |source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        };
        let combine_error = |e: &dyn std::fmt::Display| ConfigError::Combine {
            path: path.to_owned(),
            message: e.to_string(),
        };
        // Read as the whole struct first: that refuses unknown keys and wrong types, naming
        // the line. Then the keys the file sets replace what clap took from the defaults.
        toml::from_str::<Config>(text).map_err(parse_error)?;
        let in_file: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let mut merged = toml::Table::try_from(&from_args).map_err(|e| combine_error(&e))?;
        for (key, value) in &in_file {
            if !given_by_args(key) {
                merged.insert(key.clone(), value.clone());
            }
        }
        let merged: Config = merged.try_into().map_err(|e| combine_error(&e))?;
        let asked = given_by_args("media_realtime_priority")
            || in_file.contains_key("media_realtime_priority");
        Ok(Config {
            config: from_args.config,
            media_realtime_asked: asked,
            ..merged
        })
    }

    /// How the media threads are to be scheduled.
    pub fn media_realtime(&self) -> Realtime {
        Realtime {
            priority: self.media_realtime_priority,
            asked: self.media_realtime_asked,
        }
    }

    /// Whether the integrated TURN server listens anywhere.
    pub fn turn_enabled(&self) -> bool {
        self.turn_udp.is_some() || self.turn_tcp.is_some() || self.turn_tls.is_some()
    }

    /// HTTPS and WSS instead of HTTP, and with which certificate.
    pub fn tls_source(&self) -> Result<Option<TlsSource>, ConfigError> {
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

    /// Refuses values that are each well-formed but make no sense, alone or together.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=256).contains(&self.media_workers) {
            return Err(ConfigError::Invalid("media_workers must be 1 to 256"));
        }
        if self.media_port != 0
            && usize::from(self.media_port) + self.media_workers - 1 > usize::from(u16::MAX)
        {
            return Err(ConfigError::Invalid(
                "media_port + media_workers runs past port 65535",
            ));
        }
        if self.media_tcp_max_connections == 0 {
            return Err(ConfigError::Invalid(
                "media_tcp_max_connections must be at least 1",
            ));
        }
        if self.media_realtime_priority > 99 {
            return Err(ConfigError::Invalid(
                "media_realtime_priority must be 0 (off) to 99",
            ));
        }
        if self.max_rooms == 0 || self.max_room_members == 0 || self.max_peers == 0 {
            return Err(ConfigError::Invalid("limits must be at least 1"));
        }
        if self.message_burst == 0 || self.chat_burst == 0 || self.max_refusals == 0 {
            return Err(ConfigError::Invalid(
                "message_burst, chat_burst and max_refusals must be at least 1",
            ));
        }
        // NaN fails this too.
        let positive = |rate: f64| rate.is_finite() && rate > 0.0;
        if !positive(self.message_rate) || !positive(self.chat_rate) {
            return Err(ConfigError::Invalid(
                "message_rate and chat_rate must be more than 0 per second",
            ));
        }
        // A deadline is added to the time of day; past a day none would be useful.
        let timings = [
            self.media_connect_timeout,
            self.media_disconnect_grace,
            self.media_tcp_first_frame_timeout,
            self.media_tcp_idle_timeout,
            self.join_deadline,
            self.ping_interval,
            self.silence_limit,
            self.close_linger,
        ];
        if timings
            .iter()
            .any(|t| t.is_zero() || *t > Duration::from_secs(86_400))
        {
            return Err(ConfigError::Invalid(
                "timeouts, deadlines and intervals must be more than 0 and at most a day",
            ));
        }
        let mut families = self
            .public_ip
            .iter()
            .map(|ip| ip.is_ipv4())
            .collect::<Vec<_>>();
        families.sort();
        if families.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid(
                "at most one public_ip per address family (IPv4, IPv6)",
            ));
        }
        self.check_turn()
    }

    fn check_turn(&self) -> Result<(), ConfigError> {
        let tls = self.tls_source()?;
        if self.turn_tls.is_some() && tls.is_none() {
            return Err(ConfigError::Invalid(
                "turn_tls needs a certificate: tls_cert and tls_key, or tls_self_signed",
            ));
        }
        if self.turn_max_allocations == 0 || self.turn_max_allocations_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "TURN allocation limits must be at least 1",
            ));
        }
        if [&self.turn_secret, &self.external_turn_secret]
            .into_iter()
            .any(|s| s.as_ref().is_some_and(|s| s.is_empty()))
        {
            return Err(ConfigError::Invalid("a TURN secret must not be empty"));
        }
        if let Some(host) = &self.turn_host
            && !crate::ice::valid_host(host)
        {
            return Err(ConfigError::Invalid(
                "turn_host must be a DNS name or an IP address",
            ));
        }
        if !(Duration::from_secs(60)..=Duration::from_secs(7 * 86_400)).contains(&self.turn_ttl) {
            return Err(ConfigError::Invalid("turn_ttl must be 60 s to 7 days"));
        }
        let mut relays = false;
        for url in &self.external_turn {
            if !crate::ice::valid_url(url) {
                return Err(ConfigError::Invalid(
                    "external_turn URLs must be turn:, turns: or stun: URLs of printable ASCII",
                ));
            }
            relays |= !url.starts_with("stun:");
        }
        if relays && self.external_turn_secret.is_none() {
            return Err(ConfigError::Invalid(
                "external TURN URLs need external_turn_secret",
            ));
        }
        Ok(())
    }
}

/// Durations as people write them (`30s`, `500ms`, `2m`, `1h 30m`), on the command line, in
/// the environment and in the file; a bare number is seconds, as `turn_ttl` always took.
mod duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer, de};

    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|e| format!("{e}"));
        }
        humantime::parse_duration(text)
            .map_err(|e| format!("{e} (write a duration like 30s, 500ms or 2m)"))
    }

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Duration;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration like \"30s\" or \"500ms\", or a number of seconds")
            }

            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(seconds))
            }

            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
                u64::try_from(seconds)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `args` and a file's text over the defaults, checked (the environment is not read).
    fn resolve(args: &[&str], file: &str) -> Result<Config, ConfigError> {
        let command = Config::command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(args)?;
        let config = Config::layered(&matches, Some((Path::new("test.toml"), file)))?;
        config.check()?;
        Ok(config)
    }

    fn args(args: &[&str]) -> Result<Config, ConfigError> {
        resolve(args, "")
    }

    #[test]
    fn command_line_wins_over_file_and_defaults_fill_the_rest() {
        let c = resolve(
            &["free4chat", "--listen", "127.0.0.1:5000"],
            "listen = \"0.0.0.0:80\"\nmedia_port = 50000\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.media_port, 50000);
        assert_eq!(c.max_room_members, 50);
        assert_eq!(c.room_spread_at, 16);
        let c = resolve(
            &["free4chat", "--room-spread-at", "0"],
            "room_spread_at = 8\n",
        );
        assert_eq!(c.unwrap().room_spread_at, 0);
        let c = resolve(&["free4chat"], "room_spread_at = 8\n").unwrap();
        assert_eq!(c.room_spread_at, 8);
        // A list on the command line replaces the file's whole list.
        let c = resolve(
            &["free4chat", "--public-ip", "127.0.0.2"],
            "public_ip = [\"127.0.0.1\", \"::1\"]\n",
        )
        .unwrap();
        assert_eq!(c.public_ip, ["127.0.0.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn bad_files_and_values_are_refused_with_a_reason() {
        let err = resolve(&["free4chat"], "listne = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.toml") && err.contains("unknown field `listne`"),
            "{err}"
        );
        assert!(resolve(&["free4chat"], "media_port = 70000").is_err());
        // The file cannot name another file.
        let err = resolve(&["free4chat"], "config = \"/etc/other.toml\"");
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("unknown field `config`")
        );
        assert!(args(&["free4chat", "--media-workers", "0"]).is_err());
        assert!(args(&["free4chat", "--public-ip", "1.2.3.4,5.6.7.8"]).is_err());
        assert!(args(&["free4chat", "--media-port", "65535", "--media-workers", "2"]).is_err());
        for bad in [
            ["--message-burst", "0"],
            ["--chat-rate", "0"],
            ["--message-rate", "NaN"],
            ["--max-refusals", "0"],
            ["--ping-interval", "0s"],
            ["--join-deadline", "2days"],
            ["--silence-limit", "-1s"],
            ["--close-linger", "soon"],
        ] {
            let refused = args(&["free4chat", bad[0], bad[1]]);
            assert!(refused.is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn durations_are_written_as_people_write_them_and_bare_numbers_are_seconds() {
        let c = args(&["free4chat", "--turn-ttl", "3600"]).unwrap();
        assert_eq!(c.turn_ttl, Duration::from_secs(3600));
        let c = args(&["free4chat", "--turn-ttl", "90m"]).unwrap();
        assert_eq!(c.turn_ttl, Duration::from_secs(5400));
        let c = resolve(
            &["free4chat"],
            "turn_ttl = 86400
",
        )
        .unwrap();
        assert_eq!(c.turn_ttl, Duration::from_secs(86_400));
        let c = resolve(&["free4chat"], "turn_ttl = \"1h 30m\"\n").unwrap();
        assert_eq!(c.turn_ttl, Duration::from_secs(5400));
        let err = resolve(&["free4chat"], "turn_ttl = -5").unwrap_err();
        assert!(err.to_string().contains("negative"), "{err}");
        let err = resolve(&["free4chat"], "turn_ttl = \"5 parsecs\"").unwrap_err();
        assert!(err.to_string().contains("turn_ttl"), "{err}");
        let c = args(&["free4chat", "--join-deadline", "300ms"]).unwrap();
        assert_eq!(c.join_deadline, Duration::from_millis(300));
        let c = resolve(
            &["free4chat"],
            "silence_limit = \"1m 30s\"\nmedia_tcp_idle_timeout = 2\n",
        )
        .unwrap();
        assert_eq!(c.silence_limit, Duration::from_secs(90));
        assert_eq!(c.media_tcp_idle_timeout, Duration::from_secs(2));
    }

    #[test]
    fn tls_and_turn_options_are_checked_together() {
        let c = args(&[
            "free4chat",
            "--tls-self-signed",
            "--turn-tls",
            "127.0.0.1:5349",
        ])
        .unwrap();
        assert_eq!(c.tls_source().unwrap(), Some(TlsSource::SelfSigned));
        assert!(c.turn_enabled());
        // TURN over TLS needs a certificate; cert and key go together.
        assert!(args(&["free4chat", "--turn-tls", "127.0.0.1:5349"]).is_err());
        assert!(args(&["free4chat", "--tls-cert", "/c.pem"]).is_err());
        assert!(
            args(&[
                "free4chat",
                "--tls-self-signed",
                "--tls-cert",
                "/c",
                "--tls-key",
                "/k"
            ])
            .is_err()
        );
        // External relays need their secret; URLs are checked.
        assert!(args(&["free4chat", "--external-turn", "turn:t.example:3478"]).is_err());
        assert!(
            args(&[
                "free4chat",
                "--external-turn",
                "http://x",
                "--external-turn-secret",
                "s"
            ])
            .is_err()
        );
        let c = args(&[
            "free4chat",
            "--external-turn",
            "turn:t.example:3478?transport=udp,turns:t.example:443?transport=tcp",
            "--external-turn-secret",
            "s",
        ])
        .unwrap();
        assert_eq!(c.external_turn.len(), 2);
        assert!(args(&["free4chat", "--external-turn", "stun:t.example:3478"]).is_ok());
        assert!(args(&["free4chat", "--turn-host", "bad host"]).is_err());
        assert!(args(&["free4chat", "--turn-ttl", "5"]).is_err());
        let c = resolve(
            &["free4chat"],
            "turn_udp = \"0.0.0.0:3478\"\nturn_secret = \"x\"\n",
        )
        .unwrap();
        assert_eq!(c.turn_udp, Some("0.0.0.0:3478".parse().unwrap()));
        let c = resolve(&["free4chat"], "tls_self_signed = true\n").unwrap();
        assert_eq!(c.tls_source().unwrap(), Some(TlsSource::SelfSigned));
    }

    #[test]
    fn media_over_tcp_is_on_by_default_and_can_be_turned_off() {
        let c = args(&["free4chat"]).unwrap();
        assert!(c.media_tcp);
        assert_eq!(c.media_tcp_max_connections, 4096);
        assert!(
            !args(&["free4chat", "--media-tcp", "false"])
                .unwrap()
                .media_tcp
        );
        assert!(
            !args(&["free4chat", "--media-tcp", "off"])
                .unwrap()
                .media_tcp
        );
        let c = resolve(
            &["free4chat"],
            "media_tcp = false\nmedia_tcp_max_connections = 10\n",
        )
        .unwrap();
        assert!(!c.media_tcp);
        assert_eq!(c.media_tcp_max_connections, 10);
        assert!(args(&["free4chat", "--media-tcp-max-connections", "0"]).is_err());
    }

    #[test]
    fn real_time_priority_is_tried_by_default_and_bounded() {
        let c = args(&["free4chat"]).unwrap();
        let tried = Realtime {
            priority: 10,
            asked: false,
        };
        assert_eq!(c.media_realtime(), tried);
        let c = resolve(&["free4chat"], "media_realtime_priority = 20\n").unwrap();
        let asked = Realtime {
            priority: 20,
            asked: true,
        };
        assert_eq!(c.media_realtime(), asked);
        // Asking for the default priority by name is asking too.
        let c = args(&["free4chat", "--media-realtime-priority", "10"]).unwrap();
        assert!(c.media_realtime().asked);
        let c = args(&["free4chat", "--media-realtime-priority", "0"]).unwrap();
        assert_eq!(c.media_realtime().priority, 0);
        assert!(args(&["free4chat", "--media-realtime-priority", "100"]).is_err());
        assert!(args(&["free4chat", "--media-realtime-priority", "300"]).is_err());
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let command = Config::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["free4chat", "--config", "/nonexistent/free4chat.toml"])
            .unwrap();
        let err = Config::from_matches(&matches).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/free4chat.toml"), "{err}");
    }

    #[test]
    fn the_defaults_are_those_declared_on_the_options() {
        let d = Config::default();
        assert_eq!(d.listen, SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert_eq!((d.media_port, d.media_workers), (40000, cores()));
        assert_eq!((d.message_burst, d.message_rate), (40, 20.0));
        assert_eq!((d.chat_burst, d.chat_rate, d.max_refusals), (10, 2.0, 50));
        assert_eq!(
            [
                d.join_deadline,
                d.ping_interval,
                d.silence_limit,
                d.close_linger
            ],
            [30, 15, 45, 3].map(Duration::from_secs)
        );
        assert_eq!(
            [
                d.media_connect_timeout,
                d.media_disconnect_grace,
                d.media_tcp_first_frame_timeout,
                d.media_tcp_idle_timeout
            ],
            [30, 10, 10, 30].map(Duration::from_secs)
        );
        assert_eq!(d.turn_ttl, Duration::from_secs(86_400));
        assert!(!d.media_realtime_asked && d.public_ip.is_empty() && d.turn_secret.is_none());
        d.check().unwrap();
        // An empty file and no arguments give the defaults.
        assert_eq!(resolve(&["free4chat"], "").unwrap(), d);
    }

    /// A value each option takes, to try it with: its default, else one by the kind of value.
    fn sample(arg: &clap::Arg) -> Option<String> {
        if !arg.get_action().takes_values() {
            return None;
        }
        if let Some(default) = arg.get_default_values().first() {
            return Some(default.to_string_lossy().into_owned());
        }
        let kind = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| v.as_str());
        let sample = match kind {
            Some("ADDR:PORT") => "127.0.0.1:9",
            Some("IP") => "127.0.0.1",
            Some("FILE") => "/etc/free4chat/sample.pem",
            Some("SECRET") => "sample secret",
            Some("HOST") => "chat.example",
            Some("URL") => "stun:stun.example:3478",
            _ => panic!("{:?}: give this kind of value a sample here", arg.get_id()),
        };
        Some(sample.to_owned())
    }

    /// The options of the command, less clap's own (--help, --version).
    fn options() -> Vec<clap::Arg> {
        Config::command()
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .cloned()
            .collect()
    }

    /// The configuration from one option on the command line, over the defaults.
    fn with_option(arg: &clap::Arg, value: Option<&str>) -> Config {
        let long = format!("--{}", arg.get_long().unwrap());
        let argv: Vec<&str> = ["free4chat", long.as_str()]
            .into_iter()
            .chain(value)
            .collect();
        let command = Config::command().mut_args(|arg| arg.env(None));
        Config::from_arg_matches(&command.try_get_matches_from(&argv).unwrap()).unwrap()
    }

    /// A setting's value as the file would hold it (None: unset).
    fn file_value(config: &Config, key: &str) -> Option<toml::Value> {
        toml::Table::try_from(config).unwrap().get(key).cloned()
    }

    /// The rows of README.md's tables: the options named in the first cell (`--name…`), each
    /// with the code spans of the second cell (the environment variables).
    fn readme_rows() -> Vec<(Vec<String>, Vec<String>)> {
        let readme = include_str!("../../../README.md");
        let code_spans = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        readme
            .lines()
            .filter(|line| line.starts_with('|'))
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').collect();
                let options: Vec<String> = code_spans(cells.get(1)?)
                    .into_iter()
                    .filter_map(|span| {
                        let name = span.strip_prefix("--")?;
                        Some(name.split(' ').next()?.to_owned())
                    })
                    .collect();
                let envs = code_spans(cells.get(2)?);
                (!options.is_empty()).then_some((options, envs))
            })
            .collect()
    }

    /// `--help`'s `[default: …]` for each option, by its long name.
    fn help_defaults() -> std::collections::HashMap<String, Option<String>> {
        let help = Config::command()
            .mut_args(|arg| arg.env(None))
            .render_long_help()
            .to_string();
        let mut defaults = std::collections::HashMap::new();
        let mut current: Option<String> = None;
        for line in help.lines() {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("--")
                && line.len() - trimmed.len() >= 2
            {
                let name = rest.split([' ', '=', '<']).next().unwrap().to_owned();
                defaults.insert(name.clone(), None);
                current = Some(name);
            } else if let (Some(name), Some(rest)) = (&current, trimmed.strip_prefix("[default: "))
            {
                defaults.insert(name.clone(), Some(rest.trim_end_matches(']').to_owned()));
            }
        }
        defaults
    }

    #[test]
    fn every_option_has_a_readme_row_a_file_key_and_its_real_default_in_help() {
        let rows = readme_rows();
        let help = help_defaults();
        let defaults = Config::default();
        let options = options();
        assert!(options.len() > 20, "{} options found", options.len());
        for arg in &options {
            let id = arg.get_id().as_str();
            let long = arg.get_long().expect("every option has a long name");
            let env = arg.get_env().expect("every option has a variable");
            let env = env.to_string_lossy();

            // README.md has a row for it, with its variable.
            let row = rows
                .iter()
                .find(|(names, _)| names.iter().any(|n| n == long));
            let Some((_, envs)) = row else {
                panic!("README.md's options table has no row for --{long}")
            };
            assert!(
                envs.iter().any(|e| *e == env),
                "README.md's row for --{long} lacks {env}: {envs:?}"
            );

            // The help shows the real default, or none when there is none.
            let shown = help
                .get(long)
                .unwrap_or_else(|| panic!("--help lacks --{long}"));
            match shown {
                Some(shown) => assert_eq!(
                    file_value(&with_option(arg, Some(shown)), id),
                    file_value(&defaults, id),
                    "--{long}: --help shows [default: {shown}]"
                ),
                None if arg.get_action().takes_values() => {
                    let unset = file_value(&defaults, id);
                    let empty = toml::Value::Array(Vec::new());
                    assert!(
                        unset.is_none() || unset == Some(empty),
                        "--{long} has the default {unset:?} but --help shows none"
                    );
                }
                None => assert_eq!(file_value(&defaults, id), Some(false.into()), "--{long}"),
            }

            // The file takes it under its name, meaning the same as on the command line.
            if id == "config" {
                continue;
            }
            let from_args = with_option(arg, sample(arg).as_deref());
            let value = file_value(&from_args, id)
                .unwrap_or_else(|| panic!("the file knows no key {id} for --{long}"));
            let text = toml::to_string(&toml::Table::from_iter([(id.to_owned(), value)])).unwrap();
            let matches = Config::command()
                .mut_args(|arg| arg.env(None))
                .try_get_matches_from(["free4chat"])
                .unwrap();
            let from_file = Config::layered(&matches, Some((Path::new("t.toml"), &text)))
                .unwrap_or_else(|e| panic!("the file refuses {text:?}: {e}"));
            assert_eq!(
                file_value(&from_file, id),
                file_value(&from_args, id),
                "{text:?} in the file and --{long} differ"
            );
        }
    }
}
