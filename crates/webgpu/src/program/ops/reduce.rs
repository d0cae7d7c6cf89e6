//! Reductions: global pooling, softmax, means over axes, layer norm.

use super::super::attrs::*;
use super::super::*;
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

impl Planner<'_> {
    pub(super) fn global_pool(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        if x.shape.len() != 4 {
            return Err(unsupported(node, format!("rank-{} input", x.shape.len())));
        }
        let max = node.op_type == "GlobalMaxPool";
        self.push(node, out, |out| Step::GlobalPool { x: x.slot, max, out })
    }

    pub(super) fn softmax(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        let shape = pad4(&x.shape).ok_or_else(|| unsupported(node, "rank > 4"))?;
        let default = if self.opset < 13 { 1 } else { -1 };
        let axis = axis4(node, attr_i(node, "axis", default), r)?;
        let flat = (self.opset < 13 && axis != RANK - 1).then(|| {
            let outer: usize = shape[..axis].iter().product();
            let inner: usize = shape[axis..].iter().product();
            [1, 1, outer, inner]
        });
        let axis = if flat.is_some() { RANK - 1 } else { axis };
        self.push(node, out, |out| Step::Softmax {
            x: x.slot,
            flat,
            axis,
            shape,
            out,
        })
    }

    pub(super) fn reduce_mean(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        let axes = self.ints(node, 1, "axes", 18)?;
        let axes = match axes.filter(|a| !a.is_empty()) {
            Some(a) => a
                .iter()
                .map(|a| axis4(node, *a, r))
                .collect::<Result<Vec<_>, _>>()?,
            None if attr_i(node, "noop_with_empty_axes", 0) == 1 => return self.alias(node),
            None => (RANK - r..RANK).collect(),
        };
        let shape = self.shape_of(out)?;
        let shape = pad4(&shape).ok_or_else(|| unsupported(node, "rank > 4"))?;
        self.push(node, out, |out| Step::ReduceMean {
            x: x.slot,
            axes,
            shape,
            out,
        })
    }

    /// LayerNormalization (opset 17) over the axes from `axis` on, with its
    /// scale and bias in the same step. Its optional mean and inverse
    /// standard deviation outputs are refused when read (see `node`).
    pub(super) fn layer_norm(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let axis = axis4(node, attr_i(node, "axis", -1), x.shape.len())?;
        let epsilon = attr_f(node, "epsilon", 1e-5);
        let scale_name = node.input.get(1).filter(|n| !n.is_empty()).ok_or_else(|| {
            invalid(format!(
                "node {:?}: LayerNormalization lacks its scale",
                node.name
            ))
        })?;
        let (scale, _) = self.src(node, scale_name)?;
        let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
            Some(name) => Some(self.src(node, name)?.0),
            None => None,
        };
        self.push(node, out, |out| Step::LayerNorm {
            x: x.slot,
            axis,
            epsilon,
            scale,
            bias,
            out,
        })
    }
}
