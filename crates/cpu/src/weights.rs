//! Where the 1×1 kernels' packed weights live: natively on Linux, all of a
//! model's (from 4 MB) in one anonymous mapping, in the order the nodes
//! run, advised for transparent huge pages before it is written;
//! elsewhere, and whenever that fails, each in its own tensor.
//!
//! Why: the weights are read from memory in every inference (see
//! `crate::pointwise`'s `PREFETCH_PAIR_BYTES`), one pass over each
//! layer's, and in 4 KB pages that pass likely also walks the page tables
//! for each page (not isolated: this VM has no performance counters).
//! Lite0's 1×1 weights are 12.6 MB, 3,071 pages of 4 KB, and Lite2's 18.0
//! MB, 4,385 pages; Zen 4's L2 TLB holds 3,072. Fresh worker processes in
//! turn, one thread, medians of each process's runs, then the median of
//! those: Lite0 9.37 and 9.71 ms against 9.48 and 10.45 (two batches of
//! 8 and 12 processes each), Lite2 19.58 and 19.67 against 19.92 and
//! 20.39 (6 and 8); `benches/README.md` (2026-12-08) has every figure.
//! Costs: 3-4 ms more load, and 9 MB (Lite0) and 13 MB (Lite2) more
//! resident memory after 40-60 runs, as the allocator keeps what the
//! tensors held.
//!
//! A library cannot choose its host's allocator, but it can hold its own
//! weights in memory it maps itself, and `memmap2` gives the `madvise`
//! without `unsafe` here. Hosts whose transparent huge pages are `never`
//! ignore the advice; the values are the same either way.

use tract_onnx::prelude::{Arc, Tensor, TractResult};
#[cfg(target_os = "linux")]
use tract_onnx::tract_hir::internal::{bail, format_err};

/// One operator's weights: a tensor of its own, or a range of a model's
/// shared mapping ([`place`]).
#[derive(Clone)]
pub(crate) enum Weights {
    Tensor(Arc<Tensor>),
    #[cfg(target_os = "linux")]
    Mapped {
        map: Arc<memmap2::Mmap>,
        /// First value and number of values in `map`.
        at: usize,
        len: usize,
    },
}

impl Weights {
    /// The values, as `f32`.
    pub(crate) fn as_slice(&self) -> TractResult<&[f32]> {
        match self {
            Weights::Tensor(t) => Ok(t.try_as_plain_ram()?.as_slice::<f32>()?),
            #[cfg(target_os = "linux")]
            Weights::Mapped { map, at, len } => {
                let all: &[f32] = pulp::bytemuck::try_cast_slice(&map[..])
                    .map_err(|e| format_err!("mapped weights: {e:?}"))?;
                match all.get(*at..).and_then(|rest| rest.get(..*len)) {
                    Some(values) => Ok(values),
                    None => bail!("mapped weights: {len} values at {at} past {}", all.len()),
                }
            }
        }
    }

    /// The values as a tensor's, when they are one (not yet placed).
    #[cfg(test)]
    fn tensor(&self) -> Option<&Arc<Tensor>> {
        match self {
            Weights::Tensor(t) => Some(t),
            #[cfg(target_os = "linux")]
            Weights::Mapped { .. } => None,
        }
    }

    /// The bit patterns, for `Hash` and `Eq`: the same values wherever
    /// they live.
    fn bits(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_slice().unwrap_or_default().iter().map(|v| v.to_bits())
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
            #[cfg(target_os = "linux")]
            Weights::Mapped { at, len, .. } => write!(f, "{len} mapped values from {at}"),
        }
    }
}

impl PartialEq for Weights {
    fn eq(&self, other: &Weights) -> bool {
        self.bits().eq(other.bits())
    }
}

impl Eq for Weights {}

impl std::hash::Hash for Weights {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bits().for_each(|b| b.hash(state));
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

/// Copies `all` into one mapping advised for huge pages and returns the
/// same weights in it, in order; `None` where the weights are too few or
/// the mapping failed, so that they stay where they are.
#[cfg(target_os = "linux")]
pub(crate) fn place(all: &[&Weights]) -> TractResult<Option<Vec<Weights>>> {
    let mut starts = Vec::with_capacity(all.len());
    let mut values = 0usize;
    for w in all {
        starts.push(values);
        values += w.as_slice()?.len().next_multiple_of(ALIGN_VALUES);
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
            .map_err(|e| format_err!("mapped weights: {e:?}"))?;
        for (w, &at) in all.iter().zip(&starts) {
            let from = w.as_slice()?;
            let Some(dst) = to.get_mut(at..at + from.len()) else {
                return Ok(None);
            };
            dst.copy_from_slice(from);
        }
    }
    let Ok(map) = map.make_read_only() else {
        return Ok(None);
    };
    let map = Arc::new(map);
    Ok(Some(
        all.iter()
            .zip(starts)
            .map(|(w, at)| Weights::Mapped {
                map: map.clone(),
                at,
                len: w.as_slice().map_or(0, <[f32]>::len),
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
    fn a_few_weights_stay_in_their_tensors() {
        let all = [weights(1_000_000, 1.0)];
        let refs: Vec<&Weights> = all.iter().collect();
        assert!(place(&refs).unwrap_or_else(|e| panic!("{e}")).is_none());
    }
}
