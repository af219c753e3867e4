//! Loss on audio slots, counted exactly against what the server forwarded to each member.
//!
//! With slots, a member hears only the speakers the server puts on its slots, and a speaker
//! may move on and off them; so what a member should have received is not "everything every
//! speaker sent" but what the server wrote on its slots. The member's client records, for
//! each slot, *runs*: packets from one speaker, in the slot's order, whose RTP sequence number
//! and the speaker's own sequence number (in the test payload) advance together. The server
//! numbers a slot's packets without a break across a change of speaker, and writes every
//! packet of the speaker on the slot, so:
//!
//! - every sequence number of the speaker from a run's first to its last was forwarded to the
//!   member: those that arrived on none of its slots are lost, charged to that speaker and that
//!   slot (a sequence number within runs on two slots, which a speaker moved off a slot and back
//!   could make, is charged once, to the narrower run);
//! - the slot's RTP numbers skipped between two runs were written too, but to the speaker
//!   before or the one after, which the member cannot tell: they are the slot's
//!   `lost_at_changes`, charged to no speaker;
//! - a speaker moved off a slot leaves no hole (the next speaker's packets continue the
//!   numbering), so it is never counted as loss.
//!
//! Everything is counted within the window: a speaker's packets count if they were sent while
//! the window was open (its sequence numbers `window.start..window.end`); a change of speaker
//! counts if it happened in the window (the speaker before was still on the slot after the
//! window opened, the one after was on it before the window closed).
//!
//! The last speaker on a slot is taken to have stayed on it until the window closed (nobody
//! replaced them), or until their packets arrived on another of the member's slots: their
//! packets after the last that arrived, up to then, were forwarded and are lost. So a packet
//! still on its way when the count is made (a second after the window) is lost, as it is
//! without slots, and a server that falls behind shows loss rather than sending less.
//!
//! What the member cannot see is not counted: packets before the first that ever arrived on
//! a slot. And a slot left empty is not seen: a speaker taken off a slot that then stays
//! empty counts as lost from then to the window's end, and if put back on the same slot keeps
//! the slot's old numbering, so the slot's RTP numbers jump as they would for a loss (a
//! browser counts them as lost too), unless the packets arrived on another slot meanwhile.
//! The bench's loads never do this: its speakers speak throughout, nobody leaves during the
//! window, and a member's slots only ever fill.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use free4chat_client::media::quieter;
use free4chat_client::{Received, StreamLog};

/// What one member heard from one sender in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heard {
    /// Packets the server forwarded to the member (on any of its slots).
    pub forwarded: u64,
    /// Of those, packets that never arrived.
    pub lost: u64,
}

impl Heard {
    pub fn received(&self) -> u64 {
        self.forwarded - self.lost
    }
}

/// One slot stream's figures in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotStream {
    pub slot: usize,
    /// Packets forwarded on the slot that arrived.
    pub packets: u64,
    /// Packets forwarded on the slot that never arrived, `lost_at_changes` included.
    pub lost: u64,
    /// Holes: maximal runs of consecutive packets lost.
    pub gaps: u64,
    /// Changes of speaker.
    pub speaker_changes: u64,
    /// Packets lost at a change of speaker, charged to no speaker.
    pub lost_at_changes: u64,
    /// The quietest audio level (dBov) of the packets on the slot in or around the window.
    pub quietest_level: Option<i8>,
}

/// What one member heard on its slots in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSlots {
    /// By sender id.
    pub heard: BTreeMap<u64, Heard>,
    /// One per slot stream that had a run (in or out of the window), by slot.
    pub streams: Vec<SlotStream>,
}

