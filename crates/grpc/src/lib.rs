//! TF Serving's gRPC services, `tensorflow.serving.PredictionService` and
//! `tensorflow.serving.ModelService`, as tonic stubs: a server trait for
//! each (implemented by `edgeserve-server`) and a client for each. The
//! messages are edgeserve-protocol's ([`edgeserve_protocol::pb`]), so a
//! request decoded here converts to the REST types with that crate's
//! conversions and runs through the same handler as a REST request.

#![allow(missing_docs, clippy::all, clippy::pedantic)] // generated code

/// The generated services of package `tensorflow.serving`.
pub mod serving {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.serving.rs"));
}

pub use serving::model_service_client::ModelServiceClient;
pub use serving::model_service_server::{ModelService, ModelServiceServer};
pub use serving::prediction_service_client::PredictionServiceClient;
pub use serving::prediction_service_server::{PredictionService, PredictionServiceServer};
