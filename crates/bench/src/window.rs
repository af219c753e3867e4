//! What happened in the measurement window: what the publishers sent, what the server
//! forwarded to each member, what arrived and what was lost, and whom each member heard.
//!
//! Two ways to know what the server forwarded. Without audio slots (free4chat with
//! `--audio-slots 0`, and Janus) every member receives every other publisher throughout, so a
//! member should have had every packet every other publisher sent in the window. With slots a
//! member receives only the speakers on its slots, and what it was sent is read from the runs
//! its slots carried ([`crate::slot_loss`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Instant;

use free4chat_client::StreamLog;
use free4chat_client::media::lock_state;
use serde_json::{Value, json};

use crate::procstat::{self, MachineSample, ProcSample};
use crate::slot_loss::{self, SlotStream};
use crate::stats;
use crate::target::{Member, Role};
use crate::video::VideoTotals;

/// How what the server forwarded is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accounting {
    /// Every member receives every other publisher.
    Tracks,
    /// Every member receives the speakers on its this many audio slots.
    Slots(usize),
}

impl Accounting {
    /// From what the server told the members as they joined.
    pub fn of(members: &[Member]) -> Accounting {
        match members.iter().find_map(|m| m.audio_slots) {
            Some(n) if n > 0 => Accounting::Slots(n),
            _ => Accounting::Tracks,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Accounting::Tracks => "tracks",
            Accounting::Slots(_) => "slots",
        }
    }

    /// How many of its room's `speakers` a member should hear. Speakers speak throughout, so
    /// on slots the first of them to speak hold the selection for the whole run; listeners'
    /// open microphones are below speech and never selected.
    pub fn speakers_expected(self, role: Role, speakers: usize) -> usize {
        let others = match role {
            Role::Speaker => speakers.saturating_sub(1),
            Role::Listener => speakers,
        };
        match self {
            Accounting::Tracks => others,
            Accounting::Slots(n) => others.min(n),
        }
    }
}

/// Everything counted at one instant.
pub struct Snapshot {
    pub at: Instant,
    pub proc: Option<ProcSample>,
    /// The whole machine's CPU time, to tell how busy it was, and how much the host took.
    pub machine: Option<MachineSample>,
    /// (receiver, sender id) → packets received.
    received: HashMap<(usize, u64), u64>,
    /// (receiver, sender id) → latencies recorded so far.
    latency_len: HashMap<(usize, u64), usize>,
    /// sender id → packets sent.
    sent: HashMap<u64, u64>,
    /// What the members had received of video.
    pub video: VideoTotals,
}

impl Snapshot {
    pub fn take(members: &[Member], pid: Option<u32>) -> Snapshot {
        let mut received = HashMap::new();
        let mut latency_len = HashMap::new();
        let mut sent = HashMap::new();
        for (i, m) in members.iter().enumerate() {
            let s = lock_state(&m.state);
            for (sender, r) in &s.received {
                received.insert((i, *sender), r.packets);
                latency_len.insert((i, *sender), r.latencies_us.len());
            }
            if m.publishes {
                sent.insert(m.sender_id, s.sent_packets);
            }
        }
        Snapshot {
            at: Instant::now(),
            proc: pid.and_then(procstat::sample),
            machine: procstat::machine(),
            received,
            latency_len,
            sent,
            video: crate::video::totals(members),
        }
    }
}

/// One slot index's streams over all members, in the window.
#[derive(Debug, Default)]
struct SlotTotals {
    streams: u64,
    /// Streams on which nothing was forwarded in the window.
    idle: u64,
    packets: u64,
    lost: u64,
    gaps: u64,
    speaker_changes: u64,
    lost_at_changes: u64,
    quietest_level: Option<i8>,
}

