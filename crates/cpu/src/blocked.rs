//! A channel-blocked layout (NCHW8c) for the stretch of a network that runs
//! on edgeserve's own depthwise and 1×1 kernels.
//!
//! In NCHW a depthwise convolution vectorises along a row of one channel, so
//! its small late planes (14×14, 7×7) leave most of every vector empty and
//! spend as long preparing each plane as computing it; a 1×1 convolution has
//! to pack pixel panels and pad 49 pixels to 64. With eight channels of a
//! pixel side by side in memory, both vectorise across channels instead:
//! every vector is full whatever the image size, the depthwise taps read
//! whole vectors, and the 1×1 product broadcasts pixels against packed
//! weights with no packing of the activations. This is the layout
//! onnxruntime runs these models in on x86 (its "NCHWc").
//!
//! tract still sees `[N, C, H, W]`: a blocked tensor has the same shape and
//! length, only its order differs (`[N, C/8, H, W, 8]`). That is sound only
//! where every reader knows, so [`apply`] lets a tensor stay blocked only
//! between edgeserve's kernels and the residual `Add`s joining two of them
//! (element-wise on equal shapes, so the order does not matter), lets a
//! global average pool's sum read one as it is ([`SpatialSum`]), and
//! converts at every other edge. Eight lanes, not AVX-512's sixteen: the
//! channel counts of EfficientNet (24, 40, 88, 120, …) are multiples of 8,
//! not all of 16, and on AMD's Zen 4 a 512-bit multiply-add costs two
//! 256-bit ones anyway (measured there: the same kernels compiled with
//! AVX-512's 32 registers, or a 1×1 block of 6 pixels × 32 channels that
//! needs them, ran no faster). In wasm a block is two 128-bit vectors, and
//! the same kernels run there ([`Lanes8`]).

