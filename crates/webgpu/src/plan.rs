//! From an ONNX graph to a list of burn operations with every shape known.
//!
//! Why the ONNX protobuf plus tract's analysis, rather than either alone:
//! the op semantics come straight from ONNX (the node's `op_type` and
//! attributes, so each step is the ONNX op as its spec says, not tract's
//! rewritten form, which drops the batch axis and turns 1×1 convolutions
//! into einsums), while tract's type and shape inference, which the CPU
//! backend already depends on, gives every tensor's concrete shape for a
//! batch size and the value of every tensor computable without the input.
//! The latter is what "constant-folded shape ops" means here: a `Shape →
//! Gather → Concat → Reshape` chain never reaches the GPU, whatever ops it
//! uses.
//!
//! Every GPU tensor is held at rank 4, its logical shape aligned to the
//! right behind leading 1s: ONNX broadcasting aligns shapes on the right
//! too, so element-wise ops broadcast unchanged, and burn's rank is a type
//! parameter. Models with tensors of rank 5 or more are refused by name.

use crate::device::Limits;
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use edgeserve_engine::{BackendKind, EngineError};
use std::collections::HashMap;
use std::sync::Arc;
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto};
use tract_onnx::prelude::{
    Datum, DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, OutletId, TDim,
    Tensor as Host, TractResult,
};
use tract_onnx::tract_hir::infer::Factoid;

/// The rank every GPU tensor is stored at.
pub(crate) const RANK: usize = 4;

/// A GPU tensor's place in the plan's slot table, with its logical shape.
#[derive(Debug, Clone)]
struct Gv {
    slot: usize,
    shape: Vec<usize>,
}

#[derive(Clone)]
enum Value {
    Const(Arc<Host>),
    Gpu(Gv),
}

/// An operand: a tensor computed by an earlier step, or a constant uploaded
/// once at load.
// burn's tensor handle is 256 bytes; plans are built once per batch size
// and steps sit in a Vec, so boxing would only add indirection per run.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Src {
    Slot(usize),
    Const(Tensor<RANK>),
}

/// Element-wise activations, also fused into the convolution before them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Act {
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    HardSigmoid(f32, f32),
    HardSwish,
    Tanh,
    Clip(Option<f32>, Option<f32>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// One operation of the plan. `out` is the slot it writes.
#[allow(clippy::large_enum_variant)] // see `Src`
pub(crate) enum Step {
    Conv {
        x: usize,
        w: Tensor<RANK>,
        b: Option<Tensor<1>>,
        opts: ConvOptions<2>,
        act: Option<Act>,
        out: usize,
    },
    Binary {
        op: BinOp,
        a: Src,
        b: Src,
        out: usize,
    },
    Act {
        x: usize,
        act: Act,
        out: usize,
    },
    MaxPool {
        x: usize,
        opts: MaxPoolOptions<2>,
        out: usize,
    },
    AvgPool {
        x: usize,
        opts: AvgPoolOptions<2>,
        out: usize,
    },
    GlobalPool {
        x: usize,
        max: bool,
        out: usize,
    },
    MatMul {
        a: Src,
        b: Src,
        bias: Option<Src>,
        shape: [usize; RANK],
        out: usize,
    },
    Reshape {
        x: usize,
        shape: [usize; RANK],
        out: usize,
    },
    Transpose {
        x: usize,
        perm: [usize; RANK],
        out: usize,
    },
    Concat {
        xs: Vec<Src>,
        axis: usize,
        out: usize,
    },
    Softmax {
        x: usize,
        /// The shape to softmax over the last axis of, for opset < 13's
        /// "flatten at `axis`" form.
        flat: Option<[usize; RANK]>,
        axis: usize,
        shape: [usize; RANK],
        out: usize,
    },
    ReduceMean {
        x: usize,
        axes: Vec<usize>,
        shape: [usize; RANK],
        out: usize,
    },
    Pad {
        x: usize,
        pads: [(usize, usize); RANK],
        value: f32,
        out: usize,
    },
    Affine {
        x: usize,
        scale: Tensor<RANK>,
        shift: Tensor<RANK>,
        out: usize,
    },
}

/// What a graph output is in the plan.
pub(crate) enum Output {
    Gpu { slot: usize, shape: Vec<usize> },
    Const(Arc<Host>),
}

/// A plan for one batch size.
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    /// Per graph input: its slot and its rank-4 shape.
    pub inputs: Vec<(usize, [usize; RANK])>,
    pub outputs: Vec<Output>,
    pub slots: usize,
    /// Slots no later step reads, to release after step `i`.
    pub frees: Vec<Vec<usize>>,
    /// The largest tensor, in bytes, and its name.
    pub largest: (u64, String),
}

/// Weights uploaded once per engine and shared by the plans of every batch
/// size, by node name and role.
#[derive(Default)]
pub(crate) struct Weights {
    four: HashMap<String, Tensor<RANK>>,
    one: HashMap<String, Tensor<1>>,
    pub bytes: u64,
}

