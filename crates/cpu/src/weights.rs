//! Where the large weights live: natively on Linux, all of a model's
//! packed 1×1 weights (from 4 MB) in one anonymous mapping, in the order
//! the nodes run, and a classifier head's matrix in one of its own
//! ([`Heads`]), each advised for transparent huge pages before it is
//! written; elsewhere, and whenever that fails, each in its own tensor.
//!
//! Why: these weights are read from memory in every inference (see
//! `crate::pointwise`'s `PREFETCH_PAIR_BYTES`), and in 4 KB pages that
//! pass likely also walks the page tables for each page (not isolated:
//! this VM has no performance counters). Lite0's 1×1 weights are 12.6 MB,
//! 3,071 pages of 4 KB, and Lite2's 18.0 MB, 4,385 pages; Zen 4's L2 TLB
//! holds 3,072. Measured in one process with both copies kept and
//! alternated run by run (the same memory for both, so that where a
//! process's pages happen to land does not decide it), whole runs, mapped
//! / tensors: Lite0 0.939-1.018 at one thread (median 0.976, ten
//! processes of 60 runs each), 0.936 and 0.985 at two; Lite2 0.969-0.976
//! at one (three of 40), 0.971 and 0.984 at two. `benches/README.md`
//! (2026-12-08) has these and the head's. The cost is resident memory:
//! after 40 runs, Lite0's worker held 71-72 MB against 55-56, and Lite2's
//! 87 MB against 70. The mappings themselves are 14 and 6 MB (Lite0), and
//! the model's own weights, freed once placed, stay with the allocator:
//! in tensors, the packed weights took their place.
//!
//! A library cannot choose its host's allocator, but it can hold its own
//! weights in memory it maps itself, and `memmap2` gives the `madvise`
//! without `unsafe` here. Hosts whose transparent huge pages are `never`
//! ignore the advice; the values are the same either way.

use tract_onnx::prelude::{Arc, Tensor, TractResult};
use tract_onnx::tract_hir::internal::bail;
#[cfg(target_os = "linux")]
use tract_onnx::tract_hir::internal::ensure;

/// One operator's weights: a tensor of its own, a model's 1×1 rows still
/// to be interleaved, or a range of a model's shared mapping ([`place`]).
#[derive(Clone)]
pub(crate) enum Weights {
    Tensor(Arc<Tensor>),
    /// A 1×1 convolution's `cout × k` rows as the model holds them, for
    /// the blocked layout (`crate::blocked::interleave`): interleaved
    /// straight into the mapping by [`place`], or into a tensor by
    /// [`settle`] where there is none. Interleaved into a tensor first and
    /// then copied, Lite0 loaded in 54.5-56.7 ms, and in 52.8-54.7 this
    /// way but for one load of 72.9 (Lite2: 69.7-75.1, and 65.7-69.5).
    Rows {
        rows: Arc<Tensor>,
        cout: usize,
        k: usize,
    },
    #[cfg(target_os = "linux")]
    Mapped {
        map: Arc<memmap2::Mmap>,
        /// First value and number of values in `map`.
        at: usize,
        len: usize,
    },
}

impl Weights {
    /// The values, as `f32`; rows not yet interleaved are an error
    /// ([`settle`] and [`place`] run last at load).
    pub(crate) fn as_slice(&self) -> TractResult<&[f32]> {
        match self {
            Weights::Tensor(t) => Ok(t.try_as_plain_ram()?.as_slice::<f32>()?),
            Weights::Rows { cout, k, .. } => {
                bail!("edgeserve 1×1 weights: {cout}×{k} rows never interleaved")
            }
            #[cfg(target_os = "linux")]
            Weights::Mapped { map, at, len } => {
                let all: &[f32] = pulp::bytemuck::try_cast_slice(&map[..])
                    .map_err(|e| tract_onnx::tract_hir::internal::format_err!("mapped weights: {e:?}"))?;
                match all.get(*at..).and_then(|rest| rest.get(..*len)) {
                    Some(values) => Ok(values),
                    None => bail!("mapped weights: {len} values at {at} past {}", all.len()),
                }
            }
        }
    }

