//! What every backend reads from an ONNX file before its own engine sees
//! it, decided once: the protobuf decoded from the caller's bytes, names
//! that nothing defines refused, fp16 weights widened to f32, spec defaults
//! tract reads otherwise written out, and the signature the graph declares. The CPU
//! backend then hands the protobuf to tract, the WebGPU backend plans its
//! kernels from it; neither depends on the other.

pub mod defaults;
pub mod fp16;
pub mod manifest;
pub mod signature;

use edgeserve_engine::EngineError;
use prost::Message;
use std::collections::HashSet;
pub use tract_onnx::pb;
use tract_onnx::pb::{GraphProto, ModelProto};

/// Decodes an ONNX file from the caller's slice. (tract's own reader first
/// copies the whole file into a buffer of its own: a third copy of the
/// weights alive at once, the file, that buffer and the protobuf's.)
pub fn decode(bytes: &[u8]) -> Result<ModelProto, EngineError> {
    ModelProto::decode(bytes).map_err(not_onnx)
}

/// [`decode`], from bytes the caller gives up: each weight is copied once
/// instead of twice. prost reads a `bytes` field by first taking the bytes
/// as a `Bytes`, then copying them into the field's `Vec`; from a slice the
/// first step copies too, from a `Bytes` it only counts a reference (Lite2
/// in wasm: 3.6 ms of a load).
pub fn decode_owned(bytes: Vec<u8>) -> Result<ModelProto, EngineError> {
    ModelProto::decode(prost::bytes::Bytes::from(bytes)).map_err(not_onnx)
}

fn not_onnx(e: prost::DecodeError) -> EngineError {
    EngineError::InvalidModel(format!(
        "not a readable ONNX model (protobuf decoding failed): {e:#}"
    ))
}

/// What both local backends do to a decoded model before their engine reads
/// it: [`defaults::make_explicit`], then [`fp16::widen_to_f32`] (which also
/// widens a default made explicit in f16). Returns how many tensors were widened.
pub fn normalize(model: &mut ModelProto) -> usize {
    defaults::make_explicit(model);
    fp16::widen_to_f32(model)
}

/// The version of the default ONNX domain the model imports (what decides
/// whether an op takes a setting as an attribute or as an input); 1 if it
/// names none.
pub fn default_opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version)
}

/// Refuses a graph (or any subgraph) that reads a name nothing defines.
pub fn check_names(graph: &GraphProto) -> Result<(), EngineError> {
    undefined_names(graph, &HashSet::new()).map_err(EngineError::InvalidModel)
}

/// Checks that every name the graph reads is defined before tract sees it:
/// tract indexes its name table with each node input and graph output and
/// panics on a name nothing defines (found by fuzzing the loader), which in
/// wasm is a trap, not an error. `outer` holds the names an enclosing graph
/// defines (a subgraph of `If` or `Loop` may read them).
fn undefined_names(graph: &GraphProto, outer: &HashSet<&str>) -> Result<(), String> {
    let mut known = outer.clone();
    known.extend(graph.input.iter().map(|i| i.name.as_str()));
    known.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    known.extend(
        graph
            .sparse_initializer
            .iter()
            .filter_map(|t| t.values.as_ref().map(|v| v.name.as_str())),
    );
    known.extend(
        graph
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str)),
    );
    for node in &graph.node {
        if let Some(missing) = node
            .input
            .iter()
            .find(|i| !i.is_empty() && !known.contains(i.as_str()))
        {
            return Err(format!(
                "node {:?} ({}) reads {:?}, which no input, initializer or node of the graph defines",
                edgeserve_protocol::quote(&node.name),
                edgeserve_protocol::quote(&node.op_type),
                edgeserve_protocol::quote(missing)
            ));
        }
        for attribute in &node.attribute {
            for sub in attribute.g.iter().chain(&attribute.graphs) {
                undefined_names(sub, &known)?;
            }
        }
    }
    if let Some(missing) = graph.output.iter().find(|o| !known.contains(o.name.as_str())) {
        return Err(format!(
            "the graph's output {:?} is defined by no input, initializer or node",
            edgeserve_protocol::quote(&missing.name)
        ));
    }
    Ok(())
}
