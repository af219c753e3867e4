//! Starting and stopping the whole server: media workers, rooms, HTTP.

use crate::metrics::Metrics;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use free4chat_media::worker::{SocketSpec, WorkerHandle, WorkerOptions};
use free4chat_media::{TcpOptions, WorkerStats};
use free4chat_sfu::CoreStats;
use free4chat_turn::{Turn, TurnConfig, TurnHandle};

use crate::history::History;
use crate::quality::{QualityView, Relays};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admission::Admission;
use crate::cluster::{self, ClusterDirectory};
use crate::config::Config;
use crate::http::{AppState, router};
use crate::ice::IceServers;
use crate::join_token::JoinTokens;
use crate::listen::Listening;
use crate::origin::OriginPolicy;
use crate::rooms::{Counts, Limits, LocalDirectory, MediaWorkers, RoomDirectory, RoomObserver};
use crate::session::Connections;
use crate::tls::Tls;
use crate::webhooks::Webhooks;

/// How long a server standing alone waits for its rooms, and then its connections, to close.
const STOP_PATIENCE: Duration = Duration::from_secs(5);

/// How long a stopping server keeps delivering the webhook events already queued.
const WEBHOOK_PATIENCE: Duration = Duration::from_secs(5);

/// A running server.
pub struct Server {
    /// How long stopping waits for rooms and connections (in a cluster, the drain timeout).
    patience: Duration,
    http_addr: SocketAddr,
    https: bool,
    media_addrs: Vec<SocketAddr>,
    rooms: Arc<dyn RoomDirectory>,
    media: Arc<MediaWorkers>,
    connections: Arc<Connections>,
    workers: Vec<Arc<WorkerHandle>>,
    turn: Option<Arc<TurnHandle>>,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<io::Result<()>>,
    webhooks: Option<Arc<Webhooks>>,
    /// The admin API's address, when it listens.
    admin_addr: Option<SocketAddr>,
}

