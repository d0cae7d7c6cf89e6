//! A product of a constant matrix with one vector, `y = W·x + b`: a
//! classifier's last layer (a `Gemm` or `MatMul` after the pooling) on one
//! image, natively.
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

use crate::blocked::{self, BLOCK, BlockOp, Lanes8};
use crate::fused;
use crate::recycle;
use tract_onnx::prelude::{
    Arc, DatumType, IntoTValue, OutletId, TValue, TVec, Tensor, TractResult, TypedFact, TypedModel,
    TypedModelPatch, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{DimLike, bail, ensure};

/// The fused operator replacing an `EinSum` of a vector with a constant
/// matrix, and the bias `Add` after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Gemv {
    /// Values of the input (all its other axes are 1).
    k: usize,
    /// Values of the output.
    n: usize,
    /// `[n, k]`, a row per output value.
    weights: Arc<Tensor>,
    /// `[n]`, zeros when the model adds none.
    bias: Arc<Tensor>,
    /// The output's shape (its axes other than `n` are 1).
    out_shape: TVec<usize>,
}

impl Op for Gemv {
    fn name(&self) -> StaticName {
        "EdgeserveGemv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{} → {} values", self.k, self.n)])
    }

    op_as_typed_op!();
}

impl EvalOp for Gemv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let Some(input) = inputs.first() else {
            bail!("EdgeserveGemv takes one input")
        };
        ensure!(
            input.datum_type() == DatumType::F32 && input.len() == self.k,
            "EdgeserveGemv: an input of {} {:?} values, expected {} f32",
            input.len(),
            input.datum_type(),
            self.k
        );
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let w = self.weights.try_as_plain_ram()?.as_slice::<f32>()?;
        let bias = self.bias.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut tensor = recycle::output(&self.out_shape)?;
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
        Ok(tvec!(TypedFact::dt_shape(DatumType::F32, &*self.out_shape)))
    }

    as_op!();
}

/// `out = w·x + bias`, `w` being `[out.len(), x.len()]`: the rows split
/// between the pool's threads, each taking a contiguous share.
pub(crate) fn product(x: &[f32], w: &[f32], bias: &[f32], out: &mut [f32]) -> TractResult<()> {
    let (k, n) = (x.len(), out.len());
    ensure!(
        w.len() == n * k && bias.len() == n,
        "EdgeserveGemv: {} weights and {} biases for {n} × {k}",
        w.len(),
        bias.len()
    );
    let per_task = n.div_ceil(fused::workers()).max(1);
    let pieces: Vec<(usize, &mut [f32])> = out
        .chunks_mut(per_task)
        .enumerate()
        .map(|(t, piece)| (t * per_task, piece))
        .collect();
    fused::for_each(pieces, |_: &mut (), (first, out): (usize, &mut [f32])| {
        let rows = first..first + out.len();
        let op = Rows {
            x,
            w: w.get(rows.start * k..rows.end * k).unwrap_or_default(),
            bias: bias.get(rows).unwrap_or_default(),
            out,
        };
        match blocked::vectorize(op) {
            Some(done) => done,
            None => bail!("EdgeserveGemv: needs AVX2 and FMA"),
        }
    })
}

/// Some rows of the product.
struct Rows<'a> {
    x: &'a [f32],
    /// `[out.len(), x.len()]`.
    w: &'a [f32],
    bias: &'a [f32],
    out: &'a mut [f32],
}

