//! A TF-Serving-compatible REST server for ONNX classifiers: the paths,
//! bodies, errors and model directory layout of TF Serving
//! (`../shared/docs/tf-serving-rest-api.md`), answered by edgeserve's CPU
//! engine. What the tests talk to as "a remote TF Serving", and useful on
//! its own for development and small models.
//!
//! [`handler::handle`] (the `edgeserve-endpoint` crate, which the edge
//! Worker hosts too) answers one request and knows nothing of HTTP
//! libraries; [`bind`] and [`Bound::run`] host it on tokio, hyper's HTTP/1
//! connections and an axum router, running inference on the blocking pool
//! so that it never stalls the reactor. [`ServeOptions`] is where every
//! limit a client meets at the connection and admission level is decided
//! (timeouts, connections, admitted and running requests, body size); the
//! handler's [`RequestLimits`] and the model's image limits do the rest.

pub mod batching;
pub mod config;
mod grpc;
pub mod manager;
pub mod model_dir;

pub use edgeserve_endpoint::handler;

pub use batching::{Batcher, BatchingParameters};
pub use config::{ConfigError, ModelConfig, VersionPolicy, parse_batching_parameters, parse_model_config};
pub use handler::{HandlerOptions, Reply, RequestHead, RequestLimits, handle, handle_with};
pub use manager::{Models, Poller, Transition};
pub use model_dir::{ModelStore, Servable};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

use edgeserve::cancel::{self, CancelToken};

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
    /// The message without the server's own paths, for clients (the status
    /// route): files are named relative to the version directory `dir`.
    pub fn public_message(&self, dir: &std::path::Path) -> String {
        let name = |path: &std::path::Path| match path.strip_prefix(dir) {
            Ok(rest) if !rest.as_os_str().is_empty() => rest.display().to_string(),
            Ok(_) => "the version directory".to_owned(),
            Err(_) => path
                .file_name()
                .map_or_else(|| "a file".to_owned(), |n| n.to_string_lossy().into_owned()),
        };
        match self {
            ServeError::Io { path, reason } => format!("{}: {reason}", name(path)),
            ServeError::Model { path, reason } => format!("model at {}: {reason}", name(path)),
            ServeError::Bind { .. } => self.to_string(),
        }
    }

    /// The code a model version's status shows for this failure to load it:
    /// NOT_FOUND for files that cannot be read, else INVALID_ARGUMENT.
    pub fn status_code(&self) -> edgeserve::protocol::Code {
        match self {
            ServeError::Io { .. } => edgeserve::protocol::Code::NotFound,
            _ => edgeserve::protocol::Code::InvalidArgument,
        }
    }
}

