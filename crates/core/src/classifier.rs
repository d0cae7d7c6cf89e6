use crate::encoded::EncodedImages;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{
    BackendKind, BoxFuture, Engine, EngineError, InputEncoding, ModelManifest, OutputKind,
};
use edgeserve_protocol::{
    Code, DataType, Error as ProtocolError, Metadata, ModelMetadataResponse, ModelSpec, PredictRequest,
    PredictResponse, Tensor, VersionSelector,
};
use edgeserve_remote::{RemoteConfig, RemoteEngine};
use edgeserve_vision::{
    DecodeOptions, Labels, PixelBudget, PixelFormat, Preprocessing, RgbImage, VisionError, softmax, top_k,
};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use web_time::Instant;

/// Which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// Chosen per model: local when the model fits the local budget (or no
    /// remote is configured), else the remote; a local failure falls back to
    /// the remote when one is configured and fallback is allowed.
    #[default]
    Auto,
    /// The CPU (tract), never anything else.
    Cpu,
    /// The GPU through WebGPU (burn/wgpu), never anything else: an error
    /// where there is none or the model does not fit it. Needs the
    /// `webgpu` feature and [`Classifier::open`] (acquiring a GPU is
    /// asynchronous in browsers).
    Webgpu,
    /// The configured TF Serving endpoint, never anything else.
    Remote,
}

/// The default local budget: models larger than this go to the remote
/// endpoint under `auto` (20 MB, decimal, as browsers report sizes).
pub const DEFAULT_MAX_LOCAL_MODEL_BYTES: u64 = 20_000_000;

/// Peak memory of a local run as a multiple of the model file's size:
/// measured natively as peak resident memory of `edgeserve classify`,
/// Lite0 120 MB for 18.5 MB (6.5×) and Lite2 159 MB for 24.3 MB (6.5×),
/// rounded down since the native figure includes the binary itself.
pub const LOCAL_MEMORY_PER_MODEL_BYTE: u64 = 6;

/// The share of the device's memory (`navigator.deviceMemory`) a local run
/// may take: one part in this many, leaving the rest to the page, the
/// browser and other tabs.
pub const DEVICE_MEMORY_SHARE: u64 = 4;

/// Megabytes with one decimal, as the reports print sizes.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Why a backend was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Why {
    /// The caller asked for it.
    Requested,
    /// `auto`, no remote configured, and the model fits the budget: it runs
    /// on this device (which local backend is in [`Report::local`]).
    NoRemote,
    /// `auto`: the model fits the local budget (a remote is configured).
    WithinBudget {
        /// The model's size (the manifest's).
        model_bytes: u64,
        /// The local budget.
        budget: u64,
    },
    /// `auto`: the model is over the local budget, so the remote runs it.
    OverBudget {
        /// The model's size (the manifest's).
        model_bytes: u64,
        /// The local budget.
        budget: u64,
    },
    /// `auto`: the model is over the local budget but no remote is
    /// configured, so it runs locally anyway.
    OverBudgetNoRemote {
        /// The model's size (the manifest's).
        model_bytes: u64,
        /// The local budget.
        budget: u64,
    },
    /// `auto`: running the model here would take too large a share of the
    /// device's memory, so the remote runs it.
    OverDeviceMemory {
        /// The memory a local run would take (estimated from the model size).
        needed: u64,
        /// The device's memory.
        device_memory: u64,
    },
    /// `auto`: as [`Why::OverDeviceMemory`], but no remote is configured, so
    /// it runs locally anyway.
    OverDeviceMemoryNoRemote {
        /// The memory a local run would take (estimated from the model size).
        needed: u64,
        /// The device's memory.
        device_memory: u64,
    },
    /// `auto`: the local backend could not load the model; the remote runs it.
    LocalLoadFailed {
        /// The local backend that failed.
        backend: BackendKind,
        /// Its error.
        error: String,
    },
    /// `auto`: the local backend failed on this request; the remote ran it.
    LocalRunFailed {
        /// The local backend that failed.
        backend: BackendKind,
        /// Its error.
        error: String,
    },
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Requested => f.write_str("requested by the caller"),
            Why::NoRemote => f.write_str("auto: no remote is configured"),
            Why::WithinBudget { model_bytes, budget } => {
                write!(f, "model {} <= local budget {}", mb(*model_bytes), mb(*budget))
            }
            Why::OverBudget { model_bytes, budget } => {
                write!(f, "model {} > local budget {}", mb(*model_bytes), mb(*budget))
            }
            Why::OverBudgetNoRemote { model_bytes, budget } => write!(
                f,
                "model {} > local budget {}, but no remote is configured",
                mb(*model_bytes),
                mb(*budget)
            ),
            Why::OverDeviceMemory {
                needed,
                device_memory,
            } => write!(
                f,
                "a local run needs ~{}, over 1/{DEVICE_MEMORY_SHARE} of the device's {} memory",
                mb(*needed),
                mb(*device_memory)
            ),
            Why::OverDeviceMemoryNoRemote {
                needed,
                device_memory,
            } => write!(
                f,
                "a local run needs ~{}, over 1/{DEVICE_MEMORY_SHARE} of the device's {} memory, but no remote is configured",
                mb(*needed),
                mb(*device_memory)
            ),
            Why::LocalLoadFailed { backend, error } => {
                write!(f, "the {backend} backend could not load the model: {error}")
            }
            Why::LocalRunFailed { backend, error } => write!(f, "the {backend} backend failed: {error}"),
        }
    }
}

