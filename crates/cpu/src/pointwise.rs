//! Pointwise (1×1) convolution, in NCHW or the blocked layout
//! (`crate::blocked`), as a matrix product
//! `out[o, p] = bias[o] + Σ_i w[o, i] · x[i, p]`, with the clamp that follows
//! it (ReLU6) fused in.
//!
//! Hand-written because these products are most of EfficientNet's work
//! (about 320 M of Lite0's 390 M multiply-adds) and tract 0.23.9 spent
//! 13.1 ms on them, more than onnxruntime's 11 ms for the whole model
//! (`benches/README.md`); this kernel takes about 12 ms. It
//! keeps a 6-row × 2-vector block of outputs in registers (5 × 1 in wasm,
//! see `Run::one_block`) while it walks the input channels, with weights
//! packed once at load so that each step reads them contiguously, and runs
//! with the widest SIMD the CPU has
//! (`pulp`: AVX-512 or AVX2+FMA, chosen at run time). The NCHW form
//! natively only: in wasm tract's own kernels measured as fast (see
//! `lib.rs`). The blocked form, natively and in wasm, is below
//! `to_blocked`.

use crate::blocked::{self, BLOCK, BlockOp, Lanes8};
use crate::fused::{self, Bounds};
use crate::recycle;
use crate::weights::Weights;
use tract_onnx::prelude::{
    Arc, DatumType, IntoArcTensor, IntoTValue, OutletId, TValue, TVec, Tensor, TractResult, TypedFact,
    TypedModel, TypedModelPatch, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{DimLike, bail, ensure};

/// Output channels computed together.
const MR: usize = 6;

/// The most `f32` lanes of a vector (AVX-512).
const MAX_LANES: usize = 16;

/// The fused operator that replaces a 1×1 convolution's `EinSum`, its bias
/// `Add` and its clamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pointwise {
    /// Input channels.
    pub(crate) k: usize,
    /// Output channels.
    pub(crate) cout: usize,
    /// Pixels per image (H·W).
    pub(crate) pixels: usize,
    /// Input rank: 3 (`[K, H, W]`) or 4 (`[N, K, H, W]`).
    pub(crate) in_rank: usize,
    /// Output rank: 3 or 4 (tract drops a batch of 1 on the way).
    pub(crate) out_rank: usize,
    /// Weights in blocks of `MR` output channels, each `k × MR`, k-major;
    /// the last block is padded with zero rows. In the blocked layout,
    /// blocks of [`BLOCK`] output channels, each `k × BLOCK`. While `rows`,
    /// still the model's `[cout, k]` tensor; in the blocked layout, until
    /// [`place_weights`], those rows to be interleaved where they will live.
    pub(crate) packed: Weights,
    /// `packed` is the model's weights as they came, not yet packed: a
    /// convolution the blocked layout takes over is packed once, for it,
    /// where its weights are placed, and the others by [`pack`] (Lite2's
    /// 1×1 weights are 24 MB, and each packing pass over them is time at
    /// load).
    pub(crate) rows: bool,
    /// `[cout]`, zeros when the model adds no bias.
    pub(crate) bias: Arc<Tensor>,
    pub(crate) bounds: Bounds,
    /// Input and output in the blocked layout (`crate::blocked`).
    pub(crate) blocked: bool,
    /// A residual `Add` folded in ([`fuse_residuals`]): a second input, of
    /// the output's shape, that the clamped product is added to.
    pub(crate) residual: bool,
}

impl Pointwise {
    /// The same convolution on the blocked layout, where its channel counts
    /// allow it. Only before [`pack`]: the blocked layout is placed first,
    /// from the model's rows, and an op packed for NCHW stays NCHW.
    pub(crate) fn to_blocked(&self) -> TractResult<Option<Pointwise>> {
        // Runs of `PIXELS` pixels may overlap but not exceed the image.
        if self.blocked
            || !self.rows
            || !self.k.is_multiple_of(BLOCK)
            || !self.cout.is_multiple_of(BLOCK)
            || self.pixels < PIXELS
        {
            return Ok(None);
        }
        // Interleaved once the weights have their place
        // ([`place_weights`]).
        Ok(Some(Pointwise {
            packed: self.packed.interleaved_later(self.cout, self.k)?,
            rows: false,
            blocked: true,
            ..self.clone()
        }))
    }
}

