use edgeserve_protocol::{Code, Error as ProtocolError};

/// Why a call to a TF Serving endpoint failed.
///
/// Every variant names the URL it concerns; the variants that can follow
/// retries say how many attempts were made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RemoteError {
    /// The configuration cannot work (a bad URL, header or limit).
    #[error("invalid remote configuration: {0}")]
    Config(String),
    /// The request itself could not be written (e.g. a tensor JSON cannot
    /// express); nothing was sent.
    #[error("cannot encode the request for {url}: {error}")]
    Encode {
        /// The endpoint.
        url: String,
        /// TF Serving's wording of the fault.
        error: ProtocolError,
    },
    /// The request does not fit the remote model's signature; nothing was
    /// sent.
    #[error("the request does not fit the signature of {url}: {error}")]
    Signature {
        /// The metadata URL the signature came from.
        url: String,
        /// TF Serving's wording of the mismatch.
        error: ProtocolError,
    },
    /// No connection could be made.
    #[error("cannot connect to {url} after {attempts} attempt(s): {reason}")]
    Connect {
        /// The endpoint.
        url: String,
        /// The transport's explanation.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// No complete answer within the timeout (not retried: the server may
    /// still be working on it).
    #[error("no answer from {url} within {timeout_ms} ms")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The per-attempt timeout.
        timeout_ms: u64,
    },
    /// The server answered with an error status; `error` carries TF
    /// Serving's code (from the status) and its `{"error": …}` message.
    #[error("{url} answered HTTP {status} after {attempts} attempt(s): {error}")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The error as TF Serving words it.
        error: ProtocolError,
        /// Attempts made.
        attempts: u32,
    },
    /// The answer is larger than the configured limit (it was not read
    /// further).
    #[error("the answer from {url} exceeds the {limit}-byte limit{}", got.map(|g| format!(" (Content-Length {g})")).unwrap_or_default())]
    TooLarge {
        /// The endpoint.
        url: String,
        /// The limit.
        limit: u64,
        /// The announced length, when the server sent one.
        got: Option<u64>,
    },
    /// A 200 answer that is not what TF Serving sends.
    #[error("invalid answer from {url}: {error}")]
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// What is wrong with it.
        error: ProtocolError,
    },
    /// Any other transport failure (the connection broke mid-answer…).
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The endpoint.
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
}
