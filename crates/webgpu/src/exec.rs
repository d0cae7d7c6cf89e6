//! Running a program: every step queues GPU work (burn records and submits it
//! lazily); only the graph outputs are read back, asynchronously.

use crate::program::{Act, BinOp, DynamicPart, Output, Program, RANK, Src, Step};
use crate::run_error;
use burn::tensor::activation::{
    gelu, gelu_approximate, hard_sigmoid, hard_swish, leaky_relu, relu, sigmoid, softmax, tanh,
};
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Slice, Tensor, TensorData};
use edgeserve_engine::{EngineError, cancel};
use edgeserve_protocol::Tensor as Wire;

fn activate(x: Tensor<RANK>, act: Act) -> Tensor<RANK> {
    match act {
        Act::Relu => relu(x),
        Act::LeakyRelu(alpha) => leaky_relu(x, f64::from(alpha)),
        Act::Sigmoid => sigmoid(x),
        Act::HardSigmoid(alpha, beta) => hard_sigmoid(x, f64::from(alpha), f64::from(beta)),
        Act::HardSwish => hard_swish(x),
        Act::Tanh => tanh(x),
        // Bounds are applied one at a time: an absent bound is no bound,
        // and WGSL has no literal for infinity to stand in for one.
        Act::Clip(Some(lo), Some(hi)) => x.clamp(lo, hi),
        Act::Clip(Some(lo), None) => x.clamp_min(lo),
        Act::Clip(None, Some(hi)) => x.clamp_max(hi),
        Act::Clip(None, None) => x,
        Act::Erf => x.erf(),
        Act::Gelu(false) => gelu(x),
        Act::Gelu(true) => gelu_approximate(x),
        Act::Sqrt => x.sqrt(),
        Act::Reciprocal => x.recip(),
        Act::Exp => x.exp(),
        Act::Neg => x.neg(),
        Act::Abs => x.abs(),
        Act::Pow(e) => pow(x, e),
        // WGSL's round() rounds half to even, as QuantizeLinear does.
        Act::Quantize {
            scale,
            zero_point,
            lo,
            hi,
        } => x.div_scalar(scale).round().add_scalar(zero_point).clamp(lo, hi),
        Act::Dequantize { scale, zero_point } => x.sub_scalar(zero_point).mul_scalar(scale),
    }
}

/// The lower end of `DynamicQuantizeLinear`'s range, a scalar: x's least
/// value, or 0 if that is above it (the range is widened to hold 0).
fn dynamic_low(x: Tensor<RANK>) -> Tensor<RANK> {
    x.min().reshape([1; RANK]).clamp_max(0.0)
}

/// `DynamicQuantizeLinear`'s scale, a scalar: its range over 255, and 1 for
/// a range of nothing (x all zeros), as onnxruntime gives it, rather than 0
/// and a zero point of 0/0.
fn dynamic_scale(x: Tensor<RANK>) -> Tensor<RANK> {
    let hi = x.clone().max().reshape([1; RANK]).clamp_min(0.0);
    let range = hi.sub(dynamic_low(x));
    range
        .clone()
        .div_scalar(255.0)
        .mask_fill(range.equal_elem(0.0), 1.0)
}

/// `x^e`. WGSL's `pow` is undefined for a negative base, which the
/// decomposed LayerNorm's `Pow(x - mean, 2)` always has: small integer
/// powers are products instead, halves square roots.
fn pow(x: Tensor<RANK>, e: f32) -> Tensor<RANK> {
    let whole = e == e.trunc() && e.abs() <= 4.0;
    if whole {
        let n = e.abs() as u32;
        let mut y = x.ones_like();
        for _ in 0..n {
            y = y.mul(x.clone());
        }
        return if e < 0.0 { y.recip() } else { y };
    }
    match e {
        0.5 => x.sqrt(),
        -0.5 => x.sqrt().recip(),
        _ => x.powf_scalar(e),
    }
}

struct Slots(Vec<Option<Tensor<RANK>>>);

