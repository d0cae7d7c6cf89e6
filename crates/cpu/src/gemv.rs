//! A product of a constant matrix with one vector per image, `y = W·x +
//! b`: a classifier's last layer (a `Gemm` or `MatMul` after the pooling),
//! natively.
//!
//! Hand-written because tract ran this product for one column on one
//! thread whatever the pool: Lite0's head (1000 × 1280, 5.1 MB of weights)
//! took 309–340 µs in the model at one thread and at two. The layer does
//! one multiply-add per weight it reads, so its time is how fast the
//! weights stream in; here each thread streams the rows it owns, one row
//! at a time, in the order they lie in memory. Measured in the model
//! (medians of 21 profiled runs, this kernel against tract's): Lite0 249
//! against 284 µs at one thread and 186 against 309 at two; Lite2 337
//! against 316 and 193 against 353. Four rows at a time, as four streams,
//! took 344 µs on a cold matrix where one row at a time took 226–256 (a C
//! loop over the rows: 190–270). Only natively: in Chromium the same
//! kernel in the threaded relaxed-SIMD build made no difference (three
//! runs of each package alternated, `benches/README.md`).
//!
//! Every batch size runs here, the free-batch plan's too, and each image's
//! values are summed in one order whatever the batch: a server batching
//! requests must answer each as it would alone, to the bit
//! (`crates/cli/tests/batching.rs`), and with this kernel on batch 1 only,
//! tract's product on a batch of eight rounded differently.

use crate::blocked::{self, BLOCK, BlockOp, Lanes8};
use crate::fused;
use crate::recycle;
use crate::weights::{Heads, Weights};
use tract_onnx::prelude::{
    Arc, DatumType, IntoTValue, OutletId, TDim, TValue, TVec, Tensor, TractResult, TypedFact, TypedModel,
    TypedModelPatch, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{DimLike, bail, ensure};

/// The fused operator replacing an `EinSum` of one vector per image with a
/// constant matrix, and the bias `Add` after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Gemv {
    /// Values of each image's input vector.
    k: usize,
    /// Values of each image's output vector.
    n: usize,
    /// `[n, k]`, a row per output value, placed once for every plan
    /// (`crate::weights::Heads`): 5.1 MB for Lite0, read from memory in
    /// every inference; in Lite0, one thread, in one process, two copies
    /// alternated (the mapping and the tensor) took 0.973-1.009 of the
    /// tensor's whole-run time (median 0.99; six processes, 60 runs each).
    weights: Weights,
    /// `[n]`, zeros when the model adds none.
    bias: Arc<Tensor>,
    /// The input's batch axis, if it has one (its other axes but the
    /// summed one are 1).
    batch_axis: Option<usize>,
    /// The output's shape: `None` at the batch axis, 1 at the others but
    /// the one of `n` values.
    out_shape: TVec<Option<usize>>,
}

impl Gemv {
    /// The output's shape for an input of `batch` images.
    fn output_shape<D: Clone + From<usize>>(&self, batch: D) -> TVec<D> {
        self.out_shape
            .iter()
            .map(|d| d.map_or_else(|| batch.clone(), D::from))
            .collect()
    }
}

impl Op for Gemv {
    fn name(&self) -> StaticName {
        "EdgeserveGemv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{} → {} values per image", self.k, self.n)])
    }

    op_as_typed_op!();
}

impl EvalOp for Gemv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let Some(input) = inputs.first() else {
            bail!("EdgeserveGemv takes one input")
        };
        let batch = match self.batch_axis {
            Some(axis) => input.shape().get(axis).copied().unwrap_or(0),
            None => 1,
        };
        ensure!(
            input.datum_type() == DatumType::F32 && input.len() == batch * self.k,
            "EdgeserveGemv: an input of {} {:?} values, expected {batch} × {} f32",
            input.len(),
            input.datum_type(),
            self.k
        );
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let w = self.weights.as_slice()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut tensor = recycle::output(&self.output_shape(batch))?;
        let mut view = tensor.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        product(x, w, bias, out)?;
        recycle::keep(inputs);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

impl TypedOp for Gemv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == 1 && inputs[0].datum_type == DatumType::F32,
            "EdgeserveGemv takes one f32 input, not {inputs:?}"
        );
        let batch = match self.batch_axis {
            Some(axis) => match inputs[0].shape.get(axis) {
                Some(d) => d.clone(),
                None => bail!("EdgeserveGemv: no batch axis {axis} in {:?}", inputs[0]),
            },
            None => 1.into(),
        };
        Ok(tvec!(TypedFact::dt_shape(
            DatumType::F32,
            self.output_shape::<TDim>(batch)
        )))
    }

    as_op!();
}