/// Options for [`Classifier::load`] and [`Classifier::open`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The backend.
    pub backend: Backend,
    /// Limits for decoding images.
    pub decode: DecodeOptions,
    /// CPU backend options.
    pub cpu: CpuOptions,
    /// The TF Serving endpoint serving the same model, if any.
    pub remote: Option<RemoteConfig>,
    /// Under `auto`, models larger than this (the manifest's size) run on the
    /// remote when one is configured.
    pub max_local_model_bytes: u64,
    /// Under `auto`, whether a local failure (loading, or running a valid
    /// request) is answered by the remote. `false` returns the local error.
    pub fallback: bool,
    /// The device's memory in bytes, where known (in browsers,
    /// `navigator.deviceMemory` GiB). Under `auto`, a model whose local run
    /// would take more than 1/[`DEVICE_MEMORY_SHARE`] of it
    /// ([`LOCAL_MEMORY_PER_MODEL_BYTE`] × its size) runs on the remote.
    pub device_memory_bytes: Option<u64>,
    /// The model file's SHA-256, when the caller already computed it: it is
    /// compared with the manifest's instead of hashing the bytes again. In
    /// browsers WebCrypto's native digest takes milliseconds where hashing
    /// 18.5 MB in wasm took ~350 ms, most of a cold load.
    pub model_sha256: Option<[u8; 32]>,
    /// The largest tensor the WebGPU backend may put on the GPU, in bytes,
    /// below the adapter's own limits (`None`: the adapter's).
    pub gpu_max_tensor_bytes: Option<u64>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            backend: Backend::Auto,
            decode: DecodeOptions::default(),
            cpu: CpuOptions::default(),
            remote: None,
            max_local_model_bytes: DEFAULT_MAX_LOCAL_MODEL_BYTES,
            fallback: true,
            device_memory_bytes: None,
            model_sha256: None,
            gpu_max_tensor_bytes: None,
        }
    }
}

/// Milliseconds spent in each step. Serialised in camelCase (`decodeMs`),
/// as JS reads it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Decoding the image(s).
    pub decode_ms: f64,
    /// Resize, crop, normalise.
    pub preprocess_ms: f64,
    /// Running the model.
    pub inference_ms: f64,
    /// The remote backend's round trip (network and the server's inference;
    /// TF Serving does not say how the two split).
    pub transfer_ms: f64,
}

impl Timings {
    /// Files the time a backend took: a remote round trip is transfer time,
    /// a local run inference time.
    fn record_run(&mut self, backend: BackendKind, ms: f64) {
        match backend {
            BackendKind::Remote => self.transfer_ms = ms,
            _ => self.inference_ms = ms,
        }
    }
}

/// One local backend that `auto` tried at load.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The backend.
    pub backend: BackendKind,
    /// Its time for one batch-1 run after warmup, when there was a choice
    /// to make (both backends loaded).
    pub run_ms: Option<f64>,
    /// Why it could not run the model, when it could not.
    pub error: Option<String>,
}

/// How `auto` chose between the local backends: each one's measured run,
/// or why it could not run; the fastest was kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalChoice {
    /// Every local backend tried, the one kept first.
    pub candidates: Vec<Candidate>,
}

impl std::fmt::Display for LocalChoice {
    /// `cpu 25.1 ms, webgpu 912.0 ms`, or `cpu loaded, webgpu could not
    /// run: …` (nothing is timed when there is nothing to choose).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, c) in self.candidates.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match (&c.run_ms, &c.error) {
                (_, Some(e)) => write!(f, "{} could not run: {e}", c.backend)?,
                (Some(ms), None) => write!(f, "{} {ms:.1} ms", c.backend)?,
                (None, None) => write!(f, "{} loaded", c.backend)?,
            }
        }
        Ok(())
    }
}

