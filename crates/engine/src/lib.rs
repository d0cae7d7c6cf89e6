//! The interface every edgeserve backend implements (CPU, WebGPU, remote),
//! the model manifest that says what an ONNX file alone does not, and the
//! checks of a TF Serving request against a model's signature that every
//! backend shares.

pub mod cancel;
mod error;
mod manifest;
mod signature;

pub use error::EngineError;
pub use manifest::{
    InputEncoding, InputSpec, LabelsSpec, MANIFEST_SCHEMA, ModelFile, ModelManifest, OutputKind, OutputSpec,
    PreprocessingSpec, Preset, sha256_hex,
};
pub use signature::{ModelSignature, TensorSpec, validate_inputs};

use edgeserve_protocol::{PredictRequest, PredictResponse, Tensor};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// Tensors by name.
pub type NamedTensors = BTreeMap<String, Tensor>;

/// A boxed future: `Send` natively (so servers can move work between
/// threads), not in wasm (browser futures hold JS values and are not `Send`).
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future: `Send` natively (so servers can move work between
/// threads), not in wasm (browser futures hold JS values and are not `Send`).
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// `Send + Sync` natively, nothing in wasm; see [`BoxFuture`].
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}
/// `Send + Sync` natively, nothing in wasm; see [`BoxFuture`].
#[cfg(target_arch = "wasm32")]
pub trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSendSync for T {}

/// Which backend ran a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// tract on the CPU (wasm SIMD in browsers).
    Cpu,
    /// burn/wgpu on WebGPU (or Vulkan/Metal/DX12 natively).
    Webgpu,
    /// A TF Serving REST endpoint.
    Remote,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Webgpu => "webgpu",
            BackendKind::Remote => "remote",
        })
    }
}

/// A loaded model on one backend.
///
/// Implementations keep their prepared plan and weights and reuse them for
/// every call; `run` takes inputs already checked against [`Engine::signature`]
/// by [`Engine::predict`] (a direct caller should call [`validate_inputs`]).
pub trait Engine: MaybeSendSync {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// The model's inputs and outputs.
    fn signature(&self) -> &ModelSignature;

    /// Runs the model on named inputs, returning every output.
    fn run(&self, inputs: NamedTensors) -> BoxFuture<'_, Result<NamedTensors, EngineError>>;

    /// Answers a TF Serving predict request: names a single unnamed input,
    /// checks names, dtypes and shapes against the signature, runs, and
    /// answers in the request's format.
    fn predict(&self, request: PredictRequest) -> BoxFuture<'_, Result<PredictResponse, EngineError>> {
        Box::pin(async move {
            let signature = self.signature();
            if request.signature() != edgeserve_protocol::DEFAULT_SIGNATURE {
                return Err(EngineError::Request(edgeserve_protocol::Error::invalid_argument(
                    format!(
                        "Serving signature name: \"{}\" not found in signature def",
                        edgeserve_protocol::quote(request.signature())
                    ),
                )));
            }
            let format = request.format;
            let inputs = request.into_named(&signature.input_types())?;
            validate_inputs(signature, &inputs)?;
            let outputs = self.run(inputs).await?;
            Ok(PredictResponse { format, outputs })
        })
    }
}