    /// The same rows, to be interleaved for the blocked layout once they
    /// have a place: `cout × k` values of a tensor, `cout` whole blocks
    /// (`crate::blocked::interleave_into` checks both when it runs, at
    /// load).
    pub(crate) fn interleaved_later(&self, cout: usize, k: usize) -> TractResult<Weights> {
        let Weights::Tensor(rows) = self else {
            bail!("edgeserve 1×1 weights: only a model's rows are interleaved")
        };
        Ok(Weights::Rows {
            rows: rows.clone(),
            cout,
            k,
        })
    }

    /// How many values they take where they are placed.
    #[cfg(target_os = "linux")]
    fn len(&self) -> TractResult<usize> {
        match self {
            Weights::Rows { cout, k, .. } => Ok(cout * k),
            _ => Ok(self.as_slice()?.len()),
        }
    }

    /// Writes the values (interleaved, for rows) into `out`, of
    /// [`Weights::len`].
    #[cfg(target_os = "linux")]
    fn write_into(&self, out: &mut [f32]) -> TractResult<()> {
        match self {
            Weights::Rows { rows, cout, k } => {
                let from = rows.try_as_plain_ram()?;
                crate::blocked::interleave_into(*cout, *k, from.as_slice::<f32>()?, out)
            }
            _ => {
                let from = self.as_slice()?;
                ensure!(
                    from.len() == out.len(),
                    "edgeserve weights: {} values into {}",
                    from.len(),
                    out.len()
                );
                out.copy_from_slice(from);
                Ok(())
            }
        }
    }

    /// The values as a tensor's, when they are one (not yet placed).
    #[cfg(test)]
    fn tensor(&self) -> Option<&Arc<Tensor>> {
        match self {
            Weights::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// The bit patterns, for `Hash` and `Eq`: the same values wherever
    /// they live.
    fn bits(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_slice().unwrap_or_default().iter().map(|v| v.to_bits())
    }
}

/// `w` where it can be run from without a mapping: rows interleaved into a
/// tensor of their own, anything else as it is.
pub(crate) fn settle(w: &Weights) -> TractResult<Weights> {
    match w {
        Weights::Rows { rows, cout, k } => {
            let from = rows.try_as_plain_ram()?;
            let t = crate::blocked::interleave(*cout, *k, from.as_slice::<f32>()?)?;
            Ok(Arc::new(t).into())
        }
        other => Ok(other.clone()),
    }
}

impl From<Arc<Tensor>> for Weights {
    fn from(t: Arc<Tensor>) -> Weights {
        Weights::Tensor(t)
    }
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weights::Tensor(t) => t.fmt(f),
            Weights::Rows { cout, k, .. } => write!(f, "{cout}×{k} rows to interleave"),
            #[cfg(target_os = "linux")]
            Weights::Mapped { at, len, .. } => write!(f, "{len} mapped values from {at}"),
        }
    }
}

impl PartialEq for Weights {
    fn eq(&self, other: &Weights) -> bool {
        match (self, other) {
            (
                Weights::Rows { rows, cout, k },
                Weights::Rows {
                    rows: r,
                    cout: c,
                    k: kk,
                },
            ) => (cout, k) == (c, kk) && rows == r,
            (Weights::Rows { .. }, _) | (_, Weights::Rows { .. }) => false,
            _ => self.bits().eq(other.bits()),
        }
    }
}

impl Eq for Weights {}

impl std::hash::Hash for Weights {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Weights::Rows { rows, cout, k } => (rows, cout, k).hash(state),
            _ => self.bits().for_each(|b| b.hash(state)),
        }
    }
}