impl Server {
    /// Binds every socket and starts serving.
    pub async fn start(config: &Config) -> io::Result<Server> {
        // A configuration built in code has not been through the reading that checks it.
        config
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        crate::fds::raise_and_check(config);
        let mut workers = Vec::new();
        let mut media_addrs = Vec::new();
        let dtls_cert = free4chat_sfu::dtls_certificate()
            .ok_or_else(|| io::Error::other("no DTLS certificate could be made"))?;
        // (advertised, bound) per UDP media socket, for the TURN server's list of peers.
        let mut media_pairs = Vec::new();
        for index in 0..config.media.media_workers {
            let port = if config.media.media_port == 0 {
                0
            } else {
                config.media.media_port + index as u16
            };
            let specs = media_sockets(&config.media.public_ip, port);
            if specs.is_empty() {
                return Err(io::Error::other("no address to offer for media"));
            }
            let tcp = config.media.media_tcp.then(|| TcpOptions {
                max_connections: config.media.media_tcp_max_connections,
                first_frame_timeout: config.media.media_tcp_first_frame_timeout,
                idle_timeout: config.media.media_tcp_idle_timeout,
                ..TcpOptions::default()
            });
            let options = WorkerOptions {
                tcp,
                realtime: config.media.realtime(),
                connect_timeout: config.media.media_connect_timeout,
                disconnect_grace: config.media.media_disconnect_grace,
                audio_slots: config.media.audio_slots,
                dtls_cert: dtls_cert.clone(),
            };
            let worker = WorkerHandle::spawn(index, &specs, options)?;
            for (spec, advertised) in specs.iter().zip(worker.addrs()) {
                media_pairs.push((
                    *advertised,
                    SocketAddr::new(spec.bind.ip(), advertised.port()),
                ));
            }
            media_addrs.extend_from_slice(worker.addrs());
            workers.push(Arc::new(worker));
        }
        let limits = Limits {
            max_rooms: config.limits.max_rooms,
            max_room_members: config.limits.max_room_members,
            max_members: config.limits.max_peers,
            media_deadline: Some(config.protection.media_deadline).filter(|d| !d.is_zero()),
            removal_ban: config.protection.removal_ban,
        };
        let source = config
            .tls
            .source()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = match &source {
            Some(source) => {
                // A self-signed certificate names every address browsers may use.
                let mut ips = config.media.public_ip.clone();
                ips.extend(interface_ips());
                let hosts: Vec<String> = config.turn.turn_host.iter().cloned().collect();
                let tls = Tls::load(source, &ips, &hosts).map_err(io::Error::other)?;
                Some(tls)
            }
            None => None,
        };
        let (turn, ice) = match start_turn(config, tls.as_ref(), &media_pairs)? {
            Some((handle, secret)) => {
                let a = handle.local_addrs();
                info!(udp = ?a.udp, tcp = ?a.tcp, tls = ?a.tls, "TURN server listening");
                let handle = Arc::new(handle);
                let ice = IceServers::new(config, Some((&secret, a))).revoking_with(handle.clone());
                (Some(handle), ice)
            }
            None => (None, IceServers::new(config, None)),
        };
        let handles: Vec<&WorkerHandle> = workers.iter().map(|w| w.as_ref()).collect();
        free4chat_media::worker::link(&handles).map_err(io::Error::other)?;
        let media = Arc::new(MediaWorkers::new(workers.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let listener = std::net::TcpListener::bind(config.general.listen)?;
        listener.set_nonblocking(true)?;
        let http_addr = listener.local_addr()?;
        let sizes = (
            limits,
            config.media.room_spread_at,
            config.media.audio_slots,
        );
        let secret = webhook_secret(config)?;
        let start_webhooks = |node: Option<String>| Webhooks::start(&config.webhooks, secret, node);
        let webhooks;
        let (rooms, patience): (Arc<dyn RoomDirectory>, Duration) = match &config.cluster.redis {
            None => {
                // Ids unique to this node: a random prefix (a cluster's nodes draw theirs).
                let id_prefix = rand::random::<u64>();
                webhooks = start_webhooks(None)?;
                let observers = webhooks.iter().map(|w| w.clone() as _).collect();
                let local =
                    LocalDirectory::new(media.clone(), sizes, ice, id_prefix, (None, observers));
                (Arc::new(local), STOP_PATIENCE)
            }
            Some(url) => {
                if config.turn.enabled() && config.turn.turn_secret.is_none() {
                    warn!(
                        "cluster mode with a random TURN secret: credentials from this node will \
                         not be valid on the others; give every node the same turn_secret"
                    );
                }
                let joined = cluster::connect(url)
                    .await
                    .map_err(|e| io::Error::other(format!("cluster mode: {e}")))?;
                let (observer, events) = cluster::observer();
                let node = joined.id.to_string();
                webhooks = start_webhooks(Some(node.clone()))?;
                let mut observers = vec![observer as Arc<dyn RoomObserver>];
                observers.extend(webhooks.iter().map(|w| w.clone() as _));
                let local = LocalDirectory::new(
                    media.clone(),
                    sizes,
                    ice,
                    joined.id_prefix,
                    (Some(node), observers),
                );
                let addrs = (
                    http_addr.to_string(),
                    media_addrs.iter().map(ToString::to_string).collect(),
                );
                let drain = config.cluster.drain_timeout;
                let directory = ClusterDirectory::start(joined, local, events, addrs, drain).await;
                (Arc::new(directory), drain)
            }
        };
        let connections = Arc::new(Connections::default());
        let metrics = Arc::new(Metrics::new(rooms.cluster().map(|c| c.node)));
        let admission = Admission::new(&config.protection);
        let tokens = Arc::new(JoinTokens::from_settings(&config.tokens)?);
        let app = router(AppState {
            tokens,
            admission: admission.clone(),
            origins: Arc::new(OriginPolicy::new(config)),
            config: Arc::new(config.clone()),
            rooms: rooms.clone(),
            media: media.clone(),
            turn: turn.clone(),
            connections: connections.clone(),
            metrics,
            webhooks: webhooks.clone(),
            shutdown: shutdown_rx.clone(),
        });
        let https = tls.is_some();
        let serving = Listening {
            app,
            tls: tls
                .as_ref()
                .map(|t| tokio_rustls::TlsAcceptor::from(t.http.clone())),
            admission: admission.clone(),
            header_timeout: config.protection.http_header_timeout,
            idle_timeout: config.protection.http_idle_timeout,
        };
        let quality = Arc::new(QualityView::new(Relays {
            turn: turn.clone(),
            local_ips: media_addrs.iter().map(|a| a.ip()).collect(),
        }));
        crate::quality::spawn(
            quality.clone(),
            rooms.clone(),
            media.clone(),
            shutdown_rx.clone(),
        );
        let history = Arc::new(History::default());
        crate::history::spawn(
            history.clone(),
            rooms.clone(),
            media.clone(),
            shutdown_rx.clone(),
        );
        let admin_addr = match &config.admin.admin_listen {
            Some(addr) => {
                let shared = (rooms.clone(), quality, history);
                Some(crate::admin::start(*addr, config, shared, shutdown_rx.clone()).await?)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let http = tokio::spawn(crate::listen::serve(listener, serving, shutdown_rx));
        let scheme = if https { "https" } else { "http" };
        info!(%http_addr, ?media_addrs, "free4chat listening on {scheme}://{http_addr}");
        Ok(Server {
            patience,
            http_addr,
            https,
            media_addrs,
            rooms,
            media,
            connections,
            workers,
            turn,
            shutdown,
            http,
            webhooks,
            admin_addr,
        })
    }

    /// The admin API's address, when `admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address to open in a browser.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    pub fn media_addrs(&self) -> &[SocketAddr] {
        &self.media_addrs
    }

    pub fn counts(&self) -> Counts {
        self.rooms.counts()
    }

    /// This node's rooms.
    pub fn rooms(&self) -> &Arc<dyn RoomDirectory> {
        &self.rooms
    }

    /// The media cores' figures, summed.
    pub async fn media_stats(&self) -> CoreStats {
        self.media.stats().await.core
    }

    /// The media workers' figures, TCP connections included, summed.
    pub async fn media_worker_stats(&self) -> WorkerStats {
        self.media.stats().await
    }

    /// Tells every member the server is going away, closes every connection, stops the
    /// media workers.
    pub async fn shutdown(self) {
        info!("shutting down");
        let _ = self.shutdown.send(true);
        let rooms_patience = match self.rooms.cluster() {
            Some(_) => self.patience + STOP_PATIENCE,
            None => self.patience,
        };
        if tokio::time::timeout(rooms_patience, self.rooms.shutdown())
            .await
            .is_err()
        {
            warn!("rooms did not close in time");
        }
        // The rooms' last events are queued: give the receivers a moment to take them.
        if let Some(webhooks) = &self.webhooks {
            webhooks.flush(WEBHOOK_PATIENCE).await;
        }
        // Every connection writes its last words (bye) before the process goes.
        if tokio::time::timeout(self.patience, self.connections.all_closed())
            .await
            .is_err()
        {
            warn!("connections did not close in time");
        }
        match tokio::time::timeout(Duration::from_secs(5), self.http).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!("http server: {e}"),
            Ok(Err(e)) => warn!("http server task: {e}"),
            Err(_) => warn!("connections did not close in time"),
        }
        drop(self.rooms);
        drop(self.media);
        let workers = self.workers;
        let turn = self.turn;
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(turn) = turn.and_then(|t| Arc::try_unwrap(t).ok()) {
                turn.shutdown();
            }
            for w in workers {
                if let Ok(w) = Arc::try_unwrap(w) {
                    w.shutdown();
                }
            }
        })
        .await;
        info!("stopped");
    }
}