impl Slots {
    fn get(&self, slot: usize) -> Result<Tensor<RANK>, EngineError> {
        self.0
            .get(slot)
            .and_then(Option::clone)
            .ok_or_else(|| run_error(format!("slot {slot} read before it was written (a planning bug)")))
    }

    fn src(&self, src: &Src) -> Result<Tensor<RANK>, EngineError> {
        match src {
            Src::Slot(s) => self.get(*s),
            Src::Const(t) => Ok(t.clone()),
        }
    }
}

fn step(slots: &Slots, step: &Step) -> Result<(usize, Tensor<RANK>), EngineError> {
    Ok(match step {
        Step::Conv {
            x,
            w,
            b,
            opts,
            act,
            out,
        } => {
            let y = conv2d(slots.get(*x)?, w.clone(), b.clone(), opts.clone());
            let y = match act {
                Some(a) => activate(y, *a),
                None => y,
            };
            (*out, y)
        }
        Step::Binary { op, a, b, out } => {
            let (a, b) = (slots.src(a)?, slots.src(b)?);
            let y = match op {
                BinOp::Add => a.add(b),
                BinOp::Sub => a.sub(b),
                BinOp::Mul => a.mul(b),
                BinOp::Div => a.div(b),
            };
            (*out, y)
        }
        Step::Act { x, act, out } => (*out, activate(slots.get(*x)?, *act)),
        Step::MaxPool { x, opts, out } => (*out, max_pool2d(slots.get(*x)?, opts.clone())),
        Step::AvgPool { x, opts, out } => (*out, avg_pool2d(slots.get(*x)?, opts.clone())),
        Step::GlobalPool { x, max, out } => {
            let x = slots.get(*x)?;
            let y = if *max {
                x.max_dim(2).max_dim(3)
            } else {
                x.mean_dim(2).mean_dim(3)
            };
            (*out, y)
        }
        Step::MatMul {
            a,
            b,
            bias,
            shape,
            out,
        } => {
            let mut y = slots.src(a)?.matmul(slots.src(b)?);
            if let Some(bias) = bias {
                y = y.add(slots.src(bias)?);
            }
            (*out, y.reshape(*shape))
        }
        Step::Reshape { x, shape, out } => (*out, slots.get(*x)?.reshape(*shape)),
        Step::Transpose { x, perm, out } => (*out, slots.get(*x)?.permute(*perm)),
        Step::Transpose6 {
            x,
            dims,
            perm,
            shape,
            out,
        } => (*out, slots.get(*x)?.reshape(*dims).permute(*perm).reshape(*shape)),
        Step::Concat { xs, axis, out } => {
            let xs = xs.iter().map(|s| slots.src(s)).collect::<Result<Vec<_>, _>>()?;
            (*out, Tensor::cat(xs, *axis))
        }
        Step::Softmax {
            x,
            flat,
            axis,
            shape,
            out,
        } => {
            let x = slots.get(*x)?;
            let y = match flat {
                Some(flat) => softmax(x.reshape(*flat), *axis).reshape(*shape),
                None => softmax(x, *axis),
            };
            (*out, y)
        }
        Step::ReduceMean { x, axes, shape, out } => {
            let y = axes.iter().fold(slots.get(*x)?, |t, a| t.mean_dim(*a));
            (*out, y.reshape(*shape))
        }
        Step::Pad { x, pads, value, out } => (*out, slots.get(*x)?.pad(*pads, PadMode::Constant(*value))),
        Step::Affine { x, scale, shift, out } => (*out, slots.get(*x)?.mul(scale.clone()).add(shift.clone())),
        Step::LayerNorm {
            x,
            axis,
            epsilon,
            scale,
            bias,
            out,
        } => {
            let x = slots.get(*x)?;
            let dims = x.dims();
            let inner: usize = dims[*axis..].iter().product();
            let outer: usize = dims[..*axis].iter().product();
            // The normalised axes as one: mean and (biased) variance over it.
            let flat = x.reshape([1, 1, outer, inner]);
            let (var, mean) = flat.clone().var_mean_bias(3);
            let y = flat.sub(mean).div(var.add_scalar(*epsilon).sqrt()).reshape(dims);
            let y = y.mul(slots.src(scale)?);
            let y = match bias {
                Some(b) => y.add(slots.src(b)?),
                None => y,
            };
            (*out, y)
        }
        Step::Select {
            x,
            axis,
            indices,
            shape,
            out,
        } => (
            *out,
            slots.get(*x)?.select(*axis, indices.clone()).reshape(*shape),
        ),
        Step::Slice {
            x,
            ranges,
            steps,
            out,
        } => {
            let mut slices = [Slice::full(); RANK];
            for ((slice, range), &step) in slices.iter_mut().zip(ranges).zip(steps) {
                *slice = Slice::new(range.start as isize, Some(range.end as isize), step as isize);
            }
            (*out, slots.get(*x)?.slice(slices))
        }
        Step::Expand { x, shape, out } => (*out, slots.src(x)?.expand(*shape)),
        Step::DynamicQuantize { x, part, out } => {
            let x = slots.get(*x)?;
            let y = match part {
                DynamicPart::Scale => dynamic_scale(x),
                // Rounded (half to even, WGSL's round) after the clamp to
                // uint8's range, as the spec orders it.
                DynamicPart::ZeroPoint { scale } => dynamic_low(x)
                    .neg()
                    .div(slots.get(*scale)?)
                    .clamp(0.0, 255.0)
                    .round(),
                DynamicPart::Values { scale, zero_point } => x
                    .div(slots.get(*scale)?)
                    .round()
                    .add(slots.get(*zero_point)?)
                    .clamp(0.0, 255.0),
            };
            (*out, y)
        }
    })
}

