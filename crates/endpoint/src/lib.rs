//! TF Serving's REST API as one function, with no HTTP library and no file
//! system in sight: [`handler::handle_with`] turns a request (method, path,
//! `Origin`, `Content-Encoding`, body) into a [`Reply`] over a
//! [`ModelStore`] of loaded models. The native server (`edgeserve-server`,
//! tokio + axum) and the edge Worker (wasm32, through `edgeserve-wasm`) both
//! host it, so they answer alike by construction. [`service`] holds the
//! operations themselves on typed requests, which the native server's gRPC
//! services call too.

pub mod handler;
pub mod models;
pub mod service;

pub use handler::{
    HandlerOptions, MAX_INFLATED_BYTES, Reply, RequestHead, RequestLimits, handle, handle_with,
};
pub use models::{Model, ModelEntry, ModelStore, Servable, VersionState};
pub use service::IMAGE_FEATURE;