impl BlockOp for Rows<'_> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn run<L: Lanes8>(self, simd: L) -> TractResult<()> {
        let Rows { x, w, bias, out } = self;
        let k = x.len();
        ensure!(
            w.len() == out.len() * k && bias.len() == out.len(),
            "EdgeserveGemv: rows of {} weights for {} outputs of {k}",
            w.len(),
            out.len()
        );
        let (xv, x_tail) = x.as_chunks::<BLOCK>();
        // Whole vectors and the values after them, per row.
        let row = |r: usize| {
            w.get(r * k..(r + 1) * k)
                .unwrap_or_default()
                .split_at_checked(xv.len() * BLOCK)
                .unwrap_or_default()
        };
        let tail = |r: usize| -> f32 { row(r).1.iter().zip(x_tail).map(|(w, x)| w * x).sum() };
        let hsum = |v: L::B| -> f32 {
            let mut lanes = [0f32; BLOCK];
            simd.store(v, &mut lanes);
            lanes.iter().sum()
        };
        let zero = simd.splat(0.0);
        for (r, o) in out.iter_mut().enumerate() {
            let wv = row(r).0.as_chunks::<BLOCK>().0;
            let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
            let len = xv.len().min(wv.len());
            let quads = len / 4;
            for c in 0..quads {
                let i = 4 * c;
                a0 = simd.mul_add(simd.load(&wv[i]), simd.load(&xv[i]), a0);
                a1 = simd.mul_add(simd.load(&wv[i + 1]), simd.load(&xv[i + 1]), a1);
                a2 = simd.mul_add(simd.load(&wv[i + 2]), simd.load(&xv[i + 2]), a2);
                a3 = simd.mul_add(simd.load(&wv[i + 3]), simd.load(&xv[i + 3]), a3);
            }
            for i in 4 * quads..len {
                a0 = simd.mul_add(simd.load(&wv[i]), simd.load(&xv[i]), a0);
            }
            *o = bias[r] + hsum(simd.add(simd.add(a0, a1), simd.add(a2, a3))) + tail(r);
        }
        Ok(())
    }
}

/// Replaces every `EinSum` of a vector with a constant f32 matrix (and the
/// bias `Add` after it) by [`Gemv`], natively. A vector: the input's only
/// axis longer than 1 is the one summed; its others are 1 and so is every
/// output axis but the matrix's other one. So a batch of one image only;
/// a larger batch stays tract's matrix product.
pub(crate) fn rewrite(model: &mut TypedModel) -> TractResult<usize> {
    if cfg!(target_arch = "wasm32") || !blocked::available() {
        return Ok(0);
    }
    fused::rewrite_all::<EinSum>(model, patch_for)
}

/// The letters of an `EinSum` of the form `x, w -> out` with `w` of two
/// axes: which of `w`'s is summed (it is in `x`, not in `out`), as
/// `(summed_first, x letters, out letters)`, when every letter of `x` and
/// `out` but those two is distinct and the matrix's other axis is in `out`
/// only.
fn vector_axes(axes: &str) -> Option<(bool, Vec<char>, Vec<char>)> {
    let (inputs, output) = axes.split_once("->")?;
    let (x, w) = inputs.split_once(',')?;
    let (x, w, o): (Vec<char>, Vec<char>, Vec<char>) =
        (x.chars().collect(), w.chars().collect(), output.chars().collect());
    let &[w0, w1] = &w[..] else { return None };
    let summed_first = match (x.contains(&w0), x.contains(&w1)) {
        (true, false) => true,
        (false, true) => false,
        _ => return None,
    };
    let (kl, nl) = if summed_first { (w0, w1) } else { (w1, w0) };
    let distinct = |v: &[char]| {
        let mut s = v.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len() == v.len()
    };
    let fits = distinct(&x)
        && distinct(&o)
        && !o.contains(&kl)
        && o.contains(&nl)
        && o.iter().all(|l| *l == nl || x.contains(l));
    fits.then_some((summed_first, x, o))
}

