//! The WebGPU backend against the shared conformance suite and onnxruntime,
//! natively (on this machine: Vulkan through Mesa's lavapipe).

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance as suite;
use edgeserve_engine::EngineError;
use edgeserve_webgpu::{LoadStage, WebGpuEngine, WebGpuOptions};

fn load(bytes: &[u8], options: &WebGpuOptions) -> Result<WebGpuEngine, EngineError> {
    suite::block_on(WebGpuEngine::load(bytes, options))
}

suite::local_backend_suite!(WebGpuEngine, |bytes: &[u8]| load(
    bytes,
    &WebGpuOptions::default()
));

#[test]
fn lite0_fuses_every_activation_into_its_convolution() {
    // Lite0: 49 convolutions, 33 of them followed by a ReLU6 (Clip).
    let (steps, fused) = lite0().program_stats();
    assert_eq!(fused, 33, "{steps} steps");
    // 49 convolutions, 9 residual adds, the pooling, the reshape, the Gemm:
    // no Clip is left as a step of its own.
    assert_eq!(steps, 49 + 9 + 3);
}

#[test]
fn load_reports_its_stages_and_warms_up() {
    let mut stages = Vec::new();
    let e = suite::block_on(WebGpuEngine::load_with_progress(
        &suite::bundled_lite0(),
        &WebGpuOptions::default(),
        |s| stages.push(s),
    ))
    .unwrap();
    assert_eq!(stages.len(), 3, "{stages:?}");
    assert!(matches!(&stages[0], LoadStage::Device(info) if !info.name.is_empty()));
    assert!(
        matches!(stages[1], LoadStage::Planned { steps: 61, weight_bytes } if weight_bytes > 18_000_000),
        "{stages:?}"
    );
    assert!(matches!(stages[2], LoadStage::WarmedUp { ms } if ms > 0.0));
    assert_eq!(
        e.warmup_ms(),
        match stages[2] {
            LoadStage::WarmedUp { ms } => Some(ms),
            _ => None,
        }
    );
}

#[test]
fn a_model_over_the_device_limits_is_refused_with_the_tensor_and_the_limit() {
    let (name, bytes) = lite0().largest_tensor();
    // Lite0's largest tensor is the classifier's weight, 1280×1000 f32
    // (the largest activation, block 1's 96×112×112 expansion, is smaller).
    assert_eq!(bytes, 1280 * 1000 * 4, "{name}");
    assert!(name.starts_with("/_fc/Gemm"), "{name}");
    let cap = |max| WebGpuOptions {
        max_tensor_bytes: Some(max),
        skip_warmup: true,
    };
    let e = load(&suite::bundled_lite0(), &cap(bytes - 1))
        .err()
        .expect("the load should have been refused");
    let EngineError::Unavailable { reason, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(
        reason.contains(&format!("tensor {name:?} needs {bytes} bytes")),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("limit of {} bytes", bytes - 1)),
        "{reason}"
    );
    assert_eq!(e.code(), edgeserve_protocol::Code::Unavailable);
    let fits = load(&suite::bundled_lite0(), &cap(bytes)).unwrap();
    assert_eq!(fits.limits().max_tensor_bytes(), bytes);
    assert_eq!(fits.warmup_ms(), None);
}

#[test]
fn broken_models_are_typed_errors() {
    let lite0 = suite::bundled_lite0();
    for bytes in [&lite0[..lite0.len() / 2], b"".as_slice()] {
        let e = load(bytes, &WebGpuOptions::default()).err().expect("should fail");
        assert!(matches!(e, EngineError::InvalidModel(_)), "{e:?}");
    }
}
