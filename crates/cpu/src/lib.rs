//! The CPU backend: ONNX models run with `tract-onnx`, natively and in
//! WebAssembly (where tract uses wasm SIMD when built with `simd128`).
//!
//! Loading parses the ONNX protobuf, names any operator tract cannot run,
//! widens fp16 weights to f32 (tract 0.23 cannot mix them with f32 compute),
//! puts depthwise and 1×1 convolutions and the stem on edgeserve's own
//! kernels (`depthwise`, `pointwise`, `dense`) with the tensors between
//! them in blocks of eight channels (`blocked`), natively and in wasm,
//! declutters the graph, optimises once for batch 1, and keeps the plan.
//! Other batch sizes get plans of their own on first use, a few of them
//! kept ([`CpuOptions::batch_plans`]); the rest share one plan optimised
//! with a free batch dimension.

mod blocked;
mod dense;
mod depthwise;
#[cfg(not(target_arch = "wasm32"))]
mod expand;
mod fused;
mod gemv;
mod pointwise;
mod recycle;
#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
mod team;
mod tract_workarounds;
mod typing;
mod weights;

use edgeserve_engine::{
    BackendKind, BoxFuture, Engine, EngineError, ModelSignature, NamedTensors, TensorSpec,
};
use edgeserve_protocol::{DataType, Tensor, TensorData};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::{
    Datum, DatumType, Framework, IntoRunnable, TDim, TValue, TVec, TractResult, TypedFact, TypedModel,
    TypedRunnableModel,
};
use tract_onnx::tract_hir::internal::DimLike;

/// The data layout convolutions run in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConvLayout {
    /// Depthwise and 1×1 convolutions on edgeserve's own kernels, as in
    /// [`ConvLayout::AsModel`], plus a network's stem, with the tensors
    /// between them in blocks of eight channels (NCHW8c) where the CPU has
    /// AVX2 and FMA (or in wasm, with SIMD128) and the channel counts allow;
    /// elsewhere the same kernels in NCHW. The default, chosen by measurement (`benches/README.md`):
    /// 10.5–10.9 ms for EfficientNet-Lite0 on one thread where `AsModel`
    /// takes 17.5 ms and onnxruntime 9.4–9.5 ms.
    #[default]
    Blocked,
    /// As the model has it (NCHW for ONNX), with depthwise and 1×1
    /// convolutions on edgeserve's own kernels (bias and clamp fused, widest
    /// SIMD the CPU has) and the rest on tract.
    AsModel,
    /// Channels last (NHWC), through tract's `conv_nhwc` transform, with
    /// every convolution on tract's kernels. Kept for comparison.
    ChannelsLast,
}

/// Options of the CPU backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuOptions {
    /// Threads one inference is split across, natively (`None` or
    /// `Some(1)`: one, and calls from several threads run side by side;
    /// in wasm the threaded build's host starts the pool). The pool is
    /// process-wide: the first engine loaded with more than one thread sets
    /// it, and later values are ignored. On it, inferences take turns.
    pub threads: Option<usize>,
    /// The layout convolutions run in.
    pub layout: ConvLayout,
    /// How many batch sizes over 1 get a plan made for their size (the
    /// most recently used are kept); other sizes share one plan with the
    /// batch left free. `None`: [`DEFAULT_BATCH_PLANS`]. Each plan holds
    /// its own packed weights (18.5 MB for EfficientNet-Lite0), so this
    /// bounds what a caller's choice of batch sizes can make the engine
    /// allocate.
    pub batch_plans: Option<usize>,
    /// Natively, whether the pool's threads (see `threads`) are each bound
    /// to a CPU of their own, which needs no more threads than the CPUs
    /// this process may run on (its affinity mask): with more, they are
    /// left free whatever this says. `None`: bound where they fit.
    /// `Some(false)`: free, for a host whose CPUs other busy processes
    /// share. Unbound, after the pool had idled for 30 ms Linux often
    /// queued a woken thread behind a busy one on the same CPU instead of
    /// the idle other (here, a 2-vCPU VM), and the inference took twice as
    /// long: Lite0 on 2 threads, median 12.5 ms against 6.7-8.1 ms bound
    /// (6.3 ms either way with no pause). Set by the first engine that
    /// starts the pool, as `threads` is.
    pub pin_threads: Option<bool>,
}

