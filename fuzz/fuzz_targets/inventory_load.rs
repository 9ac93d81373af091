//! Inventory files (JSON or YAML, told apart by their first byte), then the index built from
//! them.
//! See `mtlscope::fuzzing::inventory_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::inventory_load(data));
