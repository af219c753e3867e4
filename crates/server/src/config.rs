//! Configuration: command line, then environment, then a TOML file, then defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;
use free4chat_media::priority::Realtime;
use serde::Deserialize;

/// free4chat: voice chat rooms in the browser, from one binary.
///
/// Every option can also be set in the environment (the variable named beside it) or in a
/// TOML file given with --config (the same names in snake_case, e.g. `media_port = 40000`).
/// The command line wins over the environment, which wins over the file.
#[derive(Debug, Default, Parser)]
#[command(name = "free4chat", version, about, long_about)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "FREE4CHAT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// HTTP and WebSocket address to listen on [default: 127.0.0.1:4000].
    #[arg(long, env = "FREE4CHAT_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// IP address(es) to offer to browsers as media candidates, comma-separated or repeated
    /// (e.g. the public address of a server behind 1:1 NAT). Default: the addresses of every
    /// network interface, loopback included.
    #[arg(
        long = "public-ip",
        env = "FREE4CHAT_PUBLIC_IP",
        value_delimiter = ',',
        value_name = "IP"
    )]
    pub public_ip: Vec<IpAddr>,

    /// First port for media, UDP (and TCP unless media-tcp is off); worker N uses this port
    /// + N. 0 picks free ports [default: 40000].
    #[arg(long, env = "FREE4CHAT_MEDIA_PORT", value_name = "PORT")]
    pub media_port: Option<u16>,

    /// Media worker threads, each with its own sockets and rooms [default: one per core].
    #[arg(long, env = "FREE4CHAT_MEDIA_WORKERS", value_name = "N")]
    pub media_workers: Option<usize>,

    /// Also accept media over TCP (ICE-TCP) on the same port numbers as UDP, for browsers whose
    /// UDP is blocked; UDP stays preferred when it works [default: true].
    #[arg(
        long,
        env = "FREE4CHAT_MEDIA_TCP",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub media_tcp: Option<bool>,

    /// Most media TCP connections per media worker [default: 4096].
    #[arg(long, env = "FREE4CHAT_MEDIA_TCP_MAX_CONNECTIONS", value_name = "N")]
    pub media_tcp_max_connections: Option<usize>,

    /// Real-time priority (SCHED_RR, 1-99) of the media threads, for prompt forwarding on busy
    /// cores; 0 leaves them at normal priority [default: 10]. Needs CAP_SYS_NICE or
    /// LimitRTPRIO; if refused, they run at normal priority. A media thread busy for most of a
    /// second returns to normal priority until its load falls.
    #[arg(long, env = "FREE4CHAT_MEDIA_REALTIME_PRIORITY", value_name = "N")]
    pub media_realtime_priority: Option<u8>,

    /// Members a room keeps on one media worker before it spreads over the others, so that a
    /// large room's forwarding uses every core; 0 keeps each room on one worker [default: 16].
    #[arg(long, env = "FREE4CHAT_ROOM_SPREAD_AT", value_name = "N")]
    pub room_spread_at: Option<usize>,

    /// Most rooms at once [default: 10000].
    #[arg(long, env = "FREE4CHAT_MAX_ROOMS", value_name = "N")]
    pub max_rooms: Option<usize>,

    /// Most members in one room [default: 50].
    #[arg(long, env = "FREE4CHAT_MAX_ROOM_MEMBERS", value_name = "N")]
    pub max_room_members: Option<usize>,

    /// Most members across all rooms [default: 10000].
    #[arg(long, env = "FREE4CHAT_MAX_PEERS", value_name = "N")]
    pub max_peers: Option<usize>,

    /// Log filter, in the syntax of RUST_LOG [default: info].
    #[arg(long, env = "FREE4CHAT_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// PEM certificate chain: serve HTTPS and WSS instead of HTTP (needs --tls-key).
    #[arg(long, env = "FREE4CHAT_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "FREE4CHAT_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS and WSS with a certificate made at start (for a LAN: browsers grant the
    /// microphone only to secure origins, and will ask to accept this certificate once).
    #[arg(long, env = "FREE4CHAT_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Integrated TURN server: UDP address to listen on (e.g. 0.0.0.0:3478).
    #[arg(long, env = "FREE4CHAT_TURN_UDP", value_name = "ADDR:PORT")]
    pub turn_udp: Option<SocketAddr>,

    /// Integrated TURN server: TCP address to listen on (e.g. 0.0.0.0:3478).
    #[arg(long, env = "FREE4CHAT_TURN_TCP", value_name = "ADDR:PORT")]
    pub turn_tcp: Option<SocketAddr>,

    /// Integrated TURN server: TLS address to listen on (e.g. 0.0.0.0:5349, or :443 on a
    /// dedicated address); uses the HTTPS certificate.
    #[arg(long, env = "FREE4CHAT_TURN_TLS", value_name = "ADDR:PORT")]
    pub turn_tls: Option<SocketAddr>,

    /// Shared secret of the integrated TURN server's credentials [default: random at start].
    #[arg(
        long,
        env = "FREE4CHAT_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub turn_secret: Option<String>,

    /// Host name or IP put in the integrated TURN server's URLs [default: the first
    /// --public-ip, else the host the browser used to reach this server].
    #[arg(long, env = "FREE4CHAT_TURN_HOST", value_name = "HOST")]
    pub turn_host: Option<String>,

    /// Integrated TURN server: most relay allocations in all [default: 2000].
    #[arg(long, env = "FREE4CHAT_TURN_MAX_ALLOCATIONS", value_name = "N")]
    pub turn_max_allocations: Option<usize>,

    /// Integrated TURN server: most relay allocations from one IP address [default: 100].
    #[arg(long, env = "FREE4CHAT_TURN_MAX_ALLOCATIONS_PER_IP", value_name = "N")]
    pub turn_max_allocations_per_ip: Option<usize>,

    /// External TURN/TURNS/STUN URL(s) handed to browsers, comma-separated or repeated
    /// (e.g. turns:turn.example.com:443?transport=tcp).
    #[arg(
        long = "external-turn",
        env = "FREE4CHAT_EXTERNAL_TURN",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub external_turn: Vec<String>,

    /// The shared secret (coturn's static-auth-secret) of the external TURN servers.
    #[arg(
        long,
        env = "FREE4CHAT_EXTERNAL_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub external_turn_secret: Option<String>,

    /// How long issued TURN credentials stay valid, in seconds [default: 86400].
    #[arg(long, env = "FREE4CHAT_TURN_TTL", value_name = "SECONDS")]
    pub turn_ttl: Option<u64>,
}

