//! Depthwise convolution (one filter per channel), in the model's NCHW
//! layout or the blocked one (`crate::blocked`), with its bias and a
//! following clamp (ReLU6, ReLU) fused in.
//!
//! Hand-written because tract 0.23.9's own depthwise kernel was the largest
//! cost on the CPU: 18.9 of 33.7 ms for EfficientNet-Lite0 in NCHW, 11.7 ms
//! after tract's channels-last transform, which then costs more in packing
//! and un-fused clamps (`benches/README.md`); this one takes about 5 ms.
//! In NCHW, stride is handled by splitting the padded input into
//! `stride²` phase planes once, so that every tap reads contiguous memory,
//! and the multiply-adds run with the widest SIMD the CPU has (`pulp`:
//! AVX-512 or AVX2+FMA chosen at run time). The NCHW form natively only: in
//! wasm tract's own kernels measured as fast (see `lib.rs`). The blocked
//! form, natively and in wasm, is below `to_blocked`: there a pixel is a
//! vector of its own, so strides need no reordering; an input it does not
//! write over is read where it is, and one it does is padded a few rows at
//! a time when its plane is large.

use crate::blocked::{self, BLOCK, BlockOp, Lanes8};
use crate::fused::{self, Bounds};
use crate::recycle;
use tract_onnx::prelude::{
    Arc, DatumType, IntoArcTensor, IntoTValue, TValue, TVec, Tensor, TractResult, TypedFact, TypedModel,
    TypedModelPatch, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{bail, ensure};

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

    /// The output columns whose taps all read input columns, none of the
    /// padding.
    fn inner_cols(&self) -> std::ops::Range<usize> {
        let from = self.pad_left.div_ceil(self.sw).min(self.out_w);
        // Output `ox`'s last tap reads input column
        // `ox · sw + kw - 1 - pad_left`.
        let to = (self.in_w + self.pad_left)
            .checked_sub(self.kw)
            .map_or(0, |last| last / self.sw + 1)
            .min(self.out_w);
        from..to.max(from)
    }

    /// The padded rows and columns the taps read over the whole output
    /// (`(out_h - 1) · sh + kh` and the same across); none for an output
    /// of no rows or columns.
    fn padded(&self) -> Option<(usize, usize)> {
        Some((
            self.out_h.checked_sub(1)? * self.sh + self.kh,
            self.out_w.checked_sub(1)? * self.sw + self.kw,
        ))
    }

    /// The kernel rows of output row `oy` that read input rows, and the
    /// input row of the first of them.
    fn inner_taps(&self, oy: usize) -> (std::ops::Range<usize>, usize) {
        let top = oy * self.sh;
        let from = self.pad_top.saturating_sub(top).min(self.kh);
        let to = (self.in_h + self.pad_top)
            .saturating_sub(top)
            .clamp(from, self.kh);
        (from..to, (top + from).saturating_sub(self.pad_top))
    }
}

/// In a ring of `slots` padded rows, the slot of the next output row's
/// first tap row, `step` (the stride) after `first`.
fn next_slot(first: usize, step: usize, slots: usize) -> usize {
    let slots = slots.max(1);
    let mut at = first + step;
    while at >= slots {
        at -= slots;
    }
    at
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
    /// `[channels, kh * kw]`; in the blocked layout
    /// `[channels / 8, kh * kw, 8]`.
    weights: Arc<Tensor>,
    /// `[channels]`.
    bias: Arc<Tensor>,
    bounds: Bounds,
    /// Input and output in the blocked layout (`crate::blocked`).
    blocked: bool,
}

impl DepthwiseConv {
    /// The same convolution on the blocked layout, where its channel count
    /// allows it.
    pub(crate) fn to_blocked(&self) -> TractResult<Option<DepthwiseConv>> {
        let c = self.g.channels;
        // Runs of at least four pixels may overlap but not exceed a row;
        // strides of 1 and 2 only (`RowRun`'s instances), and kernels of
        // at most `MAX_KH` rows.
        if self.blocked
            || !c.is_multiple_of(BLOCK)
            || self.g.out_w < MIN_RUN
            || self.g.sw > MAX_STRIDE
            || self.g.kh > MAX_KH
        {
            return Ok(None);
        }
        let taps = self.g.kh * self.g.kw;
        let from = self.weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let weights = blocked::interleave(c, taps, from)?;
        Ok(Some(DepthwiseConv {
            weights: Arc::new(weights),
            blocked: true,
            ..self.clone()
        }))
    }

    /// `out` (`[N, C/8, out_h, out_w, 8]`) from `x` (`[N, C/8, in_h, in_w,
    /// 8]`), a block of channels at a time. With no `x`, the input is
    /// `out` itself (same shape): each plane is copied into its padded
    /// scratch before any of its outputs is written, and planes do not
    /// read one another.
    fn eval_blocked(
        &self,
        x: Option<&[f32]>,
        weights: &[f32],
        bias: &[f32],
        out: &mut [f32],
    ) -> TractResult<()> {
        let g = &self.g;
        let (plane_in, plane_out, taps) = (g.in_h * g.in_w * BLOCK, g.out_h * g.out_w * BLOCK, g.kh * g.kw);
        ensure!(
            x.is_some() || plane_in == plane_out,
            "EdgeserveDepthwiseConv: in place with planes of {plane_in} and {plane_out} values"
        );
        let blocks = g.channels / BLOCK;
        let items: Vec<(usize, &mut [f32])> = out.chunks_mut(plane_out).enumerate().collect();
        fused::for_each(items, |padded: &mut Vec<f32>, (ix, out): (usize, &mut [f32])| {
            let cb = ix % blocks;
            blocked::vectorize_or_fail(
                "EdgeserveDepthwiseConv",
                BlockedPlane {
                    g,
                    x: x.map(|x| x.get(ix * plane_in..(ix + 1) * plane_in).unwrap_or_default()),
                    w: weights
                        .get(cb * taps * BLOCK..(cb + 1) * taps * BLOCK)
                        .unwrap_or_default(),
                    bias: bias.get(cb * BLOCK..(cb + 1) * BLOCK).unwrap_or_default(),
                    bounds: self.bounds,
                    padded,
                    out,
                },
            )?
        })
    }
}

