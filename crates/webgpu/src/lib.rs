//! The WebGPU backend: ONNX image classifiers loaded at run time and run on
//! the GPU through burn's wgpu runtime (its CubeCL kernels for convolution,
//! matmul, pooling and element-wise ops), on WebGPU in browsers and on
//! Vulkan/Metal/DX12 natively.
//!
//! Loading parses the ONNX protobuf, widens fp16 weights to f32 (as the CPU
//! backend does), infers every tensor's shape with tract's analysis, builds
//! a program of burn operations with each convolution's bias and following
//! activation fused into one step, uploads the weights once, checks the
//! largest tensor against the adapter's limits, and runs the program once on
//! zeros so every shader is compiled before the first real request. Other
//! batch sizes get their own program on first use, sharing the weights.
//! Intermediate tensors stay on the GPU; only the outputs are read back,
//! asynchronously.

mod device;
mod exec;
mod program;

pub use device::{AdapterInfo, Limits};
pub use program::supported_ops;

use edgeserve_engine::{BackendKind, BoxFuture, Engine, EngineError, ModelSignature, NamedTensors};
use edgeserve_protocol::{DataType, Tensor, TensorData};
use program::{Graph, Program, Weights};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use web_time::Instant;

/// Options of the WebGPU backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebGpuOptions {
    /// The largest tensor to accept, in bytes, below the adapter's own
    /// limits (`maxStorageBufferBindingSize`, `maxBufferSize`): a page that
    /// needs GPU memory for itself can keep models from taking it. `None`:
    /// the adapter's limits.
    pub max_tensor_bytes: Option<u64>,
    /// Skip the warmup run at load (the first request then compiles the
    /// shaders, and is the slow one).
    pub skip_warmup: bool,
}

/// Progress of a load, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadStage {
    /// The GPU device is acquired.
    Device(AdapterInfo),
    /// The graph is planned and its weights are on the GPU.
    Planned {
        /// Operations in the program for batch 1.
        steps: usize,
        /// Bytes of weights uploaded.
        weight_bytes: u64,
    },
    /// The warmup run finished; every shader is compiled.
    WarmedUp {
        /// How long it took.
        ms: f64,
    },
}

/// A model loaded on the GPU.
pub struct WebGpuEngine {
    signature: ModelSignature,
    graph: Graph,
    gpu: &'static device::Gpu,
    limits: Limits,
    weights: Mutex<Weights>,
    single: Arc<Program>,
    free_batch: bool,
    programs: Mutex<HashMap<usize, Arc<Program>>>,
    warmup_ms: Option<f64>,
}

pub(crate) fn run_error(reason: impl Into<String>) -> EngineError {
    EngineError::Run {
        backend: BackendKind::Webgpu,
        reason: reason.into(),
    }
}

/// The adapter this process would run on, or why there is none (no WebGPU
/// in this host, no adapter). Acquires the device on first call.
pub async fn adapter() -> Result<AdapterInfo, EngineError> {
    device::gpu().await.map(|g| g.info.clone())
}

fn dtype_of(elem_type: i32) -> Option<DataType> {
    Some(match elem_type {
        1 => DataType::Float,
        10 => DataType::Half,
        11 => DataType::Double,
        _ => return None,
    })
}

/// The signature as the ONNX graph declares it (after fp16 widening), with
/// the element types this backend runs.
fn signature_of(graph: &Graph) -> Result<ModelSignature, EngineError> {
    edgeserve_onnx::signature::declared(&graph.graph, &graph.inputs, &graph.outputs, |elem_type, name| {
        dtype_of(elem_type).ok_or_else(|| EngineError::UnsupportedOp {
            op: format!("a tensor of ONNX element type {elem_type}"),
            detail: String::new(),
            node: name.to_owned(),
            backend: BackendKind::Webgpu,
        })
    })
}

impl WebGpuEngine {
    /// Loads an ONNX model from its bytes onto the GPU.
    pub async fn load(bytes: &[u8], options: &WebGpuOptions) -> Result<WebGpuEngine, EngineError> {
        WebGpuEngine::load_with_progress(bytes, options, |_| {}).await
    }

