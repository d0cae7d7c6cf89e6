//! Depthwise convolution (one filter per channel) in the model's NCHW layout,
//! with its bias and a following clamp (ReLU6, ReLU) fused in.
//!
//! Hand-written because tract 0.23.9's own depthwise kernel was the largest
//! cost on the CPU: 18.9 of 33.7 ms for EfficientNet-Lite0 in NCHW, 11.7 ms
//! after tract's channels-last transform, which then costs more in packing
//! and un-fused clamps (`benches/README.md`); this one takes about 5 ms.
//! Stride is handled by splitting the padded input into `stride²` phase
//! planes once, so that every tap reads contiguous memory, and the
//! multiply-adds run with the widest SIMD the CPU has (`pulp`: AVX-512 or
//! AVX2+FMA chosen at run time). Natively only: in wasm tract's own
//! kernels measured as fast (see `lib.rs`).

use crate::fused::{self, Bounds};
use tract_onnx::prelude::{
    Arc, DatumType, IntoTValue, IntoTensor, TValue, TVec, Tensor, TractResult, TypedFact, TypedModel,
    TypedModelPatch, tract_ndarray, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{DimLike, bail, ensure};

/// The fixed geometry of one depthwise convolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Geometry {
    channels: usize,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Geometry {
    /// Width of a phase plane: the padded input holds the
    /// `(out_w - 1) * sw + kw` columns the kernel reads, split into `sw`
    /// interleaved phases.
    fn phase_w(&self) -> usize {
        ((self.out_w - 1) * self.sw + self.kw).div_ceil(self.sw)
    }

    /// Height of a phase plane, likewise.
    fn phase_h(&self) -> usize {
        ((self.out_h - 1) * self.sh + self.kh).div_ceil(self.sh)
    }
}

/// Per-thread buffers, reused from plane to plane.
#[derive(Default)]
struct Scratch {
    phases: Vec<f32>,
    acc: Vec<f32>,
    /// Per tap: where it starts in `phases`, and its weight.
    taps: Vec<(usize, f32)>,
}

/// The fused operator that replaces a depthwise `Conv` (and its clamp).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DepthwiseConv {
    g: Geometry,
    /// Whether the input has a leading batch axis (tract drops a batch of 1).
    batched: bool,
    /// `[channels, kh * kw]`.
    weights: Arc<Tensor>,
    /// `[channels]`.
    bias: Arc<Tensor>,
    bounds: Bounds,
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "EdgeserveDepthwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.g;
        Ok(vec![format!(
            "{}x{} stride {}x{}, {} channels, clamp {}",
            g.kh, g.kw, g.sh, g.sw, g.channels, self.bounds
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let g = &self.g;
        let Some(input) = inputs.first() else {
            bail!("EdgeserveDepthwiseConv takes one input")
        };
        let shape = input.shape();
        let spatial = &shape[shape.len().saturating_sub(3)..];
        ensure!(
            shape.len() == 3 + usize::from(self.batched) && spatial == [g.channels, g.in_h, g.in_w],
            "EdgeserveDepthwiseConv: input shape {shape:?}, expected [{}{}, {}, {}]",
            if self.batched { "N, " } else { "" },
            g.channels,
            g.in_h,
            g.in_w
        );
        let batch = if self.batched { shape[0] } else { 1 };
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let weights = self.weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let plane_in = g.in_h * g.in_w;
        let plane_out = g.out_h * g.out_w;
        let mut out = vec![0f32; batch * g.channels * plane_out];
        let taps = g.kh * g.kw;
        let one_plane = |scratch: &mut Scratch, (ix, out): (usize, &mut [f32])| -> TractResult<()> {
            let c = ix % g.channels;
            plane(
                g,
                &x[ix * plane_in..][..plane_in],
                &weights[c * taps..][..taps],
                bias[c],
                self.bounds,
                out,
                scratch,
            )
        };
        fused::for_each(out.chunks_mut(plane_out).enumerate().collect(), one_plane)?;
        let mut out_shape: Vec<usize> = shape.to_vec();
        let rank = out_shape.len();
        out_shape[rank - 2] = g.out_h;
        out_shape[rank - 1] = g.out_w;
        let t = tract_ndarray::ArrayD::from_shape_vec(out_shape, out)?.into_tensor();
        Ok(tvec!(t.into_tvalue()))
    }
}

/// One channel of one image.
///
/// The zero-padded input is split into `sh * sw` phase planes (phase
/// `(py, px)` holds padded pixels `(i * sh + py, j * sw + px)`), so that every
/// kernel tap reads one phase plane at a fixed offset, contiguously. The
/// output is computed over the whole plane at the phase width, as if it were
/// one long row: the columns past `out_w` collect garbage that is dropped
/// when the result is copied out. One long row instead of one loop per
/// output row matters for the late 14×14 and 7×7 layers, where short loops
/// spent more time starting than computing.
fn plane(
    g: &Geometry,
    input: &[f32],
    weights: &[f32],
    bias: f32,
    bounds: Bounds,
    out: &mut [f32],
    scratch: &mut Scratch,
) -> TractResult<()> {
    let (pw, ph) = (g.phase_w(), g.phase_h());
    let plane_len = pw * ph;
    let Scratch { phases, acc, taps } = scratch;
    phases.clear();
    // Spare room: the last taps of the last row run past the plane end
    // into columns that are dropped, and the last block past that.
    phases.resize(g.sh * g.sw * plane_len + pw + MAX_BLOCK, 0.0);
    for (iy, src) in input.chunks_exact(g.in_w).enumerate() {
        let r = iy + g.pad_top;
        let (py, i) = (r % g.sh, r / g.sh);
        if i >= ph {
            continue;
        }
        for px in 0..g.sw {
            let base = (py * g.sw + px) * plane_len + i * pw;
            let dst = &mut phases[base..base + pw];
            if g.sw == 1 {
                let end = (g.pad_left + g.in_w).min(pw);
                let n = end.saturating_sub(g.pad_left);
                dst[g.pad_left.min(end)..end].copy_from_slice(&src[..n]);
            } else {
                // Padded column j * sw + px is source column
                // j * sw + px - pad_left; copy the j for which it exists.
                let first = g.pad_left.saturating_sub(px).div_ceil(g.sw);
                let Some(start) = (first * g.sw + px).checked_sub(g.pad_left) else {
                    continue;
                };
                let src = src.get(start..).unwrap_or_default();
                let dst = dst.get_mut(first..).unwrap_or_default();
                gather(dst, src, g.sw);
            }
        }
    }
    let acc_len = g.out_h * pw;
    taps.clear();
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let phase = (ky % g.sh) * g.sw + kx % g.sw;
            let start = phase * plane_len + (ky / g.sh) * pw + kx / g.sw;
            taps.push((start, weights[ky * g.kw + kx]));
        }
    }
    acc.clear();
    acc.resize(acc_len.div_ceil(MAX_BLOCK) * MAX_BLOCK, 0.0);
    pulp::Arch::new().dispatch(Accumulate {
        phases,
        taps,
        acc,
        bias,
        bounds,
    })?;
    for (dst, src) in out.chunks_exact_mut(g.out_w).zip(acc.chunks_exact(pw)) {
        dst.copy_from_slice(&src[..g.out_w]);
    }
    Ok(())
}

