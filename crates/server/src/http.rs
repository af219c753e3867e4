//! HTTP routes: the web client, the health check, and the signalling WebSocket.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State, WebSocketUpgrade};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use free4chat_signal::{ErrorCode, ServerMsg};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::admission::{Admission, AdmissionStats};
use crate::config::Config;
use crate::metrics::{self, Metrics, Process, Snapshot};
use crate::origin::OriginPolicy;
use crate::rooms::{Counts, MediaWorkers, RoomDirectory};
use crate::session::Connections;
use crate::webhooks::ReceiverStats;
use crate::{qr, session, web};

/// Frames larger than this are refused by the WebSocket layer itself; between
/// [`free4chat_signal::MAX_MESSAGE_BYTES`] and this, the session answers `message_too_large`.
const WS_FRAME_LIMIT: usize = 256 * 1024;
/// Signalling messages are small: a read buffer of this size serves almost all of them in one
/// read (larger frames still arrive whole). The WebSocket library's default of 128 KiB for
/// each of its read and write buffers would be most of a member's memory.
const WS_BUFFER: usize = 4 * 1024;

#[derive(Clone)]
pub struct AppState {
    /// The settings in force; each connection reads its timings and rate limits here.
    pub config: Arc<Config>,
    pub rooms: Arc<dyn RoomDirectory>,
    pub media: Arc<MediaWorkers>,
    pub connections: Arc<Connections>,
    pub shutdown: watch::Receiver<bool>,
    /// The integrated TURN server, for its figures.
    pub turn: Option<Arc<free4chat_turn::TurnHandle>>,
    pub metrics: Arc<Metrics>,
    /// Connections and joins by client address.
    pub admission: Arc<Admission>,
    /// The pages that may open the signalling WebSocket.
    pub origins: Arc<OriginPolicy>,
    /// The webhook receivers, for their figures.
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
    /// The key join tokens are checked with, and whether a join needs one.
    pub tokens: Arc<crate::join_token::JoinTokens>,
}

pub fn router(state: AppState) -> Router {
    let tls = state.config.tls.tls_cert.is_some() || state.config.tls.tls_self_signed;
    Router::new()
        .route("/", get(|| async { web::index() }))
        .route("/room/{name}", get(|| async { web::index() }))
        .route(
            "/room/{name}/qr.svg",
            get(move |path, headers| qr::room_qr(tls, path, headers)),
        )
        .route("/api/health", get(health))
        .route("/api/stats", get(stats))
        .route("/api/rooms", get(rooms))
        .route("/metrics", get(metrics))
        .route("/ws", get(ws))
        .route(
            "/{*path}",
            get(|Path(path): Path<String>| async move { web::asset(&path) }),
        )
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Response {
    let counts = state.rooms.counts();
    let mut health = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "rooms": counts.rooms,
        "peers": counts.members,
        "connections": state.connections.open(),
    });
    if let Some(cluster) = state.rooms.cluster() {
        health["node"] = json!(cluster.node);
        health["cluster"] = json!({ "nodes": cluster.nodes });
    }
    axum::Json(health).into_response()
}

/// The most rooms `/api/rooms` answers with: the largest.
pub const LISTED_ROOMS: usize = 100;

/// The public rooms (in a cluster, the whole cluster's), the largest first, at most
/// [`LISTED_ROOMS`]; `?language=xx` keeps those of that language (its primary subtag: `pt`
/// takes `pt-BR` too). Private rooms are never listed.
async fn rooms(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let language = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("language="))
        .unwrap_or_default();
    let Ok(language) = free4chat_signal::validate_language(language) else {
        let error = json!({ "error": "invalid_language" });
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    };
    let mut rooms: Vec<_> = state
        .rooms
        .rooms()
        .await
        .into_iter()
        .filter(|r| !r.private && speaks(&r.language, &language))
        .collect();
    let total = rooms.len();
    rooms.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.room.cmp(&b.room)));
    rooms.truncate(LISTED_ROOMS);
    let rooms: Vec<serde_json::Value> = rooms
        .into_iter()
        .map(|r| {
            json!({
                "room": r.room,
                "node": r.node,
                "members": r.members,
                "topic": r.topic,
                "language": r.language,
            })
        })
        .collect();
    axum::Json(json!({ "rooms": rooms, "total": total })).into_response()
}

