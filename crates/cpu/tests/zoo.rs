//! The model zoo (`tests/zoo/`) on the CPU backend: every public
//! architecture, fp32, fp16 and int8, against onnxruntime. Natively here;
//! built for wasm32, the same file runs under Node (the simd128 build) and
//! in Chromium (the relaxed-SIMD build; `./x test`'s CPU kernels step), its
//! models embedded in the test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance::zoo;
use edgeserve_cpu::{CpuEngine, CpuOptions};

edgeserve_conformance::zoo_bytes!();

async fn run_zoo() {
    let mut table = zoo::Table::default();
    for model in zoo::models() {
        match CpuEngine::load(&zoo_bytes(&model), &CpuOptions::default()) {
            Ok(engine) => match zoo::check(&engine, &model).await {
                Ok(m) => table.pass(&model, m),
                Err(why) => table.fail(&model, why),
            },
            // The CPU is where `auto` goes when the GPU refuses: it must
            // run every model.
            Err(e) => table.fail(&model, format!("refused: {e}")),
        }
    }
    let (passed, _) = table.finish(if cfg!(target_arch = "wasm32") {
        "cpu (wasm32)"
    } else {
        "cpu"
    });
    assert_eq!(passed, zoo::models().len());
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn every_zoo_model_matches_onnxruntime() {
    edgeserve_conformance::block_on(run_zoo());
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen_test::wasm_bindgen_test]
async fn every_zoo_model_matches_onnxruntime() {
    run_zoo().await;
}