/// What ran, why, and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The backend that ran.
    pub backend: BackendKind,
    /// Why it was chosen.
    pub why: Why,
    /// Under `auto`, how the local backend was chosen (`None` when one was
    /// asked for, or the remote ran).
    pub local: Option<LocalChoice>,
    /// Time per step.
    pub timings: Timings,
}

impl std::fmt::Display for Report {
    /// `backend: why`, e.g. `remote: model 24.3 MB > local budget 20.0 MB`,
    /// then how `auto` chose the local backend, e.g. `; local backends:
    /// cpu 25.1 ms, webgpu 912.0 ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.backend, self.why)?;
        if let Some(local) = &self.local {
            write!(f, "; local backends: {local}")?;
        }
        Ok(())
    }
}

/// One class of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    /// Output index.
    pub index: usize,
    /// The class name, when the model has labels.
    pub label: Option<String>,
    /// Probability (softmax of logits, or the model's own probabilities).
    pub score: f32,
}

/// The top classes of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// Highest first.
    pub classes: Vec<ClassScore>,
    /// What ran.
    pub report: Report,
}

/// An image to classify.
#[derive(Debug, Clone, Copy)]
pub enum ImageInput<'a> {
    /// PNG, JPEG, WebP, GIF or BMP bytes.
    Encoded(&'a [u8]),
    /// Raw pixels, e.g. a canvas `ImageData`.
    Pixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Pixel layout.
        format: PixelFormat,
        /// The pixels, rows top to bottom.
        data: &'a [u8],
    },
}

impl ImageInput<'_> {
    /// Whether `other` is this very image: the same bytes in memory, not
    /// merely equal ones (a comparison that costs nothing).
    fn same_as(&self, other: &ImageInput<'_>) -> bool {
        let same = |a: &[u8], b: &[u8]| std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len();
        match (self, other) {
            (ImageInput::Encoded(a), ImageInput::Encoded(b)) => same(a, b),
            (
                ImageInput::Pixels {
                    width,
                    height,
                    format,
                    data,
                },
                ImageInput::Pixels {
                    width: w,
                    height: h,
                    format: f,
                    data: d,
                },
            ) => (width, height, format) == (w, h, f) && same(data, d),
            _ => false,
        }
    }
}

/// The remote that answers when the local backend fails on a request,
/// connected on first need (a classifier that never fails never touches the
/// network).
struct Fallback {
    config: RemoteConfig,
    engine: Mutex<Option<Arc<RemoteEngine>>>,
}

impl Fallback {
    async fn engine(&self) -> Result<Arc<RemoteEngine>, EngineError> {
        if let Some(e) = self.engine.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(e);
        }
        let fresh = Arc::new(RemoteEngine::connect(self.config.clone()).await?);
        *self.engine.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }
}

/// A failure of the backend itself, not of the request or the image: the
/// only kind another backend may do better on.
fn backend_failed(e: &EngineError) -> bool {
    matches!(e, EngineError::Run { .. })
}

/// A model ready to classify images and answer TF Serving requests.
pub struct Classifier {
    manifest: ModelManifest,
    engine: Box<dyn Engine>,
    why: Why,
    local: Option<LocalChoice>,
    fallback: Option<Fallback>,
    labels: Option<Labels>,
    preprocessing: Preprocessing,
    decode: DecodeOptions,
    /// Whether the model takes any batch size (else images run one by one).
    free_batch: bool,
    /// Whether the engine's input takes encoded image files (`DT_STRING`):
    /// a remote that decodes them itself. Images are then sent as files.
    takes_files: bool,
    /// Whether a local engine is served behind an encoded-image signature
    /// (manifest `input.encoding: "image"`); images decoded here still go
    /// in as tensors, which the adapter passes through.
    served_as_files: bool,
}

/// Where [`Classifier::open`] will run a model, decided from its manifest
/// and the options alone (nothing is loaded or fetched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// On a local backend, which needs the model's bytes.
    Local(Why),
    /// On the configured remote: the model's bytes are not needed.
    Remote(Why),
}

impl Plan {
    /// Whether the model's bytes are needed (a local run).
    pub fn needs_model(&self) -> bool {
        matches!(self, Plan::Local(_))
    }
}

