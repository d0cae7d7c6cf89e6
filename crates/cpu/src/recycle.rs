//! Output tensors of edgeserve's kernels, made from tensors an earlier
//! kernel was the last to read.
//!
//! tract hands an operator a new tensor only zeroed (`Tensor::zero`), and
//! every kernel here then writes every value of it: the zeros are work
//! thrown away. Safe Rust cannot ask for memory left unwritten (the
//! workspace forbids `unsafe`), but it can keep a dead tensor: when a
//! kernel's input has no other reader (tract hands over its last
//! reference), the tensor is kept here, and a later kernel asking for an
//! output of the same length gets it, stale values and all, instead of a
//! zeroed one.
//!
//! Spares are kept per thread (operators run on the thread that runs the
//! plan), at most [`KEEP`] of them and [`KEEP_BYTES`] together, and they
//! outlive the inference, as onnxruntime's arena keeps its buffers from
//! run to run. Within one inference few lengths come back: a depthwise
//! layer writes over its input, so a block's expansion finds no spare of
//! its size, and Lite0 zeroed 14.7 MB of new outputs in every run (a
//! `memset` of about 4 % of its time natively). From the second inference
//! on, every output finds the buffer the run before freed.

use std::cell::RefCell;
use tract_onnx::prelude::{Arc, DatumType, IntoArcTensor, TValue, TVec, Tensor, TractResult};

/// The most spare tensors kept at once: enough for one of each length an
/// image classifier's intermediate tensors have (Lite0 has 19).
const KEEP: usize = 32;

/// The most bytes the spares may hold together, and so the most they add
/// to the thread's memory, between inferences too: a freed tensor goes
/// back to the allocator, a kept one does not. Lite0's tensors take
/// 15 MB, Lite2's about 25 MB. A large batch's do not fit, and are freed
/// as before: a batch of 60 Lite0 images has 289 MB ones. With no such
/// bound, the server's hostile-input test peaked at 701 MB against 420 MB
/// before recycling (`crates/cli/tests/hostile.rs`). In wasm, where the
/// memory never shrinks and a Worker has 128 MB, half as much.
#[cfg(not(target_arch = "wasm32"))]
const KEEP_BYTES: usize = 32 << 20;
#[cfg(target_arch = "wasm32")]
const KEEP_BYTES: usize = 16 << 20;

thread_local! {
    static SPARE: RefCell<Vec<Tensor>> = const { RefCell::new(Vec::new()) };
}

/// An `f32` tensor of `shape` for a kernel that writes every one of its
/// values: a spare one of the same length, or else a zeroed one.
pub(crate) fn output(shape: &[usize]) -> TractResult<Tensor> {
    let len = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
    let spare = len.and_then(|len| {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            let at = spare.iter().position(|t| t.len() == len)?;
            Some(spare.remove(at))
        })
    });
    match spare {
        Some(mut tensor) => {
            tensor.set_shape(shape)?;
            Ok(tensor)
        }
        None => Tensor::zero::<f32>(shape),
    }
}

/// Keeps the `f32` tensors among `values` that nothing else holds, for
/// [`output`]; the oldest spares go when there would be more than [`KEEP`]
/// of them or [`KEEP_BYTES`] together.
pub(crate) fn keep(values: TVec<TValue>) {
    for value in values {
        let bytes = value.len().saturating_mul(4);
        if !value.is_exclusive() || value.datum_type() != DatumType::F32 || bytes > KEEP_BYTES {
            continue;
        }
        let Ok(tensor) = Arc::try_unwrap(value.into_arc_tensor()) else {
            continue;
        };
        if tensor.try_as_plain_ram().is_err() {
            continue;
        }
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            let held = |spare: &[Tensor]| spare.iter().map(|t| t.len() * 4).sum::<usize>();
            while !spare.is_empty() && (spare.len() >= KEEP || held(&spare) + bytes > KEEP_BYTES) {
                spare.remove(0);
            }
            spare.push(tensor);
        });
    }
}

/// Drops this thread's spares.
#[cfg(test)]
fn clear() {
    // Taken out before dropping, so that no borrow is held meanwhile.
    let spare = SPARE.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
    drop(spare);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::prelude::{IntoTValue, tvec};

    fn values(t: &Tensor) -> Vec<f32> {
        t.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
    }

    #[test]
    fn a_kept_tensor_comes_back_for_the_same_length_only_and_not_after_clear() {
        clear();
        let t = Tensor::from_shape(&[2, 3], &[1f32, 2., 3., 4., 5., 6.]).unwrap();
        keep(tvec!(t.into_tvalue()));
        // Another length: a new, zeroed tensor.
        let other = output(&[5]).unwrap();
        assert_eq!(values(&other), &[0.0; 5]);
        // The same length in another shape: the spare, reshaped.
        let back = output(&[3, 2]).unwrap();
        assert_eq!(back.shape(), &[3, 2]);
        assert_eq!(values(&back), &[1., 2., 3., 4., 5., 6.]);
        // Taken: the next one is new.
        assert_eq!(values(&output(&[6]).unwrap()), &[0.0; 6]);
        keep(tvec!(back.into_tvalue()));
        clear();
        assert_eq!(values(&output(&[6]).unwrap()), &[0.0; 6]);
    }

    #[test]
    fn a_tensor_another_holder_reads_is_not_kept() {
        clear();
        let shared = Tensor::from_shape(&[4], &[7f32; 4]).unwrap().into_tvalue();
        keep(tvec!(shared.clone()));
        assert_eq!(values(&output(&[4]).unwrap()), &[0.0; 4]);
        assert_eq!(values(&shared), &[7.0; 4]);
        // Other types are not kept either.
        keep(tvec!(Tensor::from_shape(&[4], &[1i32; 4]).unwrap().into_tvalue()));
        assert_eq!(values(&output(&[4]).unwrap()), &[0.0; 4]);
        // At most `KEEP`, the oldest going first.
        for v in 0..=KEEP {
            keep(tvec!(
                Tensor::from_shape(&[v + 10], &vec![1f32; v + 10])
                    .unwrap()
                    .into_tvalue()
            ));
        }
        assert_eq!(values(&output(&[10]).unwrap()), &[0.0; 10]);
        assert_eq!(values(&output(&[11]).unwrap()), &[1.0; 11]);
        clear();
        // At most `KEEP_BYTES` together: a tensor larger than that is not
        // kept, and one that would pass it sends the oldest away.
        let floats = KEEP_BYTES / 4;
        keep(tvec!(
            Tensor::from_shape(&[floats + 1], &vec![1f32; floats + 1])
                .unwrap()
                .into_tvalue()
        ));
        assert_eq!(values(&output(&[floats + 1]).unwrap())[0], 0.0);
        keep(tvec!(
            Tensor::from_shape(&[floats / 2], &vec![1f32; floats / 2])
                .unwrap()
                .into_tvalue()
        ));
        keep(tvec!(
            Tensor::from_shape(&[floats / 2 + 1], &vec![2f32; floats / 2 + 1])
                .unwrap()
                .into_tvalue()
        ));
        assert_eq!(values(&output(&[floats / 2]).unwrap())[0], 0.0);
        assert_eq!(values(&output(&[floats / 2 + 1]).unwrap())[0], 2.0);
        clear();
    }
}