/// Batch sizes over 1 planned for their size when [`CpuOptions::batch_plans`]
/// is not set: 4 natively, where a plan made for its size ran Lite0's
/// batches of 2 and 4 in 7–9 % less time than the free-batch plan (2
/// threads; `benches/README.md`), and request batching merges runs into a
/// few sizes (its `allowed_batch_sizes`); none in wasm, where an isolate
/// has 128 MB in all.
pub const DEFAULT_BATCH_PLANS: usize = if cfg!(target_arch = "wasm32") { 0 } else { 4 };

/// A model loaded on the CPU.
pub struct CpuEngine {
    signature: ModelSignature,
    /// The plan for batch 1, or for the model's fixed input shape.
    single: Arc<TypedRunnableModel>,
    layout: ConvLayout,
    /// `None` for a model whose batch is fixed (`single` runs it).
    batch_plans: Option<Mutex<BatchPlans>>,
}

/// Whether [`CpuEngine::load_beside`] loads on another thread when called
/// from this one.
pub fn loads_beside() -> bool {
    #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
    return pool_beside().is_some();
    #[cfg(not(any(not(target_arch = "wasm32"), target_feature = "atomics")))]
    false
}

/// The pool, where this thread is its first and it has others: the
/// threaded wasm build's caller (`edgeserve_wasm::threads`).
#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
fn pool_beside() -> Option<Arc<rayon::ThreadPool>> {
    use tract_linalg::multithread::{Executor, current_tract_executor};
    match current_tract_executor() {
        Executor::MultiThread(pool)
            if pool.current_num_threads() > 1 && pool.current_thread_index() == Some(0) =>
        {
            Some(pool)
        }
        _ => None,
    }
}

/// A load under way on another of the pool's threads
/// ([`CpuEngine::load_beside`]): a future of the engine.
///
/// Awaited, not waited for: the caller's event loop stays free, and in
/// the threaded wasm build a caller blocked on a channel instead never saw
/// the load begin (Node: the caller spun in the channel's wait at 100 % of
/// a core while the other thread slept).
pub struct PendingLoad {
    bytes_len: usize,
    slot: Arc<Mutex<LoadSlot>>,
}

impl std::fmt::Debug for PendingLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLoad")
            .field("bytes_len", &self.bytes_len)
            .finish_non_exhaustive()
    }
}

/// What the loading thread leaves for the [`PendingLoad`].
#[derive(Default)]
struct LoadSlot {
    loaded: Option<Result<CpuEngine, EngineError>>,
    waker: Option<std::task::Waker>,
}

impl PendingLoad {
    /// The size of the model being loaded, in bytes.
    pub fn bytes_len(&self) -> usize {
        self.bytes_len
    }
}

impl std::future::Future for PendingLoad {
    type Output = Result<CpuEngine, EngineError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // Poisoned only by a panic while the lock was held, which neither
        // side can have (they only move values in and out).
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slot.loaded.take() {
            Some(loaded) => std::task::Poll::Ready(loaded),
            None => {
                slot.waker = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }
}

/// The plans for batch sizes over 1 of a model whose batch is free.
struct BatchPlans {
    /// The simplified model every plan is optimised from.
    model: TypedModel,
    /// Plans made for one batch size each, the most recently used last; at
    /// most `capacity`.
    sized: Vec<(usize, Arc<TypedRunnableModel>)>,
    capacity: usize,
    /// The plan with the batch left free, for the sizes beyond `capacity`
    /// (and any whose own plan failed): built on first use; its error once
    /// its planning failed.
    free: Option<Result<Arc<TypedRunnableModel>, String>>,
    /// The classifier heads' weights placed by the first plan, shared by
    /// the others.
    heads: Arc<weights::Heads>,
    /// Sizes whose own plan failed, the most recent last, at most
    /// `capacity`: they go straight to the free plan. Planning optimises the
    /// whole graph (tens to hundreds of milliseconds for a CNN), which a
    /// client sending such a size would otherwise cost every request.
    failed: Vec<usize>,
}

impl BatchPlans {
    fn new(model: TypedModel, capacity: usize, heads: Arc<weights::Heads>) -> BatchPlans {
        BatchPlans {
            model,
            sized: Vec::new(),
            capacity,
            free: None,
            heads,
            failed: Vec::new(),
        }
    }

