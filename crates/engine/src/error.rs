use edgeserve_protocol::{Code, Error as ProtocolError};

/// Why loading or running a model failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The model bytes are not a model this backend can read.
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The model uses an operator the backend cannot run.
    #[error("unsupported operator {op}{} (node {node:?}) on the {backend} backend", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    UnsupportedOp {
        /// The ONNX op type, exactly as the graph names it (or, for what is
        /// not one node's op, e.g. an element type, what it is).
        op: String,
        /// Why, where the backend runs the op but not this use of it (a rank,
        /// an attribute), or has no kernel for it; empty when nothing more
        /// is known.
        detail: String,
        /// The node's name.
        node: String,
        /// The backend.
        backend: crate::BackendKind,
    },
    /// The bytes are not the file the manifest describes.
    #[error("model file does not match its manifest: {0}")]
    Integrity(String),
    /// The manifest itself is wrong.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// The request does not fit the model (TF Serving's wording and code).
    #[error("{0}")]
    Request(#[from] ProtocolError),
    /// Preprocessing or postprocessing failed (a bad image, labels…).
    #[error("{0}")]
    Vision(#[from] edgeserve_vision::VisionError),
    /// A remote backend gave no usable answer: no connection, a timeout, an
    /// answer too large or not TF Serving's. (A TF Serving error answer is a
    /// [`EngineError::Request`], worded and coded as the server said.)
    #[error("remote backend: {message}")]
    Remote {
        /// The TF Serving code that fits (`UNAVAILABLE`, `DEADLINE_EXCEEDED`…).
        code: Code,
        /// What happened, with the URL.
        message: String,
    },
    /// The backend cannot run here, or cannot run this model here: no
    /// WebGPU in this host, no adapter, or a tensor over the device's limits.
    #[error("the {backend} backend is unavailable: {reason}")]
    Unavailable {
        /// The backend.
        backend: crate::BackendKind,
        /// Why, in words (the adapter's limit and what needed more, say).
        reason: String,
    },
    /// The host stopped waiting for the request (its deadline passed) and
    /// the work stopped at a checkpoint ([`crate::cancel`]).
    #[error("the request was cancelled before it finished (its deadline passed)")]
    Cancelled,
    /// The backend failed while running a valid request.
    #[error("inference failed on the {backend} backend: {reason}")]
    Run {
        /// The backend.
        backend: crate::BackendKind,
        /// What went wrong.
        reason: String,
    },
}

impl EngineError {
    /// The TF Serving status this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            EngineError::Request(e) => e.code(),
            EngineError::Vision(_) => Code::InvalidArgument,
            EngineError::UnsupportedOp { .. } => Code::Unimplemented,
            EngineError::InvalidModel(_) | EngineError::Integrity(_) | EngineError::Manifest(_) => {
                Code::FailedPrecondition
            }
            EngineError::Remote { code, .. } => *code,
            EngineError::Run { .. } => Code::Internal,
            EngineError::Unavailable { .. } => Code::Unavailable,
            EngineError::Cancelled => Code::DeadlineExceeded,
        }
    }
}

impl From<EngineError> for ProtocolError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Request(e) => e,
            other => ProtocolError::new(other.code(), other.to_string()),
        }
    }
}
