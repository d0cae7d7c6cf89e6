#![no_main]
//! libFuzzer over edgeserve_fuzz::Target::RestJson.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeserve_fuzz::Target::RestJson.run(data));