impl Op for Pointwise {
    fn name(&self) -> StaticName {
        "EdgeservePointwiseConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!(
            "{}→{} channels, {} pixels, clamp {}{}{}",
            self.k,
            self.cout,
            self.pixels,
            self.bounds,
            if self.residual { ", plus a residual" } else { "" },
            if self.blocked { ", blocked" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for Pointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, mut inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let residual = if self.residual {
            ensure!(
                inputs.len() == 2 && self.blocked,
                "EdgeservePointwiseConv: a residual takes two blocked inputs"
            );
            inputs.pop()
        } else {
            None
        };
        let Some(input) = inputs.first() else {
            bail!("EdgeservePointwiseConv takes one input")
        };
        let shape = input.shape();
        ensure!(
            shape.len() == self.in_rank
                && shape[self.in_rank - 3] == self.k
                && shape[self.in_rank - 2] * shape[self.in_rank - 1] == self.pixels,
            "EdgeservePointwiseConv: input shape {shape:?}, expected {} channels of {} pixels",
            self.k,
            self.pixels
        );
        let batch = if self.in_rank == 4 { shape[0] } else { 1 };
        ensure!(
            batch == 1 || self.out_rank == 4,
            "EdgeservePointwiseConv: batch {batch} into an unbatched output"
        );
        ensure!(
            !self.rows,
            "EdgeservePointwiseConv: its weights were never packed"
        );
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let packed = self.packed.as_slice()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let (p, k, cout) = (self.pixels, self.k, self.cout);
        let out_shape = self.output_shape(shape);
        let mut tensor = match residual {
            Some(r) => sum_into(r, &out_shape)?,
            None => recycle::output(&out_shape)?,
        };
        let mut view = tensor.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        ensure!(
            out.len() == batch * cout * p,
            "EdgeservePointwiseConv: output of {} values",
            out.len()
        );
        if self.blocked {
            self.eval_blocked(x, packed, bias, out)?;
            recycle::keep(inputs);
            return Ok(tvec!(tensor.into_tvalue()));
        }
        // Rows of one image in chunks of whole blocks, so threads split the
        // output channels and each writes its own contiguous rows.
        let blocks = cout.div_ceil(MR);
        // Each task packs its own input panels, so no more tasks than workers.
        let per_task = blocks.div_ceil(fused::workers()).max(1) * MR;
        let tasks_per_image = cout.div_ceil(per_task);
        let chunks: Vec<(usize, usize)> = (0..batch)
            .flat_map(|n| (0..tasks_per_image).map(move |t| (n, t * per_task)))
            .collect();
        let mut pieces: Vec<&mut [f32]> = Vec::with_capacity(chunks.len());
        let mut rest = out;
        for &(_, row) in &chunks {
            let rows = per_task.min(cout - row);
            let (piece, tail) = rest.split_at_mut(rows * p);
            pieces.push(piece);
            rest = tail;
        }
        fused::for_each(
            pieces.into_iter().zip(chunks).collect(),
            |scratch: &mut Vec<f32>, (out, (n, row)): (&mut [f32], (usize, usize))| {
                Product {
                    x: &x[n * k * p..][..k * p],
                    k,
                    p,
                    packed,
                    bias,
                    row,
                    out,
                    panel: scratch,
                    bounds: self.bounds,
                }
                .run()
            },
        )?;
        recycle::keep(inputs);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

impl Pointwise {
    /// The output's shape for an input of `shape` (checked by `eval`).
    /// Kernels write into the output tensor's own buffer: made from a
    /// `Vec`, tract copied it once more.
    pub(crate) fn output_shape(&self, shape: &[usize]) -> Vec<usize> {
        let mut out_shape: Vec<usize> = shape.to_vec();
        if self.out_rank != self.in_rank {
            out_shape.remove(0);
        }
        let r = out_shape.len();
        out_shape[r - 3] = self.cout;
        out_shape
    }

    /// `out` (`[N, cout/8, p, 8]`) from `x` (`[N, k/8, p, 8]`), added to
    /// what `out` holds with a residual. Threads split each image's output
    /// blocks.
    fn eval_blocked(&self, x: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) -> TractResult<()> {
        let (p, k, cout) = (self.pixels, self.k, self.cout);
        let blocks = cout / BLOCK;
        let per_task = blocks.div_ceil(fused::workers()).max(1);
        let mut pieces = Vec::new();
        for (n, image) in out.chunks_mut(cout * p).enumerate() {
            for (t, piece) in image.chunks_mut(per_task * BLOCK * p).enumerate() {
                pieces.push((n, t * per_task, piece));
            }
        }
        fused::for_each(
            pieces,
            |_: &mut (), (n, first, out): (usize, usize, &mut [f32])| {
                blocked::vectorize_or_fail(
                    "EdgeservePointwiseConv",
                    BlockedProduct {
                        x: x.get(n * k * p..(n + 1) * k * p).unwrap_or_default(),
                        k,
                        p,
                        w: packed.get(first * k * BLOCK..).unwrap_or_default(),
                        bias: bias.get(first * BLOCK..).unwrap_or_default(),
                        bounds: self.bounds,
                        residual: self.residual,
                        out,
                    },
                )?
            },
        )
    }
}

/// Bytes of input pixels a tile keeps in cache while every output block
/// reads them.
const TILE_BYTES: usize = 48 * 1024;

/// Output blocks `out.len() / (p·8)` of one image in the blocked layout,
/// from the weights and bias starting at the first of them.
struct BlockedProduct<'a> {
    /// `[k/8, p, 8]`.
    x: &'a [f32],
    k: usize,
    p: usize,
    /// `[blocks, k, 8]`, from this piece's first block.
    w: &'a [f32],
    bias: &'a [f32],
    bounds: Bounds,
    /// The clamped product is added to what `out` holds.
    residual: bool,
    /// `[blocks, p, 8]`.
    out: &'a mut [f32],
}

impl BlockOp for BlockedProduct<'_> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn run<L: Lanes8>(self, simd: L) -> TractResult<()> {
        let BlockedProduct {
            x,
            k,
            p,
            w,
            bias,
            bounds,
            residual,
            out,
        } = self;
        let blocks = out.len() / (p * BLOCK).max(1);
        let kb = k / BLOCK;
        let (xc, _) = x.as_chunks::<BLOCK>();
        let (wv, _) = w.as_chunks::<BLOCK>();
        let (ov, _) = out.as_chunks_mut::<BLOCK>();
        let (bv, _) = bias.as_chunks::<BLOCK>();
        ensure!(
            xc.len() == kb * p && wv.len() >= blocks * k && ov.len() == blocks * p && bv.len() >= blocks,
            "EdgeservePointwiseConv: blocked buffers of {} / {} / {} vectors for {blocks} blocks of {k} × {p}",
            xc.len(),
            wv.len(),
            ov.len()
        );
        let tile = (TILE_BYTES / (k * 4)).max(1).div_ceil(PIXELS) * PIXELS;
        let (steps, tiles) = plan(p, tile);
        let products = Products {
            simd,
            xc,
            p,
            k,
            lo: simd.splat(bounds.lo()),
            hi: simd.splat(bounds.hi()),
            residual,
        };
        // Every block pair of the output (a last block alone) computes one
        // tile's steps before the next tile: the tile's input pixels stay
        // in cache while all the weights pass.
        let mut first = 0;
        for &end in &tiles {
            products.blocks(steps.get(first..end).unwrap_or_default(), 0, wv, bv, ov, p, 0);
            first = end;
        }
        Ok(())
    }
}