    /// The plan for `batch`: its own (kept, evicting the least recently
    /// used), else the free one.
    fn get(&mut self, batch: usize, layout: ConvLayout) -> Result<Arc<TypedRunnableModel>, String> {
        let heads = self.heads.clone();
        self.get_planned(batch, |model, size| match size {
            Some(size) => with_batch(model, size).and_then(|m| optimise(m, layout, &heads)),
            None => optimise(model.clone(), layout, &heads),
        })
    }

    /// [`BatchPlans::get`] with `plan` making the plan for a size (or, for
    /// `None`, the free one).
    fn get_planned(
        &mut self,
        batch: usize,
        plan: impl Fn(&TypedModel, Option<usize>) -> TractResult<Arc<TypedRunnableModel>>,
    ) -> Result<Arc<TypedRunnableModel>, String> {
        if let Some(i) = self.sized.iter().position(|(b, _)| *b == batch) {
            let entry = self.sized.remove(i);
            let plan = entry.1.clone();
            self.sized.push(entry);
            return Ok(plan);
        }
        if self.capacity > 0 && !self.failed.contains(&batch) {
            match plan(&self.model, Some(batch)) {
                Ok(plan) => {
                    if self.sized.len() >= self.capacity {
                        self.sized.remove(0);
                    }
                    self.sized.push((batch, plan.clone()));
                    return Ok(plan);
                }
                Err(_) => {
                    if self.failed.len() >= self.capacity {
                        self.failed.remove(0);
                    }
                    self.failed.push(batch);
                }
            }
        }
        self.free
            .get_or_insert_with(|| plan(&self.model, None).map_err(tract_error))
            .clone()
    }
}

fn run_error(reason: String) -> EngineError {
    EngineError::Run {
        backend: BackendKind::Cpu,
        reason,
    }
}

fn tract_error(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

fn invalid(context: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidModel(format!("{context}: {}", tract_error(e)))
}

fn dtype_of(dt: DatumType) -> Option<DataType> {
    Some(match dt {
        DatumType::F32 => DataType::Float,
        DatumType::F64 => DataType::Double,
        DatumType::F16 => DataType::Half,
        DatumType::I8 => DataType::Int8,
        DatumType::I16 => DataType::Int16,
        DatumType::I32 => DataType::Int32,
        DatumType::I64 => DataType::Int64,
        DatumType::U8 => DataType::Uint8,
        DatumType::U16 => DataType::Uint16,
        DatumType::U32 => DataType::Uint32,
        DatumType::U64 => DataType::Uint64,
        DatumType::Bool => DataType::Bool,
        _ => return None,
    })
}

fn spec(name: String, fact: &TypedFact) -> Result<TensorSpec, EngineError> {
    let dtype = dtype_of(fact.datum_type).ok_or_else(|| {
        EngineError::InvalidModel(format!(
            "tensor {name:?} has type {:?}, which edgeserve cannot carry",
            fact.datum_type
        ))
    })?;
    let shape = fact.shape.iter().map(|d: &TDim| d.to_usize().ok()).collect();
    Ok(TensorSpec {
        name,
        dtype,
        shape,
        unknown_rank: false,
    })
}

fn signature_of(model: &TypedModel) -> Result<ModelSignature, EngineError> {
    let name = |o: &tract_onnx::prelude::OutletId| {
        model
            .outlet_label(*o)
            .map(str::to_owned)
            .unwrap_or_else(|| model.node(o.node).name.clone())
    };
    let inputs = model
        .input_outlets()
        .map_err(|e| invalid("reading inputs", e))?
        .iter()
        .map(|o| {
            spec(
                model.node(o.node).name.clone(),
                model.outlet_fact(*o).map_err(|e| invalid("input", e))?,
            )
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let outputs = model
        .output_outlets()
        .map_err(|e| invalid("reading outputs", e))?
        .iter()
        .map(|o| spec(name(o), model.outlet_fact(*o).map_err(|e| invalid("output", e))?))
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(ModelSignature { inputs, outputs })
}

/// The model with the first dimension of every input whose first dimension
/// is free fixed to `batch`, simplified again for that size.
fn with_batch(model: &TypedModel, batch: usize) -> TractResult<TypedModel> {
    let mut subs = HashMap::new();
    for ix in 0..model.inputs.len() {
        if let Some(TDim::Sym(s)) = model.input_fact(ix)?.shape.iter().next() {
            subs.insert(s.clone(), TDim::from(batch));
        }
    }
    model.set_symbols(&subs)?.into_decluttered()
}

/// edgeserve's kernels in place of the convolutions they take, with the
/// blocked layout between them ([`ConvLayout::Blocked`]). Done before
/// tract's simplification, which in wasm moves most convolutions
/// channels-last, out of the kernels' reach (its pass order differs there),
/// and which has less to do once they are in: the wasm load took 520–555
/// ms instead of 890–905 (Node, Lite0). Constants are propagated first, so
/// that weights and biases are known.
fn put_blocked_kernels(typed: &mut TypedModel) -> TractResult<()> {
    tract_onnx::tract_core::optim::Optimizer::prop_consts().optimize(typed)?;
    dense::rewrite(typed)?;
    // 1×1 first: a one-channel 1×1 convolution is depthwise too.
    pointwise::rewrite(typed)?;
    depthwise::rewrite(typed)?;
    *typed = blocked::apply(std::mem::take(typed))?;
    pointwise::fuse_residuals(typed)?;
    #[cfg(not(target_arch = "wasm32"))]
    expand::fuse(typed)?;
    pointwise::pack(typed)?;
    pointwise::place_weights(typed)
}

/// Optimises a simplified model into a runnable plan.
fn optimise(
    mut typed: TypedModel,
    layout: ConvLayout,
    heads: &weights::Heads,
) -> TractResult<Arc<TypedRunnableModel>> {
    // `AsModel`: edgeserve's NCHW kernels natively only. In wasm32 tract
    // lays most convolutions out channels-last here (3 of 48 were left for
    // the kernels), and measured in Chromium on Lite0 its own wasm kernels
    // are as fast or faster: 37.8–38.5 ms without ours, 38.8–43.2 ms with
    // those 3, 45.6–47.6 ms with all 48 rewritten before its layout pass.
    // (`Blocked` put its kernels in at load, before that pass.)
    if layout == ConvLayout::AsModel && cfg!(not(target_arch = "wasm32")) {
        depthwise::rewrite(&mut typed)?;
        pointwise::rewrite(&mut typed)?;
        pointwise::pack(&mut typed)?;
    }
    if layout != ConvLayout::ChannelsLast {
        gemv::rewrite(&mut typed, heads)?;
    }
    if layout == ConvLayout::ChannelsLast
        && let Some(t) = tract_onnx::tract_core::transform::get_transform("conv_nhwc")?
    {
        t.transform(&mut typed)?;
    }
    typed.into_optimized()?.into_runnable()
}

impl CpuEngine {
    /// Loads an ONNX model from its bytes.
    pub fn load(bytes: &[u8], options: &CpuOptions) -> Result<CpuEngine, EngineError> {
        CpuEngine::from_proto(edgeserve_onnx::decode(bytes)?, options)
    }

    /// Loads an ONNX model from its bytes like [`CpuEngine::load`], freeing
    /// them as soon as they are decoded: one copy of the weights fewer at
    /// the peak of loading, which is what a memory-bound host (an edge
    /// isolate, a phone's tab) runs out of.
    pub fn load_owned(bytes: Vec<u8>, options: &CpuOptions) -> Result<CpuEngine, EngineError> {
        CpuEngine::from_proto(edgeserve_onnx::decode_owned(bytes)?, options)
    }

    /// Starts [`CpuEngine::load_owned`] on another thread of the pool the
    /// backend runs on, for a caller with other work meanwhile: in the
    /// threaded wasm build, the browser's SHA-256 of the same bytes, which
    /// WebCrypto computes on the calling thread (Lite2: a 32–46 ms hash,
    /// then a 51–88 ms load, one after the other). Gives the bytes back
    /// where there is no such thread (one thread, no pool yet, or a caller
    /// not on the pool: natively the pool's threads are all its own).
    pub fn load_beside(bytes: Vec<u8>, options: &CpuOptions) -> Result<PendingLoad, Vec<u8>> {
        #[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
        {
            if let Some(pool) = pool_beside() {
                let bytes_len = bytes.len();
                let options = options.clone();
                let slot = Arc::new(Mutex::new(LoadSlot::default()));
                let done = Arc::clone(&slot);
                // Thread 0 (the caller) takes no jobs outside an inference,
                // so another thread runs this. Dropped meanwhile (the
                // caller gave up), the engine goes with the slot.
                pool.spawn(move || {
                    // Unwound natively (rayon aborts the process on a
                    // panic in a spawned job); in wasm a panic traps.
                    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        CpuEngine::load_owned(bytes, &options)
                    }))
                    .unwrap_or_else(|_| Err(EngineError::InvalidModel("loading the model panicked".into())));
                    let waker = {
                        let mut slot = done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        slot.loaded = Some(loaded);
                        slot.waker.take()
                    };
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                });
                return Ok(PendingLoad { bytes_len, slot });
            }
        }
        let _ = options;
        Err(bytes)
    }

    fn from_proto(mut proto: ModelProto, options: &CpuOptions) -> Result<CpuEngine, EngineError> {
        // tract registers its kernels from static constructors.
        edgeserve_ctors::ensure();
        tract_workarounds::before_first_load();
        set_threads(options.threads, options.pin_threads);
        let onnx = tract_onnx::onnx();
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| EngineError::InvalidModel("the ONNX model has no graph".into()))?;
        if graph.node.is_empty() || graph.output.is_empty() {
            return Err(EngineError::InvalidModel(format!(
                "the ONNX graph has {} nodes and {} outputs; a model needs at least one of each",
                graph.node.len(),
                graph.output.len()
            )));
        }
        if let Some(node) = graph
            .node
            .iter()
            .find(|n| !onnx.op_register.0.contains_key(&n.op_type))
        {
            return Err(EngineError::UnsupportedOp {
                op: node.op_type.clone(),
                detail: "no such operator in tract-onnx".into(),
                node: node.name.clone(),
                backend: BackendKind::Cpu,
            });
        }
        edgeserve_onnx::check_names(graph)?;
        edgeserve_onnx::normalize(&mut proto);
        let opset = edgeserve_onnx::default_opset(&proto);
        if let Some(graph) = proto.graph.as_mut() {
            tract_workarounds::apply(graph, opset);
        }
        let inference = onnx
            .model_for_proto_model(&proto)
            .map_err(|e| invalid("reading the ONNX graph", e))?;
        // Each stage holds the weights once more until the previous one is
        // gone: dropped as soon as the next exists, the peak stays at two
        // copies (an edge isolate has 128 MB in all; Lite0's weights are
        // 18.5 MB).
        drop(proto);
        let mut typed = typing::into_typed(inference).map_err(|e| invalid("analysing the graph", e))?;
        if options.layout == ConvLayout::Blocked {
            put_blocked_kernels(&mut typed).map_err(|e| invalid("placing edgeserve's kernels", e))?;
        }
        let typed = typed
            .into_decluttered()
            .map_err(|e| invalid("simplifying the graph", e))?;
        let signature = signature_of(&typed)?;
        let free_batch = signature
            .inputs
            .first()
            .and_then(|i| i.shape.first())
            .is_some_and(Option::is_none);
        // A plan with the batch left free runs every size, but measured in
        // wasm on Lite0 it takes 390–460 ms a run against 100 ms for one
        // made for batch 1 (tract picks its kernels by shape), so batch 1
        // gets its own and the graph is kept for the rest.
        let optimising = |e| invalid("optimising the graph", e);
        let heads = Arc::new(weights::Heads::default());
        let (single, batch_plans) = if free_batch {
            let single = with_batch(&typed, 1)
                .and_then(|m| optimise(m, options.layout, &heads))
                .map_err(optimising)?;
            let capacity = options.batch_plans.unwrap_or(DEFAULT_BATCH_PLANS);
            let plans = BatchPlans::new(typed, capacity, heads);
            (single, Some(Mutex::new(plans)))
        } else {
            (optimise(typed, options.layout, &heads).map_err(optimising)?, None)
        };
        Ok(CpuEngine {
            signature,
            single,
            layout: options.layout,
            batch_plans,
        })
    }

