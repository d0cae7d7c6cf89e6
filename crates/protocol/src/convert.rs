//! Conversions between the REST types and the protobuf messages. Every
//! conversion is lossless in both directions for the dtypes both carry.

use crate::pb::tensorflow as tf;
use crate::pb::tensorflow::serving as tfs;
use crate::tensor::{element_count, shape_string};
use crate::{
    Code, DataType, Error, Format, Inputs, ModelSpec, ModelState, ModelStatusResponse, ModelVersionStatus,
    PredictRequest, PredictResponse, StatusProto, Tensor, TensorData, TensorTypes, VersionSelector,
};
use half::{bf16, f16};
use std::collections::BTreeMap;

/// Largest element count a `TensorProto` may expand to. A proto may give
/// fewer values than its shape needs (TensorFlow repeats the last one), so a
/// tiny message could otherwise ask for terabytes.
pub const MAX_PROTO_ELEMENTS: usize = 1 << 28;

fn bad_proto(message: String) -> Error {
    Error::invalid_argument(format!("Unable to parse tensor proto: {message}"))
}

impl Tensor {
    /// The tensor as a `TensorProto`: numbers and booleans as little-endian
    /// `tensor_content` (as `tf.make_tensor_proto` writes arrays), strings in
    /// `string_val`.
    pub fn to_proto(&self) -> tf::TensorProto {
        let mut p = tf::TensorProto {
            dtype: self.dtype().to_proto(),
            tensor_shape: Some(tf::TensorShapeProto {
                dim: self
                    .shape()
                    .iter()
                    .map(|&d| tf::tensor_shape_proto::Dim {
                        size: i64::try_from(d).unwrap_or(i64::MAX),
                        name: String::new(),
                    })
                    .collect(),
                unknown_rank: false,
            }),
            ..Default::default()
        };
        macro_rules! content {
            ($v:expr) => {
                $v.iter().flat_map(|x| x.to_le_bytes()).collect()
            };
        }
        p.tensor_content = match self.data() {
            TensorData::Float(v) => content!(v),
            TensorData::Double(v) => content!(v),
            TensorData::Int8(v) => content!(v),
            TensorData::Int16(v) => content!(v),
            TensorData::Int32(v) => content!(v),
            TensorData::Int64(v) => content!(v),
            TensorData::Uint8(v) => v.clone(),
            TensorData::Uint16(v) => content!(v),
            TensorData::Uint32(v) => content!(v),
            TensorData::Uint64(v) => content!(v),
            TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
            TensorData::Half(v) => content!(v),
            TensorData::Bfloat16(v) => content!(v),
            TensorData::String(v) => {
                p.string_val = v.clone();
                Vec::new()
            }
        };
        p
    }

