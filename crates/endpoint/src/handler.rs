//! One TF Serving REST request to one reply, with no HTTP library in sight,
//! so that every host (the native server, the edge Worker) answers exactly
//! alike.

use crate::models::{ModelStore, Servable};
use crate::service;
use edgeserve::protocol::{Endpoint, Error, ExamplesRequest, PredictRequest, Route, is_api_path};

/// What a host sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// `application/json` for every API path, as TF Serving; `text/html` for
    /// paths outside `/v1/` (libevent's default 404 page).
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Further headers (CORS).
    pub headers: Vec<(&'static str, &'static str)>,
}

/// How the handler answers beyond TF Serving's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerOptions {
    /// `--rest_api_enable_cors_support`: CORS headers on every `/v1/`
    /// response.
    pub cors: bool,
    /// What one request may make the handler spend.
    pub limits: RequestLimits,
}

/// What one request body may cost the handler, checked before the memory
/// is spent. (Image limits are the model's: `LoadOptions::decode`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The most bytes a gzip body may inflate to.
    pub max_inflated_bytes: u64,
    /// The most JSON values a predict or classify body may hold (each
    /// number, string, array and object counts one).
    pub max_json_values: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_inflated_bytes: MAX_INFLATED_BYTES,
            max_json_values: edgeserve::protocol::DEFAULT_MAX_JSON_VALUES,
        }
    }
}

/// The headers TF Serving adds with `--rest_api_enable_cors_support`.
const CORS_HEADERS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "POST, GET"),
    ("access-control-allow-headers", "Content-Type"),
];

impl Reply {
    fn json(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }

    /// TF Serving's answer for an error: its HTTP status and `{"error": …}`.
    pub fn error(e: &Error) -> Reply {
        Reply {
            status: e.http_status(),
            content_type: "application/json",
            body: e.to_json_body(),
            headers: Vec::new(),
        }
    }

    fn not_an_api_path() -> Reply {
        Reply {
            status: 404,
            content_type: "text/html",
            body: b"<html><body><h1>404 Not Found</h1></body></html>\n".to_vec(),
            headers: Vec::new(),
        }
    }
}

async fn predict(servable: &Servable, limits: &RequestLimits, body: &[u8]) -> Result<Vec<u8>, Error> {
    let request = PredictRequest::from_json_limited(body, limits.max_json_values, |signature| {
        Ok(service::signature(servable, Some(signature))?.input_types())
    })?;
    service::predict(servable, request).await?.to_json()
}

async fn classify(servable: &Servable, limits: &RequestLimits, body: &[u8]) -> Result<Vec<u8>, Error> {
    let request = ExamplesRequest::from_json_limited(body, limits.max_json_values)?;
    service::classify(servable, &request).await?.to_json()
}

fn regress(servable: &Servable, limits: &RequestLimits, body: &[u8]) -> Result<Vec<u8>, Error> {
    let request = ExamplesRequest::from_json_limited(body, limits.max_json_values)?;
    service::regress(servable, request.signature_name.as_deref())?.to_json()
}

/// Answers one request with TF Serving's defaults (no CORS headers, an
/// uncompressed body).
pub async fn handle(store: &ModelStore, method: &str, path: &str, body: &[u8]) -> Reply {
    let head = RequestHead {
        method,
        path,
        origin: None,
        content_encoding: None,
    };
    handle_with(store, HandlerOptions::default(), head, body).await
}

/// What the handler reads of a request besides its body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path, with its query if any.
    pub path: &'a str,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<&'a str>,
}

/// The most bytes a gzip request body may inflate to by default (TF
/// Serving's limit).
pub const MAX_INFLATED_BYTES: u64 = 100 << 20;

/// The body as sent, or gunzipped when `Content-Encoding` names gzip, as
/// TF Serving does (up to `max` bytes, refused as soon as it passes them).
fn inflate<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
    max: u64,
) -> Result<std::borrow::Cow<'a, [u8]>, Error> {
    use std::io::Read;
    if !content_encoding.is_some_and(|e| e.to_ascii_lowercase().contains("gzip")) {
        return Ok(std::borrow::Cow::Borrowed(body));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid_argument(format!("Failed to decompress the gzip request body: {e}")))?;
    if out.len() as u64 > max {
        return Err(Error::invalid_argument(format!(
            "The gzip request body inflates to more than {max} bytes"
        )));
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Answers one request.
///
/// A preflight (`OPTIONS`) is answered before anything else, whatever the
/// options, as TF Serving does: 200 with an empty body when the origin is
/// `http://…` or `https://…`, else 400 with an empty body. With
/// [`HandlerOptions::cors`], every `/v1/` reply carries the CORS headers.
pub async fn handle_with(
    store: &ModelStore,
    options: HandlerOptions,
    head: RequestHead<'_>,
    body: &[u8],
) -> Reply {
    let RequestHead {
        method,
        path,
        origin,
        content_encoding,
    } = head;
    if !is_api_path(path) {
        return Reply::not_an_api_path();
    }
    let mut reply = if method == "OPTIONS" {
        let allowed = origin.is_some_and(|o| o.starts_with("http://") || o.starts_with("https://"));
        Reply {
            status: if allowed { 200 } else { 400 },
            content_type: "application/json",
            body: Vec::new(),
            headers: Vec::new(),
        }
    } else {
        match inflate(content_encoding, body, options.limits.max_inflated_bytes) {
            Ok(body) => answer(store, &options.limits, method, path, &body).await,
            Err(e) => Reply::error(&e),
        }
    };
    if options.cors {
        reply.headers.extend(CORS_HEADERS);
    }
    reply
}

async fn answer(store: &ModelStore, limits: &RequestLimits, method: &str, path: &str, body: &[u8]) -> Reply {
    let result = async {
        let route = Route::parse(method, path)?;
        let (model, version) = (route.model.as_str(), route.version.as_ref());
        match route.endpoint {
            Endpoint::Status => Ok(service::status(store, model, version)?.to_json()),
            Endpoint::Metadata => {
                Ok(service::metadata(&*service::servable(store, model, version)?).to_json())
            }
            Endpoint::Predict => predict(&*service::servable(store, model, version)?, limits, body).await,
            Endpoint::Classify => classify(&*service::servable(store, model, version)?, limits, body).await,
            Endpoint::Regress => regress(&*service::servable(store, model, version)?, limits, body),
        }
    }
    .await;
    match result {
        Ok(body) => Reply::json(body),
        Err(e) => Reply::error(&e),
    }
}
