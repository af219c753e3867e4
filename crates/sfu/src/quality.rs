//! Each participant's connection quality, from what str0m reports of its session once a
//! second (its stats events: the session's bytes and chosen path, and per stream the RTCP
//! figures): loss each way, jitter, round-trip time, bitrate each way, and the path.
//!
//! The core keeps the latest figures per participant; the shell reads them all into a
//! snapshot when asked ([`crate::Sfu::quality`]), so nothing is sent anywhere per report.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use str0m::media::Mid;
use str0m::net::Protocol;
use str0m::stats::{MediaEgressStats, MediaIngressStats, PeerStats};

use free4chat_ids::{MemberId, RoomId};

/// How often str0m reports a session's figures.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// A figure not reported again for this long is stale and dropped (a stream that stopped).
const STALE: Duration = Duration::from_secs(10);
/// The most streams sent to one member whose reports are followed (slots and tracks).
const MAX_EGRESS: usize = 16;
/// A member whose media has not connected this long after joining is shown as such; sooner,
/// they are still connecting.
pub const UNCONNECTED_AFTER: Duration = Duration::from_secs(5);

/// A figure and when it was last reported.
#[derive(Debug, Clone, Copy)]
struct Reading<T> {
    value: T,
    at: Instant,
}

fn fresh<T: Copy>(r: Option<Reading<T>>, now: Instant) -> Option<T> {
    r.filter(|r| now.saturating_duration_since(r.at) <= STALE)
        .map(|r| r.value)
}

/// The latest figures of one participant's session.
#[derive(Debug, Clone, Default)]
pub struct QualityTracker {
    /// Fraction of the member's packets lost on the way to us (our receiver reports).
    loss_in: Option<Reading<f32>>,
    /// Fraction of our packets lost on the way to the member (their receiver reports).
    loss_out: Option<Reading<f32>>,
    /// Interarrival jitter of the member's audio, as we measure it.
    jitter: Option<Reading<Duration>>,
    /// Round-trip time, from the member's receiver reports on what we send them.
    rtt: Option<Reading<Duration>>,
    /// The last session byte counts (received, sent) and when.
    bytes: Option<(Instant, u64, u64)>,
    bitrate_in: u64,
    bitrate_out: u64,
    path: Option<(Protocol, SocketAddr)>,
    /// Per stream we send them: the highest sequence number and packets lost they last
    /// reported (cumulative), to take the loss between two reports.
    egress: Vec<(Mid, u64, u64)>,
}

impl QualityTracker {
    /// The session's figures: bytes each way (for the bitrates) and the path in use.
    pub fn on_peer(&mut self, s: &PeerStats) {
        if let Some((at, rx, tx)) = self.bytes {
            let secs = s.timestamp.saturating_duration_since(at).as_secs_f64();
            if secs > 0.0 {
                let rate =
                    |now: u64, then: u64| (now.saturating_sub(then) as f64 * 8.0 / secs) as u64;
                self.bitrate_in = rate(s.peer_bytes_rx, rx);
                self.bitrate_out = rate(s.peer_bytes_tx, tx);
            }
        }
        self.bytes = Some((s.timestamp, s.peer_bytes_rx, s.peer_bytes_tx));
        if let Some(pair) = &s.selected_candidate_pair {
            self.path = Some((pair.protocol, pair.remote.addr));
        }
    }

    /// A stream the member sends us; `clock_rate` is its RTP clock (jitter is in its units),
    /// `None` for a stream whose jitter is not wanted (video).
    pub fn on_ingress(&mut self, s: &MediaIngressStats, clock_rate: Option<u32>) {
        if let Some(loss) = s.loss {
            self.loss_in = Some(Reading {
                value: loss,
                at: s.timestamp,
            });
        }
        if let Some(rate) = clock_rate.filter(|r| *r > 0) {
            let value = Duration::from_secs_f64(f64::from(s.jitter) / f64::from(rate));
            self.jitter = Some(Reading {
                value,
                at: s.timestamp,
            });
        }
    }

    /// A stream we send the member: their receiver reports give loss and round-trip time.
    /// Several streams: the worst figure of the last reports stands.
    pub fn on_egress(&mut self, s: &MediaEgressStats) {
        // str0m's own average needs two reports within its interval; the cumulative counts of
        // the last report give the loss since the one before, however far apart.
        let mut loss = s.loss;
        if let Some(r) = &s.remote {
            let (seq, lost) = (*r.maximum_sequence_number, r.packets_lost);
            let full = self.egress.len() >= MAX_EGRESS;
            match self.egress.iter_mut().find(|(m, ..)| *m == s.mid) {
                Some(e) => {
                    let expected = seq.saturating_sub(e.1);
                    if expected > 0 {
                        let fraction = lost.saturating_sub(e.2) as f32 / expected as f32;
                        loss = Some(fraction.min(1.0));
                        (e.1, e.2) = (seq, lost);
                    }
                }
                None if !full => self.egress.push((s.mid, seq, lost)),
                None => {}
            }
        }
        if let Some(loss) = loss {
            self.loss_out = Some(worse(self.loss_out, loss, s.timestamp));
        }
        if let Some(rtt) = s.rtt {
            self.rtt = Some(worse(self.rtt, rtt, s.timestamp));
        }
    }

