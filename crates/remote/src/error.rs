use edgeserve_protocol::{Code, Endpoint, Error as ProtocolError};

/// Why a call to a TF Serving endpoint failed.
///
/// Every variant but [`RemoteError::Config`] names the step (the endpoint:
/// metadata, predict, classify…) and the URL it concerns, so that a wrong
/// URL can be told from a server that speaks another protocol; the
/// variants that can follow retries say how many attempts were made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// The configuration cannot work (a bad URL, header or limit).
    #[error("invalid remote configuration: {0}")]
    Config(String),
    /// The request itself could not be written (e.g. a tensor JSON cannot
    /// express); nothing was sent.
    #[error("{} ({} {url}): cannot encode the request: {error}", step.name(), step.method())]
    Encode {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// TF Serving's wording of the fault.
        error: ProtocolError,
    },
    /// The request does not fit the remote model's signature; nothing was
    /// sent.
    #[error("{} ({} {url}): the request does not fit the model's signature: {error}", step.name(), step.method())]
    Signature {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// TF Serving's wording of the mismatch.
        error: ProtocolError,
    },
    /// No connection could be made.
    #[error("{} ({} {url}): cannot connect after {attempts} attempt(s): {reason}", step.name(), step.method())]
    Connect {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// The transport's explanation.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// No complete answer within the timeout (not retried: the server may
    /// still be working on it).
    #[error("{} ({} {url}): no answer within {timeout_ms} ms", step.name(), step.method())]
    Timeout {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// The per-attempt timeout.
        timeout_ms: u64,
    },
    /// The server answered with an error status; `error` carries TF
    /// Serving's code (from the status) and the server's message: its
    /// `{"error": …}` text, else the start of its body (the message quotes
    /// either up to [`edgeserve_protocol::QUOTE_LIMIT`] bytes).
    #[error("{} ({} {url}): HTTP {status}{}: {}", step.name(), step.method(),
        if *attempts > 1 { format!(" after {attempts} attempts") } else { String::new() },
        if *tf_serving_body { edgeserve_protocol::quote(error.message()).into_owned() } else { format!("not a TF Serving error object: {body:?}") })]
    Status {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The error as TF Serving words it.
        error: ProtocolError,
        /// Whether the body was TF Serving's `{"error": …}` object (a TF
        /// Serving peer that refused the request), not some other server's
        /// page.
        tf_serving_body: bool,
        /// The start of the body as text (at most
        /// [`edgeserve_protocol::QUOTE_LIMIT`] bytes).
        body: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The answer is larger than the configured limit (it was not read
    /// further).
    #[error("{} ({} {url}): the answer exceeds the {limit}-byte limit{}", step.name(), step.method(), got.map(|g| format!(" (Content-Length {g})")).unwrap_or_default())]
    TooLarge {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// The limit.
        limit: u64,
        /// The announced length, when the server sent one.
        got: Option<u64>,
    },
    /// A 2xx answer that is not what TF Serving sends, or not the shape the
    /// request asked for.
    #[error("{} ({} {url}): invalid answer: {error}", step.name(), step.method())]
    InvalidResponse {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// What is wrong with it.
        error: ProtocolError,
    },
    /// Any other transport failure (the connection broke mid-answer…).
    #[error("{} ({} {url}): request failed: {reason}", step.name(), step.method())]
    Transport {
        /// The step.
        step: Endpoint,
        /// The endpoint's URL.
        url: String,
        /// The transport's explanation.
        reason: String,
    },
}

impl RemoteError {
    /// The HTTP status, when the server answered with an error status.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            RemoteError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The step the failure happened in; `None` for a bad configuration.
    pub fn step(&self) -> Option<Endpoint> {
        match self {
            RemoteError::Config(_) => None,
            RemoteError::Encode { step, .. }
            | RemoteError::Signature { step, .. }
            | RemoteError::Connect { step, .. }
            | RemoteError::Timeout { step, .. }
            | RemoteError::Status { step, .. }
            | RemoteError::TooLarge { step, .. }
            | RemoteError::InvalidResponse { step, .. }
            | RemoteError::Transport { step, .. } => Some(*step),
        }
    }

    /// The TF Serving status code this failure corresponds to.
    pub fn code(&self) -> Code {
        match self {
            RemoteError::Config(_) => Code::InvalidArgument,
            RemoteError::Encode { error, .. } | RemoteError::Signature { error, .. } => error.code(),
            RemoteError::Status { error, .. } => error.code(),
            RemoteError::Connect { .. } | RemoteError::Transport { .. } => Code::Unavailable,
            RemoteError::Timeout { .. } => Code::DeadlineExceeded,
            RemoteError::TooLarge { .. } => Code::ResourceExhausted,
            RemoteError::InvalidResponse { .. } => Code::Internal,
        }
    }

    /// Whether this is a metadata call's answer that says the server has no
    /// TF Serving metadata: a 404, 405 or 501 whose body is not TF Serving's
    /// error object (TF Serving itself answers an unknown model with one,
    /// which stays an error), or a 2xx answer that is not TF Serving's
    /// metadata. KServe's V1 server, for one, answers `{"detail":"Not
    /// Found"}`.
    pub fn is_missing_metadata(&self) -> bool {
        match self {
            RemoteError::Status {
                step: Endpoint::Metadata,
                status,
                tf_serving_body,
                ..
            } => matches!(status, 404 | 405 | 501) && !tf_serving_body,
            RemoteError::InvalidResponse {
                step: Endpoint::Metadata,
                ..
            } => true,
            _ => false,
        }
    }
}
