//! A convolution over few input channels (a network's stem: an RGB image
//! into its first feature maps) that writes the blocked layout
//! (`crate::blocked`) straight away, with the zero padding before it, its
//! bias and a following clamp fused in.
//!
//! Hand-written because tract ran EfficientNet-Lite0's stem (3 → 32
//! channels, 3×3, stride 2) as a zero `Pad`, an im2col product, a separate
//! clamp and then the conversion into the blocked layout: four passes over
//! 1.6 MB, about 1.8 ms of a 13 ms run (`benches/README.md`). Here each
//! output vector is eight output channels of one pixel, accumulated over
//! the `cin · kh · kw` taps with the input value broadcast, natively for
//! two blocks of output channels at once (see `PAIR_RUN`); only created
//! where the blocked layout runs (AVX2 and FMA, or wasm SIMD).

use crate::blocked::{self, BLOCK, BlockOp, Lanes8};
use crate::fused::{self, Bounds};
use crate::recycle;
use tract_onnx::prelude::{
    Arc, DatumType, IntoTValue, OutletId, TValue, TVec, Tensor, TractResult, TypedFact, TypedModel,
    TypedModelPatch, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::ops::array::{Pad, PadMode};
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{DimLike, bail, ensure};

/// Input channels up to which the direct form is used; past it tract's
/// im2col product is the better one.
const MAX_CIN: usize = 4;

/// Output pixels of a row computed together.
const RUN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Geometry {
    cin: usize,
    cout: usize,
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
    /// Rows of the padded input the taps read.
    fn rows(&self) -> usize {
        (self.out_h - 1) * self.sh + self.kh
    }

    /// Columns of the padded input: what the taps read, and `sw` more so
    /// that every run reads whole windows of `RUN · sw` values.
    fn cols(&self) -> usize {
        (self.out_w - 1) * self.sw + self.kw + self.sw
    }
}

/// The fused operator: `[N,] cin, H, W` (NCHW) in, `[N,] cout, OH, OW` out in
/// the blocked layout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DenseConv {
    g: Geometry,
    batched: bool,
    /// `[cout / 8, cin · kh · kw, 8]`.
    weights: Arc<Tensor>,
    /// `[cout]`.
    bias: Arc<Tensor>,
    bounds: Bounds,
}

