//! Which simulcast layer of a video track one viewer is sent: the highest layer that flows
//! under the cap the viewer set (the size of its tile), switched only where the viewer's
//! decoder can follow — at a keyframe of the new layer.
//!
//! The policy is one [`LayerSwitch`] per down-track, fed with each packet of the track (of any
//! layer) and told what the packet carries; it answers whether to forward the packet, whether
//! forwarding switched layers with it, and which layer's keyframe to ask the publisher for.
//!
//! - Before the viewer says anything, the cap is [`VideoQuality::High`].
//! - The viewer's bandwidth allocation ([`super::allocation`]) lowers the ceiling further:
//!   the layer it gave the track, or nothing (paused for this viewer). Until the first
//!   allocation that covers the track, the cap alone decides.
//! - [`VideoQuality::Off`]: nothing is forwarded.
//! - The chosen layer is the highest flowing layer at or under the cap; if none under the cap
//!   flows, the lowest that flows (something to show beats nothing). A track with one layer is
//!   forwarded whatever the cap (unless off), from its next packet, as before simulcast.
//! - Up or down, a switch takes effect at the first keyframe of the new layer, asked for at
//!   once and again every [`ASK_INTERVAL`] while waited for; until then the current layer goes
//!   on. A layer that stopped flowing (paused, or silent for a while: see the up-track) is left
//!   the same way, for the best layer that still flows.

use std::time::{Duration, Instant};

use crate::api::VideoQuality;

/// The most layers a track may have: rids beyond these are not forwarded.
pub const MAX_LAYERS: usize = 4;
/// How often a keyframe of the layer waited for is asked again (the publisher's own throttle
/// also applies).
pub const ASK_INTERVAL: Duration = Duration::from_millis(500);

/// What one packet of a video track tells the switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerPacket {
    /// The packet's layer: its index, lowest resolution first.
    pub layer: u8,
    /// Whether it starts a keyframe.
    pub keyframe: bool,
    /// How many layers the track has (0 or 1: not simulcast).
    pub layers: u8,
    /// Which layers flow now, a bit per layer index.
    pub flowing: u8,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Forward it to the viewer.
    pub forward: bool,
    /// It is the first packet of a layer the viewer was not sent just before: the outgoing
    /// stream continues across the change (sequence numbers, timestamps, picture ids).
    pub switched: bool,
    /// Ask the publisher for a keyframe of this layer.
    pub ask_keyframe: Option<u8>,
}

/// One viewer's layer of one video track.
#[derive(Debug, Clone, Default)]
pub struct LayerSwitch {
    cap: VideoQuality,
    /// The layer the viewer's bandwidth allocation gave the track (`Some(None)`: paused);
    /// `None` until it first covers the track.
    allocated: Option<Option<u8>>,
    /// The layer forwarded now.
    current: Option<u8>,
    /// The layer to move to at its next keyframe.
    target: Option<u8>,
    /// The last keyframe asked for, and when.
    asked: Option<(u8, Instant)>,
}

impl LayerSwitch {
    /// Sets the viewer's cap; it applies from the next packet.
    pub fn set_quality(&mut self, cap: VideoQuality) {
        self.cap = cap;
    }

    pub fn quality(&self) -> VideoQuality {
        self.cap
    }

    /// Sets the layer the viewer's bandwidth allocation gives the track (`None`: paused for
    /// this viewer); it applies from the next packet.
    pub fn set_allocated(&mut self, layer: Option<u8>) {
        self.allocated = Some(layer);
    }

    /// The layer the allocation last gave, once it covers the track.
    pub fn allocated(&self) -> Option<Option<u8>> {
        self.allocated
    }

    /// The layer forwarded now, if any.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// The layer a viewer asking for more should get a keyframe of: the one waited for, else
    /// the one forwarded.
    pub fn keyframe_layer(&self) -> Option<u8> {
        self.target.or(self.current)
    }

    /// The layer `cap` chooses among `layers` layers of which `flowing` flow.
    pub fn choose(cap: VideoQuality, layers: u8, flowing: u8) -> Option<u8> {
        let ceiling = match cap {
            VideoQuality::Off => return None,
            VideoQuality::Low => 0,
            VideoQuality::Medium => 1,
            VideoQuality::High => u8::MAX,
        };
        if layers <= 1 {
            return Some(0);
        }
        let count = layers.min(MAX_LAYERS as u8);
        let flows = |l: u8| flowing & (1 << l) != 0;
        let under = (0..count).rev().find(|&l| l <= ceiling && flows(l));
        under.or_else(|| (0..count).find(|&l| flows(l)))
    }