fn patch_for(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let Some((summed_first, x_letters, _)) = fused::f32_einsum_axes(node).and_then(|a| vector_axes(&a))
    else {
        return Ok(None);
    };
    let input = model.outlet_fact(node.inputs[0])?;
    let output = model.outlet_fact(OutletId::new(id, 0))?;
    let Some(matrix) = model.outlet_fact(node.inputs[1])?.konst.clone() else {
        return Ok(None);
    };
    if input.datum_type != DatumType::F32 || matrix.datum_type() != DatumType::F32 || matrix.rank() != 2 {
        return Ok(None);
    }
    let concrete = |shape: &[tract_onnx::prelude::TDim]| -> Option<Vec<usize>> {
        shape.iter().map(|d| d.to_usize().ok()).collect()
    };
    let (Some(in_dims), Some(out_dims)) = (concrete(&input.shape), concrete(&output.shape)) else {
        return Ok(None);
    };
    let (k, n) = if summed_first {
        (matrix.shape()[0], matrix.shape()[1])
    } else {
        (matrix.shape()[1], matrix.shape()[0])
    };
    // A vector in, a vector out: every axis but the summed one (or, out,
    // the matrix's other one) is 1.
    let in_len: usize = in_dims.iter().product();
    let out_len: usize = out_dims.iter().product();
    if in_dims.len() != x_letters.len() || in_len != k || out_len != n || k == 0 || n == 0 {
        return Ok(None);
    }
    // `[n, k]`, a row per output value: the matrix as it is when its
    // summed axis is the second, else transposed once here.
    let rows = if summed_first {
        let m = matrix.try_as_plain_ram()?.as_slice::<f32>()?;
        let t: Vec<f32> = (0..n * k).map(|i| m[(i % k) * n + i / k]).collect();
        Arc::new(Tensor::from_shape(&[n, k], &t)?)
    } else {
        matrix
    };
    // A following `Add` of a constant of `n` values, laid along the
    // output's long axis, is the bias.
    let mut last = id;
    let mut bias = vec![0f32; n];
    if let Some((next, bin, b)) = fused::next_binary_with_const(model, id)?
        && bin.0.is::<Add>()
        && b.len() == n
        && b.rank() <= out_dims.len()
        && b.shape()
            .iter()
            .rev()
            .zip(out_dims.iter().rev())
            .all(|(b, o)| b == o || *b == 1)
    {
        bias.copy_from_slice(b.try_as_plain_ram()?.as_slice::<f32>()?);
        last = next.id;
    }
    let op = Gemv {
        k,
        n,
        weights: rows,
        bias: Arc::new(Tensor::from_shape(&[n], &bias)?),
        out_shape: out_dims.into_iter().collect(),
    };
    Ok(Some(fused::replacement(model, node, op, last)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_axes_take_a_vector_times_a_matrix_either_way_round_and_nothing_else() {
        // Lite0's head as tract writes it, and `MatMul` of `[1, k]` by
        // `[k, n]`.
        let (first, x, o) = vector_axes("mkba,nk->mn").unwrap();
        assert_eq!((first, x, o), (false, vec!['m', 'k', 'b', 'a'], vec!['m', 'n']));
        assert_eq!(vector_axes("mk,kn->mn").map(|a| a.0), Some(true));
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
    /// and values over (a tail of `k % 8`, an odd count of vectors).
    #[test]
    fn the_product_matches_a_plain_one_for_every_size_and_refuses_wrong_lengths() {
        for (k, n) in [(1, 1), (7, 3), (8, 4), (21, 9), (40, 5), (1280, 13)] {
            let x: Vec<f32> = (0..k).map(|i| ((i * 7 + 3) % 11) as f32 / 5.0 - 1.0).collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 13 + 1) % 17) as f32 / 8.0 - 1.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|i| i as f32 - 2.0).collect();
            let mut out = vec![f32::NAN; n];
            product(&x, &w, &bias, &mut out).unwrap();
            for (r, got) in out.iter().enumerate() {
                let want: f64 =
                    bias[r] as f64 + (0..k).map(|i| w[r * k + i] as f64 * x[i] as f64).sum::<f64>();
                assert!(
                    (*got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{k} → {n}, row {r}: {got} against {want}"
                );
            }
        }
        let mut out = vec![0.0; 2];
        assert!(product(&[1.0; 3], &[1.0; 5], &[0.0; 2], &mut out).is_err());
        assert!(product(&[1.0; 3], &[1.0; 6], &[0.0; 1], &mut out).is_err());
    }
}
