//! The admin API, on a listener of its own (`--admin-listen`): this node's rooms and members,
//! and what an operator may do to them. Every route but the OpenAPI description asks for the
//! bearer token (`--admin-token`), compared in constant time. `docs/admin.md` describes it,
//! and `openapi.json` (served at `/admin/api/openapi.json`) is its machine-readable form.
//! The console at `/admin` (see `console`) is a page in the browser over this API.

mod console;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use free4chat_signal::{ByeReason, MemberId, validate_chat_text};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::history::{History, SAMPLE_EVERY};
use crate::quality::QualityView;
use crate::rooms::{RoomDirectory, RoomHandle};

/// The OpenAPI description of this API.
const OPENAPI: &str = include_str!("openapi.json");

/// What the admin API reads besides its token: the rooms, the members' connection quality,
/// the node's last hour.
pub type Shared = (Arc<dyn RoomDirectory>, Arc<QualityView>, Arc<History>);

/// What the admin routes share.
#[derive(Clone)]
pub struct AdminState {
    pub rooms: Arc<dyn RoomDirectory>,
    /// The members' connection quality, as last read from the media workers.
    pub quality: Arc<QualityView>,
    /// The node's last hour, for the console's charts.
    pub history: Arc<History>,
    token: Arc<[u8]>,
}

impl AdminState {
    pub fn new((rooms, quality, history): Shared, token: &str) -> AdminState {
        AdminState {
            rooms,
            quality,
            history,
            token: token.trim().as_bytes().into(),
        }
    }
}

pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/admin/api/rooms", get(rooms))
        .route("/admin/api/history", get(history))
        .route("/admin/api/rooms/{room}", get(room))
        .route("/admin/api/rooms/{room}/close", post(close))
        .route("/admin/api/rooms/{room}/notice", post(notice))
        .route("/admin/api/rooms/{room}/limits", put(limits))
        .route("/admin/api/rooms/{room}/members/{id}", delete(kick))
        .route("/admin/api/rooms/{room}/members/{id}/mute", post(mute))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route(
            "/admin/api/openapi.json",
            get(|| async { ([(CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/admin", get(console::page))
        .route("/admin/console/{file}", get(console::asset))
        .merge(api)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
}

/// An error answer: `{"error": code, "message": …}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

fn no_room() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such room on this node",
    )
}

fn no_member() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such member in this room",
    )
}

/// Lets a request through only with `Authorization: Bearer <the token>`.
async fn authorize(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // Constant time over the token's bytes: how far a guess matched is not told by the time
    // the answer takes (its length is).
    let ok = given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(&state.token)));
    if !ok {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <admin token>",
        );
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, "Bearer".parse().expect("a valid header"));
        return r;
    }
    next.run(request).await
}

async fn find(state: &AdminState, room: &str) -> Option<RoomHandle> {
    state.rooms.find(room).await.filter(|h| !h.is_closed())
}

/// A room as the API shows it, or `None` if it has ended.
async fn describe(state: &AdminState, handle: &RoomHandle) -> Option<serde_json::Value> {
    let s = handle.snapshot().await?;
    let members: Vec<_> = s
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "name": m.name,
                "muted": m.muted,
                "muted_for_everyone": s.forced_muted.contains(&m.id),
                "speaking": m.speaking,
                "moderator": s.moderators.contains(&m.id),
                "hand_raised": s.hands.contains(&m.id),
                "connection": state.quality.of(m.id),
            })
        })
        .collect();
    Some(json!({
        "room": s.room,
        "id": s.id,
        "members": members,
        "max_members": s.max_members,
        "chat_messages": s.chat_messages,
        "topic": s.info.topic,
        "language": s.info.language,
        "private": s.info.private,
        "locked": s.info.locked,
    }))
}

/// The node's last hour: a sample every ten seconds, oldest first.
async fn history(State(state): State<AdminState>) -> Response {
    Json(json!({
        "interval_seconds": SAMPLE_EVERY.as_secs(),
        "samples": state.history.samples(),
    }))
    .into_response()
}