    /// As [`WebGpuEngine::load`], reporting each stage as it completes.
    pub async fn load_with_progress(
        bytes: &[u8],
        options: &WebGpuOptions,
        mut progress: impl FnMut(LoadStage),
    ) -> Result<WebGpuEngine, EngineError> {
        // Before tract (shape inference) and cubecl read what their static
        // constructors register.
        edgeserve_ctors::ensure();
        let mut proto = edgeserve_onnx::decode(bytes)?;
        if let Some(graph) = &proto.graph {
            edgeserve_onnx::check_names(graph)?;
        }
        edgeserve_onnx::normalize(&mut proto);
        let graph = Graph::parse(proto)?;
        if graph.graph.node.is_empty() || graph.outputs.is_empty() {
            return Err(EngineError::InvalidModel(format!(
                "the ONNX graph has {} nodes and {} outputs; a model needs at least one of each",
                graph.graph.node.len(),
                graph.outputs.len()
            )));
        }
        let signature = signature_of(&graph)?;
        let gpu = device::gpu().await?;
        progress(LoadStage::Device(gpu.info.clone()));
        let mut limits = gpu.limits;
        if let Some(cap) = options.max_tensor_bytes {
            limits.max_buffer_size = limits.max_buffer_size.min(cap);
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
        }
        let free_batch = signature
            .inputs
            .first()
            .and_then(|i| i.shape.first())
            .is_some_and(Option::is_none);
        let mut weights = Weights::default();
        let single = Arc::new(graph.plan(free_batch.then_some(1), &gpu.device, &mut weights, &limits)?);
        progress(LoadStage::Planned {
            steps: single.steps.len(),
            weight_bytes: weights.bytes,
        });
        let mut engine = WebGpuEngine {
            signature,
            graph,
            gpu,
            limits,
            weights: Mutex::new(weights),
            single,
            free_batch,
            programs: Mutex::new(HashMap::new()),
            warmup_ms: None,
        };
        if !options.skip_warmup {
            let t = Instant::now();
            let zeros = engine
                .single
                .inputs
                .iter()
                .map(|(_, shape)| vec![0f32; shape.iter().product()])
                .collect();
            engine.execute(&engine.single, zeros).await?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            engine.warmup_ms = Some(ms);
            progress(LoadStage::WarmedUp { ms });
        }
        Ok(engine)
    }

    /// The adapter the model runs on.
    pub fn adapter(&self) -> &AdapterInfo {
        &self.gpu.info
    }

    /// The limits the model was checked against (the adapter's, lowered by
    /// [`WebGpuOptions::max_tensor_bytes`]).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How long the warmup run took, if there was one.
    pub fn warmup_ms(&self) -> Option<f64> {
        self.warmup_ms
    }

    /// Operations in the program for batch 1, and how many convolutions carry
    /// their following activation fused in.
    pub fn program_stats(&self) -> (usize, usize) {
        (self.single.steps.len(), self.single.fused_activations())
    }

    /// The largest tensor of the batch-1 program: its name and size in bytes.
    pub fn largest_tensor(&self) -> (&str, u64) {
        (&self.single.largest.1, self.single.largest.0)
    }

    fn program_for(&self, batch: usize) -> Result<Arc<Program>, EngineError> {
        if batch == 1 || !self.free_batch {
            return Ok(self.single.clone());
        }
        if let Some(p) = self
            .programs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&batch)
        {
            return Ok(p.clone());
        }
        let mut weights = self.weights.lock().unwrap_or_else(PoisonError::into_inner);
        // Batch 1 planned at load; a failure for another batch size (a
        // tensor over the adapter's limits, a shape only batch 1 satisfies)
        // is this run's failure, which the router may answer remotely.
        let program = Arc::new(
            self.graph
                .plan(Some(batch), &self.gpu.device, &mut weights, &self.limits)
                .map_err(|e| run_error(format!("planning batch {batch}: {e}")))?,
        );
        self.programs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(batch, program.clone());
        Ok(program)
    }

    async fn execute(&self, program: &Program, inputs: Vec<Vec<f32>>) -> Result<Vec<Tensor>, EngineError> {
        let pending = exec::launch(program, &self.gpu.device, inputs)?;
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(p.read().await?);
            // A host that blocks on this future (the native server) still
            // has its cancellation scope here; in wasm it is gone by now.
            edgeserve_engine::cancel::checkpoint()?;
        }
        Ok(out)
    }

    fn prepare(&self, mut inputs: NamedTensors) -> Result<(Arc<Program>, Vec<Vec<f32>>), EngineError> {
        let batch = self
            .signature
            .inputs
            .first()
            .and_then(|s| inputs.get(&s.name))
            .and_then(Tensor::batch_size)
            .unwrap_or(1);
        let program = self.program_for(batch)?;
        let mut values = Vec::new();
        for s in &self.signature.inputs {
            let t = inputs
                .remove(&s.name)
                .ok_or_else(|| run_error(format!("input {} is missing", s.name)))?;
            let (_, data) = t.into_parts();
            values.push(match data {
                TensorData::Float(v) => v,
                TensorData::Half(v) => v.into_iter().map(f32::from).collect(),
                TensorData::Double(v) => v.into_iter().map(|x| x as f32).collect(),
                other => {
                    return Err(run_error(format!(
                        "input {} is {}; the WebGPU backend takes float tensors",
                        s.name,
                        other.dtype()
                    )));
                }
            });
        }
        Ok((program, values))
    }
}

impl Engine for WebGpuEngine {
    fn kind(&self) -> BackendKind {
        BackendKind::Webgpu
    }

    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn run(&self, inputs: NamedTensors) -> BoxFuture<'_, Result<NamedTensors, EngineError>> {
        Box::pin(async move {
            let (program, values) = self.prepare(inputs)?;
            let outputs = self.execute(&program, values).await?;
            Ok(self
                .signature
                .outputs
                .iter()
                .map(|s| s.name.clone())
                .zip(outputs)
                .collect())
        })
    }
}
