//! Planning: from an ONNX graph to a program, a list of burn operations with every shape known.
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
//! parameter. Tensors of rank 5 and 6 (attention's packed q/k/v, Swin's
//! windows) are held as [`storage4`] says, and only the steps that view
//! them as they need take them; any other op refuses them by name.
//!
//! Each op's lowering lives in `ops/`, by family; `ops::OPS` is at once the
//! list of ops the GPU runs and the dispatch.

mod attrs;
use attrs::attr_ints;
use liveness::frees;
mod liveness;
mod ops;

pub use ops::supported_ops;

use crate::device::Limits;
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use edgeserve_engine::{BackendKind, EngineError};
use std::collections::HashMap;
use std::sync::Arc;
use tract_onnx::pb::{GraphProto, NodeProto};
use tract_onnx::prelude::{
    Datum, DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, OutletId, TDim,
    Tensor as Host, TractResult,
};
use tract_onnx::tract_hir::infer::Factoid;

/// The rank every GPU tensor is stored at.
pub(crate) const RANK: usize = 4;

/// A GPU tensor's place in the program's slot table, with its logical shape.
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
// burn's tensor handle is 256 bytes; programs are built once per batch size
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
    Erf,
    /// GELU, exact (erf) or with the tanh approximation (`true`).
    Gelu(bool),
    Sqrt,
    Reciprocal,
    Exp,
    Neg,
    Abs,
    /// `x` to a constant power (`Pow` with a scalar exponent).
    Pow(f32),
    /// `QuantizeLinear` of a computed tensor, per tensor: the integers it
    /// gives (round half to even, shift, saturate), held in f32, which
    /// holds every 8- and 16-bit integer exactly.
    Quantize {
        scale: f32,
        zero_point: f32,
        lo: f32,
        hi: f32,
    },
    /// `DequantizeLinear` of such integers, per tensor.
    Dequantize {
        scale: f32,
        zero_point: f32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// One operation of the program. `out` is the slot it writes.
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
    /// A transpose of 5 or 6 groups of axes (Swin's packed q/k/v, in
    /// windows, over heads): viewed at rank 6 as `dims`, permuted, stored
    /// as `shape`.
    Transpose6 {
        x: usize,
        dims: [usize; 6],
        perm: [usize; 6],
        shape: [usize; RANK],
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
    /// Normalised over storage axes `axis..RANK`, then scaled and shifted
    /// (LayerNormalization and its affine in one step).
    LayerNorm {
        x: usize,
        axis: usize,
        epsilon: f32,
        scale: Src,
        bias: Option<Src>,
        out: usize,
    },
    /// `Gather` with constant indices: the entries `indices` of `axis`,
    /// reshaped to the output (a scalar index drops the axis).
    Select {
        x: usize,
        axis: usize,
        indices: Tensor<1, Int>,
        shape: [usize; RANK],
        out: usize,
    },
    Slice {
        x: usize,
        ranges: [std::ops::Range<usize>; RANK],
        /// Every how many elements of each axis's range are taken.
        steps: [usize; RANK],
        out: usize,
    },
    Expand {
        x: Src,
        shape: [usize; RANK],
        out: usize,
    },
    /// One output of `DynamicQuantizeLinear` (onnxruntime's dynamic
    /// quantisation): uint8 values over x's range widened to hold 0, with
    /// the scale and zero point computed on the GPU at run time.
    DynamicQuantize {
        x: usize,
        part: DynamicPart,
        out: usize,
    },
}

/// Which output of `DynamicQuantizeLinear` a step computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DynamicPart {
    /// The scale, a scalar.
    Scale,
    /// The zero point, a scalar, from the slot holding the scale.
    ZeroPoint { scale: usize },
    /// The quantised values, from the slots holding the other two.
    Values { scale: usize, zero_point: usize },
}

/// What a graph output is in the program.
pub(crate) enum Output {
    Gpu { slot: usize, shape: Vec<usize> },
    Const(Arc<Host>),
}

/// A program for one batch size.
pub(crate) struct Program {
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

/// Weights uploaded once per engine and shared by the programs of every batch
/// size, by node name and role.
#[derive(Default)]
pub(crate) struct Weights {
    four: HashMap<String, Tensor<RANK>>,
    one: HashMap<String, Tensor<1>>,
    pub bytes: u64,
}

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
        op: node.op_type.clone(),
        detail: what.to_string(),
        node: node.name.clone(),
        backend: BackendKind::Webgpu,
    }
}

