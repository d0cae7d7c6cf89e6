//! Element-wise ops: activations and unary math (fused into the
//! convolution before them where nothing else reads it), arithmetic with
//! broadcasting, constant powers, casts.

use super::super::attrs::*;
use super::super::*;
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

impl Planner<'_> {
    /// An element-wise function of one tensor, of any rank [`storage4`]
    /// holds: it reads and writes every element alike, so the storage's
    /// layout does not matter (a QDQ pair inside ShuffleNet's channel
    /// shuffle or ViT's packed q/k/v is rank 5).
    pub(super) fn act(&mut self, node: &NodeProto, out: &str, act: Act) -> Result<(), EngineError> {
        let x = self.gpu_input_stored(node, 0)?;
        let input = node.input[0].as_str();
        // Fuse into the convolution that produced the input when nothing
        // else reads the convolution's output.
        let fusable = self.uses.get(input) == Some(&1) && !self.graph_outputs.iter().any(|o| o == input);
        if fusable
            && let Some(&at) = self.producer.get(&x.slot)
            && let Some(Step::Conv {
                act: slot_act @ None, ..
            }) = self.steps.get_mut(at)
        {
            *slot_act = Some(act);
            self.values.insert(out.to_owned(), Value::Gpu(x));
            return Ok(());
        }
        let shape = self.shape_of(out)?;
        self.push_stored(out, shape, |o| Step::Act {
            x: x.slot,
            act,
            out: o,
        })
    }

    pub(super) fn clip(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let (min, max) = if self.opset < 11 {
            (attr(node, "min").map(|a| a.f), attr(node, "max").map(|a| a.f))
        } else {
            let bound = |ix| -> Result<Option<f32>, EngineError> {
                self.const_input(node, ix)?
                    .map(|t| {
                        floats(&t).ok().and_then(|v| v.first().copied()).ok_or_else(|| {
                            invalid(format!("node {:?}: Clip bound is not a scalar", node.name))
                        })
                    })
                    .transpose()
            };
            (bound(1)?, bound(2)?)
        };
        self.act(node, out, Act::Clip(min, max))
    }

    pub(super) fn binary(&mut self, node: &NodeProto, out: &str, op: BinOp) -> Result<(), EngineError> {
        let logical = self.shape_of(out)?;
        if logical.len() > RANK {
            return self.binary_stored(node, out, op, logical);
        }
        let (a, _) = self.src(node, &node.input[0])?;
        let (b, _) = self.src(node, node.input.get(1).map_or("", String::as_str))?;
        self.push(node, out, |out| Step::Binary { op, a, b, out })
    }

    /// Element-wise arithmetic with an output of rank over 4 (Swin adds its
    /// shifted windows' mask to the attention at rank 5): the axes where
    /// the output is 1 dropped, and neighbouring axes merged where each
    /// operand either spans both or broadcasts over both, leaving at most 4;
    /// each operand viewed so, the step run at rank 4, the result stored.
    fn binary_stored(
        &mut self,
        node: &NodeProto,
        out: &str,
        op: BinOp,
        logical: Vec<usize>,
    ) -> Result<(), EngineError> {
        let r = logical.len();
        let names: Vec<&str> = (0..2)
            .map(|i| node.input.get(i).map_or("", String::as_str))
            .collect();
        let values = [self.value(names[0])?, self.value(names[1])?];
        let aligned = |v: &Value| -> Vec<usize> {
            let s = match v {
                Value::Gpu(gv) => gv.shape.clone(),
                Value::Const(t) => t.shape().to_vec(),
            };
            std::iter::repeat_n(1, r.saturating_sub(s.len()))
                .chain(s)
                .collect()
        };
        let shapes = [aligned(&values[0]), aligned(&values[1])];
        // Groups of axes: (output extent, whether each operand spans them).
        let mut groups: Vec<(usize, [bool; 2])> = Vec::new();
        for (i, &d) in logical.iter().enumerate().filter(|(_, d)| **d != 1) {
            let spans = [shapes[0][i] == d, shapes[1][i] == d];
            match groups.last_mut() {
                Some((extent, last)) if *last == spans => *extent *= d,
                _ => groups.push((d, spans)),
            }
        }
        if groups.len() > RANK {
            return Err(unsupported(
                node,
                format!("a broadcast over {} groups of axes (4 at most)", groups.len()),
            ));
        }
        let mut srcs = Vec::new();
        for (k, value) in values.into_iter().enumerate() {
            let view: Vec<usize> = groups
                .iter()
                .map(|(d, spans)| if spans[k] { *d } else { 1 })
                .collect();
            let shape4 = pad4(&view).ok_or_else(|| invalid("a rank-4 view"))?;
            srcs.push(match value {
                Value::Gpu(gv) => {
                    let name = format!("{}:{} view", node.name, names[k]);
                    let v = self.push_gv(&name, view, |o| Step::Reshape {
                        x: gv.slot,
                        shape: shape4,
                        out: o,
                    })?;
                    Src::Slot(v.slot)
                }
                Value::Const(t) => {
                    let data = floats(&t).map_err(|e| {
                        invalid(format!("node {:?}: constant {:?}: {e}", node.name, names[k]))
                    })?;
                    Src::Const(self.upload4(format!("{}:{}", node.name, names[k]), shape4, data))
                }
            });
        }
        let extents: Vec<usize> = groups.iter().map(|(d, _)| *d).collect();
        let b = srcs.pop().ok_or_else(|| invalid("two operands"))?;
        let a = srcs.pop().ok_or_else(|| invalid("two operands"))?;
        let result = self.push_gv(&format!("{}:grouped", node.name), extents, |o| Step::Binary {
            op,
            a,
            b,
            out: o,
        })?;
        let shape = storage4(&logical);
        self.push_stored(out, logical, |o| Step::Reshape {
            x: result.slot,
            shape,
            out: o,
        })
    }

    /// `Pow` with a constant scalar exponent (what exports write: the
    /// decomposed LayerNorm's square, GELU's cube); a computed exponent is
    /// refused.
    pub(super) fn pow(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let e = self
            .const_input(node, 1)?
            .map(|t| floats(&t))
            .transpose()
            .map_err(invalid)?
            .ok_or_else(|| invalid(format!("node {:?}: Pow lacks its exponent", node.name)))?;
        match e.as_slice() {
            [e] => self.act(node, out, Act::Pow(*e)),
            _ => Err(unsupported(node, "an exponent that is not a scalar")),
        }
    }

    pub(super) fn cast(&mut self, node: &NodeProto) -> Result<(), EngineError> {
        let to = attr_i(node, "to", 1);
        // FLOAT or FLOAT16: GPU tensors are f32 (fp16 weights are widened
        // at load, as the CPU backend does).
        if to == 1 || to == 10 {
            self.alias(node)
        } else {
            Err(unsupported(
                node,
                format!("cast of a computed tensor to ONNX type {to}"),
            ))
        }
    }
}
