//! Dense tensors in JSON: shape inference from the first element at each
//! depth, typed element conversion, the row (`instances`/`predictions`) and
//! columnar (`inputs`/`outputs`) layouts, and writing.

use super::value::{Number, Value};
use super::write::{PrettyWriter, describe};
use crate::tensor::shape_string;
use crate::{DataType, Error, Tensor, TensorData, TensorTypes};
use base64::Engine as _;
use std::collections::{BTreeMap, BTreeSet};

fn type_error(v: &Value, dtype: DataType) -> Error {
    Error::invalid_argument(format!(
        "JSON Value: {} Type: {} is not of expected type: {}",
        describe(v),
        v.type_name(),
        dtype
    ))
}

/// absl's `Base64Unescape`: standard alphabet, whitespace anywhere ignored,
/// padding optional but exact when present (`=` or `.`).
fn decode_base64(text: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .collect();
    let data_len = compact
        .iter()
        .position(|&c| c == b'=' || c == b'.')
        .unwrap_or(compact.len());
    let pad = compact.len() - data_len;
    if pad > 0 {
        let all_pad = compact[data_len..].iter().all(|&c| c == b'=' || c == b'.');
        if !all_pad || pad > 2 || !(data_len + pad).is_multiple_of(4) {
            return None;
        }
    }
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&compact[..data_len])
        .ok()
}

pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The bytes of a `{"b64": "…"}` object (TF Serving's
/// `JsonDecodeBase64Object`).
pub(crate) fn b64_bytes(v: &Value) -> Result<Vec<u8>, Error> {
    match v {
        Value::Object(members) if v.is_b64_object() => match &members[0].1 {
            Value::String(s) => {
                decode_base64(s).ok_or_else(|| Error::invalid_argument("Unable to base64 decode"))
            }
            _ => Err(Error::invalid_argument("Unable to base64 decode")),
        },
        _ => Err(Error::invalid_argument(format!(
            "JSON Value: {} not formatted correctly for base64 data",
            describe(v)
        ))),
    }
}

/// Converts one leaf value (TF Serving's `AddValueToTensor`).
fn push_element(v: &Value, data: &mut TensorData) -> Result<(), Error> {
    let dtype = data.dtype();
    if let Value::Object(_) = v {
        return match data {
            TensorData::String(d) => {
                d.push(b64_bytes(v)?);
                Ok(())
            }
            _ => Err(type_error(v, dtype)),
        };
    }
    let n = match v {
        Value::Number(n) => Some(*n),
        _ => None,
    };
    let int = n.and_then(Number::as_i64);
    let int32 = int.and_then(|i| i32::try_from(i).ok());
    let bad = || type_error(v, dtype);
    // The narrowing `as` casts below are TF Serving's own: an integer literal
    // in int32 range is accepted for int8/int16/uint8 and truncated, so a
    // request gives the same tensor here as on TF Serving.
    match data {
        TensorData::Float(d) => d.push(n.ok_or_else(bad)?.as_f64() as f32),
        TensorData::Double(d) => d.push(n.ok_or_else(bad)?.as_f64()),
        TensorData::Int32(d) => d.push(int32.ok_or_else(bad)?),
        TensorData::Int16(d) => d.push(int32.ok_or_else(bad)? as i16),
        TensorData::Int8(d) => d.push(int32.ok_or_else(bad)? as i8),
        TensorData::Uint8(d) => d.push(int32.ok_or_else(bad)? as u8),
        TensorData::Int64(d) => d.push(int.ok_or_else(bad)?),
        TensorData::Uint32(d) => d.push(
            n.and_then(Number::as_u64)
                .and_then(|u| u32::try_from(u).ok())
                .ok_or_else(bad)?,
        ),
        TensorData::Uint64(d) => d.push(n.and_then(Number::as_u64).ok_or_else(bad)?),
        TensorData::Bool(d) => match v {
            Value::Bool(b) => d.push(*b),
            _ => return Err(bad()),
        },
        TensorData::String(d) => match v {
            Value::String(s) => d.push(s.clone()),
            _ => return Err(bad()),
        },
        TensorData::Half(_) | TensorData::Bfloat16(_) | TensorData::Uint16(_) => {
            return Err(Error::unimplemented(format!(
                "Conversion of JSON Value: {} to type: {}",
                describe(v),
                dtype
            )));
        }
    }
    Ok(())
}

fn infer_shape(mut v: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    while let Value::Array(items) = v {
        shape.push(items.len());
        match items.first() {
            Some(first) => v = first,
            None => break,
        }
    }
    shape
}

/// TF Serving's `FillTensorProto`; recursion is bounded by the parser's depth
/// limit.
fn fill(v: &Value, level: usize, shape: &[usize], data: &mut TensorData) -> Result<(), Error> {
    let rank = shape.len();
    match v {
        Value::Array(items) => {
            if level >= rank {
                return Err(Error::invalid_argument(format!(
                    "Encountered list at unexpected level: {level} expected < {rank}"
                )));
            }
            if items.len() != shape[level] {
                return Err(Error::invalid_argument(format!(
                    "Encountered list at unexpected size: {} at level: {level} expected size: {}",
                    items.len(),
                    shape[level]
                )));
            }
            items
                .iter()
                .try_for_each(|item| fill(item, level + 1, shape, data))
        }
        _ if level != rank => Err(Error::invalid_argument(format!(
            "JSON Value: {} found at incorrect level: {} in the JSON DOM. Expected at level: {rank}",
            describe(v),
            level + 1
        ))),
        _ => push_element(v, data),
    }
}

/// Decodes one dense tensor of `dtype` from a scalar or nested lists.
pub(crate) fn decode_tensor(v: &Value, dtype: DataType) -> Result<Tensor, Error> {
    let shape = infer_shape(v);
    let capacity = crate::tensor::element_count(&shape).unwrap_or(0).min(1 << 20);
    let mut data = TensorData::with_capacity(dtype, capacity);
    fill(v, 0, &shape, &mut data)?;
    Tensor::new(shape, data)
}

/// How a request or response named its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Bare values: the signature's single tensor.
    Plain,
    /// Objects keyed by tensor name.
    Named,
}