use crate::dense::DenseConv;
use crate::depthwise::DepthwiseConv;
use crate::pointwise::Pointwise;
use std::collections::{HashMap, HashSet};
use tract_onnx::prelude::{
    DatumType, IntoTValue, OutletId, SpecialOps, TValue, TVec, Tensor, TractResult, TypedFact, TypedModel,
    TypedNode, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::model::translator::Translate;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::Add;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{DimLike, bail, ensure, format_err};

/// Channels stored side by side.
pub(crate) const BLOCK: usize = 8;

/// One block of eight channels as SIMD values: one AVX2 vector natively,
/// two 128-bit vectors in wasm. The kernels are written once against it.
pub(crate) trait Lanes8: Copy {
    /// Eight `f32` lanes.
    type B: Copy;
    fn splat(self, v: f32) -> Self::B;
    fn load(self, v: &[f32; BLOCK]) -> Self::B;
    fn store(self, v: Self::B, out: &mut [f32; BLOCK]);
    /// `a + b`.
    fn add(self, a: Self::B, b: Self::B) -> Self::B;
    /// `a · b + c`.
    fn mul_add(self, a: Self::B, b: Self::B, c: Self::B) -> Self::B;
    /// `min(max(v, lo), hi)`.
    fn clamp(self, v: Self::B, lo: Self::B, hi: Self::B) -> Self::B;
    /// Asks for the cache line that holds `v` to be brought into L2 ahead
    /// of its use; a hint, which does nothing where there is no such
    /// instruction (wasm).
    #[inline(always)]
    fn prefetch(self, v: &[f32; BLOCK]) {
        let _ = v;
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes8 for pulp::x86::V3 {
    type B = pulp::f32x8;

    /// `prefetcht1`: into L2, not L1, where the weights in use sit
    /// (`crate::pointwise::Products::blocks`).
    #[inline(always)]
    fn prefetch(self, v: &[f32; BLOCK]) {
        use core::arch::x86_64::_MM_HINT_T1;
        self.sse._mm_prefetch::<_MM_HINT_T1>(v.as_ptr().cast());
    }

    #[inline(always)]
    fn splat(self, v: f32) -> pulp::f32x8 {
        pulp::Simd::splat_f32s(self, v)
    }

    #[inline(always)]
    fn load(self, v: &[f32; BLOCK]) -> pulp::f32x8 {
        pulp::bytemuck::cast(*v)
    }

    #[inline(always)]
    fn store(self, v: pulp::f32x8, out: &mut [f32; BLOCK]) {
        *out = pulp::bytemuck::cast(v);
    }

    #[inline(always)]
    fn add(self, a: pulp::f32x8, b: pulp::f32x8) -> pulp::f32x8 {
        pulp::Simd::add_f32s(self, a, b)
    }

    #[inline(always)]
    fn mul_add(self, a: pulp::f32x8, b: pulp::f32x8, c: pulp::f32x8) -> pulp::f32x8 {
        pulp::Simd::mul_add_e_f32s(self, a, b, c)
    }

    #[inline(always)]
    fn clamp(self, v: pulp::f32x8, lo: pulp::f32x8, hi: pulp::f32x8) -> pulp::f32x8 {
        pulp::Simd::min_f32s(self, pulp::Simd::max_f32s(self, v, lo), hi)
    }
}

// Straight to `core::arch` rather than through pulp's `Simd` methods, for
// two instructions pulp does not pick: `f32x4.relaxed_madd` (one fused
// multiply-add where the engine has FMA) in the relaxed-SIMD build, and the
// pseudo-min/max `f32x4.pmin`/`pmax`, one `minps`/`maxps` each on x86, where
// the IEEE `f32x4.min`/`max` pulp uses cost V8 a NaN-fixing sequence.
#[cfg(target_arch = "wasm32")]
impl Lanes8 for pulp::wasm::Simd128 {
    type B = [core::arch::wasm32::v128; 2];

    #[inline(always)]
    fn splat(self, v: f32) -> Self::B {
        let v = core::arch::wasm32::f32x4_splat(v);
        [v, v]
    }

    #[inline(always)]
    fn load(self, v: &[f32; BLOCK]) -> Self::B {
        pulp::bytemuck::cast(*v)
    }

    #[inline(always)]
    fn store(self, v: Self::B, out: &mut [f32; BLOCK]) {
        *out = pulp::bytemuck::cast(v);
    }

    #[inline(always)]
    fn add(self, a: Self::B, b: Self::B) -> Self::B {
        use core::arch::wasm32::f32x4_add;
        [f32x4_add(a[0], b[0]), f32x4_add(a[1], b[1])]
    }

    #[inline(always)]
    fn mul_add(self, a: Self::B, b: Self::B, c: Self::B) -> Self::B {
        #[cfg(target_feature = "relaxed-simd")]
        let madd = |a, b, c| core::arch::wasm32::f32x4_relaxed_madd(a, b, c);
        #[cfg(not(target_feature = "relaxed-simd"))]
        let madd = |a, b, c| core::arch::wasm32::f32x4_add(core::arch::wasm32::f32x4_mul(a, b), c);
        [madd(a[0], b[0], c[0]), madd(a[1], b[1], c[1])]
    }

    #[inline(always)]
    fn clamp(self, v: Self::B, lo: Self::B, hi: Self::B) -> Self::B {
        // pmax(v, lo) is `v < lo ? lo : v` and pmin(x, hi) `hi < x ? hi : x`:
        // a NaN comes through as NaN, as with min/max.
        use core::arch::wasm32::{f32x4_pmax, f32x4_pmin};
        [
            f32x4_pmin(f32x4_pmax(v[0], lo[0]), hi[0]),
            f32x4_pmin(f32x4_pmax(v[1], lo[1]), hi[1]),
        ]
    }
}

/// A kernel written against [`Lanes8`].
pub(crate) trait BlockOp {
    type Output;
    fn run<L: Lanes8>(self, simd: L) -> Self::Output;
}

/// Calls `O` with the SIMD it was dispatched for, inside pulp's function
/// compiled for it.
struct Dispatch<O, L>(O, L);

impl<O: BlockOp, L: Lanes8> pulp::WithSimd for Dispatch<O, L> {
    type Output = O::Output;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> O::Output {
        self.0.run(self.1)
    }
}

/// Runs `op` with AVX2 and FMA natively or SIMD128 in wasm, or gives `None`
/// where the CPU or the build has neither.
pub(crate) fn vectorize<O: BlockOp>(op: O) -> Option<O::Output> {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return Some(pulp::Simd::vectorize(simd, Dispatch(op, simd)));
    }
    #[cfg(target_arch = "wasm32")]
    if let Some(simd) = pulp::wasm::Simd128::try_new() {
        return Some(pulp::Simd::vectorize(simd, Dispatch(op, simd)));
    }
    drop(op);
    None
}

/// [`vectorize`], or the error that `op_name`'s blocked kernel cannot run
/// on this CPU. The blocked ops are placed only where [`available`] holds,
/// so this is a guard that keeps a wrong placement an error, not a panic.
pub(crate) fn vectorize_or_fail<O: BlockOp>(op_name: &str, op: O) -> TractResult<O::Output> {
    vectorize(op).ok_or_else(|| format_err!("{op_name}: the blocked layout needs AVX2 and FMA, or wasm SIMD"))
}

struct Probe;

impl BlockOp for Probe {
    type Output = ();

    fn run<L: Lanes8>(self, _: L) {}
}

/// Whether the blocked kernels can run here.
pub(crate) fn available() -> bool {
    vectorize(Probe).is_some()
}

/// `(images, channels, pixels)` of a `[N…,] C, H, W` shape.
fn image_dims(shape: &[usize]) -> Option<(usize, usize, usize)> {
    let r = shape.len();
    (r >= 3).then(|| {
        (
            shape[..r - 3].iter().product(),
            shape[r - 3],
            shape[r - 2] * shape[r - 1],
        )
    })
}

/// The one input of an op on a blocked tensor.
struct BlockedInput<'a> {
    shape: Vec<usize>,
    /// `(images, channels, pixels)`, the channels whole blocks.
    dims: (usize, usize, usize),
    x: &'a [f32],
}

impl<'a> BlockedInput<'a> {
    fn of(op: &str, inputs: &'a [TValue]) -> TractResult<BlockedInput<'a>> {
        let Some(input) = inputs.first() else {
            bail!("{op} takes one input")
        };
        let shape = input.shape().to_vec();
        let Some(dims) = image_dims(&shape).filter(|&(_, c, _)| c.is_multiple_of(BLOCK)) else {
            bail!("{op}: input shape {shape:?} is not [N,] C, H, W with C a multiple of {BLOCK}")
        };
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        Ok(BlockedInput { shape, dims, x })
    }
}

/// Converts between NCHW and the blocked order; the shape stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Relayout {
    to_blocked: bool,
}

impl Op for Relayout {
    fn name(&self) -> StaticName {
        if self.to_blocked {
            "EdgeserveToBlocked".into()
        } else {
            "EdgeserveFromBlocked".into()
        }
    }

    op_as_typed_op!();
}

impl EvalOp for Relayout {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let BlockedInput {
            shape,
            dims: (_, _, p),
            x,
        } = BlockedInput::of(&self.name(), &inputs)?;
        let mut tensor = crate::recycle::output(&shape)?;
        let mut view = tensor.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        // Eight channels of one image at a time: `[8][p]` and `[p][8]` (an
        // empty image has no values, and no chunk of size 0 is asked for).
        let chunk = BLOCK * p.max(1);
        for (src, dst) in x.chunks_exact(chunk).zip(out.chunks_exact_mut(chunk)) {
            for (r, plane) in (0..BLOCK).map(|r| (r, r * p)) {
                for px in 0..p {
                    if self.to_blocked {
                        dst[px * BLOCK + r] = src[plane + px];
                    } else {
                        dst[plane + px] = src[px * BLOCK + r];
                    }
                }
            }
        }
        crate::recycle::keep(inputs);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

/// The one input fact of an op on a blocked tensor, which must be `f32`.
fn f32_input_fact<'a>(op: &str, inputs: &[&'a TypedFact]) -> TractResult<&'a TypedFact> {
    let Some(input) = inputs.first() else {
        bail!("{op} takes one input")
    };
    ensure!(
        input.datum_type == DatumType::F32,
        "{op}: {:?} input",
        input.datum_type
    );
    Ok(input)
}

