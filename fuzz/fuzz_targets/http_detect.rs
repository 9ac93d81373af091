//! HTTP/1 request and response parsing, message-start search, the HTTP/2 preface and first
//! request, and the other-protocol sniffers, on the same bytes.
//! See `mtlscope::fuzzing::http_detect`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mtlscope::fuzzing::http_detect(data));
