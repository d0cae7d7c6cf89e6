//! The registry of the ops the GPU runs: each ONNX op's name and its
//! lowering into program steps. It is both the supported-op list (an op not
//! here is refused at load unless the analysis folds it away) and the
//! dispatch, so the two cannot drift apart. Lowerings live by family.

mod conv;
mod dense;
mod elementwise;
mod quant;
mod reduce;
mod shape;

use super::attrs::{attr_f, attr_s};
use super::{Act, BinOp, Planner};
use edgeserve_engine::EngineError;
use tract_onnx::pb::NodeProto;

/// Lowers one node whose output is named `out` into the planner's steps.
pub(super) type Lower = fn(&mut Planner<'_>, &NodeProto, &str) -> Result<(), EngineError>;

const OPS: &[(&str, Lower)] = &[
    ("Conv", |p, n, o| p.conv(n, o)),
    ("Gemm", |p, n, o| p.gemm(n, o)),
    ("MatMul", |p, n, o| p.matmul(n, o)),
    ("Add", |p, n, o| p.binary(n, o, BinOp::Add)),
    ("Sub", |p, n, o| p.binary(n, o, BinOp::Sub)),
    ("Mul", |p, n, o| p.binary(n, o, BinOp::Mul)),
    ("Div", |p, n, o| p.binary(n, o, BinOp::Div)),
    ("Clip", |p, n, o| p.clip(n, o)),
    ("Relu", |p, n, o| p.act(n, o, Act::Relu)),
    ("LeakyRelu", |p, n, o| {
        p.act(n, o, Act::LeakyRelu(attr_f(n, "alpha", 0.01)))
    }),
    ("Sigmoid", |p, n, o| p.act(n, o, Act::Sigmoid)),
    ("HardSigmoid", |p, n, o| {
        p.act(
            n,
            o,
            Act::HardSigmoid(attr_f(n, "alpha", 0.2), attr_f(n, "beta", 0.5)),
        )
    }),
    ("HardSwish", |p, n, o| p.act(n, o, Act::HardSwish)),
    ("Tanh", |p, n, o| p.act(n, o, Act::Tanh)),
    ("Erf", |p, n, o| p.act(n, o, Act::Erf)),
    ("Gelu", |p, n, o| {
        let tanh = attr_s(n, "approximate").is_some_and(|a| a == "tanh");
        p.act(n, o, Act::Gelu(tanh))
    }),
    ("Sqrt", |p, n, o| p.act(n, o, Act::Sqrt)),
    ("Reciprocal", |p, n, o| p.act(n, o, Act::Reciprocal)),
    ("Exp", |p, n, o| p.act(n, o, Act::Exp)),
    ("Neg", |p, n, o| p.act(n, o, Act::Neg)),
    ("Abs", |p, n, o| p.act(n, o, Act::Abs)),
    ("Pow", |p, n, o| p.pow(n, o)),
    ("LayerNormalization", |p, n, o| p.layer_norm(n, o)),
    ("QuantizeLinear", |p, n, o| p.quantize(n, o)),
    ("DequantizeLinear", |p, n, o| p.dequantize(n, o)),
    ("DynamicQuantizeLinear", |p, n, o| p.dynamic_quantize(n, o)),
    ("ConvInteger", |p, n, o| p.conv_integer(n, o)),
    ("MatMulInteger", |p, n, o| p.matmul_integer(n, o)),
    ("Gather", |p, n, o| p.gather(n, o)),
    ("Slice", |p, n, o| p.slice(n, o)),
    ("Split", |p, n, o| p.split(n, o)),
    ("Expand", |p, n, o| p.expand(n, o)),
    ("MaxPool", |p, n, o| p.pool(n, o)),
    ("AveragePool", |p, n, o| p.pool(n, o)),
    ("GlobalAveragePool", |p, n, o| p.global_pool(n, o)),
    ("GlobalMaxPool", |p, n, o| p.global_pool(n, o)),
    ("BatchNormalization", |p, n, o| p.batch_norm(n, o)),
    ("Concat", |p, n, o| p.concat(n, o)),
    ("Reshape", |p, n, o| p.reshape(n, o)),
    ("Flatten", |p, n, o| p.reshape(n, o)),
    ("Transpose", |p, n, o| p.transpose(n, o)),
    ("Squeeze", |p, n, o| p.reshape(n, o)),
    ("Unsqueeze", |p, n, o| p.reshape(n, o)),
    ("Softmax", |p, n, o| p.softmax(n, o)),
    ("ReduceMean", |p, n, o| p.reduce_mean(n, o)),
    ("Pad", |p, n, o| p.pad(n, o)),
    ("Dropout", |p, n, _| p.alias(n)),
    ("Identity", |p, n, _| p.alias(n)),
    ("Cast", |p, n, _| p.cast(n)),
];

/// The lowering of `op`, if the GPU runs it.
pub(super) fn lowering(op: &str) -> Option<Lower> {
    OPS.iter().find(|(name, _)| *name == op).map(|(_, lower)| *lower)
}

/// Whether `op`'s lowering computes all of its outputs (the others compute
/// the first only).
pub(super) fn lowers_every_output(op: &str) -> bool {
    matches!(op, "DynamicQuantizeLinear" | "Split")
}

/// The ONNX ops with a GPU implementation; any other op must be folded away
/// (its output computable without the input) or the model is refused.
pub fn supported_ops() -> impl Iterator<Item = &'static str> {
    OPS.iter().map(|(name, _)| *name)
}