impl SlotTotals {
    fn add(&mut self, s: Option<&SlotStream>) {
        self.streams += 1;
        let Some(s) = s else {
            self.idle += 1;
            return;
        };
        if s.packets + s.lost == 0 {
            self.idle += 1;
        }
        self.packets += s.packets;
        self.lost += s.lost;
        self.gaps += s.gaps;
        self.speaker_changes += s.speaker_changes;
        self.lost_at_changes += s.lost_at_changes;
        self.quietest_level = match (self.quietest_level, s.quietest_level) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The window's counts.
#[derive(Debug, Default)]
pub struct WindowCounts {
    /// Packets the speakers sent, and the listeners' open microphones.
    pub sent_by_speakers: u64,
    pub sent_by_open_mics: u64,
    /// Packets the server forwarded (had to send), of those lost, and packets that arrived.
    pub forwarded: u64,
    pub lost: u64,
    pub delivered: u64,
    /// Of `lost`, lost at a change of speaker on a slot (charged to no speaker).
    pub lost_at_changes: u64,
    /// One-way latencies of the packets that arrived in the window, in µs.
    pub latencies_us: Vec<u64>,
    /// Speakers each listener, and each speaker, heard in the window.
    heard_by_listeners: Vec<u64>,
    heard_by_speakers: Vec<u64>,
    expected_by_listeners: usize,
    expected_by_speakers: usize,
    /// Members who heard fewer speakers than they should.
    pub hearing_fewer: u64,
    /// Packets from listeners' open microphones that arrived in the window.
    pub open_mic_packets_heard: u64,
    /// Packets that arrived but could not be recorded on a stream (bounds reached).
    pub unrecorded: u64,
    slots: BTreeMap<usize, SlotTotals>,
}

/// Counts the window between snapshots `a` and `b` (taken after the window's packets had time
/// to arrive). `speakers` is the number of speakers per room.
pub fn count(
    members: &[Member],
    a: &Snapshot,
    b: &Snapshot,
    accounting: Accounting,
    speakers: usize,
) -> WindowCounts {
    let mut c = WindowCounts {
        expected_by_listeners: accounting.speakers_expected(Role::Listener, speakers),
        expected_by_speakers: accounting.speakers_expected(Role::Speaker, speakers),
        ..WindowCounts::default()
    };
    let sent_in = |sender: u64| {
        let first = a.sent.get(&sender).copied().unwrap_or(0);
        let end = b.sent.get(&sender).copied().unwrap_or(0);
        (first, end.max(first))
    };
    for m in members.iter().filter(|m| m.publishes) {
        let (first, end) = sent_in(m.sender_id);
        match m.role {
            Role::Speaker => c.sent_by_speakers += end - first,
            Role::Listener => c.sent_by_open_mics += end - first,
        }
    }
    // Sender id → (its member, its window: the sequence numbers it sent in it).
    let windows: HashMap<u64, (&Member, Range<u32>)> = members
        .iter()
        .filter(|m| m.publishes)
        .map(|m| {
            let (first, end) = sent_in(m.sender_id);
            (m.sender_id, (m, seq(first)..seq(end)))
        })
        .collect();

    for (i, receiver) in members.iter().enumerate() {
        let s = lock_state(&receiver.state);
        let others = members
            .iter()
            .filter(|m| m.room == receiver.room && m.publishes)
            .filter(|m| m.sender_id != receiver.sender_id);
        // What arrived in the window, by sender, as the old figures count it: by arrival.
        let mut arrived: HashMap<u64, u64> = HashMap::new();
        for sender in others.clone() {
            let key = (i, sender.sender_id);
            let got = b.received.get(&key).copied().unwrap_or(0)
                - a.received.get(&key).copied().unwrap_or(0);
            c.delivered += got;
            arrived.insert(sender.sender_id, got);
            if let Some(r) = s.received.get(&sender.sender_id) {
                let from = a.latency_len.get(&key).copied().unwrap_or(0);
                let to = b
                    .latency_len
                    .get(&key)
                    .copied()
                    .unwrap_or(0)
                    .min(r.latencies_us.len());
                c.latencies_us
                    .extend_from_slice(&r.latencies_us[from.min(to)..to]);
            }
        }
        c.unrecorded += s.unrecorded_stream_packets;
        c.unrecorded += s.streams.values().map(|l| l.unrecorded).sum::<u64>();

        // Senders heard in the window, with the packets of theirs that arrived.
        let heard: Vec<(u64, u64)> = match accounting {
            Accounting::Tracks => {
                for sender in others {
                    let (first, end) = sent_in(sender.sender_id);
                    c.forwarded += end - first;
                    // Sequence numbers count packets sent, from 0.
                    c.lost += match s.received.get(&sender.sender_id) {
                        Some(r) => r.missing_between(seq(first), seq(end)),
                        None => end - first,
                    };
                }
                arrived.into_iter().collect()
            }
            Accounting::Slots(n) => {
                let mut logs: Vec<&StreamLog> =
                    s.streams.values().filter(|l| l.slot().is_some()).collect();
                logs.sort_by_key(|l| l.slot());
                let room = receiver.room;
                let window = |sender: u64| {
                    windows
                        .get(&sender)
                        .filter(|(m, _)| m.room == room && m.sender_id != receiver.sender_id)
                        .map(|(_, w)| w.clone())
                };
                let account = slot_loss::account(&logs, &s.received, window);
                let (forwarded, lost) = account.forwarded_and_lost();
                c.forwarded += forwarded;
                c.lost += lost;
                for slot in 0..n {
                    let stream = account.streams.iter().find(|st| st.slot == slot);
                    c.slots.entry(slot).or_default().add(stream);
                    c.lost_at_changes += stream.map_or(0, |st| st.lost_at_changes);
                }
                account
                    .heard
                    .iter()
                    .map(|(sender, h)| (*sender, h.received()))
                    .collect()
            }
        };
        let mut speakers_heard = 0;
        for (sender, packets) in heard {
            let Some((m, _)) = windows.get(&sender) else {
                continue;
            };
            match m.role {
                Role::Speaker if packets > 0 => speakers_heard += 1,
                Role::Speaker => {}
                Role::Listener => c.open_mic_packets_heard += packets,
            }
        }
        let expected = match receiver.role {
            Role::Listener => {
                c.heard_by_listeners.push(speakers_heard);
                c.expected_by_listeners
            }
            Role::Speaker => {
                c.heard_by_speakers.push(speakers_heard);
                c.expected_by_speakers
            }
        };
        if speakers_heard < expected as u64 {
            c.hearing_fewer += 1;
        }
    }
    c
}

impl WindowCounts {
    /// Whom members heard, and each slot's streams, for the report.
    pub fn hearing_json(&mut self) -> Value {
        let spread = |v: &mut Vec<u64>, expected: usize| {
            if v.is_empty() {
                return Value::Null;
            }
            json!({
                "min": v.iter().copied().min().unwrap_or(0),
                "p50": stats::percentile(v, 50.0),
                "max": v.iter().copied().max().unwrap_or(0),
                "expected": expected,
            })
        };
        json!({
            "listeners": spread(&mut self.heard_by_listeners, self.expected_by_listeners),
            "speakers": spread(&mut self.heard_by_speakers, self.expected_by_speakers),
        })
    }

    /// Each slot's streams over all members; null without slots.
    pub fn slots_json(&self) -> Value {
        if self.slots.is_empty() {
            return Value::Null;
        }
        self.slots
            .iter()
            .map(|(slot, t)| {
                json!({
                    "slot": slot,
                    "streams": t.streams,
                    "idle": t.idle,
                    "packets": t.packets,
                    "lost": t.lost,
                    "gaps": t.gaps,
                    "speaker_changes": t.speaker_changes,
                    "lost_at_changes": t.lost_at_changes,
                    "quietest_level_dbov": t.quietest_level,
                })
            })
            .collect()
    }
}

/// The sequence number of the packet sent after `sent` others.
pub fn seq(sent: u64) -> u32 {
    u32::try_from(sent).unwrap_or(u32::MAX)
}