/// Uploads the inputs (f32, in graph input order), queues every step, and
/// returns the output tensors still on the GPU (or constant outputs).
pub(crate) fn launch(
    program: &Program,
    device: &Device,
    inputs: Vec<Vec<f32>>,
) -> Result<Vec<Pending>, EngineError> {
    let mut slots = Slots(vec![None; program.slots]);
    if inputs.len() != program.inputs.len() {
        return Err(run_error(format!(
            "{} inputs for a plan of {}",
            inputs.len(),
            program.inputs.len()
        )));
    }
    for ((slot, shape), data) in program.inputs.iter().zip(inputs) {
        if data.len() != shape.iter().product::<usize>() {
            return Err(run_error(format!(
                "input of {} values for shape {shape:?}",
                data.len()
            )));
        }
        slots.0[*slot] = Some(Tensor::<RANK>::from_data(TensorData::new(data, *shape), device));
    }
    for (i, s) in program.steps.iter().enumerate() {
        // Between dispatches, so a request whose deadline passed stops
        // queueing GPU work (what is already queued finishes on its own).
        cancel::checkpoint()?;
        let (out, y) = step(&slots, s)?;
        slots.0[out] = Some(y);
        for free in &program.frees[i] {
            slots.0[*free] = None;
        }
    }
    program
        .outputs
        .iter()
        .map(|o| match o {
            Output::Gpu { slot, shape } => Ok(Pending::Gpu(slots.get(*slot)?, shape.clone())),
            Output::Const(t) => Ok(Pending::Host(t.clone())),
        })
        .collect()
}

/// An output not yet read back (one per graph output, short-lived).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Pending {
    Gpu(Tensor<RANK>, Vec<usize>),
    Host(std::sync::Arc<tract_onnx::prelude::Tensor>),
}

impl Pending {
    /// Reads the output back (waiting for the GPU) as an f32 tensor.
    pub async fn read(self) -> Result<Wire, EngineError> {
        match self {
            Pending::Gpu(t, shape) => {
                let data = t
                    .into_data_async()
                    .await
                    .map_err(|e| run_error(format!("reading an output back: {e:?}")))?;
                let values = data
                    .try_into_vec::<f32>()
                    .map_err(|e| run_error(format!("output is not f32: {e:?}")))?;
                Wire::from_vec(shape, values).map_err(|e| run_error(e.to_string()))
            }
            Pending::Host(t) => {
                let values = crate::program::floats(&t).map_err(run_error)?;
                Wire::from_vec(t.shape().to_vec(), values).map_err(|e| run_error(e.to_string()))
            }
        }
    }
}