/// This node's rooms, with their members.
async fn rooms(State(state): State<AdminState>) -> Response {
    let mut out = Vec::new();
    for summary in state.rooms.local_rooms().await {
        if let Some(handle) = find(&state, &summary.room).await
            && let Some(room) = describe(&state, &handle).await
        {
            out.push(room);
        }
    }
    Json(json!({ "rooms": out })).into_response()
}

async fn room(State(state): State<AdminState>, Path(room): Path<String>) -> Response {
    let Some(handle) = find(&state, &room).await else {
        return no_room();
    };
    match describe(&state, &handle).await {
        Some(r) => Json(r).into_response(),
        None => no_room(),
    }
}

/// Ends the room; its members are told `room_closed`.
async fn close(State(state): State<AdminState>, Path(room): Path<String>) -> Response {
    let Some(handle) = find(&state, &room).await else {
        return no_room();
    };
    handle.close(ByeReason::RoomClosed).await;
    StatusCode::NO_CONTENT.into_response()
}

/// A member id from the path: a number, else not found.
fn member_id(id: &str) -> Option<MemberId> {
    id.parse::<u64>().ok().map(MemberId)
}

/// Removes a member, who is told `removed`.
async fn kick(
    State(state): State<AdminState>,
    Path((room, id)): Path<(String, String)>,
) -> Response {
    let (Some(handle), Some(member)) = (find(&state, &room).await, member_id(&id)) else {
        return no_member();
    };
    if handle.remove(member, ByeReason::Removed).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_member()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteBody {
    muted: bool,
}

/// Mutes a member for everyone (`{"muted": true}`), or lifts it.
async fn mute(
    State(state): State<AdminState>,
    Path((room, id)): Path<(String, String)>,
    body: Result<Json<MuteBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad_request("send {\"muted\": true} or {\"muted\": false}");
    };
    let (Some(handle), Some(member)) = (find(&state, &room).await, member_id(&id)) else {
        return no_member();
    };
    if handle.force_mute(member, body.muted).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_member()
    }
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeBody {
    text: String,
}

/// Sends everyone in the room a notice (checked as a chat message is).
async fn notice(
    State(state): State<AdminState>,
    Path(room): Path<String>,
    body: Result<Json<NoticeBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad_request("send {\"text\": \"…\"}");
    };
    if let Err(e) = validate_chat_text(&body.text) {
        return bad_request(e.message);
    }
    let Some(handle) = find(&state, &room).await else {
        return no_room();
    };
    if handle.notice(body.text).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_room()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsBody {
    max_members: Option<usize>,
}

/// Sets the room's own limit on members (`null`: the server's).
async fn limits(
    State(state): State<AdminState>,
    Path(room): Path<String>,
    body: Result<Json<LimitsBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return bad_request("send {\"max_members\": N} or {\"max_members\": null}");
    };
    if body.max_members == Some(0) {
        return bad_request("max_members is at least 1");
    }
    let Some(handle) = find(&state, &room).await else {
        return no_room();
    };
    if handle.set_max_members(body.max_members).await {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_room()
    }
}

/// Starts the admin API on `addr`; returns the address it listens on.
pub async fn start(
    addr: SocketAddr,
    config: &Config,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
) -> io::Result<SocketAddr> {
    let token = match (&config.admin.admin_token, &config.admin.admin_token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("admin token file {}: {e}", path.display()),
                )
            })?;
            text.lines().next().unwrap_or_default().trim().to_owned()
        }
        (None, None) => return Err(io::Error::other("admin_listen needs a token")),
    };
    if token.len() < 16 {
        return Err(io::Error::other(
            "the admin token must be at least 16 characters",
        ));
    }
    if !addr.ip().is_loopback() {
        warn!(%addr, "the admin API listens beyond loopback: keep it behind a firewall");
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(AdminState::new(shared, &token));
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            warn!("admin API stopped: {e}");
        }
    });
    info!(%local, "admin API listening");
    Ok(local)
}