    fn plan_for(&self, batch: usize) -> Result<Arc<TypedRunnableModel>, EngineError> {
        let Some(plans) = self.batch_plans.as_ref().filter(|_| batch != 1) else {
            return Ok(self.single.clone());
        };
        // A poisoned lock means a panic while planning: batches over 1
        // fail, the engine goes on serving batch 1.
        plans
            .lock()
            .map_err(|_| run_error("planning for another batch size failed earlier".into()))?
            .get(batch, self.layout)
            .map_err(run_error)
    }

    /// The plan for these inputs' batch size and the inputs in model order,
    /// as tract values.
    fn prepare(
        &self,
        mut inputs: NamedTensors,
    ) -> Result<(Arc<TypedRunnableModel>, TVec<TValue>), EngineError> {
        let batch = self
            .signature
            .inputs
            .first()
            .and_then(|s| inputs.get(&s.name))
            .and_then(Tensor::batch_size)
            .unwrap_or(1);
        let plan = self.plan_for(batch)?;
        let mut values: TVec<TValue> = TVec::new();
        for s in &self.signature.inputs {
            let t = inputs
                .remove(&s.name)
                .ok_or_else(|| run_error(format!("input {} is missing", s.name)))?;
            values.push(to_tract(t).map_err(run_error)?.into());
        }
        Ok((plan, values))
    }

