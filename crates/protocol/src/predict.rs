//! Predict: TF Serving's `:predict` request and response in REST JSON.

use crate::json::{self, Layout, PrettyWriter, Value};
use crate::{DataType, Error, Tensor};
use std::collections::BTreeMap;

/// Tensor names mapped to dtypes: what TF Serving's codec needs from a
/// signature to read a request (its inputs) or a response (its outputs).
pub type TensorTypes = BTreeMap<String, DataType>;

/// How many JSON values a request may hold by default (4,194,304): 27
/// images of 224 × 224 × 3 numbers, 20 of 260 × 260 × 3. A value kept while
/// parsing costs 32 to 64 bytes, so this bounds a request's parse at about
/// 256 MB whatever its body inflates to.
pub const DEFAULT_MAX_JSON_VALUES: usize = 4 << 20;

/// The signature used when a request names none.
pub const DEFAULT_SIGNATURE: &str = "serving_default";

/// How a request carried its tensors; a response answers in the same format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `"instances"`: a list with one item per batch element; the response
    /// has `"predictions"`.
    Row,
    /// `"inputs"`: whole tensors; the response has `"outputs"`.
    Columnar,
}

/// The tensors of a request, named or not.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// One unnamed tensor: the signature's only input (`"instances": [...]` or
    /// `"inputs": [...]`).
    Single(Tensor),
    /// Tensors by input name (`"instances": [{"a": ...}]` or
    /// `"inputs": {"a": ...}`).
    Named(BTreeMap<String, Tensor>),
}

/// The body of a predict request: which signature, and the input tensors in
/// the row or the columnar format.
///
/// In the row format every tensor's first dimension is the batch (one
/// `instances` item per batch element).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    /// `signature_name`; `None` (or empty) means [`DEFAULT_SIGNATURE`].
    pub signature_name: Option<String>,
    /// The request format.
    pub format: Format,
    /// The input tensors.
    pub inputs: Inputs,
}

/// TF Serving treats an absent and an empty `signature_name` alike.
fn signature_or_default(name: Option<&str>) -> &str {
    match name {
        None | Some("") => DEFAULT_SIGNATURE,
        Some(name) => name,
    }
}

fn take(kept: &mut Vec<(String, Value)>, key: &str) -> Option<Value> {
    let at = kept.iter().position(|(k, _)| k == key)?;
    Some(kept.swap_remove(at).1)
}

impl PredictRequest {
    /// A row-format request (`"instances"`) with one unnamed input, batched
    /// along dimension 0.
    pub fn instances(tensor: Tensor) -> Self {
        PredictRequest {
            signature_name: None,
            format: Format::Row,
            inputs: Inputs::Single(tensor),
        }
    }

    /// A columnar request (`"inputs"`) with named tensors.
    pub fn named_inputs(inputs: BTreeMap<String, Tensor>) -> Self {
        PredictRequest {
            signature_name: None,
            format: Format::Columnar,
            inputs: Inputs::Named(inputs),
        }
    }

    /// The signature this request asks for: its `signature_name`, or
    /// [`DEFAULT_SIGNATURE`] when that is absent or empty.
    pub fn signature(&self) -> &str {
        signature_or_default(self.signature_name.as_deref())
    }

    /// Reads a request body as TF Serving does. `input_types` is asked for
    /// the input names and dtypes of the signature the body names (already
    /// resolved to [`DEFAULT_SIGNATURE`] when it names none); TF Serving's
    /// codec needs them, and ignores the signature's shapes. At most
    /// [`DEFAULT_MAX_JSON_VALUES`] values are read.
    pub fn from_json(
        body: &[u8],
        input_types: impl FnOnce(&str) -> Result<TensorTypes, Error>,
    ) -> Result<Self, Error> {
        Self::from_json_limited(body, DEFAULT_MAX_JSON_VALUES, input_types)
    }

