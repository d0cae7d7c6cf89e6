use crate::transport::{Failure, HttpRequest, Method, Transport};
use crate::{RemoteConfig, RemoteError};
use edgeserve_engine::{ModelSignature, validate_inputs};
use edgeserve_protocol::{
    ClassifyRequest, ClassifyResponse, Endpoint, Error as ProtocolError, ModelMetadataResponse,
    ModelStatusResponse, PredictRequest, PredictResponse, RegressRequest, RegressResponse, Route,
    SignatureDef,
};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Statuses that mean "not now, try again", where a retry cannot repeat
/// work the server did: rate limited, bad gateway, unavailable, gateway
/// timeout.
const RETRYABLE_STATUSES: [u16; 4] = [429, 502, 503, 504];

/// A client of one model on a TF Serving REST endpoint.
///
/// The same code builds requests and reads answers natively (reqwest) and in
/// wasm (`fetch`); only the exchange itself differs.
pub struct RemoteClient {
    config: RemoteConfig,
    base: String,
    transport: Transport,
    jitter: Mutex<fastrand::Rng>,
    metadata: Mutex<Option<Arc<ModelMetadataResponse>>>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn gzip(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(body).map_err(|e| e.to_string())?;
    encoder.finish().map_err(|e| e.to_string())
}

/// A seed that differs between clients and page loads, so that clients
/// started together do not back off in step.
fn seed() -> u64 {
    static CLIENTS: AtomicU64 = AtomicU64::new(0);
    let nanos = web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = CLIENTS.fetch_add(1, Ordering::Relaxed);
    nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl RemoteClient {
    /// A client for `config`; checks the configuration, connects to nothing.
    pub fn new(config: RemoteConfig) -> Result<RemoteClient, RemoteError> {
        let base = config.validate()?;
        let transport = Transport::new().map_err(RemoteError::Config)?;
        Ok(RemoteClient {
            config,
            base,
            transport,
            jitter: Mutex::new(fastrand::Rng::with_seed(seed())),
            metadata: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    /// The full URL of an endpoint of the configured model and version.
    pub fn url(&self, endpoint: Endpoint) -> Result<String, RemoteError> {
        let mut route = Route::new(self.config.model.clone(), endpoint);
        route.version = self.config.version.clone();
        let path = route.to_path().map_err(|e| RemoteError::Config(e.to_string()))?;
        Ok(format!("{}{path}", self.base))
    }

    /// The wait before retry `retry` (0-based): the policy's backoff, less
    /// up to half of it at random.
    fn jittered(&self, retry: u32) -> Duration {
        let full = self.config.retry.backoff(retry);
        let fraction = self.jitter.lock().unwrap_or_else(PoisonError::into_inner).f64();
        full.mul_f64(0.5 + 0.5 * fraction)
    }

    /// One call with retries; the body of a 200 answer.
    async fn call(&self, endpoint: Endpoint, body: Option<Vec<u8>>) -> Result<Vec<u8>, RemoteError> {
        let url = self.url(endpoint)?;
        let mut headers = self.config.headers.clone();
        // No Content-Type: TF Serving ignores it, and in browsers a JSON
        // content type would turn every call into a CORS preflight that TF
        // Serving only answers with --rest_api_enable_cors_support.
        let body = match body {
            Some(plain) if self.config.gzip_requests => {
                headers.push(("Content-Encoding".into(), "gzip".into()));
                Some(gzip(&plain).map_err(|reason| RemoteError::Transport {
                    step: endpoint,
                    url: url.clone(),
                    reason: format!("gzip: {reason}"),
                })?)
            }
            other => other,
        };
        let request = HttpRequest {
            method: if body.is_some() { Method::Post } else { Method::Get },
            url: url.clone(),
            headers,
            body,
            timeout: self.config.timeout,
            max_response_bytes: self.config.max_response_bytes,
        };
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let outcome = self.transport.send(request.clone()).await;
            let retryable = match &outcome {
                Ok(r) => RETRYABLE_STATUSES.contains(&r.status),
                Err(failure) => matches!(failure, Failure::Connect(_)),
            };
            if retryable && attempts <= self.config.retry.max_retries {
                self.transport.sleep(self.jittered(attempts - 1)).await;
                continue;
            }
            return match outcome {
                Ok(r) if (200..300).contains(&r.status) => Ok(r.body),
                Ok(r) => {
                    let text = String::from_utf8_lossy(&r.body);
                    let (error, tf_serving_body) = ProtocolError::read_http_response(r.status, &r.body);
                    Err(RemoteError::Status {
                        step: endpoint,
                        error,
                        tf_serving_body,
                        body: edgeserve_protocol::quote(&text).into_owned(),
                        url,
                        status: r.status,
                        attempts,
                    })
                }
                Err(Failure::Connect(reason)) => Err(RemoteError::Connect {
                    step: endpoint,
                    url,
                    reason,
                    attempts,
                }),
                Err(Failure::Timeout) => Err(RemoteError::Timeout {
                    step: endpoint,
                    url,
                    timeout_ms: self.config.timeout.as_millis() as u64,
                }),
                Err(Failure::TooLarge(got)) => Err(RemoteError::TooLarge {
                    step: endpoint,
                    url,
                    limit: self.config.max_response_bytes,
                    got,
                }),
                Err(Failure::Other(reason)) => Err(RemoteError::Transport {
                    step: endpoint,
                    url,
                    reason,
                }),
            };
        }
    }

    /// `GET /v1/models/{model}[/versions/{v}]`: the state of its versions.
    pub async fn status(&self) -> Result<ModelStatusResponse, RemoteError> {
        let body = self.call(Endpoint::Status, None).await?;
        ModelStatusResponse::from_json(&body).map_err(|error| self.invalid(Endpoint::Status, error))
    }

    /// `GET …/metadata`, read from the server on the first call and kept:
    /// a server's signature does not change while it serves a version.
    pub async fn metadata(&self) -> Result<Arc<ModelMetadataResponse>, RemoteError> {
        if let Some(known) = self
            .metadata
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(known);
        }
        let body = self.call(Endpoint::Metadata, None).await?;
        let fresh = Arc::new(
            ModelMetadataResponse::from_json(&body)
                .map_err(|error| self.invalid(Endpoint::Metadata, error))?,
        );
        *self.metadata.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }

    /// A 2xx answer of `endpoint` that is not what was asked for.
    pub(crate) fn invalid(&self, endpoint: Endpoint, error: ProtocolError) -> RemoteError {
        RemoteError::InvalidResponse {
            step: endpoint,
            url: self.url(endpoint).unwrap_or_default(),
            error,
        }
    }

    /// A request to `endpoint` that does not fit the model's signature.
    pub(crate) fn signature_error(&self, endpoint: Endpoint, error: ProtocolError) -> RemoteError {
        RemoteError::Signature {
            step: endpoint,
            url: self.url(endpoint).unwrap_or_default(),
            error,
        }
    }

    /// The signature a request names, from the server's metadata.
    pub async fn signature_def(&self, name: &str) -> Result<SignatureDef, RemoteError> {
        let metadata = self.metadata().await?;
        metadata
            .metadata
            .signature_def
            .get(name)
            .cloned()
            .map_err(|error| self.signature_error(Endpoint::Metadata, error))
    }

    /// `POST …:predict`. The request is checked against the server's
    /// signature first (input names, dtypes, fixed dimensions; TF Serving's
    /// wording), then sent in its own format (row or columnar); the answer is
    /// read with the signature's output names and dtypes.
    pub async fn predict(&self, request: &PredictRequest) -> Result<PredictResponse, RemoteError> {
        let def = self.signature_def(request.signature()).await?;
        self.predict_with_signature(&def, request).await
    }

    /// [`RemoteClient::predict`] against a signature the caller knows (a
    /// manifest's, for a server without TF Serving's metadata) instead of
    /// the server's.
    pub async fn predict_with_signature(
        &self,
        def: &SignatureDef,
        request: &PredictRequest,
    ) -> Result<PredictResponse, RemoteError> {
        let mismatch = |error| self.signature_error(Endpoint::Predict, error);
        let signature = ModelSignature::from_signature_def(def).map_err(mismatch)?;
        let named = request.clone().into_named(&def.input_types()).map_err(mismatch)?;
        validate_inputs(&signature, &named).map_err(mismatch)?;
        let body = request.to_json().map_err(|error| RemoteError::Encode {
            step: Endpoint::Predict,
            url: self.url(Endpoint::Predict).unwrap_or_default(),
            error,
        })?;
        let answer = self.call(Endpoint::Predict, Some(body)).await?;
        PredictResponse::from_json(&answer, &def.output_types())
            .map_err(|error| self.invalid(Endpoint::Predict, error))
    }

    /// Posts a `:classify` or `:regress` body; the answer's body.
    async fn post_examples(
        &self,
        endpoint: Endpoint,
        request: &ClassifyRequest,
    ) -> Result<Vec<u8>, RemoteError> {
        let body = request.to_json().map_err(|error| RemoteError::Encode {
            step: endpoint,
            url: self.url(endpoint).unwrap_or_default(),
            error,
        })?;
        self.call(endpoint, Some(body)).await
    }

    /// `POST …:classify`.
    pub async fn classify(&self, request: &ClassifyRequest) -> Result<ClassifyResponse, RemoteError> {
        let answer = self.post_examples(Endpoint::Classify, request).await?;
        ClassifyResponse::from_json(&answer).map_err(|error| self.invalid(Endpoint::Classify, error))
    }

    /// `POST …:regress`.
    pub async fn regress(&self, request: &RegressRequest) -> Result<RegressResponse, RemoteError> {
        let answer = self.post_examples(Endpoint::Regress, request).await?;
        RegressResponse::from_json(&answer).map_err(|error| self.invalid(Endpoint::Regress, error))
    }
}