/// `dst[j] = src[j * step]` for as many `j` as both allow.
///
/// Kept out of line: inlined into the plane loop, the compiler left the
/// iterator calls in and this copy took more time than the convolution.
#[inline(never)]
fn gather(dst: &mut [f32], src: &[f32], step: usize) {
    let n = dst.len().min(src.len().div_ceil(step.max(1)));
    if n == 0 {
        return;
    }
    let (dst, src) = (&mut dst[..n], &src[..(n - 1) * step + 1]);
    for (j, d) in dst.iter_mut().enumerate() {
        *d = src[j * step];
    }
}

/// Accumulators per block of outputs: enough independent sums to hide the
/// latency of the multiply-add.
const VECTORS: usize = 4;

/// The largest block: four AVX-512 vectors. Buffers are sized in multiples
/// of it so that every block of every instruction set is whole.
const MAX_BLOCK: usize = 64;

/// The multiply-adds of one plane, run with the widest SIMD the CPU has
/// (AVX-512 or AVX2+FMA natively, chosen at run time by `pulp`; `simd128` in
/// wasm).
///
/// Output-stationary: each block of outputs stays in registers across all
/// taps and is stored once. Accumulating tap by tap in memory instead made
/// every tap a load-add-store chain, latency-bound at about one
/// multiply-add per cycle.
struct Accumulate<'a> {
    phases: &'a [f32],
    /// Per tap: where it starts in `phases`, and its weight.
    taps: &'a [(usize, f32)],
    acc: &'a mut [f32],
    bias: f32,
    bounds: Bounds,
}