/// The steps that compute pixels `0..p` in tiles of about `tile` pixels,
/// and where each tile ends in the steps.
pub(crate) fn plan(p: usize, tile: usize) -> (Vec<Step>, Vec<usize>) {
    let mut steps: Vec<Step> = Vec::with_capacity(p.div_ceil(PIXELS));
    let mut tiles: Vec<usize> = Vec::with_capacity(p.div_ceil(tile.max(1)));
    // Natively, runs of six and then of five where `p` allows: tiles of
    // whole runs.
    #[cfg(not(target_arch = "wasm32"))]
    let split = five_runs(p).map(|fives| {
        let sixes = (p - 5 * fives) / PIXELS;
        let runs = sixes + fives;
        steps.extend((0..runs).map(|i| {
            let at = i * PIXELS - i.saturating_sub(sixes);
            if i < sixes {
                Step::Six { at, stored: 0 }
            } else {
                Step::Five(at)
            }
        }));
        let per_tile = (tile / PIXELS).max(1);
        tiles.extend((per_tile..runs).step_by(per_tile));
        tiles.push(runs);
    });
    #[cfg(target_arch = "wasm32")]
    let split: Option<()> = None;
    if split.is_none() {
        for t0 in (0..p).step_by(tile.max(1)) {
            let t1 = p.min(t0 + tile);
            // Runs of `PIXELS`; one that does not divide the range
            // overlaps the run before, so that every run is whole.
            let mut p0 = t0;
            while p0 < t1 {
                #[cfg(not(target_arch = "wasm32"))]
                if t1 - p0 <= NARROW_TAIL {
                    steps.push(Step::Tail { from: p0, to: t1 });
                    break;
                }
                let at = p0.min(t1.saturating_sub(PIXELS));
                steps.push(Step::Six { at, stored: p0 - at });
                p0 += PIXELS;
            }
            tiles.push(steps.len());
        }
    }
    (steps, tiles)
}

/// What every run of a blocked product shares: one image's input and the
/// clamp.
#[derive(Clone, Copy)]
pub(crate) struct Products<'a, L: Lanes8> {
    pub(crate) simd: L,
    /// `[k/8, p, 8]`.
    pub(crate) xc: &'a [[f32; BLOCK]],
    pub(crate) p: usize,
    pub(crate) k: usize,
    pub(crate) lo: L::B,
    pub(crate) hi: L::B,
    /// Stores add to what the output holds.
    pub(crate) residual: bool,
}

impl<L: Lanes8> Products<'_, L> {
    /// `steps` (of [`plan`], shifted by `shift` input pixels) for every
    /// output block of `wv`/`bv` that `ov` holds, block pairs first. Block
    /// `b` of `ov` starts at `b · stride`, and a step's pixel `at` goes to
    /// `at + dst` in it: in a blocked tensor `stride` is the plane and
    /// `dst` 0; a fused consumer (`crate::expand`) puts a row where it
    /// wants it.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn blocks(
        &self,
        steps: &[Step],
        shift: usize,
        wv: &[[f32; BLOCK]],
        bv: &[[f32; BLOCK]],
        ov: &mut [[f32; BLOCK]],
        stride: usize,
        dst: usize,
    ) {
        let (simd, k) = (self.simd, self.k);
        let blocks = ov.len() / stride.max(1);
        let run = |at: usize, stored| Run {
            simd,
            xc: self.xc,
            p: self.p,
            kb: k / BLOCK,
            p0: at + shift,
            o_at: at + dst,
            o_stride: stride,
            stored,
            lo: self.lo,
            hi: self.hi,
            residual: self.residual,
        };
        // The next pair's weights, asked for a share at each step, where a
        // pair's fit in L1 (see `PREFETCH_PAIR_BYTES`).
        let prefetch = k * 2 * BLOCK * 4 <= PREFETCH_PAIR_BYTES;
        let mut b = 0;
        while b < blocks {
            let nb = if blocks - b >= 2 { 2 } else { 1 };
            let (Some(w), Some(out), Some(bias)) = (
                wv.get(b * k..(b + nb) * k),
                ov.get_mut(b * stride..(b + nb) * stride),
                bv.get(b..b + nb),
            ) else {
                return;
            };
            let next = match prefetch {
                true => wv
                    .get((b + nb) * k..(b + nb + 2).min(blocks) * k)
                    .unwrap_or_default(),
                false => &[],
            };
            // Vectors per step, even: a cache line holds two.
            let share = (next.len() / 2).div_ceil(steps.len().max(1)) * 2;
            for (j, &step) in steps.iter().enumerate() {
                let ahead = next.get(j * share..).unwrap_or_default();
                for v in ahead.get(..share).unwrap_or(ahead).iter().step_by(2) {
                    simd.prefetch(v);
                }
                if let Some((w0, w1)) = w.split_at_checked(k).filter(|_| nb == 2) {
                    let (w0, w1) = (w0.as_chunks().0, w1.as_chunks().0);
                    let bias = [simd.load(&bias[0]), simd.load(&bias[nb - 1])];
                    match step {
                        Step::Six { at, stored } => run(at, stored).two_blocks(w0, w1, bias, out),
                        #[cfg(not(target_arch = "wasm32"))]
                        Step::Five(at) => run(at, 0).two_blocks_five(w0, w1, bias, out),
                        #[cfg(not(target_arch = "wasm32"))]
                        Step::Tail { from, to } => {
                            for px in from..to {
                                run(px, 0).one_pixel(w0, w1, bias, out);
                            }
                        }
                    }
                } else {
                    let (w0, b0) = (w.as_chunks().0, simd.load(&bias[0]));
                    match step {
                        Step::Six { at, stored } => run(at, stored).one_block(w0, b0, out),
                        #[cfg(not(target_arch = "wasm32"))]
                        Step::Five(at) => run(at, 0).one_block_five(w0, b0, out),
                        // One block alone: the run ending at the tile's
                        // end, storing only the pixels left.
                        #[cfg(not(target_arch = "wasm32"))]
                        Step::Tail { from, to } => {
                            let at = to.saturating_sub(PIXELS);
                            run(at, from - at).one_block(w0, b0, out)
                        }
                    }
                }
            }
            b += nb;
        }
    }
}

/// The most bytes of one block pair's weights (`k` rows of two blocks) for
/// which [`Products::blocks`] prefetches the next pair's while the pair's
/// steps run: 16 KB, half of Zen 4's L1, so `k` up to 256.
///
/// Why: the weights of Lite0 and Lite2 (19 and 24 MB) come from memory in
/// every inference, whatever ran before (Lite0 at one thread took 9.46-9.53
/// ms with 0 to 48 MB of other data written between runs, in turn). A
/// pair's weights are read from memory by its first run and from L1 by the
/// rest, so they arrive in bursts, with the multiply-adds waiting.
/// Isolated, with every cache emptied before each run, 192 → 1152 channels
/// on 49 pixels took 194 µs hot, 277-353 µs cold, and 224-251 µs cold with
/// this (198-205 hot). Where a pair is larger than L1, its runs read it
/// from L2 and the prefetch lost: 1152 → 192 took 240-317 µs cold
/// without, 275-345 with (`benches/README.md`). Whole runs, two worker
/// processes in turn, six times each, new / old: Lite0 0.91-1.00 at one
/// thread (median 0.95), 0.96-1.03 at two; Lite2 0.90-1.07 at one (median
/// 1.00), 0.99-1.07 at two.
const PREFETCH_PAIR_BYTES: usize = 16 * 1024;