/// How the server runs: where, and what any one client may make it spend.
/// Every limit here protects the process from what a remote party controls;
/// the request's own limits are [`RequestLimits`], an image's are the
/// model's `LoadOptions::decode`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen; port 0 asks the OS for one.
    pub addr: SocketAddr,
    /// Requests taking longer (waiting for a worker and running) get
    /// DEADLINE_EXCEEDED (504), as `--rest_api_timeout_in_ms`; their work
    /// is cancelled at its next checkpoint.
    pub timeout: Duration,
    /// The largest request body taken, in bytes (413 above it, before any
    /// of it is read: a client that sent `Expect: 100-continue` is not
    /// asked for it).
    pub max_body_bytes: usize,
    /// `--rest_api_enable_cors_support`.
    pub cors: bool,
    /// What a request body may cost the handler.
    pub limits: RequestLimits,
    /// A connection that has not sent a whole request head this long after
    /// it opened (or after its last response) is closed.
    pub header_read_timeout: Duration,
    /// A request whose body has not fully arrived this long after its head
    /// gets 408.
    pub body_read_timeout: Duration,
    /// Open connections at most; further ones wait in the listen backlog
    /// until one closes (a slow one within `header_read_timeout`).
    pub max_connections: usize,
    /// Requests admitted at once (reading their body, waiting for a worker
    /// or running); beyond it a request gets UNAVAILABLE (503) at once
    /// instead of holding memory.
    pub max_pending_requests: usize,
    /// Requests running on the CPU at once: the blocking pool's size for
    /// inference (default: the cores this process may use).
    pub max_running_requests: usize,
    /// After the shutdown signal, connections still open this long are
    /// closed, whatever their clients do.
    pub shutdown_grace: Duration,
    /// Where TF Serving's gRPC API listens (`--port`); `None` serves REST
    /// only. Its requests share the REST API's timeout, admission and
    /// worker limits, and it has its own `max_connections`.
    pub grpc_addr: Option<SocketAddr>,
    /// The largest gRPC message taken, in bytes (RESOURCE_EXHAUSTED above
    /// it, before it is decoded). Decoding may take up to about 12 times
    /// this (a message of empty strings), so it bounds a call's memory.
    pub grpc_max_message_bytes: usize,
    /// The most values a gRPC request may carry: tensor elements, counted
    /// from the shapes before TensorFlow's repetition of a short `*_val`
    /// field expands them, or example feature values.
    pub grpc_max_values: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8501)),
            timeout: Duration::from_millis(30_000),
            max_body_bytes: 64 << 20,
            cors: false,
            limits: RequestLimits::default(),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 512,
            max_pending_requests: 32,
            max_running_requests: std::thread::available_parallelism().map_or(2, usize::from),
            shutdown_grace: Duration::from_secs(10),
            grpc_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8500))),
            grpc_max_message_bytes: 32 << 20,
            grpc_max_values: edgeserve::protocol::DEFAULT_MAX_JSON_VALUES,
        }
    }
}

struct Shared {
    models: Arc<Models>,
    options: ServeOptions,
    /// Permits for admitted requests ([`ServeOptions::max_pending_requests`]).
    pending: Arc<Semaphore>,
    /// Permits for running ones ([`ServeOptions::max_running_requests`]).
    running: Arc<Semaphore>,
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

/// An error answered with `status` rather than the code's usual one (413
/// and 408 have no TF Serving code of their own), closing the connection:
/// the body that was refused may still be on its way.
fn error_with_status(e: &edgeserve::protocol::Error, status: StatusCode) -> Response {
    let mut r = error_reply(e);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn any_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    use edgeserve::protocol::{Code, Error};
    let started = tokio::time::Instant::now();
    let options = &shared.options;
    let limit = options.max_body_bytes;
    let too_large = || {
        error_with_status(
            &Error::new(
                Code::ResourceExhausted,
                format!("Request body is larger than {limit} bytes"),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        )
    };
    // Refused by its declared length before a byte of it is read, so that
    // hyper never answers `Expect: 100-continue` for it.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let admitted = match shared.admit() {
        Ok(permit) => permit,
        Err(e) => return error_reply(&e),
    };
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
    let body =
        match tokio::time::timeout(options.body_read_timeout, to_bytes(request.into_body(), limit)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                let over =
                    std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                if over {
                    return too_large();
                }
                return error_with_status(
                    &Error::invalid_argument(format!("Failed to read the request body: {e}")),
                    StatusCode::BAD_REQUEST,
                );
            }
            Err(_) => {
                return error_with_status(
                    &Error::new(
                        Code::DeadlineExceeded,
                        format!(
                            "The request body did not arrive within {} ms",
                            options.body_read_timeout.as_millis()
                        ),
                    ),
                    StatusCode::REQUEST_TIMEOUT,
                );
            }
        };
    let deadline = started + options.timeout;
    let timed_out = Error::new(
        Code::DeadlineExceeded,
        format!("Request timed out after {} ms", options.timeout.as_millis()),
    );
    let job = move |shared: &Shared| {
        let handler_options = HandlerOptions {
            cors: shared.options.cors,
            limits: shared.options.limits,
        };
        let head = RequestHead {
            method: &method,
            path: &path,
            origin: origin.as_deref(),
            content_encoding: content_encoding.as_deref(),
        };
        pollster::block_on(handler::handle_with(
            &shared.models.snapshot(),
            handler_options,
            head,
            &body,
        ))
    };
    match Arc::clone(&shared)
        .execute(admitted, deadline, timed_out, job)
        .await
    {
        Ok(r) => reply(r),
        Err(e) => error_reply(&e),
    }
}

