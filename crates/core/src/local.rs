//! Loading a model on this device: the CPU, the GPU, or (under `auto`)
//! both, timed, keeping the faster.

use crate::options::*;
use crate::report::*;
use crate::routing::*;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{BackendKind, Engine, EngineError, ModelManifest};
use edgeserve_protocol::Tensor;
use std::borrow::Cow;
use web_time::Instant;

/// The model's bytes, after checking they are the manifest's file.
pub(crate) fn load_cpu(model: Cow<'_, [u8]>, options: &CpuOptions) -> Result<CpuEngine, EngineError> {
    match model {
        Cow::Borrowed(bytes) => CpuEngine::load(bytes, options),
        Cow::Owned(bytes) => CpuEngine::load_owned(bytes, options),
    }
}

pub(crate) fn no_model_bytes(manifest: &ModelManifest) -> EngineError {
    EngineError::Manifest(format!(
        "the local backend needs the bytes of {}, and none were given",
        manifest.model.file
    ))
}

/// Checks the model's size and SHA-256 against its manifest.
pub(crate) fn verify(
    model: &[u8],
    manifest: &ModelManifest,
    options: &LoadOptions,
) -> Result<(), EngineError> {
    match &options.model_sha256 {
        Some(digest) => manifest.verify_model_digest(model.len(), digest)?,
        None => manifest.verify_model(model)?,
    }
    Ok(())
}

#[cfg(feature = "webgpu")]
pub(crate) async fn load_gpu(model: &[u8], options: &LoadOptions) -> Result<Box<dyn Engine>, EngineError> {
    let gpu = edgeserve_webgpu::WebGpuOptions {
        max_tensor_bytes: options.gpu_max_tensor_bytes,
        skip_warmup: false,
    };
    Ok(Box::new(edgeserve_webgpu::WebGpuEngine::load(model, &gpu).await?))
}

#[cfg(not(feature = "webgpu"))]
pub(crate) async fn load_gpu(_: &[u8], _: &LoadOptions) -> Result<Box<dyn Engine>, EngineError> {
    Err(EngineError::Unavailable {
        backend: BackendKind::Webgpu,
        reason: "this build has no WebGPU backend (edgeserve's `webgpu` feature is off)".into(),
    })
}

/// One batch-1 run on zeros, timed: a first untimed run settles what the
/// backend does once (tract's allocations; the GPU's warmup ran at load).
pub(crate) async fn time_run(engine: &dyn Engine) -> Result<f64, EngineError> {
    let zeros = || -> Result<edgeserve_engine::NamedTensors, EngineError> {
        engine
            .signature()
            .inputs
            .iter()
            .map(|s| {
                let shape: Vec<usize> = s.shape.iter().map(|d| d.unwrap_or(1)).collect();
                let n = shape.iter().product();
                Ok((s.name.clone(), Tensor::from_vec(shape, vec![0f32; n])?))
            })
            .collect()
    };
    if engine.kind() == BackendKind::Cpu {
        engine.run(zeros()?).await?;
    }
    let t = Instant::now();
    engine.run(zeros()?).await?;
    Ok(ms_since(t))
}

pub(crate) fn candidate(backend: BackendKind, outcome: Option<&Result<f64, EngineError>>) -> Candidate {
    Candidate {
        backend,
        run_ms: outcome.and_then(|o| o.as_ref().ok().copied()),
        error: outcome.and_then(|o| o.as_ref().err().map(ToString::to_string)),
    }
}

/// Whether these options load a local model on the CPU alone: neither the
/// GPU asked for nor, under `auto`, a GPU to time against it.
fn cpu_alone(options: &LoadOptions) -> bool {
    match options.backend {
        Backend::Webgpu => false,
        Backend::Auto => !cfg!(feature = "webgpu"),
        _ => true,
    }
}

/// A model's load on the CPU begun before its bytes are checked against its
/// manifest, on another thread of the CPU backend's pool, so that the
/// caller can hash them meanwhile ([`crate::Classifier::open_loading`]).
#[derive(Debug)]
pub struct LoadingModel(edgeserve_cpu::PendingLoad);

impl LoadingModel {
    /// Whether [`LoadingModel::start`] may start a load when called from
    /// this thread: the pool has a thread to spare and this is its first.
    pub fn possible() -> bool {
        edgeserve_cpu::loads_beside()
    }

    /// Starts loading `model` where these options run it on the local CPU
    /// (the routing keeps it on this device, and no GPU is in the running),
    /// its size is the manifest's, and the pool has a thread to spare for
    /// it ([`CpuEngine::load_beside`]: the threaded wasm build). Else gives
    /// the bytes back, for [`crate::Classifier::open_owned`].
    pub fn start(
        model: Vec<u8>,
        manifest: &ModelManifest,
        options: &LoadOptions,
    ) -> Result<LoadingModel, Vec<u8>> {
        // Of the manifest's size, the bytes plan as the manifest does.
        if u64::try_from(model.len()) != Ok(manifest.model.bytes) {
            return Err(model);
        }
        LoadingModel::start_unread(model, options)
    }

