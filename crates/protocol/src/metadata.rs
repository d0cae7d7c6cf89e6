//! Model status and metadata, as TF Serving prints them (proto3 JSON with
//! every field printed, int64 values as strings, `signature_def` nested twice).

use crate::{Code, DataType, Error, TensorTypes, quote};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// int64 fields are strings in proto3 JSON; numbers are accepted on reading.
mod int64_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(i64),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(n),
            Either::Text(t) => t
                .parse()
                .map_err(|_| D::Error::custom(format!("expected an int64 string, got {t:?}"))),
        }
    }
}

/// Which version of a model a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionSelector {
    /// A version number (a directory name under the model's base path).
    Number(i64),
    /// A version label such as `stable`, mapped to a number by the server.
    Label(String),
}

/// Which model, version and signature (TF Serving's `ModelSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelSpec {
    /// The model name.
    pub name: String,
    /// The version, or `None` for the latest.
    pub version: Option<VersionSelector>,
    /// The signature; empty means the default one.
    pub signature_name: String,
}

#[derive(Serialize, Deserialize)]
struct ModelSpecJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    signature_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_int64_string")]
    version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version_label: Option<String>,
}

mod opt_int64_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::int64_string::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::int64_string")] i64);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

impl Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (version, version_label) = match &self.version {
            None => (None, None),
            Some(VersionSelector::Number(n)) => (Some(*n), None),
            Some(VersionSelector::Label(l)) => (None, Some(l.clone())),
        };
        ModelSpecJson {
            name: self.name.clone(),
            signature_name: self.signature_name.clone(),
            version,
            version_label,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = ModelSpecJson::deserialize(d)?;
        let version = match (j.version, j.version_label) {
            (Some(_), Some(_)) => {
                return Err(serde::de::Error::custom(
                    "model_spec has both version and version_label",
                ));
            }
            (Some(n), None) => Some(VersionSelector::Number(n)),
            (None, Some(l)) => Some(VersionSelector::Label(l)),
            (None, None) => None,
        };
        Ok(ModelSpec {
            name: j.name,
            version,
            signature_name: j.signature_name,
        })
    }
}

/// The state of a model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelState {
    /// Default; not yet known.
    Unknown,
    /// Being set up for loading.
    Start,
    /// Loading.
    Loading,
    /// Serving requests.
    Available,
    /// Being unloaded.
    Unloading,
    /// Unloaded, or failed to load (see its status).
    End,
}

impl ModelState {
    /// The protobuf enum value (`ModelVersionStatus.State`).
    pub fn to_proto(self) -> i32 {
        match self {
            ModelState::Unknown => 0,
            ModelState::Start => 10,
            ModelState::Loading => 20,
            ModelState::Available => 30,
            ModelState::Unloading => 40,
            ModelState::End => 50,
        }
    }

    /// The state for a protobuf enum value (`Unknown` for undefined ones).
    pub fn from_proto(v: i32) -> ModelState {
        match v {
            10 => ModelState::Start,
            20 => ModelState::Loading,
            30 => ModelState::Available,
            40 => ModelState::Unloading,
            50 => ModelState::End,
            _ => ModelState::Unknown,
        }
    }
}

/// A status as TF Serving's `StatusProto` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusProto {
    /// The code; `OK` when the version is healthy.
    pub error_code: Code,
    /// The message; empty when OK.
    #[serde(default)]
    pub error_message: String,
}

impl Default for StatusProto {
    fn default() -> Self {
        StatusProto {
            error_code: Code::Ok,
            error_message: String::new(),
        }
    }
}

/// One version's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersionStatus {
    /// The version number (a string in JSON).
    #[serde(with = "int64_string")]
    pub version: i64,
    /// Its state.
    pub state: ModelState,
    /// Its status.
    #[serde(default)]
    pub status: StatusProto,
}

/// The body of `GET /v1/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStatusResponse {
    /// One entry per version.
    #[serde(default)]
    pub model_version_status: Vec<ModelVersionStatus>,
}

/// One dimension of a signature's tensor shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dim {
    /// The size; -1 when unknown (dynamic). A string in JSON.
    #[serde(with = "int64_string")]
    pub size: i64,
    /// An optional name; TF Serving prints `""`.
    #[serde(default)]
    pub name: String,
}

/// A signature's tensor shape.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TensorShape {
    /// The dimensions (empty for a scalar or an unknown rank).
    #[serde(default)]
    pub dim: Vec<Dim>,
    /// Whether even the rank is unknown.
    #[serde(default)]
    pub unknown_rank: bool,
}

impl TensorShape {
    /// A known-rank shape from sizes (-1 for a dynamic dimension).
    pub fn from_sizes(sizes: &[i64]) -> Self {
        TensorShape {
            dim: sizes
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        }
    }

    /// The sizes, or `None` if the rank is unknown.
    pub fn sizes(&self) -> Option<Vec<i64>> {
        (!self.unknown_rank).then(|| self.dim.iter().map(|d| d.size).collect())
    }
}

/// A signature's input or output tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// The element type.
    pub dtype: DataType,
    /// The shape; -1 marks dynamic dimensions.
    #[serde(default)]
    pub tensor_shape: TensorShape,
    /// The tensor's name inside the model (`x:0` in TensorFlow graphs).
    #[serde(default)]
    pub name: String,
}

