//! The CPU backend on a thread pool (natively `CpuOptions::threads` > 1):
//! each inference runs on one of the pool's threads, and the caller's
//! cancel scope must go there with it, or a request whose deadline passed
//! would run to its end. A test binary of its own: the pool is
//! process-wide, set by the first engine loaded with threads.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{EngineError, NamedTensors, cancel};
use edgeserve_protocol::Tensor;
use edgeserve_testkit::onnx::{Graph, node};

fn engine() -> CpuEngine {
    let g = Graph::new(vec![node("Relu", &["x"], "y", vec![])], vec![("x", vec![1, 4])]);
    let options = CpuOptions {
        threads: Some(2),
        ..CpuOptions::default()
    };
    CpuEngine::load(&g.bytes(), &options).unwrap()
}

fn inputs() -> NamedTensors {
    let x = Tensor::from_vec(vec![1, 4], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap();
    NamedTensors::from([("x".to_owned(), x)])
}

#[test]
fn the_pool_runs_the_model_and_the_callers_cancel_scope_goes_with_it() {
    let engine = engine();
    assert_eq!(edgeserve_cpu::threads(), 2, "the engine loaded a 2-thread pool");

    let out = engine.run_blocking(inputs()).unwrap();
    assert_eq!(out["y"].as_slice::<f32>().unwrap(), &[0.0, 2.0, 0.0, 4.0]);

    // A live scope runs to the end; a cancelled one stops, though the work
    // runs on a pool thread, where the caller's thread-local scope is not.
    let token = cancel::CancelToken::new();
    let out = cancel::scope(&token, || engine.run_blocking(inputs())).unwrap();
    assert_eq!(out["y"].as_slice::<f32>().unwrap(), &[0.0, 2.0, 0.0, 4.0]);
    token.cancel();
    let refused = cancel::scope(&token, || engine.run_blocking(inputs()));
    assert_eq!(refused.err(), Some(EngineError::Cancelled));

    // The scope ended with the call: the next request runs.
    assert!(engine.run_blocking(inputs()).is_ok());
}
