//! A whole capture through the engine (decode, flows, reassembly, classification), then the
//! verdicts and both reports.
//! See `mtlscope::fuzzing::pipeline`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::pipeline(data));
