//! What edgeserve's own kernels share: the convolutions they are made from,
//! the clamp they fuse and finding it in the graph, their input checks,
//! and running independent pieces of work on tract's thread pool.

use tract_onnx::prelude::{
    Arc, DatumType, OutletId, TValue, Tensor, TractResult, TypedModel, TypedModelPatch, TypedNode, tvec,
};
use tract_onnx::tract_core::internal::{Op, TypedOp};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::{Max, Min};
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_hir::internal::{DimLike, bail, ensure};

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

/// The axes of `node` (as `"ab,cd->ef"`) when it is an f32 `EinSum` of two
/// inputs with no quantisation: what the 1×1 and matrix–vector kernels
/// take the place of.
pub(crate) fn f32_einsum_axes(node: &TypedNode) -> Option<String> {
    let einsum = node.op_as::<EinSum>()?;
    let plain = einsum.q_params.is_none() && einsum.operating_dt == DatumType::F32 && node.inputs.len() == 2;
    plain.then(|| einsum.axes.to_string())
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

/// Checks that `input` is `[N,] C, H, W` as `op` expects (`batched`: with
/// the `N`) and gives its batch size and values.
pub(crate) fn image_input<'a>(
    op: &str,
    input: Option<&'a TValue>,
    batched: bool,
    expected: [usize; 3],
) -> TractResult<(usize, &'a [f32])> {
    let Some(input) = input else {
        bail!("{op} takes one input")
    };
    let shape = input.shape();
    let [c, h, w] = expected;
    ensure!(
        shape.len() == 3 + usize::from(batched) && shape[shape.len() - 3..] == expected,
        "{op}: input shape {shape:?}, expected [{}{c}, {h}, {w}]",
        if batched { "N, " } else { "" },
    );
    let batch = if batched { shape[0] } else { 1 };
    Ok((batch, input.try_as_plain_ram()?.as_slice::<f32>()?))
}

/// Runs `f` on every item: on tract's thread pool when it has one
/// (natively with `CpuOptions::threads` > 1, or in the threaded wasm build
/// once its host started the pool), else in order. Each worker
/// keeps one `Sc` of scratch space across the items it takes.
pub(crate) fn for_each<T, Sc, F>(items: Vec<T>, f: F) -> TractResult<()>
where
    T: Send,
    Sc: Default,
    F: Fn(&mut Sc, T) -> TractResult<()> + Sync + Send,
{
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        use rayon::prelude::*;
        use tract_linalg::multithread::{Executor, current_tract_executor};
        let parallel = |items: Vec<T>| items.into_par_iter().try_for_each_init(Sc::default, &f);
        match current_tract_executor() {
            Executor::MultiThread(pool) => {
                if items.len() > 1
                    && let Some(team) = crate::team::Team::current()
                {
                    return on_team(&team, pool.current_num_threads(), items, f);
                }
                return pool.install(|| parallel(items));
            }
            Executor::RayonGlobal => return parallel(items),
            Executor::SingleThread => {}
        }
    }
    let mut scratch = Sc::default();
    items.into_iter().try_for_each(|item| f(&mut scratch, item))
}

/// [`for_each`] on the team of the inference running here: the items go
/// to whichever of the pool's threads claims them first, and this thread,
/// once none is left, spins until the last is done instead of sleeping.
#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
fn on_team<T, Sc, F>(
    team: &std::sync::Arc<crate::team::Team>,
    threads: usize,
    items: Vec<T>,
    f: F,
) -> TractResult<()>
where
    T: Send,
    Sc: Default,
    F: Fn(&mut Sc, T) -> TractResult<()> + Sync + Send,
{
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, PoisonError};
    team.keep_awake(threads);
    let len = items.len();
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let (next, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let failed: Mutex<Option<tract_onnx::prelude::TractError>> = Mutex::new(None);
    let fail = |e| {
        failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(e);
    };
    // A claimed item is always counted done, even when it fails or panics:
    // this thread waits for the count.
    let drain = || {
        let mut scratch = Sc::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= len {
                break;
            }
            let item = slots[i].lock().unwrap_or_else(PoisonError::into_inner).take();
            let go = failed.lock().unwrap_or_else(PoisonError::into_inner).is_none();
            if let Some(item) = item.filter(|_| go) {
                match catch_unwind(AssertUnwindSafe(|| {
                    #[cfg(debug_assertions)]
                    team.fault_here();
                    f(&mut scratch, item)
                })) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => fail(e),
                    Err(_) => fail(tract_onnx::prelude::TractError::msg(format!(
                        "a kernel panicked on item {i} of {len}"
                    ))),
                }
            }
            done.fetch_add(1, Ordering::Release);
        }
    };
    rayon::in_place_scope(|s| {
        for _ in 1..threads.min(len) {
            s.spawn(|_| drain());
        }
        drain();
        // Every item is claimed; those on other threads end soon. (A spawned
        // piece no thread took yet claims nothing: the scope runs it here.)
        loop {
            let finished = done.load(Ordering::Acquire);
            if finished >= len {
                break;
            }
            // A thread that died with an item claimed never counts it.
            crate::team::end_if_a_thread_died(finished, len);
            std::hint::spin_loop();
        }
    });
    match failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Runs `work` (a whole inference) on one of the pool's threads when there