/// Gives every packed 1×1 kernel's weights, the fused expansions'
/// (`crate::expand`) among them, their place: one mapping in the order the
/// nodes run ([`crate::weights::place`]), or where there is none, the
/// blocked layout's rows interleaved into tensors of their own. Last at
/// load: until then the blocked layout's weights are the model's rows.
pub(crate) fn place_weights(model: &mut TypedModel) -> TractResult<()> {
    let mut ids = Vec::new();
    let mut ops = Vec::new();
    for id in model.eval_order()? {
        let node = model.node(id);
        if let Some(op) = node.op_as::<Pointwise>().filter(|op| !op.rows) {
            ids.push(id);
            ops.push(op.clone());
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(op) = node.op_as::<crate::expand::ExpandDepthwise>() {
            ids.push(id);
            ops.push(op.pointwise().clone());
        }
    }
    let all: Vec<&Weights> = ops.iter().map(|op| &op.packed).collect();
    let placed = match crate::weights::place(&all)? {
        Some(placed) => placed,
        None => all
            .iter()
            .map(|w| crate::weights::settle(w))
            .collect::<TractResult<_>>()?,
    };
    for ((id, op), packed) in ids.into_iter().zip(ops).zip(placed) {
        let pw = Pointwise { packed, ..op };
        let node = model.node_mut(id);
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(fused) = node.op_as::<crate::expand::ExpandDepthwise>() {
            node.op = Box::new(fused.with_pointwise(pw));
            continue;
        }
        node.op = Box::new(pw);
    }
    Ok(())
}

/// One step of a tile of the blocked product, for each output block.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    /// A run of [`PIXELS`] from pixel `at`, storing from its `stored`-th
    /// pixel on (a run that overlaps the one before).
    Six { at: usize, stored: usize },
    /// A run of five from a pixel ([`five_runs`]).
    #[cfg(not(target_arch = "wasm32"))]
    Five(usize),
    /// The pixels `from..to` left at a tile's end ([`NARROW_TAIL`]).
    #[cfg(not(target_arch = "wasm32"))]
    Tail { from: usize, to: usize },
}

/// Pixels computed together in the blocked product: 6 × 2 blocks of
/// accumulators natively (12 of AVX2's 16 registers), 5 × 1 in wasm (10 of
/// the 15 that V8 allocates on x86-64, see [`Run::one_block`]).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const PIXELS: usize = 6;
#[cfg(target_arch = "wasm32")]
pub(crate) const PIXELS: usize = 5;

/// How many runs of five, with runs of [`PIXELS`], make `p` pixels whole
/// runs, natively: `p = 6·a + 5·b` with the fewest (`b < 6`), where `p`
/// allows. A run of five does five sixths of a run of six's work in about
/// five sixths of its time, where a run overlapping the one before does a
/// whole run's work for the pixels left: Lite2's 9×9 planes, 81 = 13 · 6 +
/// 3, computed 84 pixels. Its five 81-pixel layers, interleaved, two
/// processes each: 5784-5877 µs before, 5487-5680 after.
#[cfg(not(target_arch = "wasm32"))]
fn five_runs(p: usize) -> Option<usize> {
    let fives = (PIXELS - p % PIXELS) % PIXELS;
    (5 * fives <= p).then_some(fives)
}

/// The most pixels left at the end of a tile that [`Run::one_pixel`]
/// computes one by one rather than a run of [`PIXELS`] overlapping the run
/// before. A pixel alone loads two weight vectors per two multiply-adds,
/// about a quarter of a run's time for a run's sixth of the work: a 7×7
/// plane's last pixel (49 = 8 · 6 + 1) cost a whole run, 1/9 of the
/// layer (Lite0's 49-pixel layers: 2954 → 2767 µs, interleaved). Natively
/// only, where it was measured: in wasm runs are of 5, and a 7×7 plane
/// leaves 4 (49 = 9 · 5 + 4). Natively, now only for planes that
/// [`five_runs`] cannot split (under 25 pixels): a 7×7 plane is 4 runs of
/// six and 5 of five, which measured the same (Lite0's 49-pixel layers,
/// 2581-2713 µs before, 2582-2640 after, two processes each).
#[cfg(not(target_arch = "wasm32"))]
const NARROW_TAIL: usize = 2;

/// [`PIXELS`] pixels from `p0` of every input channel.
struct Run<'a, L: Lanes8> {
    simd: L,
    xc: &'a [[f32; BLOCK]],
    p: usize,
    kb: usize,
    p0: usize,
    /// Where in the output its pixel `p0` goes, and the distance from one
    /// output block to the next.
    o_at: usize,
    o_stride: usize,
    /// The run's first pixels that the run before it (which it overlaps)
    /// stored already, and that it does not store again: with a residual
    /// a second store would add it twice.
    stored: usize,
    lo: L::B,
    hi: L::B,
    /// Stores add to what the output holds.
    residual: bool,
}

/// The weights of one output block for one block of input channels: a row
/// of eight output channels per input channel.
type WeightBlock = [[f32; BLOCK]; BLOCK];