/// The TOML file's contents; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub public_ip: Vec<IpAddr>,
    pub media_port: Option<u16>,
    pub media_workers: Option<usize>,
    pub media_tcp: Option<bool>,
    pub media_tcp_max_connections: Option<usize>,
    pub media_realtime_priority: Option<u8>,
    pub room_spread_at: Option<usize>,
    pub max_rooms: Option<usize>,
    pub max_room_members: Option<usize>,
    pub max_peers: Option<usize>,
    pub log: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub turn_udp: Option<SocketAddr>,
    pub turn_tcp: Option<SocketAddr>,
    pub turn_tls: Option<SocketAddr>,
    pub turn_secret: Option<String>,
    pub turn_host: Option<String>,
    pub turn_max_allocations: Option<usize>,
    pub turn_max_allocations_per_ip: Option<usize>,
    #[serde(default)]
    pub external_turn: Vec<String>,
    pub external_turn_secret: Option<String>,
    pub turn_ttl: Option<u64>,
}

/// Where HTTPS gets its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

/// The integrated TURN server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnConfig {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub secret: Option<String>,
    pub host: Option<String>,
    pub max_allocations: usize,
    pub max_allocations_per_ip: usize,
}

impl TurnConfig {
    pub fn enabled(&self) -> bool {
        self.udp.is_some() || self.tcp.is_some() || self.tls.is_some()
    }
}

/// External TURN servers and their shared secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTurn {
    pub urls: Vec<String>,
    pub secret: Option<String>,
}