/// Where a blocked depthwise convolution reads its input from when a
/// producer is fused in front of it (`crate::expand`): per block of
/// channels, a ring of `kh` padded rows of `cols` pixels, padded row `r` in
/// slot `r % kh`, the input's row `r - pad_top` from column `left`. The
/// padding columns and rows are zeros.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ring {
    pub(crate) cols: usize,
    pub(crate) left: usize,
    /// Padded rows read in all, padding included.
    pub(crate) rows: usize,
    pub(crate) pad_top: usize,
    pub(crate) in_h: usize,
    pub(crate) in_w: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) sh: usize,
    pub(crate) kh: usize,
    pub(crate) channels: usize,
}

#[cfg(not(target_arch = "wasm32"))]
impl Ring {
    /// The slot of the first tap row of the output row after the one
    /// whose first tap row is in `first`.
    pub(crate) fn next(&self, first: usize) -> usize {
        next_slot(first, self.sh, self.kh)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl DepthwiseConv {
    /// The ring a fused producer fills, for a blocked convolution whose
    /// every input column lands inside the padded row (the taps read all
    /// of them) and whose rows take whole runs.
    pub(crate) fn ring(&self) -> Option<Ring> {
        let g = &self.g;
        let (rows, cols) = g.padded()?;
        let left = g.pad_left.min(cols);
        let fits = left + g.in_w <= cols && g.out_w >= run_length(g.out_w, g.sw) && g.sh > 0;
        (self.blocked && fits).then_some(Ring {
            cols,
            left,
            rows,
            pad_top: g.pad_top,
            in_h: g.in_h,
            in_w: g.in_w,
            out_h: g.out_h,
            out_w: g.out_w,
            sh: g.sh,
            kh: g.kh,
            channels: g.channels,
        })
    }

    /// Output row `row` of channel block `cb` from `ring`, that block's
    /// slots ([`Ring`]), the first tap row in slot `first`. Inlined into a
    /// caller's `BlockOp::run`, whose SIMD it uses.
    #[inline(always)]
    pub(crate) fn ring_row<L: Lanes8>(
        &self,
        simd: L,
        cb: usize,
        ring: &[[f32; BLOCK]],
        first: usize,
        row: &mut [[f32; BLOCK]],
    ) -> TractResult<()> {
        let g = &self.g;
        let taps = g.kh * g.kw;
        let (wv, _) = self
            .weights
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .as_chunks::<BLOCK>();
        let (bv, _) = self
            .bias
            .try_as_plain_ram()?
            .as_slice::<f32>()?
            .as_chunks::<BLOCK>();
        let (Some(wv), Some(bias)) = (wv.get(cb * taps..(cb + 1) * taps), bv.get(cb)) else {
            bail!("EdgeserveDepthwiseConv: no weights for channel block {cb}")
        };
        let cols = g.padded().map_or(0, |(_, cols)| cols);
        ensure!(
            self.blocked && cols > 0 && row.len() == g.out_w && ring.len() == g.kh * cols,
            "EdgeserveDepthwiseConv: a ring of {} pixels for a row of {} of {g:?}",
            ring.len(),
            row.len()
        );
        let run = RowRun {
            simd,
            pv: ring,
            row_len: cols,
            ring: g.kh,
            taps: 0..g.kh,
            first,
            wv,
            bias: simd.load(bias),
            lo: simd.splat(self.bounds.lo()),
            hi: simd.splat(self.bounds.hi()),
            g,
        };
        run.row(run_length(g.out_w, g.sw), 0..g.out_w, 0, row)
    }
}

/// One block of eight channels of one image, in the blocked layout.
struct BlockedPlane<'a> {
    g: &'a Geometry,
    /// `[in_h, in_w, 8]`; `None` when it is `out` (same shape).
    x: Option<&'a [f32]>,
    /// `[kh * kw, 8]`.
    w: &'a [f32],
    /// `[8]`.
    bias: &'a [f32],
    bounds: Bounds,
    /// Scratch: the input with its zero padding, `[rows, cols, 8]`.
    padded: &'a mut Vec<f32>,
    /// `[out_h, out_w, 8]`.
    out: &'a mut [f32],
}

/// The most output pixels of a row computed together: natively 8
/// accumulators of one AVX2 vector, as many as keep both multiply-add
/// units busy through their latency. In wasm a block is two 128-bit
/// vectors and V8 allocates 15 of them on x86-64: 5 pixels take 10, as in
/// the 1×1 kernel (`pointwise::PIXELS`).
#[cfg(not(target_arch = "wasm32"))]
const MAX_RUN: usize = 8;
#[cfg(target_arch = "wasm32")]
const MAX_RUN: usize = 5;

/// The most natively at stride 1, where a run keeps its inputs in
/// registers too (`row_run_shifted`): 7 accumulators and 7 inputs fill
/// AVX2's 16 registers with the weight.
#[cfg(not(target_arch = "wasm32"))]
const MAX_RUN_S1: usize = 7;
#[cfg(target_arch = "wasm32")]
const MAX_RUN_S1: usize = MAX_RUN;

/// The fewest: rows narrower than this are left to tract.
const MIN_RUN: usize = 4;

/// The run length for rows of `width` output pixels at `stride`: the one
/// that computes the fewest pixels twice (a run that does not divide the
/// row overlaps the run before), counting one pixel's worth of work per
/// run for its set-up and stores. Runs of 8 over 14×14 planes, and of 4
/// over 7×7 ones, computed 14 % more pixels than the plane has; runs of 7
/// compute none more.
fn run_length(width: usize, stride: usize) -> usize {
    let most = if stride == 1 { MAX_RUN_S1 } else { MAX_RUN };
    (MIN_RUN..=most.min(width.max(MIN_RUN)))
        .rev()
        .min_by_key(|n| width.div_ceil(*n) * (n + 1))
        .unwrap_or(MIN_RUN)
}

impl BlockOp for BlockedPlane<'_> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn run<L: Lanes8>(self, simd: L) -> TractResult<()> {
        let BlockedPlane {
            g,
            x,
            w,
            bias,
            bounds,
            padded,
            out,
        } = self;
        // Rows and columns the taps read, padding included. A stride of 2
        // needs no reordering: each pixel is a vector of its own, loaded
        // alone, so a tap reads every other one as fast as neighbours.
        // (Splitting the columns into stride phases, as the NCHW kernel
        // must, cost a strided gather per pixel: the stride-2 layers took
        // 2.1-2.5× onnxruntime's time.)
        let (wv, _) = w.as_chunks::<BLOCK>();
        let (bv, _) = bias.as_chunks::<BLOCK>();
        ensure!(
            wv.len() == g.kh * g.kw
                && out.len() == g.out_h * g.out_w * BLOCK
                && bv.len() == 1
                && g.kh <= MAX_KH,
            "EdgeserveDepthwiseConv: blocked buffers do not match {g:?}"
        );
        let template = RowRun {
            simd,
            pv: &[],
            row_len: 0,
            ring: 0,
            taps: 0..g.kh,
            first: 0,
            wv,
            bias: simd.load(&bv[0]),
            lo: simd.splat(bounds.lo()),
            hi: simd.splat(bounds.hi()),
            g,
        };
        // Not in place, the runs read the input where it is, and only the
        // pixels at a row's ends whose taps reach into the padding are
        // computed alone (`RowRun::pixel`), where those are at most a
        // quarter of the row. Copying each plane into a padded buffer
        // first was 5 % of a Lite0 run (14.5 MB copied), and the stride-2
        // layers, which are never in place, took 494-552 µs where
        // onnxruntime took 390. With 2 edge pixels of 7 (Lite0's last 5×5
        // layer at stride 2) it lost, 60 → 66 µs, so that one is still
        // copied.
        //
        // Natively, a stride-2 layer whose rows start in the padding too
        // (padded on the left: Lite2's, and Lite0's 5×5 ones) is copied as
        // well. Measured per node, interleaved, four processes of each
        // build, one thread, medians: Lite0's 5×5 on 56×56 took 291 → 216
        // µs; Lite2's 5×5 on 65×65 373 → 316, 3×3 on 33×33 174 → 127 and
        // 5×5 on 17×17 228 → 197. Rows padded on the right only (Lite0's
        // 3×3 layers, as TensorFlow pads an even input) lost when copied,
        // 275 → 353 µs on 112×112. Not measured in wasm, whose runs are
        // shorter.
        let inner = g.inner_cols();
        let left_edge_at_stride_2 = cfg!(not(target_arch = "wasm32")) && g.sw > 1 && inner.start > 0;
        if let Some(x) = x
            && inner.len() >= MIN_RUN
            && (g.out_w - inner.len()) * 4 <= g.out_w
            && !left_edge_at_stride_2
        {
            return direct(g, x, &template, inner, out);
        }
        let Some((rows, cols)) = g.padded() else {
            bail!("EdgeserveDepthwiseConv: an output of no rows or columns, {g:?}")
        };
        // Otherwise a large plane keeps only the `kh` padded rows an output
        // row reads, in a ring, each copied in just before the first output
        // row that needs it: a few kilobytes that stay in L1, where a whole padded
        // 112×112 plane (416 KB) went through L2. Smaller planes are padded
        // whole before their first output row: there copying between rows
        // cost more than it saved (`benches/README.md`).
        let ring = if rows * cols * BLOCK * 4 > RING_ABOVE {
            g.kh
        } else {
            rows
        };
        let len = ring * cols * BLOCK;
        if padded.len() != len {
            padded.clear();
            padded.resize(len, 0.0);
        }
        ensure!(
            x.is_some() || g.pad_top < g.kh,
            "EdgeserveDepthwiseConv: in place with {} padding rows above a kernel of {}",
            g.pad_top,
            g.kh
        );
        let left = g.pad_left.min(cols);
        let width = g.in_w.min(cols - left);
        let step = run_length(g.out_w, g.sw);
        ensure!(
            g.out_w >= step,
            "EdgeserveDepthwiseConv: rows of {} pixels for runs of {step}",
            g.out_w
        );
        let pad = PadRows {
            g,
            cols,
            left,
            width,
            ring,
        };
        let template = RowRun {
            row_len: cols,
            ring,
            ..template
        };
        // The ring slot of the current output row's first tap row, advanced
        // by the stride from row to row.
        let mut first = 0;
        let next = |first: usize| next_slot(first, g.sh, ring);
        // A whole plane has a loop of its own, with one `RowRun` for all its
        // rows: folded into the ring's loop below (padding all rows at the
        // first), every depthwise layer of Lite0 ran slower, 1686 → 1828 µs
        // in all (interleaved, 100 profiled runs).
        if ring == rows {
            pad.rows(x.unwrap_or(out), padded, 0..rows)?;
            let (ov, _) = out.as_chunks_mut::<BLOCK>();
            let mut row_run = RowRun {
                pv: padded.as_chunks::<BLOCK>().0,
                ..template
            };
            for row in ov.chunks_exact_mut(g.out_w) {
                row_run.first = first;
                row_run.row(step, 0..g.out_w, 0, row)?;
                first = next(first);
            }
            return Ok(());
        }
        let mut filled = 0;
        for oy in 0..g.out_h {
            // In place (`x` is `out`), input row `oy` is written over below;
            // it is in the ring by then, and every row after it that a
            // later output row reads is still in `out` (`pad_top < kh`).
            let need = (oy * g.sh + g.kh).min(rows);
            pad.rows(x.unwrap_or(out), padded, filled..need)?;
            filled = filled.max(need);
            let (ov, _) = out.as_chunks_mut::<BLOCK>();
            let Some(row) = ov.get_mut(oy * g.out_w..(oy + 1) * g.out_w) else {
                bail!("EdgeserveDepthwiseConv: output row {oy} is short")
            };
            let row_run = RowRun {
                pv: padded.as_chunks::<BLOCK>().0,
                first,
                ..template.clone()
            };
            row_run.row(step, 0..g.out_w, 0, row)?;
            first = next(first);
        }
        Ok(())
    }
}

