//! A blocked 1×1 convolution fused into the blocked depthwise convolution
//! that reads it (`EdgeserveExpandDepthwise`): an inverted bottleneck's
//! expansion and depthwise step (MobileNet v2/v3, EfficientNet), natively.
//!
//! Why: the expansion is the widest tensor of its block, 4.8 MB for
//! Lite0's first (96 channels of 112×112), several times this machine's
//! 1 MB of L2. Unfused, the 1×1 kernel writes it out
//! to L3 and the depthwise kernel reads it back. Fused, the 1×1 product
//! computes one input row at a time into the ring of padded rows the
//! depthwise kernel keeps anyway (`depthwise::Ring`, `kh` rows per block of
//! eight channels, tens of kilobytes), just before the first output row
//! that reads it: the expansion never leaves L2. Both steps run the
//! kernels they run unfused (`pointwise::Products`,
//! `DepthwiseConv::ring_row`, the depthwise kernel's ring form).
//!
//! Only where the expansion is over 4 MB an image ([`FUSE_ABOVE`]):
//! Lite0's first pair (112×112) and Lite2's (130×130). Measured per node,
//! one thread, two workers of one binary run in turn (40–60 profiled runs
//! each, medians; `benches/README.md`): fused, those pairs took 662 against
//! 781 µs (Lite0) and 868 against 1033 (Lite2); but Lite0's 56×56 pairs
//! (1.8 MB) took 903 against 847 unfused, Lite2's 65×65 (2.4 MB) 1752
//! against 1631, and its 33×33 (1.25 MB) 1594–1649 against 1407–1425. At two
//! threads the smaller pairs were even either way. Likely why, not
//! isolated: fused, the depthwise step must take its ring form, which
//! `depthwise.rs` measured slower on planes under 128 KB a block (the 56×56
//! and 33×33 ones), and the product runs a row's width at a time, leaving
//! pixels over at each row's end, for a saving of one round trip to L3.

use crate::blocked::{self, BLOCK, BlockOp, Lanes8};
use crate::depthwise::{DepthwiseConv, Ring};
use crate::fused;
use crate::pointwise::{self, Pointwise, Products};
use crate::recycle;
use tract_onnx::prelude::{
    DatumType, IntoTValue, OutletId, TValue, TVec, TractResult, TypedFact, TypedModel, TypedModelPatch, tvec,
};
use tract_onnx::tract_core::internal::{EvalContext, EvalOp, Op, StaticName, TypedOp};
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};
use tract_onnx::tract_hir::internal::{bail, ensure};

/// The expansion (bytes per image) above which it is fused: measured, not
/// derived (see the module's documentation), four times this machine's L2
/// (Zen 4: 1 MB a core).
const FUSE_ABOVE: usize = 4 * 1024 * 1024;

/// The fused operator: [`Pointwise`] (blocked, no residual), then
/// [`DepthwiseConv`] (blocked) on its output.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ExpandDepthwise {
    pw: Pointwise,
    dw: DepthwiseConv,
}

impl ExpandDepthwise {
    /// The 1×1 expansion it computes.
    pub(crate) fn pointwise(&self) -> &Pointwise {
        &self.pw
    }

    /// The same fusion with `pw` for its expansion (its weights placed:
    /// `crate::pointwise::place_weights`).
    pub(crate) fn with_pointwise(&self, pw: Pointwise) -> ExpandDepthwise {
        ExpandDepthwise {
            pw,
            dw: self.dw.clone(),
        }
    }
}

impl Op for ExpandDepthwise {
    fn name(&self) -> StaticName {
        "EdgeserveExpandDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let mut info = self.pw.info()?;
        info.extend(self.dw.info()?);
        Ok(info)
    }

    op_as_typed_op!();
}

