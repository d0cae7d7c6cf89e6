//! Ops that move values without computing: reshapes, transposes, concats,
//! gathers at constant indices, slices, broadcasts.

use super::super::attrs::*;
use super::super::*;
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

impl Planner<'_> {
    pub(super) fn reshape(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input_stored(node, 0)?;
        let logical = self.shape_of(out)?;
        let shape = storage4(&logical).ok_or_else(|| {
            unsupported(
                node,
                format!("output of rank {} with over 4 axes longer than 1", logical.len()),
            )
        })?;
        self.push_stored(out, logical, |out| Step::Reshape {
            x: x.slot,
            shape,
            out,
        })
    }

    /// A transpose where the input or the output has rank over 4: on the
    /// tensors with their unit axes dropped (at most 4 remain), the same
    /// reordering of the others, as reshape, permute, reshape.
    fn transpose_stored(
        &mut self,
        node: &NodeProto,
        out: &str,
        x: Gv,
        perm: &[usize],
    ) -> Result<(), EngineError> {
        let too_many = || unsupported(node, "a transpose of over 4 axes longer than 1");
        let long: Vec<usize> = (0..x.shape.len()).filter(|&a| x.shape[a] != 1).collect();
        if long.len() > RANK {
            return Err(too_many());
        }
        let squeezed_in: Vec<usize> = long.iter().map(|&a| x.shape[a]).collect();
        let lead = RANK - long.len();
        let mut full = [0, 1, 2, 3];
        for (j, a) in perm.iter().filter(|&&a| x.shape[a] != 1).enumerate() {
            let from = long.iter().position(|l| l == a).ok_or_else(too_many)?;
            full[lead + j] = lead + from;
        }
        let flat = self.new_gv(&format!("{}:squeezed", node.name), squeezed_in.clone())?;
        self.steps.push(Step::Reshape {
            x: x.slot,
            shape: pad4(&squeezed_in).ok_or_else(too_many)?,
            out: flat.slot,
        });
        let moved: Vec<usize> = full[lead..].iter().map(|&a| squeezed_in[a - lead]).collect();
        let permuted = self.new_gv(&format!("{}:permuted", node.name), moved)?;
        self.steps.push(Step::Transpose {
            x: flat.slot,
            perm: full,
            out: permuted.slot,
        });
        let logical = self.shape_of(out)?;
        let shape = storage4(&logical).ok_or_else(too_many)?;
        self.push_stored(out, logical, |out| Step::Reshape {
            x: permuted.slot,
            shape,
            out,
        })
    }

    pub(super) fn transpose(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input_stored(node, 0)?;
        let r = x.shape.len();
        let perm = attr_ints(node, "perm").unwrap_or_else(|| (0..r as i64).rev().collect());
        if perm.len() != r {
            return Err(invalid(format!(
                "node {:?}: perm has {} axes for a rank-{r} input",
                node.name,
                perm.len()
            )));
        }
        if r > RANK {
            let rank = r as i64;
            if let Some(bad) = perm.iter().find(|&&p| p < -rank || p >= rank) {
                return Err(invalid(format!(
                    "node {:?}: perm axis {bad} is out of range for rank {r}",
                    node.name
                )));
            }
            let perm: Vec<usize> = perm.iter().map(|&p| p.rem_euclid(rank) as usize).collect();
            return self.transpose_stored(node, out, x, &perm);
        }
        let lead = RANK - r;
        let mut full = [0, 1, 2, 3];
        for (i, p) in perm.iter().enumerate() {
            full[lead + i] = axis4(node, *p, r)?;
        }
        // A transpose that only moves axes of size 1 reorders nothing: a
        // reshape. (ConvNeXt's head permutes its pooled [N,C,1,1] to
        // [N,1,1,C] before a LayerNorm; burn's reduction over that permuted
        // view's last axis read wrong elements, 8 of 64 off by up to 9.6.)
        let padded = pad4(&x.shape).ok_or_else(|| unsupported(node, format!("input of rank {r}")))?;
        let moved: Vec<usize> = full.iter().map(|&a| padded[a]).collect();
        let order = |axes: &[usize]| {
            axes.iter()
                .copied()
                .filter(|&a| padded[a] != 1)
                .collect::<Vec<_>>()
        };
        if order(&full) == order(&[0, 1, 2, 3]) {
            let shape = [moved[0], moved[1], moved[2], moved[3]];
            return self.push(node, out, |out| Step::Reshape {
                x: x.slot,
                shape,
                out,
            });
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

    /// `Gather` of a computed tensor at constant indices (ViT's class token,
    /// `x[:, 0]`); indices computed at run time are refused.
    pub(super) fn gather(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        let raw = attr_i(node, "axis", 0);
        let axis = axis4(node, raw, r)?;
        let dim = x.shape[axis - (RANK - r)] as i64;
        let indices = self
            .const_input(node, 1)?
            .ok_or_else(|| invalid(format!("node {:?}: Gather lacks its indices", node.name)))?;
        let indices = host_values::<i64>(&indices)
            .map_err(invalid)?
            .into_iter()
            .map(|i| {
                let j = if i < 0 { i + dim } else { i };
                (0..dim).contains(&j).then_some(j).ok_or_else(|| {
                    invalid(format!(
                        "node {:?}: Gather index {i} is out of range for a dimension of {dim}",
                        node.name
                    ))
                })
            })
            .collect::<Result<Vec<i64>, _>>()?;
        let shape = self.shape_of(out)?;
        let shape =
            pad4(&shape).ok_or_else(|| unsupported(node, format!("output of rank {}", shape.len())))?;
        let n = indices.len();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), self.device);
        self.push(node, out, |out| Step::Select {
            x: x.slot,
            axis,
            indices,
            shape,
            out,
        })
    }

    /// `Slice` with constant starts, ends and axes and unit steps (attributes
    /// before opset 10, inputs from it).
    pub(super) fn slice(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        let missing = || invalid(format!("node {:?}: Slice lacks its starts or ends", node.name));
        let starts = self.ints(node, 1, "starts", 10)?.ok_or_else(missing)?;
        let ends = self.ints(node, 2, "ends", 10)?.ok_or_else(missing)?;
        let axes = self
            .ints(node, 3, "axes", 10)?
            .unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = self
            .ints(node, 4, "steps", 10)?
            .unwrap_or_else(|| vec![1; starts.len()]);
        if steps.iter().any(|&s| s != 1) {
            return Err(unsupported(
                node,
                format!("steps {steps:?} (only 1 is supported)"),
            ));
        }
        if ends.len() != starts.len() || axes.len() != starts.len() {
            return Err(invalid(format!(
                "node {:?}: Slice's starts, ends and axes differ in length",
                node.name
            )));
        }
        let padded = pad4(&x.shape).ok_or_else(|| unsupported(node, format!("input of rank {r}")))?;
        let mut ranges = padded.map(|d| 0..d);
        for ((&start, &end), &axis) in starts.iter().zip(&ends).zip(&axes) {
            let a = axis4(node, axis, r)?;
            let dim = padded[a] as i64;
            // ONNX: negative positions count from the end; both clamp to the axis.
            let at = |v: i64| (if v < 0 { v + dim } else { v }).clamp(0, dim) as usize;
            let (s, e) = (at(start), at(end));
            if e <= s {
                return Err(unsupported(node, "an empty slice"));
            }
            ranges[a] = s..e;
        }
        self.push(node, out, |out| Step::Slice {
            x: x.slot,
            ranges,
            out,
        })
    }

    /// `Expand` (a broadcast to a shape that inference knows).
    pub(super) fn expand(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let (x, _) = self.src(node, node.input.first().map_or("", String::as_str))?;
        let shape = self.shape_of(out)?;
        let shape =
            pad4(&shape).ok_or_else(|| unsupported(node, format!("output of rank {}", shape.len())))?;
        self.push(node, out, |out| Step::Expand { x, shape, out })
    }
}