    /// Runs synchronously (the CPU backend has nothing to wait for). The
    /// current [`cancel`](edgeserve_engine::cancel) scope is checked before
    /// each operator, so a cancelled request stops within one operator's
    /// time (a few milliseconds for the models served) instead of running
    /// to its end.
    pub fn run_blocking(&self, inputs: NamedTensors) -> Result<NamedTensors, EngineError> {
        fused::on_pool(|| self.run_here(inputs))
    }

    /// [`CpuEngine::run_blocking`] on the calling thread.
    fn run_here(&self, inputs: NamedTensors) -> Result<NamedTensors, EngineError> {
        use edgeserve_engine::cancel;
        cancel::checkpoint()?;
        let (plan, values) = self.prepare(inputs)?;
        let mut state = plan.spawn().map_err(|e| run_error(tract_error(e)))?;
        let outputs = state
            .run_plan_with_eval(values, |ctx, op_state, node, input| {
                if cancel::is_cancelled() {
                    return Err(tract_onnx::prelude::TractError::msg("cancelled"));
                }
                tract_onnx::tract_core::plan::eval(ctx, op_state, node, input)
            })
            .map_err(|e| match cancel::checkpoint() {
                Err(cancelled) => cancelled,
                Ok(()) => run_error(tract_error(e)),
            })?;
        self.signature
            .outputs
            .iter()
            .zip(outputs)
            .map(|(s, v)| Ok((s.name.clone(), from_tract(&v).map_err(run_error)?)))
            .collect()
    }
}

