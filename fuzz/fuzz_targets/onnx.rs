#![no_main]
//! libFuzzer over edgeserve_fuzz::Target::Onnx.

libfuzzer_sys::fuzz_target!(|data: &[u8]| edgeserve_fuzz::Target::Onnx.run(data));