    /// Reads a `TensorProto` as TensorFlow does: `tensor_content` when set,
    /// else the typed `*_val` field, where fewer values than the shape needs
    /// repeat the last one and none at all mean zeros.
    pub fn from_proto(p: &tf::TensorProto) -> Result<Tensor, Error> {
        let dtype = DataType::from_proto(p.dtype)?;
        let shape_proto = p.tensor_shape.clone().unwrap_or_default();
        if shape_proto.unknown_rank {
            return Err(bad_proto("a tensor must have a known rank".into()));
        }
        let shape = shape_proto
            .dim
            .iter()
            .map(|d| {
                usize::try_from(d.size)
                    .map_err(|_| bad_proto(format!("dimension size {} is negative", d.size)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = element_count(&shape)
            .filter(|&n| n <= MAX_PROTO_ELEMENTS)
            .ok_or_else(|| {
                bad_proto(format!(
                    "shape {} has more than {MAX_PROTO_ELEMENTS} elements",
                    shape_string(&shape)
                ))
            })?;
        let data = if !p.tensor_content.is_empty() {
            from_content(dtype, &p.tensor_content, n, &shape)?
        } else {
            from_fields(dtype, p, n)?
        };
        Tensor::new(shape, data)
    }
}

fn from_content(dtype: DataType, bytes: &[u8], n: usize, shape: &[usize]) -> Result<TensorData, Error> {
    let Some(size) = dtype.byte_size() else {
        return Err(bad_proto("tensor_content cannot hold DT_STRING".into()));
    };
    if bytes.len() != n * size {
        return Err(bad_proto(format!(
            "tensor_content has {} bytes but shape {} of {dtype} needs {}",
            bytes.len(),
            shape_string(shape),
            n * size
        )));
    }
    macro_rules! le {
        ($t:ty, $variant:ident) => {
            TensorData::$variant(
                bytes
                    .chunks_exact(size)
                    .map(|c| {
                        let mut a = [0u8; std::mem::size_of::<$t>()];
                        a.copy_from_slice(c);
                        <$t>::from_le_bytes(a)
                    })
                    .collect(),
            )
        };
    }
    Ok(match dtype {
        DataType::Float => le!(f32, Float),
        DataType::Double => le!(f64, Double),
        DataType::Int8 => le!(i8, Int8),
        DataType::Int16 => le!(i16, Int16),
        DataType::Int32 => le!(i32, Int32),
        DataType::Int64 => le!(i64, Int64),
        DataType::Uint8 => TensorData::Uint8(bytes.to_vec()),
        DataType::Uint16 => le!(u16, Uint16),
        DataType::Uint32 => le!(u32, Uint32),
        DataType::Uint64 => le!(u64, Uint64),
        DataType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DataType::Half => le!(f16, Half),
        DataType::Bfloat16 => le!(bf16, Bfloat16),
        DataType::String => unreachable_string(),
    })
}

// DT_STRING has no byte size, so `from_content` returns before reaching it.
fn unreachable_string() -> TensorData {
    TensorData::String(Vec::new())
}

/// TensorFlow's typed-field expansion: exactly `n` values, padding with the
/// last one (or the default when there are none).
fn expand<T: Clone + Default>(values: &[T], n: usize, field: &str) -> Result<Vec<T>, Error> {
    if values.len() > n {
        return Err(bad_proto(format!(
            "{field} has {} values for a tensor of {n} elements",
            values.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(values);
    let fill = values.last().cloned().unwrap_or_default();
    out.resize(n, fill);
    Ok(out)
}

fn from_fields(dtype: DataType, p: &tf::TensorProto, n: usize) -> Result<TensorData, Error> {
    // The narrowing casts read back exactly what `int_val`/`half_val` hold for
    // these dtypes (TensorFlow stores them widened to int32).
    Ok(match dtype {
        DataType::Float => TensorData::Float(expand(&p.float_val, n, "float_val")?),
        DataType::Double => TensorData::Double(expand(&p.double_val, n, "double_val")?),
        DataType::Int32 => TensorData::Int32(expand(&p.int_val, n, "int_val")?),
        DataType::Int16 => TensorData::Int16(
            expand(&p.int_val, n, "int_val")?
                .into_iter()
                .map(|v| v as i16)
                .collect(),
        ),
        DataType::Int8 => TensorData::Int8(
            expand(&p.int_val, n, "int_val")?
                .into_iter()
                .map(|v| v as i8)
                .collect(),
        ),
        DataType::Uint8 => TensorData::Uint8(
            expand(&p.int_val, n, "int_val")?
                .into_iter()
                .map(|v| v as u8)
                .collect(),
        ),
        DataType::Uint16 => TensorData::Uint16(
            expand(&p.int_val, n, "int_val")?
                .into_iter()
                .map(|v| v as u16)
                .collect(),
        ),
        DataType::Int64 => TensorData::Int64(expand(&p.int64_val, n, "int64_val")?),
        DataType::Uint32 => TensorData::Uint32(expand(&p.uint32_val, n, "uint32_val")?),
        DataType::Uint64 => TensorData::Uint64(expand(&p.uint64_val, n, "uint64_val")?),
        DataType::Bool => TensorData::Bool(expand(&p.bool_val, n, "bool_val")?),
        DataType::String => TensorData::String(expand(&p.string_val, n, "string_val")?),
        DataType::Half => TensorData::Half(
            expand(&p.half_val, n, "half_val")?
                .into_iter()
                .map(|v| f16::from_bits(v as u16))
                .collect(),
        ),
        DataType::Bfloat16 => TensorData::Bfloat16(
            expand(&p.half_val, n, "half_val")?
                .into_iter()
                .map(|v| bf16::from_bits(v as u16))
                .collect(),
        ),
    })
}

impl From<&ModelSpec> for tfs::ModelSpec {
    fn from(m: &ModelSpec) -> Self {
        tfs::ModelSpec {
            name: m.name.clone(),
            signature_name: m.signature_name.clone(),
            version_choice: m.version.as_ref().map(|v| match v {
                VersionSelector::Number(n) => tfs::model_spec::VersionChoice::Version(*n),
                VersionSelector::Label(l) => tfs::model_spec::VersionChoice::VersionLabel(l.clone()),
            }),
        }
    }
}

impl From<&tfs::ModelSpec> for ModelSpec {
    fn from(m: &tfs::ModelSpec) -> Self {
        ModelSpec {
            name: m.name.clone(),
            signature_name: m.signature_name.clone(),
            version: m.version_choice.as_ref().map(|v| match v {
                tfs::model_spec::VersionChoice::Version(n) => VersionSelector::Number(*n),
                tfs::model_spec::VersionChoice::VersionLabel(l) => VersionSelector::Label(l.clone()),
            }),
        }
    }
}

fn tensors_from_proto(map: &BTreeMap<String, tf::TensorProto>) -> Result<BTreeMap<String, Tensor>, Error> {
    map.iter()
        .map(|(k, p)| {
            Tensor::from_proto(p)
                .map(|t| (k.clone(), t))
                .map_err(|e| e.with_prefix(format!("Tensor {k}: ")))
        })
        .collect()
}

impl PredictRequest {
    /// The gRPC message for this request to `model` (whose `signature_name`
    /// is replaced by the request's). A single unnamed input is named after
    /// the signature's only input, so `input_types` is needed then.
    pub fn to_proto(
        &self,
        model: &ModelSpec,
        input_types: &TensorTypes,
    ) -> Result<tfs::PredictRequest, Error> {
        let mut spec = tfs::ModelSpec::from(model);
        spec.signature_name = self.signature_name.clone().unwrap_or_default();
        let inputs = self.clone().into_named(input_types)?;
        Ok(tfs::PredictRequest {
            model_spec: Some(spec),
            inputs: inputs.iter().map(|(k, t)| (k.clone(), t.to_proto())).collect(),
            output_filter: Vec::new(),
        })
    }

    /// The model spec and the request carried by a gRPC message (columnar,
    /// named inputs; `output_filter` is left to the caller).
    pub fn from_proto(p: &tfs::PredictRequest) -> Result<(ModelSpec, PredictRequest), Error> {
        Self::from_proto_limited(p, MAX_PROTO_ELEMENTS)
    }

    /// [`PredictRequest::from_proto`] refusing, before any tensor is
    /// expanded, a request whose tensors' shapes hold more than
    /// `max_elements` elements in all: a `TensorProto` may carry one value
    /// for a shape of millions (TensorFlow repeats it), so the message's
    /// size alone does not bound what it costs.
    pub fn from_proto_limited(
        p: &tfs::PredictRequest,
        max_elements: usize,
    ) -> Result<(ModelSpec, PredictRequest), Error> {
        let mut total = 0usize;
        for (name, t) in &p.inputs {
            let mut dims = t.tensor_shape.iter().flat_map(|s| &s.dim);
            let n = dims.try_fold(1usize, |n, d| n.checked_mul(usize::try_from(d.size).unwrap_or(0)));
            total = n.and_then(|n| total.checked_add(n)).unwrap_or(usize::MAX);
            if total > max_elements {
                return Err(Error::invalid_argument(format!(
                    "Tensor {name}: the request's tensors hold more than the {max_elements} elements allowed"
                )));
            }
        }
        let spec = p.model_spec.as_ref().map(ModelSpec::from).unwrap_or_default();
        let signature_name = (!spec.signature_name.is_empty()).then(|| spec.signature_name.clone());
        Ok((
            spec,
            PredictRequest {
                signature_name,
                format: Format::Columnar,
                inputs: Inputs::Named(tensors_from_proto(&p.inputs)?),
            },
        ))
    }
}

impl PredictResponse {
    /// The gRPC message for this response.
    pub fn to_proto(&self, model: Option<&ModelSpec>) -> tfs::PredictResponse {
        tfs::PredictResponse {
            model_spec: model.map(tfs::ModelSpec::from),
            outputs: self
                .outputs
                .iter()
                .map(|(k, t)| (k.clone(), t.to_proto()))
                .collect(),
        }
    }

    /// The response carried by a gRPC message, to be written in `format`.
    pub fn from_proto(p: &tfs::PredictResponse, format: Format) -> Result<PredictResponse, Error> {
        Ok(PredictResponse {
            format,
            outputs: tensors_from_proto(&p.outputs)?,
        })
    }
}

impl From<&ModelStatusResponse> for tfs::GetModelStatusResponse {
    fn from(s: &ModelStatusResponse) -> Self {
        tfs::GetModelStatusResponse {
            model_version_status: s
                .model_version_status
                .iter()
                .map(|v| tfs::ModelVersionStatus {
                    version: v.version,
                    state: v.state.to_proto(),
                    status: Some(tfs::StatusProto {
                        error_code: v.status.error_code.to_proto(),
                        error_message: v.status.error_message.clone(),
                    }),
                })
                .collect(),
        }
    }
}

impl From<&tfs::GetModelStatusResponse> for ModelStatusResponse {
    fn from(s: &tfs::GetModelStatusResponse) -> Self {
        ModelStatusResponse {
            model_version_status: s
                .model_version_status
                .iter()
                .map(|v| {
                    let status = v.status.clone().unwrap_or_default();
                    ModelVersionStatus {
                        version: v.version,
                        state: ModelState::from_proto(v.state),
                        status: StatusProto {
                            error_code: Code::from_proto(status.error_code),
                            error_message: status.error_message,
                        },
                    }
                })
                .collect(),
        }
    }
}

/// The `type_url` of the `Any` that TF Serving packs a metadata response's
/// signatures in.
pub const SIGNATURE_DEF_MAP_TYPE_URL: &str = "type.googleapis.com/tensorflow.serving.SignatureDefMap";

fn shape_to_proto(s: &crate::TensorShape) -> tf::TensorShapeProto {
    tf::TensorShapeProto {
        dim: s
            .dim
            .iter()
            .map(|d| tf::tensor_shape_proto::Dim {
                size: d.size,
                name: d.name.clone(),
            })
            .collect(),
        unknown_rank: s.unknown_rank,
    }
}

fn shape_from_proto(s: &tf::TensorShapeProto) -> crate::TensorShape {
    crate::TensorShape {
        dim: s
            .dim
            .iter()
            .map(|d| crate::Dim {
                size: d.size,
                name: d.name.clone(),
            })
            .collect(),
        unknown_rank: s.unknown_rank,
    }
}

fn infos_to_proto(m: &BTreeMap<String, crate::TensorInfo>) -> BTreeMap<String, tf::TensorInfo> {
    m.iter()
        .map(|(k, i)| {
            let info = tf::TensorInfo {
                encoding: Some(tf::tensor_info::Encoding::Name(i.name.clone())),
                dtype: i.dtype.to_proto(),
                tensor_shape: Some(shape_to_proto(&i.tensor_shape)),
            };
            (k.clone(), info)
        })
        .collect()
}

fn infos_from_proto(
    m: &BTreeMap<String, tf::TensorInfo>,
) -> Result<BTreeMap<String, crate::TensorInfo>, Error> {
    m.iter()
        .map(|(k, i)| {
            let name = match &i.encoding {
                Some(tf::tensor_info::Encoding::Name(n)) => n.clone(),
                None => String::new(),
            };
            let info = crate::TensorInfo {
                dtype: DataType::from_proto(i.dtype).map_err(|e| e.with_prefix(format!("Tensor {k}: ")))?,
                tensor_shape: i.tensor_shape.as_ref().map(shape_from_proto).unwrap_or_default(),
                name,
            };
            Ok((k.clone(), info))
        })
        .collect()
}

impl From<&crate::ModelMetadataResponse> for tfs::GetModelMetadataResponse {
    fn from(m: &crate::ModelMetadataResponse) -> Self {
        use prost::Message;
        let map = tfs::SignatureDefMap {
            signature_def: m
                .metadata
                .signature_def
                .signature_def
                .iter()
                .map(|(name, s)| {
                    let def = tf::SignatureDef {
                        inputs: infos_to_proto(&s.inputs),
                        outputs: infos_to_proto(&s.outputs),
                        method_name: s.method_name.clone(),
                        // Defaults are rare and not needed to serve; they are
                        // not carried into the gRPC form.
                        defaults: BTreeMap::new(),
                    };
                    (name.clone(), def)
                })
                .collect(),
        };
        tfs::GetModelMetadataResponse {
            model_spec: Some(tfs::ModelSpec::from(&m.model_spec)),
            metadata: BTreeMap::from([(
                "signature_def".to_owned(),
                prost_types::Any {
                    type_url: SIGNATURE_DEF_MAP_TYPE_URL.to_owned(),
                    value: map.encode_to_vec(),
                },
            )]),
        }
    }
}

impl TryFrom<&tfs::GetModelMetadataResponse> for crate::ModelMetadataResponse {
    type Error = Error;

    fn try_from(m: &tfs::GetModelMetadataResponse) -> Result<Self, Error> {
        use prost::Message;
        let any = m
            .metadata
            .get("signature_def")
            .ok_or_else(|| Error::invalid_argument("Model metadata has no signature_def entry"))?;
        if any.type_url != SIGNATURE_DEF_MAP_TYPE_URL {
            return Err(Error::invalid_argument(format!(
                "Model metadata signature_def has type {:?}, expected {SIGNATURE_DEF_MAP_TYPE_URL:?}",
                any.type_url
            )));
        }
        let map = tfs::SignatureDefMap::decode(&any.value[..])
            .map_err(|e| Error::invalid_argument(format!("Malformed SignatureDefMap: {e}")))?;
        let signature_def = map
            .signature_def
            .iter()
            .map(|(name, s)| {
                let def = crate::SignatureDef {
                    inputs: infos_from_proto(&s.inputs)?,
                    outputs: infos_from_proto(&s.outputs)?,
                    method_name: s.method_name.clone(),
                    defaults: BTreeMap::new(),
                };
                Ok((name.clone(), def))
            })
            .collect::<Result<_, Error>>()?;
        Ok(crate::ModelMetadataResponse {
            model_spec: m.model_spec.as_ref().map(ModelSpec::from).unwrap_or_default(),
            metadata: crate::Metadata {
                signature_def: crate::SignatureDefMap { signature_def },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelMetadataResponse, SignatureDef, TensorInfo, TensorShape};
    use prost::Message;

    #[test]
    fn a_predict_request_over_its_element_budget_is_refused_before_expanding() {
        let tensor = |sizes: &[i64]| tf::TensorProto {
            dtype: DataType::Float.to_proto(),
            tensor_shape: Some(shape_to_proto(&crate::TensorShape::from_sizes(sizes))),
            // One value: TensorFlow repeats it over the whole shape.
            float_val: vec![1.0],
            ..Default::default()
        };
        let request = tfs::PredictRequest {
            model_spec: None,
            inputs: BTreeMap::from([("a".to_owned(), tensor(&[4, 5])), ("b".to_owned(), tensor(&[10]))]),
            output_filter: Vec::new(),
        };
        let (_, ok) = PredictRequest::from_proto_limited(&request, 30).unwrap();
        let Inputs::Named(inputs) = ok.inputs else {
            panic!("named inputs expected")
        };
        assert_eq!(inputs["a"].shape(), &[4, 5]);
        let e = PredictRequest::from_proto_limited(&request, 29).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("more than the 29 elements"), "{e}");
        // A shape whose product overflows is refused, not wrapped.
        let huge = tfs::PredictRequest {
            inputs: BTreeMap::from([("a".to_owned(), tensor(&[i64::MAX, i64::MAX]))]),
            ..request
        };
        assert!(PredictRequest::from_proto_limited(&huge, usize::MAX - 1).is_err());
    }

    #[test]
    fn metadata_round_trips_through_the_grpc_message() {
        let info = |name: &str, sizes: &[i64]| TensorInfo {
            dtype: DataType::Float,
            tensor_shape: TensorShape::from_sizes(sizes),
            name: name.to_owned(),
        };
        let sig = SignatureDef {
            inputs: BTreeMap::from([("input".to_owned(), info("input", &[-1, 3, 224, 224]))]),
            outputs: BTreeMap::from([("logits".to_owned(), info("logits", &[-1, 1000]))]),
            method_name: crate::PREDICT_METHOD.to_owned(),
            defaults: BTreeMap::new(),
        };
        let m = ModelMetadataResponse {
            model_spec: ModelSpec {
                name: "m".into(),
                version: Some(VersionSelector::Number(3)),
                signature_name: String::new(),
            },
            metadata: crate::Metadata {
                signature_def: crate::SignatureDefMap {
                    signature_def: BTreeMap::from([("serving_default".to_owned(), sig)]),
                },
            },
        };
        let wire = tfs::GetModelMetadataResponse::from(&m).encode_to_vec();
        let back = tfs::GetModelMetadataResponse::decode(&wire[..]).unwrap();
        assert_eq!(ModelMetadataResponse::try_from(&back).unwrap(), m);
        let mut wrong = back.clone();
        wrong.metadata.get_mut("signature_def").unwrap().type_url = "x".into();
        assert!(
            ModelMetadataResponse::try_from(&wrong)
                .unwrap_err()
                .message()
                .contains("expected")
        );
    }

    #[test]
    fn status_round_trips_through_the_grpc_message() {
        let s = ModelStatusResponse {
            model_version_status: vec![ModelVersionStatus {
                version: 2,
                state: ModelState::End,
                status: StatusProto {
                    error_code: Code::NotFound,
                    error_message: "gone".into(),
                },
            }],
        };
        let wire = tfs::GetModelStatusResponse::from(&s).encode_to_vec();
        let back = tfs::GetModelStatusResponse::decode(&wire[..]).unwrap();
        assert_eq!(ModelStatusResponse::from(&back), s);
    }
}
