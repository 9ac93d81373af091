//! Policy files, as YAML and as JSON.
//! See `mtlscope::fuzzing::policy_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::policy_parse(data));
