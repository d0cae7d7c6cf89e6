//! The model zoo (`tests/zoo/`) on the WebGPU backend: each model either
//! runs within its bound of onnxruntime, or is refused at load naming an op
//! the model has and the GPU does not list (`supported_ops`); any other
//! outcome fails. Natively on Vulkan (lavapipe here), and built for wasm32
//! in Chromium's WebGPU, its models embedded. That `auto` then runs a
//! refused model on the CPU is asserted in crates/core/tests/webgpu.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use edgeserve_conformance::zoo;
use edgeserve_webgpu::{WebGpuEngine, WebGpuOptions, supported_ops};

edgeserve_conformance::zoo_bytes!();

/// The zoo's models of one variant (one test each, so that a failure says
/// which variant at once).
async fn run_variant(variant: zoo::Variant) {
    let supported: Vec<&str> = supported_ops().collect();
    let options = WebGpuOptions {
        skip_warmup: true,
        ..WebGpuOptions::default()
    };
    let models: Vec<zoo::ZooModel> = zoo::models()
        .into_iter()
        .filter(|m| m.variant == variant)
        .collect();
    let mut table = zoo::Table::default();
    for model in &models {
        match WebGpuEngine::load(&zoo_bytes(model), &options).await {
            Ok(engine) => match zoo::check(&engine, model).await {
                Ok(m) => table.pass(model, m),
                Err(why) => table.fail(model, why),
            },
            Err(e) => match zoo::refusal_is_named(&e, model, &supported) {
                Ok(op) => table.refused(model, &op),
                Err(why) => table.fail(model, why),
            },
        }
    }
    let (passed, _) = table.finish(&format!("webgpu ({variant:?})"));
    // The families whose every op the GPU lists must all have run.
    let runnable = models
        .iter()
        .filter(|m| zoo::unsupported_ops(m, &supported).is_empty())
        .count();
    assert!(passed >= runnable, "{passed} ran, {runnable} use only listed ops");
}

gpu_test! {
    async fn every_fp32_zoo_model_runs_or_is_refused_naming_its_op() {
        run_variant(zoo::Variant::Fp32).await;
    }
}

gpu_test! {
    async fn every_fp16_zoo_model_runs_or_is_refused_naming_its_op() {
        run_variant(zoo::Variant::Fp16).await;
    }
}

gpu_test! {
    async fn every_dynamic_int8_zoo_model_runs_or_is_refused_naming_its_op() {
        run_variant(zoo::Variant::Int8Dynamic).await;
    }
}

gpu_test! {
    async fn every_qdq_int8_zoo_model_runs_or_is_refused_naming_its_op() {
        run_variant(zoo::Variant::Int8Qdq).await;
    }
}
