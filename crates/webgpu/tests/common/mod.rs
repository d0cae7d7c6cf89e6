//! Running an ONNX graph (built with `edgeserve_testkit::onnx`, as the CPU
//! backend's op tests build theirs) on the GPU and on tract side by side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use edgeserve_conformance::max_abs_diff;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{Engine, EngineError, NamedTensors};
use edgeserve_onnx::pb::{NodeProto, TensorProto};
use edgeserve_protocol::Tensor;
pub use edgeserve_testkit::onnx::*;
use edgeserve_webgpu::{WebGpuEngine, WebGpuOptions};

/// A test that runs natively (blocking on the future) and, built for
/// wasm32, as an async `wasm_bindgen_test` (in Chromium, where WebGPU is).
#[macro_export]
macro_rules! gpu_test {
    (async fn $name:ident() $body:block) => {
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            edgeserve_conformance::block_on(async $body)
        }

        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() $body
    };
}

/// A graph test: the graph (one output "y") and how close the GPU must be.
pub struct Case {
    pub graph: Graph,
    pub tolerance: f32,
}

impl Case {
    pub fn new(nodes: Vec<NodeProto>, inputs: Vec<(&'static str, Vec<usize>)>) -> Case {
        Case {
            graph: Graph::new(nodes, inputs),
            tolerance: 1e-4,
        }
    }

    pub fn inits(mut self, inits: Vec<TensorProto>) -> Case {
        self.graph.inits = inits;
        self
    }

    pub fn opset(mut self, opset: i64) -> Case {
        self.graph.opset = opset;
        self
    }

    pub fn tolerance(mut self, t: f32) -> Case {
        self.tolerance = t;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.graph.bytes()
    }

    pub fn feeds(&self) -> NamedTensors {
        self.graph
            .inputs
            .iter()
            .enumerate()
            .map(|(i, (n, s))| {
                let t = Tensor::from_vec(s.clone(), values(s.iter().product(), 100 + i as u64)).unwrap();
                (n.to_string(), t)
            })
            .collect()
    }

    pub async fn gpu(&self) -> Result<WebGpuEngine, EngineError> {
        WebGpuEngine::load(&self.bytes(), &WebGpuOptions::default()).await
    }

    /// Runs on both backends and compares; returns the GPU engine.
    pub async fn check(self) -> WebGpuEngine {
        let cpu = CpuEngine::load(&self.bytes(), &CpuOptions::default()).unwrap();
        let want = cpu.run_blocking(self.feeds()).unwrap().remove("y").unwrap();
        let gpu = self.gpu().await.unwrap();
        let got = gpu.run(self.feeds()).await.unwrap().remove("y").unwrap();
        assert_eq!(got.shape(), want.shape(), "output shape");
        let (g, w) = (got.as_slice::<f32>().unwrap(), want.as_slice::<f32>().unwrap());
        let diff = max_abs_diff(g, w);
        assert!(diff <= self.tolerance, "max abs diff {diff} > {}", self.tolerance);
        assert!(
            w.iter().any(|v| *v != 0.0),
            "the reference is all zeros: a weak case"
        );
        gpu
    }
}
