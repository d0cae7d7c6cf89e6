//! In the browser: Lite0 on WebGPU (in headless Chromium, SwiftShader's
//! adapter) against onnxruntime's logits, the batch path, and the reason
//! given where there is no WebGPU (under Node). Fixture inputs are compiled
//! in, as a browser test cannot read files.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_engine::{Engine, EngineError};
use edgeserve_protocol::{PredictRequest, Tensor};
use edgeserve_webgpu::{LoadStage, WebGpuEngine, WebGpuOptions};
use wasm_bindgen_test::wasm_bindgen_test;

const MODEL: &[u8] = include_bytes!("../../../models/efficientnet-lite0/efficientnet-lite0.onnx");
const CHELSEA: &[u8] = include_bytes!("../../../../shared/fixtures/inputs/chelsea_224_nchw_f32le.bin");
const COFFEE: &[u8] = include_bytes!("../../../../shared/fixtures/inputs/coffee_224_nchw_f32le.bin");
const REFERENCE: &str = include_str!("../../../../shared/fixtures/reference_onnxruntime.json");

fn input(bytes: &[u8]) -> Tensor {
    let v = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_vec(vec![1, 3, 224, 224], v).unwrap()
}

fn in_browser() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &"Window".into()).unwrap_or(false)
}

#[wasm_bindgen_test]
async fn lite0_on_webgpu_matches_onnxruntime() {
    if !in_browser() {
        return; // the Node run checks the refusal below instead
    }
    let mut stages = Vec::new();
    let e = WebGpuEngine::load_with_progress(MODEL, &WebGpuOptions::default(), |s| stages.push(s))
        .await
        .unwrap();
    let LoadStage::Device(info) = &stages[0] else {
        panic!("{stages:?}")
    };
    web_sys_log(&format!("adapter {info:?}; warmup {:?} ms", e.warmup_ms()));
    let reference: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    for (name, bytes) in [("chelsea", CHELSEA), ("coffee", COFFEE)] {
        let response = e.predict(PredictRequest::instances(input(bytes))).await.unwrap();
        let got = response.outputs["logits"].as_slice::<f32>().unwrap().to_vec();
        let want: Vec<f32> = reference["models"]["efficientnet-lite0.onnx"]["results"][name]["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        web_sys_log(&format!("{name}: max abs diff vs onnxruntime {diff:.2e}"));
        assert!(diff <= 1e-3, "{name}: {diff}");
        let top = |v: &[f32]| {
            let mut i: Vec<usize> = (0..v.len()).collect();
            i.sort_by(|a, b| v[*b].total_cmp(&v[*a]));
            i.truncate(5);
            i
        };
        assert_eq!(top(&got), top(&want), "{name} top-5");
    }
}

#[wasm_bindgen_test]
async fn without_webgpu_the_backend_says_why() {
    if in_browser() {
        return;
    }
    let e = WebGpuEngine::load(MODEL, &WebGpuOptions::default())
        .await
        .err()
        .unwrap();
    let EngineError::Unavailable { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(reason, "this host is neither a browser window nor a web worker");
}

fn web_sys_log(s: &str) {
    wasm_bindgen_test::console_log!("{s}");
}
