//! TensorFlow Serving's model-serving contract, exactly as TF Serving's own
//! code behaves: the REST JSON codec (`instances`/`inputs`,
//! `predictions`/`outputs`, `{"b64": …}`, `{"error": …}`), classify/regress,
//! model status and metadata, REST paths, errors with their HTTP statuses, and
//! the gRPC protobuf messages.
//!
//! Deliberately light (no I/O, no async, no native-only code) so every other
//! edgeserve crate, including the WebAssembly builds, can depend on it.
//!
//! ```
//! use edgeserve_protocol::{DataType, Format, PredictRequest, PredictResponse, Tensor, TensorTypes};
//!
//! let types = TensorTypes::from([("x".to_owned(), DataType::Float)]);
//! let req = PredictRequest::from_json(br#"{"instances": [[1, 2], [3, 4]]}"#, |_sig| Ok(types.clone()))?;
//! assert_eq!(req.format, Format::Row);
//! let inputs = req.into_named(&types)?;
//! assert_eq!(inputs["x"].shape(), &[2, 2]);
//!
//! let out = Tensor::from_vec(vec![2], vec![0.5f32, 3.0])?;
//! let resp = PredictResponse { format: Format::Row, outputs: [("y".to_owned(), out)].into() };
//! assert_eq!(resp.to_json()?, b"{\n    \"predictions\": [0.5, 3.0\n    ]\n}");
//! # Ok::<(), edgeserve_protocol::Error>(())
//! ```

mod classify;
mod convert;
mod dtype;
mod error;
mod examples_pb;
mod json;
mod metadata;
pub mod pb;
mod predict;
mod tensor;
mod url;

pub use classify::{
    Class, ClassifyRequest, ClassifyResponse, Example, ExamplesRequest, Feature, RegressRequest,
    RegressResponse,
};
pub use convert::{MAX_PROTO_ELEMENTS, SIGNATURE_DEF_MAP_TYPE_URL};
pub use dtype::DataType;
pub use error::{Code, Error, QUOTE_LIMIT, quote};
pub use metadata::{
    DefaultTensor, Dim, Metadata, ModelMetadataResponse, ModelSpec, ModelState, ModelStatusResponse,
    ModelVersionStatus, PREDICT_METHOD, SignatureDef, SignatureDefMap, StatusProto, TensorInfo, TensorShape,
    VersionSelector,
};
pub use predict::{
    DEFAULT_MAX_JSON_VALUES, DEFAULT_SIGNATURE, Format, Inputs, PredictRequest, PredictResponse, TensorTypes,
};
pub use tensor::{Element, MAX_RANK, Tensor, TensorData};
pub use url::{Endpoint, Route, encode_component, is_api_path};

/// `half`'s `f16` and `bf16`, the element types of `DT_HALF` and `DT_BFLOAT16`
/// tensors.
pub use half;