impl TypedOp for Relayout {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = f32_input_fact(&self.name(), inputs)?;
        Ok(tvec!(TypedFact::dt_shape(DatumType::F32, input.shape.clone())))
    }

    as_op!();
}

/// A sum over the height and width of a blocked tensor (a global average
/// pool's sum), read straight from the blocked layout. Its output, `[N,] C,
/// 1, 1`, is laid out the same in NCHW and in blocks, so nothing converts
/// the feature map back first: that conversion and tract's sum after it
/// took 105 µs of a 10 ms Lite0 run natively (44 + 62), 140 µs of 23 ms in
/// Chromium; this takes 11 µs natively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SpatialSum;

impl Op for SpatialSum {
    fn name(&self) -> StaticName {
        "EdgeserveBlockedSpatialSum".into()
    }

    op_as_typed_op!();
}

impl SpatialSum {
    /// The output shape: `shape` with height and width 1.
    fn output_shape<D: Clone + From<usize>>(shape: &[D]) -> TVec<D> {
        let mut out: TVec<D> = shape.iter().cloned().collect();
        let r = out.len();
        for d in out.iter_mut().skip(r.saturating_sub(2)) {
            *d = D::from(1);
        }
        out
    }
}

impl EvalOp for SpatialSum {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let BlockedInput {
            shape,
            dims: (n, c, p),
            x,
        } = BlockedInput::of(&self.name(), &inputs)?;
        let mut sums = vec![0f32; n * c];
        // An empty image sums to zero.
        if p > 0 {
            vectorize_or_fail(
                &self.name(),
                Sums {
                    x,
                    p,
                    sums: &mut sums,
                },
            )?;
        }
        let tensor = Tensor::from_shape(&SpatialSum::output_shape(&shape), &sums)?;
        crate::recycle::keep(inputs);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

/// Eight channels of one image at a time, `[p][8]`, summed in pixel order
/// lane by lane, in a register: compiled as plain Rust the sum lived in
/// memory, a load and a store for every pixel, and Lite0's 1280 × 49 took
/// 31-50 µs where onnxruntime's pool took 9.
struct Sums<'a> {
    /// `[N, C/8, p, 8]`.
    x: &'a [f32],
    p: usize,
    /// `[N, C]`.
    sums: &'a mut [f32],
}

