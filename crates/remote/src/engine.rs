use crate::{Discovery, RemoteClient, RemoteConfig, RemoteError};
use edgeserve_engine::{BackendKind, BoxFuture, Engine, EngineError, ModelSignature, NamedTensors};
use edgeserve_protocol::{
    Code, DEFAULT_SIGNATURE, Endpoint, Error as ProtocolError, Format, Inputs, PredictRequest,
    PredictResponse, SignatureDefMap,
};

impl From<RemoteError> for EngineError {
    fn from(e: RemoteError) -> Self {
        match e {
            // A request that does not fit the model, found before sending or
            // by the server (TF Serving's own INVALID_ARGUMENT answer), keeps
            // TF Serving's code and words, so a bad request fails alike
            // locally and remotely.
            RemoteError::Signature { error, .. } | RemoteError::Encode { error, .. } => {
                EngineError::Request(error)
            }
            RemoteError::Status {
                error,
                tf_serving_body: true,
                ..
            } if error.code() == Code::InvalidArgument => EngineError::Request(error),
            // Everything else is about the remote itself (a wrong URL or
            // model name, another protocol, a server down): the message
            // names the step, the URL and what the server said.
            other => EngineError::Remote {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

/// Where the remote backend's signature came from, which every report of a
/// remote run names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureSource {
    /// The server's TF Serving metadata (`GET …/metadata`).
    Metadata,
    /// The caller's (the manifest's), because the server has no TF Serving
    /// metadata; `reason` is what its metadata call answered.
    Fallback {
        /// The metadata call's failure, with its URL.
        reason: String,
    },
    /// The caller's: discovery is off ([`Discovery::Off`]).
    Given,
}

/// The remote backend: a model served by TF Serving (or `edgeserve serve`,
/// or any server of TF Serving's predict protocol), behind the same
/// [`Engine`] interface as the local backends.
#[derive(Debug)]
pub struct RemoteEngine {
    client: RemoteClient,
    signature: ModelSignature,
    /// `signature` as TF Serving's map, built once: what each request
    /// under a caller's signature is written against.
    defs: SignatureDefMap,
    source: SignatureSource,
}

impl RemoteEngine {
    /// Connects: reads the model's metadata and its `serving_default`
    /// signature, which every later request is checked against. A server
    /// without TF Serving's metadata is an error here; see
    /// [`RemoteEngine::connect_with_signature`].
    pub async fn connect(config: RemoteConfig) -> Result<RemoteEngine, RemoteError> {
        RemoteEngine::discover(config, None).await
    }

    /// Connects with the signature the caller knows (its manifest's): the
    /// server's metadata is read unless discovery is off, and `known` used
    /// where the server has none ([`RemoteError::is_missing_metadata`]).
    /// Other failures of the metadata call (no connection, a TF Serving
    /// error such as an unknown model) are errors still.
    pub async fn connect_with_signature(
        config: RemoteConfig,
        known: ModelSignature,
    ) -> Result<RemoteEngine, RemoteError> {
        RemoteEngine::discover(config, Some(known)).await
    }

    async fn discover(
        config: RemoteConfig,
        known: Option<ModelSignature>,
    ) -> Result<RemoteEngine, RemoteError> {
        let client = RemoteClient::new(config)?;
        let engine = RemoteEngine::assemble;
        if client.config().discovery == Discovery::Off {
            return match known {
                Some(signature) => Ok(engine(client, signature, SignatureSource::Given)),
                None => Err(RemoteError::Config(
                    "discovery is off, but no signature was given to use instead".into(),
                )),
            };
        }
        match (client.signature_def(DEFAULT_SIGNATURE).await, known) {
            (Ok(def), _) => {
                let signature = ModelSignature::from_signature_def(&def)
                    .map_err(|error| client.invalid(Endpoint::Metadata, error))?;
                Ok(engine(client, signature, SignatureSource::Metadata))
            }
            (Err(e), Some(signature)) if e.is_missing_metadata() => {
                let source = SignatureSource::Fallback {
                    reason: e.to_string(),
                };
                Ok(engine(client, signature, source))
            }
            (Err(e), _) => Err(e),
        }
    }

    fn assemble(client: RemoteClient, signature: ModelSignature, source: SignatureSource) -> RemoteEngine {
        RemoteEngine {
            client,
            defs: signature.to_signature_def_map(),
            signature,
            source,
        }
    }

    /// The client underneath (status, classify, regress).
    pub fn client(&self) -> &RemoteClient {
        &self.client
    }

    /// Where the signature came from.
    pub fn signature_source(&self) -> &SignatureSource {
        &self.source
    }

    /// Sends `request`: checked against the server's signature when it gave
    /// one, else against the caller's, whose answers are checked too (each
    /// output there, one item per instance).
    async fn send(&self, request: &PredictRequest) -> Result<PredictResponse, RemoteError> {
        if self.source == SignatureSource::Metadata {
            return self.client.predict(request).await;
        }
        let def = self
            .defs
            .get(request.signature())
            .map_err(|error| self.client.signature_error(Endpoint::Predict, error))?;
        let response = self.client.predict_with_signature(def, request).await?;
        self.check_answer(request, &response)
            .map_err(|error| self.client.invalid(Endpoint::Predict, error))?;
        Ok(response)
    }

    /// What TF Serving's metadata would have guaranteed: every output of the
    /// signature, with the request's batch size and the fixed dimensions
    /// the signature gives.
    fn check_answer(
        &self,
        request: &PredictRequest,
        response: &PredictResponse,
    ) -> Result<(), ProtocolError> {
        let batch = match &request.inputs {
            Inputs::Single(t) => t.batch_size(),
            Inputs::Named(map) => map.values().next().and_then(|t| t.batch_size()),
        };
        for spec in &self.signature.outputs {
            let Some(t) = response.outputs.get(&spec.name) else {
                return Err(ProtocolError::invalid_argument(format!(
                    "the answer has no output {:?} (the manifest's)",
                    spec.name
                )));
            };
            if let (Some(want), Some(got)) = (batch, t.batch_size())
                && want != got
            {
                return Err(ProtocolError::invalid_argument(format!(
                    "output {:?} has {got} item(s) for a batch of {want}",
                    spec.name
                )));
            }
            if !spec.fits(t.shape()) {
                return Err(ProtocolError::invalid_argument(format!(
                    "output {:?} has shape {:?}, the manifest's is {}",
                    spec.name,
                    t.shape(),
                    spec.shape_text()
                )));
            }
        }
        Ok(())
    }
}

/// A request for `inputs` in `format`: rows (`"instances"`; one plain list
/// for a single input, the form every TF Serving-protocol server takes)
/// where the inputs share a batch size of at least one, else columnar.
fn request_in(inputs: NamedTensors, format: Format) -> PredictRequest {
    let mut batches = inputs.values().map(|t| t.batch_size());
    let first = batches.next().flatten();
    let rows = format == Format::Row && first.is_some_and(|b| b > 0) && batches.all(|b| b == first);
    match (rows, inputs.len()) {
        (true, 1) => match inputs.into_values().next() {
            Some(t) => PredictRequest::instances(t),
            None => PredictRequest::named_inputs(NamedTensors::new()),
        },
        (true, _) => PredictRequest {
            signature_name: None,
            format: Format::Row,
            inputs: Inputs::Named(inputs),
        },
        (false, _) => PredictRequest::named_inputs(inputs),
    }
}

impl Engine for RemoteEngine {
    fn kind(&self) -> BackendKind {
        BackendKind::Remote
    }

    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn run(&self, inputs: NamedTensors) -> BoxFuture<'_, Result<NamedTensors, EngineError>> {
        Box::pin(async move {
            let request = request_in(inputs, self.client.config().format);
            Ok(self.send(&request).await?.outputs)
        })
    }

    /// Sends the request as it is (its format, its signature name: the
    /// server may have signatures besides `serving_default`), after the
    /// check against the signature.
    fn predict(&self, request: PredictRequest) -> BoxFuture<'_, Result<PredictResponse, EngineError>> {
        Box::pin(async move { Ok(self.send(&request).await?) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use edgeserve_protocol::Tensor;

    fn t(shape: &[usize]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), vec![0f32; shape.iter().product()]).unwrap()
    }

    #[test]
    fn the_backend_writes_rows_unless_told_or_unable() {
        let one = NamedTensors::from([("x".to_owned(), t(&[2, 3]))]);
        let r = request_in(one.clone(), Format::Row);
        assert_eq!(
            (r.format, matches!(r.inputs, Inputs::Single(_))),
            (Format::Row, true)
        );
        assert!(
            std::str::from_utf8(&r.to_json().unwrap())
                .unwrap()
                .contains("\"instances\"")
        );
        assert_eq!(request_in(one, Format::Columnar).format, Format::Columnar);

        let two = NamedTensors::from([("a".to_owned(), t(&[2, 3])), ("b".to_owned(), t(&[2]))]);
        let r = request_in(two, Format::Row);
        assert_eq!(
            (r.format, matches!(r.inputs, Inputs::Named(_))),
            (Format::Row, true)
        );
        // Rows cannot carry inputs of different batch sizes, nor none.
        let mixed = NamedTensors::from([("a".to_owned(), t(&[2, 3])), ("b".to_owned(), t(&[3]))]);
        assert_eq!(request_in(mixed, Format::Row).format, Format::Columnar);
        let empty = NamedTensors::from([("a".to_owned(), t(&[0, 3]))]);
        assert_eq!(request_in(empty, Format::Row).format, Format::Columnar);
    }

    #[test]
    fn answers_are_checked_against_the_callers_signature() {
        use edgeserve_engine::TensorSpec;
        let engine = RemoteEngine::assemble(
            RemoteClient::new(RemoteConfig::new("http://127.0.0.1:9", "m")).unwrap(),
            ModelSignature {
                inputs: vec![TensorSpec {
                    name: "x".into(),
                    dtype: edgeserve_protocol::DataType::Float,
                    shape: vec![None, Some(3)],
                    unknown_rank: false,
                }],
                outputs: vec![TensorSpec {
                    name: "y".into(),
                    dtype: edgeserve_protocol::DataType::Float,
                    shape: vec![None, Some(4)],
                    unknown_rank: false,
                }],
            },
            SignatureSource::Given,
        );
        let request = request_in(NamedTensors::from([("x".to_owned(), t(&[2, 3]))]), Format::Row);
        let answer = |name: &str, shape: &[usize]| PredictResponse {
            format: Format::Row,
            outputs: NamedTensors::from([(name.to_owned(), t(shape))]),
        };
        assert!(engine.check_answer(&request, &answer("y", &[2, 4])).is_ok());
        let fault = |name, shape| {
            engine
                .check_answer(&request, &answer(name, shape))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            fault("z", &[2, 4]),
            "the answer has no output \"y\" (the manifest's)"
        );
        assert_eq!(fault("y", &[1, 4]), "output \"y\" has 1 item(s) for a batch of 2");
        assert_eq!(
            fault("y", &[2, 5]),
            "output \"y\" has shape [2, 5], the manifest's is [-1,4]"
        );
    }
}
