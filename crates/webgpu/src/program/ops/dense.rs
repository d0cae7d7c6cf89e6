//! Matrix products: Gemm and MatMul (with their bias).

use super::super::attrs::*;
use super::super::*;
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

impl Planner<'_> {
    pub(super) fn gemm(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let alpha = attr_f(node, "alpha", 1.0);
        let beta = attr_f(node, "beta", 1.0);
        let trans_a = attr_i(node, "transA", 0) == 1;
        let trans_b = attr_i(node, "transB", 0) == 1;
        let mut a = self.gpu_input(node, 0)?;
        if a.shape.len() != 2 {
            return Err(invalid(format!(
                "node {:?}: Gemm input A has rank {}",
                node.name,
                a.shape.len()
            )));
        }
        if trans_a {
            let shape = vec![a.shape[1], a.shape[0]];
            let name = format!("{}:A^T", node.name);
            let gv = self.new_gv(&name, shape)?;
            self.steps.push(Step::Transpose {
                x: a.slot,
                perm: [0, 1, 3, 2],
                out: gv.slot,
            });
            a = gv;
        }
        let b = match self.value(&node.input[1])? {
            Value::Const(t) => {
                let s = t.shape().to_vec();
                if s.len() != 2 {
                    return Err(invalid(format!(
                        "node {:?}: Gemm input B has shape {s:?}",
                        node.name
                    )));
                }
                let v = floats(&t).map_err(invalid)?;
                // B is laid out as [K, N] and scaled by alpha once, at load.
                let (k, n) = if trans_b { (s[1], s[0]) } else { (s[0], s[1]) };
                let mut data = vec![0f32; k * n];
                for i in 0..k {
                    for j in 0..n {
                        let src = if trans_b { v[j * k + i] } else { v[i * n + j] };
                        data[i * n + j] = src * alpha;
                    }
                }
                Src::Const(self.upload4(format!("{}:B", node.name), [1, 1, k, n], data))
            }
            Value::Gpu(gv) => {
                if alpha != 1.0 {
                    return Err(unsupported(node, "alpha with a computed B"));
                }
                if trans_b {
                    let shape = vec![gv.shape[1], gv.shape[0]];
                    let t = self.new_gv(&format!("{}:B^T", node.name), shape)?;
                    self.steps.push(Step::Transpose {
                        x: gv.slot,
                        perm: [0, 1, 3, 2],
                        out: t.slot,
                    });
                    Src::Slot(t.slot)
                } else {
                    Src::Slot(gv.slot)
                }
            }
        };
        let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
            None => None,
            Some(name) => match self.value(name)? {
                Value::Const(t) => {
                    let shape = t.shape().to_vec();
                    let padded = pad4(&shape).ok_or_else(|| invalid("Gemm C of rank > 4"))?;
                    let data: Vec<f32> = floats(&t)
                        .map_err(invalid)?
                        .into_iter()
                        .map(|v| v * beta)
                        .collect();
                    Some(Src::Const(self.upload4(format!("{}:C", node.name), padded, data)))
                }
                Value::Gpu(gv) if beta == 1.0 => Some(Src::Slot(gv.slot)),
                Value::Gpu(_) => return Err(unsupported(node, "beta with a computed C")),
            },
        };
        let shape = self.shape_of(out)?;
        let shape = pad4(&shape).ok_or_else(|| invalid("Gemm output of rank > 4"))?;
        self.push(node, out, |out| Step::MatMul {
            a: Src::Slot(a.slot),
            b,
            bias,
            shape,
            out,
        })
    }

    pub(super) fn matmul(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let operand = |ix: usize, this: &mut Self| -> Result<Src, EngineError> {
            let name = node.input.get(ix).map_or("", String::as_str);
            let (src, shape) = this.src(node, name)?;
            // A rank-1 B is a column: [K] becomes [K, 1]. (A rank-1 A is
            // already the row [1, K] once aligned to rank 4.)
            if ix == 1 && shape.len() == 1 {
                let k = shape[0];
                return Ok(match src {
                    Src::Const(t) => Src::Const(t.reshape([1, 1, k, 1])),
                    Src::Slot(s) => {
                        let gv = this.new_gv(&format!("{}:B col", node.name), vec![k, 1])?;
                        this.steps.push(Step::Reshape {
                            x: s,
                            shape: [1, 1, k, 1],
                            out: gv.slot,
                        });
                        Src::Slot(gv.slot)
                    }
                });
            }
            Ok(src)
        };
        let a = operand(0, self)?;
        let b = operand(1, self)?;
        let shape = self.shape_of(out)?;
        let shape = pad4(&shape).ok_or_else(|| unsupported(node, "rank > 4"))?;
        self.push(node, out, |out| Step::MatMul {
            a,
            b,
            bias: None,
            shape,
            out,
        })
    }
}
