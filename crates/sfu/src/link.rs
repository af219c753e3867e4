//! The media link of one room: which media worker holds each member's session, and what each
//! worker must be told so that the room's media flows between them.
//!
//! A room starts on one worker, its *home*, and stays there until the home holds `spread_at`
//! of its members; further members then go to the worker holding the fewest of the room's
//! members, so a large room's forwarding uses every core. A worker taking its first member of
//! the room is told to open it and which tracks the members elsewhere publish; every worker
//! holding members is told which others to relay to; a worker losing its last member is told
//! to close the room.
//!
//! Sans-I/O: the room feeds it each member's signalling and the workers' events, and sends
//! what [`MediaLink::poll`] yields to the workers. The core's tests drive two cores with it in
//! the same way, so the orchestration they test is the one the server runs.

use std::collections::{BTreeMap, VecDeque};

use free4chat_ids::{MemberId, RoomId, TrackKind};

use crate::api::{MediaCmd, MediaEvent, VideoQuality, WorkerIndex};

/// What one worker is to be told.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkOutput {
    /// The room's events from this worker go to the room (it has taken its first member).
    OpenRoom,
    /// A command for the worker's core. [`MediaCmd::CloseRoom`] also tells the worker to stop
    /// routing the room's events.
    Cmd(MediaCmd),
}

/// Where one member's media is, and what they publish.
#[derive(Debug, Default)]
struct Placement {
    worker: Option<WorkerIndex>,
    /// The member's source id in the room: the CSRC of their packets on others' slots.
    source: u32,
    tracks: Vec<(String, TrackKind)>,
    /// The members this member muted for itself, as it last said (bounded by the signalling
    /// layer's check), kept for a session made later: a client may say it before its first
    /// offer, and a failed session's successor must keep it too.
    local_mutes: Vec<MemberId>,
    /// Muted for everyone, kept for a session made later as `local_mutes` is.
    silenced: bool,
}

#[derive(Debug)]
pub struct MediaLink {
    room: RoomId,
    home: WorkerIndex,
    /// Members held per worker.
    held: Vec<usize>,
    /// Members the home keeps before the room spreads; 0: never spreads.
    spread_at: usize,
    members: BTreeMap<MemberId, Placement>,
    /// The last source id given out.
    last_source: u32,
    out: VecDeque<(WorkerIndex, LinkOutput)>,
}

impl MediaLink {
    /// The link of `room`, at home on worker `home` of `workers`.
    pub fn new(room: RoomId, home: WorkerIndex, workers: usize, spread_at: usize) -> MediaLink {
        let workers = workers.max(home + 1);
        MediaLink {
            room,
            home,
            held: vec![0; workers],
            spread_at,
            members: BTreeMap::new(),
            last_source: 0,
            out: VecDeque::new(),
        }
    }

    /// A member joins the room: returns their source id, which the room tells the others
    /// (the CSRC that names them on audio slots). Unique in the room for its life.
    pub fn admit(&mut self, member: MemberId) -> u32 {
        if let Some(p) = self.members.get(&member) {
            return p.source;
        }
        self.last_source = self.last_source.wrapping_add(1).max(1);
        let source = self.last_source;
        self.members.insert(
            member,
            Placement {
                source,
                ..Placement::default()
            },
        );
        source
    }

    /// The member's source id, once admitted.
    pub fn source_of(&self, member: MemberId) -> Option<u32> {
        self.members.get(&member).map(|p| p.source)
    }

    /// The members `member` does not want to hear, for its worker to keep off its slots: now,
    /// or when its session is made.
    pub fn local_mutes(&mut self, member: MemberId, muted: Vec<MemberId>) {
        let Some(placement) = self.members.get_mut(&member) else {
            return;
        };
        placement.local_mutes.clone_from(&muted);
        if let Some(worker) = placement.worker {
            self.cmd(worker, MediaCmd::LocalMutes { member, muted });
        }
    }

