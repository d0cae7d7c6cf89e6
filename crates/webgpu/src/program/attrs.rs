//! Reading a node's attributes and axes.

use super::{RANK, invalid};
use edgeserve_engine::EngineError;
use tract_onnx::pb::{AttributeProto, NodeProto};

/// A possibly negative ONNX axis of a rank-`rank` tensor, as an axis of
/// the rank-4 storage.
pub(super) fn axis4(node: &NodeProto, axis: i64, rank: usize) -> Result<usize, EngineError> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(invalid(format!(
            "node {:?} ({}): axis {axis} is out of range for rank {rank}",
            node.name, node.op_type
        )));
    }
    Ok((axis.rem_euclid(r) as usize) + (RANK - rank))
}

pub(super) fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub(super) fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

pub(super) fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

pub(super) fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub(super) fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}