/// Cancels its token when dropped.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Shared {
    /// A permit for one more admitted request, or UNAVAILABLE at once: a
    /// request waiting here would hold its memory with nothing bounding how
    /// many do.
    fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, edgeserve::protocol::Error> {
        Arc::clone(&self.pending).try_acquire_owned().map_err(|_| {
            edgeserve::protocol::Error::new(
                edgeserve::protocol::Code::Unavailable,
                format!(
                    "The server is busy: {} requests are already admitted; try again later",
                    self.options.max_pending_requests
                ),
            )
        })
    }

    /// Runs an admitted request's `job` on the blocking pool once a worker
    /// is free, within `deadline`: past it the caller gets `timed_out` and
    /// the job is cancelled at its next checkpoint. Both transports' requests
    /// go through here, so they share one queue, one pool and one
    /// cancellation.
    async fn execute<T: Send + 'static>(
        self: Arc<Self>,
        admitted: tokio::sync::OwnedSemaphorePermit,
        deadline: tokio::time::Instant,
        timed_out: edgeserve::protocol::Error,
        job: impl FnOnce(&Shared) -> T + Send + 'static,
    ) -> Result<T, edgeserve::protocol::Error> {
        use edgeserve::protocol::{Code, Error};
        let Ok(Ok(running)) =
            tokio::time::timeout_at(deadline, Arc::clone(&self.running).acquire_owned()).await
        else {
            return Err(timed_out);
        };
        let token = CancelToken::new();
        // Cancels the job when this future is dropped too: a REST client
        // that hangs up, or tonic answering a gRPC deadline first.
        let _cancel_on_drop = CancelOnDrop(token.clone());
        let work = {
            let token = token.clone();
            tokio::task::spawn_blocking(move || {
                // Held until the work ends, also when the caller stopped
                // waiting: cancelled work still holds its worker until its
                // next checkpoint.
                let _held = (admitted, running);
                cancel::scope(&token, || job(&self))
            })
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(join)) => Err(Error::new(
                Code::Internal,
                format!("the request's worker stopped: {join}"),
            )),
            Err(_) => Err(timed_out),
        }
    }
}

/// A server bound to its address, not yet answering.
pub struct Bound {
    listener: tokio::net::TcpListener,
    grpc: Option<tokio::net::TcpListener>,
    shared: Arc<Shared>,
}

impl Bound {
    /// The address it listens on (with the OS's port when 0 was asked).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The address the gRPC API listens on, when it is served.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Answers requests until `shutdown` completes, then lets the
    /// connections finish the requests they are in for at most
    /// [`ServeOptions::shutdown_grace`], and closes whatever is left.
    ///
    /// The accept loop is hyper's HTTP/1 connection driven by hand rather
    /// than `axum::serve`, which sets no header read timeout, no connection
    /// cap and no shutdown deadline: one client holding a thousand
    /// half-sent request heads kept every other client out.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let options = self.shared.options.clone();
        // One signal for both transports.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut grpc = self.grpc.map(|listener| {
            let mut stopped = stopped.clone();
            let signal = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            tokio::spawn(serve_grpc(listener, Arc::clone(&self.shared), signal))
        });
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let app = axum::Router::new()
            .fallback(any_request)
            .with_state(Arc::clone(&self.shared));
        let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
        let (closing, close) = tokio::sync::watch::channel(false);
        let mut open = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                permit = Arc::clone(&connections).acquire_owned() => permit,
            };
            let Ok(permit) = permit else { break };
            let stream = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors or a connection reset
                        // before accept: wait a little instead of spinning.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let mut close = close.clone();
            let header_timeout = options.header_read_timeout;
            open.spawn(async move {
                let _permit = permit;
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout);
                let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => return,
                    _ = close.changed() => connection.as_mut().graceful_shutdown(),
                }
                let _ = connection.await;
            });
            // Finished connections are reaped as we go, so the set holds
            // only open ones.
            while open.try_join_next().is_some() {}
        }
        drop(self.listener);
        let _ = closing.send(true);
        let drained = async {
            while open.join_next().await.is_some() {}
            if let Some(grpc) = &mut grpc {
                let _ = grpc.await;
            }
        };
        let _ = tokio::time::timeout(options.shutdown_grace, drained).await;
        open.abort_all();
        if let Some(grpc) = grpc {
            grpc.abort();
        }
        Ok(())
    }
}