impl MemberSlots {
    /// Packets forwarded to the member, and lost, `lost_at_changes` included.
    pub fn forwarded_and_lost(&self) -> (u64, u64) {
        // Saturating: a hole at a change of speaker is read from RTP numbers off the network.
        let sum = |v: &mut dyn Iterator<Item = u64>| v.fold(0u64, u64::saturating_add);
        let at_changes = sum(&mut self.streams.iter().map(|s| s.lost_at_changes));
        let forwarded = sum(&mut self.heard.values().map(|h| h.forwarded));
        let lost = sum(&mut self.heard.values().map(|h| h.lost));
        (
            forwarded.saturating_add(at_changes),
            lost.saturating_add(at_changes),
        )
    }
}

/// One run of a sender, where it stands.
struct Placed {
    stream: usize,
    /// The sequence numbers forwarded in the run, not clipped to the window: what arrived,
    /// and for the last run on a slot, what followed it (see [`extend_last_runs`]).
    first: u32,
    last: u32,
    /// Whether it is the last run on its slot.
    last_on_slot: bool,
}

/// Accounts one member's slots: `slots` are its slot streams' logs, `received` what arrived
/// from each sender on any stream, `window` each sender's sequence numbers sent in the window
/// (none for ids that are not members of the room: their packets are not counted).
pub fn account(
    slots: &[&StreamLog],
    received: &HashMap<u64, Received>,
    window: impl Fn(u64) -> Option<Range<u32>>,
) -> MemberSlots {
    let mut streams: Vec<SlotStream> = slots
        .iter()
        .map(|log| SlotStream {
            slot: log.slot().unwrap_or(usize::MAX),
            ..SlotStream::default()
        })
        .collect();

    // Each sender's runs over every slot.
    let mut by_sender: BTreeMap<u64, Vec<Placed>> = BTreeMap::new();
    for (stream, log) in slots.iter().enumerate() {
        for (i, run) in log.runs.iter().enumerate() {
            let Some(w) = window(run.sender) else {
                continue;
            };
            let (first, last) = (
                run.first_seq.min(run.last_seq),
                run.last_seq.max(run.first_seq),
            );
            if clip(first, last, &w).is_some() {
                let s = &mut streams[stream];
                s.quietest_level = quieter(s.quietest_level, run.quietest_level);
            }
            by_sender.entry(run.sender).or_default().push(Placed {
                stream,
                first,
                last,
                last_on_slot: i + 1 == log.runs.len(),
            });
        }
    }
    for (sender, placed) in &mut by_sender {
        if let Some(w) = window(*sender) {
            extend_last_runs(placed, &w);
        }
    }

    let mut heard = BTreeMap::new();
    let empty = Received::default();
    for (sender, placed) in &by_sender {
        let Some(w) = window(*sender) else {
            continue;
        };
        let got = received.get(sender).unwrap_or(&empty);
        let mut h = Heard::default();
        // The last sequence number lost on each stream, to count holes.
        let mut last_lost: HashMap<usize, u32> = HashMap::new();
        for seq in union(placed, &w) {
            // The narrowest run holding `seq` (there is one: `seq` is in the union).
            let Some(owner) = placed
                .iter()
                .filter(|p| p.first <= seq && seq <= p.last)
                .min_by_key(|p| p.last - p.first)
            else {
                continue;
            };
            let s = &mut streams[owner.stream];
            h.forwarded += 1;
            if got.contains(seq) {
                s.packets += 1;
                continue;
            }
            h.lost += 1;
            s.lost += 1;
            let continues = seq
                .checked_sub(1)
                .is_some_and(|before| last_lost.get(&owner.stream) == Some(&before));
            if !continues {
                s.gaps += 1;
            }
            last_lost.insert(owner.stream, seq);
        }
        if h.forwarded > 0 {
            heard.insert(*sender, h);
        }
    }

    // The changes of speaker on each slot, and what was lost between the runs.
    for (stream, log) in slots.iter().enumerate() {
        for pair in log.runs.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            let (Some(wb), Some(wa)) = (window(before.sender), window(after.sender)) else {
                continue;
            };
            let in_window = before.last_seq >= wb.start && after.first_seq < wa.end;
            if !in_window {
                continue;
            }
            let from = before.rtp_of(before.last_seq);
            let to = after.rtp_of(after.first_seq);
            let hole = to.saturating_sub(from).saturating_sub(1);
            let s = &mut streams[stream];
            s.speaker_changes += 1;
            // Saturating: the numbers come from the network, and a log may hold anything.
            s.lost_at_changes = s.lost_at_changes.saturating_add(hole);
            s.lost = s.lost.saturating_add(hole);
            s.gaps += u64::from(hole > 0);
        }
    }

    MemberSlots { heard, streams }
}

