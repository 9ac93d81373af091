//! pcap/pcapng reading alone: every packet, until the end or an error.
//! See `mtlscope::fuzzing::capture_read`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::capture_read(data));
