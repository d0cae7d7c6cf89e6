//! ONNX graphs assembled in code with prost, for op tests: a node or a few,
//! seeded weights, declared inputs. Both local backends' op tests build
//! their graphs here, so a case means the same model to each.

use edgeserve_onnx::pb::attribute_proto::AttributeType;
use edgeserve_onnx::pb::tensor_shape_proto::{Dimension, dimension};
use edgeserve_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto, type_proto,
};
use prost::Message;

/// ONNX's element type code for f32.
const FLOAT: i32 = 1;
/// ONNX's element type code for i64.
const INT64: i32 = 7;

/// Deterministic values in [-2, 2), the same for the same `seed`.
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

/// An f32 graph input or output, of `shape` when given.
pub fn info(name: &str, shape: Option<&[usize]>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: FLOAT,
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

/// An f32 initializer of seeded values.
pub fn weight(name: &str, shape: &[usize], seed: u64) -> TensorProto {
    floats(name, shape, values(shape.iter().product(), seed))
}

/// An f32 initializer of `data`.
pub fn floats(name: &str, shape: &[usize], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: shape.iter().map(|d| *d as i64).collect(),
        data_type: FLOAT,
        float_data: data,
        ..Default::default()
    }
}

/// An 8-bit integer initializer (quantised weights, zero points) of ONNX
/// type `data_type` (2 uint8, 3 int8), its values held as protobuf does.
pub fn ints8(name: &str, data_type: i32, shape: &[usize], data: Vec<i32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: shape.iter().map(|d| *d as i64).collect(),
        data_type,
        int32_data: data,
        ..Default::default()
    }
}