/// is a pool: here when this thread is one of them, else on one, carrying
/// the caller's cancel scope over. There it runs with a
/// [`crate::team::Team`]: the pool's other threads wait for its kernels'
/// work spinning, not asleep.
///
/// Why: every parallel operator (ours through [`for_each`], tract's matrix
/// products) enters the pool with `install`. From a thread outside the pool
/// that is, per operator, a wake-up of a sleeping pool thread and then one
/// of the caller, both on the critical path, while the caller computes
/// nothing. In the threaded wasm build a wake-up is an `Atomics.wait`
/// round trip through the browser, and Lite0 has about a hundred such
/// operators. From a pool thread `install` runs inline: the thread that
/// reaches an operator starts on it at once, and the only wake-up left
/// (the other threads joining in) overlaps its work.
///
/// One inference at a time on the pool (natively, requests run side by
/// side with `CpuOptions::threads` > 1; `edgeserve serve` runs one thread
/// per request by default, with no pool): the others wait here, outside
/// it. Otherwise a pool thread waiting inside one of tract's parallel
/// operators took up another caller's whole inference from rayon's queue,
/// and tract's matrix product holds its thread-local scratch across that
/// wait: the second one on the thread panicked ("RefCell already
/// borrowed") and aborted the process (`tests/pool.rs`). Each inference
/// uses the whole pool, so the total work per second is the same.
pub(crate) fn on_pool<R, F>(work: F) -> R
where
    R: Send,
    F: FnOnce() -> R + Send,
{
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    {
        use tract_linalg::multithread::{Executor, current_tract_executor};
        if let Executor::MultiThread(pool) = current_tract_executor() {
            static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let threads = pool.current_num_threads();
            let team = move |work: F| {
                if threads > 1 && crate::team::Team::current().is_none() {
                    crate::team::Team::with(work)
                } else {
                    work()
                }
            };
            // Poisoned only by a panic in an inference, which says nothing
            // about the next one.
            let _turn = ONE_AT_A_TIME
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Already one of the pool's threads: the threaded wasm build's
            // caller is its pool's first (`edgeserve_wasm::threads`).
            if pool.current_thread_index().is_some() {
                return team(work);
            }
            let token = edgeserve_engine::cancel::current();
            return pool.install(move || match token {
                Some(token) => edgeserve_engine::cancel::scope(&token, || team(work)),
                None => team(work),
            });
        }
    }
    work()
}

/// How many workers [`for_each`] runs on.
pub(crate) fn workers() -> usize {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
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

/// A float convolution with constant weights and bias over an NCHW image of
/// concrete size: what edgeserve's convolution kernels are made from.
pub(crate) struct PlainConv {
    pub group: usize,
    pub cin: usize,
    pub cout: usize,
    /// Rank of the input: 3 (`C, H, W`) or 4 (`N, C, H, W`).
    pub rank: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    /// `[cout, cin / group, kh, kw]`: the model's own tensor, not a copy
    /// (see `blocked::interleave`); [`PlainConv::kernel`] gives its values.
    kernel: Arc<Tensor>,
    /// `[cout]` (a single bias value is repeated).
    pub bias: Vec<f32>,
}

impl PlainConv {
    /// The kernel's values, `[cout, cin / group, kh, kw]` flat.
    pub(crate) fn kernel(&self) -> TractResult<&[f32]> {
        self.kernel.try_as_plain_ram()?.as_slice::<f32>()
    }

    /// The kernel itself (shared with the model).
    pub(crate) fn kernel_tensor(&self) -> Arc<Tensor> {
        self.kernel.clone()
    }
}

/// `node` as a [`PlainConv`], if it is one.
pub(crate) fn plain_conv(model: &TypedModel, node: &TypedNode) -> TractResult<Option<PlainConv>> {
    let Some(conv) = node.op_as::<Conv>() else {
        return Ok(None);
    };
    let spec = &conv.pool_spec;
    let (cin, cout, group) = (spec.input_channels, spec.output_channels, conv.group);
    let plain = conv.q_params.is_none()
        && conv.kernel_fmt == KernelFormat::OIHW
        && group > 0
        && cin > 0
        && cout > 0
        && cin.is_multiple_of(group)
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
        || !(3..=4).contains(&rank)
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
    if c != cin || kernel.shape() != [cout, cin / group, kh, kw] || !(bias.len() == cout || bias.len() == 1) {
        return Ok(None);
    }
    let strides = spec.strides.clone().unwrap_or_else(|| tvec!(1, 1));
    let (sh, sw) = (strides[0], strides[1]);
    if sh == 0 || sw == 0 {
        return Ok(None);
    }
    let rows = spec.padding.compute_one(0, &in_h, kh, 1, sh);
    let cols = spec.padding.compute_one(1, &in_w, kw, 1, sw);
    // Kernels step through rows and planes of the input: none may be empty.
    if rows.convoluted == 0 || cols.convoluted == 0 || in_h == 0 || in_w == 0 {
        return Ok(None);
    }
    let b = bias.try_as_plain_ram()?.as_slice::<f32>()?;
    Ok(Some(PlainConv {
        group,
        cin,
        cout,
        rank,
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
        kernel,
        bias: if b.len() == cout {
            b.to_vec()
        } else {
            vec![b[0]; cout]
        },
    }))
}
