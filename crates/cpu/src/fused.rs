//! What edgeserve's own kernels share: the clamp they fuse, finding that
//! clamp in the graph, and running independent pieces of work on tract's
//! thread pool.

use tract_onnx::prelude::{
    Arc, DatumType, OutletId, Tensor, TractResult, TypedModel, TypedModelPatch, TypedNode,
};
use tract_onnx::tract_core::internal::{Op, TypedOp};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::{Max, Min};

/// A fused `min(max(x, lo), hi)`; ±inf when the model has no such bound.
/// Stored as bits because tract's operators must be `Eq` and `Hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Bounds {
    lo: u32,
    hi: u32,
}

impl Bounds {
    pub(crate) fn new(lo: f32, hi: f32) -> Bounds {
        Bounds {
            lo: lo.to_bits(),
            hi: hi.to_bits(),
        }
    }

    pub(crate) fn lo(self) -> f32 {
        f32::from_bits(self.lo)
    }

    pub(crate) fn hi(self) -> f32 {
        f32::from_bits(self.hi)
    }
}

impl std::fmt::Display for Bounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", self.lo(), self.hi())
    }
}

/// The binary operator that alone consumes node `prev`'s output (which must
/// not be a model output), when its other operand is an f32 constant: the
/// node, its operator and that constant.
pub(crate) fn next_binary_with_const(
    model: &TypedModel,
    prev: usize,
) -> TractResult<Option<(&TypedNode, &TypedBinOp, Arc<Tensor>)>> {
    if model.outputs.contains(&OutletId::new(prev, 0)) {
        return Ok(None);
    }
    let Some(next) = model.single_succ(prev)? else {
        return Ok(None);
    };
    let Some(bin) = next.op_as::<TypedBinOp>() else {
        return Ok(None);
    };
    let &[a, b] = &next.inputs[..] else {
        return Ok(None);
    };
    let other = if a.node == prev { b } else { a };
    let Some(k) = model.outlet_fact(other)?.konst.clone() else {
        return Ok(None);
    };
    if k.datum_type() != DatumType::F32 {
        return Ok(None);
    }
    Ok(Some((next, bin, k)))
}

/// The clamp that follows node `id`'s only output, if any: up to one
/// `max(x, lo)` and one `min(x, hi)` with one-element constants, in either
/// order. Returns the bounds and the last node they cover (`id` itself when
/// there is nothing to fuse).
pub(crate) fn following_clamp(model: &TypedModel, id: usize) -> TractResult<(Bounds, usize)> {
    let (mut lo, mut hi) = (f32::NEG_INFINITY, f32::INFINITY);
    let mut last = id;
    for _ in 0..2 {
        let Some((next, bin, k)) = next_binary_with_const(model, last)? else {
            break;
        };
        // One element, and no higher rank than the output, so that it does
        // not broadcast the output to another shape.
        if k.len() != 1 || k.rank() > model.outlet_fact(OutletId::new(last, 0))?.rank() {
            break;
        }
        let v = k.try_as_plain_ram()?.as_slice::<f32>()?[0];
        // Applying max then min equals the model's order only when the
        // bounds do not cross.
        if bin.0.is::<Max>() && lo == f32::NEG_INFINITY && v <= hi {
            lo = v;
        } else if bin.0.is::<Min>() && hi == f32::INFINITY && v >= lo {
            hi = v;
        } else {
            break;
        }
        last = next.id;
    }
    Ok((Bounds::new(lo, hi), last))
}

/// Runs `f` on every item: on tract's thread pool when it has one
/// (natively, with `CpuOptions::threads` > 1), else in order. Each worker
/// keeps one `Sc` of scratch space across the items it takes.
pub(crate) fn for_each<T, Sc, F>(items: Vec<T>, f: F) -> TractResult<()>
where
    T: Send,
    Sc: Default,
    F: Fn(&mut Sc, T) -> TractResult<()> + Sync + Send,
{
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        use tract_linalg::multithread::{Executor, current_tract_executor};
        let parallel = |items: Vec<T>| items.into_par_iter().try_for_each_init(Sc::default, &f);
        match current_tract_executor() {
            Executor::MultiThread(pool) => return pool.install(|| parallel(items)),
            Executor::RayonGlobal => return parallel(items),
            Executor::SingleThread => {}
        }
    }
    let mut scratch = Sc::default();
    items.into_iter().try_for_each(|item| f(&mut scratch, item))
}

/// How many workers [`for_each`] runs on.
pub(crate) fn workers() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use tract_linalg::multithread::{Executor, current_tract_executor};
        match current_tract_executor() {
            Executor::MultiThread(pool) => return pool.current_num_threads(),
            Executor::RayonGlobal => return rayon::current_num_threads(),
            Executor::SingleThread => {}
        }
    }
    1
}

/// Applies `patch_for` to every node running an `O`, in evaluation order,
/// and returns how many it replaced.
pub(crate) fn rewrite_all<O: Op>(
    model: &mut TypedModel,
    patch_for: impl Fn(&TypedModel, usize) -> TractResult<Option<TypedModelPatch>>,
) -> TractResult<usize> {
    let candidates: Vec<usize> = model
        .eval_order()?
        .into_iter()
        .filter(|&n| model.node(n).op_is::<O>())
        .collect();
    let mut done = 0;
    for id in candidates {
        if let Some(patch) = patch_for(model, id)? {
            patch.apply(model)?;
            done += 1;
        }
    }
    if done > 0 {
        model.compact()?;
    }
    Ok(done)
}

/// A patch that feeds `node`'s first input to `op` and puts `op`'s output
/// where node `last` (the end of the fused chain) had its own.
pub(crate) fn replacement(
    model: &TypedModel,
    node: &TypedNode,
    op: impl TypedOp,
    last: usize,
) -> TractResult<TypedModelPatch> {
    let mut patch = TypedModelPatch::new(format!("edgeserve {}", node.name));
    let tap = patch.tap_model(model, node.inputs[0])?;
    let wire = patch.wire_node(&node.name, op, &[tap])?;
    patch.shunt_outside(model, OutletId::new(last, 0), wire[0])?;
    Ok(patch)
}
