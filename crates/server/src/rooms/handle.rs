//! What others may do with a running room, through its actor's inbox.

use std::sync::Arc;

use std::net::IpAddr;

use free4chat_signal::{
    ByeReason, ClientMsg, IceServer, Member, MemberId, Quality, RoomId, RoomInfo,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{MemberTx, Refusal};

/// What a room's actor is asked.
pub(super) enum RoomCmd {
    Join(Joining),
    /// A message from a joined member. Only the in-room kinds arrive here.
    Msg {
        member: MemberId,
        msg: ClientMsg,
    },
    /// The member's connection is gone, or they said `leave`.
    Leave {
        member: MemberId,
        said_leave: bool,
    },
    Snapshot {
        reply: oneshot::Sender<RoomSnapshot>,
    },
    /// How many members, and the room's topic, language and state: what a room list shows,
    /// without copying the members.
    Summary {
        reply: oneshot::Sender<(usize, RoomInfo)>,
    },
    /// Removes a member, telling them why. Replies whether they were there.
    Remove {
        member: MemberId,
        reason: ByeReason,
        reply: oneshot::Sender<bool>,
    },
    /// Tells every member why, and ends the room.
    Close {
        reason: ByeReason,
    },
    /// Mutes a member for everyone (`forced`), or lifts it. Replies whether they were there.
    ForceMute {
        member: MemberId,
        forced: bool,
        reply: oneshot::Sender<bool>,
    },
    /// A notice from the operator to everyone in the room.
    Notice {
        text: String,
    },
    /// The operator's limit on the room's members (none: the server's).
    SetMaxMembers {
        max: Option<usize>,
    },
    /// This round's quality levels of the room's members (`crate::quality`).
    Quality {
        levels: Vec<(MemberId, Quality)>,
    },
}

/// A member the directory has made, on their way into the room.
pub(super) struct Joining {
    pub member: MemberId,
    pub name: String,
    pub muted: bool,
    /// Who they are beyond this connection (see `rooms::tag`), if their client sent a key.
    pub tag: Option<String>,
    /// Their address's key, for the room's removals (none: exempt).
    pub ip: Option<IpAddr>,
    /// A moderator from the start.
    pub moderator: bool,
    pub out: MemberTx,
    pub ice_servers: Vec<IceServer>,
    /// The host the member reached us by, which names the TURN server in renewed
    /// `ice_servers`.
    pub host: Option<String>,
    pub reply: oneshot::Sender<JoinReply>,
}

/// Who joins, as the directory hands them to the room.
pub(super) struct Who {
    pub name: String,
    pub muted: bool,
    pub tag: Option<String>,
    pub ip: Option<IpAddr>,
    pub moderator: bool,
    pub out: MemberTx,
    /// The host the member reached us by (for renewed `ice_servers`).
    pub host: Option<String>,
}

pub(super) enum JoinReply {
    Joined,
    Refused(Refusal),
    /// The room was closing; try again (a new room will be made).
    Retry,
}

/// A room as it is at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomSnapshot {
    pub room: String,
    pub id: RoomId,
    pub members: Vec<Member>,
    /// Chat messages kept for those who join later.
    pub chat_messages: usize,
    /// The most members it takes now.
    pub max_members: usize,
    /// Members the operator or a moderator muted for everyone.
    pub forced_muted: Vec<MemberId>,
    /// Its topic, language, privacy and lock.
    pub info: RoomInfo,
    pub moderators: Vec<MemberId>,
    /// Raised hands, in the order raised.
    pub hands: Vec<MemberId>,
}

/// A running room, for those who may act on it.
#[derive(Clone)]
pub struct RoomHandle {
    pub(super) id: RoomId,
    pub(super) name: Arc<str>,
    pub(super) tx: mpsc::Sender<RoomCmd>,
    /// A private room's password, as an Argon2id hash (`rooms::password`); set when the room
    /// is made, never changed.
    pub(super) password: Option<Arc<str>>,
}

impl RoomHandle {
    pub fn id(&self) -> RoomId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A private room's password, as its Argon2id hash (PHC string), for a cluster to keep.
    pub fn password_hash(&self) -> Option<Arc<str>> {
        self.password.clone()
    }

