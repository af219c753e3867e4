//! How one viewer's bandwidth is shared among the video tiles it shows: which simulcast layer of
//! each tile's track it is sent, and what its bandwidth estimator should probe for.
//!
//! The budget is the viewer's send-side estimate (TWCC) less the audio it receives, reserved
//! first: a word matters more than a picture. The tiles are served in order of importance
//! ([`Priority`]), each within the cap the viewer's client asked for from the tile's size:
//!
//! 1. every tile, in turn, is given the lowest layer it may have if that fits: a picture for as
//!    many tiles as possible before a sharper one for any; a tile whose lowest layer does not
//!    fit gets nothing (it is paused for this viewer), and the next tiles still get theirs;
//! 2. then the tiles are raised one step at a time, in turn, round after round, while the budget
//!    allows: no tile takes its high layer while a tile as important waits for its medium one.
//!
//! Hysteresis keeps a choice from flapping as the estimate (or a publisher's bitrate) wobbles:
//! a layer a tile does not hold is taken only with headroom ([`UPGRADE_PERCENT`]), one it holds
//! (or one below it) is kept while it fits at all ([`HOLD_PERCENT`]).
//!
//! The result also says what to probe for (`rtc.bwe().set_bitrate(minimum, desired)`): the
//! estimate at which the next step up the ladder would be taken, and the estimate at which
//! every tile would have the best layer its cap allows.
//!
//! Sans-I/O and deterministic; run when the estimate, the tiles, the caps or a publisher's
//! bitrates change, not per packet. Its buffers are reused from one run to the next.

use crate::api::VideoQuality;

/// The estimate assumed until the first one arrives (bits/s): what almost any connection
/// carries, enough for the audio and a few tiles' low layers (or one medium), and what the
/// estimator should be started from so that both agree. The first estimate corrects it within
/// a second or two.
pub const INITIAL_ESTIMATE: u64 = 1_000_000;

/// What each voice a viewer is sent (an audio slot with a speaker on it) is reserved (bits/s):
/// Opus voice (about 32 kbit/s) with its packets' headers is nearer 50, but a voice is silent
/// much of the time (DTX) and voices rarely all speak at once; three voices' 120 kbit/s covers
/// two speaking together.
pub const AUDIO_PER_SLOT: u64 = 40_000;

/// A layer a tile does not hold is taken only when this share of its bitrate fits (per cent):
/// 10 % headroom, so that the estimate (or the layer's bitrate) may move by about 9 % either way
/// without moving the tile, and an upgrade is not undone by the next wobble.
pub const UPGRADE_PERCENT: u64 = 110;

/// A layer a tile holds, or one below it, is kept while this share of its bitrate fits: all of
/// it. The estimate is what the path carries now; sending more builds a queue and the estimate
/// falls further, so what is allocated never exceeds the budget.
pub const HOLD_PERCENT: u64 = 100;

/// The most important tile that holds a picture keeps its lowest layer while this share of it
/// fits (per cent). Pausing the viewer's last picture stops the media its estimator measures
/// the link by: through a link narrowed to 300 kbit/s, measured, the estimate then sank to
/// 100-180 kbit/s and stayed there for 30 s after the link widened again, so nothing was ever
/// resumed. Kept, the lowest layer goes on feeding it (LiveKit, likewise, does not pause video
/// for bandwidth unless told to). Other tiles are paused as before.
pub const KEEP_LAST_PERCENT: u64 = 50;

/// A simulcast layer, lowest first (rids "q", "h", "f"). A track sent without simulcast has one
/// layer, given as `Low`, so that any cap but `Off` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Low,
    Medium,
    High,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Low, Layer::Medium, Layer::High];

    /// Its place in a per-layer array such as [`Tile::bitrates`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The next layer up, if any.
    pub fn up(self) -> Option<Layer> {
        match self {
            Layer::Low => Some(Layer::Medium),
            Layer::Medium => Some(Layer::High),
            Layer::High => None,
        }
    }
}