/// A 1-D i64 initializer (shapes, axes).
pub fn int64s(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: INT64,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// An integer attribute.
pub fn a_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

/// A float attribute.
pub fn a_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: v,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A string attribute.
pub fn a_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A node of the default domain with one output, named after its op and
/// output.
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

/// A whole model: nodes, initializers, f32 inputs of fixed shapes, and f32
/// outputs (of a declared shape, or left for the runtime to infer).
#[derive(Debug, Clone)]
pub struct Graph {
    /// The default domain's opset.
    pub opset: i64,
    /// The nodes, in order.
    pub nodes: Vec<NodeProto>,
    /// The constant tensors.
    pub inits: Vec<TensorProto>,
    /// The inputs' names and shapes.
    pub inputs: Vec<(String, Vec<usize>)>,
    /// The outputs' names and, where declared, shapes.
    pub outputs: Vec<(String, Option<Vec<usize>>)>,
}

impl Graph {
    /// `nodes` over `inputs`, opset 13, one output `y` of inferred shape.
    pub fn new(nodes: Vec<NodeProto>, inputs: Vec<(&str, Vec<usize>)>) -> Graph {
        Graph {
            opset: 13,
            nodes,
            inits: Vec::new(),
            inputs: inputs.into_iter().map(|(n, s)| (n.to_owned(), s)).collect(),
            outputs: vec![("y".to_owned(), None)],
        }
    }

    /// The ONNX file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let graph = GraphProto {
            name: "case".into(),
            node: self.nodes.clone(),
            initializer: self.inits.clone(),
            input: self.inputs.iter().map(|(n, s)| info(n, Some(s))).collect(),
            output: self.outputs.iter().map(|(n, s)| info(n, s.as_deref())).collect(),
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
}

/// A classifier's head: `x [batch, k]` → `Gemm` (`transB = 1`, weights
/// `w [n, k]` and bias `b [n]`, seeded) → `y [batch, n]`.
pub fn gemm_head(batch: usize, k: usize, n: usize) -> Graph {
    let mut g = Graph::new(
        vec![node("Gemm", &["x", "w", "b"], "y", vec![a_i("transB", 1)])],
        vec![("x", vec![batch, k])],
    );
    g.inits = vec![
        floats("w", &[n, k], values(n * k, 5)),
        floats("b", &[n], values(n, 6)),
    ];
    g.outputs = vec![("y".into(), Some(vec![batch, n]))];
    g
}

/// An inverted bottleneck's expansion and depthwise step (MobileNet v2,
/// EfficientNet): `x [batch, k, h, w]` → 1×1 `Conv` (`k` → `channels`,
/// with a bias) → `Clip(0, 6)` → `e` → depthwise `Conv` (`kernel` square,
/// `stride`, `pads` in ONNX order: top, left, bottom, right) → `Clip(0, 6)`
/// → `y`, with seeded weights.
#[derive(Debug, Clone, Copy)]
pub struct Expansion {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub k: usize,
    /// Channels of the expansion and of the output.
    pub channels: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// The depthwise kernel's height and width.
    pub kernel: usize,
    /// The depthwise step's stride, both ways.
    pub stride: usize,
    /// The depthwise step's padding: top, left, bottom, right.
    pub pads: [usize; 4],
}

impl Expansion {
    /// The depthwise step's output height and width: 0 where the padded
    /// input is smaller than the kernel.
    pub fn out_size(&self) -> (usize, usize) {
        let [top, left, bottom, right] = self.pads;
        let side = |n: usize| {
            n.checked_sub(self.kernel)
                .map_or(0, |n| n / self.stride.max(1) + 1)
        };
        (side(self.h + top + bottom), side(self.w + left + right))
    }

    /// The graph, with `y` its one output.
    pub fn graph(&self) -> Graph {
        let (c, kn) = (self.channels, self.kernel);
        let clip = |x: &str, y: &str| node("Clip", &[x, "lo", "hi"], y, vec![]);
        let mut g = Graph::new(
            vec![
                node(
                    "Conv",
                    &["x", "ke", "be"],
                    "ep",
                    vec![a_ints("kernel_shape", &[1, 1])],
                ),
                clip("ep", "e"),
                node(
                    "Conv",
                    &["e", "kd", "bd"],
                    "dp",
                    vec![
                        a_i("group", c as i64),
                        a_ints("kernel_shape", &[kn as i64, kn as i64]),
                        a_ints("strides", &[self.stride as i64, self.stride as i64]),
                        a_ints("pads", &self.pads.map(|p| p as i64)),
                    ],
                ),
                clip("dp", "y"),
            ],
            vec![("x", vec![self.batch, self.k, self.h, self.w])],
        );
        // Scaled so that both clips cut on both sides.
        let scaled = |n: usize, seed: u64, by: f32| values(n, seed).iter().map(|v| v * by).collect();
        g.inits = vec![
            floats("ke", &[c, self.k, 1, 1], scaled(c * self.k, 21, 0.5)),
            floats("be", &[c], values(c, 22)),
            floats("kd", &[c, 1, kn, kn], scaled(c * kn * kn, 23, 0.5)),
            floats("bd", &[c], values(c, 24)),
            floats("lo", &[], vec![0.0]),
            floats("hi", &[], vec![6.0]),
        ];
        let (oh, ow) = self.out_size();
        g.outputs = vec![("y".into(), Some(vec![self.batch, c, oh, ow]))];
        g
    }
}

/// TF Serving's `half_plus_two` test model rebuilt as ONNX: `y = 0.5 * x +
/// 2` on a float vector `x` of any length (a dynamic dimension named
/// `batch`), output `y` of the same shape. The model TF Serving's REST
/// documentation answers `{"instances": [1.0, 2.0, 5.0]}` with
/// `{"predictions": [2.5, 3.0, 4.5]}` on.
pub fn half_plus_two() -> Vec<u8> {
    let batch = || TensorShapeProto {
        dim: vec![Dimension {
            value: Some(dimension::Value::DimParam("batch".into())),
            ..Default::default()
        }],
    };
    let vector = |name: &str| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(batch()),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let graph = GraphProto {
        name: "half_plus_two".into(),
        node: vec![
            node("Mul", &["x", "half"], "half_x", vec![]),
            node("Add", &["half_x", "two"], "y", vec![]),
        ],
        initializer: vec![floats("half", &[], vec![0.5]), floats("two", &[], vec![2.0])],
        input: vec![vector("x")],
        output: vec![vector("y")],
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}