/// The webhooks' shared secret, from the configuration or the file it names (empty when there
/// are no webhooks: the configuration's check makes sure of one when there are).
fn webhook_secret(config: &Config) -> io::Result<Vec<u8>> {
    let w = &config.webhooks;
    if w.webhook.is_empty() {
        return Ok(Vec::new());
    }
    match (&w.webhook_secret, &w.webhook_secret_file) {
        (Some(secret), _) => Ok(secret.as_bytes().to_vec()),
        (None, Some(path)) => {
            let text = std::fs::read(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("webhook_secret_file {}: {e}", path.display()),
                )
            })?;
            let mut secret = text;
            while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                secret.pop();
            }
            if secret.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "webhook_secret_file is empty",
                ));
            }
            Ok(secret)
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// Starts the integrated TURN server if configured; returns it with the secret in force.
///
/// It relays only to our UDP media sockets. Relay sockets bind the unspecified address; a
/// media socket bound to the unspecified address is reached on loopback, and answers from it.
fn start_turn(
    config: &Config,
    tls: Option<&Tls>,
    media: &[(SocketAddr, SocketAddr)],
) -> io::Result<Option<(TurnHandle, Vec<u8>)>> {
    if !config.turn.enabled() {
        return Ok(None);
    }
    let secret = match &config.turn.turn_secret {
        Some(s) => s.as_bytes().to_vec(),
        None => {
            use rand::RngCore;
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes()
        }
    };
    let advertise = relay_advertise(config);
    let mut settings = TurnConfig::new("free4chat", secret.clone(), advertise);
    settings.relay_bind = if advertise.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    settings.peers = media
        .iter()
        .filter(|(advertised, _)| advertised.is_ipv4() == advertise.is_ipv4())
        .map(|(advertised, bound)| {
            let local = match bound.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            (*advertised, SocketAddr::new(local, bound.port()))
        })
        .collect();
    settings.udp = config.turn.turn_udp;
    settings.tcp = config.turn.turn_tcp;
    settings.tls = match (config.turn.turn_tls, tls) {
        (Some(addr), Some(tls)) => Some((addr, tls.turn.clone())),
        _ => None,
    };
    settings.max_allocations = config.turn.turn_max_allocations;
    settings.max_allocations_per_ip = config.turn.turn_max_allocations_per_ip;
    settings.max_connections = config.turn.turn_max_connections;
    settings.max_connections_per_ip = config.turn.turn_max_connections_per_ip;
    let handle = Turn::start(settings)?;
    Ok(Some((handle, secret)))
}