/// Every output row of one plane from its input `x` (`[in_h, in_w, 8]`)
/// read in place: runs over the output columns `inner`, whose taps read
/// only input columns, and the columns either side pixel by pixel. A
/// row's kernel rows that fall in the padding are skipped. Inlined into
/// `BlockedPlane::run`, whose SIMD it uses.
#[inline(always)]
fn direct<L: Lanes8>(
    g: &Geometry,
    x: &[f32],
    template: &RowRun<'_, L>,
    inner: std::ops::Range<usize>,
    out: &mut [f32],
) -> TractResult<()> {
    let (xv, _) = x.as_chunks::<BLOCK>();
    ensure!(
        xv.len() == g.in_h * g.in_w,
        "EdgeserveDepthwiseConv: an input plane of {} pixels for {g:?}",
        xv.len()
    );
    let step = run_length(inner.len(), g.sw);
    let (ov, _) = out.as_chunks_mut::<BLOCK>();
    for (oy, row) in ov.chunks_exact_mut(g.out_w).enumerate() {
        let (taps, first) = g.inner_taps(oy);
        let run = RowRun {
            pv: xv,
            row_len: g.in_w,
            ring: g.in_h,
            taps,
            first,
            ..template.clone()
        };
        for ox in (0..inner.start).chain(inner.end..g.out_w) {
            run.pixel(ox, row);
        }
        run.row(step, inner.clone(), g.pad_left, row)?;
    }
    Ok(())
}