impl pulp::WithSimd for Accumulate<'_> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> TractResult<()> {
        let Accumulate {
            phases,
            taps,
            acc,
            bias,
            bounds,
        } = self;
        let block = VECTORS * S::F32_LANES;
        let (bias, lo, hi) = (
            simd.splat_f32s(bias),
            simd.splat_f32s(bounds.lo()),
            simd.splat_f32s(bounds.hi()),
        );
        for (b, chunk) in acc.chunks_exact_mut(block).enumerate() {
            let q = b * block;
            let mut sum = [bias; VECTORS];
            for &(start, w) in taps {
                let src = phases.get(start + q..start + q + block).unwrap_or_default();
                let (src, _) = S::as_simd_f32s(src);
                let [s0, s1, s2, s3] = src else {
                    bail!("EdgeserveDepthwiseConv: a tap reads past its phase plane")
                };
                let w = simd.splat_f32s(w);
                sum[0] = simd.mul_add_e_f32s(w, *s0, sum[0]);
                sum[1] = simd.mul_add_e_f32s(w, *s1, sum[1]);
                sum[2] = simd.mul_add_e_f32s(w, *s2, sum[2]);
                sum[3] = simd.mul_add_e_f32s(w, *s3, sum[3]);
            }
            let (out, _) = S::as_mut_simd_f32s(chunk);
            for (o, s) in out.iter_mut().zip(sum) {
                // max first, as the model's `max(x, lo)` then `min(.., hi)`.
                *o = simd.min_f32s(simd.max_f32s(s, lo), hi);
            }
        }
        Ok(())
    }
}

impl TypedOp for DepthwiseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(input) = inputs.first() else {
            bail!("EdgeserveDepthwiseConv takes one input")
        };
        let mut shape: TVec<_> = input.shape.iter().cloned().collect();
        let rank = shape.len();
        ensure!(rank >= 3, "EdgeserveDepthwiseConv: input of rank {rank}");
        shape[rank - 2] = self.g.out_h.into();
        shape[rank - 1] = self.g.out_w.into();
        Ok(tvec!(TypedFact::dt_shape(DatumType::F32, shape)))
    }

    as_op!();
}

/// Replaces every depthwise convolution tract would run with its generic
/// kernel by [`DepthwiseConv`], fusing the clamp that follows it. Only plain
/// cases are taken: f32, NCHW, OIHW kernel and bias known at load, no
/// dilation, concrete spatial size. Others are left to tract.
pub(crate) fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    fused::rewrite_all::<Conv>(model, patch_for)
}

fn patch_for(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    let channels = spec.input_channels;
    let plain = conv.q_params.is_none()
        && conv.kernel_fmt == KernelFormat::OIHW
        && conv.group == channels
        && spec.output_channels == channels
        && matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
        && spec.kernel_shape.len() == 2
        && spec.dilations.as_ref().is_none_or(|d| d.iter().all(|&d| d == 1))
        && node.inputs.len() == 3;
    if !plain {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let kernel = model.outlet_fact(node.inputs[1])?.konst.clone();
    let bias = model.outlet_fact(node.inputs[2])?.konst.clone();
    let (Some(kernel), Some(bias)) = (kernel, bias) else {
        return Ok(None);
    };
    let rank = input.rank();
    if input.datum_type != DatumType::F32
        || kernel.datum_type() != DatumType::F32
        || bias.datum_type() != DatumType::F32
        || rank < 3
    {
        return Ok(None);
    }
    let (Ok(c), Ok(in_h), Ok(in_w)) = (
        input.shape[rank - 3].to_usize(),
        input.shape[rank - 2].to_usize(),
        input.shape[rank - 1].to_usize(),
    ) else {
        return Ok(None);
    };
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    if c != channels || kernel.shape() != [c, 1, kh, kw] || !(bias.len() == c || bias.len() == 1) {
        return Ok(None);
    }
    let strides = spec.strides.clone().unwrap_or_else(|| tvec!(1, 1));
    let (sh, sw) = (strides[0], strides[1]);
    let rows = spec.padding.compute_one(0, &in_h, kh, 1, sh);
    let cols = spec.padding.compute_one(1, &in_w, kw, 1, sw);
    if rows.convoluted == 0 || cols.convoluted == 0 || sh == 0 || sw == 0 {
        return Ok(None);
    }
    let g = Geometry {
        channels: c,
        in_h,
        in_w,
        out_h: rows.convoluted,
        out_w: cols.convoluted,
        kh,
        kw,
        sh,
        sw,
        pad_top: rows.pad_before,
        pad_left: cols.pad_before,
    };
    let weights = kernel.clone().into_tensor().into_shape(&[c, kh * kw])?;
    let bias = if bias.len() == c {
        bias.clone().into_tensor().into_shape(&[c])?
    } else {
        let b = bias.try_as_plain_ram()?.as_slice::<f32>()?[0];
        Tensor::from_shape(&[c], &vec![b; c])?
    };

    let (bounds, last) = fused::following_clamp(model, id)?;
    let op = DepthwiseConv {
        g,
        batched: rank == 4,
        weights: Arc::new(weights),
        bias: Arc::new(bias),
        bounds,
    };
    Ok(Some(fused::replacement(model, node, op, last)?))
}