/// Time spent in one kind of operator during a profiled run.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// tract's name for the (optimised) operator, e.g. `Conv` or `OptMatMul`.
    pub op: String,
    /// How many nodes of the plan run it.
    pub nodes: usize,
    /// Total time in microseconds.
    pub micros: f64,
}

impl CpuEngine {
    /// Runs once and reports where the time went, per operator kind,
    /// slowest first (for finding what to optimise).
    pub fn profile(&self, inputs: NamedTensors) -> Result<Vec<OpTime>, EngineError> {
        // On the pool, as `run_blocking` runs.
        fused::on_pool(|| self.profile_here(inputs))
    }

    fn profile_here(&self, inputs: NamedTensors) -> Result<Vec<OpTime>, EngineError> {
        use std::collections::HashMap;
        use web_time::Instant;
        let (plan, values) = self.prepare(inputs)?;
        let mut state = plan.spawn().map_err(|e| run_error(tract_error(e)))?;
        let mut times: HashMap<String, (usize, f64)> = HashMap::new();
        state
            .run_plan_with_eval(values, |ctx, op_state, node, input| {
                let t = Instant::now();
                let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, input);
                let e = times.entry(node.op().name().to_string()).or_default();
                e.0 += 1;
                e.1 += t.elapsed().as_secs_f64() * 1e6;
                out
            })
            .map_err(|e| run_error(tract_error(e)))?;
        let mut out: Vec<OpTime> = times
            .into_iter()
            .map(|(op, (nodes, micros))| OpTime { op, nodes, micros })
            .collect();
        out.sort_by(|a, b| b.micros.total_cmp(&a.micros));
        Ok(out)
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn set_threads(threads: Option<usize>, pin: Option<bool>) {
    use std::sync::{Arc, OnceLock};
    use tract_linalg::multithread::{Executor, set_default_executor};
    static DONE: OnceLock<()> = OnceLock::new();
    let Some(n) = threads.filter(|n| *n > 1) else {
        return;
    };
    DONE.get_or_init(|| {
        // The CPUs this process may use (its affinity mask), one per thread.
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let pin = n <= cores.len() && pin.unwrap_or(true);
        let mut builder = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("edgeserve-cpu-{i}"));
        if pin {
            builder = builder.start_handler(move |i| {
                // Best effort: unbound, the thread still runs, only slower
                // after idle spells.
                if let Some(core) = cores.get(i) {
                    core_affinity::set_for_current(*core);
                }
            });
        }
        match builder.build() {
            Ok(pool) => set_default_executor(Executor::MultiThread(Arc::new(pool))),
            Err(_) => set_default_executor(Executor::multithread(n)),
        }
    });
}

