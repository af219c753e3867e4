//! The spans of a room and of its members' sessions (`crate::telemetry` exports them): the
//! room's lives in its task from start to end; a member's from their join until they leave,
//! held in their state, and its events tell their session's steps.
//!
//! The events are at debug level, so that the log (at its usual `info`) does not say each of
//! them twice; the spans are at info, so that every log line of a room names it (and, when
//! traces are exported, carries their trace and span ids).

use free4chat_signal::{MemberId, RoomId};
use tracing::{Span, field::Empty};

use crate::telemetry::{TARGET, record_ids};

/// The span of a room, from its start to its end. A root: a room outlives the connection
/// that made it.
pub(super) fn room_span(name: &str, id: RoomId, node: Option<&str>) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "room",
        room = name,
        room.id = id.0,
        node = node.unwrap_or(""),
        trace_id = Empty,
        span_id = Empty,
    );
    record_ids(&span);
    span
}

/// The span of a member's session in the room whose span is current (the room's task).
pub(super) fn member_span(member: MemberId, name: &str) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "member",
        member = member.0,
        name = name,
        trace_id = Empty,
        span_id = Empty,
    );
    record_ids(&span);
    span
}

/// A step of a member's session, as an event of their span.
pub(super) fn step(span: &Span, what: &'static str) {
    tracing::debug!(target: TARGET, parent: span, "{what}");
}

/// Why a member left: the last event of their span.
pub(super) fn left(span: &Span, why: &'static str) {
    tracing::debug!(target: TARGET, parent: span, reason = why, "left");
}

/// A change of a member's state, with what it became.
pub(super) fn changed(span: &Span, what: &'static str, value: &dyn std::fmt::Display) {
    tracing::debug!(target: TARGET, parent: span, value = %value, "{what}");
}