/// Copies padded rows of one plane into its ring (or whole padded plane).
struct PadRows<'a> {
    g: &'a Geometry,
    cols: usize,
    /// Padding columns on the left, and input columns copied after them.
    left: usize,
    width: usize,
    /// Rows the buffer holds: padded row `r` goes to slot `r % ring`.
    ring: usize,
}

impl PadRows<'_> {
    /// Padded rows `rows` from `x` (`[in_h, in_w, 8]`) into `padded`, each
    /// position written once: a pixel, or a zero where the row or column
    /// is padding.
    fn rows(&self, x: &[f32], padded: &mut [f32], rows: std::ops::Range<usize>) -> TractResult<()> {
        let (g, cols) = (self.g, self.cols);
        let (src, _) = x.as_chunks::<BLOCK>();
        let (dst, _) = padded.as_chunks_mut::<BLOCK>();
        for r in rows {
            let slot = r % self.ring;
            let Some(dst) = dst.get_mut(slot * cols..(slot + 1) * cols) else {
                bail!("EdgeserveDepthwiseConv: {} padded rows of {cols}", self.ring)
            };
            let src = r
                .checked_sub(g.pad_top)
                .filter(|iy| *iy < g.in_h)
                .and_then(|iy| src.get(iy * g.in_w..iy * g.in_w + self.width));
            let Some(src) = src else {
                dst.fill([0.0; BLOCK]);
                continue;
            };
            let (head, rest) = dst.split_at_mut(self.left);
            head.fill([0.0; BLOCK]);
            let (body, tail) = rest.split_at_mut(self.width);
            body.copy_from_slice(src);
            tail.fill([0.0; BLOCK]);
        }
        Ok(())
    }
}

/// The widest stride along a row the blocked form takes.
const MAX_STRIDE: usize = 2;

/// The tallest kernel the blocked form takes.
const MAX_KH: usize = 16;