fn no_remote() -> EngineError {
    EngineError::Remote {
        code: Code::InvalidArgument,
        message: "the remote backend was asked for but no remote endpoint is configured".into(),
    }
}

/// Decides where a model runs: the explicit backend, else (under `auto`)
/// the local budget, then the device's memory, with the reason. A plan to
/// run locally may still end on the remote if the local load fails and
/// fallback is on.
pub fn plan(manifest: &ModelManifest, options: &LoadOptions) -> Result<Plan, EngineError> {
    let (model_bytes, budget) = (manifest.model.bytes, options.max_local_model_bytes);
    let has_remote = options.remote.is_some();
    let needed = model_bytes.saturating_mul(LOCAL_MEMORY_PER_MODEL_BYTE);
    let over_memory = options
        .device_memory_bytes
        .filter(|memory| needed > memory / DEVICE_MEMORY_SHARE)
        .map(|memory| (needed, memory));
    Ok(match (options.backend, has_remote) {
        (Backend::Remote, false) => return Err(no_remote()),
        (Backend::Remote, true) => Plan::Remote(Why::Requested),
        (Backend::Cpu | Backend::Webgpu, _) => Plan::Local(Why::Requested),
        (Backend::Auto, true) if model_bytes > budget => {
            Plan::Remote(Why::OverBudget { model_bytes, budget })
        }
        (Backend::Auto, true) if let Some((needed, device_memory)) = over_memory => {
            Plan::Remote(Why::OverDeviceMemory {
                needed,
                device_memory,
            })
        }
        (Backend::Auto, true) => Plan::Local(Why::WithinBudget { model_bytes, budget }),
        (Backend::Auto, false) if model_bytes > budget => {
            Plan::Local(Why::OverBudgetNoRemote { model_bytes, budget })
        }
        (Backend::Auto, false) if let Some((needed, device_memory)) = over_memory => {
            Plan::Local(Why::OverDeviceMemoryNoRemote {
                needed,
                device_memory,
            })
        }
        (Backend::Auto, false) => Plan::Local(Why::NoRemote),
    })
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

impl Classifier {
    /// Loads a model from its bytes, its manifest (JSON) and its labels file
    /// onto a local backend, checking the model's and labels' SHA-256
    /// against the manifest and the manifest's tensor names and sizes
    /// against the model. Synchronous: it never uses the network, so
    /// [`Backend::Remote`] and a configured remote are refused here; use
    /// [`Classifier::open`] for those.
    pub fn load(
        model: &[u8],
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        if options.backend == Backend::Remote || options.remote.is_some() {
            return Err(EngineError::Manifest(
                "a remote backend is configured: Classifier::load runs locally only, use Classifier::open"
                    .into(),
            ));
        }
        if options.backend == Backend::Webgpu {
            return Err(EngineError::Manifest(
                "the webgpu backend is acquired asynchronously: Classifier::load runs on the CPU only, use Classifier::open"
                    .into(),
            ));
        }
        let manifest = ModelManifest::from_json(manifest_json)?;
        let labels = read_labels(&manifest, labels)?;
        let why = match options.backend {
            Backend::Auto => Why::NoRemote,
            _ => Why::Requested,
        };
        verify(model, &manifest, options)?;
        let engine = Box::new(CpuEngine::load(model, &options.cpu)?);
        Classifier::new(manifest, engine, why, labels, options.decode)
    }

    /// Opens a model on the backend [`LoadOptions`] choose, and says why in
    /// every report: locally, on the configured TF Serving endpoint, or
    /// locally with the remote as fallback.
    ///
    /// `model` may be `None` when only the remote will run it; the routing
    /// decision uses the manifest's declared size, so a model that goes
    /// remote never needs downloading.
    pub async fn open(
        model: Option<&[u8]>,
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        Classifier::open_model(model.map(Cow::Borrowed), manifest_json, labels, options).await
    }

    /// [`Classifier::open`] taking the model's bytes: the CPU backend frees
    /// them as soon as they are decoded, one copy of the weights fewer at
    /// the peak of loading (Lite0 in wasm: see `CpuEngine::load_owned`).
    pub async fn open_owned(
        model: Option<Vec<u8>>,
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        Classifier::open_model(model.map(Cow::Owned), manifest_json, labels, options).await
    }

    async fn open_model(
        model: Option<Cow<'_, [u8]>>,
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        let manifest = ModelManifest::from_json(manifest_json)?;
        let labels = read_labels(&manifest, labels)?;
        let remote = options.remote.as_ref();
        let local_why = match (plan(&manifest, options)?, remote) {
            (Plan::Remote(why), Some(config)) => {
                return Classifier::on_remote(config, manifest, why, labels, options).await;
            }
            // plan() only says remote when one is configured.
            (Plan::Remote(_), None) => return Err(no_remote()),
            (Plan::Local(why), _) => why,
        };
        let may_fall_back = options.backend == Backend::Auto && options.fallback;
        let local = load_local(model, &manifest, options)
            .await
            .and_then(|(engine, choice)| {
                let mut c = Classifier::new(
                    manifest.clone(),
                    engine,
                    local_why,
                    labels.clone(),
                    options.decode,
                )?;
                c.local = choice;
                Ok(c)
            });
        match (local, remote) {
            (Ok(mut classifier), Some(config)) if may_fall_back => {
                classifier.fallback = Some(Fallback {
                    config: config.clone(),
                    engine: Mutex::new(None),
                });
                Ok(classifier)
            }
            (Err(e), Some(config)) if may_fall_back => {
                let why = Why::LocalLoadFailed {
                    backend: BackendKind::Cpu,
                    error: e.to_string(),
                };
                Classifier::on_remote(config, manifest, why, labels, options).await
            }
            (local, _) => local,
        }
    }

    async fn on_remote(
        config: &RemoteConfig,
        manifest: ModelManifest,
        why: Why,
        labels: Option<Labels>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        let engine = RemoteEngine::connect(config.clone()).await?;
        Classifier::new(manifest, Box::new(engine), why, labels, options.decode)
    }

    /// A classifier over an already loaded engine.
    pub fn new(
        manifest: ModelManifest,
        engine: Box<dyn Engine>,
        why: Why,
        labels: Option<Labels>,
        decode: DecodeOptions,
    ) -> Result<Classifier, EngineError> {
        let sig = engine.signature();
        let mismatch = |m: String| Err(EngineError::Manifest(m));
        let Some(input) = sig.input(&manifest.input.name) else {
            let names: Vec<&str> = sig.inputs.iter().map(|i| i.name.as_str()).collect();
            return mismatch(format!(
                "input {:?} is not in the model (its inputs: {names:?})",
                manifest.input.name
            ));
        };
        if sig.inputs.len() != 1 {
            return mismatch(format!(
                "the model has {} inputs; image classifiers take one",
                sig.inputs.len()
            ));
        }
        let pre = manifest.preprocessing();
        // A string input takes encoded image files (a remote model that
        // decodes them itself); anything else takes the preprocessed tensor.
        let takes_files = input.dtype == DataType::String;
        if takes_files {
            if !input.unknown_rank && input.shape.len() != 1 {
                return mismatch(format!(
                    "input {:?} takes strings of shape {:?}; encoded images come as a list (shape [-1])",
                    manifest.input.name, input.shape
                ));
            }
        } else {
            let (c, h, w) = (Some(3), Some(pre.height as usize), Some(pre.width as usize));
            let want = match pre.layout {
                edgeserve_vision::Layout::Nchw => [c, h, w],
                edgeserve_vision::Layout::Nhwc => [h, w, c],
            };
            if input.shape.len() != 4 || input.shape[1..] != want {
                return mismatch(format!(
                    "the manifest's {}x{} {:?} input does not fit the model's input shape {:?}",
                    pre.width, pre.height, pre.layout, input.shape
                ));
            }
        }
        let free_batch = input.shape.first().is_none_or(Option::is_none);
        let Some(output) = sig.outputs.iter().find(|o| o.name == manifest.output.name) else {
            return mismatch(format!("output {:?} is not in the model", manifest.output.name));
        };
        if let (Some(labels), Some(Some(classes))) = (&labels, output.shape.last()) {
            labels.check_count(*classes)?;
        }
        let served_as_files = !takes_files && manifest.input.encoding == InputEncoding::Image;
        let engine: Box<dyn Engine> = if served_as_files {
            Box::new(EncodedImages::new(
                engine,
                &manifest.input.name,
                pre.clone(),
                decode,
            ))
        } else {
            engine
        };
        Ok(Classifier {
            manifest,
            engine,
            why,
            local: None,
            fallback: None,
            labels,
            preprocessing: pre,
            decode,
            free_batch,
            takes_files,
            served_as_files,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        self.engine.kind()
    }

    /// How `auto` chose the local backend, for reports of runs on it.
    fn local_choice(&self, ran: BackendKind) -> Option<LocalChoice> {
        self.local.clone().filter(|_| ran == self.backend())
    }

    /// Under `auto`, how the local backend was chosen at load.
    pub fn local_choice_at_load(&self) -> Option<&LocalChoice> {
        self.local.as_ref()
    }

    /// TF Serving's metadata for this model.
    pub fn metadata(&self) -> ModelMetadataResponse {
        ModelMetadataResponse {
            model_spec: ModelSpec {
                name: self.manifest.name.clone(),
                version: Some(VersionSelector::Number(self.manifest.version)),
                signature_name: String::new(),
            },
            metadata: Metadata {
                signature_def: self.engine.signature().to_signature_def_map(),
            },
        }
    }

    /// Answers a TF Serving predict request on the model (on the remote if
    /// the local backend fails on it and fallback is on; see
    /// [`Classifier::predict_with_report`] to learn which ran).
    pub async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, ProtocolError> {
        Ok(self.predict_with_report(request).await?.0)
    }

    /// [`Classifier::predict`], with the report of what ran and why.
    pub async fn predict_with_report(
        &self,
        request: PredictRequest,
    ) -> Result<(PredictResponse, Report), ProtocolError> {
        let t = Instant::now();
        let (response, backend, why) = self.with_fallback(request, |e, r| e.predict(r)).await?;
        let mut timings = Timings::default();
        timings.record_run(backend, ms_since(t));
        Ok((
            response,
            Report {
                backend,
                why,
                local: self.local_choice(backend),
                timings,
            },
        ))
    }

    /// A TF Serving REST predict body in, the response body out, read and
    /// written exactly as TF Serving's REST API does (the signature named in
    /// the body decides the input dtypes); with the report.
    pub async fn predict_json(&self, body: &[u8]) -> Result<(Vec<u8>, Report), ProtocolError> {
        let metadata = self.metadata();
        let request = PredictRequest::from_json(body, |signature| {
            Ok(metadata.metadata.signature_def.get(signature)?.input_types())
        })?;
        let (response, report) = self.predict_with_report(request).await?;
        Ok((response.to_json()?, report))
    }

    /// `call` on the chosen engine, or on the remote when the local one fails
    /// and fallback is on; the result, the backend that ran and why. The
    /// input is kept for the remote only when there is one to fall back to.
    async fn with_fallback<I: Clone, T>(
        &self,
        input: I,
        call: impl for<'a> Fn(&'a dyn Engine, I) -> BoxFuture<'a, Result<T, EngineError>>,
    ) -> Result<(T, BackendKind, Why), EngineError> {
        let kept = self.fallback.as_ref().map(|_| input.clone());
        match (call(self.engine.as_ref(), input).await, kept, &self.fallback) {
            (Ok(out), _, _) => Ok((out, self.backend(), self.why.clone())),
            (Err(e), Some(input), Some(fallback)) if backend_failed(&e) => {
                let why = Why::LocalRunFailed {
                    backend: self.backend(),
                    error: e.to_string(),
                };
                let remote = fallback.engine().await?;
                let out = call(remote.as_ref(), input).await?;
                Ok((out, BackendKind::Remote, why))
            }
            (Err(e), _, _) => Err(e),
        }
    }

    /// The images decoded and preprocessed here, in batches of at most
    /// [`DecodeOptions::max_images_per_run`], or one per image when the
    /// model takes a fixed batch of one.
    fn tensors(&self, images: &[ImageInput<'_>]) -> Result<(Vec<Tensor>, Timings), EngineError> {
        let (data, timings) = preprocess_images(&self.preprocessing, &self.decode, images, |_, e| e.into())?;
        let per_run = if self.free_batch {
            self.decode.max_images_per_run.max(1)
        } else {
            1
        };
        let item = self.preprocessing.item_len();
        let batches = if data.len() <= per_run * item {
            // The common case, without a copy.
            vec![Tensor::from_vec(
                self.preprocessing.batch_shape(images.len()),
                data,
            )?]
        } else {
            data.chunks(per_run * item)
                .map(|run| Tensor::from_vec(self.preprocessing.batch_shape(run.len() / item), run.to_vec()))
                .collect::<Result<_, _>>()?
        };
        Ok((batches, timings))
    }

    /// The images as files for a model that decodes them itself: encoded
    /// images as given (nothing re-encoded, nothing lost), pixels as PNG.
    fn files(&self, images: &[ImageInput<'_>]) -> Result<(Vec<Tensor>, Timings), EngineError> {
        let t = Instant::now();
        let mut budget = self.decode.budget();
        let files = images
            .iter()
            .map(|image| match image {
                ImageInput::Encoded(bytes) => Ok(bytes.to_vec()),
                ImageInput::Pixels { .. } => Ok(edgeserve_vision::encode_png(&decode_image(
                    image,
                    &self.decode,
                    &mut budget,
                )?)?),
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let timings = Timings {
            preprocess_ms: ms_since(t),
            ..Timings::default()
        };
        Ok((vec![Tensor::from_vec(vec![files.len()], files)?], timings))
    }

    /// The top `k` classes of one image.
    pub async fn classify(&self, image: ImageInput<'_>, k: usize) -> Result<Classification, EngineError> {
        let mut all = self.classify_batch(&[image], k).await?;
        all.pop().ok_or_else(|| EngineError::Run {
            backend: self.backend(),
            reason: "no result".into(),
        })
    }

    /// The top `k` classes of each image, run as one batch when the model
    /// takes any batch size (else one by one). Timings are for the whole
    /// batch.
    pub async fn classify_batch(
        &self,
        images: &[ImageInput<'_>],
        k: usize,
    ) -> Result<Vec<Classification>, EngineError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        self.decode.check_count(images.len())?;
        let (batches, mut timings) = if self.takes_files {
            self.files(images)?
        } else {
            self.tensors(images)?
        };
        let t = Instant::now();
        let mut scores: Vec<Vec<f32>> = Vec::with_capacity(images.len());
        let (mut backend, mut why) = (self.backend(), self.why.clone());
        for batch in batches {
            let n = batch.batch_size().unwrap_or(1);
            let inputs = BTreeMap::from([(self.manifest.input.name.clone(), batch)]);
            if !self.served_as_files {
                edgeserve_engine::validate_inputs(self.engine.signature(), &inputs)?;
            }
            let (mut outputs, ran, reason) = self.with_fallback(inputs, |e, i| e.run(i)).await?;
            if ran != backend {
                (backend, why) = (ran, reason);
            }
            let out = outputs
                .remove(&self.manifest.output.name)
                .ok_or_else(|| EngineError::Run {
                    backend,
                    reason: format!("the model gave no output {:?}", self.manifest.output.name),
                })?;
            let values = out.into_vec::<f32>().map_err(|t| EngineError::Run {
                backend,
                reason: format!(
                    "output {:?} is {}, not float",
                    self.manifest.output.name,
                    t.dtype()
                ),
            })?;
            let per = values.len() / n.max(1);
            scores.extend(values.chunks(per.max(1)).map(<[f32]>::to_vec));
        }
        timings.record_run(backend, ms_since(t));

        let report = Report {
            backend,
            why,
            local: self.local_choice(backend),
            timings,
        };
        Ok(scores
            .iter()
            .map(|s| {
                let probs = match self.manifest.output.kind {
                    OutputKind::Logits => softmax(s),
                    OutputKind::Probabilities => s.clone(),
                };
                let classes = top_k(&probs, k)
                    .into_iter()
                    .map(|c| ClassScore {
                        index: c.index,
                        label: self
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(c.index))
                            .map(str::to_owned),
                        score: c.score,
                    })
                    .collect();
                Classification {
                    classes,
                    report: report.clone(),
                }
            })
            .collect())
    }
}

fn decode_image(
    image: &ImageInput<'_>,
    options: &DecodeOptions,
    budget: &mut PixelBudget,
) -> Result<RgbImage, VisionError> {
    match *image {
        ImageInput::Encoded(bytes) => edgeserve_vision::decode_within(bytes, options, budget),
        ImageInput::Pixels {
            width,
            height,
            format,
            data,
        } => edgeserve_vision::from_pixels_within(width, height, format, data, options, budget),
    }
}

/// The batch's values for `images`, in the model's layout, with the time
/// spent decoding and preprocessing; `refuse` words a failure of image `i`.
///
/// Each image is decoded, preprocessed into its slot of the batch and
/// dropped before the next is decoded, so a request holds one decoded image
/// at a time whatever its count; every image's pixels are charged to the
/// request's budget from its header, before they are allocated, and the
/// count is checked before anything is. An image given again (the same
/// bytes in memory, as a classify request's context image is for each
/// example) is decoded once and its slot copied. The request's
/// [`cancel`](edgeserve_engine::cancel) scope is checked between images.
pub(crate) fn preprocess_images(
    pre: &Preprocessing,
    options: &DecodeOptions,
    images: &[ImageInput<'_>],
    refuse: impl Fn(usize, VisionError) -> EngineError,
) -> Result<(Vec<f32>, Timings), EngineError> {
    options.check_count(images.len())?;
    let mut timings = Timings::default();
    let item = pre.item_len();
    let mut data = vec![0f32; item * images.len()];
    let mut budget = options.budget();
    for (i, image) in images.iter().enumerate() {
        edgeserve_engine::cancel::checkpoint()?;
        if let Some(j) = images[..i].iter().position(|earlier| earlier.same_as(image)) {
            data.copy_within(j * item..(j + 1) * item, i * item);
            continue;
        }
        let t = Instant::now();
        let decoded = decode_image(image, options, &mut budget).map_err(|e| refuse(i, e))?;
        timings.decode_ms += ms_since(t);
        let t = Instant::now();
        pre.write_into(&decoded, &mut data[i * item..(i + 1) * item])
            .map_err(|e| refuse(i, e))?;
        timings.preprocess_ms += ms_since(t);
    }
    Ok((data, timings))
}

/// The labels, checked against the manifest.
fn read_labels(manifest: &ModelManifest, labels: Option<&str>) -> Result<Option<Labels>, EngineError> {
    match (labels, &manifest.labels) {
        (Some(text), Some(_)) => {
            manifest.verify_labels(text.as_bytes())?;
            Ok(Some(Labels::parse(text)?))
        }
        (None, Some(spec)) => Err(EngineError::Manifest(format!(
            "the manifest names labels file {} but no labels were given",
            spec.file
        ))),
        (text, None) => Ok(text.map(Labels::parse).transpose()?),
    }
}

/// The model's bytes, after checking they are the manifest's file.
fn load_cpu(model: Cow<'_, [u8]>, options: &CpuOptions) -> Result<CpuEngine, EngineError> {
    match model {
        Cow::Borrowed(bytes) => CpuEngine::load(bytes, options),
        Cow::Owned(bytes) => CpuEngine::load_owned(bytes, options),
    }
}

fn no_model_bytes(manifest: &ModelManifest) -> EngineError {
    EngineError::Manifest(format!(
        "the local backend needs the bytes of {}, and none were given",
        manifest.model.file
    ))
}

/// Checks the model's size and SHA-256 against its manifest.
fn verify(model: &[u8], manifest: &ModelManifest, options: &LoadOptions) -> Result<(), EngineError> {
    match &options.model_sha256 {
        Some(digest) => manifest.verify_model_digest(model.len(), digest)?,
        None => manifest.verify_model(model)?,
    }
    Ok(())
}

#[cfg(feature = "webgpu")]
async fn load_gpu(model: &[u8], options: &LoadOptions) -> Result<Box<dyn Engine>, EngineError> {
    let gpu = edgeserve_webgpu::WebGpuOptions {
        max_tensor_bytes: options.gpu_max_tensor_bytes,
        skip_warmup: false,
    };
    Ok(Box::new(edgeserve_webgpu::WebGpuEngine::load(model, &gpu).await?))
}

#[cfg(not(feature = "webgpu"))]
async fn load_gpu(_: &[u8], _: &LoadOptions) -> Result<Box<dyn Engine>, EngineError> {
    Err(EngineError::Unavailable {
        backend: BackendKind::Webgpu,
        reason: "this build has no WebGPU backend (edgeserve's `webgpu` feature is off)".into(),
    })
}

/// One batch-1 run on zeros, timed: a first untimed run settles what the
/// backend does once (tract's allocations; the GPU's warmup ran at load).
async fn time_run(engine: &dyn Engine) -> Result<f64, EngineError> {
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

fn candidate(backend: BackendKind, outcome: Option<&Result<f64, EngineError>>) -> Candidate {
    Candidate {
        backend,
        run_ms: outcome.and_then(|o| o.as_ref().ok().copied()),
        error: outcome.and_then(|o| o.as_ref().err().map(ToString::to_string)),
    }
}

/// The model on a local backend: the one asked for, or under `auto` the
/// faster of the CPU and the GPU on one measured run (the CPU alone when
/// the GPU cannot take the model, with the reason).
async fn load_local(
    model: Option<Cow<'_, [u8]>>,
    manifest: &ModelManifest,
    options: &LoadOptions,
) -> Result<(Box<dyn Engine>, Option<LocalChoice>), EngineError> {
    let model = model.ok_or_else(|| no_model_bytes(manifest))?;
    verify(&model, manifest, options)?;
    match options.backend {
        Backend::Webgpu => return Ok((load_gpu(&model, options).await?, None)),
        Backend::Auto if cfg!(feature = "webgpu") => {}
        _ => return Ok((Box::new(load_cpu(model, &options.cpu)?), None)),
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
