//! The one error type of the TF Serving protocol, with TF Serving's status
//! codes, their HTTP mapping and the `{"error": "…"}` body.

use std::fmt;

/// TF Serving's (that is, TensorFlow's `error::Code`) status codes.
///
/// The HTTP mapping is the one in TF Serving's `http_server.cc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// Not an error.
    Ok,
    /// The operation was cancelled (HTTP 499).
    Cancelled,
    /// Unknown error (HTTP 500).
    Unknown,
    /// The request is malformed (HTTP 400).
    InvalidArgument,
    /// The deadline passed before the operation finished (HTTP 504).
    DeadlineExceeded,
    /// A model, version or resource does not exist (HTTP 404).
    NotFound,
    /// Already exists (HTTP 409).
    AlreadyExists,
    /// The caller may not do this (HTTP 403).
    PermissionDenied,
    /// Out of memory, quota or rate (HTTP 429).
    ResourceExhausted,
    /// The system is not in a state to do this (HTTP 400).
    FailedPrecondition,
    /// Aborted, e.g. a concurrency conflict (HTTP 409).
    Aborted,
    /// A value is out of its valid range (HTTP 400).
    OutOfRange,
    /// Not supported (HTTP 501), e.g. an input dtype the JSON codec cannot handle.
    Unimplemented,
    /// Internal error (HTTP 500).
    Internal,
    /// The service is unavailable; retrying may help (HTTP 503).
    Unavailable,
    /// Unrecoverable data loss (HTTP 500).
    DataLoss,
    /// Missing or bad credentials (HTTP 401).
    Unauthenticated,
}

impl Code {
    /// The HTTP status TF Serving answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }

    /// The code a client should assume for an HTTP status. Where several codes
    /// share a status, the most common one is chosen (400 is `InvalidArgument`,
    /// 409 `Aborted`, 500 `Internal`).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            200..=299 => Code::Ok,
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            409 => Code::Aborted,
            429 => Code::ResourceExhausted,
            499 => Code::Cancelled,
            500 => Code::Internal,
            501 => Code::Unimplemented,
            503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            _ => Code::Unknown,
        }
    }

    /// The enum name TensorFlow prints, e.g. `INVALID_ARGUMENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The protobuf enum value (`tensorflow.error.Code`).
    pub fn to_proto(self) -> i32 {
        match self {
            Code::Ok => 0,
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::OutOfRange => 11,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::DataLoss => 15,
            Code::Unauthenticated => 16,
        }
    }

    /// The code for a protobuf enum value; values TensorFlow does not define
    /// become `Unknown`, as TensorFlow itself treats them.
    pub fn from_proto(value: i32) -> Code {
        match value {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error in TF Serving's terms: a status code and the message TF Serving
/// would give for the same fault, so that searching for it finds TF Serving's
/// documentation and issues.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    code: Code,
    message: String,
}

impl Error {
    /// An error with the given code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// `INVALID_ARGUMENT` (HTTP 400): what every codec error is.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// `UNIMPLEMENTED` (HTTP 501).
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, message)
    }

    /// `NOT_FOUND` (HTTP 404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message, as TF Serving words it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status TF Serving would answer with.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// Prefixes the message with context, keeping the code, the way
    /// TensorFlow's `errors::AppendToMessage`/wrapping does.
    pub(crate) fn with_prefix(self, prefix: impl fmt::Display) -> Self {
        Error {
            code: self.code,
            message: format!("{prefix}{}", self.message),
        }
    }

    /// The response body TF Serving sends for this error: `{"error": "…"}`,
    /// laid out byte for byte as its pretty writer lays it out.
    pub fn to_json_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message.len() + 20);
        out.extend_from_slice(b"{\n    \"error\": ");
        crate::json::write_string(&mut out, self.message.as_bytes());
        out.extend_from_slice(b"\n}");
        out
    }

    /// Reads an error response of a TF Serving endpoint: the code from the HTTP
    /// status, the message from the `{"error": "…"}` body (or, if the body is
    /// not such an object, a message that quotes the start of the body).
    pub fn from_http_response(status: u16, body: &[u8]) -> Self {
        Error::read_http_response(status, body).0
    }

    /// As [`Error::from_http_response`], and whether the body was TF
    /// Serving's error object (`{"error": "…"}`): the answer of a TF Serving
    /// peer that refused a request, as opposed to some other server's page
    /// for a path it does not have. The body is parsed once.
    pub fn read_http_response(status: u16, body: &[u8]) -> (Self, bool) {
        let code = match Code::from_http_status(status) {
            Code::Ok => Code::Unknown,
            code => code,
        };
        match crate::json::parse_error_body(body) {
            Some(message) => (Error::new(code, message), true),
            None => {
                let shown = String::from_utf8_lossy(&body[..body.len().min(200)]);
                let message =
                    format!("HTTP {status} with a body that is not a TF Serving error object: {shown:?}");
                (Error::new(code, message), false)
            }
        }
    }
}

/// The most bytes of a value a message quotes (names, labels, paths a
/// client sent): a request of megabytes must not come back inside its own
/// error.
pub const QUOTE_LIMIT: usize = 256;

/// `text` as an error message quotes it: whole up to [`QUOTE_LIMIT`] bytes,
/// else its first [`QUOTE_LIMIT`] bytes (cut at a character boundary) and
/// `...`.
pub fn quote(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= QUOTE_LIMIT {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = QUOTE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}...", &text[..end]))
}