impl BlockOp for Sums<'_> {
    type Output = ();

    #[inline(always)]
    fn run<L: Lanes8>(self, simd: L) {
        let (xv, _) = self.x.as_chunks::<BLOCK>();
        let (sv, _) = self.sums.as_chunks_mut::<BLOCK>();
        for (dst, src) in sv.iter_mut().zip(xv.chunks_exact(self.p)) {
            let sum = src
                .iter()
                .fold(simd.splat(0.0), |acc, px| simd.add(acc, simd.load(px)));
            simd.store(sum, dst);
        }
    }
}

impl TypedOp for SpatialSum {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let input = f32_input_fact(&self.name(), inputs)?;
        ensure!(
            input.rank() >= 3,
            "{}: input of rank {}",
            self.name(),
            input.rank()
        );
        let shape = SpatialSum::output_shape(&input.shape.to_tvec());
        Ok(tvec!(TypedFact::dt_shape(DatumType::F32, shape)))
    }

    as_op!();
}

/// A `Reduce<Sum>` over the last two axes of an `f32` `[N,] C, H, W` tensor
/// with whole blocks of channels.
fn is_spatial_sum(model: &TypedModel, node: &TypedNode) -> TractResult<bool> {
    let Some(reduce) = node.op_as::<Reduce>() else {
        return Ok(false);
    };
    let Some(&input) = node.inputs.first() else {
        return Ok(false);
    };
    let fact = model.outlet_fact(input)?;
    let r = fact.rank();
    Ok(matches!(reduce.reducer, Reducer::Sum)
        && node.inputs.len() == 1
        && fact.datum_type == DatumType::F32
        && (3..=4).contains(&r)
        && reduce.axes[..] == [r - 2, r - 1]
        && fact.shape[r - 3]
            .to_usize()
            .is_ok_and(|c| c.is_multiple_of(BLOCK)))
}

/// The blocked form of an edgeserve kernel.
struct Kernel {
    op: Box<dyn TypedOp>,
    /// Whether its input is blocked too (the dense kernel reads NCHW).
    reads_blocked: bool,
    /// Whether its output is blocked (the spatial sum's is the same either
    /// way, and is taken as NCHW).
    writes_blocked: bool,
}

