//! Convolutions and what surrounds them: pooling, batch norm, padding.

use super::super::attrs::*;
use super::super::*;
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

impl Planner<'_> {
    /// Explicit `(begin, end)` padding per spatial axis from `pads` or
    /// `auto_pad`.
    fn spatial_pads(
        &self,
        node: &NodeProto,
        input: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<[(usize, usize); 2], EngineError> {
        let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        match auto.as_str() {
            "NOTSET" => {
                let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
                if pads.len() != 4 || pads.iter().any(|p| *p < 0) {
                    return Err(unsupported(node, format!("pads {pads:?}")));
                }
                Ok([
                    (pads[0] as usize, pads[2] as usize),
                    (pads[1] as usize, pads[3] as usize),
                ])
            }
            "VALID" => Ok([(0, 0), (0, 0)]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut out = [(0, 0); 2];
                for i in 0..2 {
                    let size = input[2 + i];
                    let o = size.div_ceil(stride[i]);
                    let needed = (o.saturating_sub(1)) * stride[i] + (kernel[i] - 1) * dilation[i] + 1;
                    let total = needed.saturating_sub(size);
                    let small = total / 2;
                    out[i] = if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                }
                Ok(out)
            }
            other => Err(unsupported(node, format!("auto_pad {other}"))),
        }
    }

    fn pair(node: &NodeProto, name: &str, default: usize) -> Result<[usize; 2], EngineError> {
        match attr_ints(node, name) {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|x| *x > 0) => Ok([v[0] as usize, v[1] as usize]),
            Some(v) => Err(unsupported(
                node,
                format!("{name} {v:?} (2-D, positive, expected)"),
            )),
        }
    }

    pub(super) fn conv(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| invalid(format!("node {:?}: Conv without weights", node.name)))?;
        let wdata = floats(&w).map_err(invalid)?;
        let bias = self
            .const_input(node, 2)?
            .map(|b| floats(&b))
            .transpose()
            .map_err(invalid)?;
        self.conv_step(node, out, x, w.shape(), wdata, bias)
    }

    /// A 2-D convolution of `x` by constant weights (of shape `ws`, values
    /// `wdata`) and bias: `Conv`, and `ConvInteger` once both sides have
    /// their zero points taken off.
    pub(super) fn conv_step(
        &mut self,
        node: &NodeProto,
        out: &str,
        x: Gv,
        ws: &[usize],
        wdata: Vec<f32>,
        bias: Option<Vec<f32>>,
    ) -> Result<(), EngineError> {
        if x.shape.len() != 4 {
            return Err(unsupported(
                node,
                format!("{}-D convolution", x.shape.len().saturating_sub(2)),
            ));
        }
        if ws.len() != 4 {
            return Err(invalid(format!(
                "node {:?}: {} weights of shape {ws:?}",
                node.name, node.op_type
            )));
        }
        let groups = usize::try_from(attr_i(node, "group", 1)).unwrap_or(0);
        if groups == 0 || x.shape[1] != ws[1] * groups || !ws[0].is_multiple_of(groups) {
            return Err(invalid(format!(
                "node {:?}: {} input has {} channels, weights {ws:?} with group {groups}",
                node.name, node.op_type, x.shape[1]
            )));
        }
        let stride = Self::pair(node, "strides", 1)?;
        let dilation = Self::pair(node, "dilations", 1)?;
        let padding = self.spatial_pads(node, &x.shape, [ws[2], ws[3]], stride, dilation)?;
        let wt = self.upload4(format!("{}:W", node.name), [ws[0], ws[1], ws[2], ws[3]], wdata);
        let b = match bias {
            Some(data) => {
                if data.len() != ws[0] {
                    return Err(invalid(format!(
                        "node {:?}: Conv bias has {} values for {} filters",
                        node.name,
                        data.len(),
                        ws[0]
                    )));
                }
                Some(self.upload1(format!("{}:B", node.name), data))
            }
            None => None,
        };
        let opts = ConvOptions {
            stride,
            padding,
            dilation,
            groups,
        };
        self.push(node, out, |out| Step::Conv {
            x: x.slot,
            w: wt,
            b,
            opts,
            act: None,
            out,
        })
    }

    pub(super) fn pool(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        if x.shape.len() != 4 {
            return Err(unsupported(
                node,
                format!("{}-D pooling", x.shape.len().saturating_sub(2)),
            ));
        }
        let kernel = Self::pair(node, "kernel_shape", 0)?;
        if kernel.contains(&0) {
            return Err(invalid(format!(
                "node {:?}: {} needs kernel_shape",
                node.name, node.op_type
            )));
        }
        let stride = Self::pair(node, "strides", 1)?;
        let dilation = Self::pair(node, "dilations", 1)?;
        let padding = self.spatial_pads(node, &x.shape, kernel, stride, dilation)?;
        let ceil_mode = attr_i(node, "ceil_mode", 0) == 1;
        if node.op_type == "MaxPool" {
            let opts = MaxPoolOptions {
                kernel_size: kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            };
            self.push(node, out, |out| Step::MaxPool { x: x.slot, opts, out })
        } else {
            if dilation != [1, 1] {
                return Err(unsupported(node, format!("dilations {dilation:?}")));
            }
            let opts = AvgPoolOptions {
                kernel_size: kernel,
                stride,
                padding,
                count_include_pad: attr_i(node, "count_include_pad", 0) == 1,
                ceil_mode,
            };
            self.push(node, out, |out| Step::AvgPool { x: x.slot, opts, out })
        }
    }

    pub(super) fn batch_norm(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        if !(2..=RANK).contains(&r) {
            return Err(unsupported(node, format!("rank-{r} input")));
        }
        let mut params = Vec::new();
        for ix in 1..5 {
            let t = self.const_input(node, ix)?.ok_or_else(|| {
                invalid(format!(
                    "node {:?}: BatchNormalization lacks input {ix}",
                    node.name
                ))
            })?;
            params.push(floats(&t).map_err(invalid)?);
        }
        let c = x.shape[1];
        if params.iter().any(|p| p.len() != c) {
            return Err(invalid(format!(
                "node {:?}: BatchNormalization parameters are not {c} long",
                node.name
            )));
        }
        let eps = attr_f(node, "epsilon", 1e-5);
        let scale: Vec<f32> = (0..c)
            .map(|i| params[0][i] / (params[3][i] + eps).sqrt())
            .collect();
        let shift: Vec<f32> = (0..c).map(|i| params[1][i] - params[2][i] * scale[i]).collect();
        let mut shape = vec![1; r];
        shape[1] = c;
        let shape = pad4(&shape).unwrap_or([1, c, 1, 1]);
        let scale = self.upload4(format!("{}:scale", node.name), shape, scale);
        let shift = self.upload4(format!("{}:shift", node.name), shape, shift);
        self.push(node, out, |out| Step::Affine {
            x: x.slot,
            scale,
            shift,
            out,
        })
    }

    pub(super) fn pad(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        let mode = attr_s(node, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(unsupported(node, format!("mode {mode}")));
        }
        let pads = self.ints(node, 1, "pads", 11)?.unwrap_or_default();
        let value = if self.opset < 11 {
            attr_f(node, "value", 0.0)
        } else {
            self.const_input(node, 2)?
                .and_then(|t| floats(&t).ok())
                .and_then(|v| v.first().copied())
                .unwrap_or(0.0)
        };
        let axes: Vec<usize> = match self.const_input(node, 3)? {
            Some(t) => host_values::<i64>(&t)
                .map_err(invalid)?
                .iter()
                .map(|a| axis4(node, *a, r))
                .collect::<Result<_, _>>()?,
            None => (RANK - r..RANK).collect(),
        };
        if pads.len() != 2 * axes.len() || pads.iter().any(|p| *p < 0) {
            return Err(unsupported(node, format!("pads {pads:?}")));
        }
        let mut full = [(0, 0); RANK];
        for (i, axis) in axes.iter().enumerate() {
            full[*axis] = (pads[i] as usize, pads[i + axes.len()] as usize);
        }
        self.push(node, out, |out| Step::Pad {
            x: x.slot,
            pads: full,
            value,
            out,
        })
    }
}
