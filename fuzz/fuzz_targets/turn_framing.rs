//! TURN over TCP and TLS: the stream framing (STUN and padded ChannelData) on arbitrary bytes
//! in arbitrary chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| free4chat_turn::fuzzing::stream_frames(data));