fn kernel_of(node: &TypedNode) -> TractResult<Option<Kernel>> {
    let kernel = |op: Box<dyn TypedOp>, reads_blocked| Kernel {
        op,
        reads_blocked,
        writes_blocked: true,
    };
    if let Some(op) = node.op_as::<Pointwise>() {
        return Ok(op.to_blocked()?.map(|op| kernel(Box::new(op), true)));
    }
    if let Some(op) = node.op_as::<DepthwiseConv>() {
        return Ok(op.to_blocked()?.map(|op| kernel(Box::new(op), true)));
    }
    if let Some(op) = node.op_as::<DenseConv>() {
        return Ok(Some(kernel(Box::new(op.clone()), false)));
    }
    Ok(None)
}

/// `[rows, cols]` values (`from`, row-major) as blocks of eight rows, each
/// `[cols, 8]`: the weight layout of the blocked kernels, whose vectors hold
/// eight output channels; a tensor of one axis. `rows` must be a multiple
/// of [`BLOCK`].
///
/// Written straight into the tensor, in its order: loading a model copies
/// each weight several times (the ONNX bytes, tract's tensor, a packing
/// per layout), and most of a load's time is those copies and the first
/// touch of the memory they fill (Lite2: 24 MB of weights). The time is the
/// memory's, not the instructions': in a Lite2 load in Node's baseline
/// tier (V8's first compiler, which a warm start's load runs in) this took
/// 6.3 ms whether it gathered each value by its index, read each row
/// straight through (as here), or moved four columns of eight rows at a
/// time as vector transposes (6.9–7.2 ms per load against 5.6–6.4 ms).
pub(crate) fn interleave(rows: usize, cols: usize, from: &[f32]) -> TractResult<Tensor> {
    let mut tensor = Tensor::zero::<f32>(&[rows * cols])?;
    if rows * cols > 0 {
        let mut view = tensor.try_as_plain_ram_mut()?;
        interleave_into(rows, cols, from, view.as_slice_mut::<f32>()?)?;
    }
    Ok(tensor)
}

/// [`interleave`] into `out`, of `rows × cols` values: where the weights
/// are to live in memory that is not a tensor's (`crate::weights`).
pub(crate) fn interleave_into(rows: usize, cols: usize, from: &[f32], out: &mut [f32]) -> TractResult<()> {
    let len = rows * cols;
    if !rows.is_multiple_of(BLOCK) || from.len() < len || out.len() != len {
        bail!(
            "edgeserve blocked layout: {rows}×{cols} weights from {} values into {}, in blocks of {BLOCK} rows",
            from.len(),
            out.len()
        );
    }
    if len == 0 {
        return Ok(());
    }
    for (block, rows) in out
        .chunks_exact_mut(cols * BLOCK)
        .zip(from.chunks_exact(cols * BLOCK))
    {
        let (lanes, _) = block.as_chunks_mut::<BLOCK>();
        for (lane, row) in rows.chunks_exact(cols).enumerate() {
            for (to, &v) in lanes.iter_mut().zip(row) {
                to[lane] = v;
            }
        }
    }
    Ok(())
}

/// A residual `Add` of two tensors of one shape (the batch may be free)
/// with whole blocks of channels.
fn is_plain_add(model: &TypedModel, node: &TypedNode) -> TractResult<bool> {
    if !node.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Add>()) || node.inputs.len() != 2 {
        return Ok(false);
    }
    let a = model.outlet_fact(node.inputs[0])?;
    let b = model.outlet_fact(node.inputs[1])?;
    let r = a.rank();
    Ok(a.datum_type == DatumType::F32
        && b.datum_type == DatumType::F32
        && a.shape == b.shape
        && r >= 3
        && a.shape[r - 3].to_usize().is_ok_and(|c| c.is_multiple_of(BLOCK)))
}