    /// The figures as they stand at `now`.
    pub fn read(&self, now: Instant) -> Figures {
        Figures {
            loss_in: fresh(self.loss_in, now),
            loss_out: fresh(self.loss_out, now),
            jitter: fresh(self.jitter, now),
            rtt: fresh(self.rtt, now),
            bitrate_in: self.bitrate_in,
            bitrate_out: self.bitrate_out,
            path: self.path.map(|(protocol, remote)| Path {
                protocol: match protocol {
                    Protocol::Udp => "udp",
                    _ => "tcp",
                },
                remote,
            }),
        }
    }
}

/// Of a reading from the same round of reports (within half the interval) and a new figure,
/// the worse; an older reading is replaced.
fn worse<T: PartialOrd + Copy>(old: Option<Reading<T>>, value: T, at: Instant) -> Reading<T> {
    match old {
        Some(o) if at.saturating_duration_since(o.at) < STATS_INTERVAL / 2 && o.value > value => o,
        _ => Reading { value, at },
    }
}

/// The path a member's media takes: over UDP or TCP, from which remote address (a TURN
/// relay's, when relayed: the signalling layer knows its relays' addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Path {
    pub protocol: &'static str,
    pub remote: SocketAddr,
}

/// A participant's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    pub loss_in: Option<f32>,
    pub loss_out: Option<f32>,
    #[serde(serialize_with = "as_millis")]
    pub jitter: Option<Duration>,
    #[serde(serialize_with = "as_millis")]
    pub rtt: Option<Duration>,
    /// Bits per second, all the session's datagrams counted.
    pub bitrate_in: u64,
    pub bitrate_out: u64,
    pub path: Option<Path>,
}

fn as_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
        None => s.serialize_none(),
    }
}

/// How a member's connection looks from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Good,
    Fair,
    Poor,
    /// Their media has not connected, [`UNCONNECTED_AFTER`] after joining.
    Unconnected,
}

impl Figures {
    /// Good, fair or poor: the worst of loss (either way), round-trip time and jitter against
    /// the bounds where voice is known to suffer (about 3 % loss, 250 ms, 30 ms) and to break
    /// up (10 %, 500 ms, 80 ms). A figure not reported does not count.
    pub fn level(&self) -> Level {
        let loss = self
            .loss_in
            .unwrap_or(0.0)
            .max(self.loss_out.unwrap_or(0.0));
        let rtt = self.rtt.unwrap_or_default();
        let jitter = self.jitter.unwrap_or_default();
        if loss >= 0.10 || rtt >= Duration::from_millis(500) || jitter >= Duration::from_millis(80)
        {
            Level::Poor
        } else if loss >= 0.03
            || rtt >= Duration::from_millis(250)
            || jitter >= Duration::from_millis(30)
        {
            Level::Fair
        } else {
            Level::Good
        }
    }
}

/// One member's quality, as the core reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemberQuality {
    pub member: MemberId,
    pub room: RoomId,
    /// Their media (ICE and DTLS) has connected.
    pub connected: bool,
    /// How long ago the session was made.
    #[serde(skip)]
    pub age: Duration,
    #[serde(flatten)]
    pub figures: Figures,
}

impl MemberQuality {
    /// Their level, or `None` while their media is still connecting.
    pub fn level(&self) -> Option<Level> {
        if self.connected {
            Some(self.figures.level())
        } else if self.age >= UNCONNECTED_AFTER {
            Some(Level::Unconnected)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_figure_decides_the_level() {
        let mut f = Figures::default();
        assert_eq!(f.level(), Level::Good);
        f.loss_out = Some(0.05);
        assert_eq!(f.level(), Level::Fair);
        f.rtt = Some(Duration::from_millis(600));
        assert_eq!(f.level(), Level::Poor);
        let f = Figures {
            jitter: Some(Duration::from_millis(40)),
            ..Figures::default()
        };
        assert_eq!(f.level(), Level::Fair);
    }

    #[test]
    fn a_member_not_connected_is_connecting_at_first_then_unconnected() {
        let mut q = MemberQuality {
            member: MemberId(1),
            room: RoomId(1),
            connected: false,
            age: Duration::from_secs(1),
            figures: Figures::default(),
        };
        assert_eq!(q.level(), None);
        q.age = UNCONNECTED_AFTER;
        assert_eq!(q.level(), Some(Level::Unconnected));
        q.connected = true;
        assert_eq!(q.level(), Some(Level::Good));
    }

    #[test]
    fn figures_read_as_json_with_times_in_milliseconds() {
        let f = Figures {
            rtt: Some(Duration::from_millis(25)),
            loss_in: Some(0.5),
            ..Figures::default()
        };
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(json["rtt"], 25.0);
        assert_eq!(json["loss_in"], 0.5);
        assert!(json["jitter"].is_null());
    }
}