/// A classifier head's weights placed once for all of a model's plans.
/// Each plan optimises its own copy of the graph (`crate::BatchPlans`), and
/// its head's matrix is the same constant tensor in every copy, so the
/// head is placed on the first plan and found here by that tensor on the
/// others.
#[derive(Default)]
pub(crate) struct Heads(std::sync::Mutex<Vec<(Arc<Tensor>, Weights)>>);

impl Heads {
    /// `rows` (made from the constant `from`) in a mapping of their own
    /// ([`place`]), the same one for every plan; `rows` as they are where
    /// they are too few or the mapping failed.
    pub(crate) fn place(&self, from: &Arc<Tensor>, rows: Arc<Tensor>) -> TractResult<Weights> {
        // A poisoned lock: a panic while placing, and the rows stay put.
        let Ok(mut placed) = self.0.lock() else {
            return Ok(rows.into());
        };
        if let Some((_, w)) = placed.iter().find(|(t, _)| Arc::ptr_eq(t, from)) {
            return Ok(w.clone());
        }
        let rows: Weights = rows.into();
        let Some(w) = place(&[&rows])?.and_then(|mut one| one.pop()) else {
            return Ok(rows);
        };
        placed.push((from.clone(), w.clone()));
        Ok(w)
    }
}

/// Below this many bytes of weights a model keeps them in tensors: a huge
/// page is 2 MB, and a mapping of less would mostly be padding.
#[cfg(target_os = "linux")]
const MAP_FROM_BYTES: usize = 4 << 20;

/// Huge pages' size on x86-64 and on aarch64 with 4 KB pages; the mapping
/// is a multiple of it, so that the kernel aligns it to one.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Each weight range starts on a cache line (16 values).
#[cfg(target_os = "linux")]
const ALIGN_VALUES: usize = 16;

/// Copies `all` into one mapping advised for huge pages (interleaving
/// rows) and returns the same weights in it, in order; `None` where the
/// weights are too few or the mapping failed, so that they stay where they
/// are (rows still to be [`settle`]d).
#[cfg(target_os = "linux")]
pub(crate) fn place(all: &[&Weights]) -> TractResult<Option<Vec<Weights>>> {
    let mut starts = Vec::with_capacity(all.len());
    let mut values = 0usize;
    let mut lens = Vec::with_capacity(all.len());
    for w in all {
        let len = w.len()?;
        starts.push(values);
        lens.push(len);
        values += len.next_multiple_of(ALIGN_VALUES);
    }
    let bytes = values * 4;
    if bytes < MAP_FROM_BYTES {
        return Ok(None);
    }
    let Ok(mut map) = memmap2::MmapMut::map_anon(bytes.next_multiple_of(HUGE_PAGE)) else {
        return Ok(None);
    };
    // Before the first write, so that the pages are faulted in huge; a
    // hint, which the kernel may decline (`never`, or no free huge page).
    let _ = map.advise(memmap2::Advice::HugePage);
    {
        let to: &mut [f32] = pulp::bytemuck::try_cast_slice_mut(&mut map[..])
            .map_err(|e| tract_onnx::tract_hir::internal::format_err!("mapped weights: {e:?}"))?;
        for ((w, &at), &len) in all.iter().zip(&starts).zip(&lens) {
            let Some(dst) = to.get_mut(at..at + len) else {
                return Ok(None);
            };
            w.write_into(dst)?;
        }
    }
    let Ok(map) = map.make_read_only() else {
        return Ok(None);
    };
    let map = Arc::new(map);
    Ok(Some(
        starts
            .into_iter()
            .zip(lens)
            .map(|(at, len)| Weights::Mapped {
                map: map.clone(),
                at,
                len,
            })
            .collect(),
    ))
}