impl EvalOp for ExpandDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (pw, dw) = (&self.pw, &self.dw);
        let Some(ring) = dw.ring() else {
            bail!("EdgeserveExpandDepthwise: its depthwise convolution reads no ring")
        };
        let Some(input) = inputs.first().filter(|_| inputs.len() == 1) else {
            bail!("EdgeserveExpandDepthwise takes one input")
        };
        let shape = input.shape();
        ensure!(
            shape.len() == pw.in_rank
                && shape[pw.in_rank - 3] == pw.k
                && shape[pw.in_rank - 2] == ring.in_h
                && shape[pw.in_rank - 1] == ring.in_w,
            "EdgeserveExpandDepthwise: input shape {shape:?}, expected {} channels of {} × {}",
            pw.k,
            ring.in_h,
            ring.in_w
        );
        let batch = if pw.in_rank == 4 { shape[0] } else { 1 };
        ensure!(
            batch == 1 || pw.out_rank == 4,
            "EdgeserveExpandDepthwise: batch {batch} into an unbatched output"
        );
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let mut tensor = recycle::output(&dw.output_shape(&pw.output_shape(shape)))?;
        let mut view = tensor.try_as_plain_ram_mut()?;
        let out = view.as_slice_mut::<f32>()?;
        let (plane_in, plane_out) = (ring.in_h * ring.in_w, ring.out_h * ring.out_w * BLOCK);
        ensure!(
            out.len() == batch * ring.channels * ring.out_h * ring.out_w
                && x.len() == batch * pw.k * plane_in,
            "EdgeserveExpandDepthwise: {} values in, {} out",
            x.len(),
            out.len()
        );
        // Threads split each image's channel blocks, as the unfused kernels
        // do: each reads the whole (narrow) input and keeps its own ring.
        let blocks = ring.channels / BLOCK;
        let per_task = blocks.div_ceil(fused::workers()).max(1);
        let mut pieces = Vec::new();
        for (n, image) in out
            .chunks_mut(ring.channels * ring.out_h * ring.out_w)
            .enumerate()
        {
            for (t, piece) in image.chunks_mut(per_task * plane_out).enumerate() {
                pieces.push((n, t * per_task, piece));
            }
        }
        let (packed, bias) = (
            pw.packed.as_slice()?,
            pw.bias.try_as_plain_ram()?.as_slice::<f32>()?,
        );
        let k = pw.k;
        fused::for_each(
            pieces,
            |rows: &mut Vec<f32>, (n, first, out): (usize, usize, &mut [f32])| {
                blocked::vectorize_or_fail(
                    "EdgeserveExpandDepthwise",
                    Blocks {
                        op: self,
                        ring,
                        x: x.get(n * k * plane_in..(n + 1) * k * plane_in)
                            .unwrap_or_default(),
                        w: packed.get(first * k * BLOCK..).unwrap_or_default(),
                        bias: bias.get(first * BLOCK..).unwrap_or_default(),
                        first,
                        rows,
                        out,
                    },
                )?
            },
        )?;
        recycle::keep(inputs);
        Ok(tvec!(tensor.into_tvalue()))
    }
}

/// Output blocks `first..` of one image.
struct Blocks<'a> {
    op: &'a ExpandDepthwise,
    ring: Ring,
    /// `[k/8, in_h · in_w, 8]`.
    x: &'a [f32],
    /// The 1×1 weights and bias from block `first` on.
    w: &'a [f32],
    bias: &'a [f32],
    first: usize,
    /// Scratch: the rings of these blocks, one after the other.
    rows: &'a mut Vec<f32>,
    /// `[blocks, out_h, out_w, 8]`.
    out: &'a mut [f32],
}