// In wasm only the host can start threads (Web Workers, or Node's
// worker_threads), so the pool comes from it: [`use_thread_pool`].
#[cfg(target_arch = "wasm32")]
fn set_threads(_: Option<usize>, _: Option<bool>) {}

/// Makes `pool` the one the CPU backend runs on: tract's matrix products and
/// edgeserve's own kernels. For the threaded wasm build (`+atomics`), whose
/// host starts the pool's threads itself; natively, `CpuOptions::threads`
/// builds the pool. Engines already loaded use it from their next run.
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub fn use_thread_pool(pool: Arc<rayon::ThreadPool>) {
    tract_linalg::multithread::set_default_executor(tract_linalg::multithread::Executor::MultiThread(pool));
}

/// Where in the threaded wasm build's shared memory the flag lies that a
/// pool thread's host sets (to a non-zero `u32`) when the thread traps: the
/// inference's own thread then stops waiting for that thread's work, and
/// traps too, instead of spinning for ever. Its host calls this while the
/// thread is still alive, so as not to call into the instance after it
/// trapped.
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub fn lost_thread_flag() -> usize {
    team::lost_flag_address()
}

/// A test hook, in debug builds only: the next item of a parallel operator
/// that a pool thread other than the inference's own takes panics there, as
/// a bug in a kernel would. Natively the inference fails with a typed
/// error; in the threaded wasm build the thread traps.
#[cfg(all(
    debug_assertions,
    any(not(target_arch = "wasm32"), target_feature = "atomics")
))]
#[doc(hidden)]
pub fn inject_pool_thread_fault() {
    team::inject_helper_fault();
}

