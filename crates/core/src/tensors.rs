//! A model served as tensors in, tensors out: no image preprocessing, no
//! labels, its signature read from the graph (names, dtypes, shapes with
//! their dynamic dimensions). This is how TF Serving serves any SavedModel,
//! and what a regression or embedding model, or TF Serving's own
//! `half_plus_two`, needs; a [`crate::Classifier`] is for image models.

use edgeserve_cpu::CpuEngine;
use edgeserve_engine::{BackendKind, Engine, EngineError};
use edgeserve_protocol::{
    Error as ProtocolError, Metadata, ModelMetadataResponse, ModelSpec, PredictRequest, PredictResponse,
    VersionSelector,
};

use crate::{Backend, LoadOptions};

/// A model answering TF Serving predict requests on its own signature.
pub struct TensorModel {
    engine: Box<dyn Engine>,
}

impl TensorModel {
    /// Loads an ONNX model from its bytes on the CPU. A model needs no
    /// manifest here: its signature is the graph's. Only the CPU backend
    /// is loaded synchronously, so any other backend asked for is refused.
    pub fn load(model: &[u8], options: &LoadOptions) -> Result<TensorModel, EngineError> {
        TensorModel::load_wrapped(model, options, |engine| engine)
    }

    /// [`TensorModel::load`] with the loaded engine passed through `wrap`
    /// (see [`crate::Classifier::load_wrapped`]).
    pub fn load_wrapped(
        model: &[u8],
        options: &LoadOptions,
        wrap: impl FnOnce(Box<dyn Engine>) -> Box<dyn Engine>,
    ) -> Result<TensorModel, EngineError> {
        if !matches!(options.backend, Backend::Auto | Backend::Cpu) || options.remote.is_some() {
            return Err(EngineError::Manifest(format!(
                "a tensor model loads on the CPU only; the {:?} backend was asked for",
                options.backend
            )));
        }
        Ok(TensorModel::new(wrap(Box::new(CpuEngine::load(
            model,
            &options.cpu,
        )?))))
    }

    /// A tensor model over an already loaded engine.
    pub fn new(engine: Box<dyn Engine>) -> TensorModel {
        TensorModel { engine }
    }

    /// Which backend runs it.
    pub fn backend(&self) -> BackendKind {
        self.engine.kind()
    }

    /// TF Serving's metadata: the graph's signature as `serving_default`
    /// (method `tensorflow/serving/predict`), under `name` and `version`.
    pub fn metadata(&self, name: &str, version: i64) -> ModelMetadataResponse {
        ModelMetadataResponse {
            model_spec: ModelSpec {
                name: name.to_owned(),
                version: Some(VersionSelector::Number(version)),
                signature_name: String::new(),
            },
            metadata: Metadata {
                signature_def: self.engine.signature().to_signature_def_map(),
            },
        }
    }

    /// Answers a TF Serving predict request: inputs checked against the
    /// signature (names, dtypes, shapes), run, answered in the request's
    /// format.
    pub async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, ProtocolError> {
        Ok(self.engine.predict(request).await?)
    }

    /// [`TensorModel::predict`] on TF Serving's JSON text, answered in JSON
    /// text: the request is read against the signature it names (a
    /// `b64` value is bytes only where that input is a string), as TF
    /// Serving's REST API reads it.
    pub async fn predict_json(&self, body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let signatures = self.engine.signature().to_signature_def_map();
        let request = PredictRequest::from_json(body, |name| Ok(signatures.get(name)?.input_types()))?;
        self.predict(request).await?.to_json()
    }
}