/// `Run::one_block` (named `$name`) with one named accumulator `$a` per
/// pixel `$x` of its run: [`PIXELS`] of them, or five for the runs of
/// `five_runs`; `$lanes` is the trip count of the loop over a block's eight
/// input channels.
macro_rules! one_block {
    ($(#[$m:meta])* $name:ident, lanes: $lanes:expr; $($a:ident $x:ident),+) => {
        $(#[$m])*
        #[inline(always)]
        fn $name(&self, w0: &[WeightBlock], b0: L::B, out: &mut [[f32; BLOCK]]) {
            let simd = self.simd;
            $(let mut $a = b0;)+
            let lanes = $lanes;
            for (ib, v0) in w0.iter().enumerate().take(self.kb) {
                let [$($x),+] = self.pixels(ib);
                for ii in 0..lanes {
                    let u0 = simd.load(&v0[ii]);
                    $($a = simd.mul_add(simd.splat($x[ii]), u0, $a);)+
                }
            }
            self.store(out, self.o_at, [$($a),+]);
        }
    };
}

/// `Run::two_blocks` with named accumulators `$a0`, `$a1` (the two blocks)
/// per pixel `$x`: six of them for a run of [`PIXELS`], five for the runs
/// of [`five_runs`].
#[cfg(not(target_arch = "wasm32"))]
macro_rules! two_blocks {
    ($(#[$m:meta])* $name:ident; $($a0:ident $a1:ident $x:ident),+) => {
        $(#[$m])*
        #[inline(always)]
        fn $name(&self, w0: &[WeightBlock], w1: &[WeightBlock], bias: [L::B; 2], out: &mut [[f32; BLOCK]]) {
            let simd = self.simd;
            let [b0, b1] = bias;
            $(let (mut $a0, mut $a1) = (b0, b1);)+
            let n = self.kb.min(w0.len()).min(w1.len());
            for ib in 0..n {
                let [$($x),+] = self.pixels(ib);
                let (v0, v1) = (&w0[ib], &w1[ib]);
                for ii in 0..BLOCK {
                    let (u0, u1) = (simd.load(&v0[ii]), simd.load(&v1[ii]));
                    $(
                        let x = simd.splat($x[ii]);
                        $a0 = simd.mul_add(x, u0, $a0);
                        $a1 = simd.mul_add(x, u1, $a1);
                    )+
                }
            }
            self.store(out, self.o_at, [$($a0),+]);
            self.store(out, self.o_stride + self.o_at, [$($a1),+]);
        }
    };
}

impl<L: Lanes8> Run<'_, L> {
    /// The run's `N` pixels of input block `ib`.
    #[inline(always)]
    fn pixels<const N: usize>(&self, ib: usize) -> &[[f32; BLOCK]; N] {
        let start = ib * self.p + self.p0;
        match self.xc.get(start..start + N).map(<&[[f32; BLOCK]; N]>::try_from) {
            Some(Ok(x)) => x,
            _ => &[[0.0; BLOCK]; N],
        }
    }

    #[inline(always)]
    fn store<const N: usize>(&self, out: &mut [[f32; BLOCK]], at: usize, acc: [L::B; N]) {
        if let Some(o) = out.get_mut(at..at + N) {
            // A loop of constant count, unrolled, so that `acc` stays in
            // registers: skipping the first `stored` by an iterator kept
            // it on the stack (Lite0, one interleaved run: 10.75 ms against
            // 9.96).
            for j in 0..N {
                if j >= self.stored {
                    self.store_one(&mut o[j], acc[j]);
                }
            }
        }
    }

    /// One output vector: the clamped sum, plus the residual that `o`
    /// holds with one.
    #[inline(always)]
    fn store_one(&self, o: &mut [f32; BLOCK], acc: L::B) {
        let simd = self.simd;
        let v = simd.clamp(acc, self.lo, self.hi);
        let v = if self.residual {
            simd.add(v, simd.load(o))
        } else {
            v
        };
        simd.store(v, o);
    }

    /// Pixel `p0` alone, two blocks of eight output channels (see
    /// [`NARROW_TAIL`]). Two accumulators a block, for the even and the odd
    /// input channels, so that successive multiply-adds do not wait on one
    /// another.
    #[cfg(not(target_arch = "wasm32"))]
    #[inline(always)]
    fn one_pixel(&self, w0: &[WeightBlock], w1: &[WeightBlock], bias: [L::B; 2], out: &mut [[f32; BLOCK]]) {
        let simd = self.simd;
        let zero = simd.splat(0.0);
        let ([mut a0, mut a1], [mut c0, mut c1]) = (bias, [zero, zero]);
        for (ib, (v0, v1)) in w0.iter().zip(w1).enumerate().take(self.kb) {
            let Some(x) = self.xc.get(ib * self.p + self.p0) else {
                return;
            };
            for ii in (0..BLOCK).step_by(2) {
                let s = simd.splat(x[ii]);
                a0 = simd.mul_add(s, simd.load(&v0[ii]), a0);
                a1 = simd.mul_add(s, simd.load(&v1[ii]), a1);
                let s = simd.splat(x[ii + 1]);
                c0 = simd.mul_add(s, simd.load(&v0[ii + 1]), c0);
                c1 = simd.mul_add(s, simd.load(&v1[ii + 1]), c1);
            }
        }
        for (at, a) in [
            (self.o_at, simd.add(a0, c0)),
            (self.o_stride + self.o_at, simd.add(a1, c1)),
        ] {
            if let Some(o) = out.get_mut(at) {
                self.store_one(o, a);
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    two_blocks!(
        /// Two blocks of eight output channels: twelve accumulators, named
        /// rather than an array, which the compiler kept on the stack.
        two_blocks;
        a00 a01 x0, a10 a11 x1, a20 a21 x2, a30 a31 x3, a40 a41 x4, a50 a51 x5
    );

    #[cfg(not(target_arch = "wasm32"))]
    two_blocks!(
        /// Two blocks for a run of five (see [`five_runs`]).
        two_blocks_five;
        a00 a01 x0, a10 a11 x1, a20 a21 x2, a30 a31 x3, a40 a41 x4
    );

    one_block!(
        /// One block of eight output channels (the last of an odd count).
        #[cfg(not(target_arch = "wasm32"))]
        one_block,
        lanes: BLOCK;
        a0 x0, a1 x1, a2 x2, a3 x3, a4 x4, a5 x5
    );

    one_block!(
        /// One block for a run of five (see [`five_runs`]).
        #[cfg(not(target_arch = "wasm32"))]
        one_block_five,
        lanes: BLOCK;
        a0 x0, a1 x1, a2 x2, a3 x3, a4 x4
    );

    /// Two blocks, one after the other: in wasm there are not registers
    /// enough for both (see `one_block`).
    #[cfg(target_arch = "wasm32")]
    #[inline(always)]
    fn two_blocks(&self, w0: &[WeightBlock], w1: &[WeightBlock], bias: [L::B; 2], out: &mut [[f32; BLOCK]]) {
        let (first, second) = out.split_at_mut(self.o_stride.min(out.len()));
        self.one_block(w0, bias[0], first);
        self.one_block(w1, bias[1], second);
    }

    one_block!(
        /// One block of eight output channels for five pixels, the wasm
        /// shape. V8 gives SIMD values 15 registers on x86-64, and executes
        /// the wasm in the order LLVM wrote it. With a constant trip count
        /// LLVM unrolls the loop over the block's eight input channels and
        /// hoists every load ahead of the multiply-adds: the 6 × 2-block
        /// kernel then kept most accumulators on the stack (load, fma,
        /// store for each), and even 4 × 1 spilled its sixteen weight
        /// vectors. An opaque trip count keeps the loop rolled, so a step
        /// holds 10 accumulators, 2 weight vectors and its broadcasts.
        /// Measured in Chromium, Lite0 relaxed SIMD (`benches/README.md`):
        /// 25.3 ms, against 30.5-31.1 for the native shape, 28.6 for 4 × 1
        /// unrolled, 26.0 for 4 × 1 rolled and 26.2 for 6 × 1 rolled.
        #[cfg(target_arch = "wasm32")]
        one_block,
        lanes: core::hint::black_box(BLOCK).min(BLOCK);
        a0 x0, a1 x1, a2 x2, a3 x3, a4 x4
    );
}

/// Output rows `row..row + out.len() / p` of one image.
struct Product<'a> {
    /// `[k, p]`.
    x: &'a [f32],
    k: usize,
    p: usize,
    packed: &'a [f32],
    bias: &'a [f32],
    row: usize,
    out: &'a mut [f32],
    /// Scratch for one panel of `x`: `k` rows of `2 * lanes` columns.
    panel: &'a mut Vec<f32>,
    bounds: Bounds,
}

impl Product<'_> {
    fn run(self) -> TractResult<()> {
        let Product {
            x,
            k,
            p,
            packed,
            bias,
            row,
            out,
            panel,
            bounds,
        } = self;
        let arch = pulp::Arch::new();
        let nr = arch.dispatch(Lanes) * 2;
        let rows = out.len() / p.max(1);
        panel.clear();
        panel.resize(k * nr, 0.0);
        let mut block_out = [0f32; MR * 2 * MAX_LANES];
        for p0 in (0..p).step_by(nr) {
            let width = nr.min(p - p0);
            // The panel: columns p0..p0 + width of every input channel,
            // contiguous, zero-padded to a whole number of vectors.
            for (dst, src) in panel.chunks_exact_mut(nr).zip(x.chunks_exact(p)) {
                copy_row(dst, &src[p0..p0 + width]);
            }
            for b in (0..rows).step_by(MR) {
                let block = (row + b) / MR;
                let Some(w) = packed.get(block * k * MR..(block + 1) * k * MR) else {
                    bail!("EdgeservePointwiseConv: weight block {block} is missing")
                };
                let mut block_bias = [0f32; MR];
                for (r, v) in block_bias.iter_mut().enumerate() {
                    *v = bias.get(row + b + r).copied().unwrap_or(0.0);
                }
                arch.dispatch(Micro {
                    panel,
                    w,
                    k,
                    bias: block_bias,
                    bounds,
                    out: &mut block_out[..MR * nr],
                })?;
                for (r, src) in block_out.chunks_exact(nr).take((rows - b).min(MR)).enumerate() {
                    let start = (b + r) * p + p0;
                    let Some(dst) = out.get_mut(start..start + width) else {
                        bail!("EdgeservePointwiseConv: output row {} is short", row + b + r)
                    };
                    dst.copy_from_slice(&src[..width]);
                }
            }
        }
        Ok(())
    }
}

/// `dst[..src.len()] = src`, zeros after. Copies of a constant size are
/// compiled inline; a `memcpy` call per 64- or 128-byte row cost more than
/// the copy.
fn copy_row(dst: &mut [f32], src: &[f32]) {
    fn fixed<const N: usize>(dst: &mut [f32], src: &[f32]) -> bool {
        match (<&mut [f32; N]>::try_from(dst), <&[f32; N]>::try_from(src)) {
            (Ok(d), Ok(s)) => {
                *d = *s;
                true
            }
            _ => false,
        }
    }
    if !(fixed::<32>(dst, src) || fixed::<16>(dst, src) || fixed::<4>(dst, src)) {
        let n = src.len().min(dst.len());
        dst[..n].copy_from_slice(&src[..n]);
        dst[n..].fill(0.0);
    }
}

/// The number of `f32` lanes of the SIMD `pulp` picks.
struct Lanes;

impl pulp::WithSimd for Lanes {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> usize {
        S::F32_LANES
    }
}

/// One `MR × 2·lanes` block of outputs over all `k` input channels.
///
/// A dispatch of its own, so that this loop is compiled alone: inside a
/// larger function the compiler kept the accumulators on the stack and the
/// loop ran at a third of the speed.
struct Micro<'a> {
    /// `k` rows of `2 · lanes`.
    panel: &'a [f32],
    /// `k` rows of `MR` weights.
    w: &'a [f32],
    k: usize,
    bias: [f32; MR],
    bounds: Bounds,
    /// `MR` rows of `2 · lanes`.
    out: &'a mut [f32],
}

impl pulp::WithSimd for Micro<'_> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> TractResult<()> {
        let Micro {
            panel,
            w,
            k,
            bias,
            bounds,
            out,
        } = self;
        let (xs, _) = S::as_simd_f32s(panel);
        let (xs, _) = xs.as_chunks::<2>();
        let (w, _) = w.as_chunks::<MR>();
        let n = k.min(xs.len()).min(w.len());
        if n < k {
            bail!("EdgeservePointwiseConv: misshapen panel")
        }
        let z = simd.splat_f32s(0.0);
        // Twelve named accumulators rather than an array: the array, whose
        // address is taken after the loop, was written back to the stack on
        // every step, and those stores bounded the loop.
        let (mut a00, mut a01, mut a10, mut a11, mut a20, mut a21) = (z, z, z, z, z, z);
        let (mut a30, mut a31, mut a40, mut a41, mut a50, mut a51) = (z, z, z, z, z, z);
        // Indexing below `n` (at most both lengths) compiles without bounds
        // checks; iterator adapters here were left as calls.
        for i in 0..n {
            let [x0, x1] = xs[i];
            let [w0, w1, w2, w3, w4, w5] = w[i];
            let w0 = simd.splat_f32s(w0);
            a00 = simd.mul_add_e_f32s(w0, x0, a00);
            a01 = simd.mul_add_e_f32s(w0, x1, a01);
            let w1 = simd.splat_f32s(w1);
            a10 = simd.mul_add_e_f32s(w1, x0, a10);
            a11 = simd.mul_add_e_f32s(w1, x1, a11);
            let w2 = simd.splat_f32s(w2);
            a20 = simd.mul_add_e_f32s(w2, x0, a20);
            a21 = simd.mul_add_e_f32s(w2, x1, a21);
            let w3 = simd.splat_f32s(w3);
            a30 = simd.mul_add_e_f32s(w3, x0, a30);
            a31 = simd.mul_add_e_f32s(w3, x1, a31);
            let w4 = simd.splat_f32s(w4);
            a40 = simd.mul_add_e_f32s(w4, x0, a40);
            a41 = simd.mul_add_e_f32s(w4, x1, a41);
            let w5 = simd.splat_f32s(w5);
            a50 = simd.mul_add_e_f32s(w5, x0, a50);
            a51 = simd.mul_add_e_f32s(w5, x1, a51);
        }
        let acc = [
            [a00, a01],
            [a10, a11],
            [a20, a21],
            [a30, a31],
            [a40, a41],
            [a50, a51],
        ];
        let (lo, hi) = (simd.splat_f32s(bounds.lo()), simd.splat_f32s(bounds.hi()));
        let (outs, _) = S::as_mut_simd_f32s(out);
        for (pair, (a, b)) in outs.chunks_exact_mut(2).zip(acc.iter().zip(bias)) {
            let b = simd.splat_f32s(b);
            for (o, v) in pair.iter_mut().zip(a) {
                *o = simd.min_f32s(simd.max_f32s(simd.add_f32s(*v, b), lo), hi);
            }
        }
        Ok(())
    }
}

impl TypedOp for Pointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(input) = inputs.first() else {
            bail!("EdgeservePointwiseConv takes one input")
        };
        let mut shape: TVec<_> = input.shape.iter().cloned().collect();
        if self.out_rank != self.in_rank {
            shape.remove(0);
        }
        let r = shape.len();
        ensure!(r >= 3, "EdgeservePointwiseConv: input of rank {}", input.rank());
        shape[r - 3] = self.cout.into();
        ensure!(
            inputs.len() == 1 + usize::from(self.residual)
                && inputs
                    .get(1)
                    .is_none_or(|res| res.datum_type == DatumType::F32 && *res.shape == *shape),
            "EdgeservePointwiseConv: inputs {inputs:?} for an output of {shape:?}"
        );
        Ok(tvec!(TypedFact::dt_shape(DatumType::F32, shape)))
    }

    as_op!();
}

