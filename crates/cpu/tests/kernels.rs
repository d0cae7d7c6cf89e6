//! edgeserve's depthwise and pointwise kernels against tract's own, op by
//! op: tiny ONNX graphs (one `Conv`, optionally followed by `Clip`) built
//! here, run once with the default layout (edgeserve's kernels) and once
//! with `ConvLayout::ChannelsLast` (every convolution on tract).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{ConvLayout, CpuEngine, CpuOptions};
use edgeserve_engine::NamedTensors;
use edgeserve_protocol::{Tensor, TensorData};
use prost::Message;
use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_shape_proto::Dimension,
    tensor_shape_proto::dimension, type_proto,
};

/// One convolution to check: depthwise, or pointwise (1×1, one group)
/// when `out_channels` is set.
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    channels: usize,
    out_channels: Option<usize>,
    h: usize,
    w: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    /// ONNX order: top, left, bottom, right.
    pads: [usize; 4],
    /// `Clip(min, max)` after the convolution.
    clip: Option<(f32, f32)>,
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

fn float_tensor(name: &str, dims: &[usize], data: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: 1,
        float_data: data,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d as i64)),
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

fn model(c: &Case) -> Vec<u8> {
    let (kh, kw) = c.kernel;
    let (group, cout) = match c.out_channels {
        Some(cout) => (1, cout),
        None => (c.channels, c.channels),
    };
    let mut conv = NodeProto {
        name: "dw".into(),
        op_type: "Conv".into(),
        input: vec!["x".into(), "k".into(), "b".into()],
        output: vec!["conv".into()],
        attribute: vec![
            AttributeProto {
                name: "group".into(),
                r#type: AttributeType::Int as i32,
                i: group as i64,
                ..Default::default()
            },
            ints("kernel_shape", &[kh, kw]),
            ints("strides", &[c.stride.0, c.stride.1]),
            ints("pads", &c.pads),
        ],
        ..Default::default()
    };
    let mut initializer = vec![
        float_tensor(
            "k",
            &[cout, c.channels / group, kh, kw],
            values(cout * c.channels / group * kh * kw, 1),
        ),
        float_tensor("b", &[cout], values(cout, 2)),
    ];
    let mut node = vec![];
    if let Some((lo, hi)) = c.clip {
        initializer.push(float_tensor("lo", &[], vec![lo]));
        initializer.push(float_tensor("hi", &[], vec![hi]));
        node.push(NodeProto {
            name: "clip".into(),
            op_type: "Clip".into(),
            input: vec!["conv".into(), "lo".into(), "hi".into()],
            output: vec!["y".into()],
            ..Default::default()
        });
    } else {
        conv.output = vec!["y".into()];
    }
    node.insert(0, conv);
    let out_h = (c.h + c.pads[0] + c.pads[2] - kh) / c.stride.0 + 1;
    let out_w = (c.w + c.pads[1] + c.pads[3] - kw) / c.stride.1 + 1;
    ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "depthwise".into(),
            node,
            initializer,
            input: vec![value_info("x", &[c.batch, c.channels, c.h, c.w])],
            output: vec![value_info("y", &[c.batch, cout, out_h, out_w])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn run(bytes: &[u8], layout: ConvLayout, input: &Tensor, kernel: &str) -> Tensor {
    let e = CpuEngine::load(
        bytes,
        &CpuOptions {
            layout,
            ..CpuOptions::default()
        },
    )
    .unwrap();
    let mut inputs = NamedTensors::new();
    inputs.insert("x".into(), input.clone());
    // Make sure the comparison is between two kernels, not tract and itself.
    let ops: Vec<String> = e
        .profile(inputs.clone())
        .unwrap()
        .into_iter()
        .map(|o| o.op)
        .collect();
    let ours = ops.iter().any(|o| o == kernel);
    assert_eq!(ours, layout == ConvLayout::AsModel, "{layout:?} ran {ops:?}");
    e.run_blocking(inputs).unwrap().remove("y").unwrap()
}

fn check(c: Case) {
    check_model(c, &model(&c));
}

/// Runs `bytes`, a model shaped like `c`, both ways and compares.
fn check_model(c: Case, bytes: &[u8]) {
    let n = c.batch * c.channels * c.h * c.w;
    // Scaled so that a clip to [0, 6] cuts on both sides.
    let x: Vec<f32> = values(n, 3).iter().map(|v| v * 8.0).collect();
    let input = Tensor::new(vec![c.batch, c.channels, c.h, c.w], TensorData::Float(x)).unwrap();
    let kernel = match c.out_channels {
        Some(_) => "EdgeservePointwiseConv",
        None => "EdgeserveDepthwiseConv",
    };
    let ours = run(bytes, ConvLayout::AsModel, &input, kernel);
    let tract = run(bytes, ConvLayout::ChannelsLast, &input, kernel);
    assert_eq!(ours.shape(), tract.shape(), "{c:?}");
    let (TensorData::Float(a), TensorData::Float(b)) = (ours.data(), tract.data()) else {
        panic!("{c:?}: not f32 outputs")
    };
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= 1e-4, "{c:?}: max abs diff {worst}");
    if let Some((lo, hi)) = c.clip {
        assert!(a.iter().all(|v| (lo..=hi).contains(v)), "{c:?}: clip not applied");
        let reached = a.contains(&lo) && (hi > 100.0 || a.contains(&hi));
        assert!(reached, "{c:?}: the test data should reach the bounds");
    }
}

const BASE: Case = Case {
    batch: 1,
    channels: 3,
    out_channels: None,
    h: 9,
    w: 11,
    kernel: (3, 3),
    stride: (1, 1),
    pads: [1, 1, 1, 1],
    clip: Some((0.0, 6.0)),
};

#[test]
fn stride_1_same_padding_with_relu6() {
    check(BASE);
    check(Case {
        kernel: (5, 5),
        pads: [2, 2, 2, 2],
        ..BASE
    });
}

#[test]
fn stride_2_with_tensorflow_style_asymmetric_padding() {
    // What EfficientNet-Lite exports: pad only after, for an even input.
    check(Case {
        h: 10,
        w: 12,
        stride: (2, 2),
        pads: [0, 0, 1, 1],
        ..BASE
    });
    check(Case {
        h: 13,
        w: 13,
        kernel: (5, 5),
        stride: (2, 2),
        pads: [1, 1, 2, 2],
        ..BASE
    });
}

#[test]
fn uneven_strides_kernels_and_pads() {
    check(Case {
        channels: 2,
        h: 8,
        w: 9,
        kernel: (3, 7),
        stride: (3, 1),
        pads: [3, 1, 2, 0],
        clip: None,
        ..BASE
    });
    check(Case {
        kernel: (1, 1),
        stride: (2, 3),
        pads: [0, 0, 0, 0],
        ..BASE
    });
}

#[test]
fn rows_wider_than_a_simd_block_and_several_planes() {
    // 70 columns: more than one block of 64 outputs per row.
    check(Case {
        channels: 5,
        h: 6,
        w: 70,
        ..BASE
    });
}

#[test]
fn batch_of_two_and_no_clip() {
    check(Case {
        batch: 2,
        clip: None,
        ..BASE
    });
}

#[test]
fn a_relu_only_clip_and_a_one_pixel_image() {
    check(Case {
        clip: Some((0.0, f32::MAX)),
        ..BASE
    });
    check(Case {
        h: 1,
        w: 1,
        kernel: (3, 3),
        pads: [1, 1, 1, 1],
        clip: None,
        ..BASE
    });
}

const POINTWISE: Case = Case {
    channels: 7,
    out_channels: Some(13),
    kernel: (1, 1),
    stride: (1, 1),
    pads: [0, 0, 0, 0],
    ..BASE
};

#[test]
fn pointwise_with_partial_blocks_of_channels_and_pixels() {
    // 13 outputs: two blocks of 6 and one of 1; 9 × 11 = 99 pixels: whole
    // panels and a partial one, for every vector width.
    check(POINTWISE);
    check(Case {
        clip: None,
        ..POINTWISE
    });
}

#[test]
fn pointwise_batch_of_two_and_large_sizes() {
    check(Case {
        batch: 2,
        channels: 40,
        out_channels: Some(24),
        h: 14,
        w: 14,
        ..POINTWISE
    });
    check(Case {
        channels: 1,
        out_channels: Some(1),
        h: 1,
        w: 1,
        clip: None,
        ..POINTWISE
    });
}

#[test]
fn a_constant_added_along_the_width_is_not_taken_for_a_bias() {
    // A 1×1 convolution without bias followed by `Add` of a `[w]` constant,
    // with w equal to the output channels: it broadcasts along W, so it must
    // stay an `Add`, not become a per-channel bias.
    let c = Case {
        w: 13,
        clip: None,
        ..POINTWISE
    };
    let mut proto = ModelProto::decode(&model(&c)[..]).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    graph.node[0].input.truncate(2);
    graph.node[0].output = vec!["conv".into()];
    graph.initializer.retain(|t| t.name != "b");
    graph.initializer.push(float_tensor("row", &[13], values(13, 4)));
    graph.node.push(NodeProto {
        name: "add".into(),
        op_type: "Add".into(),
        input: vec!["conv".into(), "row".into()],
        output: vec!["y".into()],
        ..Default::default()
    });
    check_model(c, &proto.encode_to_vec());
}