/// The configuration in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_ip: Vec<IpAddr>,
    pub media_port: u16,
    pub media_workers: usize,
    pub media_tcp: bool,
    pub media_tcp_max_connections: usize,
    /// Real-time priority of the media threads (`priority` 0: normal scheduling).
    pub media_realtime: Realtime,
    /// Members a room keeps on one worker before it spreads (0: never).
    pub room_spread_at: usize,
    pub max_rooms: usize,
    pub max_room_members: usize,
    pub max_peers: usize,
    pub log: String,
    /// HTTPS and WSS instead of HTTP.
    pub tls: Option<TlsSource>,
    pub turn: TurnConfig,
    pub external_turn: ExternalTurn,
    /// Lifetime of issued TURN credentials.
    pub turn_ttl: std::time::Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
            public_ip: Vec::new(),
            media_port: 40000,
            media_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            media_tcp: true,
            media_tcp_max_connections: 4096,
            media_realtime: Realtime::default(),
            room_spread_at: 16,
            max_rooms: 10_000,
            max_room_members: 50,
            max_peers: 10_000,
            log: "info".into(),
            tls: None,
            turn: TurnConfig {
                udp: None,
                tcp: None,
                tls: None,
                secret: None,
                host: None,
                max_allocations: 2000,
                max_allocations_per_ip: 100,
            },
            external_turn: ExternalTurn {
                urls: Vec::new(),
                secret: None,
            },
            turn_ttl: std::time::Duration::from_secs(86_400),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
}

impl Config {
    /// Merges the command line (with its environment variables) over the file over defaults.
    pub fn resolve(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source,
                })?
            }
            None => FileConfig::default(),
        };
        Config::merge(cli, file)
    }

    fn merge(cli: Cli, file: FileConfig) -> Result<Config, ConfigError> {
        let d = Config::default();
        let config = Config {
            listen: cli.listen.or(file.listen).unwrap_or(d.listen),
            public_ip: if cli.public_ip.is_empty() {
                file.public_ip
            } else {
                cli.public_ip
            },
            media_port: cli.media_port.or(file.media_port).unwrap_or(d.media_port),
            media_workers: cli
                .media_workers
                .or(file.media_workers)
                .unwrap_or(d.media_workers),
            media_tcp: cli.media_tcp.or(file.media_tcp).unwrap_or(d.media_tcp),
            media_tcp_max_connections: cli
                .media_tcp_max_connections
                .or(file.media_tcp_max_connections)
                .unwrap_or(d.media_tcp_max_connections),
            media_realtime: match cli.media_realtime_priority.or(file.media_realtime_priority) {
                Some(priority) => Realtime {
                    priority,
                    asked: true,
                },
                None => d.media_realtime,
            },
            room_spread_at: cli
                .room_spread_at
                .or(file.room_spread_at)
                .unwrap_or(d.room_spread_at),
            max_rooms: cli.max_rooms.or(file.max_rooms).unwrap_or(d.max_rooms),
            max_room_members: cli
                .max_room_members
                .or(file.max_room_members)
                .unwrap_or(d.max_room_members),
            max_peers: cli.max_peers.or(file.max_peers).unwrap_or(d.max_peers),
            log: cli.log.or(file.log).unwrap_or(d.log),
            tls: tls_source(
                cli.tls_cert.or(file.tls_cert),
                cli.tls_key.or(file.tls_key),
                cli.tls_self_signed || file.tls_self_signed.unwrap_or(false),
            )?,
            turn: TurnConfig {
                udp: cli.turn_udp.or(file.turn_udp),
                tcp: cli.turn_tcp.or(file.turn_tcp),
                tls: cli.turn_tls.or(file.turn_tls),
                secret: cli.turn_secret.or(file.turn_secret),
                host: cli.turn_host.or(file.turn_host),
                max_allocations: cli
                    .turn_max_allocations
                    .or(file.turn_max_allocations)
                    .unwrap_or(d.turn.max_allocations),
                max_allocations_per_ip: cli
                    .turn_max_allocations_per_ip
                    .or(file.turn_max_allocations_per_ip)
                    .unwrap_or(d.turn.max_allocations_per_ip),
            },
            external_turn: ExternalTurn {
                urls: if cli.external_turn.is_empty() {
                    file.external_turn
                } else {
                    cli.external_turn
                },
                secret: cli.external_turn_secret.or(file.external_turn_secret),
            },
            turn_ttl: cli
                .turn_ttl
                .or(file.turn_ttl)
                .map_or(d.turn_ttl, std::time::Duration::from_secs),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
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
        if self.media_realtime.priority > 99 {
            return Err(ConfigError::Invalid(
                "media_realtime_priority must be 0 (off) to 99",
            ));
        }
        if self.max_rooms == 0 || self.max_room_members == 0 || self.max_peers == 0 {
            return Err(ConfigError::Invalid("limits must be at least 1"));
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
        let t = &self.turn;
        if t.tls.is_some() && self.tls.is_none() {
            return Err(ConfigError::Invalid(
                "turn_tls needs a certificate: tls_cert and tls_key, or tls_self_signed",
            ));
        }
        if t.max_allocations == 0 || t.max_allocations_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "TURN allocation limits must be at least 1",
            ));
        }
        if t.secret.as_ref().is_some_and(|s| s.is_empty())
            || self
                .external_turn
                .secret
                .as_ref()
                .is_some_and(|s| s.is_empty())
        {
            return Err(ConfigError::Invalid("a TURN secret must not be empty"));
        }
        if let Some(host) = &t.host
            && !crate::ice::valid_host(host)
        {
            return Err(ConfigError::Invalid(
                "turn_host must be a DNS name or an IP address",
            ));
        }
        let ttl = self.turn_ttl.as_secs();
        if !(60..=7 * 86_400).contains(&ttl) {
            return Err(ConfigError::Invalid("turn_ttl must be 60 s to 7 days"));
        }
        let mut relays = false;
        for url in &self.external_turn.urls {
            if !crate::ice::valid_url(url) {
                return Err(ConfigError::Invalid(
                    "external_turn URLs must be turn:, turns: or stun: URLs of printable ASCII",
                ));
            }
            relays |= !url.starts_with("stun:");
        }
        if relays && self.external_turn.secret.is_none() {
            return Err(ConfigError::Invalid(
                "external TURN URLs need external_turn_secret",
            ));
        }
        Ok(())
    }
}