/// How many threads the CPU backend runs a model on now: the pool's size, or
/// 1 without one.
pub fn threads() -> usize {
    fused::workers()
}

fn to_tract(t: Tensor) -> Result<tract_onnx::prelude::Tensor, String> {
    use tract_onnx::prelude::Tensor as T;
    let (shape, data) = t.into_parts();
    let r = match &data {
        TensorData::Float(v) => T::from_shape(&shape, v),
        TensorData::Double(v) => T::from_shape(&shape, v),
        TensorData::Int8(v) => T::from_shape(&shape, v),
        TensorData::Int16(v) => T::from_shape(&shape, v),
        TensorData::Int32(v) => T::from_shape(&shape, v),
        TensorData::Int64(v) => T::from_shape(&shape, v),
        TensorData::Uint8(v) => T::from_shape(&shape, v),
        TensorData::Uint16(v) => T::from_shape(&shape, v),
        TensorData::Uint32(v) => T::from_shape(&shape, v),
        TensorData::Uint64(v) => T::from_shape(&shape, v),
        TensorData::Bool(v) => T::from_shape(&shape, v),
        TensorData::Half(v) => T::from_shape(&shape, v),
        other => return Err(format!("the CPU backend cannot take {} tensors", other.dtype())),
    };
    r.map_err(tract_error)
}

fn values<D: Datum + Copy>(t: &tract_onnx::prelude::Tensor) -> Result<Vec<D>, String> {
    Ok(t.to_plain_array_view::<D>()
        .map_err(tract_error)?
        .iter()
        .copied()
        .collect())
}

fn from_tract(t: &tract_onnx::prelude::Tensor) -> Result<Tensor, String> {
    let shape = t.shape().to_vec();
    let data = match t.datum_type() {
        DatumType::F32 => TensorData::Float(values(t)?),
        DatumType::F64 => TensorData::Double(values(t)?),
        DatumType::F16 => TensorData::Half(values(t)?),
        DatumType::I8 => TensorData::Int8(values(t)?),
        DatumType::I16 => TensorData::Int16(values(t)?),
        DatumType::I32 => TensorData::Int32(values(t)?),
        DatumType::I64 => TensorData::Int64(values(t)?),
        DatumType::U8 => TensorData::Uint8(values(t)?),
        DatumType::U16 => TensorData::Uint16(values(t)?),
        DatumType::U32 => TensorData::Uint32(values(t)?),
        DatumType::U64 => TensorData::Uint64(values(t)?),
        DatumType::Bool => TensorData::Bool(values(t)?),
        other => {
            return Err(format!(
                "the model produced a {other:?} tensor, which edgeserve cannot carry"
            ));
        }
    };
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

impl Engine for CpuEngine {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn run(&self, inputs: NamedTensors) -> BoxFuture<'_, Result<NamedTensors, EngineError>> {
        let result = self.run_blocking(inputs);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use tract_onnx::tract_hir::internal::ensure;

    #[test]
    fn a_size_whose_plan_failed_goes_to_the_free_plan_without_planning_again() {
        let asked = RefCell::new(Vec::new());
        // Sizes from 3 up have no plan of their own.
        let plan = |_: &TypedModel, size: Option<usize>| {
            asked.borrow_mut().push(size);
            ensure!(size.is_none_or(|s| s < 3), "no plan for {size:?}");
            TypedModel::default().into_runnable()
        };
        let mut plans = BatchPlans::new(TypedModel::default(), 2, Default::default());
        let mut run = |batches: &[usize]| {
            asked.borrow_mut().clear();
            for &batch in batches {
                plans.get_planned(batch, plan).unwrap();
            }
            asked.borrow().clone()
        };
        // 3 fails once, then goes to the free plan (made once); 2 gets its
        // own plan, kept.
        assert_eq!(run(&[3, 3, 2, 3, 2]), [Some(3), None, Some(2)]);
        // At most `capacity` failed sizes are remembered: after 4 and 5,
        // 3 is planned again when it comes back.
        assert_eq!(run(&[4, 5, 4, 3]), [Some(4), Some(5), Some(3)]);
    }
}
