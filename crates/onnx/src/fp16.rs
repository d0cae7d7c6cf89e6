//! fp16 storage, f32 compute: tract 0.23.9 rejects graphs that mix f16
//! weights with f32 tensors (e.g. `Translating node "/_fc/Gemm" … expected
//! 1,1000,F16 got 1,1000,F32`), so the graph is widened before tract sees it.

use half::f16;
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, type_proto};

const FLOAT: i32 = 1;
const FLOAT16: i32 = 10;

/// Rewrites every f16 tensor, cast and declared type to f32; returns how
/// many tensors were widened.
pub fn widen_to_f32(model: &mut ModelProto) -> usize {
    model.graph.as_mut().map_or(0, |g| widen_graph(g, 0))
}

/// Subgraphs (If/Loop bodies) are widened too, to a bounded depth.
fn widen_graph(graph: &mut GraphProto, depth: usize) -> usize {
    if depth > 16 {
        return 0;
    }
    let mut n = 0;
    for t in &mut graph.initializer {
        n += usize::from(widen_tensor(t));
    }
    for info in graph
        .input
        .iter_mut()
        .chain(&mut graph.output)
        .chain(&mut graph.value_info)
    {
        if let Some(t) = info.r#type.as_mut() {
            widen_type(t);
        }
    }
    for node in &mut graph.node {
        n += widen_node(node, depth);
    }
    n
}

fn widen_type(t: &mut TypeProto) {
    if let Some(type_proto::Value::TensorType(tensor)) = t.value.as_mut()
        && tensor.elem_type == FLOAT16
    {
        tensor.elem_type = FLOAT;
    }
}

fn widen_node(node: &mut NodeProto, depth: usize) -> usize {
    let is_cast = node.op_type == "Cast" || node.op_type == "CastLike";
    let mut n = 0;
    for attr in &mut node.attribute {
        n += widen_attribute(attr, is_cast, depth);
    }
    n
}

fn widen_attribute(attr: &mut AttributeProto, is_cast: bool, depth: usize) -> usize {
    if is_cast && attr.name == "to" && attr.i == i64::from(FLOAT16) {
        attr.i = i64::from(FLOAT);
    }
    let mut n = 0;
    if let Some(t) = attr.t.as_mut() {
        n += usize::from(widen_tensor(t));
    }
    for t in &mut attr.tensors {
        n += usize::from(widen_tensor(t));
    }
    if let Some(g) = attr.g.as_mut() {
        n += widen_graph(g, depth + 1);
    }
    for g in &mut attr.graphs {
        n += widen_graph(g, depth + 1);
    }
    n
}

/// f16 values live in `raw_data` (2 bytes each, little-endian) or, per the
/// ONNX spec, as bit patterns in `int32_data`.
fn widen_tensor(t: &mut TensorProto) -> bool {
    if t.data_type != FLOAT16 {
        return false;
    }
    let values: Vec<f32> = if t.raw_data.is_empty() {
        t.int32_data
            .iter()
            .map(|&bits| f16::from_bits(bits as u16).to_f32())
            .collect()
    } else {
        t.raw_data
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()
    };
    t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.int32_data.clear();
    t.data_type = FLOAT;
    true
}
