//! The per-flow classifier over both directions (`[flags u8]` then stream ops), then the
//! verdict, identities and the JSON DTO of the flow it makes.
//! See `mtlscope::fuzzing::classify_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::classify_stream(data));