/// The ONNX ops with a GPU implementation; any other op must be folded away
/// (its output computable without the input) or the model is refused.
pub const GPU_OPS: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Clip",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "Concat",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Softmax",
    "ReduceMean",
    "Pad",
    "Dropout",
    "Identity",
    "Cast",
];

/// The parsed model, kept to plan other batch sizes on demand.
pub(crate) struct Graph {
    pub graph: GraphProto,
    pub opset: i64,
    pub inference: InferenceModel,
    /// Graph inputs that are not initializers, in order.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

pub(crate) fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidModel(msg.into())
}

fn unsupported(node: &NodeProto, what: impl std::fmt::Display) -> EngineError {
    EngineError::UnsupportedOp {
        op: format!("{} ({what})", node.op_type),
        node: node.name.clone(),
        backend: BackendKind::Webgpu,
    }
}

fn tract_msg(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

/// Right-aligns a logical shape of rank ≤ 4 behind leading 1s.
pub(crate) fn pad4(shape: &[usize]) -> Option<[usize; RANK]> {
    let lead = RANK.checked_sub(shape.len())?;
    let mut out = [1; RANK];
    out[lead..].copy_from_slice(shape);
    Some(out)
}

/// A possibly negative ONNX axis of a rank-`rank` tensor, as an axis of
/// the rank-4 storage.
fn axis4(node: &NodeProto, axis: i64, rank: usize) -> Result<usize, EngineError> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(invalid(format!(
            "node {:?} ({}): axis {axis} is out of range for rank {rank}",
            node.name, node.op_type
        )));
    }
    Ok((axis.rem_euclid(r) as usize) + (RANK - rank))
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

impl Graph {
    pub fn parse(proto: tract_onnx::pb::ModelProto) -> Result<Graph, EngineError> {
        let onnx = tract_onnx::onnx();
        let opset = proto
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map_or(1, |o| o.version);
        let graph = proto
            .graph
            .clone()
            .ok_or_else(|| invalid("the ONNX model has no graph"))?;
        if let Some(node) = graph
            .node
            .iter()
            .find(|n| !n.domain.is_empty() && n.domain != "ai.onnx")
        {
            return Err(unsupported(node, format!("domain {}", node.domain)));
        }
        let inference = onnx
            .model_for_proto_model(&proto)
            .map_err(|e| invalid(format!("reading the ONNX graph: {}", tract_msg(e))))?;
        let initializers: std::collections::HashSet<&str> =
            graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .map(|i| i.name.clone())
            .filter(|n| !initializers.contains(n.as_str()))
            .collect();
        let outputs = graph.output.iter().map(|o| o.name.clone()).collect();
        Ok(Graph {
            graph,
            opset,
            inference,
            inputs,
            outputs,
        })
    }

    /// Type and shape inference with input 0's first dimension set to
    /// `batch` (or as the model has it).
    fn analyse(&self, batch: Option<usize>) -> TractResult<InferenceModel> {
        let mut model = self.inference.clone();
        if let Some(batch) = batch {
            for ix in 0..model.inputs.len() {
                let fact = model.input_fact(ix)?.clone();
                let Some(dims) = fact.shape.concretize() else {
                    continue;
                };
                let mut shape: Vec<TDim> = dims.to_vec();
                if let Some(first) = shape.first_mut() {
                    *first = batch.into();
                }
                let dt = fact.datum_type.concretize().unwrap_or(DatumType::F32);
                model.set_input_fact(ix, InferenceFact::dt_shape(dt, shape))?;
            }
        }
        model.analyse(false)?;
        Ok(model)
    }

