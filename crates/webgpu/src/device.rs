//! The one GPU device of the process: acquired once (burn's wgpu runtime
//! refuses a second initialisation of the same adapter), with the adapter's
//! name and the limits a model is checked against.

use burn::tensor::Device;
use burn::tensor::wgpu::{WgpuBackend, WgpuSetup};
use edgeserve_engine::{BackendKind, EngineError};
use std::sync::OnceLock;

/// What the adapter is, as wgpu reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    /// The adapter's name (`llvmpipe (LLVM 15.0.6, 256 bits)`, `SwiftShader Device`…).
    pub name: String,
    /// The graphics API under wgpu (`Vulkan`, `BrowserWebGpu`…).
    pub api: String,
    /// `Cpu` for software adapters (lavapipe, SwiftShader), else the GPU kind.
    pub device_type: String,
}

/// The device limits a model's tensors are checked against at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `maxBufferSize`: the largest buffer the device will create.
    pub max_buffer_size: u64,
    /// `maxStorageBufferBindingSize`: the largest buffer a shader can bind,
    /// so the largest tensor a kernel can read or write.
    pub max_storage_buffer_binding_size: u64,
    /// `maxComputeWorkgroupStorageSize`, in bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// `maxComputeInvocationsPerWorkgroup`.
    pub max_compute_invocations_per_workgroup: u32,
}

impl Limits {
    /// The largest tensor, in bytes, that fits both a buffer and a binding.
    pub fn max_tensor_bytes(&self) -> u64 {
        self.max_buffer_size.min(self.max_storage_buffer_binding_size)
    }
}

/// The acquired device.
pub struct Gpu {
    pub(crate) device: Device,
    /// What the adapter is.
    pub info: AdapterInfo,
    /// Its limits.
    pub limits: Limits,
}

static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();

fn from_setup(device: Device, setup: &WgpuSetup) -> Gpu {
    let info = setup.adapter.get_info();
    let limits = setup.device.limits();
    Gpu {
        device,
        info: AdapterInfo {
            name: info.name,
            api: format!("{:?}", setup.backend),
            device_type: format!("{:?}", info.device_type),
        },
        limits: Limits {
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        },
    }
}

fn unavailable(reason: impl Into<String>) -> EngineError {
    EngineError::Unavailable {
        backend: BackendKind::Webgpu,
        reason: reason.into(),
    }
}

fn settled() -> Option<Result<&'static Gpu, EngineError>> {
    GPU.get().map(|r| r.as_ref().map_err(|e| unavailable(e.clone())))
}

/// Keeps the first outcome recorded (two loads may race to acquire the
/// device) and returns the one kept.
fn record(acquired: Result<Gpu, String>) -> Result<&'static Gpu, EngineError> {
    GPU.get_or_init(|| acquired)
        .as_ref()
        .map_err(|e| unavailable(e.clone()))
}

/// The process's GPU, acquired on first use. Natively wgpu picks the
/// graphics API (Vulkan on Linux, lavapipe where there is no GPU).
#[cfg(not(target_arch = "wasm32"))]
pub async fn gpu() -> Result<&'static Gpu, EngineError> {
    use std::sync::Mutex;
    // Tests load engines from several threads at once; only one may ask
    // burn for the device.
    static ACQUIRING: Mutex<()> = Mutex::new(());
    if let Some(done) = settled() {
        return done;
    }
    let _guard = ACQUIRING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(done) = settled() {
        return done;
    }
    let acquired = Device::wgpu_options()
        .graphics_api(WgpuBackend::Auto)
        .init_with_setup()
        .map(|(device, setup)| from_setup(device, &setup))
        .map_err(|e| format!("no WebGPU-capable adapter: {e}"));
    record(acquired)
}

/// The process's GPU, acquired on first use, through the browser's
/// `navigator.gpu` (wgpu's WebGPU backend needs a window or a worker
/// global, so Node and Workers get a clear "unavailable" instead).
#[cfg(target_arch = "wasm32")]
pub async fn gpu() -> Result<&'static Gpu, EngineError> {
    // cubecl registers its IR and WGSL items from static constructors.
    edgeserve_ctors::ensure();
    if let Some(done) = settled() {
        return done;
    }
    if let Some(reason) = no_webgpu_reason() {
        return record(Err(reason));
    }
    let acquired = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_with_setup_async()
        .await
        .map(|(device, setup)| from_setup(device, &setup))
        .map_err(|e| format!("no WebGPU adapter: {e}"));
    record(acquired)
}

#[cfg(target_arch = "wasm32")]
fn no_webgpu_reason() -> Option<String> {
    use wasm_bindgen::JsValue;
    let global = js_sys::global();
    let has =
        |name: &str| js_sys::Reflect::get(&global, &JsValue::from_str(name)).is_ok_and(|v| !v.is_undefined());
    if !has("Window") && !has("WorkerGlobalScope") {
        return Some("this host is neither a browser window nor a web worker".into());
    }
    let gpu = js_sys::Reflect::get(&global, &JsValue::from_str("navigator"))
        .ok()
        .filter(|n| !n.is_undefined())
        .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .filter(|g| !g.is_undefined() && !g.is_null());
    gpu.is_none()
        .then(|| "navigator.gpu is missing (this browser has no WebGPU)".into())
}
