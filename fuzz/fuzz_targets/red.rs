//! RED (RFC 2198) as the forwarding path handles it: parsing, rewriting block payload types,
//! and recovering lost frames from redundancy, on arbitrary payloads and sequence numbers.
#![no_main]

use free4chat_sfu::forward::red::{Red, RedRecovery, recover, rewrite_red_pt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First: packets of a stream, each a sequence step, a timestamp and a payload.
    let mut state = RedRecovery::default();
    let mut seq = 1_000u64;
    let mut out = Vec::new();
    let mut rest = data;
    while let [step, ts, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, after) = tail.split_at(n);
        rest = after;
        seq = seq.wrapping_add(u64::from(*step)).wrapping_sub(8);
        let Some(red) = Red::parse(payload) else {
            continue;
        };
        // The blocks and the primary are the whole payload, in order.
        let headers = 4 * red.redundant().len() + 1;
        let blocks: usize = red.redundant().iter().map(|(_, _, b)| b.len()).sum();
        assert_eq!(headers + blocks + red.primary.len(), payload.len());
        // Rewriting payload types changes nothing else.
        let rewritten = rewrite_red_pt(payload, red.primary_pt, 63);
        let again = Red::parse(&rewritten).expect("a rewritten payload parses");
        assert_eq!(again.primary, red.primary);
        assert_eq!(again.redundant().len(), red.redundant().len());
        out.clear();
        recover(&mut state, &red, seq.into(), u32::from(*ts) << 8, &mut out);
        assert!(out.len() <= red.redundant().len());
        for r in &out {
            assert!(*r.seq < seq);
            assert!(!state.is_missing(*r.seq));
        }
    }
});