/// Puts edgeserve's kernels, and the residual `Add`s between them, on the
/// blocked layout, converting at every edge into or out of that stretch.
/// Returns the model unchanged where the CPU lacks AVX2 and FMA.
pub(crate) fn apply(model: TypedModel) -> TractResult<TypedModel> {
    if !available() {
        return Ok(model);
    }
    let outputs: HashSet<OutletId> = model.outputs.iter().copied().collect();
    let mut blocked: HashSet<OutletId> = HashSet::new();
    let mut kernels: HashMap<usize, Kernel> = HashMap::new();
    for id in model.eval_order()? {
        let node = model.node(id);
        let out = OutletId::new(id, 0);
        // A kernel whose result is a model output runs blocked all the
        // same, converted back right after (in `translate_node`).
        if let Some(kernel) = kernel_of(node)? {
            kernels.insert(id, kernel);
            if !outputs.contains(&out) {
                blocked.insert(out);
            }
        } else if !outputs.contains(&out)
            && is_plain_add(&model, node)?
            && node.inputs.iter().all(|i| blocked.contains(i))
        {
            blocked.insert(out);
        } else if node.inputs.iter().all(|i| blocked.contains(i)) && is_spatial_sum(&model, node)? {
            kernels.insert(
                id,
                Kernel {
                    op: Box::new(SpatialSum),
                    reads_blocked: true,
                    writes_blocked: false,
                },
            );
        }
    }
    if kernels.is_empty() {
        return Ok(model);
    }
    Blocking { blocked, kernels }.translate_model(&model)
}

struct Blocking {
    /// Outlets of the source model that hold blocked data.
    blocked: HashSet<OutletId>,
    /// The blocked form of each kernel node of the source model.
    kernels: HashMap<usize, Kernel>,
}

impl std::fmt::Debug for Blocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "edgeserve blocked layout ({} kernels)", self.kernels.len())
    }
}

impl Translate<TypedFact, Box<dyn TypedOp>, TypedFact, Box<dyn TypedOp>> for Blocking {
    fn translate_node(
        &self,
        _source: &TypedModel,
        node: &TypedNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        let kernel = self.kernels.get(&node.id);
        // A blocked `Add` has blocked inputs; a kernel says what it reads;
        // every other node wants NCHW.
        let wants_blocked = match kernel {
            Some(k) => k.reads_blocked,
            None => self.blocked.contains(&OutletId::new(node.id, 0)),
        };
        let mut inputs = TVec::new();
        for (slot, input) in node.inputs.iter().enumerate() {
            let Some(&wire) = mapping.get(input) else {
                bail!(
                    "edgeserve blocked layout: input {slot} of {} is not translated yet",
                    node.name
                )
            };
            let is_blocked = self.blocked.contains(input);
            inputs.push(if is_blocked == wants_blocked {
                wire
            } else {
                let name = format!("{}.relayout.{slot}", node.name);
                target.wire_node(
                    name,
                    Relayout {
                        to_blocked: wants_blocked,
                    },
                    &[wire],
                )?[0]
            });
        }
        let Some(kernel) = kernel else {
            return target.wire_node(&node.name, node.op.clone(), &inputs);
        };
        let wires = target.wire_node(&node.name, kernel.op.clone(), &inputs)?;
        if self.blocked.contains(&OutletId::new(node.id, 0)) || !kernel.writes_blocked {
            Ok(wires)
        } else {
            let name = format!("{}.relayout", node.name);
            target.wire_node(name, Relayout { to_blocked: false }, &wires)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BLOCK, interleave};

    #[test]
    fn interleave_puts_eight_rows_side_by_side_per_column() {
        let (rows, cols) = (2 * BLOCK, 3);
        let from: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = interleave(rows, cols, &from).unwrap();
        let got = t.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec();
        assert_eq!(got.len(), rows * cols);
        for row in 0..rows {
            for col in 0..cols {
                let (block, lane) = (row / BLOCK, row % BLOCK);
                assert_eq!(
                    got[(block * cols + col) * BLOCK + lane],
                    from[row * cols + col],
                    "row {row}, column {col}"
                );
            }
        }
    }

    #[test]
    fn interleave_refuses_rows_that_are_not_whole_blocks_or_values_too_few() {
        let e = interleave(BLOCK + 1, 2, &[0.0; 2 * (BLOCK + 1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("9×2 weights") && e.contains("blocks of 8 rows"), "{e}");
        let e = interleave(BLOCK, 2, &[0.0; 2 * BLOCK - 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("from 15 values"), "{e}");
    }
}
