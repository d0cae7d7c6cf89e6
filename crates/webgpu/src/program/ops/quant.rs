//! int8 models in QDQ form (onnxruntime's static quantisation): the
//! `DequantizeLinear` of every weight reads only constants, so the analysis
//! folds it at load and the GPU holds the weights in f32 (the download stays
//! the int8 file); the `QuantizeLinear`/`DequantizeLinear` pairs on computed
//! tensors run as element-wise steps that give exactly the integers the
//! model says, held in f32, and the ops between them compute in f32.
//! Per-axis and blocked scales on computed tensors, and 4-bit and float8
//! types, are refused by name.
//!
//! And int8 models from onnxruntime's dynamic quantisation:
//! `DynamicQuantizeLinear` finds each activation's scale and zero point on
//! the GPU at run time; `ConvInteger` and `MatMulInteger` take both zero
//! points off (the weights' once, at load) and run as the f32 convolution
//! or product of the integers, the `Cast` to float after them being the
//! identity here. f32 holds every product of two such integers and sums
//! them exactly up to 2^24; past that it rounds, by less than the int32 sum's
//! own rounding in the `Cast` to f32 that the model does next.

use super::super::attrs::*;
use super::super::*;
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

/// ONNX element types by number: UINT8, INT8, UINT16, INT16.
fn range_of(elem_type: i64) -> Option<(f32, f32)> {
    match elem_type {
        2 => Some((0.0, 255.0)),
        3 => Some((-128.0, 127.0)),
        4 => Some((0.0, 65535.0)),
        5 => Some((-32768.0, 32767.0)),
        _ => None,
    }
}