    /// Plans the graph for one batch size, uploading weights not already
    /// in `weights`.
    pub fn plan(
        &self,
        batch: Option<usize>,
        device: &Device,
        weights: &mut Weights,
        limits: &Limits,
    ) -> Result<Plan, EngineError> {
        let model = self
            .analyse(batch)
            .map_err(|e| invalid(format!("type and shape inference: {}", tract_msg(e))))?;
        let mut labels: HashMap<&str, OutletId> = HashMap::new();
        for node in model.nodes() {
            for slot in 0..node.outputs.len() {
                let outlet = OutletId::new(node.id, slot);
                if let Some(label) = model.outlet_label(outlet) {
                    labels.insert(label, outlet);
                }
            }
            labels
                .entry(node.name.as_str())
                .or_insert(OutletId::new(node.id, 0));
        }
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for node in &self.graph.node {
            for i in node.input.iter().filter(|i| !i.is_empty()) {
                *uses.entry(i.as_str()).or_default() += 1;
            }
        }
        for o in &self.outputs {
            *uses.entry(o.as_str()).or_default() += 1;
        }
        let mut p = Planner {
            model: &model,
            labels,
            uses,
            graph_outputs: &self.outputs,
            opset: self.opset,
            device,
            weights,
            values: HashMap::new(),
            steps: Vec::new(),
            producer: HashMap::new(),
            slots: 0,
            largest: (0, String::new()),
        };
        let mut inputs = Vec::new();
        for name in &self.inputs {
            let shape = p.shape_of(name)?;
            let padded = pad4(&shape).ok_or_else(|| rank_error("input", name, &shape))?;
            let gv = p.new_gv(name, shape)?;
            inputs.push((gv.slot, padded));
            p.values.insert(name.clone(), Value::Gpu(gv));
        }
        for node in &self.graph.node {
            p.node(node)?;
        }
        let mut outputs = Vec::new();
        for name in &self.outputs {
            outputs.push(match p.value(name)? {
                Value::Gpu(gv) => Output::Gpu {
                    slot: gv.slot,
                    shape: gv.shape,
                },
                Value::Const(t) => Output::Const(t),
            });
        }
        let Planner {
            steps,
            slots,
            largest,
            ..
        } = p;
        if largest.0 > limits.max_tensor_bytes() {
            return Err(EngineError::Unavailable {
                backend: BackendKind::Webgpu,
                reason: format!(
                    "tensor {:?} needs {} bytes, over the adapter's limit of {} bytes \
                     (maxStorageBufferBindingSize {}, maxBufferSize {})",
                    largest.1,
                    largest.0,
                    limits.max_tensor_bytes(),
                    limits.max_storage_buffer_binding_size,
                    limits.max_buffer_size
                ),
            });
        }
        let frees = frees(&steps, &outputs, slots);
        Ok(Plan {
            steps,
            inputs,
            outputs,
            slots,
            frees,
            largest,
        })
    }
}

fn rank_error(what: &str, name: &str, shape: &[usize]) -> EngineError {
    EngineError::UnsupportedOp {
        op: format!("a rank-{} {what}", shape.len()),
        node: name.to_owned(),
        backend: BackendKind::Webgpu,
    }
}

/// After which step each slot is last read.
fn frees(steps: &[Step], outputs: &[Output], slots: usize) -> Vec<Vec<usize>> {
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
            | Step::Softmax { x, .. }
            | Step::ReduceMean { x, .. }
            | Step::Pad { x, .. }
            | Step::Affine { x, .. } => vec![*x],
            Step::Binary { a, b, .. } => [src(a), src(b)].into_iter().flatten().collect(),
            Step::MatMul { a, b, bias, .. } => [src(a), src(b), bias.as_ref().and_then(src)]
                .into_iter()
                .flatten()
                .collect(),
            Step::Concat { xs, .. } => xs.iter().filter_map(src).collect(),
        }
    }
}

struct Planner<'a> {
    model: &'a InferenceModel,
    labels: HashMap<&'a str, OutletId>,
    uses: HashMap<&'a str, usize>,
    graph_outputs: &'a [String],
    opset: i64,
    device: &'a Device,
    weights: &'a mut Weights,
    values: HashMap<String, Value>,
    steps: Vec<Step>,
    /// Which step wrote a slot.
    producer: HashMap<usize, usize>,
    slots: usize,
    largest: (u64, String),
}

/// A host tensor's values as `T` (constants folded by the analysis, and
/// outputs that do not depend on the input).
pub(crate) fn host_values<T: Datum + Copy>(t: &Host) -> Result<Vec<T>, String> {
    let t = t.cast_to::<T>().map_err(tract_msg)?;
    Ok(t.to_plain_array_view::<T>()
        .map_err(tract_msg)?
        .iter()
        .copied()
        .collect())
}

/// [`host_values`] as f32.
pub(crate) fn floats(t: &Host) -> Result<Vec<f32>, String> {
    host_values(t)
}

impl<'a> Planner<'a> {
    fn fact(&self, name: &str) -> Result<&InferenceFact, EngineError> {
        let outlet = self
            .labels
            .get(name)
            .ok_or_else(|| invalid(format!("tensor {name:?} is used but never defined")))?;
        self.model
            .outlet_fact(*outlet)
            .map_err(|e| invalid(format!("tensor {name:?}: {}", tract_msg(e))))
    }

    fn shape_of(&self, name: &str) -> Result<Vec<usize>, EngineError> {
        self.fact(name)?
            .shape
            .as_concrete_finite()
            .ok()
            .flatten()
            .map(|s| s.to_vec())
            .ok_or_else(|| invalid(format!("the shape of tensor {name:?} could not be inferred")))
    }

    fn constant(&self, name: &str) -> Option<Arc<Host>> {
        self.fact(name).ok().and_then(|f| f.value.concretize())
    }

