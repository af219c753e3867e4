//! Which simulcast layers of one published video track anyone needs, so that the publisher can
//! stop encoding and sending the others (its uplink and CPU are spent on nothing otherwise).
//!
//! A viewer needs the layer its allocation gave it; a viewer held below its cap (for lack of
//! bandwidth, or paused altogether) needs the next layer up as well, so that the step its
//! probing aims for is live: measured for its allocation and ready to switch to at its next
//! keyframe. A viewer whose cap is `Off` needs nothing.
//!
//! A layer someone needs is resumed at once (a viewer waits for it); a layer nobody needs is
//! paused only once nobody has needed it for [`PAUSE_AFTER`], so that a tile being resized or a
//! viewer's layer wobbling for a moment does not stop and restart it (every restart costs a
//! keyframe). Until the viewers' needs are first known every layer is sent.
//!
//! Sans-I/O and deterministic: fed with the viewers' needs and time; the changes come out of
//! [`Dynacast::poll`], a layer's latest state once, so nothing queues up. A layer resumed is
//! of no use to a viewer until its next keyframe, which the core asks the publisher for.

use std::time::{Duration, Instant};

use super::allocation::{Cap, Layer};

/// How long nobody must have needed a layer before it is paused.
pub const PAUSE_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct State {
    /// The publisher is to send it.
    active: bool,
    /// The state last handed out by `poll`.
    reported: bool,
    /// Since when nobody has needed it, if nobody does.
    unneeded_since: Option<Instant>,
}

/// The layers of one published track that are sent.
#[derive(Debug, Clone)]
pub struct Dynacast {
    layers: [State; 3],
}

impl Default for Dynacast {
    fn default() -> Self {
        let state = State {
            active: true,
            reported: true,
            unneeded_since: None,
        };
        Dynacast { layers: [state; 3] }
    }
}

/// The layers a viewer allocated `allocated` under `cap` needs (at most two).
fn needs(allocated: Option<Layer>, cap: Cap) -> [Option<Layer>; 2] {
    let Some(top) = cap.highest() else {
        return [None, None];
    };
    match allocated.filter(|l| *l <= top) {
        None => [Some(Layer::Low), None],
        Some(l) if l < top => [Some(l), l.up()],
        Some(l) => [Some(l), None],
    }
}

impl Dynacast {
    /// Every layer sent, none reported.
    pub fn new() -> Dynacast {
        Dynacast::default()
    }

    /// The viewers' needs now: for each viewer of the track, the layer its allocation gave it
    /// (`None`: paused for it) and its cap. A layer needed is resumed at once; one needed by
    /// nobody starts counting towards its pause.
    pub fn update(
        &mut self,
        viewers: impl IntoIterator<Item = (Option<Layer>, Cap)>,
        now: Instant,
    ) {
        let mut needed = [false; 3];
        for (allocated, cap) in viewers {
            for layer in needs(allocated, cap).into_iter().flatten() {
                needed[layer.index()] = true;
            }
        }
        for (state, needed) in self.layers.iter_mut().zip(needed) {
            if needed {
                state.active = true;
                state.unneeded_since = None;
            } else if state.unneeded_since.is_none() {
                state.unneeded_since = Some(now);
            }
        }
        self.handle_timeout(now);
    }

    /// Pauses the layers nobody has needed for [`PAUSE_AFTER`].
    pub fn handle_timeout(&mut self, now: Instant) {
        for state in &mut self.layers {
            if state.active
                && state
                    .unneeded_since
                    .is_some_and(|since| now.saturating_duration_since(since) >= PAUSE_AFTER)
            {
                state.active = false;
            }
        }
    }

