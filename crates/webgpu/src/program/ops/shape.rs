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
        let shape = storage4(&logical);
        self.push_stored(out, logical, |out| Step::Reshape {
            x: x.slot,
            shape,
            out,
        })
    }

    /// A transpose where the input or the output has rank over 4: its axes
    /// of size 1 dropped and every run of axes that stays together merged
    /// (Swin's window partition, `[N, H/w, w, W/w, w, C]` permuted
    /// `(0, 1, 3, 2, 4, 5)`, is a rank-4 swap of `[N·H/w, w, W/w, w·C]`'s
    /// middle axes), then as reshape, permute, reshape; 5 or 6 groups
    /// permuted at rank 6 in one step (Swin's packed q/k/v over several
    /// heads); refused if more move.
    fn transpose_stored(
        &mut self,
        node: &NodeProto,
        out: &str,
        x: Gv,
        perm: &[usize],
    ) -> Result<(), EngineError> {
        // The input's axes longer than 1, and the order the output has them in.
        let long: Vec<usize> = (0..x.shape.len()).filter(|&a| x.shape[a] != 1).collect();
        let order: Vec<usize> = perm
            .iter()
            .filter(|&&a| x.shape[a] != 1)
            .map(|a| long.iter().position(|l| l == a).unwrap_or(0))
            .collect();
        // Runs of consecutive input axes in the output's order: each a group.
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for &i in &order {
            match runs.last_mut() {
                Some(run) if run.last() == Some(&(i.wrapping_sub(1))) => run.push(i),
                _ => runs.push(vec![i]),
            }
        }
        if runs.len() > 6 {
            return Err(unsupported(
                node,
                format!("a transpose that moves {} groups of axes (6 at most)", runs.len()),
            ));
        }
        let mut by_input: Vec<usize> = (0..runs.len()).collect();
        by_input.sort_by_key(|&r| runs[r][0]);
        let dims = |r: usize| runs[r].iter().map(|&i| x.shape[long[i]]).product::<usize>();
        let grouped: Vec<usize> = by_input.iter().map(|&r| dims(r)).collect();
        // The groups right-aligned at rank N behind unit axes, and the
        // permutation of them: output group j is input group
        // by_input.position(j).
        let aligned = |dims: &mut [usize], perm: &mut [usize]| {
            let lead = dims.len() - runs.len();
            dims[lead..].copy_from_slice(&grouped);
            for (j, slot) in perm[lead..].iter_mut().enumerate() {
                *slot = lead + by_input.iter().position(|&r| r == j).unwrap_or(0);
            }
        };
        let logical = self.shape_of(out)?;
        if runs.len() > RANK {
            let (mut dims6, mut perm6) = ([1; 6], [0, 1, 2, 3, 4, 5]);
            aligned(&mut dims6, &mut perm6);
            let shape = storage4(&logical);
            return self.push_stored(out, logical, |out| Step::Transpose6 {
                x: x.slot,
                dims: dims6,
                perm: perm6,
                shape,
                out,
            });
        }
        let (mut grouped4, mut full) = ([1; RANK], [0, 1, 2, 3]);
        aligned(&mut grouped4, &mut full);
        let flat = self.new_gv(&format!("{}:grouped", node.name), grouped)?;
        self.steps.push(Step::Reshape {
            x: x.slot,
            shape: grouped4,
            out: flat.slot,
        });
        let moved: Vec<usize> = (0..runs.len()).map(dims).collect();
        let permuted = self.new_gv(&format!("{}:permuted", node.name), moved)?;
        self.steps.push(Step::Transpose {
            x: flat.slot,
            perm: full,
            out: permuted.slot,
        });
        let shape = storage4(&logical);
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

    /// `x` and the storage axis of its ONNX `axis`: as it is up to rank 4;
    /// above, viewed as `[before, axis, after]` (the axes before and after
    /// it as one each), the axis then storage axis 2.
    fn view_around_axis(&mut self, node: &NodeProto, x: Gv, axis: i64) -> Result<(Gv, usize), EngineError> {
        let r = x.shape.len();
        if r <= RANK {
            let axis = axis4(node, axis, r)?;
            return Ok((x, axis));
        }
        let rank = r as i64;
        if axis < -rank || axis >= rank {
            return Err(invalid(format!(
                "node {:?} ({}): axis {axis} is out of range for rank {r}",
                node.name, node.op_type
            )));
        }
        let a = axis.rem_euclid(rank) as usize;
        let view = vec![
            x.shape[..a].iter().product(),
            x.shape[a],
            x.shape[a + 1..].iter().product(),
        ];
        let shape = pad4(&view).ok_or_else(|| invalid("a rank-3 view"))?;
        let viewed = self.push_gv(&format!("{}:view", node.name), view, |o| Step::Reshape {
            x: x.slot,
            shape,
            out: o,
        })?;
        Ok((viewed, RANK - 2))
    }

    /// `Gather` of a computed tensor at constant indices (ViT's class token,
    /// `x[:, 0]`; Swin's q, k and v from their rank-5 stack); indices
    /// computed at run time are refused.
    pub(super) fn gather(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input_stored(node, 0)?;
        // Swin's q, k and v out of their rank-5 stack.
        let (x, axis) = self.view_around_axis(node, x, attr_i(node, "axis", 0))?;
        let dim = x.shape[axis - (RANK - x.shape.len())] as i64;
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
        let logical = self.shape_of(out)?;
        let shape = storage4(&logical);
        let n = indices.len();
        let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), self.device);
        self.push_stored(out, logical, |out| Step::Select {
            x: x.slot,
            axis,
            indices,
            shape,
            out,
        })
    }

    /// `Split` along one axis: each output read by a later node a slice of
    /// the input (the sizes from `split`, an attribute before opset 13 and
    /// an input from it, or equal parts, the last one smaller if need be).
    pub(super) fn split(&mut self, node: &NodeProto, _out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input_stored(node, 0)?;
        let raw = attr_i(node, "axis", 0);
        // Above rank 4 (timm's q, k, v split off their rank-5 stack), as
        // [before, axis, after].
        let (x, axis) = self.view_around_axis(node, x, raw)?;
        let padded = pad4(&x.shape).ok_or_else(|| invalid("a view of rank 4 at most"))?;
        let dim = padded[axis];
        let parts = node.output.len();
        let sizes: Vec<usize> = match self.ints(node, 1, "split", 13)? {
            Some(sizes) => sizes
                .into_iter()
                .map(|s| usize::try_from(s).unwrap_or(usize::MAX))
                .collect(),
            None => {
                let each = dim.div_ceil(parts.max(1));
                (0..parts)
                    .map(|i| each.min(dim.saturating_sub(i * each)))
                    .collect()
            }
        };
        if sizes.len() != parts || sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s)) != Some(dim) {
            return Err(invalid(format!(
                "node {:?}: Split sizes {sizes:?} for {parts} outputs of an axis of {dim}",
                node.name
            )));
        }
        let mut start = 0;
        for (name, size) in node.output.iter().zip(sizes) {
            let read = !name.is_empty() && self.uses.contains_key(name.as_str());
            if read {
                let mut ranges = padded.map(|d| 0..d);
                ranges[axis] = start..start + size;
                let logical = self.shape_of(name)?;
                if x.shape.len() == logical.len() {
                    self.push(node, name, |out| Step::Slice {
                        x: x.slot,
                        ranges,
                        steps: [1; RANK],
                        out,
                    })?;
                } else {
                    let mut part = x.shape.clone();
                    let at = axis - (RANK - part.len());
                    part[at] = size;
                    let part = self.push_gv(&format!("{name}:view"), part, |out| Step::Slice {
                        x: x.slot,
                        ranges,
                        steps: [1; RANK],
                        out,
                    })?;
                    let shape = storage4(&logical);
                    self.push_stored(name, logical, |out| Step::Reshape {
                        x: part.slot,
                        shape,
                        out,
                    })?;
                }
            }
            start += size;
        }
        Ok(())
    }

    /// `Slice` with constant starts, ends, axes and positive steps
    /// (attributes before opset 10, inputs from it; Swin's patch merging
    /// takes every other row and column).
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
        if steps.iter().any(|&s| s < 1) {
            return Err(unsupported(
                node,
                format!("steps {steps:?} (only positive ones are supported)"),
            ));
        }
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(invalid(format!(
                "node {:?}: Slice's starts, ends, axes and steps differ in length",
                node.name
            )));
        }
        let padded = pad4(&x.shape).ok_or_else(|| unsupported(node, format!("input of rank {r}")))?;
        let mut ranges = padded.map(|d| 0..d);
        let mut strides = [1; RANK];
        for (((&start, &end), &axis), &step) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
            let a = axis4(node, axis, r)?;
            let dim = padded[a] as i64;
            // ONNX: negative positions count from the end; both clamp to the axis.
            let at = |v: i64| (if v < 0 { v + dim } else { v }).clamp(0, dim) as usize;
            let (s, e) = (at(start), at(end));
            if e <= s {
                return Err(unsupported(node, "an empty slice"));
            }
            ranges[a] = s..e;
            strides[a] = step as usize;
        }
        self.push(node, out, |out| Step::Slice {
            x: x.slot,
            ranges,
            steps: strides,
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
