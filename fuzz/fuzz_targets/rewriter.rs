//! The sequence number and timestamp rewriter of a down-track, fed packets of several source
//! SSRCs with arbitrary numbers, timestamps and times: while the source stays the same, a gap
//! in stays the same gap out.
#![no_main]

use std::time::{Duration, Instant};

use free4chat_sfu::forward::Rewriter;
use libfuzzer_sys::fuzz_target;
use str0m::rtp::Ssrc;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let mut w = Rewriter::default();
    // The last packet passed of the current source: its SSRC, numbers in and numbers out.
    let mut anchor: Option<(u32, u64, u32, u64, u32)> = None;
    let mut seqs = [0u64; 3];
    for chunk in data.chunks_exact(8) {
        let ssrc = u32::from(chunk[0] % 3);
        let delta = i64::from(i16::from_be_bytes([chunk[1], chunk[2]]));
        let ts = u32::from_be_bytes([chunk[3], chunk[4], chunk[5], chunk[6]]);
        now += Duration::from_millis(u64::from(chunk[7]));
        let slot = &mut seqs[ssrc as usize];
        *slot = slot.wrapping_add_signed(delta);
        let seq = *slot;
        if anchor.is_some_and(|a| a.0 != ssrc) {
            anchor = None;
        }
        let Some((out_seq, out_ts)) = w.map(Ssrc::from(ssrc), seq.into(), ts, 48_000, now) else {
            continue;
        };
        let out_seq = *out_seq;
        if let Some((_, in0, ts0, out0, outts0)) = anchor {
            assert_eq!(out_seq.wrapping_sub(out0), seq.wrapping_sub(in0));
            assert_eq!(out_ts.wrapping_sub(outts0), ts.wrapping_sub(ts0));
        }
        anchor = Some((ssrc, seq, ts, out_seq, out_ts));
    }
});
