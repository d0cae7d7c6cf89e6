//! Assembling ONNX graphs with prost for the tests, and running one on the
//! GPU and on tract side by side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use edgeserve_conformance::max_abs_diff;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{Engine, EngineError, NamedTensors};
use edgeserve_protocol::Tensor;
use edgeserve_webgpu::{WebGpuEngine, WebGpuOptions};
use prost::Message;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto, type_proto,
};

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

/// Deterministic values in [-2, 2).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

pub fn info(name: &str, shape: Option<&[usize]>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: shape.map(|s| TensorShapeProto {
                    dim: s
                        .iter()
                        .map(|d| Dimension {
                            value: Some(dimension::Value::DimValue(*d as i64)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An f32 initializer.
pub fn weight(name: &str, shape: &[usize], seed: u64) -> TensorProto {
    floats(name, shape, values(shape.iter().product(), seed))
}

pub fn floats(name: &str, shape: &[usize], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: shape.iter().map(|d| *d as i64).collect(),
        data_type: 1,
        float_data: data,
        ..Default::default()
    }
}

pub fn int64s(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

pub fn a_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

pub fn a_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn a_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("{op}_{output}"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// A graph test: nodes, initializers, inputs (name, shape), one output "y".
pub struct Case {
    pub opset: i64,
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    pub inputs: Vec<(&'static str, Vec<usize>)>,
    pub tolerance: f32,
}

impl Case {
    pub fn new(nodes: Vec<NodeProto>, inputs: Vec<(&'static str, Vec<usize>)>) -> Case {
        Case {
            opset: 13,
            nodes,
            inits: Vec::new(),
            inputs,
            tolerance: 1e-4,
        }
    }

    pub fn inits(mut self, inits: Vec<TensorProto>) -> Case {
        self.inits = inits;
        self
    }

    pub fn opset(mut self, opset: i64) -> Case {
        self.opset = opset;
        self
    }

    pub fn tolerance(mut self, t: f32) -> Case {
        self.tolerance = t;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let graph = GraphProto {
            name: "case".into(),
            node: self.nodes.clone(),
            initializer: self.inits.clone(),
            input: self.inputs.iter().map(|(n, s)| info(n, Some(s))).collect(),
            output: vec![info("y", None)],
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }

    pub fn feeds(&self) -> NamedTensors {
        self.inputs
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
