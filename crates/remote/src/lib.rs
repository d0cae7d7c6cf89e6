//! A client of TF Serving's REST API, and edgeserve's remote backend.
//!
//! [`RemoteClient`] talks to one model on any TF Serving REST endpoint
//! (TF Serving itself or `edgeserve serve`): status, metadata, predict,
//! classify and regress, with the version or label in the URL. Natively it
//! uses reqwest (rustls); in wasm the global `fetch`, so it works in
//! browsers, workers and edge runtimes. Requests and answers go through the
//! protocol crate's codecs on both.
//!
//! Every call has a timeout; failures where the server cannot have acted
//! (no connection) or asks to try again (429, 502, 503, 504) are retried a
//! bounded number of times with exponential backoff and jitter; answers are
//! size-limited; TF Serving's `{"error": …}` bodies become
//! [`RemoteError::Status`] with the HTTP status; every error names the step
//! (metadata, predict, classify…) and the URL. Predict requests are checked
//! against the server's signature (read once from `/metadata`) before they
//! are sent.
//!
//! Servers that speak TF Serving's predict protocol without its metadata
//! route (KServe's V1 server, Seldon's and BentoML's TF-compatible routes)
//! work too: [`RemoteEngine::connect_with_signature`] then uses the
//! signature the caller knows (the manifest's) and checks each answer's
//! shape, and the backend writes its own requests in the row format
//! (`"instances"`), which they all take.
//!
//! [`RemoteEngine`] is the same client behind the backend-neutral
//! [`edgeserve_engine::Engine`] interface.

mod client;
mod config;
mod engine;
mod error;
mod transport;

pub use client::RemoteClient;
pub use config::{DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, Discovery, RemoteConfig, RetryPolicy};
pub use engine::{RemoteEngine, SignatureSource};
pub use error::RemoteError;
