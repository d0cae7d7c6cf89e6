//! The model zoo (`tests/zoo/`) on the CPU backend: every public
//! architecture, fp32, fp16 and int8, against onnxruntime. Natively here;
//! built for wasm32, the same file runs under Node (`./x test`'s CPU
//! kernels step), its models embedded in the test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance::zoo;
use edgeserve_cpu::{CpuEngine, CpuOptions};

edgeserve_conformance::zoo_bytes!();

/// Known wrong at times: in the relaxed-SIMD wasm build, ConvNeXt's
/// dynamically quantised file gave logits 90 % of their scale away from
/// onnxruntime's in CI (the simd128 build and native runs are right). The
/// stem's `ConvInteger` alone, as a graph output, gives other int32 sums
/// than natively (-7107 for 812), yet the whole model in a fresh process
/// came out right: which of tract's int8 kernels runs appears to depend on
/// the process's state. Either outcome is printed, neither fails the test,
/// until the root is found. Open in tests/zoo/README.md.
const KNOWN_WRONG: &[&str] = if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
    &["convnext-int8-dynamic.onnx"]
} else {
    &[]
};

async fn run_zoo() {
    let mut table = zoo::Table::default();
    let mut known = 0;
    for model in zoo::models() {
        let known_wrong = KNOWN_WRONG.contains(&model.file.as_str());
        match CpuEngine::load(&zoo_bytes(&model), &CpuOptions::default()) {
            Ok(engine) => match zoo::check(&engine, &model).await {
                Ok(m) => table.pass(&model, m),
                Err(why) if known_wrong => {
                    known += 1;
                    table.known_wrong(&model, &why)
                }
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
    assert_eq!(passed + known, zoo::models().len());
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