fn tract_msg(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

/// Where a tensor of any rank is stored: [`pad4`] up to rank 4, which
/// every op relies on. Above it, any rank-4 shape of the same elements in
/// the same (row-major) order would do, since only steps that view it as
/// they need read such a tensor: reshapes, transposes, element-wise
/// functions, `Gather`, and element-wise arithmetic (each reshapes its
/// operands first). It is the shape with its axes of size 1 dropped (the
/// leading ones first) while more than 4 remain, then its leading axes
/// merged: what exports of attention give (torch's `unflatten → unsqueeze
/// → transpose → squeeze` of the packed q/k/v goes through rank 5, Swin's
/// window partition through rank 6).
pub(crate) fn storage4(shape: &[usize]) -> [usize; RANK] {
    let mut kept = shape.to_vec();
    while kept.len() > RANK {
        match kept.iter().position(|&d| d == 1) {
            Some(unit) => {
                kept.remove(unit);
            }
            None => {
                let first = kept.remove(0);
                kept[0] *= first;
            }
        }
    }
    let mut out = [1; RANK];
    out[RANK - kept.len()..].copy_from_slice(&kept);
    out
}

/// Right-aligns a logical shape of rank ≤ 4 behind leading 1s.
pub(crate) fn pad4(shape: &[usize]) -> Option<[usize; RANK]> {
    let lead = RANK.checked_sub(shape.len())?;
    let mut out = [1; RANK];
    out[lead..].copy_from_slice(shape);
    Some(out)
}

impl Graph {
    pub fn parse(mut proto: tract_onnx::pb::ModelProto) -> Result<Graph, EngineError> {
        let onnx = tract_onnx::onnx();
        // The shapes a graph declares for its intermediate tensors carry its
        // symbolic batch (`batch`, `s77`); planned for one batch size, they
        // would contradict the input's, and inference derives them anyway
        // (onnxruntime's quantiser and fp16 converter write them all).
        if let Some(graph) = proto.graph.as_mut() {
            graph.value_info.clear();
        }
        let opset = edgeserve_onnx::default_opset(&proto);
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
        let inputs = edgeserve_onnx::signature::real_inputs(&graph);
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
    ) -> Result<Program, EngineError> {
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
            initializers: self
                .graph
                .initializer
                .iter()
                .map(|t| (t.name.as_str(), t))
                .collect(),
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
        Ok(Program {
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
        detail: String::new(),
        node: name.to_owned(),
        backend: BackendKind::Webgpu,
    }
}

pub(super) struct Planner<'a> {
    model: &'a InferenceModel,
    labels: HashMap<&'a str, OutletId>,
    uses: HashMap<&'a str, usize>,
    graph_outputs: &'a [String],
    /// The graph's initializers, for those tract takes into an op (see
    /// `constant`).
    initializers: HashMap<&'a str, &'a tract_onnx::pb::TensorProto>,
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

    /// The value of a tensor computable without the input: from the
    /// analysis, or for an initializer tract took into an op at parse time
    /// (a QuantizeLinear's scale and zero point), which never becomes a
    /// tensor of its model, from the initializer itself.
    fn constant(&self, name: &str) -> Option<Arc<Host>> {
        self.fact(name)
            .ok()
            .and_then(|f| f.value.concretize())
            .or_else(|| {
                let t = self.initializers.get(name)?;
                tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, t, None)
                    .ok()
                    .map(Arc::new)
            })
    }

    /// Integers a node takes as an attribute before opset `since` and as a
    /// constant input (`ix`) from it (Slice's starts, ReduceMean's axes,
    /// Pad's pads); `None` when absent.
    fn ints(
        &self,
        node: &NodeProto,
        ix: usize,
        attr: &str,
        since: i64,
    ) -> Result<Option<Vec<i64>>, EngineError> {
        if self.opset < since {
            return Ok(attr_ints(node, attr));
        }
        self.const_input(node, ix)?
            .map(|t| host_values::<i64>(&t))
            .transpose()
            .map_err(invalid)
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
        // burn panics on some steps over an empty tensor (a reshape after a
        // Gather of no indices); no classifier computes one.
        if shape.contains(&0) {
            return Err(EngineError::UnsupportedOp {
                op: "an empty tensor".into(),
                detail: format!("shape {shape:?}"),
                node: name.to_owned(),
                backend: BackendKind::Webgpu,
            });
        }
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
        self.push_stored(name, shape, step)
    }

    /// [`Planner::push`] for the steps whose output may be of any rank
    /// (held as [`storage4`] says).
    fn push_stored(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        step: impl FnOnce(usize) -> Step,
    ) -> Result<(), EngineError> {
        self.push_gv(name, shape, step).map(|_| ())
    }

    /// [`Planner::push_stored`], giving the new tensor.
    fn push_gv(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        step: impl FnOnce(usize) -> Step,
    ) -> Result<Gv, EngineError> {
        let gv = self.new_gv(name, shape)?;
        let step = step(gv.slot);
        self.producer.insert(gv.slot, self.steps.len());
        self.steps.push(step);
        self.values.insert(name.to_owned(), Value::Gpu(gv.clone()));
        Ok(gv)
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
            Value::Gpu(gv) if gv.shape.len() > RANK => {
                Err(unsupported(node, format!("an input of rank {}", gv.shape.len())))
            }
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
        let gv = self.gpu_input_stored(node, ix)?;
        if gv.shape.len() > RANK {
            return Err(unsupported(node, format!("an input of rank {}", gv.shape.len())));
        }
        Ok(gv)
    }

    /// [`Planner::gpu_input`] of any rank (see [`storage4`]).
    fn gpu_input_stored(&self, node: &NodeProto, ix: usize) -> Result<Gv, EngineError> {
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
        let Some(lower) = ops::lowering(&node.op_type) else {
            return Err(unsupported(
                node,
                "no WebGPU kernel, and its output depends on the input",
            ));
        };
        // Outputs beyond the first (Dropout's mask, MaxPool's indices) have
        // no kernel here, except where the lowering computes them all;
        // refuse them only when something reads them.
        if !ops::lowers_every_output(&node.op_type)
            && let Some(extra) = node
                .output
                .iter()
                .skip(1)
                .find(|o| !o.is_empty() && self.uses.contains_key(o.as_str()))
        {
            return Err(unsupported(node, format!("second output {extra:?}")));
        }
        let out = self.output_name(node)?.to_owned();
        lower(self, node, &out)
    }
}

impl Program {
    /// How many activations were fused into the convolution before them.
    pub fn fused_activations(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Conv { act: Some(_), .. }))
            .count()
    }
}