/// Whether a room in `language` is one asked for (`wanted` empty: any), by primary subtag.
fn speaks(language: &str, wanted: &str) -> bool {
    let primary = |l: &str| l.split('-').next().unwrap_or_default().to_ascii_lowercase();
    wanted.is_empty() || primary(language) == primary(wanted)
}

/// What `/api/stats` reports: the node's counts, its media workers' figures summed, and the
/// integrated TURN server's. Counters and histograms are cumulative since start: compare two
/// readings to get a window.
#[derive(Serialize)]
struct NodeStats {
    #[serde(flatten)]
    counts: Counts,
    media: free4chat_media::WorkerStats,
    turn: Option<free4chat_turn::Stats>,
    /// HTTP connections, and what was refused by client address.
    admission: AdmissionStats,
    /// Log lines held back by the log rate limit.
    log_suppressed: u64,
    /// Each webhook receiver's deliveries, retries and drops.
    webhooks: Vec<ReceiverStats>,
}

async fn stats(State(state): State<AppState>) -> Response {
    let stats = NodeStats {
        counts: state.rooms.counts(),
        media: state.media.stats().await,
        turn: state.turn.as_ref().map(|t| t.stats()),
        admission: state.admission.stats(),
        log_suppressed: crate::log_limit::suppressed(),
        webhooks: webhook_stats(&state),
    };
    axum::Json(stats).into_response()
}

/// The Prometheus metrics of this node ([`crate::metrics`]).
async fn metrics(State(state): State<AppState>) -> Response {
    let counts = state.rooms.counts();
    let cluster = state.rooms.cluster();
    // This node's rooms only: a scrape never waits on another node.
    let room_sizes = state
        .rooms
        .local_rooms()
        .await
        .into_iter()
        .map(|r| r.members)
        .collect();
    let snapshot = Snapshot {
        room_sizes,
        connections: state.connections.open(),
        cluster_nodes: cluster.map(|c| c.nodes),
        media: state.media.stats().await,
        // Published with the figures just asked for: no second round to the workers.
        quality: state
            .media
            .latest_quality()
            .into_iter()
            .filter(|q| q.connected)
            .map(|q| q.figures)
            .collect(),
        turn: state.turn.as_ref().map(|t| t.stats()),
        webhooks: webhook_stats(&state),
        counts,
        admission: state.admission.stats(),
        media_deadline_dropped: counts.media_deadline_dropped,
        log_suppressed: crate::log_limit::suppressed(),
        process: Process::read(),
    };
    let text = state.metrics.render(snapshot);
    ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

fn webhook_stats(state: &AppState) -> Vec<ReceiverStats> {
    state
        .webhooks
        .as_ref()
        .map(|w| w.stats())
        .unwrap_or_default()
}

async fn ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The host the browser reached us by names the integrated TURN server in `joined`.
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(crate::ice::host_from_header);
    // A refusal is said over the WebSocket itself, where a browser's page can read its code
    // (a refused handshake shows it nothing); the connection then closes.
    let origin = headers.get(ORIGIN).map(|o| o.to_str().unwrap_or("null"));
    let admitted = if state.origins.allows(origin, host.as_deref()) {
        state.admission.ws(peer.ip()).ok_or_else(|| {
            ServerMsg::error(
                ErrorCode::TooManyConnections,
                "too many connections from your address",
            )
        })
    } else {
        state.admission.count_origin_refused();
        Err(ServerMsg::error(
            ErrorCode::OriginNotAllowed,
            "this server does not accept pages of that origin",
        ))
    };
    let upgrade = upgrade
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(WS_FRAME_LIMIT)
        .max_frame_size(WS_FRAME_LIMIT);
    match admitted {
        Ok(permit) => upgrade.on_upgrade(move |socket| {
            let client = session::Client {
                host,
                ip: peer.ip(),
                admission: state.admission,
                tokens: state.tokens,
                _permit: permit,
            };
            session::run(
                socket,
                client,
                state.config,
                state.rooms,
                state.connections,
                state.metrics,
                state.shutdown,
            )
        }),
        Err(refusal) => upgrade.on_upgrade(move |socket| session::refuse(socket, refusal)),
    }
}