/// `out = w·x + bias` for each image: `x` is `[images, k]`, `w` `[n, k]`,
/// `out` `[images, n]`. The rows of `w` are split between the pool's
/// threads, and each thread streams its rows once, taking every image in
/// turn while a row is in cache. Each image's values are summed in the
/// same order whatever the number of images, so that a batch answers
/// exactly as its images one at a time (`edgeserve serve
/// --enable_batching` promises that: `crates/cli/tests/batching.rs`).
pub(crate) fn product(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32]) -> TractResult<()> {
    let n = bias.len();
    let k = w.len().checked_div(n).unwrap_or(0);
    let images = x.len().checked_div(k).unwrap_or(0);
    ensure!(
        n > 0 && k > 0 && w.len() == n * k && x.len() == images * k && out.len() == images * n,
        "EdgeserveGemv: {} weights, {} biases, {} inputs and {} outputs do not make a product",
        w.len(),
        n,
        x.len(),
        out.len()
    );
    let per_task = n.div_ceil(fused::workers()).max(1);
    // Piece `t` holds rows `t·per_task..` of every image's output.
    let mut pieces: Vec<(usize, Vec<&mut [f32]>)> = (0..n.div_ceil(per_task))
        .map(|t| (t * per_task, Vec::with_capacity(images)))
        .collect();
    for image in out.chunks_mut(n) {
        for (piece, rows) in pieces.iter_mut().zip(image.chunks_mut(per_task)) {
            piece.1.push(rows);
        }
    }
    fused::for_each(pieces, |_: &mut (), (first, outs): (usize, Vec<&mut [f32]>)| {
        let rows = outs.first().map_or(0, |o| o.len());
        let op = Rows {
            x,
            k,
            w: w.get(first * k..(first + rows) * k).unwrap_or_default(),
            bias: bias.get(first..first + rows).unwrap_or_default(),
            outs,
        };
        blocked::vectorize_or_fail("EdgeserveGemv", op)?
    })
}

/// Some rows of the product, for every image.
struct Rows<'a> {
    /// `[images, k]`.
    x: &'a [f32],
    k: usize,
    /// `[rows, k]`.
    w: &'a [f32],
    /// `[rows]`.
    bias: &'a [f32],
    /// Each image's `rows` outputs.
    outs: Vec<&'a mut [f32]>,
}

impl BlockOp for Rows<'_> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn run<L: Lanes8>(self, simd: L) -> TractResult<()> {
        let Rows {
            x,
            k,
            w,
            bias,
            mut outs,
        } = self;
        let rows = bias.len();
        ensure!(
            k > 0 && w.len() == rows * k && x.len() == outs.len() * k && outs.iter().all(|o| o.len() == rows),
            "EdgeserveGemv: {} weights and {} outputs for {rows} rows of {k}",
            w.len(),
            outs.len()
        );
        let whole = k / BLOCK * BLOCK;
        // Each image's whole vectors and the values after them.
        let images: Vec<(&[[f32; BLOCK]], &[f32])> = x
            .chunks_exact(k)
            .map(|xi| {
                let (v, tail) = xi.split_at(whole.min(xi.len()));
                (v.as_chunks::<BLOCK>().0, tail)
            })
            .collect();
        for (r, (wr, b)) in w.chunks_exact(k).zip(bias).enumerate() {
            let (wv, w_tail) = wr.split_at(whole.min(wr.len()));
            let wv = wv.as_chunks::<BLOCK>().0;
            for (out, (xv, x_tail)) in outs.iter_mut().zip(&images) {
                let tail: f32 = w_tail.iter().zip(*x_tail).map(|(w, x)| w * x).sum();
                if let Some(o) = out.get_mut(r) {
                    *o = b + dot(simd, wv, xv) + tail;
                }
            }
        }
        Ok(())
    }
}

/// The dot product of whole vectors `wv` and `xv`, summed in one order: four
/// accumulators over groups of four vectors, the rest into the first, then
/// the lanes in order.
#[inline(always)]
fn dot<L: Lanes8>(simd: L, wv: &[[f32; BLOCK]], xv: &[[f32; BLOCK]]) -> f32 {
    let zero = simd.splat(0.0);
    let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
    let len = xv.len().min(wv.len());
    let (wq, wr) = wv[..len].as_chunks::<4>();
    let (xq, xr) = xv[..len].as_chunks::<4>();
    for (w, x) in wq.iter().zip(xq) {
        a0 = simd.mul_add(simd.load(&w[0]), simd.load(&x[0]), a0);
        a1 = simd.mul_add(simd.load(&w[1]), simd.load(&x[1]), a1);
        a2 = simd.mul_add(simd.load(&w[2]), simd.load(&x[2]), a2);
        a3 = simd.mul_add(simd.load(&w[3]), simd.load(&x[3]), a3);
    }
    for (w, x) in wr.iter().zip(xr) {
        a0 = simd.mul_add(simd.load(w), simd.load(x), a0);
    }
    let mut lanes = [0f32; BLOCK];
    simd.store(simd.add(simd.add(a0, a1), simd.add(a2, a3)), &mut lanes);
    lanes.iter().sum()
}

