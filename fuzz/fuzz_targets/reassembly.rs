//! One direction's reassembly fed a sequence of operations:
//! `[isn u32][max_pending u16]` then ops `[kind u8][offset u16 or u32][...]` (kind bit 3 picks
//! a 32-bit offset from the ISN, so jumps, wraparound and garbage are all reachable). Every
//! copy of a sequence number carries the same byte unless an op asks for a conflicting copy;
//! the output must then be exactly those bytes, in order, with holes as gaps, and the pending
//! store must stay under its cap.
//! See `mtlscope::fuzzing::reassembly`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::reassembly(data));