/// A default value of a signature input (rare; printed in proto3 JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefaultTensor {
    /// The element type.
    pub dtype: DataType,
    /// The shape.
    #[serde(default)]
    pub tensor_shape: TensorShape,
    /// `float_val`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub float_val: Vec<f32>,
    /// `double_val`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub double_val: Vec<f64>,
    /// `int_val`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub int_val: Vec<i32>,
    /// `bool_val`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bool_val: Vec<bool>,
    /// `string_val`, base64 as proto3 JSON writes bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub string_val: Vec<String>,
}

/// A signature: named inputs and outputs and the method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureDef {
    /// Inputs by alias.
    #[serde(default)]
    pub inputs: BTreeMap<String, TensorInfo>,
    /// Outputs by alias.
    #[serde(default)]
    pub outputs: BTreeMap<String, TensorInfo>,
    /// `tensorflow/serving/predict`, `…/classify` or `…/regress`.
    #[serde(default)]
    pub method_name: String,
    /// Default input values.
    #[serde(default)]
    pub defaults: BTreeMap<String, DefaultTensor>,
}

/// The method name of predict signatures.
pub const PREDICT_METHOD: &str = "tensorflow/serving/predict";

impl SignatureDef {
    /// Input names and dtypes: what the REST codec needs to read a request.
    pub fn input_types(&self) -> TensorTypes {
        self.inputs.iter().map(|(k, v)| (k.clone(), v.dtype)).collect()
    }

    /// Output names and dtypes: what the REST codec needs to read a response.
    pub fn output_types(&self) -> TensorTypes {
        self.outputs.iter().map(|(k, v)| (k.clone(), v.dtype)).collect()
    }
}

/// Signatures by name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SignatureDefMap {
    /// Signatures by name.
    #[serde(default)]
    pub signature_def: BTreeMap<String, SignatureDef>,
}

impl SignatureDefMap {
    /// The signature called `name` (empty means `serving_default`), or TF
    /// Serving's error for a missing one.
    pub fn get(&self, name: &str) -> Result<&SignatureDef, Error> {
        let name = if name.is_empty() {
            crate::DEFAULT_SIGNATURE
        } else {
            name
        };
        self.signature_def.get(name).ok_or_else(|| {
            Error::invalid_argument(format!(
                "Serving signature name: \"{}\" not found in signature def",
                quote(name)
            ))
        })
    }
}

/// The `metadata` member of a metadata response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The signatures (note the doubled `signature_def` in JSON).
    pub signature_def: SignatureDefMap,
}

/// The body of `GET /v1/models/{name}[/versions/{v}]/metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadataResponse {
    /// The model and version answered for.
    pub model_spec: ModelSpec,
    /// Its signatures.
    pub metadata: Metadata,
}

impl ModelMetadataResponse {
    /// Reads a metadata body as TF Serving prints it.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(body)
            .map_err(|e| Error::invalid_argument(format!("Malformed model metadata: {e}")))
    }

    /// The body as TF Serving prints it (protobuf's JSON printer with
    /// whitespace: one space per indent level).
    pub fn to_json(&self) -> Vec<u8> {
        proto_json(self)
    }
}

impl ModelStatusResponse {
    /// Reads a status body as TF Serving prints it.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(body)
            .map_err(|e| Error::invalid_argument(format!("Malformed model status: {e}")))
    }

    /// The body as TF Serving prints it (protobuf's JSON printer with
    /// whitespace: one space per indent level).
    pub fn to_json(&self) -> Vec<u8> {
        proto_json(self)
    }
}

/// Pretty JSON indented as protobuf's `MessageToJsonString` with
/// `add_whitespace` indents it. Serialising these plain structs cannot fail.
fn proto_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b" "));
    match value.serialize(&mut ser) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_matches_tf_serving() {
        let s = ModelStatusResponse {
            model_version_status: vec![ModelVersionStatus {
                version: 123,
                state: ModelState::Available,
                status: StatusProto::default(),
            }],
        };
        assert!(
            String::from_utf8(s.to_json())
                .unwrap()
                .starts_with("{\n \"model_version_status\": [\n  {\n   \"version\": \"123\",")
        );
        let v: serde_json::Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model_version_status": [{"version": "123", "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}}]})
        );
        assert_eq!(ModelStatusResponse::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn metadata_json_matches_tf_serving() {
        let text = r#"{"model_spec": {"name": "m", "signature_name": "", "version": "7"},
          "metadata": {"signature_def": {"signature_def": {"serving_default": {
            "inputs": {"input": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [
               {"size": "-1", "name": ""}, {"size": "3", "name": ""}], "unknown_rank": false},
               "name": "input:0"}},
            "outputs": {"logits": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [
               {"size": "-1", "name": ""}, {"size": "1000", "name": ""}], "unknown_rank": false},
               "name": "logits:0"}},
            "method_name": "tensorflow/serving/predict", "defaults": {}}}}}}"#;
        let m = ModelMetadataResponse::from_json(text.as_bytes()).unwrap();
        assert_eq!(m.model_spec.version, Some(VersionSelector::Number(7)));
        let sig = m.metadata.signature_def.get("").unwrap();
        assert_eq!(sig.inputs["input"].tensor_shape.sizes(), Some(vec![-1, 3]));
        assert_eq!(sig.input_types()["input"], DataType::Float);
        let again: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        let orig: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, orig);
        let err = m.metadata.signature_def.get("x").unwrap_err();
        assert_eq!(
            err.message(),
            "Serving signature name: \"x\" not found in signature def"
        );
    }

    #[test]
    fn malformed_metadata_is_a_typed_error() {
        let err = ModelMetadataResponse::from_json(br#"{"model_spec": {"version": "x"}}"#).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("int64"), "{err}");
    }
}