/// Replaces every 1×1 convolution, still a `Conv` (before tract's
/// simplification) or already an `EinSum` (`[N,]I,H,W × O,I → [N,]O,H,W`,
/// with the bias `Add` that follows), by [`Pointwise`], with the clamp that
/// follows it. Only f32 with constant weights and a concrete
/// image size; others are left to tract.
pub(crate) fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    Ok(fused::rewrite_all::<EinSum>(model, patch_for)? + fused::rewrite_all::<Conv>(model, patch_for_conv)?)
}

/// When `axes` reads as `[n]ihw,oi->[n]ohw` with distinct letters (the
/// output may drop `n`, which is right only for a batch of 1): the input
/// and output ranks.
fn pointwise_axes(axes: &str) -> Option<(usize, usize)> {
    let (inputs, output) = axes.split_once("->")?;
    let (x, w) = inputs.split_once(',')?;
    let (x, w, o): (Vec<char>, Vec<char>, Vec<char>) =
        (x.chars().collect(), w.chars().collect(), output.chars().collect());
    let [wo, wi] = w[..] else { return None };
    let (n, [i, h, ww]) = match x[..] {
        [i, h, w] => (None, [i, h, w]),
        [n, i, h, w] => (Some(n), [i, h, w]),
        _ => return None,
    };
    let expected: Vec<char> = match (n, o.len()) {
        (Some(n), 4) => vec![n, wo, h, ww],
        (_, 3) => vec![wo, h, ww],
        _ => return None,
    };
    let mut letters: Vec<char> = n.into_iter().chain([i, h, ww, wo]).collect();
    letters.sort_unstable();
    letters.dedup();
    (wi == i && o == expected && letters.len() == 4 + usize::from(n.is_some())).then_some((x.len(), o.len()))
}