/// Replaces every `EinSum` of one vector per image with a constant f32
/// matrix (and the bias `Add` after it) by [`Gemv`], natively: the input is
/// `[images, k]` in memory (its axes other than the summed one and the
/// batch's are 1) and so is the output `[images, n]`.
///
/// Each head's weights are placed once, through `heads`, for all the
/// model's plans.
pub(crate) fn rewrite(model: &mut TypedModel, heads: &Heads) -> TractResult<usize> {
    if cfg!(target_arch = "wasm32") || !blocked::available() {
        return Ok(0);
    }
    fused::rewrite_all::<EinSum>(model, |model, id| patch_for(model, id, heads))
}

/// The letters of an `EinSum` of one vector per image with a matrix.
#[derive(Debug, PartialEq)]
struct Axes {
    /// The matrix's summed axis is its first (`[k, n]`), not its second.
    summed_first: bool,
    /// The summed letter and the matrix's other one.
    k: char,
    n: char,
    /// The input's and the output's letters.
    x: Vec<char>,
    out: Vec<char>,
}

/// `axes` read as `x, w -> out` with `w` of two axes: one summed (in `x`,
/// not in `out`), the other in `out` only, and every letter of `x` and of
/// `out` distinct.
fn vector_axes(axes: &str) -> Option<Axes> {
    let (inputs, output) = axes.split_once("->")?;
    let (x, w) = inputs.split_once(',')?;
    let (x, w, out): (Vec<char>, Vec<char>, Vec<char>) =
        (x.chars().collect(), w.chars().collect(), output.chars().collect());
    let &[w0, w1] = &w[..] else { return None };
    let summed_first = match (x.contains(&w0), x.contains(&w1)) {
        (true, false) => true,
        (false, true) => false,
        _ => return None,
    };
    let (k, n) = if summed_first { (w0, w1) } else { (w1, w0) };
    let distinct = |v: &[char]| {
        let mut s = v.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len() == v.len()
    };
    let fits = distinct(&x)
        && distinct(&out)
        && !out.contains(&k)
        && out.contains(&n)
        && out.iter().all(|l| *l == n || x.contains(l));
    fits.then_some(Axes {
        summed_first,
        k,
        n,
        x,
        out,
    })
}