/// The row layout (`instances` in requests, `predictions` in responses): a
/// list with one item per batch element (TF Serving's
/// `FillTensorMapFromInstancesList`). `items` must not be empty.
pub(crate) fn decode_rows(
    items: &[Value],
    types: &TensorTypes,
    list: &str,
) -> Result<(Layout, BTreeMap<String, Tensor>), Error> {
    let Some(first) = items.first() else {
        return Err(Error::invalid_argument(format!("No values in '{list}' array")));
    };
    if !matches!(first, Value::Object(_)) && types.len() > 1 {
        return Err(Error::invalid_argument(format!(
            "{list} is a plain list, but expecting list of objects as multiple input tensors \
             required as per tensorinfo_map"
        )));
    }
    let named = first.is_named_object();
    let names: BTreeSet<&str> = types.keys().map(String::as_str).collect();
    let mut rows: BTreeMap<String, Vec<Tensor>> = BTreeMap::new();

    // Adds one instance's tensor, checking it against the first instance
    // (TF Serving's `AddInstanceItem`).
    let add = |rows: &mut BTreeMap<String, Vec<Tensor>>, name: &str, v: &Value| -> Result<(), Error> {
        let dtype = *types.get(name).ok_or_else(|| {
            Error::invalid_argument(format!("JSON object: does not have named input: {name}"))
        })?;
        let t = decode_tensor(v, dtype)?;
        let seen = rows.entry(name.to_owned()).or_default();
        if let Some(prev) = seen.first() {
            if prev.len() != t.len() {
                return Err(Error::invalid_argument(format!(
                    "Expecting tensor size: {} but got: {}",
                    prev.len(),
                    t.len()
                )));
            }
            if prev.shape() != t.shape() {
                return Err(Error::invalid_argument(format!(
                    "Expecting shape {} but got: {}",
                    shape_string(prev.shape()),
                    shape_string(t.shape())
                )));
            }
        }
        seen.push(t);
        Ok(())
    };
    let wrap = |i: usize, key: Option<&str>, e: Error| {
        let key = key.map(|k| format!("key: {k} ")).unwrap_or_default();
        Error::invalid_argument(format!(
            "Failed to process element: {i} {key}of '{list}' list. Error: {}: {}",
            e.code(),
            e.message()
        ))
    };
    for (i, item) in items.iter().enumerate() {
        if named {
            let Value::Object(members) = item else {
                return Err(Error::invalid_argument(format!(
                    "Expecting object but got list at item {i} of input list"
                )));
            };
            if item.is_b64_object() {
                return Err(Error::invalid_argument(format!(
                    "Expecting object but got list at item {i} of input list"
                )));
            }
            let mut keys = BTreeSet::new();
            for (k, v) in members {
                let k = String::from_utf8_lossy(k);
                add(&mut rows, &k, v).map_err(|e| wrap(i, Some(&k), e))?;
                keys.insert(k);
            }
            if keys.iter().map(|k| k.as_ref()).ne(names.iter().copied()) {
                return Err(Error::invalid_argument(format!(
                    "Failed to process element: {i} of '{list}' list. JSON object: {} keys must be equal to: {}",
                    describe(item),
                    names.iter().copied().collect::<Vec<_>>().join(",")
                )));
            }
        } else {
            if item.is_named_object() {
                return Err(Error::invalid_argument(format!(
                    "Expecting value/list but got object at item {i} of input list"
                )));
            }
            let name = names.first().copied().unwrap_or_default();
            add(&mut rows, name, item).map_err(|e| wrap(i, None, e))?;
        }
    }
    let tensors = rows
        .into_iter()
        .map(|(name, items)| Ok((name, Tensor::stack(items)?)))
        .collect::<Result<_, Error>>()?;
    Ok((if named { Layout::Named } else { Layout::Plain }, tensors))
}