    /// [`PredictRequest::from_json`] reading at most `max_values` JSON values
    /// (each number, string, array and object counts one), refused with
    /// `INVALID_ARGUMENT` as soon as the count passes it, before their
    /// memory is spent.
    pub fn from_json_limited(
        body: &[u8],
        max_values: usize,
        input_types: impl FnOnce(&str) -> Result<TensorTypes, Error>,
    ) -> Result<Self, Error> {
        let mut kept = json::parse_object(body, &["signature_name", "instances", "inputs"], max_values)?;
        let signature_name = json::signature_member(&kept)?;
        let signature = signature_or_default(signature_name.as_deref());
        let types = input_types(signature)?;
        if types.is_empty() {
            return Err(Error::invalid_argument(format!(
                "Failed to get input map for signature: {}",
                if signature_name.as_deref().unwrap_or("").is_empty() {
                    "DEFAULT"
                } else {
                    signature
                }
            )));
        }
        let instances = take(&mut kept, "instances");
        let inputs = take(&mut kept, "inputs");
        let (format, (layout, tensors)) = match (instances, inputs) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_argument(
                    "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
                ));
            }
            (None, None) => {
                return Err(Error::invalid_argument("Missing 'inputs' or 'instances' key"));
            }
            (Some(Value::Array(items)), None) => {
                (Format::Row, json::decode_rows(&items, &types, "instances")?)
            }
            (Some(_), None) => {
                return Err(Error::invalid_argument(
                    "Expecting 'instances' to be an list/array",
                ));
            }
            (None, Some(v)) => (Format::Columnar, json::decode_columns(&v, &types, "inputs")?),
        };
        Ok(PredictRequest {
            signature_name,
            format,
            inputs: into_inputs(layout, tensors),
        })
    }

    /// The input tensors by name, naming a [`Inputs::Single`] tensor after the
    /// signature's only input.
    pub fn into_named(self, input_types: &TensorTypes) -> Result<BTreeMap<String, Tensor>, Error> {
        match self.inputs {
            Inputs::Named(map) => Ok(map),
            Inputs::Single(t) => {
                let mut names = input_types.keys();
                match (names.next(), names.next()) {
                    (Some(name), None) => Ok(BTreeMap::from([(name.clone(), t)])),
                    _ => Err(Error::invalid_argument(
                        "inputs is a plain value/list, but expecting an object as multiple input \
                         tensors required as per tensorinfo_map",
                    )),
                }
            }
        }
    }

    /// Writes the request as TF Serving's REST JSON. Strings that are not
    /// UTF-8, or whose input name ends in `_bytes`, are sent as `{"b64": …}`.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        let mut w = PrettyWriter::new();
        w.start_object();
        if let Some(name) = &self.signature_name {
            w.key(b"signature_name");
            w.string(name.as_bytes());
        }
        let tensors: Vec<(Option<&str>, &Tensor)> = match &self.inputs {
            Inputs::Single(t) => vec![(None, t)],
            Inputs::Named(map) => map.iter().map(|(k, t)| (Some(k.as_str()), t)).collect(),
        };
        let named = matches!(self.inputs, Inputs::Named(_));
        for (name, t) in &tensors {
            let written = match self.format {
                Format::Row => t.shape().get(1..).unwrap_or_default(),
                Format::Columnar => t.shape(),
            };
            check_json_shape(name.unwrap_or_default(), t.shape(), written)?;
        }
        match self.format {
            Format::Row => {
                w.key(b"instances");
                let batch = common_batch(&tensors)?;
                if batch == 0 {
                    return Err(Error::invalid_argument(
                        "A row-format request needs at least one instance",
                    ));
                }
                write_rows(&mut w, &tensors, named, batch, json::needs_b64)?;
            }
            Format::Columnar => {
                w.key(b"inputs");
                write_columns(&mut w, &tensors, named, json::needs_b64)?;
            }
        }
        w.end_object();
        Ok(w.into_bytes())
    }
}

/// JSON lists carry no shape: TF Serving reads it from the first element at
/// each depth, so dimensions after a 0 cannot be written. Refused rather than
/// sent as a different shape.
fn check_json_shape(name: &str, shape: &[usize], written: &[usize]) -> Result<(), Error> {
    let zero = written.iter().position(|&d| d == 0);
    if zero.is_some_and(|z| z + 1 < written.len()) {
        return Err(Error::invalid_argument(format!(
            "Tensor {name} of shape {} cannot be written as JSON: TF Serving reads a list's shape from \
             its first element, so the dimensions after a 0 would be lost",
            crate::tensor::shape_string(shape)
        )));
    }
    Ok(())
}

fn into_inputs(layout: Layout, tensors: BTreeMap<String, Tensor>) -> Inputs {
    match layout {
        Layout::Named => Inputs::Named(tensors),
        Layout::Plain => match tensors.into_iter().next() {
            Some((_, t)) => Inputs::Single(t),
            None => Inputs::Named(BTreeMap::new()),
        },
    }
}

/// The shared first dimension of row-format tensors (TF Serving's check in
/// `MakeRowFormatJsonFromTensors`).
fn common_batch(tensors: &[(Option<&str>, &Tensor)]) -> Result<usize, Error> {
    let mut batch: Option<usize> = None;
    for (name, t) in tensors {
        let name = name.unwrap_or_default();
        let Some(b) = t.batch_size() else {
            return Err(Error::invalid_argument(format!(
                "Tensor name: {name} has no shape information "
            )));
        };
        if let Some(prev) = batch.filter(|&p| p != b) {
            return Err(Error::invalid_argument(format!(
                "Tensor name: {name} has inconsistent batch size: {b} expecting: {prev}"
            )));
        }
        batch = Some(b);
    }
    Ok(batch.unwrap_or(0))
}

type BytesRule = fn(Option<&str>, &Tensor) -> bool;