    /// The layer chosen among `layers` layers of which `flowing` flow, under both the cap and
    /// the allocation.
    fn want(&self, layers: u8, flowing: u8) -> Option<u8> {
        let cap = match self.allocated {
            None => self.cap,
            Some(None) => VideoQuality::Off,
            Some(Some(layer)) => self.cap.min(match layer {
                0 => VideoQuality::Low,
                1 => VideoQuality::Medium,
                _ => VideoQuality::High,
            }),
        };
        LayerSwitch::choose(cap, layers, flowing)
    }

    /// Decides about one packet of the track at `now`.
    pub fn on_packet(&mut self, p: LayerPacket, now: Instant) -> Decision {
        let Some(want) = self.want(p.layers, p.flowing) else {
            self.current = None;
            self.target = None;
            return Decision::default();
        };
        if p.layers <= 1 {
            // One layer: no keyframe to wait for; a viewer starting over wants one soon.
            let started = self.current.is_none();
            self.current = Some(p.layer);
            self.target = None;
            return Decision {
                forward: true,
                switched: started,
                ask_keyframe: started.then_some(p.layer).filter(|_| !p.keyframe),
            };
        }
        self.target = (self.current != Some(want)).then_some(want);
        if self.target == Some(p.layer) && p.keyframe {
            self.current = Some(p.layer);
            self.target = None;
            return Decision {
                forward: true,
                switched: true,
                ask_keyframe: None,
            };
        }
        let ask_keyframe = self.target.filter(|&t| match self.asked {
            Some((layer, at)) => layer != t || now.saturating_duration_since(at) >= ASK_INTERVAL,
            None => true,
        });
        if let Some(t) = ask_keyframe {
            self.asked = Some((t, now));
        }
        Decision {
            forward: self.current == Some(p.layer),
            switched: false,
            ask_keyframe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u8 = 0b111;

    fn packet(layer: u8, keyframe: bool, flowing: u8) -> LayerPacket {
        LayerPacket {
            layer,
            keyframe,
            layers: 3,
            flowing,
        }
    }

    #[test]
    fn the_cap_chooses_the_highest_flowing_layer_under_it() {
        use VideoQuality::*;
        assert_eq!(LayerSwitch::choose(High, 3, ALL), Some(2));
        assert_eq!(LayerSwitch::choose(Medium, 3, ALL), Some(1));
        assert_eq!(LayerSwitch::choose(Low, 3, ALL), Some(0));
        assert_eq!(LayerSwitch::choose(Off, 3, ALL), None);
        assert_eq!(
            LayerSwitch::choose(High, 3, 0b011),
            Some(1),
            "the full layer stopped"
        );
        assert_eq!(LayerSwitch::choose(Medium, 3, 0b101), Some(0));
        assert_eq!(
            LayerSwitch::choose(Low, 3, 0b100),
            Some(2),
            "none under the cap flows: the lowest that does"
        );
        assert_eq!(LayerSwitch::choose(High, 3, 0), None, "nothing flows");
        assert_eq!(LayerSwitch::choose(Low, 1, 0), Some(0), "one layer");
        assert_eq!(LayerSwitch::choose(Off, 1, 1), None);
        assert_eq!(LayerSwitch::choose(Medium, 2, 0b11), Some(1));
    }

    #[test]
    fn the_first_layer_starts_at_its_keyframe_and_asks_for_one() {
        let t = Instant::now();
        let mut s = LayerSwitch::default();
        let d = s.on_packet(packet(2, false, ALL), t);
        assert_eq!((d.forward, d.ask_keyframe), (false, Some(2)));
        assert!(
            !s.on_packet(packet(0, true, ALL), t).forward,
            "not the chosen layer"
        );
        let d = s.on_packet(packet(2, false, ALL), t + Duration::from_millis(100));
        assert_eq!(d.ask_keyframe, None, "asked again only after the interval");
        let d = s.on_packet(packet(2, false, ALL), t + ASK_INTERVAL);
        assert_eq!(d.ask_keyframe, Some(2));
        let d = s.on_packet(packet(2, true, ALL), t + ASK_INTERVAL);
        assert_eq!((d.forward, d.switched), (true, true));
        let d = s.on_packet(packet(2, false, ALL), t + ASK_INTERVAL);
        assert_eq!((d.forward, d.switched, d.ask_keyframe), (true, false, None));
        assert_eq!(s.current(), Some(2));
    }

    #[test]
    fn a_lower_cap_is_decided_at_once_and_taken_at_the_lower_keyframe() {
        let t = Instant::now();
        let mut s = LayerSwitch::default();
        s.on_packet(packet(2, true, ALL), t);
        s.set_quality(VideoQuality::Low);
        let d = s.on_packet(packet(2, false, ALL), t);
        assert_eq!(
            (d.forward, d.ask_keyframe),
            (true, Some(0)),
            "the full layer goes on"
        );
        assert_eq!(s.keyframe_layer(), Some(0));
        assert!(!s.on_packet(packet(0, false, ALL), t).forward);
        assert!(!s.on_packet(packet(1, true, ALL), t).forward);
        let d = s.on_packet(packet(0, true, ALL), t);
        assert_eq!((d.forward, d.switched), (true, true));
        assert!(!s.on_packet(packet(2, true, ALL), t).forward);
        assert_eq!(s.current(), Some(0));
    }

    #[test]
    fn a_stopped_layer_is_left_for_the_best_that_still_flows() {
        let t = Instant::now();
        let mut s = LayerSwitch::default();
        s.on_packet(packet(2, true, ALL), t);
        let d = s.on_packet(packet(1, false, 0b011), t);
        assert_eq!((d.forward, d.ask_keyframe), (false, Some(1)));
        assert!(s.on_packet(packet(1, true, 0b011), t).switched);
        // The full layer comes back: up again at its keyframe.
        let d = s.on_packet(packet(2, false, ALL), t);
        assert_eq!((d.forward, d.ask_keyframe), (false, Some(2)));
        assert!(s.on_packet(packet(1, false, ALL), t).forward);
        assert!(s.on_packet(packet(2, true, ALL), t).switched);
    }

    #[test]
    fn off_forwards_nothing_and_on_again_starts_over() {
        let t = Instant::now();
        let mut s = LayerSwitch::default();
        s.on_packet(packet(2, true, ALL), t);
        s.set_quality(VideoQuality::Off);
        for layer in 0..3 {
            assert_eq!(
                s.on_packet(packet(layer, true, ALL), t),
                Decision::default()
            );
        }
        assert_eq!(s.current(), None);
        s.set_quality(VideoQuality::Medium);
        assert_eq!(s.on_packet(packet(1, false, ALL), t).ask_keyframe, Some(1));
        assert!(s.on_packet(packet(1, true, ALL), t).switched);
    }

    #[test]
    fn a_single_layer_track_is_forwarded_whatever_the_cap() {
        let t = Instant::now();
        let one = |keyframe| LayerPacket {
            layer: 0,
            keyframe,
            layers: 1,
            flowing: 1,
        };
        let mut s = LayerSwitch::default();
        s.set_quality(VideoQuality::Low);
        let d = s.on_packet(one(false), t);
        assert_eq!(
            (d.forward, d.switched, d.ask_keyframe),
            (true, true, Some(0))
        );
        assert_eq!(s.on_packet(one(false), t).ask_keyframe, None);
        s.set_quality(VideoQuality::Off);
        assert!(!s.on_packet(one(true), t).forward);
    }

    #[test]
    fn any_packets_caps_and_times_never_panic_and_only_the_current_layer_is_forwarded() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let start = Instant::now();
        let caps = [
            VideoQuality::Off,
            VideoQuality::Low,
            VideoQuality::Medium,
            VideoQuality::High,
        ];
        let mut s = LayerSwitch::default();
        for i in 0..50_000u64 {
            if next() % 50 == 0 {
                s.set_quality(caps[(next() % 4) as usize]);
            }
            let p = LayerPacket {
                layer: next() as u8,
                keyframe: next() % 3 == 0,
                layers: next() as u8,
                flowing: next() as u8,
            };
            // Time may even stand still or go back.
            let t = start + Duration::from_millis(i.saturating_sub(next() % 40));
            let d = s.on_packet(p, t);
            if d.forward {
                assert_eq!(s.current(), Some(p.layer), "{p:?}");
                assert_ne!(s.quality(), VideoQuality::Off);
            }
            if let Some(l) = d.ask_keyframe {
                assert!(usize::from(l) < MAX_LAYERS.max(usize::from(p.layer) + 1));
            }
        }
    }
}