/// The columnar layout (`inputs` in requests, `outputs` in responses): one
/// value for a single tensor, or an object of named tensors (TF Serving's
/// `FillTensorMapFromInputsMap`; extra keys are ignored).
pub(crate) fn decode_columns(
    v: &Value,
    types: &TensorTypes,
    key: &str,
) -> Result<(Layout, BTreeMap<String, Tensor>), Error> {
    let mut tensors = BTreeMap::new();
    if !v.is_named_object() {
        if types.len() > 1 {
            return Err(Error::invalid_argument(format!(
                "{key} is a plain value/list, but expecting an object as multiple input tensors \
                 required as per tensorinfo_map"
            )));
        }
        if let Some((name, dtype)) = types.iter().next() {
            tensors.insert(name.clone(), decode_tensor(v, *dtype)?);
        }
        return Ok((Layout::Plain, tensors));
    }
    for (name, dtype) in types {
        let item = v.get(name).ok_or_else(|| {
            Error::invalid_argument(format!("Missing named input: {name} in '{key}' object."))
        })?;
        tensors.insert(name.clone(), decode_tensor(item, *dtype)?);
    }
    Ok((Layout::Named, tensors))
}

/// Writes element `i` of `data` (TF Serving's `AddSingleValueAndAdvance`).
pub(crate) fn write_value_at(
    w: &mut PrettyWriter,
    data: &TensorData,
    i: usize,
    as_bytes: bool,
) -> Result<(), Error> {
    match data {
        TensorData::Float(d) => w.f32(d[i]),
        TensorData::Double(d) => w.f64(d[i]),
        TensorData::Int8(d) => w.display(d[i]),
        TensorData::Int16(d) => w.display(d[i]),
        TensorData::Int32(d) => w.display(d[i]),
        TensorData::Int64(d) => w.display(d[i]),
        TensorData::Uint8(d) => w.display(d[i]),
        TensorData::Uint32(d) => w.display(d[i]),
        TensorData::Uint64(d) => w.display(d[i]),
        TensorData::Bool(d) => w.raw(if d[i] { b"true" } else { b"false" }),
        TensorData::String(d) if as_bytes => {
            w.start_object();
            w.key(b"b64");
            w.string(encode_base64(&d[i]).as_bytes());
            w.end_object();
        }
        TensorData::String(d) => w.string(&d[i]),
        TensorData::Half(_) | TensorData::Bfloat16(_) | TensorData::Uint16(_) => {
            return Err(Error::invalid_argument(format!(
                "Failed to write JSON value for tensor type: {}",
                data.dtype()
            )));
        }
    }
    Ok(())
}

fn write_nested(
    w: &mut PrettyWriter,
    data: &TensorData,
    shape: &[usize],
    offset: &mut usize,
    as_bytes: bool,
) -> Result<(), Error> {
    let Some((&dim, rest)) = shape.split_first() else {
        write_value_at(w, data, *offset, as_bytes)?;
        *offset += 1;
        return Ok(());
    };
    w.start_array();
    for _ in 0..dim {
        write_nested(w, data, rest, offset, as_bytes)?;
    }
    w.end_array();
    Ok(())
}

/// Writes a tensor, or with `row = Some(i)` its `i`-th item along dimension
/// 0, as nested lists (TF Serving's `AddTensorValues`). Recursion is bounded
/// by the rank, which [`Tensor::new`] limits.
pub(crate) fn write_tensor(
    w: &mut PrettyWriter,
    t: &Tensor,
    row: Option<usize>,
    as_bytes: bool,
) -> Result<(), Error> {
    if t.is_empty() {
        // Nothing will be written, but an unsupported dtype is still an error.
        let supported = !matches!(t.dtype(), DataType::Half | DataType::Bfloat16 | DataType::Uint16);
        if !supported {
            return Err(Error::invalid_argument(format!(
                "Failed to write JSON value for tensor type: {}",
                t.dtype()
            )));
        }
    }
    let (shape, mut offset) = match row {
        None => (t.shape(), 0),
        Some(i) => {
            let inner = &t.shape()[1..];
            (inner, i * crate::tensor::element_count(inner).unwrap_or(0))
        }
    };
    write_nested(w, t.data(), shape, &mut offset, as_bytes)
}

/// Whether a string tensor should be written as `{"b64": …}` in a request we
/// send: TF Serving's `_bytes` naming rule, or bytes JSON cannot carry as text.
pub(crate) fn needs_b64(name: Option<&str>, t: &Tensor) -> bool {
    match t.data() {
        TensorData::String(items) => {
            name.is_some_and(|n| n.ends_with("_bytes"))
                || items.iter().any(|s| std::str::from_utf8(s).is_err())
        }
        _ => false,
    }
}