/// Extends the last run on each slot to the end of the window `w`, or to just before the
/// first later packet of the same sender that any other of its runs holds (it was moved to
/// another slot then): what followed the last packet that arrived was forwarded.
fn extend_last_runs(placed: &mut [Placed], w: &Range<u32>) {
    let Some(end) = w.end.checked_sub(1) else {
        return;
    };
    let received: Vec<(u32, u32)> = placed.iter().map(|p| (p.first, p.last)).collect();
    for (i, p) in placed.iter_mut().enumerate() {
        if !p.last_on_slot || p.last >= end {
            continue;
        }
        let after = p.last + 1;
        let elsewhere = received
            .iter()
            .enumerate()
            .filter(|(j, (_, last))| *j != i && *last >= after)
            .map(|(_, (first, _))| (*first).max(after))
            .min();
        let until = elsewhere.map_or(end, |next| end.min(next - 1));
        p.last = p.last.max(until);
    }
}

/// `first..=last` within `w`, as a half-open range; none if they do not meet.
fn clip(first: u32, last: u32, w: &Range<u32>) -> Option<Range<u32>> {
    let start = first.max(w.start);
    let end = (u64::from(last) + 1).min(u64::from(w.end));
    (u64::from(start) < end).then_some(start..end as u32)
}

/// The sequence numbers of the window within any of `placed`, in order, each once.
fn union(placed: &[Placed], w: &Range<u32>) -> impl Iterator<Item = u32> {
    let mut ranges: Vec<Range<u32>> = placed
        .iter()
        .filter_map(|p| clip(p.first, p.last, w))
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u32>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(m) if r.start <= m.end => m.end = m.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged.into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot's log from packets (slot RTP number, sender, sender sequence) in arrival order.
    fn slot_log(slot: usize, packets: &[(u64, u64, u32)]) -> StreamLog {
        let mut log = StreamLog::new(format!("slot-{slot}"));
        for &(rtp, sender, seq) in packets {
            log.record(rtp, sender, seq, Some(-20));
        }
        log
    }

    /// What arrived by sender, from the same packets on every slot.
    fn received_from(logs: &[&[(u64, u64, u32)]]) -> HashMap<u64, Received> {
        let mut received: HashMap<u64, Received> = HashMap::new();
        for packets in logs {
            for &(_, sender, seq) in *packets {
                received.entry(sender).or_default().record(seq);
            }
        }
        received
    }

    /// Packets of `sender` with sequence numbers `seqs`, on a slot whose number is seq + `offset`.
    fn run(sender: u64, offset: u64, seqs: impl IntoIterator<Item = u32>) -> Vec<(u64, u64, u32)> {
        seqs.into_iter()
            .map(|s| (u64::from(s) + offset, sender, s))
            .collect()
    }

    /// Windows opening at each sender's first packet and closing after `sent` of them.
    fn sent(ends: &[(u64, u32)]) -> impl Fn(u64) -> Option<Range<u32>> + '_ {
        |sender| {
            ends.iter()
                .find(|(s, _)| *s == sender)
                .map(|(_, end)| 0..*end)
        }
    }

    #[test]
    fn a_steady_speaker_loses_exactly_what_did_not_arrive() {
        let packets: Vec<_> = run(7, 1000, (0..100).filter(|s| ![10, 11, 50].contains(s)));
        let log = slot_log(0, &packets);
        let received = received_from(&[&packets[..]]);
        let m = account(&[&log], &received, sent(&[(7, 100)]));
        assert_eq!(
            m.heard[&7],
            Heard {
                forwarded: 100,
                lost: 3
            }
        );
        let s = m.streams[0];
        assert_eq!(
            (s.packets, s.lost, s.gaps, s.speaker_changes),
            (97, 3, 2, 0)
        );
        assert_eq!(m.forwarded_and_lost(), (100, 3));
    }

    #[test]
    fn a_speaker_moved_off_a_slot_is_not_loss() {
        // Speaker 7 holds slot 0 for its packets 0..50 and goes on sending to 300; speaker 9
        // takes the slot at its packet 200, the slot's numbering going on: 7's packets 50..
        // were never sent to this member.
        let mut packets = run(7, 1000, 0..50);
        packets.extend(run(9, 1050 - 200, 200..260));
        let log = slot_log(0, &packets);
        let received = received_from(&[&packets[..]]);
        let m = account(&[&log], &received, sent(&[(7, 300), (9, 260)]));
        assert_eq!(
            m.heard[&7],
            Heard {
                forwarded: 50,
                lost: 0
            }
        );
        assert_eq!(
            m.heard[&9],
            Heard {
                forwarded: 60,
                lost: 0
            }
        );
        let s = m.streams[0];
        assert_eq!((s.lost, s.gaps, s.speaker_changes), (0, 0, 1));
    }

    #[test]
    fn a_loss_at_a_change_of_speaker_is_the_slots_and_no_speakers() {
        // The slot's numbers 1050 and 1051 were written (to 7 or to 9) and never arrived.
        let mut packets = run(7, 1000, 0..50);
        packets.extend(run(9, 1052 - 200, 200..260));
        let log = slot_log(0, &packets);
        let received = received_from(&[&packets[..]]);
        let m = account(&[&log], &received, sent(&[(7, 300), (9, 260)]));
        assert_eq!(m.heard[&7].lost + m.heard[&9].lost, 0);
        let s = m.streams[0];
        assert_eq!((s.lost, s.lost_at_changes, s.gaps), (2, 2, 1));
        assert_eq!(m.forwarded_and_lost(), (50 + 60 + 2, 2));
    }

    #[test]
    fn a_speaker_moved_to_another_slot_and_back_loses_nothing_in_between() {
        // 7 on slot 0 (packets 0..30), then on slot 1 (30..60), then on slot 0 again (60..90)
        // with the slot's old numbering: slot 0 jumps, but the packets arrived on slot 1.
        let first = run(7, 1000, 0..30);
        let moved = run(7, 5000, 30..60);
        let back = run(7, 1000, 60..90);
        let slot0: Vec<_> = first.iter().chain(&back).copied().collect();
        let logs = [slot_log(0, &slot0), slot_log(1, &moved)];
        let received = received_from(&[&slot0[..], &moved[..]]);
        let m = account(&[&logs[0], &logs[1]], &received, sent(&[(7, 90)]));
        assert_eq!(
            m.heard[&7],
            Heard {
                forwarded: 90,
                lost: 0
            }
        );
        assert_eq!(m.streams[0].packets, 60);
        assert_eq!(m.streams[1].packets, 30, "charged to the narrower run");
    }

    #[test]
    fn a_slots_last_speaker_loses_what_had_not_arrived_when_counted() {
        // 7 sent 0..100 in the window; the member had 0..80 when the count was made (the rest
        // late or lost): 7 stayed on the slot, so the 20 were forwarded and are lost.
        let packets = run(7, 0, 0..80);
        let log = slot_log(0, &packets);
        let received = received_from(&[&packets[..]]);
        let m = account(&[&log], &received, sent(&[(7, 100)]));
        assert_eq!(
            m.heard[&7],
            Heard {
                forwarded: 100,
                lost: 20
            }
        );
        assert_eq!((m.streams[0].lost, m.streams[0].gaps), (20, 1));
    }

    #[test]
    fn a_speaker_moved_to_another_slot_loses_what_fell_between_them() {
        // 7 on slot 0 up to 49, on slot 1 from 53: 50..53 were forwarded on one or the other.
        let before = run(7, 1000, 0..50);
        let after = run(7, 4000, 53..100);
        let logs = [slot_log(0, &before), slot_log(1, &after)];
        let received = received_from(&[&before[..], &after[..]]);
        let m = account(&[&logs[0], &logs[1]], &received, sent(&[(7, 100)]));
        assert_eq!(
            m.heard[&7],
            Heard {
                forwarded: 100,
                lost: 3
            }
        );
        assert_eq!(m.streams[0].lost, 3, "charged to the slot it left");
    }

    #[test]
    fn only_the_window_counts() {
        let packets: Vec<_> = run(7, 0, (0..100).filter(|s| ![5, 60].contains(s)));
        let log = slot_log(0, &packets);
        let received = received_from(&[&packets[..]]);
        // Sent in the window: 50..90; 5 and what followed are outside it.
        let m = account(&[&log], &received, |_| Some(50..90));
        assert_eq!(
            m.heard[&7],
            Heard {
                forwarded: 40,
                lost: 1
            }
        );
        // A sender the room does not know is not counted.
        let m = account(&[&log], &received, |_| None);
        assert!(m.heard.is_empty());
        assert_eq!(m.streams[0].packets, 0);
    }

    #[test]
    fn changes_of_speaker_outside_the_window_are_not_counted() {
        let mut packets = run(7, 1000, 0..50);
        packets.extend(run(9, 1052 - 200, 200..260));
        let log = slot_log(0, &packets);
        let received = received_from(&[&packets[..]]);
        // The window opened after 7 left the slot.
        let m = account(&[&log], &received, |s| {
            Some(if s == 7 { 60..70 } else { 230..240 })
        });
        let s = m.streams[0];
        assert_eq!((s.speaker_changes, s.lost_at_changes, s.lost), (0, 0, 0));
        assert_eq!(m.heard[&9].forwarded, 10);
        assert!(!m.heard.contains_key(&7));
    }

    #[test]
    fn any_logs_and_windows_are_accounted_without_panicking() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300 {
            let mut logs = Vec::new();
            let mut received: HashMap<u64, Received> = HashMap::new();
            for slot in 0..(next() % 4) as usize {
                let mut log = StreamLog::new(format!("slot-{slot}"));
                for _ in 0..next() % 200 {
                    let sender = next() % 4;
                    let seq = match next() % 3 {
                        0 => next() as u32,
                        _ => (next() % 300) as u32,
                    };
                    let rtp = match next() % 3 {
                        0 => next(),
                        _ => next() % 400,
                    };
                    log.record(rtp, sender, seq, Some(next() as i8));
                    if next() % 4 != 0 {
                        received.entry(sender).or_default().record(seq);
                    }
                }
                logs.push(log);
            }
            let refs: Vec<&StreamLog> = logs.iter().collect();
            let (a, b) = ((next() % 350) as u32, (next() % 350) as u32);
            let m = account(&refs, &received, |s| (s != 3).then_some(a..b));
            for h in m.heard.values() {
                assert!(h.lost <= h.forwarded);
                assert!(h.forwarded <= u64::from(b.saturating_sub(a)));
            }
            let (forwarded, lost) = m.forwarded_and_lost();
            assert!(lost <= forwarded);
            let packets: u64 = m.streams.iter().map(|s| s.packets).sum();
            let heard: u64 = m.heard.values().map(Heard::received).sum();
            assert_eq!(packets, heard, "every packet heard is on one slot");
        }
    }
}
