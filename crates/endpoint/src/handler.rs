//! One TF Serving REST request to one reply, with no HTTP library in sight,
//! so that every host (the native server, the edge Worker) answers exactly
//! alike.

use crate::models::{Model, ModelStore, Servable};
use edgeserve::ImageInput;
use edgeserve::protocol::{
    Class, ClassifyResponse, Endpoint, Error, Example, ExamplesRequest, Feature, ModelStatusResponse,
    ModelVersionStatus, PredictRequest, Route, VersionSelector, is_api_path, quote,
};
use std::sync::Arc;

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

/// Picks the servable a route names, with TF Serving's errors.
fn servable(store: &ModelStore, route: &Route) -> Result<Arc<Servable>, Error> {
    let model = store.model(&route.model);
    let version = match &route.version {
        None => None,
        Some(VersionSelector::Number(v)) => Some(*v),
        Some(VersionSelector::Label(l)) => Some(model.and_then(|m| m.label(l)).ok_or_else(|| {
            Error::invalid_argument(format!("Unrecognized servable version label: {}", quote(l)))
        })?),
    };
    let found = match version {
        None => model.and_then(|m| m.latest()),
        Some(v) => model.and_then(|m| m.version(v)),
    };
    found.cloned().ok_or_else(|| {
        Error::not_found(match version {
            None => format!("Servable not found for request: Latest({})", quote(&route.model)),
            Some(v) => format!(
                "Servable not found for request: Specific({}, {v})",
                quote(&route.model)
            ),
        })
    })
}

fn status(store: &ModelStore, route: &Route) -> Result<Vec<u8>, Error> {
    let states = store
        .model(&route.model)
        .map(|m| m.states())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::not_found(format!(
                "Could not find any versions of model {}",
                quote(&route.model)
            ))
        })?;
    let one = |v: i64| {
        states.get_key_value(&v).map(|kv| vec![kv]).ok_or_else(|| {
            Error::not_found(format!(
                "Could not find version {v} of model {}",
                quote(&route.model)
            ))
        })
    };
    let wanted = match &route.version {
        None => states.iter().rev().collect(),
        Some(VersionSelector::Number(v)) => one(*v)?,
        Some(VersionSelector::Label(l)) => {
            let v = store
                .model(&route.model)
                .and_then(|m| m.label(l))
                .ok_or_else(|| {
                    Error::invalid_argument(format!("Unrecognized servable version label: {}", quote(l)))
                })?;
            one(v)?
        }
    };
    let response = ModelStatusResponse {
        model_version_status: wanted
            .into_iter()
            .map(|(version, s)| ModelVersionStatus {
                version: *version,
                state: s.state,
                status: s.status.clone(),
            })
            .collect(),
    };
    Ok(response.to_json())
}

async fn predict(servable: &Servable, limits: &RequestLimits, body: &[u8]) -> Result<Vec<u8>, Error> {
    let request = PredictRequest::from_json_limited(body, limits.max_json_values, |signature| {
        Ok(servable
            .metadata
            .metadata
            .signature_def
            .get(signature)?
            .input_types())
    })?;
    let response = servable.model.predict(request).await?;
    response.to_json()
}

/// The example feature that holds an image's encoded bytes (PNG, JPEG, …),
/// named as in TF's image datasets and object-detection examples.
pub const IMAGE_FEATURE: &str = "image/encoded";

/// The encoded image of example `i`: its own [`IMAGE_FEATURE`], else the
/// context's.
fn image_of<'a>(i: usize, example: &'a Example, context: Option<&'a Example>) -> Result<&'a [u8], Error> {
    let feature = example
        .features
        .get(IMAGE_FEATURE)
        .or_else(|| context.and_then(|c| c.features.get(IMAGE_FEATURE)))
        .ok_or_else(|| {
            Error::invalid_argument(format!(
                "examples[{i}] has no feature '{IMAGE_FEATURE}' (the encoded image as a string or {{\"b64\": …}})"
            ))
        })?;
    match feature {
        Feature::Bytes(values) => match values.as_slice() {
            [one] => Ok(one),
            _ => Err(Error::invalid_argument(format!(
                "Feature: {IMAGE_FEATURE} of examples[{i}] must hold one image, got {}",
                values.len()
            ))),
        },
        Feature::Float(_) | Feature::Int64(_) | Feature::Empty => Err(Error::invalid_argument(format!(
            "Feature: {IMAGE_FEATURE} of examples[{i}] must be bytes (a string or {{\"b64\": …}}), got {}",
            match feature {
                Feature::Float(_) => "float",
                Feature::Int64(_) => "int64",
                _ => "an empty list",
            }
        ))),
    }
}

/// `:classify` for an image classifier: each example's [`IMAGE_FEATURE`] is
/// decoded and preprocessed as the manifest says, and its result lists every
/// class as `[label, probability]`, highest first (a TF classification
/// signature also returns every class; sorting saves clients the work).
async fn classify(servable: &Servable, limits: &RequestLimits, body: &[u8]) -> Result<Vec<u8>, Error> {
    let request = ExamplesRequest::from_json_limited(body, limits.max_json_values)?;
    let signature = servable
        .metadata
        .metadata
        .signature_def
        .get(request.signature_name.as_deref().unwrap_or_default())?;
    let Model::Classifier(classifier) = &servable.model else {
        // A tensor model's signatures are all predict signatures.
        return Err(Error::invalid_argument(format!(
            "Expected classification signature method_name to be tensorflow/serving/classify. Was: {}",
            signature.method_name
        )));
    };
    let images = request
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| image_of(i, e, request.context.as_ref()).map(ImageInput::Encoded))
        .collect::<Result<Vec<_>, _>>()?;
    let results = classifier.classify_batch(&images, usize::MAX).await?;
    ClassifyResponse {
        results: results
            .into_iter()
            .map(|r| {
                r.classes
                    .into_iter()
                    .map(|c| Class {
                        label: c.label.unwrap_or_default(),
                        score: c.score,
                    })
                    .collect()
            })
            .collect(),
    }
    .to_json()
}

/// `:regress`: neither an image classifier nor a tensor model has a
/// regression signature, so this is TF Serving's answer for a signature of
/// another method.
fn regress(servable: &Servable, limits: &RequestLimits, body: &[u8]) -> Result<Vec<u8>, Error> {
    let request = ExamplesRequest::from_json_limited(body, limits.max_json_values)?;
    let signature = servable
        .metadata
        .metadata
        .signature_def
        .get(request.signature_name.as_deref().unwrap_or_default())?;
    Err(Error::invalid_argument(format!(
        "Expected regression signature method_name to be tensorflow/serving/regress. Was: {}",
        signature.method_name
    )))
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
        match route.endpoint {
            Endpoint::Status => status(store, &route),
            Endpoint::Metadata => Ok(servable(store, &route)?.metadata.to_json()),
            Endpoint::Predict => predict(&*servable(store, &route)?, limits, body).await,
            Endpoint::Classify => classify(&*servable(store, &route)?, limits, body).await,
            Endpoint::Regress => regress(&*servable(store, &route)?, limits, body),
        }
    }
    .await;
    match result {
        Ok(body) => Reply::json(body),
        Err(e) => Reply::error(&e),
    }
}