/// The padded plane size (bytes) above which only a ring of rows is kept.
const RING_ABOVE: usize = 128 * 1024;

/// What every run of output pixels of a row shares.
#[derive(Clone)]
struct RowRun<'a, L: Lanes8> {
    simd: L,
    /// The input rows: the padded ones in a ring of `ring`, or the input
    /// itself (`ring` its height), `row_len` pixels each.
    pv: &'a [[f32; BLOCK]],
    row_len: usize,
    ring: usize,
    /// The kernel rows computed: all of them from a padded buffer; from the
    /// input itself, those that fall inside it (the others would multiply
    /// zeros).
    taps: std::ops::Range<usize>,
    /// The slot in `pv` of tap row `taps.start`.
    first: usize,
    /// Eight channels' weights per tap.
    wv: &'a [[f32; BLOCK]],
    bias: L::B,
    lo: L::B,
    hi: L::B,
    g: &'a Geometry,
}

/// A run of `$n` output pixels of a row at stride `$s`, from output pixel
/// `ox`, whose first tap reads column `at` of each tap row in `pv`,
/// accumulated in registers over every tap. The accumulators are named
/// variables: an array of them was kept on the stack (as in `pointwise`),
/// and each tap reads one fixed-size window (`($n - 1) · $s + 1` pixels)
/// so that the loads need no bounds checks of their own. The stride is a
/// constant of each instance, for the same reason.
macro_rules! row_run {
    ($name:ident, $n:literal, $s:literal, $($a:ident $j:literal),+) => {
        #[inline(always)]
        fn $name(&self, at: usize, ox: usize, row: &mut [[f32; BLOCK]]) {
            let (simd, g) = (self.simd, self.g);
            $(let mut $a = self.bias;)+
            for ky in self.taps.clone() {
                let base = self.tap_row(ky) + at;
                let Some(taps) = self.wv.get(ky * g.kw..(ky + 1) * g.kw) else {
                    return;
                };
                for (kx, tap) in taps.iter().enumerate() {
                    let from = base + kx;
                    let window = self
                        .pv
                        .get(from..from + ($n - 1) * $s + 1)
                        .map(<&[[f32; BLOCK]; ($n - 1) * $s + 1]>::try_from);
                    let Some(Ok(win)) = window else {
                        return;
                    };
                    let wk = simd.load(tap);
                    $($a = simd.mul_add(wk, simd.load(&win[$j * $s]), $a);)+
                }
            }
            if let Some(out) = row.get_mut(ox..ox + $n) {
                for (o, a) in out.iter_mut().zip([$($a),+]) {
                    simd.store(simd.clamp(a, self.lo, self.hi), o);
                }
            }
        }
    };
}

/// [`row_run`] for a kernel `$kw` columns wide, known when compiling: the
/// loop over a kernel row's taps unrolls, and the taps that read the same
/// input share one load (output `j`'s tap `kx + s` reads what output
/// `j + 1`'s tap `kx` does): a 5-wide row of 7 outputs loads 11 inputs at
/// stride 1 and 17 at stride 2, not 35. Used natively for kernels 3 and 5
/// wide. Measured per node, interleaved, one thread:
/// - stride 1, against `row_run_shifted` (below), which keeps the inputs in
///   registers and moves them along: every layer of Lite0 and Lite2 took
///   less time, 10 % in all (Lite0 1081 → 970 µs, Lite2 2633 → 2357;
///   Lite0's 3×3 on 56×56 with 144 channels 197 → 175);
/// - stride 2, against [`row_run`]: the 5×5 layers took 3-13 % less
///   (Lite0's 144 channels on 56×56: 153 → 133 µs), the 3×3 ones from
///   8 % more (Lite0's 240 channels, 39 → 42 µs) to 19 % less (Lite2's
///   288, 108 → 88 µs).
#[cfg(not(target_arch = "wasm32"))]
macro_rules! row_run_wide {
    ($name:ident, $n:literal, $s:literal, $kw:literal, $($a:ident $j:literal),+) => {
        #[inline(always)]
        fn $name(&self, at: usize, ox: usize, row: &mut [[f32; BLOCK]]) {
            let simd = self.simd;
            $(let mut $a = self.bias;)+
            for ky in self.taps.clone() {
                let base = self.tap_row(ky) + at;
                let taps = self
                    .wv
                    .get(ky * $kw..(ky + 1) * $kw)
                    .map(<&[[f32; BLOCK]; $kw]>::try_from);
                let window = self
                    .pv
                    .get(base..base + ($n - 1) * $s + $kw)
                    .map(<&[[f32; BLOCK]; ($n - 1) * $s + $kw]>::try_from);
                let (Some(Ok(taps)), Some(Ok(win))) = (taps, window) else {
                    return;
                };
                for kx in 0..$kw {
                    let wk = simd.load(&taps[kx]);
                    $($a = simd.mul_add(wk, simd.load(&win[$j * $s + kx]), $a);)+
                }
            }
            if let Some(out) = row.get_mut(ox..ox + $n) {
                for (o, a) in out.iter_mut().zip([$($a),+]) {
                    simd.store(simd.clamp(a, self.lo, self.hi), o);
                }
            }
        }
    };
}

