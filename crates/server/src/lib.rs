//! A TF-Serving-compatible REST server for ONNX classifiers: the paths,
//! bodies, errors and model directory layout of TF Serving
//! (`../shared/docs/tf-serving-rest-api.md`), answered by edgeserve's CPU
//! engine. What the tests talk to as "a remote TF Serving", and useful on
//! its own for development and small models.
//!
//! [`handler::handle`] (the `edgeserve-endpoint` crate, which the edge
//! Worker hosts too) answers one request and knows nothing of HTTP
//! libraries; [`bind`] and [`Bound::run`] host it on tokio + axum, running
//! inference on the blocking pool so that it never stalls the reactor.

pub mod config;
pub mod manager;
pub mod store;

pub use edgeserve_endpoint::handler;

pub use config::{ConfigError, ModelConfig, VersionPolicy, parse_model_config};
pub use handler::{HandlerOptions, Reply, RequestHead, handle, handle_with};
pub use manager::{Models, Poller, Transition};
pub use store::{ModelStore, Servable};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why the server could not start or load a model.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file or directory could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// A model directory holds something edgeserve cannot load.
    #[error("model at {path}: {reason}")]
    Model {
        /// The version directory or file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        reason: String,
    },
}

impl ServeError {
    /// The code a model version's status shows for this failure to load it:
    /// NOT_FOUND for files that cannot be read, else INVALID_ARGUMENT.
    pub fn status_code(&self) -> edgeserve::protocol::Code {
        match self {
            ServeError::Io { .. } => edgeserve::protocol::Code::NotFound,
            _ => edgeserve::protocol::Code::InvalidArgument,
        }
    }
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen; port 0 asks the OS for one.
    pub addr: SocketAddr,
    /// Requests taking longer get DEADLINE_EXCEEDED (504), as
    /// `--rest_api_timeout_in_ms`.
    pub timeout: Duration,
    /// The largest request body taken, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// `--rest_api_enable_cors_support`.
    pub cors: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8501)),
            timeout: Duration::from_millis(30_000),
            max_body_bytes: 64 << 20,
            cors: false,
        }
    }
}

struct Shared {
    models: Arc<Models>,
    options: ServeOptions,
}

fn reply(r: Reply) -> Response {
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(r.content_type));
    for (name, value) in r.headers {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn error_reply(e: &edgeserve::protocol::Error) -> Response {
    reply(Reply::error(e))
}

async fn any_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    use edgeserve::protocol::{Code, Error};
    let method = request.method().as_str().to_owned();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_encoding = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let limit = shared.options.max_body_bytes;
    let body = match to_bytes(request.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = Error::new(
                Code::ResourceExhausted,
                format!("Request body is larger than {limit} bytes"),
            );
            let mut r = error_reply(&e);
            *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return r;
        }
    };
    let timeout = shared.options.timeout;
    let work = tokio::task::spawn_blocking(move || {
        let options = HandlerOptions {
            cors: shared.options.cors,
        };
        let head = RequestHead {
            method: &method,
            path: &path,
            origin: origin.as_deref(),
            content_encoding: content_encoding.as_deref(),
        };
        pollster::block_on(handler::handle_with(
            &shared.models.snapshot(),
            options,
            head,
            &body,
        ))
    });
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(r)) => reply(r),
        Ok(Err(join)) => error_reply(&Error::new(
            Code::Internal,
            format!("the request's worker stopped: {join}"),
        )),
        Err(_) => error_reply(&Error::new(
            Code::DeadlineExceeded,
            format!("Request timed out after {} ms", timeout.as_millis()),
        )),
    }
}

/// A server bound to its address, not yet answering.
pub struct Bound {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

impl Bound {
    /// The address it listens on (with the OS's port when 0 was asked).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Answers requests until `shutdown` completes, then finishes the ones
    /// in flight.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let addr = self.local_addr().unwrap_or(self.shared.options.addr);
        let app = axum::Router::new().fallback(any_request).with_state(self.shared);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| ServeError::Bind {
                addr,
                reason: e.to_string(),
            })
    }
}

/// Opens the listening socket for `models`.
pub async fn bind(models: Arc<Models>, options: ServeOptions) -> Result<Bound, ServeError> {
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr: options.addr,
            reason: e.to_string(),
        })?;
    Ok(Bound {
        listener,
        shared: Arc::new(Shared { models, options }),
    })
}