impl BlockOp for Blocks<'_> {
    type Output = TractResult<()>;

    #[inline(always)]
    fn run<L: Lanes8>(self, simd: L) -> TractResult<()> {
        let Blocks {
            op,
            ring,
            x,
            w,
            bias,
            first,
            rows,
            out,
        } = self;
        let (pw, dw) = (&op.pw, &op.dw);
        let (k, w_in) = (pw.k, ring.in_w);
        let plane_out = ring.out_h * ring.out_w;
        let (ov, _) = out.as_chunks_mut::<BLOCK>();
        let blocks = ov.len() / plane_out.max(1);
        let per_ring = ring.kh * ring.cols;
        // Zeros where the padding is: the product writes only the input's
        // columns of a slot, and padding rows are zeroed as they come.
        rows.clear();
        rows.resize(blocks * per_ring * BLOCK, 0.0);
        let (rv, _) = rows.as_chunks_mut::<BLOCK>();
        let (xc, _) = x.as_chunks::<BLOCK>();
        let (wv, _) = w.as_chunks::<BLOCK>();
        let (bv, _) = bias.as_chunks::<BLOCK>();
        ensure!(
            xc.len() == k / BLOCK * ring.in_h * w_in && wv.len() >= blocks * k && bv.len() >= blocks,
            "EdgeserveExpandDepthwise: buffers of {} / {} / {} vectors for {blocks} blocks",
            xc.len(),
            wv.len(),
            bv.len()
        );
        let products = Products {
            simd,
            xc,
            p: ring.in_h * w_in,
            k,
            lo: simd.splat(pw.bounds.lo()),
            hi: simd.splat(pw.bounds.hi()),
            residual: false,
        };
        let (steps, _) = pointwise::plan(w_in, w_in);
        let (mut filled, mut slot0) = (0, 0);
        for oy in 0..ring.out_h {
            let need = (oy * ring.sh + ring.kh).min(ring.rows);
            for r in filled..need {
                let at = (r % ring.kh) * ring.cols + ring.left;
                match r.checked_sub(ring.pad_top).filter(|iy| *iy < ring.in_h) {
                    Some(iy) => products.blocks(&steps, iy * w_in, wv, bv, rv, per_ring, at),
                    // A padding row: zeros where an input row went before.
                    None => {
                        for slots in rv.chunks_exact_mut(per_ring) {
                            if let Some(row) = slots.get_mut(at..at + w_in) {
                                row.fill([0.0; BLOCK]);
                            }
                        }
                    }
                }
            }
            filled = filled.max(need);
            for (b, slots) in rv.chunks_exact(per_ring).enumerate() {
                let Some(row) =
                    ov.get_mut(b * plane_out + oy * ring.out_w..b * plane_out + (oy + 1) * ring.out_w)
                else {
                    bail!("EdgeserveExpandDepthwise: block {b} of {blocks} is short")
                };
                dw.ring_row(simd, first + b, slots, slot0, row)?;
            }
            slot0 = ring.next(slot0);
        }
        Ok(())
    }
}

impl TypedOp for ExpandDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let expanded = self.pw.output_facts(inputs)?;
        let Some(fact) = expanded.first() else {
            bail!("EdgeserveExpandDepthwise: the 1×1 product has no output")
        };
        self.dw.output_facts(&[fact])
    }

    as_op!();
}

/// Fuses every blocked 1×1 product (no residual) whose only reader is a
/// blocked depthwise convolution that takes a ring, where the product's
/// output is larger than [`FUSE_ABOVE`]. After the blocked layout's
/// placement and [`pointwise::fuse_residuals`].
pub(crate) fn fuse(model: &mut TypedModel) -> TractResult<usize> {
    fused::rewrite_all::<DepthwiseConv>(model, patch_for)
}

fn patch_for(model: &TypedModel, id: usize) -> TractResult<Option<TypedModelPatch>> {
    let node = model.node(id);
    let (Some(dw), [from]) = (node.op_as::<DepthwiseConv>(), &node.inputs[..]) else {
        return Ok(None);
    };
    let prev = model.node(from.node);
    let Some(pw) = prev.op_as::<Pointwise>() else {
        return Ok(None);
    };
    let alone =
        prev.outputs.len() == 1 && prev.outputs[0].successors.len() == 1 && !model.outputs.contains(from);
    let Some(ring) = dw.ring() else {
        return Ok(None);
    };
    let fact = model.outlet_fact(*from)?;
    let fits = pw.blocked
        && !pw.residual
        && !pw.rows
        && alone
        && fact.datum_type == DatumType::F32
        && pw.cout == ring.channels
        && pw.pixels == ring.in_h * ring.in_w
        // Runs stay within a row.
        && ring.in_w >= pointwise::PIXELS
        && pw.cout * pw.pixels * 4 > FUSE_ABOVE;
    if !fits {
        return Ok(None);
    }
    let mut patch = TypedModelPatch::new(format!("edgeserve expand {}", node.name));
    let x = patch.tap_model(model, prev.inputs[0])?;
    let op = ExpandDepthwise {
        pw: pw.clone(),
        dw: dw.clone(),
    };
    let wire = patch.wire_node(&node.name, op, &[x])?;
    patch.shunt_outside(model, OutletId::new(id, 0), wire[0])?;
    Ok(Some(patch))
}
