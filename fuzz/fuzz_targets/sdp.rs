//! The SDP the server munges and parses: the Opus DTX rewrite keeps every line and is
//! idempotent, taking TWCC out of audio sections only removes lines and is idempotent, and a
//! client's offer is parsed without panic.
#![no_main]

use free4chat_sfu::sdp::{
    audio_without_twcc, has_active_media, outgoing, parse_offer, request_opus_dtx,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    let once = request_opus_dtx(sdp);
    assert_eq!(once.lines().count(), sdp.lines().count());
    assert_eq!(request_opus_dtx(&once), once);
    let trimmed = audio_without_twcc(sdp);
    assert!(trimmed.lines().count() <= sdp.lines().count());
    assert_eq!(audio_without_twcc(&trimmed), trimmed);
    let _ = outgoing(sdp);
    let _ = has_active_media(sdp);
    let _ = parse_offer(sdp);
});
