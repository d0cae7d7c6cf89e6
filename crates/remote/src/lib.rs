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
//! [`RemoteError::Status`] with the HTTP status. Predict requests are
//! checked against the server's signature (read once from `/metadata`)
//! before they are sent.
//!
//! [`RemoteEngine`] is the same client behind the backend-neutral
//! [`edgeserve_engine::Engine`] interface.

mod client;
mod config;
mod engine;
mod error;
mod transport;

pub use client::RemoteClient;
pub use config::{DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, RemoteConfig, RetryPolicy};
pub use engine::RemoteEngine;
pub use error::RemoteError;
