//! The one place that decides where a model runs: the backend asked for,
//! else (under `auto`) the local size budget and the device's memory,
//! with the reason ([`Why`]) every report carries. The package and the
//! Worker ask it through the wasm `plan` export before downloading.

use crate::options::LoadOptions;
use edgeserve_engine::{BackendKind, EngineError, ModelManifest};
use edgeserve_protocol::Code;
use serde::Serialize;

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
    /// `webgpu` feature and [`Classifier::open`](crate::Classifier::open) (acquiring a GPU is
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
pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Why a backend was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum Why {
    /// The caller asked for it.
    Requested,
    /// `auto`, no remote configured, and the model fits the budget: it runs
    /// on this device (which local backend is in [`Report::local`](crate::Report::local)).
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

/// Where [`Classifier::open`](crate::Classifier::open) will run a model, decided from its manifest
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

pub(crate) fn no_remote() -> EngineError {
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
    plan_size(manifest.model.bytes, options)
}

/// [`plan`] for a model of `model_bytes` bytes: the size is all a plan
/// reads from a manifest, so bytes at hand are planned before their
/// manifest is read ([`crate::LoadingModel::start_unread`]).
pub(crate) fn plan_size(model_bytes: u64, options: &LoadOptions) -> Result<Plan, EngineError> {
    let budget = options.max_local_model_bytes;
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