/// The highest layer a viewer wants of a tile, which its client asks for from the tile's size:
/// the core's [`VideoQuality`] (off: not shown, nothing is sent; low, medium, high).
pub type Cap = VideoQuality;

impl VideoQuality {
    /// The highest layer allowed, `None` for `Off`.
    pub fn highest(self) -> Option<Layer> {
        match self {
            Cap::Off => None,
            Cap::Low => Some(Layer::Low),
            Cap::Medium => Some(Layer::Medium),
            Cap::High => Some(Layer::High),
        }
    }
}

/// Why a tile matters, the most important first; tiles of one class are served in the order
/// given.
///
/// A screen share comes first: it is what the room is looking at, and text in a low layer is
/// unreadable (a viewer who does not want it sets its cap `Off`). A pinned tile is the viewer's
/// own choice and stays put, so it comes before the active speaker, who changes every few
/// seconds: ranked the other way round, the pinned tile's layer would move with every change
/// of speaker, and every move costs a keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Screen,
    Pinned,
    Speaker,
    Other,
}

/// One video tile a viewer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile<K> {
    pub id: K,
    pub priority: Priority,
    pub cap: Cap,
    /// The publisher's measured bitrate of each layer (bits/s), by [`Layer::index`]; `None`: the
    /// layer is not sent. A layer the publisher was told to pause is best given with its last
    /// measured bitrate, so that it can be chosen (and resumed) when the budget allows.
    pub bitrates: [Option<u64>; 3],
}

impl<K> Tile<K> {
    /// The layers the viewer may be sent of this tile, lowest first, with their bitrates: those
    /// sent, within the cap.
    fn allowed(&self) -> impl Iterator<Item = (Layer, u64)> + '_ {
        let top = self.cap.highest();
        Layer::ALL
            .into_iter()
            .filter(move |l| top.is_some_and(|top| *l <= top))
            .filter_map(|l| Some((l, self.bitrates[l.index()]?)))
    }

    /// The first layer allowed above `layer`.
    fn above(&self, layer: Layer) -> Option<(Layer, u64)> {
        self.allowed().find(|(l, _)| *l > layer)
    }
}

/// What the viewer's bandwidth estimator should aim for (bits/s, audio included), for
/// `rtc.bwe().set_bitrate(minimum, desired)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    /// The estimate at which the next step up the ladder would be taken: the first step refused,
    /// in the order steps are tried (lowest layers first, then round by round, the most
    /// important tile first in each). Padding fills the traffic up to it, to prove the path
    /// carries it; 0 when no tile is held below its cap.
    pub minimum: u64,
    /// The estimate at which every tile would have the best layer its cap allows.
    pub desired: u64,
}

/// The layers chosen for one viewer's tiles, kept from one run to the next for hysteresis.
#[derive(Debug, Clone)]
pub struct Allocation<K> {
    /// Each tile of the last run and its layer, in the order the tiles were given.
    chosen: Vec<(K, Option<Layer>)>,
    /// The run before, while a run is made.
    previous: Vec<(K, Option<Layer>)>,
    /// The tiles' indices, most important first.
    order: Vec<usize>,
    video: u64,
    probe: Probe,
}

impl<K> Default for Allocation<K> {
    fn default() -> Self {
        Allocation {
            chosen: Vec::new(),
            previous: Vec::new(),
            order: Vec::new(),
            video: 0,
            probe: Probe::default(),
        }
    }
}

/// `percent` per cent of `bitrate`.
fn share(bitrate: u64, percent: u64) -> u64 {
    u64::try_from(u128::from(bitrate) * u128::from(percent) / 100).unwrap_or(u64::MAX)
}

/// What must fit for `layer` of `bitrate` to be sent to a tile that held `held`.
fn need(bitrate: u64, held: Option<Layer>, layer: Layer) -> u64 {
    let percent = if held.is_some_and(|h| layer <= h) {
        HOLD_PERCENT
    } else {
        UPGRADE_PERCENT
    };
    share(bitrate, percent)
}

