//! One frame: `[link type index][frame bytes]`.
//! See `mtlscope::fuzzing::decode_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::decode_packet(data));