/// A gRPC connection holding one of the connection permits until it closes.
struct Limited {
    io: tokio::net::TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl tokio::io::AsyncRead for Limited {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Limited {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Limited {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// tonic refuses a message over the size limit with OUT_OF_RANGE; gRPC's
/// C++ core, which TF Serving runs on, says RESOURCE_EXHAUSTED, and clients
/// written against TF Serving look for that.
fn too_large_is_resource_exhausted<B>(mut response: axum::http::Response<B>) -> axum::http::Response<B> {
    let headers = response.headers_mut();
    let out_of_range = headers.get("grpc-status").is_some_and(|s| s == "11");
    let too_large = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| m.replace("%20", " ").contains("message length too large"));
    if out_of_range && too_large {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
    }
    response
}

/// Serves TF Serving's gRPC services on `listener` until `signal`, then
/// lets calls in progress finish (the caller bounds how long).
async fn serve_grpc(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let options = shared.options.clone();
    let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
    // Accepts only while a connection permit is free, as the REST loop;
    // further clients wait in the listen backlog.
    let incoming =
        futures_util::stream::unfold((listener, connections), |(listener, connections)| async move {
            loop {
                let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
                    return None;
                };
                match listener.accept().await {
                    Ok((io, _)) => {
                        let _ = io.set_nodelay(true);
                        let next = Ok::<_, std::io::Error>(Limited { io, _permit: permit });
                        return Some((next, (listener, connections)));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
    let services = || grpc::Services {
        shared: Arc::clone(&shared),
    };
    let max = options.grpc_max_message_bytes;
    let prediction = edgeserve_grpc::PredictionServiceServer::new(services())
        .max_decoding_message_size(max)
        .max_encoding_message_size(usize::MAX);
    let model = edgeserve_grpc::ModelServiceServer::new(services()).max_decoding_message_size(max);
    let _ = tonic::transport::Server::builder()
        // Pings find clients that vanished without closing, so their
        // connections do not hold permits for ever.
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(tower::util::MapResponseLayer::new(
            too_large_is_resource_exhausted,
        ))
        .layer(tower::util::MapRequestLayer::new(grpc::stamp_arrival))
        .add_service(prediction)
        .add_service(model)
        .serve_with_incoming_shutdown(incoming, signal)
        .await;
}

/// Opens the listening sockets for `models` (REST, and gRPC unless
/// [`ServeOptions::grpc_addr`] is `None`).
pub async fn bind(models: Arc<Models>, options: ServeOptions) -> Result<Bound, ServeError> {
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr: options.addr,
            reason: e.to_string(),
        })?;
    let grpc = match options.grpc_addr {
        None => None,
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| ServeError::Bind {
                    addr,
                    reason: e.to_string(),
                })?,
        ),
    };
    Ok(Bound {
        listener,
        grpc,
        shared: Arc::new(Shared {
            pending: Arc::new(Semaphore::new(options.max_pending_requests.max(1))),
            running: Arc::new(Semaphore::new(options.max_running_requests.max(1))),
            models,
            options,
        }),
    })
}
