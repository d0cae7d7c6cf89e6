//! Errors as JS sees them: an `Error` whose `message` is the Rust message,
//! with a stable `code` to branch on and TF Serving's `status` (its
//! canonical code name, as its REST API reports errors).

use edgeserve::EngineError;
use edgeserve::protocol::{Code, Error as ProtocolError};
use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// An error on its way to JS.
pub(crate) struct JsError {
    code: &'static str,
    status: Code,
    message: String,
}

impl JsError {
    pub(crate) fn new(code: &'static str, status: Code, message: impl Into<String>) -> Self {
        JsError {
            code,
            status,
            message: message.into(),
        }
    }
}

impl From<EngineError> for JsError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::InvalidModel(_) => "invalid_model",
            EngineError::UnsupportedOp { .. } => "unsupported_op",
            EngineError::Integrity(_) => "integrity",
            EngineError::Manifest(_) => "invalid_manifest",
            EngineError::Request(_) => "request",
            EngineError::Vision(_) => "invalid_image",
            EngineError::Remote { .. } => "remote",
            EngineError::Run { .. } => "run_failed",
            EngineError::Unavailable { .. } => "backend_unavailable",
            // Only a host's deadline cancels work; to JS it is an abort.
            EngineError::Cancelled => "aborted",
        };
        JsError::new(code, e.code(), e.to_string())
    }
}

impl From<ProtocolError> for JsError {
    fn from(e: ProtocolError) -> Self {
        JsError::new("request", e.code(), e.message().to_owned())
    }
}

impl From<JsError> for JsValue {
    fn from(e: JsError) -> Self {
        let error = js_sys::Error::new(&e.message);
        // Setting a property on a fresh Error cannot fail.
        let _ = Reflect::set(&error, &"code".into(), &e.code.into());
        let _ = Reflect::set(&error, &"status".into(), &e.status.as_str().into());
        error.into()
    }
}

/// The error for a call on a disposed classifier.
pub(crate) fn disposed() -> JsValue {
    JsError::new(
        "disposed",
        Code::FailedPrecondition,
        "the classifier was disposed; load the model again to use it",
    )
    .into()
}

/// What a thrown JS value says: an `Error`'s message, or a string.
pub(crate) fn js_reason(value: &JsValue) -> Option<String> {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
}

/// The error for a call its `AbortSignal` stopped, with the signal's reason.
pub(crate) fn aborted(signal: &web_sys::AbortSignal) -> JsValue {
    let reason = signal.reason();
    let why = js_reason(&reason).unwrap_or_else(|| "aborted".into());
    let error: JsValue =
        JsError::new("aborted", Code::Cancelled, format!("the call was aborted: {why}")).into();
    let _ = Reflect::set(&error, &"cause".into(), &reason);
    error
}

use wasm_bindgen::JsCast as _;