impl Op for DenseConv {
    fn name(&self) -> StaticName {
        "EdgeserveDenseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.g;
        Ok(vec![format!(
            "{}→{} channels, {}x{} stride {}x{}, clamp {}, blocked output",
            g.cin, g.cout, g.kh, g.kw, g.sh, g.sw, self.bounds
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DenseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let g = &self.g;
        let (batch, x) = fused::image_input(
            "EdgeserveDenseConv",
            inputs.first(),
            self.batched,
            [g.cin, g.in_h, g.in_w],
        )?;
        let shape = inputs[0].shape();
        let weights = self.weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut out_shape = shape.to_vec();
        let r = out_shape.len();
        out_shape[r - 3] = g.cout;
        out_shape[r - 2] = g.out_h;
        out_shape[r - 1] = g.out_w;
        let mut tensor = recycle::output(&out_shape)?;
        let mut view = tensor.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        let (rows, cols) = (g.rows(), g.cols());
        let plane_in = g.in_h * g.in_w;
        let plane_out = g.out_h * g.out_w * BLOCK;
        let taps = g.cin * g.kh * g.kw;
        let blocks = g.cout / BLOCK;
        for (n, out) in out.chunks_mut(blocks * plane_out).enumerate().take(batch) {
            // The image with its zero padding, once for every output block.
            let mut padded = vec![0f32; g.cin * rows * cols];
            let image = x
                .get(n * g.cin * plane_in..(n + 1) * g.cin * plane_in)
                .unwrap_or_default();
            let width = g.in_w.min(cols.saturating_sub(g.pad_left));
            for (c, plane) in image.chunks_exact(plane_in).enumerate() {
                for (iy, src) in plane.chunks_exact(g.in_w).enumerate() {
                    let r = iy + g.pad_top;
                    if r >= rows {
                        break;
                    }
                    let start = (c * rows + r) * cols + g.pad_left;
                    padded[start..start + width].copy_from_slice(&src[..width]);
                }
            }
            let padded = &padded[..];
            // Output blocks two at a time natively (see `PAIR_RUN`; in wasm
            // 12 accumulators of two 128-bit vectors would not fit V8's
            // registers), their rows split so that every thread has a part.
            let per_item = if cfg!(target_arch = "wasm32") { 1 } else { 2 };
            let pairs = blocks.div_ceil(per_item);
            let rows_per = g.out_h.div_ceil(fused::workers().div_ceil(pairs).max(1)).max(1);
            let part = rows_per * g.out_w * BLOCK;
            let mut items = Vec::new();
            for (pair, planes) in out.chunks_mut(per_item * plane_out).enumerate() {
                let (first, second) = planes.split_at_mut(plane_out.min(planes.len()));
                let mut second = second.chunks_mut(part);
                for (i, first) in first.chunks_mut(part).enumerate() {
                    items.push((per_item * pair, i * rows_per, first, second.next()));
                }
            }
            fused::for_each(
                items,
                |_: &mut (), (ob, row0, first, second): (usize, usize, &mut [f32], Option<&mut [f32]>)| {
                    let nb = if second.is_some() { 2 } else { 1 };
                    let plane = Plane {
                        g,
                        padded,
                        w: weights
                            .get(ob * taps * BLOCK..(ob + nb) * taps * BLOCK)
                            .unwrap_or_default(),
                        bias: bias.get(ob * BLOCK..(ob + nb) * BLOCK).unwrap_or_default(),
                        bounds: self.bounds,
                        row0,
                        out: [first, second.unwrap_or_default()],
                    };
                    const NAME: &str = "EdgeserveDenseConv";
                    match g.sw {
                        1 => blocked::vectorize_or_fail(NAME, Stride::<1>(plane))?,
                        2 => blocked::vectorize_or_fail(NAME, Stride::<2>(plane))?,
                        sw => bail!("{NAME}: stride {sw}"),
                    }
                },
            )?;
        }
        recycle::keep(inputs);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

/// Rows of one or two blocks of eight output channels of one image.
struct Plane<'a> {
    g: &'a Geometry,
    /// `[cin, rows, cols]`.
    padded: &'a [f32],
    /// `[blocks, cin · kh · kw, 8]`.
    w: &'a [f32],
    /// `[blocks, 8]`.
    bias: &'a [f32],
    bounds: Bounds,
    /// The output row `out` starts at.
    row0: usize,
    /// `[rows, out_w, 8]` of each block; the second empty for one block.
    out: [&'a mut [f32]; 2],
}

/// [`Plane`] for a horizontal stride known when compiling, so that the
/// windows the taps read have a fixed size.
struct Stride<'a, const SW: usize>(Plane<'a>);

/// Output pixels of a row computed together for two blocks: 6 × 2
/// accumulators, as in the 1×1 kernel. Each tap's broadcast input then
/// feeds two blocks: with one block of 8 pixels, the 9 loads per 8
/// multiply-adds bounded the stem (two 256-bit loads a cycle on x86).
const PAIR_RUN: usize = 6;

impl<const SW: usize> BlockOp for Stride<'_, SW> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn run<L: Lanes8>(self, simd: L) -> TractResult<()> {
        let Plane {
            g,
            padded,
            w,
            bias,
            bounds,
            row0,
            out: [first, second],
        } = self.0;
        let (wv, _) = w.as_chunks::<BLOCK>();
        let (bv, _) = bias.as_chunks::<BLOCK>();
        let (o0, _) = first.as_chunks_mut::<BLOCK>();
        let (o1, _) = second.as_chunks_mut::<BLOCK>();
        let (rows, cols) = (g.rows(), g.cols());
        let taps = g.cin * g.kh * g.kw;
        let pair = !o1.is_empty();
        ensure!(
            wv.len() == taps * bv.len()
                && bv.len() == 1 + usize::from(pair)
                && o0.len().is_multiple_of(g.out_w)
                && (!pair || o1.len() == o0.len())
                && row0 + o0.len() / g.out_w <= g.out_h
                && padded.len() == g.cin * rows * cols
                && g.out_w >= RUN,
            "EdgeserveDenseConv: buffers do not match {g:?}"
        );
        let (lo, hi) = (simd.splat(bounds.lo()), simd.splat(bounds.hi()));
        let clamp = |a| simd.clamp(a, lo, hi);
        if pair {
            let (w0, w1) = wv.split_at(taps);
            let (b0, b1) = (simd.load(&bv[0]), simd.load(&bv[1]));
            for (r, (row0_out, row1_out)) in o0
                .chunks_exact_mut(g.out_w)
                .zip(o1.chunks_exact_mut(g.out_w))
                .enumerate()
            {
                let oy = row0 + r;
                let mut ox = 0;
                while ox < g.out_w {
                    let at = ox.min(g.out_w - PAIR_RUN);
                    let (mut a00, mut a10, mut a20, mut a30, mut a40, mut a50) = (b0, b0, b0, b0, b0, b0);
                    let (mut a01, mut a11, mut a21, mut a31, mut a41, mut a51) = (b1, b1, b1, b1, b1, b1);
                    for_each_tap::<SW, PAIR_RUN, _>(g, padded, oy, at, w0.iter().zip(w1), |x, (u0, u1)| {
                        let (u0, u1) = (simd.load(u0), simd.load(u1));
                        // Pixel `$p`'s input into both blocks.
                        macro_rules! both {
                            ($($p:literal $a0:ident $a1:ident),+) => {$(
                                let v = simd.splat(x[$p][0]);
                                $a0 = simd.mul_add(v, u0, $a0);
                                $a1 = simd.mul_add(v, u1, $a1);
                            )+};
                        }
                        both!(0 a00 a01, 1 a10 a11, 2 a20 a21, 3 a30 a31, 4 a40 a41, 5 a50 a51);
                    })?;
                    if let (Some(o0), Some(o1)) = (
                        row0_out.get_mut(at..at + PAIR_RUN),
                        row1_out.get_mut(at..at + PAIR_RUN),
                    ) {
                        for (o, a) in o0.iter_mut().zip([a00, a10, a20, a30, a40, a50]) {
                            simd.store(clamp(a), o);
                        }
                        for (o, a) in o1.iter_mut().zip([a01, a11, a21, a31, a41, a51]) {
                            simd.store(clamp(a), o);
                        }
                    }
                    ox += PAIR_RUN;
                }
            }
            return Ok(());
        }
        let b = simd.load(&bv[0]);
        for (r, row) in o0.chunks_exact_mut(g.out_w).enumerate() {
            let oy = row0 + r;
            let mut ox = 0;
            while ox < g.out_w {
                let at = ox.min(g.out_w - RUN);
                let (mut a0, mut a1, mut a2, mut a3) = (b, b, b, b);
                let (mut a4, mut a5, mut a6, mut a7) = (b, b, b, b);
                for_each_tap::<SW, RUN, _>(g, padded, oy, at, wv.iter(), |x, wk| {
                    let wk = simd.load(wk);
                    a0 = simd.mul_add(simd.splat(x[0][0]), wk, a0);
                    a1 = simd.mul_add(simd.splat(x[1][0]), wk, a1);
                    a2 = simd.mul_add(simd.splat(x[2][0]), wk, a2);
                    a3 = simd.mul_add(simd.splat(x[3][0]), wk, a3);
                    a4 = simd.mul_add(simd.splat(x[4][0]), wk, a4);
                    a5 = simd.mul_add(simd.splat(x[5][0]), wk, a5);
                    a6 = simd.mul_add(simd.splat(x[6][0]), wk, a6);
                    a7 = simd.mul_add(simd.splat(x[7][0]), wk, a7);
                })?;
                if let Some(o) = row.get_mut(at..at + RUN) {
                    for (o, a) in o.iter_mut().zip([a0, a1, a2, a3, a4, a5, a6, a7]) {
                        simd.store(clamp(a), o);
                    }
                }
                ox += RUN;
            }
        }
        Ok(())
    }
}

/// Calls `f` for every tap `(c, ky, kx)` of the kernel, in weight order,
/// with its weight from `weights` and the window of the padded input it
/// reads for the `N` pixels from `at` of output row `oy`: value `j · SW` is
/// pixel `at + j`'s. Both kernel forms read through here; inlined, so that
/// their accumulators stay in registers.
#[inline(always)]
fn for_each_tap<const SW: usize, const N: usize, W>(
    g: &Geometry,
    padded: &[f32],
    oy: usize,
    at: usize,
    mut weights: impl Iterator<Item = W>,
    mut f: impl FnMut(&[[f32; SW]; N], W),
) -> TractResult<()> {
    let (rows, cols) = (g.rows(), g.cols());
    for c in 0..g.cin {
        for ky in 0..g.kh {
            let row = (c * rows + oy * g.sh + ky) * cols + at * SW;
            for kx in 0..g.kw {
                let x = padded
                    .get(row + kx..)
                    .and_then(|w| w.get(..N * SW))
                    .map(|w| <&[[f32; SW]; N]>::try_from(w.as_chunks::<SW>().0));
                let (Some(Ok(x)), Some(w)) = (x, weights.next()) else {
                    bail!("EdgeserveDenseConv: a tap reads past the padded input or its weights")
                };
                f(x, w);
            }
        }
    }
    Ok(())
}

impl TypedOp for DenseConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(input) = inputs.first() else {
            bail!("EdgeserveDenseConv takes one input")
        };
        let mut shape: TVec<_> = input.shape.iter().cloned().collect();
        let rank = shape.len();
        ensure!(rank >= 3, "EdgeserveDenseConv: input of rank {rank}");
        shape[rank - 3] = self.g.cout.into();
        shape[rank - 2] = self.g.out_h.into();
        shape[rank - 1] = self.g.out_w.into();
        Ok(tvec!(TypedFact::dt_shape(DatumType::F32, shape)))
    }