fn write_rows(
    w: &mut PrettyWriter,
    tensors: &[(Option<&str>, &Tensor)],
    named: bool,
    batch: usize,
    as_bytes: BytesRule,
) -> Result<(), Error> {
    w.start_array();
    for item in 0..batch {
        if named {
            w.start_object();
        }
        w.set_single_line_arrays(true);
        for (name, t) in tensors {
            if named {
                w.key(name.unwrap_or_default().as_bytes());
            }
            json::write_tensor(w, t, Some(item), as_bytes(*name, t))?;
        }
        w.set_single_line_arrays(false);
        if named {
            w.end_object();
        }
    }
    w.end_array();
    Ok(())
}

fn write_columns(
    w: &mut PrettyWriter,
    tensors: &[(Option<&str>, &Tensor)],
    named: bool,
    as_bytes: BytesRule,
) -> Result<(), Error> {
    if named {
        w.start_object();
    }
    for (name, t) in tensors {
        if named {
            w.key(name.unwrap_or_default().as_bytes());
        }
        json::write_tensor(w, t, None, as_bytes(*name, t))?;
    }
    if named {
        w.end_object();
    }
    Ok(())
}

/// The body of a predict response: output tensors by name, and the format
/// they are written in (that of the request).
#[derive(Debug, Clone, PartialEq)]
pub struct PredictResponse {
    /// `Row` writes `"predictions"`, `Columnar` writes `"outputs"`.
    pub format: Format,
    /// Output tensors by name.
    pub outputs: BTreeMap<String, Tensor>,
}

impl PredictResponse {
    /// Writes the response byte for byte as TF Serving does (its pretty
    /// writer's layout, `WriteDecimal` floats, `{"b64": …}` for string outputs
    /// whose name ends in `_bytes`, outputs in name order).
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        if self.outputs.is_empty() {
            return Err(Error::invalid_argument("Cannot convert empty tensor map to JSON"));
        }
        let tensors: Vec<(Option<&str>, &Tensor)> =
            self.outputs.iter().map(|(k, t)| (Some(k.as_str()), t)).collect();
        let named = tensors.len() > 1;
        let bytes_rule: BytesRule =
            |name, t| t.dtype() == DataType::String && name.is_some_and(|n| n.ends_with("_bytes"));
        let mut w = PrettyWriter::new();
        w.start_object();
        match self.format {
            Format::Row => {
                let batch = common_batch(&tensors)?;
                w.key(b"predictions");
                write_rows(&mut w, &tensors, named, batch, bytes_rule)?;
            }
            Format::Columnar => {
                w.key(b"outputs");
                write_columns(&mut w, &tensors, named, bytes_rule)?;
            }
        }
        w.end_object();
        Ok(w.into_bytes())
    }

    /// Reads a response body given the signature's output names and dtypes
    /// (JSON alone cannot tell `1.0` as float from double, nor name a single
    /// output). A `{"error": …}` body becomes that error, with code `Unknown`
    /// since the body carries no status (see [`Error::from_http_response`]).
    pub fn from_json(body: &[u8], output_types: &TensorTypes) -> Result<Self, Error> {
        // Responses come from a server the caller chose, bounded by its
        // byte limit for them; only requests count values.
        let mut kept = json::parse_object(body, &["predictions", "outputs", "error"], usize::MAX)?;
        if let Some(v) = take(&mut kept, "error") {
            let message = match v {
                Value::String(s) => String::from_utf8_lossy(&s).into_owned(),
                other => json::describe(&other),
            };
            return Err(Error::new(crate::Code::Unknown, message));
        }
        if output_types.is_empty() {
            return Err(Error::invalid_argument("No output tensors in the signature"));
        }
        let predictions = take(&mut kept, "predictions");
        let outputs = take(&mut kept, "outputs");
        let (format, tensors) = match (predictions, outputs) {
            (Some(Value::Array(items)), None) if items.is_empty() => {
                let empty = output_types
                    .iter()
                    .map(|(name, dtype)| {
                        Ok((
                            name.clone(),
                            Tensor::new(vec![0], crate::TensorData::with_capacity(*dtype, 0))?,
                        ))
                    })
                    .collect::<Result<_, Error>>()?;
                (Format::Row, empty)
            }
            (Some(Value::Array(items)), None) => (
                Format::Row,
                json::decode_rows(&items, output_types, "predictions")?.1,
            ),
            (Some(_), None) => {
                return Err(Error::invalid_argument(
                    "Expecting 'predictions' to be an list/array",
                ));
            }
            (None, Some(v)) => (
                Format::Columnar,
                json::decode_columns(&v, output_types, "outputs")?.1,
            ),
            (Some(_), Some(_)) => {
                return Err(Error::invalid_argument(
                    "Expecting only one of 'predictions' or 'outputs' keys in a predict response",
                ));
            }
            (None, None) => {
                return Err(Error::invalid_argument(
                    "Missing 'predictions' or 'outputs' key in a predict response",
                ));
            }
        };
        Ok(PredictResponse {
            format,
            outputs: tensors,
        })
    }
}
