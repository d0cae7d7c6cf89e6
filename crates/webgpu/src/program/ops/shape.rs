//! Ops that move values without computing: reshapes, transposes, concats.

use super::super::attrs::*;
use super::super::*;
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

impl Planner<'_> {
    pub(super) fn reshape(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let shape = self.shape_of(out)?;
        let shape =
            pad4(&shape).ok_or_else(|| unsupported(node, format!("output of rank {}", shape.len())))?;
        self.push(node, out, |out| Step::Reshape {
            x: x.slot,
            shape,
            out,
        })
    }

    pub(super) fn transpose(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        let perm = attr_ints(node, "perm").unwrap_or_else(|| (0..r as i64).rev().collect());
        if perm.len() != r {
            return Err(invalid(format!(
                "node {:?}: perm has {} axes for a rank-{r} input",
                node.name,
                perm.len()
            )));
        }
        let lead = RANK - r;
        let mut full = [0, 1, 2, 3];
        for (i, p) in perm.iter().enumerate() {
            full[lead + i] = axis4(node, *p, r)?;
        }
        self.push(node, out, |out| Step::Transpose {
            x: x.slot,
            perm: full,
            out,
        })
    }

    pub(super) fn concat(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let rank = self.shape_of(out)?.len();
        let axis = axis4(node, attr_i(node, "axis", 0), rank)?;
        let mut xs = Vec::new();
        for name in node.input.iter().filter(|n| !n.is_empty()) {
            xs.push(self.src(node, name)?.0);
        }
        self.push(node, out, |out| Step::Concat { xs, axis, out })
    }
}