    /// How much of `publisher`'s video track `track` (a screen share if `screen`) the viewer
    /// `member` wants, for the worker holding the viewer. A viewer without a session yet has no tiles to show.
    pub fn view_video(
        &mut self,
        member: MemberId,
        publisher: MemberId,
        (track, screen): (String, bool),
        quality: VideoQuality,
    ) {
        if let Some(worker) = self.worker_of(member) {
            let cmd = MediaCmd::ViewVideo {
                member,
                publisher,
                track,
                quality,
                screen,
            };
            self.cmd(worker, cmd);
        }
    }

    /// Mutes `member` for everyone, or lifts it: now, or when their session is made.
    pub fn silence(&mut self, member: MemberId, silenced: bool) {
        let Some(placement) = self.members.get_mut(&member) else {
            return;
        };
        placement.silenced = silenced;
        if let Some(worker) = placement.worker {
            self.cmd(worker, MediaCmd::Silence { member, silenced });
        }
    }

    pub fn home(&self) -> WorkerIndex {
        self.home
    }

    /// The worker holding `member`'s session, if one does.
    pub fn worker_of(&self, member: MemberId) -> Option<WorkerIndex> {
        self.members.get(&member).and_then(|p| p.worker)
    }

    /// How many of the room's members each worker holds.
    pub fn held(&self) -> &[usize] {
        &self.held
    }

    /// The next thing to tell a worker.
    pub fn poll(&mut self) -> Option<(WorkerIndex, LinkOutput)> {
        self.out.pop_front()
    }

    /// A member's offer: their first makes their session on the worker chosen for them; a
    /// later one goes to that worker.
    pub fn offer(&mut self, member: MemberId, sdp: String) {
        if let Some(worker) = self.worker_of(member) {
            return self.cmd(worker, MediaCmd::Offer { member, sdp });
        }
        let worker = self.place();
        let source = self.admit(member);
        let mut local_mutes = Vec::new();
        let mut silenced = false;
        if let Some(p) = self.members.get_mut(&member) {
            p.worker = Some(worker);
            local_mutes.clone_from(&p.local_mutes);
            silenced = p.silenced;
        }
        self.held[worker] += 1;
        self.attach(worker);
        let room = self.room;
        self.cmd(
            worker,
            MediaCmd::AddParticipant {
                room,
                member,
                source,
                offer: sdp,
            },
        );
        if !local_mutes.is_empty() {
            let muted = local_mutes;
            self.cmd(worker, MediaCmd::LocalMutes { member, muted });
        }
        if silenced {
            self.cmd(worker, MediaCmd::Silence { member, silenced });
        }
    }

    /// A member's answer to a server offer. Returns false if they have no session to take it.
    pub fn answer(&mut self, member: MemberId, sdp: String) -> bool {
        let Some(worker) = self.worker_of(member) else {
            return false;
        };
        self.cmd(worker, MediaCmd::Answer { member, sdp });
        true
    }

    /// A member's trickled candidate. Before their first offer there is no session to add it
    /// to; ICE-lite learns the address from the checks anyway.
    pub fn candidate(&mut self, member: MemberId, candidate: String) {
        if let Some(worker) = self.worker_of(member) {
            self.cmd(worker, MediaCmd::Candidate { member, candidate });
        }
    }

    /// What a worker reported about a member: a published track reaches the other workers; a
    /// refused or failed session is no longer anywhere.
    pub fn on_event(&mut self, event: &MediaEvent) {
        match event {
            MediaEvent::TrackPublished {
                member,
                track,
                kind,
            } => {
                let Some(placement) = self.members.get_mut(member) else {
                    return;
                };
                placement.tracks.push((track.clone(), *kind));
                let (held_by, source) = (placement.worker, placement.source);
                let room = self.room;
                for w in self
                    .used()
                    .filter(|w| Some(*w) != held_by)
                    .collect::<Vec<_>>()
                {
                    let cmd = MediaCmd::RemoteTrack {
                        room,
                        member: *member,
                        source,
                        track: track.clone(),
                        kind: *kind,
                    };
                    self.cmd(w, cmd);
                }
            }
            MediaEvent::Refused { member, .. } => self.lost(*member, false),
            MediaEvent::Failed { member, .. } => self.lost(*member, true),
            _ => {}
        }
    }