/// The address relayed candidates are given: the public IPv4 address if there is one, else the
/// TURN host if it is an address, else the first listener's address if it is specific, else
/// loopback.
fn relay_advertise(config: &Config) -> IpAddr {
    let specific = [
        config.turn.turn_udp,
        config.turn.turn_tcp,
        config.turn.turn_tls,
    ]
    .into_iter()
    .flatten()
    .map(|a| a.ip())
    .find(|ip| !ip.is_unspecified());
    config
        .media
        .public_ip
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .or_else(|| {
            config
                .turn
                .turn_host
                .as_deref()
                .and_then(|h| h.parse().ok())
        })
        .or(specific)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The media sockets of one worker.
///
/// With public IPs: one socket per address family, bound to that IP if it is local, else to
/// the unspecified address, offering the public IP. Without: one socket per interface address
/// (loopback included, link-local IPv6 excluded), each offering itself.
fn media_sockets(public_ip: &[IpAddr], port: u16) -> Vec<SocketSpec> {
    if !public_ip.is_empty() {
        return public_ip
            .iter()
            .map(|ip| {
                let bind_ip = if is_local(*ip) {
                    *ip
                } else if ip.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                };
                SocketSpec {
                    bind: SocketAddr::new(bind_ip, port),
                    advertise: Some(*ip),
                }
            })
            .collect();
    }
    let mut ips = interface_ips();
    if ips.is_empty() {
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    ips.into_iter()
        .map(|ip| SocketSpec {
            bind: SocketAddr::new(ip, port),
            advertise: None,
        })
        .collect()
}

/// This machine's interface addresses, loopback included, link-local IPv6 excluded.
fn interface_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    ips.retain(|ip| match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
    });
    ips.sort();
    ips.dedup();
    ips
}

/// Whether `ip` belongs to this machine.
fn is_local(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_every_interface_address_is_offered_loopback_included() {
        let specs = media_sockets(&[], 0);
        assert!(
            specs
                .iter()
                .any(|s| s.bind.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert!(specs.iter().all(|s| s.advertise.is_none()));
        assert!(specs.iter().all(|s| match s.bind.ip() {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => true,
        }));
    }

    #[test]
    fn a_public_ip_is_offered_and_bound_where_possible() {
        let specs = media_sockets(&["127.0.0.1".parse().unwrap()], 4000);
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].bind, "127.0.0.1:4000".parse().unwrap());
        // An address this machine does not have (TEST-NET-3) is offered, bound to any.
        let specs = media_sockets(&["203.0.113.7".parse().unwrap()], 4000);
        assert_eq!(specs[0].bind, "0.0.0.0:4000".parse().unwrap());
        assert_eq!(specs[0].advertise, Some("203.0.113.7".parse().unwrap()));
    }
}
