//! The TURN engine driven by a script of client bytes (datagrams and streams), peer datagrams,
//! time, connections opening and closing, and signed requests with arbitrary values: no panic,
//! its quotas hold, and everything it writes parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| free4chat_turn::fuzzing::engine_script(data));
