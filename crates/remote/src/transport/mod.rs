//! One HTTP exchange, without retries: what differs between native (reqwest
//! on a private tokio runtime) and wasm (`fetch`). Everything else (URLs,
//! bodies, retries, parsing) is shared code in the client.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::Transport;
#[cfg(target_arch = "wasm32")]
pub(crate) use web::Transport;

use std::time::Duration;

/// The two methods TF Serving's REST API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

#[cfg(target_arch = "wasm32")]
impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One request, with the limits that bound its answer.
#[derive(Debug, Clone)]
pub(crate) struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
    pub max_response_bytes: u64,
}

/// A complete answer, whatever its status.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why an exchange gave no complete answer.
#[derive(Debug, PartialEq)]
pub(crate) enum Failure {
    /// No connection was made, so the server cannot have seen the request.
    Connect(String),
    /// The timeout fired.
    Timeout,
    /// The answer was over the limit; the announced length if there was one.
    TooLarge(Option<u64>),
    /// Anything else.
    Other(String),
}