impl<K: Copy + Eq> Allocation<K> {
    /// Nothing chosen yet: every tile of the first run is new (no hysteresis).
    pub fn new() -> Allocation<K> {
        Allocation::default()
    }

    /// Shares the budget among `tiles`: `estimate` is the viewer's estimate (bits/s; `None`
    /// before the first: [`INITIAL_ESTIMATE`]), `audio` what its audio is reserved (e.g. its
    /// slots × [`AUDIO_PER_SLOT`]). Returns each tile's layer, `None` for a tile paused for this
    /// viewer, in the order the tiles were given. Tiles are told apart by `id` (a tile keeps
    /// the hysteresis of the run before only under the same id).
    pub fn allocate(
        &mut self,
        estimate: Option<u64>,
        audio: u64,
        tiles: &[Tile<K>],
    ) -> &[(K, Option<Layer>)] {
        std::mem::swap(&mut self.chosen, &mut self.previous);
        let previous = &self.previous;
        self.chosen.clear();
        self.chosen.extend(tiles.iter().map(|t| (t.id, None)));
        let held = |id: K| {
            previous
                .iter()
                .find(|(k, _)| *k == id)
                .and_then(|(_, l)| *l)
        };
        self.order.clear();
        self.order.extend(0..tiles.len());
        self.order.sort_by_key(|&i| tiles[i].priority);

        let budget = estimate.unwrap_or(INITIAL_ESTIMATE).saturating_sub(audio);
        let mut remaining = budget;
        // The first step refused, as the estimate that would have allowed it.
        let mut held_back: Option<u64> = None;
        let mut refused = |remaining: u64, room: u64, need: u64| {
            if held_back.is_none() {
                let used = budget.saturating_sub(remaining);
                let before = used.saturating_sub(room.saturating_sub(remaining));
                held_back = Some(audio.saturating_add(before).saturating_add(need));
            }
        };

        // Every tile's lowest layer, in turn.
        for (n, &i) in self.order.iter().enumerate() {
            let tile = &tiles[i];
            let Some((layer, bitrate)) = tile.allowed().next() else {
                continue;
            };
            let need = if n == 0 && held(tile.id).is_some() {
                share(bitrate, KEEP_LAST_PERCENT)
            } else {
                need(bitrate, held(tile.id), layer)
            };
            if need <= remaining {
                self.chosen[i].1 = Some(layer);
                remaining = remaining.saturating_sub(bitrate);
            } else {
                refused(remaining, remaining, need);
            }
        }

        // One step up each, in turn, round after round (at most one round per layer).
        for _ in 0..Layer::ALL.len() {
            let mut moved = false;
            for &i in &self.order {
                let tile = &tiles[i];
                let Some(layer) = self.chosen[i].1 else {
                    continue;
                };
                let Some((next, bitrate)) = tile.above(layer) else {
                    continue;
                };
                let current = tile.bitrates[layer.index()].unwrap_or(0);
                let room = remaining.saturating_add(current);
                let need = need(bitrate, held(tile.id), next);
                if need <= room {
                    self.chosen[i].1 = Some(next);
                    remaining = room.saturating_sub(bitrate);
                    moved = true;
                } else {
                    refused(remaining, room, need);
                }
            }
            if !moved {
                break;
            }
        }

        self.video = tiles
            .iter()
            .zip(&self.chosen)
            .filter_map(|(t, (_, l))| t.bitrates[l.as_ref()?.index()])
            .fold(0, u64::saturating_add);
        let desired = tiles
            .iter()
            .filter_map(|t| {
                let (layer, bitrate) = t.allowed().last()?;
                Some(need(bitrate, None, layer))
            })
            .fold(audio, u64::saturating_add);
        self.probe = Probe {
            minimum: held_back.unwrap_or(0).min(desired),
            desired,
        };
        &self.chosen
    }

    /// Each tile of the last run and its layer, in the order the tiles were given.
    pub fn chosen(&self) -> &[(K, Option<Layer>)] {
        &self.chosen
    }

