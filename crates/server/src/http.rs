//! HTTP routes: the web client, the health check, and the signalling WebSocket.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::watch;

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
    pub registry: Arc<Registry>,
    pub connections: Arc<Connections>,
    pub shutdown: watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { web::index() }))
        .route("/room/{name}", get(|| async { web::index() }))
        .route("/api/health", get(health))
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

async fn ws(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(WS_FRAME_LIMIT)
        .max_frame_size(WS_FRAME_LIMIT)
        .on_upgrade(move |socket| {
            session::run(socket, state.registry, state.connections, state.shutdown)
        })
}
