//! What a caller may set when loading a model.

use crate::routing::*;
use edgeserve_cpu::CpuOptions;
use edgeserve_remote::RemoteConfig;
use edgeserve_vision::DecodeOptions;

/// Options for [`Classifier::load`](crate::Classifier::load) and [`Classifier::open`](crate::Classifier::open).
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