    /// The member has left: their session goes, and the member is forgotten.
    pub fn remove(&mut self, member: MemberId) {
        let Some(placement) = self.members.remove(&member) else {
            return;
        };
        if let Some(worker) = placement.worker {
            self.cmd(worker, MediaCmd::RemoveParticipant { member });
            self.release(member, worker, !placement.tracks.is_empty());
        }
    }

    /// The member's session is gone from its worker (refused, or failed: `published` says
    /// whether it may have published); the member stays in the room without media.
    fn lost(&mut self, member: MemberId, published: bool) {
        let Some(placement) = self.members.get_mut(&member) else {
            return;
        };
        let Some(worker) = placement.worker.take() else {
            return;
        };
        let published = published && !placement.tracks.is_empty();
        placement.tracks.clear();
        self.release(member, worker, published);
    }

    fn cmd(&mut self, worker: WorkerIndex, cmd: MediaCmd) {
        self.out.push_back((worker, LinkOutput::Cmd(cmd)));
    }

    /// The workers holding members of the room.
    fn used(&self) -> impl Iterator<Item = WorkerIndex> + '_ {
        (0..self.held.len()).filter(|w| self.held[*w] > 0)
    }

    /// Where a new member's media goes: the home until it holds `spread_at` of the room's
    /// members, then the worker holding the fewest (the home on a tie).
    fn place(&self) -> WorkerIndex {
        let held = &self.held;
        if self.spread_at == 0 || held[self.home] < self.spread_at {
            return self.home;
        }
        (0..held.len())
            .min_by_key(|w| (held[*w], *w != self.home))
            .unwrap_or(self.home)
    }

    /// `worker` has just been given a member. If it is its first of the room, it is told to
    /// open the room and what the members elsewhere publish, and the workers whom to relay to.
    fn attach(&mut self, worker: WorkerIndex) {
        if self.held[worker] != 1 {
            return;
        }
        self.out.push_back((worker, LinkOutput::OpenRoom));
        let room = self.room;
        let elsewhere: Vec<MediaCmd> = self
            .members
            .iter()
            .filter(|(_, p)| p.worker.is_some_and(|w| w != worker))
            .flat_map(|(member, p)| {
                p.tracks
                    .iter()
                    .map(move |(track, kind)| MediaCmd::RemoteTrack {
                        room,
                        member: *member,
                        source: p.source,
                        track: track.clone(),
                        kind: *kind,
                    })
            })
            .collect();
        for cmd in elsewhere {
            self.cmd(worker, cmd);
        }
        self.route_relays(worker);
    }

    /// A member's session on `worker` is gone: the other workers stop forwarding their tracks
    /// if they `published`, and a worker left without members of the room closes it.
    fn release(&mut self, member: MemberId, worker: WorkerIndex, published: bool) {
        self.held[worker] = self.held[worker].saturating_sub(1);
        let room = self.room;
        if published {
            for w in self.used().filter(|w| *w != worker).collect::<Vec<_>>() {
                self.cmd(w, MediaCmd::RemoteMemberGone { room, member });
            }
        }
        if self.held[worker] == 0 {
            self.cmd(worker, MediaCmd::CloseRoom { room });
            self.route_relays(worker);
        }
    }

    /// Tells each worker holding members of the room which others to relay to, after
    /// `changed` took its first member of the room or lost its last, if the room spreads over
    /// several workers now or did before.
    fn route_relays(&mut self, changed: WorkerIndex) {
        let used: Vec<WorkerIndex> = self.used().collect();
        let before = if used.contains(&changed) {
            used.len() - 1
        } else {
            used.len() + 1
        };
        if used.len() <= 1 && before <= 1 {
            return;
        }
        let room = self.room;
        for &w in &used {
            let workers = used.iter().copied().filter(|o| *o != w).collect();
            self.cmd(w, MediaCmd::RelayTo { room, workers });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: RoomId = RoomId(7);

    fn drain(link: &mut MediaLink) -> Vec<(WorkerIndex, LinkOutput)> {
        std::iter::from_fn(|| link.poll()).collect()
    }

    fn cmds(out: &[(WorkerIndex, LinkOutput)]) -> Vec<(WorkerIndex, &MediaCmd)> {
        out.iter()
            .filter_map(|(w, o)| match o {
                LinkOutput::Cmd(c) => Some((*w, c)),
                LinkOutput::OpenRoom => None,
            })
            .collect()
    }

    fn join(link: &mut MediaLink, member: u64) -> Vec<(WorkerIndex, LinkOutput)> {
        link.offer(MemberId(member), "sdp".into());
        drain(link)
    }

    fn publish(link: &mut MediaLink, member: u64) -> Vec<(WorkerIndex, LinkOutput)> {
        link.on_event(&MediaEvent::TrackPublished {
            member: MemberId(member),
            track: "0".into(),
            kind: TrackKind::Audio,
        });
        drain(link)
    }

    #[test]
    fn a_room_stays_home_until_it_holds_spread_at_members_then_fills_the_emptiest() {
        let mut link = MediaLink::new(ROOM, 1, 3, 2);
        for m in 1..=2 {
            join(&mut link, m);
            assert_eq!(link.worker_of(MemberId(m)), Some(1));
        }
        // The home is full: the others fill, lowest index first on a tie, never past the home.
        let placed: Vec<WorkerIndex> = (3..=7)
            .map(|m| {
                join(&mut link, m);
                link.worker_of(MemberId(m)).unwrap()
            })
            .collect();
        assert_eq!(placed, vec![0, 2, 0, 2, 1]);
        assert_eq!(link.held(), &[2, 3, 2]);
        // Never spreading: everyone goes home.
        let mut link = MediaLink::new(ROOM, 0, 2, 0);
        for m in 1..=40 {
            join(&mut link, m);
        }
        assert_eq!(link.held(), &[40, 0]);
    }

    #[test]
    fn a_worker_taking_its_first_member_learns_the_room_and_the_relays_are_routed() {
        let mut link = MediaLink::new(ROOM, 0, 2, 1);
        let out = join(&mut link, 1);
        assert_eq!(out[0], (0, LinkOutput::OpenRoom));
        assert!(
            !cmds(&out)
                .iter()
                .any(|(_, c)| matches!(c, MediaCmd::RelayTo { .. })),
            "a room on one worker relays nowhere"
        );
        publish(&mut link, 1);
        let out = join(&mut link, 2);
        assert_eq!(link.worker_of(MemberId(2)), Some(1));
        assert_eq!(out[0], (1, LinkOutput::OpenRoom));
        let c = cmds(&out);
        assert!(c.contains(&(
            1,
            &MediaCmd::RemoteTrack {
                room: ROOM,
                member: MemberId(1),
                source: 1,
                track: "0".into(),
                kind: TrackKind::Audio
            }
        )));
        assert!(c.contains(&(
            0,
            &MediaCmd::RelayTo {
                room: ROOM,
                workers: vec![1]
            }
        )));
        assert!(c.contains(&(
            1,
            &MediaCmd::RelayTo {
                room: ROOM,
                workers: vec![0]
            }
        )));
        assert!(matches!(
            c.last(),
            Some((1, MediaCmd::AddParticipant { .. }))
        ));
        // Member 2 publishes: worker 0 learns it, worker 1 (its own) does not.
        let c = publish(&mut link, 2);
        assert_eq!(cmds(&c).len(), 1);
        assert_eq!(cmds(&c)[0].0, 0);
    }

    #[test]
    fn a_worker_losing_its_last_member_closes_the_room_and_relays_stop() {
        let mut link = MediaLink::new(ROOM, 0, 2, 1);
        join(&mut link, 1);
        join(&mut link, 2);
        publish(&mut link, 2);
        link.remove(MemberId(2));
        let out = drain(&mut link);
        let c = cmds(&out);
        assert_eq!(
            c,
            vec![
                (
                    1,
                    &MediaCmd::RemoveParticipant {
                        member: MemberId(2)
                    }
                ),
                (
                    0,
                    &MediaCmd::RemoteMemberGone {
                        room: ROOM,
                        member: MemberId(2)
                    }
                ),
                (1, &MediaCmd::CloseRoom { room: ROOM }),
                (
                    0,
                    &MediaCmd::RelayTo {
                        room: ROOM,
                        workers: vec![]
                    }
                ),
            ]
        );
        // A member who failed is released the same way, without a removal command.
        link.on_event(&MediaEvent::Failed {
            member: MemberId(1),
            reason: "x".into(),
        });
        let out = drain(&mut link);
        assert_eq!(cmds(&out), vec![(0, &MediaCmd::CloseRoom { room: ROOM })]);
        assert_eq!(link.worker_of(MemberId(1)), None);
        assert_eq!(link.held(), &[0, 0]);
        // Their next offer makes a new session, at home again.
        join(&mut link, 1);
        assert_eq!(link.worker_of(MemberId(1)), Some(0));
    }

    #[test]
    fn local_mutes_said_before_the_first_offer_reach_the_session_it_makes_and_its_successor() {
        let mut link = MediaLink::new(ROOM, 0, 1, 16);
        link.admit(MemberId(1));
        link.local_mutes(MemberId(1), vec![MemberId(2), MemberId(3)]);
        assert!(drain(&mut link).is_empty(), "no session to tell yet");
        let mutes = |muted: Vec<u64>| MediaCmd::LocalMutes {
            member: MemberId(1),
            muted: muted.into_iter().map(MemberId).collect(),
        };
        let out = join(&mut link, 1);
        let c = cmds(&out);
        assert!(matches!(
            c[c.len() - 2],
            (0, MediaCmd::AddParticipant { .. })
        ));
        assert_eq!(c.last(), Some(&(0, &mutes(vec![2, 3]))));
        // A new list goes to the session at once, and replaces the kept one.
        link.local_mutes(MemberId(1), vec![MemberId(3)]);
        assert_eq!(cmds(&drain(&mut link)), vec![(0, &mutes(vec![3]))]);
        // The session fails; the member's next offer makes one that still knows the list.
        link.on_event(&MediaEvent::Failed {
            member: MemberId(1),
            reason: "x".into(),
        });
        drain(&mut link);
        let out = join(&mut link, 1);
        assert_eq!(cmds(&out).last(), Some(&(0, &mutes(vec![3]))));
        // A member who never said anything gets no list; one not in the room is ignored.
        let out = join(&mut link, 4);
        assert!(matches!(
            cmds(&out).last(),
            Some((0, MediaCmd::AddParticipant { .. }))
        ));
        link.local_mutes(MemberId(9), vec![MemberId(1)]);
        assert!(drain(&mut link).is_empty());
    }

    #[test]
    fn a_member_muted_for_everyone_before_their_first_offer_is_muted_in_the_session_it_makes() {
        let mut link = MediaLink::new(ROOM, 0, 1, 16);
        link.admit(MemberId(1));
        link.silence(MemberId(1), true);
        assert!(drain(&mut link).is_empty(), "no session to tell yet");
        let silence = |silenced| MediaCmd::Silence {
            member: MemberId(1),
            silenced,
        };
        let out = join(&mut link, 1);
        assert_eq!(cmds(&out).last(), Some(&(0, &silence(true))));
        link.silence(MemberId(1), false);
        assert_eq!(cmds(&drain(&mut link)), vec![(0, &silence(false))]);
    }

    #[test]
    fn signalling_for_members_without_a_session_goes_nowhere() {
        let mut link = MediaLink::new(ROOM, 0, 1, 16);
        assert!(!link.answer(MemberId(1), "sdp".into()));
        link.candidate(MemberId(1), "c".into());
        link.remove(MemberId(1));
        link.on_event(&MediaEvent::Refused {
            member: MemberId(1),
            message: String::new(),
        });
        assert!(drain(&mut link).is_empty());
        // A home beyond the workers given is still a worker.
        let mut link = MediaLink::new(ROOM, 3, 1, 16);
        join(&mut link, 1);
        assert_eq!(link.worker_of(MemberId(1)), Some(3));
    }
}