    as_op!();
}

/// Replaces every convolution over at most [`MAX_CIN`] input channels into
/// whole blocks of output channels, with a zero `Pad` before it and a clamp
/// after, by [`DenseConv`]. Its output is blocked, so only for
/// [`blocked::apply`] to wire in, and only where the blocked kernels run.
pub(crate) fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    if !blocked::available() {
        return Ok(0);
    }
    fused::rewrite_all::<Conv>(model, patch_for)
}

/// A zero `Pad` of the last two axes only, feeding `conv` alone: its input
/// and the rows and columns it adds before.
fn zero_pad_before(model: &TypedModel, conv: usize) -> TractResult<Option<(OutletId, usize, usize)>> {
    let wire = model.node(conv).inputs[0];
    let node = model.node(wire.node);
    let Some(pad) = node.op_as::<Pad>() else {
        return Ok(None);
    };
    let PadMode::Constant(value) = &pad.mode else {
        return Ok(None);
    };
    let zero = value.len() == 1
        && value.datum_type() == DatumType::F32
        && value.try_as_plain_ram()?.as_slice::<f32>()?[0] == 0.0;
    let n = pad.pads.len();
    if !zero
        || n < 3
        || pad.pads[..n - 2].iter().any(|&p| p != (0, 0))
        || model.single_succ(node.id)?.is_none()
    {
        return Ok(None);
    }
    Ok(Some((node.inputs[0], pad.pads[n - 2].0, pad.pads[n - 1].0)))
}

