//! Attribute defaults the ONNX spec gives and tract 0.23.9 reads otherwise,
//! written out before any backend sees the graph.
//!
//! `ConstantOfShape` without `value` is a float32 zero by the spec; tract
//! takes it as an f64 zero, and the first f32 op after it (Swin's attention
//! mask, as torch's dynamo exporter writes it) fails type inference.

use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, TensorProto, attribute_proto};

const FLOAT: i32 = 1;

/// Writes out the defaults above; returns how many nodes changed.
pub fn make_explicit(model: &mut ModelProto) -> usize {
    model.graph.as_mut().map_or(0, |g| graph(g, 0))
}

fn graph(g: &mut GraphProto, depth: usize) -> usize {
    // Subgraphs (If/Loop bodies) too, to the depth fp16 widening goes.
    if depth > 16 {
        return 0;
    }
    let mut n = 0;
    for node in &mut g.node {
        if node.op_type == "ConstantOfShape" && !node.attribute.iter().any(|a| a.name == "value") {
            node.attribute.push(AttributeProto {
                name: "value".into(),
                r#type: attribute_proto::AttributeType::Tensor as i32,
                t: Some(TensorProto {
                    dims: vec![1],
                    data_type: FLOAT,
                    float_data: vec![0.0],
                    ..TensorProto::default()
                }),
                ..AttributeProto::default()
            });
            n += 1;
        }
        for a in &mut node.attribute {
            for sub in a.g.iter_mut().chain(&mut a.graphs) {
                n += graph(sub, depth + 1);
            }
        }
    }
    n
}
