#![no_main]
//! libFuzzer over edgeserve_fuzz::Target::Manifest.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeserve_fuzz::Target::Manifest.run(data));