fn patch_for(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(conv) = fused::plain_conv(model, node)? else {
        return Ok(None);
    };
    let (cin, cout, rank) = (conv.cin, conv.cout, conv.rank);
    let (kh, kw, sh, sw) = (conv.kh, conv.kw, conv.sh, conv.sw);
    if conv.group != 1 || cin > MAX_CIN || !cout.is_multiple_of(BLOCK) || conv.out_w < RUN || sw > 2 {
        return Ok(None);
    }
    // The zero padding a `Pad` before adds, taken in: the image is read
    // unpadded and the padding counted in the geometry.
    let (source, in_h, in_w, extra_top, extra_left) = match zero_pad_before(model, id)? {
        Some((wire, top, left)) => {
            let fact = model.outlet_fact(wire)?;
            let (Ok(ih), Ok(iw)) = (fact.shape[rank - 2].to_usize(), fact.shape[rank - 1].to_usize()) else {
                return Ok(None);
            };
            if fact.rank() != rank {
                return Ok(None);
            }
            (wire, ih, iw, top, left)
        }
        None => (node.inputs[0], conv.in_h, conv.in_w, 0, 0),
    };
    let g = Geometry {
        cin,
        cout,
        in_h,
        in_w,
        out_h: conv.out_h,
        out_w: conv.out_w,
        kh,
        kw,
        sh,
        sw,
        pad_top: conv.pad_top + extra_top,
        pad_left: conv.pad_left + extra_left,
    };
    let taps = cin * kh * kw;
    let kernel = conv.kernel()?;
    let weights = blocked::interleave(cout, taps, kernel)?;
    let (bounds, last) = fused::following_clamp(model, id)?;
    let op = DenseConv {
        g,
        batched: rank == 4,
        weights: Arc::new(weights),
        bias: Arc::new(Tensor::from_shape(&[cout], &conv.bias)?),
        bounds,
    };
    let mut patch = TypedModelPatch::new(format!("edgeserve {}", node.name));
    let tap = patch.tap_model(model, source)?;
    let wire = patch.wire_node(&node.name, op, &[tap])?;
    patch.shunt_outside(model, OutletId::new(last, 0), wire[0])?;
    Ok(Some(patch))
}
