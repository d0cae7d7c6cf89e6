//! edgeserve's facade: a [`Classifier`] loads a model with its manifest and
//! labels, classifies images (top-k with labels) or answers TF Serving
//! requests, and says in a [`Report`] which backend ran, why, and how long
//! each step took.
//!
//! [`Classifier::load`] runs on a local backend; [`Classifier::open`] also
//! routes to a TF Serving endpoint ([`RemoteConfig`]): models over the local
//! budget go remote, and a local failure falls back to the remote unless
//! the caller forbids it. Every result's report says which path ran and why.
//!
//! A model that is not an image classifier (a regression or embedding
//! model, TF Serving's `half_plus_two`) is a [`TensorModel`]: TF Serving
//! predict requests on the graph's own signature, no manifest needed.
//!
//! ```no_run
//! use edgeserve::{Classifier, ImageInput, LoadOptions};
//! # async fn demo(model: &[u8], manifest: &[u8], labels: &str, photo: &[u8]) -> Result<(), edgeserve::EngineError> {
//! let classifier = Classifier::load(model, manifest, Some(labels), &LoadOptions::default())?;
//! let result = classifier.classify(ImageInput::Encoded(photo), 5).await?;
//! println!("{} ({:.1}%) on {}", result.classes[0].label.as_deref().unwrap_or("?"),
//!          100.0 * result.classes[0].score, result.report.backend);
//! # Ok(()) }
//! ```

mod classifier;
mod encoded;
mod fallback;
mod images;
mod local;
mod options;
mod report;
mod routing;
mod tensors;

pub use classifier::Classifier;
pub use edgeserve_cpu::{CpuOptions, threads as cpu_threads};
pub use edgeserve_engine::{
    BackendKind, BoxFuture, Engine, EngineError, LabelsSpec, ModelManifest, ModelSignature, NamedTensors,
    Preset, cancel, sha256_hex,
};
pub use edgeserve_onnx::manifest::{ManifestOptions, derive as derive_manifest};
pub use edgeserve_protocol as protocol;
pub use edgeserve_remote::{Discovery, RemoteConfig, RemoteError, RetryPolicy, SignatureSource};
pub use edgeserve_vision::{DecodeOptions, PixelFormat};
pub use images::ImageInput;
pub use local::LoadingModel;
pub use options::LoadOptions;
pub use report::{Candidate, ClassScore, Classification, LocalChoice, RemoteSignature, Report, Timings};
pub use routing::{
    Backend, DEFAULT_MAX_LOCAL_MODEL_BYTES, DEVICE_MEMORY_SHARE, LOCAL_MEMORY_PER_MODEL_BYTE, Plan, Why, plan,
};
pub use tensors::TensorModel;
