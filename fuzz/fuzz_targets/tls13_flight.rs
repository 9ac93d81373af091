//! TLS 1.3 client-flight inference: `[suite u16][fin u16][tag u16][early u8]` then record
//! sizes (u16 each).
//! See `mtlscope::fuzzing::tls13_flight`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::tls13_flight(data));