fn patch_for(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some((in_rank, out_rank)) = fused::f32_einsum_axes(node).and_then(|a| pointwise_axes(&a)) else {
        return Ok(None);
    };
    let input = model.outlet_fact(node.inputs[0])?;
    let Some(weights) = model.outlet_fact(node.inputs[1])?.konst.clone() else {
        return Ok(None);
    };
    if input.datum_type != DatumType::F32 || weights.datum_type() != DatumType::F32 || input.rank() != in_rank
    {
        return Ok(None);
    }
    let dims: Vec<Option<usize>> = input.shape.iter().map(|d| d.to_usize().ok()).collect();
    let (Some(k), Some(h), Some(w)) = (dims[in_rank - 3], dims[in_rank - 2], dims[in_rank - 1]) else {
        return Ok(None);
    };
    // A batch axis summed away is only the identity for a batch of 1.
    if in_rank == 4 && out_rank == 3 && dims[0] != Some(1) {
        return Ok(None);
    }
    let &[cout, wk] = weights.shape() else {
        return Ok(None);
    };
    if wk != k || k == 0 || cout == 0 || h * w == 0 {
        return Ok(None);
    }

    // A following `Add` of a per-channel constant is the bias.
    let mut last = id;
    let mut bias = vec![0f32; cout];
    if let Some((next, bin, b)) = fused::next_binary_with_const(model, id)?
        && bin.0.is::<Add>()
        && b.len() == cout
        // Per output channel: `cout` on the channel axis, ones elsewhere.
        // A `[cout]` or `[cout, 1]` constant would broadcast along W or H.
        && b.rank() >= 3
        && b.rank() <= out_rank
        && b.shape()[b.rank() - 3] == cout
    {
        bias.copy_from_slice(b.try_as_plain_ram()?.as_slice::<f32>()?);
        last = next.id;
    }
    let shape = Shape {
        k,
        cout,
        pixels: h * w,
        in_rank,
        out_rank,
    };
    Ok(Some(replace(model, id, shape, weights, bias, last)?))
}