/// A run of `$n` output pixels of a row at stride `$s`, natively. Output
/// `j` reads input `s·j + kx` at tap `kx`: taken a phase `kx mod s` at a
/// time, the `$n` inputs of tap `kx + s` are those of tap `kx` shifted by
/// one and a new last one. So they stay in registers (`$x`), and a tap
/// loads its weight and one input rather than `$n + 1` vectors: the loads,
/// two 256-bit ones a cycle on x86, bounded the form above, which reads
/// every input of every tap from memory. `$n` accumulators and `$n` inputs
/// fit AVX2's 16 registers up to 7 pixels. Measured on Lite0, one thread,
/// interleaved: the 5×5 layers on 14×14 and 7×7 planes took 20 % less
/// time than runs of the form above. Used at stride 1 for kernels other
/// than 3 and 5 wide, where [`row_run_wide`] measured faster still; at
/// stride 2, phase by phase, it measured slower than the form above
/// (`benches/README.md`).
#[cfg(not(target_arch = "wasm32"))]
macro_rules! row_run_shifted {
    ($name:ident, $n:literal, $s:literal, $($a:ident $x:ident $j:literal),+) => {
        #[inline(always)]
        fn $name(&self, at: usize, ox: usize, row: &mut [[f32; BLOCK]]) {
            let (simd, g) = (self.simd, self.g);
            $(let mut $a = self.bias;)+
            for ky in self.taps.clone() {
                let base = self.tap_row(ky) + at;
                let (Some(taps), Some(win)) = (
                    self.wv.get(ky * g.kw..(ky + 1) * g.kw),
                    self.pv.get(base..base + ($n - 1) * $s + g.kw),
                ) else {
                    return;
                };
                for phase in 0..$s.min(g.kw) {
                    // This phase's inputs, `s` apart, and its taps.
                    let mut inputs = win[phase..].iter().step_by($s);
                    let mut taps = taps[phase..].iter().step_by($s);
                    $(let Some(x) = inputs.next() else { return };
                    let mut $x = simd.load(x);)+
                    let Some(mut tap) = taps.next() else { return };
                    loop {
                        let wk = simd.load(tap);
                        $($a = simd.mul_add(wk, $x, $a);)+
                        let (Some(next_tap), Some(next)) = (taps.next(), inputs.next()) else {
                            break;
                        };
                        row_run_shifted!(@shift simd, next; $($x),+);
                        tap = next_tap;
                    }
                }
            }
            if let Some(out) = row.get_mut(ox..ox + $n) {
                for (o, a) in out.iter_mut().zip([$($a),+]) {
                    simd.store(simd.clamp(a, self.lo, self.hi), o);
                }
            }
        }
    };
    (@shift $simd:ident, $next:ident; $first:ident, $second:ident $(, $rest:ident)*) => {
        $first = $second;
        row_run_shifted!(@shift $simd, $next; $second $(, $rest)*);
    };
    (@shift $simd:ident, $next:ident; $last:ident) => {
        $last = $simd.load($next);
    };
}

