//! Quantising what no calibration saw: an infinity (a division by a variance
//! quantisation made zero, in a DeiT's decomposed LayerNorm) or a value
//! billions of steps out must saturate at its own end of the integer range,
//! as onnxruntime's `QuantizeLinear` does. tract 0.23.9 overflows there (a
//! panic in this debug build, the wrong end in a release one); the CPU
//! backend clips in front of it (crates/cpu/src/tract_workarounds.rs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::NamedTensors;
use edgeserve_protocol::Tensor;
use edgeserve_testkit::onnx::{Graph, floats, ints8, node};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn quantizing_an_infinity_or_a_huge_value_saturates_at_its_own_end() {
    // x / d = [0.5, +inf, -inf, 2e30, -2e30]; scale 0.1, zero point 128.
    let mut g = Graph::new(
        vec![
            node("Div", &["x", "d"], "r", vec![]),
            node("QuantizeLinear", &["r", "s", "zp"], "q", vec![]),
            node("DequantizeLinear", &["q", "s", "zp"], "y", vec![]),
        ],
        vec![("x", vec![1, 5])],
    );
    g.inits = vec![
        floats("d", &[5], vec![1.0, 0.0, 0.0, 1e-30, 1e-30]),
        floats("s", &[], vec![0.1]),
        ints8("zp", 2, &[], vec![128]),
    ];
    let engine = CpuEngine::load(&g.bytes(), &CpuOptions::default()).unwrap();
    let x = Tensor::from_vec(vec![1, 5], vec![0.5f32, 1.0, -1.0, 2.0, -2.0]).unwrap();
    let out = engine
        .run_blocking(NamedTensors::from([("x".to_owned(), x)]))
        .unwrap();
    let y = out["y"].as_slice::<f32>().unwrap();
    // 5 steps above the zero point; 255 and 0, whichever end each lies past.
    let want = [0.5f32, 12.7, -12.8, 12.7, -12.8];
    for (got, want) in y.iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "{y:?}, want {want:?}");
    }
}