fn tls_source(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: bool,
) -> Result<Option<TlsSource>, ConfigError> {
    match (cert, key, self_signed) {
        (None, None, false) => Ok(None),
        (None, None, true) => Ok(Some(TlsSource::SelfSigned)),
        (Some(cert), Some(key), false) => Ok(Some(TlsSource::Files { cert, key })),
        (_, _, true) => Err(ConfigError::Invalid(
            "tls_self_signed and tls_cert/tls_key exclude each other",
        )),
        _ => Err(ConfigError::Invalid("tls_cert and tls_key go together")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_wins_over_file_and_defaults_fill_the_rest() {
        let cli = Cli::parse_from(["free4chat", "--listen", "127.0.0.1:5000"]);
        let file: FileConfig =
            toml::from_str("listen = \"0.0.0.0:80\"\nmedia_port = 50000\n").unwrap();
        let c = Config::merge(cli, file).unwrap();
        assert_eq!(c.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(c.media_port, 50000);
        assert_eq!(c.max_room_members, 50);
        assert_eq!(c.room_spread_at, 16);
        let cli = Cli::parse_from(["free4chat", "--room-spread-at", "0"]);
        let file: FileConfig = toml::from_str("room_spread_at = 8\n").unwrap();
        assert_eq!(Config::merge(cli, file).unwrap().room_spread_at, 0);
        let file: FileConfig = toml::from_str("room_spread_at = 8\n").unwrap();
        let c = Config::merge(Cli::parse_from(["free4chat"]), file).unwrap();
        assert_eq!(c.room_spread_at, 8);
    }

    #[test]
    fn bad_files_and_values_are_refused_with_a_reason() {
        assert!(toml::from_str::<FileConfig>("listne = \"x\"").is_err());
        assert!(toml::from_str::<FileConfig>("media_port = 70000").is_err());
        let cli = Cli::parse_from(["free4chat", "--media-workers", "0"]);
        assert!(Config::merge(cli, FileConfig::default()).is_err());
        let cli = Cli::parse_from(["free4chat", "--public-ip", "1.2.3.4,5.6.7.8"]);
        assert!(Config::merge(cli, FileConfig::default()).is_err());
        let cli = Cli::parse_from(["free4chat", "--media-port", "65535", "--media-workers", "2"]);
        assert!(Config::merge(cli, FileConfig::default()).is_err());
    }

    #[test]
    fn tls_and_turn_options_are_checked_together() {
        let ok = |args: &[&str]| Config::merge(Cli::parse_from(args), FileConfig::default());
        let c = ok(&[
            "free4chat",
            "--tls-self-signed",
            "--turn-tls",
            "127.0.0.1:5349",
        ])
        .unwrap();
        assert_eq!(c.tls, Some(TlsSource::SelfSigned));
        assert!(c.turn.enabled());
        // TURN over TLS needs a certificate; cert and key go together.
        assert!(ok(&["free4chat", "--turn-tls", "127.0.0.1:5349"]).is_err());
        assert!(ok(&["free4chat", "--tls-cert", "/c.pem"]).is_err());
        assert!(
            ok(&[
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
        assert!(ok(&["free4chat", "--external-turn", "turn:t.example:3478"]).is_err());
        assert!(
            ok(&[
                "free4chat",
                "--external-turn",
                "http://x",
                "--external-turn-secret",
                "s"
            ])
            .is_err()
        );
        let c = ok(&[
            "free4chat",
            "--external-turn",
            "turn:t.example:3478?transport=udp,turns:t.example:443?transport=tcp",
            "--external-turn-secret",
            "s",
        ])
        .unwrap();
        assert_eq!(c.external_turn.urls.len(), 2);
        assert!(ok(&["free4chat", "--external-turn", "stun:t.example:3478"]).is_ok());
        assert!(ok(&["free4chat", "--turn-host", "bad host"]).is_err());
        assert!(ok(&["free4chat", "--turn-ttl", "5"]).is_err());
        let file: FileConfig =
            toml::from_str("turn_udp = \"0.0.0.0:3478\"\nturn_secret = \"x\"\n").unwrap();
        let c = Config::merge(Cli::parse_from(["free4chat"]), file).unwrap();
        assert_eq!(c.turn.udp, Some("0.0.0.0:3478".parse().unwrap()));
    }

    #[test]
    fn media_over_tcp_is_on_by_default_and_can_be_turned_off() {
        let c = Config::merge(Cli::parse_from(["free4chat"]), FileConfig::default()).unwrap();
        assert!(c.media_tcp);
        assert_eq!(c.media_tcp_max_connections, 4096);
        let cli = Cli::parse_from(["free4chat", "--media-tcp", "false"]);
        assert!(!Config::merge(cli, FileConfig::default()).unwrap().media_tcp);
        let file: FileConfig =
            toml::from_str("media_tcp = false\nmedia_tcp_max_connections = 10\n").unwrap();
        let c = Config::merge(Cli::parse_from(["free4chat"]), file).unwrap();
        assert!(!c.media_tcp);
        assert_eq!(c.media_tcp_max_connections, 10);
        let cli = Cli::parse_from(["free4chat", "--media-tcp-max-connections", "0"]);
        assert!(Config::merge(cli, FileConfig::default()).is_err());
    }

    #[test]
    fn real_time_priority_is_tried_by_default_and_bounded() {
        let c = Config::merge(Cli::parse_from(["free4chat"]), FileConfig::default()).unwrap();
        let tried = Realtime {
            priority: 10,
            asked: false,
        };
        assert_eq!(c.media_realtime, tried);
        let file: FileConfig = toml::from_str("media_realtime_priority = 20\n").unwrap();
        let c = Config::merge(Cli::parse_from(["free4chat"]), file).unwrap();
        let asked = Realtime {
            priority: 20,
            asked: true,
        };
        assert_eq!(c.media_realtime, asked);
        let cli = Cli::parse_from(["free4chat", "--media-realtime-priority", "0"]);
        let c = Config::merge(cli, FileConfig::default()).unwrap();
        assert_eq!(c.media_realtime.priority, 0);
        let cli = Cli::parse_from(["free4chat", "--media-realtime-priority", "100"]);
        assert!(Config::merge(cli, FileConfig::default()).is_err());
        assert!(Cli::try_parse_from(["free4chat", "--media-realtime-priority", "300"]).is_err());
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let cli = Cli::parse_from(["free4chat", "--config", "/nonexistent/free4chat.toml"]);
        let err = Config::resolve(cli).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/free4chat.toml"), "{err}");
    }
}
