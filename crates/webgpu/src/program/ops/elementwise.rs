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
        let (a, _) = self.src(node, &node.input[0])?;
        let (b, _) = self.src(node, node.input.get(1).map_or("", String::as_str))?;
        self.push(node, out, |out| Step::Binary { op, a, b, out })
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
