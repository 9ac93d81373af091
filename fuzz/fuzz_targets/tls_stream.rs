//! The TLS record and handshake analyzer over both directions: `[limits u8]` then stream ops.
//! Also peeks a ClientHello from the client's bytes.
//! See `mtlscope::fuzzing::tls_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::tls_stream(data));