struct Shape {
    k: usize,
    cout: usize,
    pixels: usize,
    in_rank: usize,
    out_rank: usize,
}

/// The patch putting [`Pointwise`] in place of node `id` and the nodes up to
/// `last` (its bias), with the clamp after them.
fn replace(
    model: &TypedModel,
    id: usize,
    shape: Shape,
    weights: Arc<Tensor>,
    bias: Vec<f32>,
    last: usize,
) -> TractResult<TypedModelPatch> {
    let Shape {
        k,
        cout,
        pixels,
        in_rank,
        out_rank,
    } = shape;
    ensure!(
        weights.len() == cout * k && weights.datum_type() == DatumType::F32,
        "EdgeservePointwiseConv: {} weights for {cout} × {k}",
        weights.len()
    );
    let (bounds, last) = fused::following_clamp(model, last)?;
    let weights: Weights = weights.into();
    let op = Pointwise {
        k,
        cout,
        pixels,
        in_rank,
        out_rank,
        packed: weights,
        rows: true,
        bias: Arc::new(Tensor::from_shape(&[cout], &bias)?),
        bounds,
        blocked: false,
        residual: false,
    };
    fused::replacement(model, model.node(id), op, last)
}

/// The tensor a product with a residual is added into: the residual's own
/// when no other node reads it (tract hands over its last reference), else
/// a copy.
fn sum_into(residual: TValue, shape: &[usize]) -> TractResult<Tensor> {
    ensure!(
        residual.shape() == shape && residual.datum_type() == DatumType::F32,
        "EdgeservePointwiseConv: a residual of {:?} {:?} for an output of {shape:?}",
        residual.datum_type(),
        residual.shape()
    );
    if residual.is_exclusive() {
        match Arc::try_unwrap(residual.into_arc_tensor()) {
            Ok(tensor) => return Ok(tensor),
            Err(shared) => return sum_into(shared.into_tvalue(), shape),
        }
    }
    let mut tensor = recycle::output(shape)?;
    tensor
        .try_as_plain_ram_mut()?
        .as_slice_mut::<f32>()?
        .copy_from_slice(residual.try_as_plain_ram()?.as_slice::<f32>()?);
    Ok(tensor)
}

/// Folds each residual `Add` of a blocked 1×1 product (`y = conv(x) + r`)
/// into the product ([`Pointwise::residual`]), after the blocked layout's
/// placement: the sum is made as the product is stored, into `r`'s own
/// buffer when nothing else reads it. As its own operator (tract's generic
/// `Add`), Lite0's 9 took 40 µs of a 9.5 ms run, and each wrote a new
/// tensor. Where the product is read elsewhere too, or is a model output,
/// the `Add` stays.
pub(crate) fn fuse_residuals(model: &mut TypedModel) -> TractResult<usize> {
    fused::rewrite_all::<TypedBinOp>(model, residual_patch)
}

fn residual_patch(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    if !node.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Add>()) || node.inputs.len() != 2 {
        return Ok(None);
    }
    for (this, other) in [(0, 1), (1, 0)] {
        let from = node.inputs[this];
        let prev = model.node(from.node);
        let Some(op) = prev.op_as::<Pointwise>() else {
            continue;
        };
        // A blocked product's output is blocked, and so is an `Add` that
        // reads it with no conversion between (`blocked::apply`): then
        // both its operands are.
        let alone = prev.outputs.len() == 1
            && prev.outputs[0].successors.len() == 1
            && !model.outputs.contains(&from);
        let (a, b) = (model.outlet_fact(from)?, model.outlet_fact(node.inputs[other])?);
        if !op.blocked || op.residual || !alone || a.shape != b.shape || a.datum_type != b.datum_type {
            continue;
        }
        let mut patch = TypedModelPatch::new(format!("edgeserve residual {}", node.name));
        let x = patch.tap_model(model, prev.inputs[0])?;
        let r = patch.tap_model(model, node.inputs[other])?;
        let fused = Pointwise {
            residual: true,
            ..op.clone()
        };
        let wire = patch.wire_node(&prev.name, fused, &[x, r])?;
        patch.shunt_outside(model, OutletId::new(id, 0), wire[0])?;
        return Ok(Some(patch));
    }
    Ok(None)
}

/// Packs the weights of every [`Pointwise`] left in the model's layout (the
/// blocked layout packs its own in `to_blocked`): after [`rewrite`] and
/// the blocked layout's placement.
pub(crate) fn pack(model: &mut TypedModel) -> TractResult<()> {
    for id in 0..model.nodes().len() {
        let Some(op) = model.node(id).op_as::<Pointwise>().filter(|op| op.rows) else {
            continue;
        };
        let (k, cout) = (op.k, op.cout);
        let weights = op.packed.as_slice()?;
        // Packed straight into the tensor (see `blocked::interleave`).
        let mut tensor = Tensor::zero::<f32>(&[cout.div_ceil(MR) * k * MR])?;
        let mut view = tensor.try_as_plain_ram_mut()?;
        let packed = view.as_slice_mut::<f32>()?;
        for (o, row) in weights.chunks_exact(k).enumerate() {
            let (block, r) = (o / MR, o % MR);
            for (i, v) in row.iter().enumerate() {
                packed[(block * k + i) * MR + r] = *v;
            }
        }
        let op = Pointwise {
            packed: Arc::new(tensor).into(),
            rows: false,
            ..op.clone()
        };
        model.node_mut(id).op = Box::new(op);
    }
    Ok(())
}

/// A 1×1 convolution still as a `Conv` (before tract's simplification makes
/// it an `EinSum`): stride 1, no padding, one group.
fn patch_for_conv(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let Some(conv) = fused::plain_conv(model, model.node(id))? else {
        return Ok(None);
    };
    let unit = (conv.kh, conv.kw, conv.sh, conv.sw, conv.pad_top, conv.pad_left) == (1, 1, 1, 1, 0, 0);
    if conv.group != 1 || !unit || (conv.out_h, conv.out_w) != (conv.in_h, conv.in_w) {
        return Ok(None);
    }
    let shape = Shape {
        k: conv.cin,
        cout: conv.cout,
        pixels: conv.in_h * conv.in_w,
        in_rank: conv.rank,
        out_rank: conv.rank,
    };
    Ok(Some(replace(
        model,
        id,
        shape,
        conv.kernel_tensor(),
        conv.bias.clone(),
        id,
    )?))
}
