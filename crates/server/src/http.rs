//! HTTP routes: the web client, the health check, and the signalling WebSocket.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::HOST;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::watch;

use crate::config::Config;
use crate::rooms::Registry;
use crate::session::Connections;
use crate::{session, web};

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
    pub registry: Arc<Registry>,
    pub connections: Arc<Connections>,
    pub shutdown: watch::Receiver<bool>,
    /// The integrated TURN server, for its figures.
    pub turn: Option<Arc<free4chat_turn::TurnHandle>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { web::index() }))
        .route("/room/{name}", get(|| async { web::index() }))
        .route("/api/health", get(health))
        .route("/api/stats", get(stats))
        .route("/ws", get(ws))
        .route(
            "/{*path}",
            get(|Path(path): Path<String>| async move { web::asset(&path) }),
        )
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Response {
    let counts = state.registry.counts();
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "rooms": counts.rooms,
        "peers": counts.peers,
    }))
    .into_response()
}

/// A time histogram of the media workers, as `/api/stats` gives it.
fn histogram(r: &free4chat_media::Residence) -> serde_json::Value {
    json!({
        "datagrams": r.count(),
        "p50_us": r.percentile_us(50.0),
        "p99_us": r.percentile_us(99.0),
        "max_us": r.max_us,
        "buckets": r.counts.to_vec(),
        "bucket_below_us": (0..r.counts.len())
            .map(free4chat_media::residence::bucket_below_us)
            .collect::<Vec<_>>(),
    })
}

/// Figures for operators and the load generator. Counters and histogram buckets are
/// cumulative since start: compare two readings to get a window.
async fn stats(State(state): State<AppState>) -> Response {
    let counts = state.registry.counts();
    let w = state.registry.media_stats().await;
    let turn = state.turn.as_ref().map(|t| {
        let s = t.stats();
        json!({
            "allocations": s.allocations,
            "connections": s.connections,
            "refused_auth": s.refused_auth,
            "refused_peer": s.refused_peer,
            "refused_quota": s.refused_quota,
            "malformed": s.malformed,
        })
    });
    axum::Json(json!({
        "turn": turn,
        "rooms": counts.rooms,
        "peers": counts.peers,
        "media": {
            "rooms": w.sfu.rooms,
            "peers": w.sfu.peers,
            "forwarded": w.sfu.forwarded,
            "relayed": w.sfu.relayed,
            "relayed_in": w.sfu.relayed_in,
            "relay_dropped": w.relay_dropped,
            "garbage_datagrams": w.sfu.garbage,
            "unknown_datagrams": w.sfu.unknown,
            "failed_sessions": w.sfu.failed,
            "tcp_connections": w.tcp.connections,
            "tcp_refused": w.tcp.refused,
            "tcp_evicted": w.tcp.evicted,
            "tcp_rejected": w.tcp.rejected,
            "tcp_dropped_frames": w.tcp.dropped,
            "udp_receive_dropped": w.udp.receive_dropped,
            "udp_send_dropped": w.udp.send_dropped,
        },
        "residence": histogram(&w.residence),
        "send_delay": histogram(&w.send_delay),
        "scheduling": {
            "realtime_workers": w.scheduling.realtime,
            "demotions": w.scheduling.demotions,
            "promotions": w.scheduling.promotions,
        },
    }))
    .into_response()
}

async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The host the browser reached us by names the integrated TURN server in `joined`.
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(crate::ice::host_from_header);
    upgrade
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(WS_FRAME_LIMIT)
        .max_frame_size(WS_FRAME_LIMIT)
        .on_upgrade(move |socket| {
            session::run(
                socket,
                host,
                state.config,
                state.registry,
                state.connections,
                state.shutdown,
            )
        })
}