    /// When a layer sent and needed by nobody is next due to be paused.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.layers
            .iter()
            .filter(|s| s.active)
            .filter_map(|s| s.unneeded_since)
            .min()
            .and_then(|since| since.checked_add(PAUSE_AFTER))
    }

    /// The next change to tell the publisher: a layer and whether it is to be sent.
    pub fn poll(&mut self) -> Option<(Layer, bool)> {
        let (layer, state) = Layer::ALL
            .into_iter()
            .zip(&mut self.layers)
            .find(|(_, s)| s.active != s.reported)?;
        state.reported = state.active;
        Some((layer, state.active))
    }

    /// Whether the publisher is to send `layer`.
    pub fn is_active(&self, layer: Layer) -> bool {
        self.layers[layer.index()].active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn changes(d: &mut Dynacast) -> Vec<(Layer, bool)> {
        std::iter::from_fn(|| d.poll()).collect()
    }

    #[test]
    fn a_layer_nobody_watches_is_paused_after_two_seconds() {
        let t = Instant::now();
        let mut d = Dynacast::new();
        let viewers = [(Some(Layer::Medium), Cap::Medium), (None, Cap::Off)];
        d.update(viewers, t);
        assert_eq!(changes(&mut d), []);
        assert_eq!(d.poll_timeout(), Some(t + PAUSE_AFTER));
        d.update(viewers, t + 1999 * MS);
        assert_eq!(changes(&mut d), [], "not yet");
        d.handle_timeout(t + PAUSE_AFTER);
        assert_eq!(changes(&mut d), [(Layer::Low, false), (Layer::High, false)]);
        assert!(d.is_active(Layer::Medium));
        assert_eq!(d.poll_timeout(), None);
        assert_eq!(changes(&mut d), [], "each change is told once");
    }

    #[test]
    fn a_layer_someone_needs_again_resumes_at_once() {
        let t = Instant::now();
        let mut d = Dynacast::new();
        d.update([(Some(Layer::Low), Cap::Low)], t);
        d.handle_timeout(t + PAUSE_AFTER);
        assert_eq!(
            changes(&mut d),
            [(Layer::Medium, false), (Layer::High, false)]
        );
        d.update([(Some(Layer::High), Cap::High)], t + 3000 * MS);
        assert_eq!(changes(&mut d), [(Layer::High, true)]);
        d.handle_timeout(t + 4999 * MS);
        assert_eq!(changes(&mut d), [], "the low layer is kept for a while");
        d.handle_timeout(t + 5000 * MS);
        assert_eq!(changes(&mut d), [(Layer::Low, false)]);
    }

    #[test]
    fn a_tile_resized_for_a_moment_keeps_its_layer() {
        let t = Instant::now();
        let mut d = Dynacast::new();
        d.update([(Some(Layer::High), Cap::High)], t);
        d.update([(Some(Layer::Low), Cap::Low)], t + 500 * MS);
        d.update([(Some(Layer::High), Cap::High)], t + 1500 * MS);
        d.handle_timeout(t + 3000 * MS);
        assert!(d.is_active(Layer::High));
        assert!(d.is_active(Layer::Low), "needed until 1.5 s");
        assert_eq!(changes(&mut d), [(Layer::Medium, false)]);
    }

    #[test]
    fn a_viewer_held_below_its_cap_keeps_the_next_layer_up_live() {
        let t = Instant::now();
        let mut d = Dynacast::new();
        d.update([(Some(Layer::Low), Cap::High)], t);
        d.handle_timeout(t + PAUSE_AFTER);
        assert_eq!(changes(&mut d), [(Layer::High, false)]);

        // Paused for lack of bandwidth: the lowest layer stays live for it.
        let mut d = Dynacast::new();
        d.update([(None, Cap::Medium), (None, Cap::Off)], t);
        d.handle_timeout(t + PAUSE_AFTER);
        assert_eq!(
            changes(&mut d),
            [(Layer::Medium, false), (Layer::High, false)]
        );
    }

    #[test]
    fn with_no_viewer_every_layer_is_paused() {
        let t = Instant::now();
        let mut d = Dynacast::new();
        d.update([], t);
        d.handle_timeout(t + PAUSE_AFTER);
        assert_eq!(changes(&mut d).len(), 3);
        assert!(Layer::ALL.iter().all(|l| !d.is_active(*l)));
    }

    #[test]
    fn nothing_is_paused_before_the_viewers_needs_are_known() {
        let t = Instant::now();
        let mut d = Dynacast::new();
        d.handle_timeout(t + 60 * PAUSE_AFTER);
        assert_eq!(d.poll_timeout(), None);
        assert_eq!(changes(&mut d), []);
    }

    #[test]
    fn any_needs_and_times_never_panic_and_a_needed_layer_is_always_sent() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let caps = [Cap::Off, Cap::Low, Cap::Medium, Cap::High];
        let layers = [
            None,
            Some(Layer::Low),
            Some(Layer::Medium),
            Some(Layer::High),
        ];
        let mut t = Instant::now();
        let mut d = Dynacast::new();
        let mut told = [true; 3];
        for _ in 0..20_000 {
            t += Duration::from_millis(next() % 3000);
            let viewers: Vec<_> = (0..next() % 5)
                .map(|_| (layers[(next() % 4) as usize], caps[(next() % 4) as usize]))
                .collect();
            if next() % 3 == 0 {
                d.handle_timeout(t);
            } else {
                d.update(viewers.iter().copied(), t);
                for (allocated, cap) in &viewers {
                    for layer in needs(*allocated, *cap).into_iter().flatten() {
                        assert!(d.is_active(layer), "{viewers:?}");
                    }
                }
            }
            if let Some(at) = d.poll_timeout() {
                assert!(at > t, "a pause due is not left undone");
            }
            while let Some((layer, active)) = d.poll() {
                assert_ne!(told[layer.index()], active, "a change is a change");
                told[layer.index()] = active;
            }
            assert!(
                Layer::ALL
                    .iter()
                    .all(|l| told[l.index()] == d.is_active(*l))
            );
        }
    }
}