    /// [`LoadingModel::start`] before the manifest is read, planned on the
    /// bytes' own size: a manifest that gives another size, or another
    /// SHA-256, is refused once it is read ([`crate::Classifier::open_loading`]
    /// checks both), and one whose size would plan the model elsewhere
    /// drops this load. So a load begun here ends as one begun once the
    /// manifest is read, only sooner: the manifest's and the labels'
    /// downloads overlap it instead of coming first.
    pub fn start_unread(model: Vec<u8>, options: &LoadOptions) -> Result<LoadingModel, Vec<u8>> {
        let size = u64::try_from(model.len()).unwrap_or(u64::MAX);
        if !matches!(plan_size(size, options), Ok(Plan::Local(_))) || !cpu_alone(options) {
            return Err(model);
        }
        CpuEngine::load_beside(model, &options.cpu).map(LoadingModel)
    }
}

/// A local model as [`load_local`] takes it: its bytes, or its load under
/// way with the SHA-256 that will check it still to come.
pub(crate) enum LocalModel<'a, D> {
    Bytes(Option<Cow<'a, [u8]>>),
    Loading(LoadingModel, D),
}

/// What [`LocalModel::Loading`]'s digest is when there is none: the type
/// [`LocalModel::Bytes`] names.
pub(crate) type NoDigest = std::future::Ready<Result<[u8; 32], EngineError>>;

/// The model on a local backend: the one asked for, or under `auto` the
/// faster of the CPU and the GPU on one measured run (the CPU alone when
/// the GPU cannot take the model, with the reason).
pub(crate) async fn load_local<D: Future<Output = Result<[u8; 32], EngineError>>>(
    model: LocalModel<'_, D>,
    manifest: &ModelManifest,
    options: &LoadOptions,
) -> Result<(Box<dyn Engine>, Option<LocalChoice>), EngineError> {
    let model = match model {
        LocalModel::Bytes(model) => model.ok_or_else(|| no_model_bytes(manifest))?,
        LocalModel::Loading(LoadingModel(loading), digest) => {
            // Computed by the caller while the load runs on its own thread.
            let digest = digest.await;
            let bytes_len = loading.bytes_len();
            let engine = loading.await;
            // The bytes' check before the load's outcome: a file that is
            // not the manifest's may also fail to load, and the mismatch
            // says more.
            manifest.verify_model_digest(bytes_len, &digest?)?;
            return Ok((Box::new(engine?), None));
        }
    };
    verify(&model, manifest, options)?;
    if cpu_alone(options) {
        return Ok((Box::new(load_cpu(model, &options.cpu)?), None));
    }
    if options.backend == Backend::Webgpu {
        return Ok((load_gpu(&model, options).await?, None));
    }
    // The GPU first: the CPU may take the bytes and free them.
    let gpu = load_gpu(&model, options).await;
    let cpu = load_cpu(model, &options.cpu);
    let (cpu, gpu): (Result<Box<dyn Engine>, _>, _) = match (cpu, gpu) {
        (Err(e), Err(_)) => return Err(e),
        (cpu, gpu) => (cpu.map(|c| Box::new(c) as Box<dyn Engine>), gpu),
    };
    // Measured only when there is a choice to make: a host without a GPU
    // pays nothing for the comparison.
    let (cpu_ms, gpu_ms) = match (&cpu, &gpu) {
        (Ok(c), Ok(g)) => (Some(time_run(c.as_ref()).await), Some(time_run(g.as_ref()).await)),
        _ => (None, None),
    };
    let outcome = |loaded: &Result<Box<dyn Engine>, EngineError>, ms: Option<Result<f64, EngineError>>| match (
        loaded, ms,
    ) {
        (Err(e), _) => Some(Err(e.clone())),
        (Ok(_), ms) => ms,
    };
    let cpu_ms = outcome(&cpu, cpu_ms);
    let gpu_ms = outcome(&gpu, gpu_ms);
    let mut candidates = vec![
        candidate(BackendKind::Cpu, cpu_ms.as_ref()),
        candidate(BackendKind::Webgpu, gpu_ms.as_ref()),
    ];
    let gpu_wins = match (&cpu_ms, &gpu_ms) {
        (Some(Ok(c)), Some(Ok(g))) => g < c,
        (Some(Err(_)), Some(Ok(_))) => true,
        (Some(Err(_)), None) => gpu.is_ok(),
        _ => false,
    };
    let chosen = match (gpu_wins, cpu, gpu) {
        (true, _, Ok(gpu)) => {
            candidates.swap(0, 1);
            gpu
        }
        (_, Ok(cpu), _) => cpu,
        (_, Err(e), _) => return Err(e),
    };
    Ok((chosen, Some(LocalChoice { candidates })))
}
