use crate::{RemoteClient, RemoteConfig, RemoteError};
use edgeserve_engine::{BackendKind, BoxFuture, Engine, EngineError, ModelSignature, NamedTensors};
use edgeserve_protocol::{DEFAULT_SIGNATURE, PredictRequest, PredictResponse};

impl From<RemoteError> for EngineError {
    fn from(e: RemoteError) -> Self {
        match e {
            // The server's own error (or the same check made before
            // sending) keeps TF Serving's code and words, so a bad request
            // fails alike locally and remotely.
            RemoteError::Status { error, .. }
            | RemoteError::Signature { error, .. }
            | RemoteError::Encode { error, .. } => EngineError::Request(error),
            other => EngineError::Remote {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

/// The remote backend: a model served by TF Serving (or `edgeserve serve`),
/// behind the same [`Engine`] interface as the local backends.
#[derive(Debug)]
pub struct RemoteEngine {
    client: RemoteClient,
    signature: ModelSignature,
}

impl RemoteEngine {
    /// Connects: reads the model's metadata and its `serving_default`
    /// signature, which every later request is checked against.
    pub async fn connect(config: RemoteConfig) -> Result<RemoteEngine, RemoteError> {
        let client = RemoteClient::new(config)?;
        let def = client.signature_def(DEFAULT_SIGNATURE).await?;
        let signature =
            ModelSignature::from_signature_def(&def).map_err(|error| client.signature_error(error))?;
        Ok(RemoteEngine { client, signature })
    }

    /// The client underneath (status, classify, regress).
    pub fn client(&self) -> &RemoteClient {
        &self.client
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
            let response = self.client.predict(&PredictRequest::named_inputs(inputs)).await?;
            Ok(response.outputs)
        })
    }

    /// Sends the request as it is (its format, its signature name: the
    /// server may have signatures besides `serving_default`), after the
    /// client's check against the server's signature.
    fn predict(&self, request: PredictRequest) -> BoxFuture<'_, Result<PredictResponse, EngineError>> {
        Box::pin(async move { Ok(self.client.predict(&request).await?) })
    }
}