    fn value(&self, name: &str) -> Result<Value, EngineError> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        self.constant(name)
            .map(Value::Const)
            .ok_or_else(|| invalid(format!("tensor {name:?} is read before it is computed")))
    }

    fn new_gv(&mut self, name: &str, shape: Vec<usize>) -> Result<Gv, EngineError> {
        let bytes = shape.iter().product::<usize>() as u64 * 4;
        if bytes > self.largest.0 {
            self.largest = (bytes, name.to_owned());
        }
        let slot = self.slots;
        self.slots += 1;
        Ok(Gv { slot, shape })
    }

    fn push(
        &mut self,
        node: &NodeProto,
        name: &str,
        step: impl FnOnce(usize) -> Step,
    ) -> Result<(), EngineError> {
        let shape = self.shape_of(name)?;
        if shape.len() > RANK {
            return Err(unsupported(node, format!("output of rank {}", shape.len())));
        }
        let gv = self.new_gv(name, shape)?;
        let step = step(gv.slot);
        self.producer.insert(gv.slot, self.steps.len());
        self.steps.push(step);
        self.values.insert(name.to_owned(), Value::Gpu(gv));
        Ok(())
    }

    fn upload4(&mut self, key: String, shape: [usize; RANK], data: Vec<f32>) -> Tensor<RANK> {
        if let Some(t) = self.weights.four.get(&key) {
            return t.clone();
        }
        let bytes = data.len() as u64 * 4;
        self.weights.bytes += bytes;
        if bytes > self.largest.0 {
            self.largest = (bytes, key.clone());
        }
        let t = Tensor::<RANK>::from_data(TensorData::new(data, shape), self.device);
        self.weights.four.insert(key, t.clone());
        t
    }

    fn upload1(&mut self, key: String, data: Vec<f32>) -> Tensor<1> {
        if let Some(t) = self.weights.one.get(&key) {
            return t.clone();
        }
        self.weights.bytes += data.len() as u64 * 4;
        let n = data.len();
        let t = Tensor::<1>::from_data(TensorData::new(data, [n]), self.device);
        self.weights.one.insert(key, t.clone());
        t
    }

    /// An operand for an element-wise op or a concatenation.
    fn src(&mut self, node: &NodeProto, name: &str) -> Result<(Src, Vec<usize>), EngineError> {
        match self.value(name)? {
            Value::Gpu(gv) => Ok((Src::Slot(gv.slot), gv.shape)),
            Value::Const(t) => {
                let shape = t.shape().to_vec();
                let padded = pad4(&shape)
                    .ok_or_else(|| unsupported(node, format!("a rank-{} constant", shape.len())))?;
                let data = floats(&t)
                    .map_err(|e| invalid(format!("node {:?}: constant {name:?}: {e}", node.name)))?;
                Ok((
                    Src::Const(self.upload4(format!("{}:{name}", node.name), padded, data)),
                    shape,
                ))
            }
        }
    }

    fn gpu_input(&self, node: &NodeProto, ix: usize) -> Result<Gv, EngineError> {
        let name = node.input.get(ix).filter(|n| !n.is_empty()).ok_or_else(|| {
            invalid(format!(
                "node {:?} ({}) lacks input {ix}",
                node.name, node.op_type
            ))
        })?;
        match self.value(name)? {
            Value::Gpu(gv) => Ok(gv),
            Value::Const(_) => Err(invalid(format!(
                "node {:?} ({}): input {name:?} is constant where a computed tensor was expected",
                node.name, node.op_type
            ))),
        }
    }

    fn const_input(&self, node: &NodeProto, ix: usize) -> Result<Option<Arc<Host>>, EngineError> {
        let Some(name) = node.input.get(ix).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match self.value(name)? {
            Value::Const(t) => Ok(Some(t)),
            Value::Gpu(_) => Err(unsupported(
                node,
                format!("input {name:?} computed at run time, where a constant is needed"),
            )),
        }
    }

    fn output_name<'n>(&self, node: &'n NodeProto) -> Result<&'n str, EngineError> {
        node.output
            .first()
            .map(String::as_str)
            .ok_or_else(|| invalid(format!("node {:?} ({}) has no output", node.name, node.op_type)))
    }

    fn alias(&mut self, node: &NodeProto) -> Result<(), EngineError> {
        let v = self.value(node.input.first().map_or("", String::as_str))?;
        let out = self.output_name(node)?.to_owned();
        self.values.insert(out, v);
        Ok(())
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), EngineError> {
        let outputs: Vec<&String> = node.output.iter().filter(|o| !o.is_empty()).collect();
        if !outputs.is_empty() && outputs.iter().all(|o| self.constant(o).is_some()) {
            return Ok(());
        }
        let op = node.op_type.as_str();
        if !GPU_OPS.contains(&op) {
            return Err(unsupported(
                node,
                "no WebGPU kernel, and its output depends on the input",
            ));
        }
        // Outputs beyond the first (Dropout's mask, MaxPool's indices) have
        // no kernel here; refuse them only when something reads them.
        if let Some(extra) = node
            .output
            .iter()
            .skip(1)
            .find(|o| !o.is_empty() && self.uses.contains_key(o.as_str()))
        {
            return Err(unsupported(node, format!("second output {extra:?}")));
        }
        let out = self.output_name(node)?.to_owned();
        match op {
            "Identity" | "Dropout" => self.alias(node),
            "Cast" => {
                let to = attr_i(node, "to", 1);
                // FLOAT or FLOAT16: GPU tensors are f32 (fp16 weights are
                // widened at load, as the CPU backend does).
                if to == 1 || to == 10 {
                    self.alias(node)
                } else {
                    Err(unsupported(
                        node,
                        format!("cast of a computed tensor to ONNX type {to}"),
                    ))
                }
            }
            "Conv" => self.conv(node, &out),
            "Relu" => self.act(node, &out, Act::Relu),
            "LeakyRelu" => self.act(node, &out, Act::LeakyRelu(attr_f(node, "alpha", 0.01))),
            "Sigmoid" => self.act(node, &out, Act::Sigmoid),
            "HardSigmoid" => self.act(
                node,
                &out,
                Act::HardSigmoid(attr_f(node, "alpha", 0.2), attr_f(node, "beta", 0.5)),
            ),
            "HardSwish" => self.act(node, &out, Act::HardSwish),
            "Tanh" => self.act(node, &out, Act::Tanh),
            "Clip" => {
                let (min, max) = if self.opset < 11 {
                    (attr(node, "min").map(|a| a.f), attr(node, "max").map(|a| a.f))
                } else {
                    let bound = |ix| -> Result<Option<f32>, EngineError> {
                        self.const_input(node, ix)?
                            .map(|t| {
                                floats(&t).ok().and_then(|v| v.first().copied()).ok_or_else(|| {
                                    invalid(format!("node {:?}: Clip bound is not a scalar", node.name))
                                })
                            })
                            .transpose()
                    };
                    (bound(1)?, bound(2)?)
                };
                self.act(node, &out, Act::Clip(min, max))
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let op = match op {
                    "Add" => BinOp::Add,
                    "Sub" => BinOp::Sub,
                    "Mul" => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let (a, _) = self.src(node, &node.input[0])?;
                let (b, _) = self.src(node, node.input.get(1).map_or("", String::as_str))?;
                self.push(node, &out, |out| Step::Binary { op, a, b, out })
            }
            "MaxPool" | "AveragePool" => self.pool(node, &out),
            "GlobalAveragePool" | "GlobalMaxPool" => {
                let x = self.gpu_input(node, 0)?;
                if x.shape.len() != 4 {
                    return Err(unsupported(node, format!("rank-{} input", x.shape.len())));
                }
                let max = op == "GlobalMaxPool";
                self.push(node, &out, |out| Step::GlobalPool { x: x.slot, max, out })
            }
            "BatchNormalization" => self.batch_norm(node, &out),
            "Gemm" => self.gemm(node, &out),
            "MatMul" => self.matmul(node, &out),
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => {
                let x = self.gpu_input(node, 0)?;
                let shape = self.shape_of(&out)?;
                let shape = pad4(&shape)
                    .ok_or_else(|| unsupported(node, format!("output of rank {}", shape.len())))?;
                self.push(node, &out, |out| Step::Reshape {
                    x: x.slot,
                    shape,
                    out,
                })
            }
            "Transpose" => {
                let x = self.gpu_input(node, 0)?;
                let r = x.shape.len();
                let perm = attr_ints(node, "perm").unwrap_or_else(|| (0..r as i64).rev().collect());
                if perm.len() != r {
                    return Err(invalid(format!(
                        "node {:?}: perm has {} axes for a rank-{r} input",
                        node.name,
                        perm.len()
                    )));
                }
                let lead = RANK - r;
                let mut full = [0, 1, 2, 3];
                for (i, p) in perm.iter().enumerate() {
                    full[lead + i] = axis4(node, *p, r)?;
                }
                self.push(node, &out, |out| Step::Transpose {
                    x: x.slot,
                    perm: full,
                    out,
                })
            }
            "Concat" => {
                let rank = self.shape_of(&out)?.len();
                let axis = axis4(node, attr_i(node, "axis", 0), rank)?;
                let mut xs = Vec::new();
                for name in node.input.iter().filter(|n| !n.is_empty()) {
                    xs.push(self.src(node, name)?.0);
                }
                self.push(node, &out, |out| Step::Concat { xs, axis, out })
            }
            "Softmax" => {
                let x = self.gpu_input(node, 0)?;
                let r = x.shape.len();
                let shape = pad4(&x.shape).ok_or_else(|| unsupported(node, "rank > 4"))?;
                let default = if self.opset < 13 { 1 } else { -1 };
                let axis = axis4(node, attr_i(node, "axis", default), r)?;
                let flat = (self.opset < 13 && axis != RANK - 1).then(|| {
                    let outer: usize = shape[..axis].iter().product();
                    let inner: usize = shape[axis..].iter().product();
                    [1, 1, outer, inner]
                });
                let axis = if flat.is_some() { RANK - 1 } else { axis };
                self.push(node, &out, |out| Step::Softmax {
                    x: x.slot,
                    flat,
                    axis,
                    shape,
                    out,
                })
            }
            "ReduceMean" => {
                let x = self.gpu_input(node, 0)?;
                let r = x.shape.len();
                let axes = if self.opset >= 18 {
                    self.const_input(node, 1)?
                        .map(|t| host_values::<i64>(&t))
                        .transpose()
                        .map_err(invalid)?
                } else {
                    attr_ints(node, "axes")
                };
                let axes = match axes.filter(|a| !a.is_empty()) {
                    Some(a) => a
                        .iter()
                        .map(|a| axis4(node, *a, r))
                        .collect::<Result<Vec<_>, _>>()?,
                    None if attr_i(node, "noop_with_empty_axes", 0) == 1 => return self.alias(node),
                    None => (RANK - r..RANK).collect(),
                };
                let shape = self.shape_of(&out)?;
                let shape = pad4(&shape).ok_or_else(|| unsupported(node, "rank > 4"))?;
                self.push(node, &out, |out| Step::ReduceMean {
                    x: x.slot,
                    axes,
                    shape,
                    out,
                })
            }
            "Pad" => self.pad(node, &out),
            other => Err(unsupported(node, format!("{other} is listed but not planned"))),
        }
    }

    fn act(&mut self, node: &NodeProto, out: &str, act: Act) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let input = node.input[0].as_str();
        // Fuse into the convolution that produced the input when nothing
        // else reads the convolution's output.
        let fusable = self.uses.get(input) == Some(&1) && !self.graph_outputs.iter().any(|o| o == input);
        if fusable
            && let Some(&at) = self.producer.get(&x.slot)
            && let Some(Step::Conv {
                act: slot_act @ None, ..
            }) = self.steps.get_mut(at)
        {
            *slot_act = Some(act);
            self.values.insert(out.to_owned(), Value::Gpu(x));
            return Ok(());
        }
        self.push(node, out, |o| Step::Act {
            x: x.slot,
            act,
            out: o,
        })
    }

    /// Explicit `(begin, end)` padding per spatial axis from `pads` or
    /// `auto_pad`.
    fn spatial_pads(
        &self,
        node: &NodeProto,
        input: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
    ) -> Result<[(usize, usize); 2], EngineError> {
        let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        match auto.as_str() {
            "NOTSET" => {
                let pads = attr_ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
                if pads.len() != 4 || pads.iter().any(|p| *p < 0) {
                    return Err(unsupported(node, format!("pads {pads:?}")));
                }
                Ok([
                    (pads[0] as usize, pads[2] as usize),
                    (pads[1] as usize, pads[3] as usize),
                ])
            }
            "VALID" => Ok([(0, 0), (0, 0)]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut out = [(0, 0); 2];
                for i in 0..2 {
                    let size = input[2 + i];
                    let o = size.div_ceil(stride[i]);
                    let needed = (o.saturating_sub(1)) * stride[i] + (kernel[i] - 1) * dilation[i] + 1;
                    let total = needed.saturating_sub(size);
                    let small = total / 2;
                    out[i] = if auto == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                }
                Ok(out)
            }
            other => Err(unsupported(node, format!("auto_pad {other}"))),
        }
    }

    fn pair(node: &NodeProto, name: &str, default: usize) -> Result<[usize; 2], EngineError> {
        match attr_ints(node, name) {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|x| *x > 0) => Ok([v[0] as usize, v[1] as usize]),
            Some(v) => Err(unsupported(
                node,
                format!("{name} {v:?} (2-D, positive, expected)"),
            )),
        }
    }

    fn conv(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        if x.shape.len() != 4 {
            return Err(unsupported(
                node,
                format!("{}-D convolution", x.shape.len().saturating_sub(2)),
            ));
        }
        let w = self
            .const_input(node, 1)?
            .ok_or_else(|| invalid(format!("node {:?}: Conv without weights", node.name)))?;
        let ws = w.shape().to_vec();
        if ws.len() != 4 {
            return Err(invalid(format!(
                "node {:?}: Conv weights of shape {ws:?}",
                node.name
            )));
        }
        let groups = usize::try_from(attr_i(node, "group", 1)).unwrap_or(0);
        if groups == 0 || x.shape[1] != ws[1] * groups || ws[0] % groups != 0 {
            return Err(invalid(format!(
                "node {:?}: Conv input has {} channels, weights {ws:?} with group {groups}",
                node.name, x.shape[1]
            )));
        }
        let stride = Self::pair(node, "strides", 1)?;
        let dilation = Self::pair(node, "dilations", 1)?;
        let padding = self.spatial_pads(node, &x.shape, [ws[2], ws[3]], stride, dilation)?;
        let wdata = floats(&w).map_err(invalid)?;
        let wt = self.upload4(format!("{}:W", node.name), [ws[0], ws[1], ws[2], ws[3]], wdata);
        let b = match self.const_input(node, 2)? {
            Some(b) => {
                let data = floats(&b).map_err(invalid)?;
                if data.len() != ws[0] {
                    return Err(invalid(format!(
                        "node {:?}: Conv bias has {} values for {} filters",
                        node.name,
                        data.len(),
                        ws[0]
                    )));
                }
                Some(self.upload1(format!("{}:B", node.name), data))
            }
            None => None,
        };
        let opts = ConvOptions {
            stride,
            padding,
            dilation,
            groups,
        };
        self.push(node, out, |out| Step::Conv {
            x: x.slot,
            w: wt,
            b,
            opts,
            act: None,
            out,
        })
    }

    fn pool(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        if x.shape.len() != 4 {
            return Err(unsupported(
                node,
                format!("{}-D pooling", x.shape.len().saturating_sub(2)),
            ));
        }
        let kernel = Self::pair(node, "kernel_shape", 0)?;
        if kernel.contains(&0) {
            return Err(invalid(format!(
                "node {:?}: {} needs kernel_shape",
                node.name, node.op_type
            )));
        }
        let stride = Self::pair(node, "strides", 1)?;
        let dilation = Self::pair(node, "dilations", 1)?;
        let padding = self.spatial_pads(node, &x.shape, kernel, stride, dilation)?;
        let ceil_mode = attr_i(node, "ceil_mode", 0) == 1;
        if node.op_type == "MaxPool" {
            let opts = MaxPoolOptions {
                kernel_size: kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            };
            self.push(node, out, |out| Step::MaxPool { x: x.slot, opts, out })
        } else {
            if dilation != [1, 1] {
                return Err(unsupported(node, format!("dilations {dilation:?}")));
            }
            let opts = AvgPoolOptions {
                kernel_size: kernel,
                stride,
                padding,
                count_include_pad: attr_i(node, "count_include_pad", 0) == 1,
                ceil_mode,
            };
            self.push(node, out, |out| Step::AvgPool { x: x.slot, opts, out })
        }
    }

    fn batch_norm(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        if !(2..=RANK).contains(&r) {
            return Err(unsupported(node, format!("rank-{r} input")));
        }
        let mut params = Vec::new();
        for ix in 1..5 {
            let t = self.const_input(node, ix)?.ok_or_else(|| {
                invalid(format!(
                    "node {:?}: BatchNormalization lacks input {ix}",
                    node.name
                ))
            })?;
            params.push(floats(&t).map_err(invalid)?);
        }
        let c = x.shape[1];
        if params.iter().any(|p| p.len() != c) {
            return Err(invalid(format!(
                "node {:?}: BatchNormalization parameters are not {c} long",
                node.name
            )));
        }
        let eps = attr_f(node, "epsilon", 1e-5);
        let scale: Vec<f32> = (0..c)
            .map(|i| params[0][i] / (params[3][i] + eps).sqrt())
            .collect();
        let shift: Vec<f32> = (0..c).map(|i| params[1][i] - params[2][i] * scale[i]).collect();
        let mut shape = vec![1; r];
        shape[1] = c;
        let shape = pad4(&shape).unwrap_or([1, c, 1, 1]);
        let scale = self.upload4(format!("{}:scale", node.name), shape, scale);
        let shift = self.upload4(format!("{}:shift", node.name), shape, shift);
        self.push(node, out, |out| Step::Affine {
            x: x.slot,
            scale,
            shift,
            out,
        })
    }

    fn gemm(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let alpha = attr_f(node, "alpha", 1.0);
        let beta = attr_f(node, "beta", 1.0);
        let trans_a = attr_i(node, "transA", 0) == 1;
        let trans_b = attr_i(node, "transB", 0) == 1;
        let mut a = self.gpu_input(node, 0)?;
        if a.shape.len() != 2 {
            return Err(invalid(format!(
                "node {:?}: Gemm input A has rank {}",
                node.name,
                a.shape.len()
            )));
        }
        if trans_a {
            let shape = vec![a.shape[1], a.shape[0]];
            let name = format!("{}:A^T", node.name);
            let gv = self.new_gv(&name, shape)?;
            self.steps.push(Step::Transpose {
                x: a.slot,
                perm: [0, 1, 3, 2],
                out: gv.slot,
            });
            a = gv;
        }
        let b = match self.value(&node.input[1])? {
            Value::Const(t) => {
                let s = t.shape().to_vec();
                if s.len() != 2 {
                    return Err(invalid(format!(
                        "node {:?}: Gemm input B has shape {s:?}",
                        node.name
                    )));
                }
                let v = floats(&t).map_err(invalid)?;
                // B is laid out as [K, N] and scaled by alpha once, at load.
                let (k, n) = if trans_b { (s[1], s[0]) } else { (s[0], s[1]) };
                let mut data = vec![0f32; k * n];
                for i in 0..k {
                    for j in 0..n {
                        let src = if trans_b { v[j * k + i] } else { v[i * n + j] };
                        data[i * n + j] = src * alpha;
                    }
                }
                Src::Const(self.upload4(format!("{}:B", node.name), [1, 1, k, n], data))
            }
            Value::Gpu(gv) => {
                if alpha != 1.0 {
                    return Err(unsupported(node, "alpha with a computed B"));
                }
                if trans_b {
                    let shape = vec![gv.shape[1], gv.shape[0]];
                    let t = self.new_gv(&format!("{}:B^T", node.name), shape)?;
                    self.steps.push(Step::Transpose {
                        x: gv.slot,
                        perm: [0, 1, 3, 2],
                        out: t.slot,
                    });
                    Src::Slot(t.slot)
                } else {
                    Src::Slot(gv.slot)
                }
            }
        };
        let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
            None => None,
            Some(name) => match self.value(name)? {
                Value::Const(t) => {
                    let shape = t.shape().to_vec();
                    let padded = pad4(&shape).ok_or_else(|| invalid("Gemm C of rank > 4"))?;
                    let data: Vec<f32> = floats(&t)
                        .map_err(invalid)?
                        .into_iter()
                        .map(|v| v * beta)
                        .collect();
                    Some(Src::Const(self.upload4(format!("{}:C", node.name), padded, data)))
                }
                Value::Gpu(gv) if beta == 1.0 => Some(Src::Slot(gv.slot)),
                Value::Gpu(_) => return Err(unsupported(node, "beta with a computed C")),
            },
        };
        let shape = self.shape_of(out)?;
        let shape = pad4(&shape).ok_or_else(|| invalid("Gemm output of rank > 4"))?;
        self.push(node, out, |out| Step::MatMul {
            a: Src::Slot(a.slot),
            b,
            bias,
            shape,
            out,
        })
    }

    fn matmul(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let operand = |ix: usize, this: &mut Self| -> Result<Src, EngineError> {
            let name = node.input.get(ix).map_or("", String::as_str);
            let (src, shape) = this.src(node, name)?;
            // A rank-1 B is a column: [K] becomes [K, 1]. (A rank-1 A is
            // already the row [1, K] once aligned to rank 4.)
            if ix == 1 && shape.len() == 1 {
                let k = shape[0];
                return Ok(match src {
                    Src::Const(t) => Src::Const(t.reshape([1, 1, k, 1])),
                    Src::Slot(s) => {
                        let gv = this.new_gv(&format!("{}:B col", node.name), vec![k, 1])?;
                        this.steps.push(Step::Reshape {
                            x: s,
                            shape: [1, 1, k, 1],
                            out: gv.slot,
                        });
                        Src::Slot(gv.slot)
                    }
                });
            }
            Ok(src)
        };
        let a = operand(0, self)?;
        let b = operand(1, self)?;
        let shape = self.shape_of(out)?;
        let shape = pad4(&shape).ok_or_else(|| unsupported(node, "rank > 4"))?;
        self.push(node, out, |out| Step::MatMul {
            a,
            b,
            bias: None,
            shape,
            out,
        })
    }

    fn pad(&mut self, node: &NodeProto, out: &str) -> Result<(), EngineError> {
        let x = self.gpu_input(node, 0)?;
        let r = x.shape.len();
        let mode = attr_s(node, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(unsupported(node, format!("mode {mode}")));
        }
        let (pads, value) = if self.opset < 11 {
            (
                attr_ints(node, "pads").unwrap_or_default(),
                attr_f(node, "value", 0.0),
            )
        } else {
            let pads = self
                .const_input(node, 1)?
                .map(|t| host_values::<i64>(&t))
                .transpose()
                .map_err(invalid)?
                .unwrap_or_default();
            let value = self
                .const_input(node, 2)?
                .and_then(|t| floats(&t).ok())
                .and_then(|v| v.first().copied())
                .unwrap_or(0.0);
            (pads, value)
        };
        let axes: Vec<usize> = match self.const_input(node, 3)? {
            Some(t) => host_values::<i64>(&t)
                .map_err(invalid)?
                .iter()
                .map(|a| axis4(node, *a, r))
                .collect::<Result<_, _>>()?,
            None => (RANK - r..RANK).collect(),
        };
        if pads.len() != 2 * axes.len() || pads.iter().any(|p| *p < 0) {
            return Err(unsupported(node, format!("pads {pads:?}")));
        }
        let mut full = [(0, 0); RANK];
        for (i, axis) in axes.iter().enumerate() {
            full[*axis] = (pads[i] as usize, pads[i + axes.len()] as usize);
        }
        self.push(node, out, |out| Step::Pad {
            x: x.slot,
            pads: full,
            value,
            out,
        })
    }
}

impl Plan {
    /// How many activations were fused into the convolution before them.
    pub fn fused_activations(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Conv { act: Some(_), .. }))
            .count()
    }
}