impl Planner<'_> {
    /// Input `ix` of a Q or DQ node as a scalar and its ONNX element type.
    fn quant_scalar(
        &self,
        node: &NodeProto,
        ix: usize,
        what: &str,
    ) -> Result<Option<(f32, i64)>, EngineError> {
        let per_axis = || unsupported(node, format!("per-axis {what}s on a computed tensor"));
        let Some(t) = self.const_input(node, ix)? else {
            return Ok(None);
        };
        let elem_type = match t.datum_type() {
            DatumType::U8 => 2,
            DatumType::I8 => 3,
            DatumType::U16 => 4,
            DatumType::I16 => 5,
            _ => 1,
        };
        match floats(&t).map_err(invalid)?.as_slice() {
            [v] => Ok(Some((*v, elem_type))),
            _ => Err(per_axis()),
        }
    }

    /// The per-tensor scale, zero point and (with a zero point) the
    /// integer type of a Q or DQ node.
    fn quant_params(&self, node: &NodeProto) -> Result<(f32, f32, Option<i64>), EngineError> {
        if attr_i(node, "block_size", 0) != 0 {
            return Err(unsupported(node, "blocked scales"));
        }
        let (scale, _) = self
            .quant_scalar(node, 1, "scale")?
            .ok_or_else(|| invalid(format!("node {:?}: {} lacks its scale", node.name, node.op_type)))?;
        Ok(match self.quant_scalar(node, 2, "zero point")? {
            Some((zp, elem_type)) => (scale, zp, Some(elem_type)),
            None => (scale, 0.0, None),
        })
    }

    pub(super) fn quantize(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let (scale, zero_point, zero_point_type) = self.quant_params(node)?;
        // The output type: the zero point's, else `output_dtype` (opset 21),
        // else uint8.
        let elem_type = zero_point_type.unwrap_or_else(|| attr_i(node, "output_dtype", 2));
        let (lo, hi) = range_of(elem_type)
            .ok_or_else(|| unsupported(node, format!("output of ONNX type {elem_type}")))?;
        self.act(
            node,
            out,
            Act::Quantize {
                scale,
                zero_point,
                lo,
                hi,
            },
        )
    }

    pub(super) fn dequantize(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let (scale, zero_point, _) = self.quant_params(node)?;
        self.act(node, out, Act::Dequantize { scale, zero_point })
    }

    /// `DynamicQuantizeLinear`'s three outputs, each a step: the scale (x's
    /// least and greatest values), the zero point from it (x's least value
    /// once more: three reductions in all, small beside the convolution or
    /// product the values feed), then the values from both.
    pub(super) fn dynamic_quantize(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input_stored(node, 0)?;
        let output = |i: usize| {
            node.output.get(i).filter(|n| !n.is_empty()).ok_or_else(|| {
                invalid(format!(
                    "node {:?}: DynamicQuantizeLinear lacks output {i}",
                    node.name
                ))
            })
        };
        let scale = self.push_gv(output(1)?, Vec::new(), |o| Step::DynamicQuantize {
            x: x.slot,
            part: DynamicPart::Scale,
            out: o,
        })?;
        let zero_point = self.push_gv(output(2)?, Vec::new(), |o| Step::DynamicQuantize {
            x: x.slot,
            part: DynamicPart::ZeroPoint { scale: scale.slot },
            out: o,
        })?;
        self.push_stored(out, x.shape.clone(), |o| Step::DynamicQuantize {
            x: x.slot,
            part: DynamicPart::Values {
                scale: scale.slot,
                zero_point: zero_point.slot,
            },
            out: o,
        })
    }

    /// Computed input `ix` less its zero point (input `zero_point_ix`, a
    /// scalar: computed by `DynamicQuantizeLinear`, or constant), as a new
    /// tensor; the input itself when there is no zero point.
    fn less_zero_point(
        &mut self,
        node: &NodeProto,
        ix: usize,
        zero_point_ix: usize,
    ) -> Result<Gv, EngineError> {
        let x = self.gpu_input_stored(node, ix)?;
        let Some(zp_name) = node.input.get(zero_point_ix).filter(|n| !n.is_empty()) else {
            return Ok(x);
        };
        let (zp, zp_shape) = self.src(node, zp_name)?;
        if zp_shape.iter().product::<usize>() != 1 {
            return Err(unsupported(node, "a per-axis zero point on a computed tensor"));
        }
        let name = format!("{}:{} less its zero point", node.name, node.input[ix]);
        self.push_gv(&name, x.shape.clone(), |o| Step::Binary {
            op: BinOp::Sub,
            a: Src::Slot(x.slot),
            b: zp,
            out: o,
        })
    }

    /// Constant integer weights less their zero point (input
    /// `zero_point_ix`: a scalar, or one per entry of `axis`), as f32.
    fn weights_less_zero_point(
        &self,
        node: &NodeProto,
        w: &Host,
        zero_point_ix: usize,
        axis: usize,
    ) -> Result<Vec<f32>, EngineError> {
        let mut data = floats(w).map_err(invalid)?;
        let Some(zp) = self.const_input(node, zero_point_ix)? else {
            return Ok(data);
        };
        let zp = floats(&zp).map_err(invalid)?;
        let shape = w.shape();
        let n = shape.get(axis).copied().unwrap_or(1);
        let inner: usize = shape.iter().skip(axis + 1).product();
        match zp.len() {
            1 => data.iter_mut().for_each(|v| *v -= zp[0]),
            len if len == n => {
                for (i, v) in data.iter_mut().enumerate() {
                    *v -= zp[(i / inner) % n];
                }
            }
            len => {
                return Err(invalid(format!(
                    "node {:?}: {} weight zero point has {len} values for an axis of {n}",
                    node.name, node.op_type
                )));
            }
        }
        Ok(data)
    }

    pub(super) fn conv_integer(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.less_zero_point(node, 0, 2)?;
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| invalid(format!("node {:?}: ConvInteger without weights", node.name)))?;
        // The weights' zero point is one per filter (axis 0) or one for all.
        let wdata = self.weights_less_zero_point(node, &w, 3, 0)?;
        self.conv_step(node, out, x, w.shape(), wdata, None)
    }

    pub(super) fn matmul_integer(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let a = self.less_zero_point(node, 0, 2)?;
        if a.shape.len() > RANK {
            return Err(unsupported(node, format!("an input of rank {}", a.shape.len())));
        }
        let b_name = node.input.get(1).map_or("", String::as_str);
        let b = match self.value(b_name)? {
            Value::Const(t) => {
                let shape = t.shape().to_vec();
                let padded = pad4(&shape)
                    .filter(|_| shape.len() >= 2)
                    .ok_or_else(|| unsupported(node, format!("a rank-{} B", shape.len())))?;
                // B's zero point is one per column (its last axis) or one for all.
                let data = self.weights_less_zero_point(node, &t, 3, shape.len() - 1)?;
                Src::Const(self.upload4(format!("{}:B", node.name), padded, data))
            }
            Value::Gpu(_) => {
                let b = self.less_zero_point(node, 1, 3)?;
                if !(2..=RANK).contains(&b.shape.len()) {
                    return Err(unsupported(node, format!("a rank-{} B", b.shape.len())));
                }
                Src::Slot(b.slot)
            }
        };
        let shape = self.shape_of(out)?;
        let shape = pad4(&shape).ok_or_else(|| unsupported(node, "rank > 4"))?;
        self.push(node, out, |out| Step::MatMul {
            a: Src::Slot(a.slot),
            b,
            bias: None,
            shape,
            out,
        })
    }
}