    /// The layer the last run gave the tile `id`.
    pub fn layer(&self, id: K) -> Option<Layer> {
        self.chosen
            .iter()
            .find(|(k, _)| *k == id)
            .and_then(|(_, l)| *l)
    }

    /// The video the last run allocated, by the publishers' bitrates (bits/s).
    pub fn video(&self) -> u64 {
        self.video
    }

    /// What the estimator should aim for, after the last run.
    pub fn probe(&self) -> Probe {
        self.probe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1_000;

    fn tile(id: u32, priority: Priority, cap: Cap, kbps: [Option<u64>; 3]) -> Tile<u32> {
        Tile {
            id,
            priority,
            cap,
            bitrates: kbps.map(|b| b.map(|b| b * K)),
        }
    }

    /// A camera sending 150, 500 and 1500 kbit/s.
    fn camera(id: u32, priority: Priority, cap: Cap) -> Tile<u32> {
        tile(id, priority, cap, [Some(150), Some(500), Some(1500)])
    }

    fn layers(a: &mut Allocation<u32>, kbps: u64, tiles: &[Tile<u32>]) -> Vec<Option<Layer>> {
        a.allocate(Some(kbps * K), 0, tiles)
            .iter()
            .map(|(_, l)| *l)
            .collect()
    }

    #[test]
    fn the_screen_share_gets_its_layer_before_the_cameras() {
        let tiles = [
            camera(1, Priority::Other, Cap::High),
            camera(2, Priority::Speaker, Cap::High),
            tile(3, Priority::Screen, Cap::High, [Some(400), None, None]),
        ];
        let mut a = Allocation::new();
        assert_eq!(
            layers(&mut a, 600, &tiles),
            [None, Some(Layer::Low), Some(Layer::Low)],
            "the screen, then the speaker; the other camera does not fit"
        );
        assert_eq!(a.video(), 550 * K);
    }

    #[test]
    fn a_pinned_tile_comes_before_the_speaker_and_ties_keep_their_order() {
        let tiles = [
            camera(1, Priority::Speaker, Cap::Low),
            camera(2, Priority::Other, Cap::Low),
            camera(3, Priority::Pinned, Cap::Low),
            camera(4, Priority::Other, Cap::Low),
        ];
        let mut a = Allocation::new();
        assert_eq!(
            layers(&mut a, 500, &tiles),
            [Some(Layer::Low), Some(Layer::Low), Some(Layer::Low), None]
        );
    }

    #[test]
    fn a_tile_that_does_not_fit_its_lowest_layer_is_paused() {
        let tiles = [
            tile(1, Priority::Screen, Cap::High, [Some(800), None, None]),
            camera(2, Priority::Other, Cap::High),
        ];
        let mut a = Allocation::new();
        assert_eq!(
            layers(&mut a, 600, &tiles),
            [None, Some(Layer::Medium)],
            "the screen is paused and the camera still takes what is left"
        );
        assert_eq!(a.layer(1), None);
        assert_eq!(a.layer(2), Some(Layer::Medium));
    }

    #[test]
    fn the_most_important_tile_keeps_its_lowest_layer_while_half_of_it_fits_and_the_others_do_not()
    {
        let tiles = [
            camera(1, Priority::Speaker, Cap::High),
            camera(2, Priority::Other, Cap::High),
        ];
        let mut a = Allocation::new();
        assert_eq!(layers(&mut a, 400, &tiles), [Some(Layer::Low); 2]);
        // 80 kbit/s: half of the speaker's 150 fits, none of the other's.
        assert_eq!(layers(&mut a, 80, &tiles), [Some(Layer::Low), None]);
        assert_eq!(layers(&mut a, 74, &tiles), [None, None]);
        // Paused, it is resumed only with its headroom, as any other tile.
        assert_eq!(layers(&mut a, 160, &tiles), [None, None]);
        assert_eq!(layers(&mut a, 170, &tiles), [Some(Layer::Low), None]);
    }

    #[test]
    fn the_audio_is_reserved_before_any_video() {
        let tiles = [camera(1, Priority::Speaker, Cap::High)];
        let mut a = Allocation::new();
        let chosen = a.allocate(Some(250 * K), 3 * AUDIO_PER_SLOT, &tiles);
        assert_eq!(chosen, &[(1, None)], "150 kbit/s do not fit in 130");
        let chosen = a.allocate(Some(300 * K), 3 * AUDIO_PER_SLOT, &tiles);
        assert_eq!(chosen, &[(1, Some(Layer::Low))]);
    }

    #[test]
    fn without_an_estimate_the_initial_one_is_assumed() {
        let tiles = [camera(1, Priority::Speaker, Cap::High)];
        let mut a = Allocation::new();
        assert_eq!(
            a.allocate(None, 0, &tiles),
            &[(1, Some(Layer::Medium))],
            "1 Mbit/s carries the medium layer, not the high one"
        );
    }

    #[test]
    fn tiles_are_raised_a_step_at_a_time_in_turn() {
        let tiles = [
            camera(1, Priority::Speaker, Cap::High),
            camera(2, Priority::Other, Cap::High),
        ];
        let mut a = Allocation::new();
        assert_eq!(
            layers(&mut a, 1800, &tiles),
            [Some(Layer::Medium), Some(Layer::Medium)],
            "both medium before one high"
        );
        assert_eq!(
            layers(&mut a, 2300, &tiles),
            [Some(Layer::High), Some(Layer::Medium)],
            "then the speaker first"
        );
    }

    #[test]
    fn a_tile_never_exceeds_its_cap_and_off_gets_nothing() {
        let tiles = [
            camera(1, Priority::Speaker, Cap::Low),
            camera(2, Priority::Screen, Cap::Off),
            camera(3, Priority::Other, Cap::Medium),
        ];
        let mut a = Allocation::new();
        assert_eq!(
            layers(&mut a, 100_000, &tiles),
            [Some(Layer::Low), None, Some(Layer::Medium)]
        );
        assert_eq!(a.probe().minimum, 0, "nothing is held back");
    }

    #[test]
    fn a_layer_the_publisher_does_not_send_is_skipped() {
        let tiles = [
            tile(1, Priority::Other, Cap::High, [None, Some(500), Some(1500)]),
            tile(2, Priority::Other, Cap::Low, [None, Some(500), Some(1500)]),
            tile(3, Priority::Other, Cap::High, [Some(150), None, Some(1500)]),
        ];
        let mut a = Allocation::new();
        assert_eq!(
            layers(&mut a, 3400, &tiles),
            [Some(Layer::High), None, Some(Layer::High)]
        );
    }

    #[test]
    fn a_small_wobble_of_the_estimate_does_not_move_a_tile_down() {
        let tiles = [camera(1, Priority::Speaker, Cap::High)];
        let mut a = Allocation::new();
        assert_eq!(layers(&mut a, 1600, &tiles), [Some(Layer::Medium)]);
        assert_eq!(
            layers(&mut a, 1660, &tiles),
            [Some(Layer::High)],
            "1500 with 10 % headroom fits"
        );
        for kbps in [1550, 1500, 1620, 1510] {
            assert_eq!(layers(&mut a, kbps, &tiles), [Some(Layer::High)], "{kbps}");
        }
        assert_eq!(layers(&mut a, 1450, &tiles), [Some(Layer::Medium)]);
        assert_eq!(
            layers(&mut a, 1600, &tiles),
            [Some(Layer::Medium)],
            "going back up needs the headroom again"
        );
    }

    #[test]
    fn a_small_rise_of_a_publishers_bitrate_does_not_move_a_tile_down() {
        let mut tiles = [camera(1, Priority::Speaker, Cap::High)];
        let mut a = Allocation::new();
        assert_eq!(layers(&mut a, 1700, &tiles), [Some(Layer::High)]);
        tiles[0].bitrates[Layer::High.index()] = Some(1650 * K);
        assert_eq!(layers(&mut a, 1700, &tiles), [Some(Layer::High)]);
        tiles[0].bitrates[Layer::High.index()] = Some(1750 * K);
        assert_eq!(layers(&mut a, 1700, &tiles), [Some(Layer::Medium)]);
    }

    #[test]
    fn the_probe_aims_at_the_next_step_of_the_most_important_tile_held_back() {
        let tiles = [
            camera(1, Priority::Other, Cap::Low),
            camera(2, Priority::Speaker, Cap::High),
            tile(3, Priority::Screen, Cap::Off, [Some(900), None, None]),
        ];
        let mut a = Allocation::new();
        assert_eq!(
            layers(&mut a, 900, &tiles),
            [Some(Layer::Low), Some(Layer::Medium), None]
        );
        // The speaker's high layer (1500 + 10 %) with the other camera's low one.
        let probe = a.probe();
        assert_eq!(probe.minimum, (150 + 1650) * K);
        assert_eq!(probe.desired, (165 + 1650) * K);

        // A paused tile: the estimate at which its lowest layer fits.
        let tiles = [tile(
            4,
            Priority::Screen,
            Cap::High,
            [Some(800), None, None],
        )];
        a.allocate(Some(500 * K), 100 * K, &tiles);
        assert_eq!(a.probe().minimum, (100 + 880) * K);
        assert_eq!(a.probe().desired, (100 + 880) * K);
    }

    /// A small deterministic generator for the test below.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bitrate(&mut self) -> Option<u64> {
            match self.next() % 8 {
                0 => None,
                1 => Some(0),
                2 => Some(u64::MAX),
                3 => Some(self.next()),
                _ => Some(self.next() % 3_000_000),
            }
        }
    }

    #[test]
    fn any_estimate_tiles_and_bitrates_never_panic_and_stay_within_the_budget_and_the_caps() {
        let mut r = XorShift(0x9e37_79b9_7f4a_7c15);
        let priorities = [
            Priority::Screen,
            Priority::Pinned,
            Priority::Speaker,
            Priority::Other,
        ];
        let caps = [Cap::Off, Cap::Low, Cap::Medium, Cap::High];
        let mut a = Allocation::new();
        let mut tiles = Vec::new();
        for _ in 0..20_000 {
            // Keep some tiles from one run to the next, so that hysteresis is exercised.
            let keep = (r.next() % 4) as usize;
            tiles.truncate(keep);
            for _ in 0..r.next() % 8 {
                tiles.push(Tile {
                    id: (r.next() % 12) as u32,
                    priority: priorities[(r.next() % 4) as usize],
                    cap: caps[(r.next() % 4) as usize],
                    bitrates: [r.bitrate(), r.bitrate(), r.bitrate()],
                });
            }
            let estimate = r.bitrate();
            let audio = r.bitrate().unwrap_or(0);
            let chosen = a.allocate(estimate, audio, &tiles).to_vec();
            assert_eq!(chosen.len(), tiles.len());
            let mut total = 0u128;
            for (t, (id, layer)) in tiles.iter().zip(&chosen) {
                assert_eq!(*id, t.id);
                let Some(layer) = layer else { continue };
                assert!(t.cap.highest().is_some_and(|top| *layer <= top), "{t:?}");
                let bitrate = t.bitrates[layer.index()];
                assert!(bitrate.is_some(), "a layer not sent was chosen: {t:?}");
                total += u128::from(bitrate.unwrap_or(0));
            }
            let budget = estimate.unwrap_or(INITIAL_ESTIMATE).saturating_sub(audio);
            // Within the budget, or over it by what holding tolerates if that is less than all,
            // or by the one picture kept.
            let tolerated =
                u128::from(budget).max(u128::from(budget) * 100 / u128::from(HOLD_PERCENT));
            let kept = u128::from(budget) * 100 / u128::from(KEEP_LAST_PERCENT);
            assert!(
                total <= tolerated.max(kept),
                "{total} > {budget}: {tiles:?}"
            );
            assert_eq!(u128::from(a.video()), total.min(u128::from(u64::MAX)));
            let probe = a.probe();
            assert!(probe.minimum <= probe.desired);
        }
    }
}