/// Elsewhere the weights stay in their tensors.
#[cfg(not(target_os = "linux"))]
pub(crate) fn place(_: &[&Weights]) -> TractResult<Option<Vec<Weights>>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(values: usize, seed: f32) -> Weights {
        let v: Vec<f32> = (0..values).map(|i| seed + i as f32 * 0.5).collect();
        let t = Tensor::from_shape(&[values], &v).unwrap_or_else(|e| panic!("{e}"));
        Arc::new(t).into()
    }

    #[test]
    fn placed_weights_keep_their_values_each_from_a_cache_line() {
        // 5 MB in three ranges, two not a multiple of a cache line.
        let all = [weights(1_000_003, 1.0), weights(250_000, -3.0), weights(77, 9.0)];
        let refs: Vec<&Weights> = all.iter().collect();
        let placed = place(&refs).unwrap_or_else(|e| panic!("{e}"));
        if cfg!(not(target_os = "linux")) {
            assert!(placed.is_none());
            return;
        }
        let placed = placed.unwrap_or_else(|| panic!("5 MB of weights were not placed"));
        assert_eq!(placed.len(), all.len());
        for (p, w) in placed.iter().zip(&all) {
            assert!(p.tensor().is_none(), "{p:?} is still a tensor");
            let (p, w) = (p.as_slice().unwrap_or_default(), w.as_slice().unwrap_or_default());
            assert_eq!(p, w);
            assert_eq!(p.as_ptr() as usize % 64, 0, "a range starts inside a cache line");
        }
        // The same operator wherever its weights live: tract compares and
        // hashes operators.
        let hash = |w: &Weights| {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default().hash_one(w)
        };
        assert!(placed[0] == all[0] && all[1] == placed[1]);
        assert!(placed[0] != placed[1] && placed[2] != all[0]);
        assert_eq!(hash(&placed[1]), hash(&all[1]));
    }

    #[test]
    fn a_head_is_placed_once_for_every_plan_made_from_its_constant() {
        let tensor = |values: usize, seed: f32| {
            let v: Vec<f32> = (0..values).map(|i| seed - i as f32).collect();
            Arc::new(Tensor::from_shape(&[values], &v).unwrap_or_else(|e| panic!("{e}")))
        };
        let heads = Heads::default();
        let (from, other) = (tensor(1_280_000, 2.0), tensor(1_280_000, 5.0));
        let place = |from: &Arc<Tensor>, rows: Arc<Tensor>| {
            let w = heads.place(from, rows).unwrap_or_else(|e| panic!("{e}"));
            w.as_slice().unwrap_or_default().as_ptr()
        };
        // Each plan's rows are a new tensor (a transposed matrix is), of
        // the same values.
        let first = place(&from, tensor(1_280_000, 2.0));
        let again = place(&from, tensor(1_280_000, 2.0));
        let apart = place(&other, tensor(1_280_000, 5.0));
        if cfg!(target_os = "linux") {
            assert_eq!(first, again, "a second plan placed its head again");
            assert_ne!(first, apart, "another constant took the first's mapping");
            // Found by the constant, whatever rows come with it.
            let placed = heads.place(&other, tensor(3, 0.0));
            let placed = placed.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(placed.as_slice().unwrap_or_default().first(), Some(&5.0));
        }
        // Too few to place: the rows as they came.
        let small = tensor(1000, 1.0);
        let kept = heads.place(&small, small.clone());
        let kept = kept.unwrap_or_else(|e| panic!("{e}"));
        let view = small.try_as_plain_ram().unwrap_or_else(|e| panic!("{e}"));
        let small_at = view.as_slice::<f32>().unwrap_or_default().as_ptr();
        assert_eq!(kept.as_slice().unwrap_or_default().as_ptr(), small_at);
    }

    #[test]
    fn a_few_weights_stay_in_their_tensors() {
        let all = [weights(1_000_000, 1.0)];
        let refs: Vec<&Weights> = all.iter().collect();
        assert!(place(&refs).unwrap_or_else(|e| panic!("{e}")).is_none());
    }
}
