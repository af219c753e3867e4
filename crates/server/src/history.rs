//! The node's last hour, for the admin console's charts: every [`SAMPLE_EVERY`] a sample of
//! its rooms, members and media packets, in a ring of [`SAMPLES`] (so the memory it takes is
//! fixed). The packets come from the figures the media workers publish when asked, as for a
//! scrape: the packet path does nothing for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

use crate::rooms::{MediaWorkers, RoomDirectory};

/// How often a sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// An hour of samples.
pub const SAMPLES: usize = 360;

/// The node at one moment, and its media over the interval before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Unix time, in seconds.
    pub t: u64,
    pub rooms: usize,
    pub members: usize,
    /// Datagrams (and ICE-TCP frames) the media workers received and sent per second, over
    /// the interval since the previous sample (0 for the first).
    pub packets_in: f64,
    pub packets_out: f64,
}

/// The ring of samples, and the totals the next rates are taken from.
#[derive(Debug, Default)]
pub struct History {
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    samples: VecDeque<Sample>,
    /// The media totals (in, out) at the last sample, and its time in seconds (fractional).
    last: Option<(u64, u64, f64)>,
}

impl History {
    /// Takes one reading: the counts now, and the media totals since start.
    pub fn record(
        &self,
        now: SystemTime,
        (rooms, members): (usize, usize),
        (d_in, d_out): (u64, u64),
    ) {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        let (packets_in, packets_out) = match ring.last {
            Some((i, o, at)) if secs > at => {
                let span = secs - at;
                (
                    d_in.saturating_sub(i) as f64 / span,
                    d_out.saturating_sub(o) as f64 / span,
                )
            }
            _ => (0.0, 0.0),
        };
        ring.last = Some((d_in, d_out, secs));
        if ring.samples.len() == SAMPLES {
            ring.samples.pop_front();
        }
        ring.samples.push_back(Sample {
            t: secs as u64,
            rooms,
            members,
            packets_in,
            packets_out,
        });
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.ring
            .lock()
            .map(|r| r.samples.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Takes a sample at once and then every [`SAMPLE_EVERY`], until `stop`.
pub fn spawn(
    history: Arc<History>,
    rooms: Arc<dyn RoomDirectory>,
    media: Arc<MediaWorkers>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            // This node's rooms only, as for a scrape.
            let local = rooms.local_rooms().await;
            let members = local.iter().map(|r| r.members).sum();
            let traffic = media.stats().await.traffic;
            history.record(
                SystemTime::now(),
                (local.len(), members),
                (traffic.datagrams_in, traffic.datagrams_out),
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_hour_and_rates_packets_over_each_interval() {
        let h = History::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        h.record(t0, (1, 2), (100, 200));
        h.record(t0 + SAMPLE_EVERY, (1, 3), (600, 1200));
        let s = h.samples();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].packets_in, s[0].packets_out), (0.0, 0.0));
        assert_eq!((s[1].packets_in, s[1].packets_out), (50.0, 100.0));
        assert_eq!((s[1].rooms, s[1].members, s[1].t), (1, 3, 1_000_010));
        for i in 0..SAMPLES as u64 + 5 {
            h.record(t0 + SAMPLE_EVERY * (i as u32 + 2), (0, 0), (600, 1200));
        }
        let s = h.samples();
        assert_eq!(s.len(), SAMPLES, "bounded");
        assert!(s.windows(2).all(|w| w[0].t < w[1].t), "oldest first");
    }
}