    /// Whether the room's actor has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The room's members and chat as they are now; `None` if the room has ended.
    pub async fn snapshot(&self) -> Option<RoomSnapshot> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(RoomCmd::Snapshot { reply }).await.ok()?;
        rx.await.ok()
    }

    /// How many members the room holds, and its topic, language and state; `None` if it
    /// has ended.
    pub async fn summary(&self) -> Option<(usize, RoomInfo)> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(RoomCmd::Summary { reply }).await.ok()?;
        rx.await.ok()
    }

    /// Removes a member, who is told `reason`. Returns whether they were in the room.
    pub async fn remove(&self, member: MemberId, reason: ByeReason) -> bool {
        let (reply, rx) = oneshot::channel();
        let cmd = RoomCmd::Remove {
            member,
            reason,
            reply,
        };
        if self.tx.send(cmd).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Mutes a member for everyone, or lifts it. Returns whether they were in the room.
    pub async fn force_mute(&self, member: MemberId, forced: bool) -> bool {
        let (reply, rx) = oneshot::channel();
        let cmd = RoomCmd::ForceMute {
            member,
            forced,
            reply,
        };
        if self.tx.send(cmd).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Sends everyone in the room a notice from the operator.
    pub async fn notice(&self, text: String) -> bool {
        self.tx.send(RoomCmd::Notice { text }).await.is_ok()
    }

    /// Sets the room's own limit on members (none: the server's); those in it stay.
    pub async fn set_max_members(&self, max: Option<usize>) -> bool {
        self.tx.send(RoomCmd::SetMaxMembers { max }).await.is_ok()
    }

    /// Hands the room this round's quality levels of its members, without waiting: a room
    /// whose queue is full skips the round (the next one carries the levels again).
    pub fn quality(&self, levels: Vec<(MemberId, Quality)>) {
        let _ = self.tx.try_send(RoomCmd::Quality { levels });
    }

    /// Closes the room: every member is told `reason` and removed.
    pub async fn close(&self, reason: ByeReason) {
        let _ = self.tx.send(RoomCmd::Close { reason }).await;
    }

    /// Waits until the room's actor has ended.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Asks the room to take a member. The directory has made the member id and reserved
    /// their place among all members.
    pub(super) async fn join(
        &self,
        member: MemberId,
        who: Who,
        ice_servers: Vec<IceServer>,
    ) -> JoinReply {
        let (reply, rx) = oneshot::channel();
        let cmd = RoomCmd::Join(Joining {
            member,
            name: who.name,
            muted: who.muted,
            tag: who.tag,
            ip: who.ip,
            moderator: who.moderator,
            out: who.out,
            ice_servers,
            host: who.host,
            reply,
        });
        if self.tx.send(cmd).await.is_err() {
            return JoinReply::Retry;
        }
        rx.await.unwrap_or(JoinReply::Retry)
    }
}

/// The way to a room that runs on another node: the member's messages are carried there,
/// and the room's messages come back into the member's queue (`JoinRequest::out`).
#[async_trait::async_trait]
pub trait RoomRelay: Send + Sync {
    /// Carries an in-room message to the room. Returns false if it cannot get there.
    async fn send(&self, member: MemberId, msg: ClientMsg) -> bool;

    /// The member's connection ended (`said_leave`: they said `leave`).
    async fn leave(&self, member: MemberId, said_leave: bool);
}

/// Where a member's room runs.
enum Route {
    Here(RoomHandle),
    Relayed(Arc<dyn RoomRelay>),
}

/// A joined member's handle on their room, wherever it runs: the connection treats both alike.
pub struct Membership {
    pub member: MemberId,
    route: Route,
}

impl Membership {
    pub(super) fn here(member: MemberId, room: RoomHandle) -> Membership {
        Membership {
            member,
            route: Route::Here(room),
        }
    }

    /// A member of a room on another node, reached through `relay`.
    pub fn relayed(member: MemberId, relay: Arc<dyn RoomRelay>) -> Membership {
        Membership {
            member,
            route: Route::Relayed(relay),
        }
    }

    /// Passes an in-room message to the room. Returns false if the room is gone.
    pub async fn send(&self, msg: ClientMsg) -> bool {
        let member = self.member;
        match &self.route {
            Route::Here(room) => room.tx.send(RoomCmd::Msg { member, msg }).await.is_ok(),
            Route::Relayed(relay) => relay.send(member, msg).await,
        }
    }

    pub async fn leave(self, said_leave: bool) {
        let member = self.member;
        match self.route {
            Route::Here(room) => {
                let _ = room.tx.send(RoomCmd::Leave { member, said_leave }).await;
            }
            Route::Relayed(relay) => relay.leave(member, said_leave).await,
        }
    }
}
