//! When each GPU tensor can be freed: after the last step that reads it.

use super::{DynamicPart, Output, Src, Step};

/// After which step each slot is last read.
pub(super) fn frees(steps: &[Step], outputs: &[Output], slots: usize) -> Vec<Vec<usize>> {
    let mut last: Vec<Option<usize>> = vec![None; slots];
    for (i, step) in steps.iter().enumerate() {
        for s in step.reads() {
            last[s] = Some(i);
        }
    }
    for o in outputs {
        if let Output::Gpu { slot, .. } = o {
            last[*slot] = None;
        }
    }
    let mut frees = vec![Vec::new(); steps.len()];
    for (slot, at) in last.into_iter().enumerate() {
        if let Some(at) = at {
            frees[at].push(slot);
        }
    }
    frees
}

impl Step {
    /// The slots this step reads.
    pub fn reads(&self) -> Vec<usize> {
        let src = |s: &Src| match s {
            Src::Slot(x) => Some(*x),
            Src::Const(_) => None,
        };
        match self {
            Step::Conv { x, .. }
            | Step::Act { x, .. }
            | Step::MaxPool { x, .. }
            | Step::AvgPool { x, .. }
            | Step::GlobalPool { x, .. }
            | Step::Reshape { x, .. }
            | Step::Transpose { x, .. }
            | Step::Transpose6 { x, .. }
            | Step::Softmax { x, .. }
            | Step::ReduceMean { x, .. }
            | Step::Pad { x, .. }
            | Step::Affine { x, .. }
            | Step::Select { x, .. }
            | Step::Slice { x, .. } => vec![*x],
            Step::LayerNorm { x, scale, bias, .. } => [Some(*x), src(scale), bias.as_ref().and_then(src)]
                .into_iter()
                .flatten()
                .collect(),
            Step::Expand { x, .. } => src(x).into_iter().collect(),
            Step::Binary { a, b, .. } => [src(a), src(b)].into_iter().flatten().collect(),
            Step::MatMul { a, b, bias, .. } => [src(a), src(b), bias.as_ref().and_then(src)]
                .into_iter()
                .flatten()
                .collect(),
            Step::Concat { xs, .. } => xs.iter().filter_map(src).collect(),
            Step::DynamicQuantize { x, part, .. } => match part {
                DynamicPart::Values { scale, zero_point } => vec![*x, *scale, *zero_point],
                DynamicPart::ZeroPoint { scale } => vec![*x, *scale],
                DynamicPart::Scale => vec![*x],
            },
        }
    }
}
