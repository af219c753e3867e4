//! The ICE-TCP (RFC 4571) deframer of the media workers, on arbitrary bytes in arbitrary
//! chunks: it yields exactly the frames of the whole stream.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| free4chat_media::fuzzing::deframe(data));