fn patch_for(model: &TypedModel, id: usize, heads: &Heads) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some(axes) = fused::f32_einsum_axes(node).and_then(|a| vector_axes(&a)) else {
        return Ok(None);
    };
    let input = model.outlet_fact(node.inputs[0])?;
    let output = model.outlet_fact(OutletId::new(id, 0))?;
    let Some(matrix) = model.outlet_fact(node.inputs[1])?.konst.clone() else {
        return Ok(None);
    };
    if input.datum_type != DatumType::F32
        || matrix.datum_type() != DatumType::F32
        || matrix.rank() != 2
        || input.rank() != axes.x.len()
        || output.rank() != axes.out.len()
    {
        return Ok(None);
    }
    let (k, n) = if axes.summed_first {
        (matrix.shape()[0], matrix.shape()[1])
    } else {
        (matrix.shape()[1], matrix.shape()[0])
    };
    let size = |d: &TDim| d.to_usize().ok();
    let at = |letters: &[char], l: char| letters.iter().position(|c| *c == l);
    // The input: `k` values on the summed axis and at most one other axis
    // not 1, the batch (its size may be left free), before the summed one
    // and kept in the output: `[images, k]` in memory.
    let mut batch: Option<(usize, char)> = None;
    for (i, (l, d)) in axes.x.iter().zip(input.shape.iter()).enumerate() {
        if *l == axes.k {
            if size(d) != Some(k) {
                return Ok(None);
            }
        } else if size(d) != Some(1) {
            if batch.is_some() || at(&axes.x, axes.k) < Some(i) || !axes.out.contains(l) {
                return Ok(None);
            }
            batch = Some((i, *l));
        }
    }
    // The output: `n` values on the matrix's axis, the batch before it,
    // 1 elsewhere: `[images, n]` in memory.
    let mut out_shape: TVec<Option<usize>> = TVec::new();
    for (l, d) in axes.out.iter().zip(output.shape.iter()) {
        if *l == axes.n {
            if size(d) != Some(n) {
                return Ok(None);
            }
            out_shape.push(Some(n));
        } else if batch.is_some_and(|(_, b)| b == *l) {
            if at(&axes.out, axes.n) < at(&axes.out, *l) {
                return Ok(None);
            }
            out_shape.push(None);
        } else if size(d) == Some(1) {
            out_shape.push(Some(1));
        } else {
            return Ok(None);
        }
    }
    if k == 0 || n == 0 {
        return Ok(None);
    }
    // `[n, k]`, a row per output value: the matrix as it is when its
    // summed axis is the second, else transposed once here.
    let rows = if axes.summed_first {
        let m = matrix.try_as_plain_ram()?.as_slice::<f32>()?;
        let t: Vec<f32> = (0..n * k).map(|i| m[(i % k) * n + i / k]).collect();
        Arc::new(Tensor::from_shape(&[n, k], &t)?)
    } else {
        matrix.clone()
    };
    // A following `Add` of a constant of `n` values, laid along the
    // output's axis of `n` (1 on the others, the batch's included), is
    // the bias.
    let mut last = id;
    let mut bias = vec![0f32; n];
    if let Some((next, bin, b)) = fused::next_binary_with_const(model, id)?
        && bin.0.is::<Add>()
        && b.len() == n
        && b.rank() <= out_shape.len()
        && b.shape()
            .iter()
            .rev()
            .zip(out_shape.iter().rev())
            .all(|(b, o)| *b == 1 || Some(*b) == *o)
    {
        bias.copy_from_slice(b.try_as_plain_ram()?.as_slice::<f32>()?);
        last = next.id;
    }
    let op = Gemv {
        k,
        n,
        weights: heads.place(&matrix, rows)?,
        bias: Arc::new(Tensor::from_shape(&[n], &bias)?),
        batch_axis: batch.map(|(i, _)| i),
        out_shape,
    };
    Ok(Some(fused::replacement(model, node, op, last)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_axes_take_a_vector_times_a_matrix_either_way_round_and_nothing_else() {
        // Lite0's head as tract writes it, and `MatMul` of `[m, k]` by
        // `[k, n]`.
        let axes = vector_axes("mkba,nk->mn").unwrap();
        assert_eq!(
            axes,
            Axes {
                summed_first: false,
                k: 'k',
                n: 'n',
                x: vec!['m', 'k', 'b', 'a'],
                out: vec!['m', 'n']
            }
        );
        assert_eq!(vector_axes("mk,kn->mn").map(|a| a.summed_first), Some(true));
        // The summed axis kept, the matrix's other one dropped, both or
        // neither of its axes in `x`, repeated letters, not an `EinSum`
        // of two inputs.
        for axes in [
            "mk,nk->mkn",
            "mk,nk->m",
            "mk,mk->m",
            "mk,nq->mn",
            "mkk,nk->mn",
            "mk,nk->mnn",
            "mk->m",
            "mk,nkq->mn",
        ] {
            assert!(vector_axes(axes).is_none(), "{axes}");
        }
    }

    /// The product against a plain one in f64, for sizes that leave rows
    /// and values over (a tail of `k % 8`, an odd count of vectors), for
    /// one image and for three, each of which must come out exactly as it
    /// does alone.
    #[test]
    fn the_product_matches_a_plain_one_and_a_batch_its_images_alone_and_refuses_wrong_lengths() {
        for (k, n) in [(1, 1), (7, 3), (8, 4), (21, 9), (40, 5), (1280, 13)] {
            let x: Vec<f32> = (0..3 * k)
                .map(|i| ((i * 7 + 3) % 11) as f32 / 5.0 - 1.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 13 + 1) % 17) as f32 / 8.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|i| i as f32 - 2.0).collect();
            let mut batch = vec![f32::NAN; 3 * n];
            product(&x, &w, &bias, &mut batch).unwrap();
            for (image, (xi, got)) in x.chunks(k).zip(batch.chunks(n)).enumerate() {
                let mut alone = vec![f32::NAN; n];
                product(xi, &w, &bias, &mut alone).unwrap();
                assert_eq!(got, alone, "{k} → {n}, image {image}");
                for (r, got) in got.iter().enumerate() {
                    let want: f64 =
                        bias[r] as f64 + (0..k).map(|i| w[r * k + i] as f64 * xi[i] as f64).sum::<f64>();
                    assert!(
                        (*got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{k} → {n}, image {image}, row {r}: {got} against {want}"
                    );
                }
            }
        }
        let mut out = vec![0.0; 2];
        assert!(product(&[1.0; 3], &[1.0; 5], &[0.0; 2], &mut out).is_err());
        assert!(product(&[1.0; 4], &[1.0; 6], &[0.0; 2], &mut out).is_err());
        assert!(product(&[1.0; 3], &[1.0; 6], &[0.0; 2], &mut [0.0; 3]).is_err());
    }
}