impl<L: Lanes8> RowRun<'_, L> {
    /// Where the input row of tap row `ky` starts in `pv`.
    #[inline(always)]
    fn tap_row(&self, ky: usize) -> usize {
        let slot = self.first + (ky - self.taps.start);
        let slot = if slot >= self.ring { slot - self.ring } else { slot };
        slot * self.row_len
    }

    /// Output pixels `cols` of a row, in runs of `step` pixels, the last
    /// overlapping the one before where the range does not divide. Output
    /// pixel `ox` reads from column `ox · stride - shift` of `pv`'s rows.
    #[inline(always)]
    fn row(
        &self,
        step: usize,
        cols: std::ops::Range<usize>,
        shift: usize,
        row: &mut [[f32; BLOCK]],
    ) -> TractResult<()> {
        let mut ox = cols.start;
        while ox < cols.end {
            let out_at = ox.min(cols.end.saturating_sub(step)).max(cols.start);
            let at = (out_at * self.g.sw).saturating_sub(shift);
            // Natively, kernels 3 and 5 wide have runs whose taps share
            // loads (`row_run_wide`); other widths the general forms.
            #[cfg(not(target_arch = "wasm32"))]
            macro_rules! by_width {
                ($k3:ident, $k5:ident, $other:ident) => {
                    match self.g.kw {
                        3 => self.$k3(at, out_at, row),
                        5 => self.$k5(at, out_at, row),
                        _ => self.$other(at, out_at, row),
                    }
                };
            }
            match (step, self.g.sw) {
                #[cfg(not(target_arch = "wasm32"))]
                (4, 1) => by_width!(four_s1_k3, four_s1_k5, four),
                #[cfg(not(target_arch = "wasm32"))]
                (5, 1) => by_width!(five_s1_k3, five_s1_k5, five),
                #[cfg(not(target_arch = "wasm32"))]
                (6, 1) => by_width!(six_s1_k3, six_s1_k5, six),
                #[cfg(not(target_arch = "wasm32"))]
                (7, 1) => by_width!(seven_s1_k3, seven_s1_k5, seven),
                #[cfg(not(target_arch = "wasm32"))]
                (6, 2) => by_width!(six_s2_k3, six_s2_k5, six_s2),
                #[cfg(not(target_arch = "wasm32"))]
                (7, 2) => by_width!(seven_s2_k3, seven_s2_k5, seven_s2),
                #[cfg(not(target_arch = "wasm32"))]
                (8, 2) => by_width!(eight_s2_k3, eight_s2_k5, eight_s2),
                #[cfg(target_arch = "wasm32")]
                (4, 1) => self.four(at, out_at, row),
                #[cfg(target_arch = "wasm32")]
                (5, 1) => self.five(at, out_at, row),
                (4, 2) => self.four_s2(at, out_at, row),
                (5, 2) => self.five_s2(at, out_at, row),
                _ => bail!(
                    "EdgeserveDepthwiseConv: no kernel for runs of {step} at stride {}",
                    self.g.sw
                ),
            }
            ox += step;
        }
        Ok(())
    }

    /// Output pixel `ox` alone, read from the input itself (`pv` is the
    /// unpadded plane), skipping the taps that fall in the padding: for the
    /// few pixels at a row's ends whose taps a run could not read without
    /// a padded copy.
    ///
    /// Four accumulators: one chained through up to 25 taps would wait on
    /// each multiply-add, and up to a quarter of a row's pixels are
    /// computed here (2 of Lite2's 9 in its last stride-2 layer). A kernel
    /// row's taps go to two of them in turn, and the next row to the other
    /// two. Rotating all four one tap at a time, over a `zip` that the
    /// compiler left as a call (with a `vzeroupper`) per kernel row, this
    /// was the hottest code of the direct form: isolated (input read where
    /// it is, medians of 60), 3×3 on 112×112 with 32 channels took 139 →
    /// 125 µs, on 56×56 with 144 channels 189 → 156, 5×5 on 28×28 with 240
    /// channels 245 → 162. In Lite0 and Lite2, whose stride-1 layers mostly
    /// run in place (`padded`, no edge pixels), whole runs took 0.1–0.8 %
    /// less.
    #[inline(always)]
    fn pixel(&self, ox: usize, row: &mut [[f32; BLOCK]]) {
        let (simd, g) = (self.simd, self.g);
        // The kernel columns that fall inside the input, and the input
        // column of the first.
        let start = ox * g.sw;
        let kx0 = g.pad_left.saturating_sub(start).min(g.kw);
        let kx1 = (g.in_w + g.pad_left).saturating_sub(start).clamp(kx0, g.kw);
        let ix0 = (start + kx0).saturating_sub(g.pad_left);
        let zero = simd.splat(0.0);
        let (mut a, mut b, mut c, mut d) = (self.bias, zero, zero, zero);
        for ky in self.taps.clone() {
            let (w0, x0) = (ky * g.kw + kx0, self.tap_row(ky) + ix0);
            let (Some(w), Some(x)) = (
                self.wv.get(w0..w0 + (kx1 - kx0)),
                self.pv.get(x0..x0 + (kx1 - kx0)),
            ) else {
                return;
            };
            let (mut i, n) = (0, w.len().min(x.len()));
            while i + 1 < n {
                a = simd.mul_add(simd.load(&w[i]), simd.load(&x[i]), a);
                b = simd.mul_add(simd.load(&w[i + 1]), simd.load(&x[i + 1]), b);
                i += 2;
            }
            if i < n {
                c = simd.mul_add(simd.load(&w[i]), simd.load(&x[i]), c);
            }
            (a, b, c, d) = (c, d, a, b);
        }
        if let Some(o) = row.get_mut(ox) {
            let sum = simd.add(simd.add(a, b), simd.add(c, d));
            simd.store(simd.clamp(sum, self.lo, self.hi), o);
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    row_run_shifted!(seven, 7, 1, a0 x0 0, a1 x1 1, a2 x2 2, a3 x3 3, a4 x4 4, a5 x5 5, a6 x6 6);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_shifted!(six, 6, 1, a0 x0 0, a1 x1 1, a2 x2 2, a3 x3 3, a4 x4 4, a5 x5 5);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_shifted!(five, 5, 1, a0 x0 0, a1 x1 1, a2 x2 2, a3 x3 3, a4 x4 4);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_shifted!(four, 4, 1, a0 x0 0, a1 x1 1, a2 x2 2, a3 x3 3);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(four_s1_k3, 4, 1, 3, a0 0, a1 1, a2 2, a3 3);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(four_s1_k5, 4, 1, 5, a0 0, a1 1, a2 2, a3 3);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(five_s1_k3, 5, 1, 3, a0 0, a1 1, a2 2, a3 3, a4 4);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(five_s1_k5, 5, 1, 5, a0 0, a1 1, a2 2, a3 3, a4 4);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(six_s1_k3, 6, 1, 3, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(six_s1_k5, 6, 1, 5, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(seven_s1_k3, 7, 1, 3, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(seven_s1_k5, 7, 1, 5, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(eight_s2_k3, 8, 2, 3, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6, a7 7);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(seven_s2_k3, 7, 2, 3, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(six_s2_k3, 6, 2, 3, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(eight_s2_k5, 8, 2, 5, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6, a7 7);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(seven_s2_k5, 7, 2, 5, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6);
    #[cfg(not(target_arch = "wasm32"))]
    row_run_wide!(six_s2_k5, 6, 2, 5, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5);
    #[cfg(not(target_arch = "wasm32"))]
    row_run!(eight_s2, 8, 2, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6, a7 7);
    #[cfg(not(target_arch = "wasm32"))]
    row_run!(seven_s2, 7, 2, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6);
    #[cfg(not(target_arch = "wasm32"))]
    row_run!(six_s2, 6, 2, a0 0, a1 1, a2 2, a3 3, a4 4, a5 5);
    #[cfg(target_arch = "wasm32")]
    row_run!(five, 5, 1, a0 0, a1 1, a2 2, a3 3, a4 4);
    #[cfg(target_arch = "wasm32")]
    row_run!(four, 4, 1, a0 0, a1 1, a2 2, a3 3);
    row_run!(five_s2, 5, 2, a0 0, a1 1, a2 2, a3 3, a4 4);
    row_run!(four_s2, 4, 2, a0 0, a1 1, a2 2, a3 3);
}

impl Op for DepthwiseConv {
    fn name(&self) -> StaticName {
        "EdgeserveDepthwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = &self.g;
        Ok(vec![format!(
            "{}x{} stride {}x{}, {} channels, clamp {}{}",
            g.kh,
            g.kw,
            g.sh,
            g.sw,
            g.channels,
            self.bounds,
            if self.blocked { ", blocked" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for DepthwiseConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let g = &self.g;
        self.input(&inputs)?;
        let weights = self.weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let plane_in = g.in_h * g.in_w;
        let plane_out = g.out_h * g.out_w;
        // The input's own buffer, when no other node reads it (tract hands
        // over its last reference): no output to allocate and zero.
        if self.blocked
            && (g.in_h, g.in_w) == (g.out_h, g.out_w)
            && g.pad_top < g.kh
            && inputs.len() == 1
            && inputs[0].is_exclusive()
            && let Some(only) = inputs.pop()
        {
            match Arc::try_unwrap(only.into_arc_tensor()) {
                Ok(mut tensor) => {
                    let mut view = tensor.try_as_plain_ram_mut()?;
                    self.eval_blocked(None, weights, bias, view.as_slice_mut::<f32>()?)?;
                    return Ok(tvec!(tensor.into_tvalue()));
                }
                Err(shared) => inputs.push(shared.into_tvalue()),
            }
        }
        let (batch, x) = self.input(&inputs)?;
        let shape = inputs[0].shape();
        let mut tensor = recycle::output(&self.output_shape(shape))?;
        let mut view = tensor.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        ensure!(
            out.len() == batch * g.channels * plane_out,
            "EdgeserveDepthwiseConv: output of {} values",
            out.len()
        );
        if self.blocked {
            self.eval_blocked(Some(x), weights, bias, out)?;
            recycle::keep(inputs);
            return Ok(tvec!(tensor.into_tvalue()));
        }
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
        recycle::keep(inputs);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

impl DepthwiseConv {
    /// The batch and values of the input, checked against the geometry.
    fn input<'a>(&self, inputs: &'a TVec<TValue>) -> TractResult<(usize, &'a [f32])> {
        let g = &self.g;
        fused::image_input(
            "EdgeserveDepthwiseConv",
            inputs.first(),
            self.batched,
            [g.channels, g.in_h, g.in_w],
        )
    }

    /// The output's shape for an input of `shape` (checked by `eval`).
    /// Kernels write into the output tensor's own buffer: made from a
    /// `Vec`, tract copied it once more.
    pub(crate) fn output_shape(&self, shape: &[usize]) -> Vec<usize> {
        let mut out_shape: Vec<usize> = shape.to_vec();
        let rank = out_shape.len();
        out_shape[rank - 2] = self.g.out_h;
        out_shape[rank - 1] = self.g.out_w;
        out_shape
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
    let Some(conv) = fused::plain_conv(model, node)? else {
        return Ok(None);
    };
    let c = conv.cin;
    if conv.group != c || conv.cout != c {
        return Ok(None);
    }
    let g = Geometry {
        channels: c,
        in_h: conv.in_h,
        in_w: conv.in_w,
        out_h: conv.out_h,
        out_w: conv.out_w,
        kh: conv.kh,
        kw: conv.kw,
        sh: conv.sh,
        sw: conv.sw,
        pad_top: conv.pad_top,
        pad_left: conv.pad_left,
    };
    let weights = Tensor::from_shape(&[c, conv.kh * conv.kw], conv.kernel()?)?;
    let bias = Tensor::from_shape(&[c], &conv.bias)?;
    let (bounds, last) = fused::following_clamp(model, id)?;
    let op = DepthwiseConv {
        g,
        batched: conv.rank == 4,
        weights: Arc::new(weights),
        bias: Arc::new(bias),
        bounds,
        blocked: false,
    };
    Ok(Some(fused::replacement(model, node, op, last)?))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn blocked(out_h: usize, out_w: usize) -> DepthwiseConv {
        DepthwiseConv {
            g: Geometry {
                channels: 8,
                in_h: 2,
                in_w: 40,
                out_h,
                out_w,
                kh: 3,
                kw: 3,
                sh: 1,
                sw: 1,
                pad_top: 0,
                pad_left: 1,
            },
            batched: false,
            weights: Arc::new(Tensor::zero::<f32>(&[9 * 8]).unwrap_or_else(|_| Tensor::from(0f32))),
            bias: Arc::new(Tensor::zero::<f32>(&[8]).unwrap_or_else(|_| Tensor::from(0f32))),
            bounds: Bounds::new(0.0, 6.0),
            blocked: true,
        }
    }

    /// A fused producer gets a ring only for an output of some rows and
    /// columns: tract folds such layers away, but a ring's size must not
    /// wrap below zero if one is ever handed over.
    #[test]
    fn no_ring_for_an_output_without_rows_or_columns() {
        assert!(blocked(0, 40).ring().is_none());
        assert!(blocked(2, 0).ring().is_none());
        let ring = blocked(2, 40).ring();
        assert_eq!(ring.map(|r| (r.cols, r.left, r.rows, r.kh)), Some((42, 1, 4, 3)));
    }
}
