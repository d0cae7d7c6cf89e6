//! int8 models in QDQ form (onnxruntime's static quantisation): the
//! `DequantizeLinear` of every weight reads only constants, so the analysis
//! folds it at load and the GPU holds the weights in f32 (the download stays
//! the int8 file); the `QuantizeLinear`/`DequantizeLinear` pairs on computed
//! tensors run as element-wise steps that give exactly the integers the
//! model says, held in f32, and the ops between them compute in f32.
//! Per-axis and blocked scales on computed tensors, and 4-bit and float8
//! types, are refused by name.

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
}
