//! Classify and regress: TF Serving's `tf.Example`-based APIs in REST JSON.

use crate::Error;
use crate::json::{self, Number, PrettyWriter, Value};
use std::collections::BTreeMap;

/// One feature of a `tf.train.Example`. Its kind comes from the JSON token of
/// its values, as in TF Serving: strings and `{"b64": …}` are bytes, numbers
/// with a fraction or exponent (or `NaN`/`Infinity`) are floats, integer
/// literals and booleans are int64.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// An empty list: a feature with no kind set.
    Empty,
    /// `bytes_list`.
    Bytes(Vec<Vec<u8>>),
    /// `float_list`.
    Float(Vec<f32>),
    /// `int64_list`.
    Int64(Vec<i64>),
}

/// A `tf.train.Example`: named features.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Example {
    /// Features by name.
    pub features: BTreeMap<String, Feature>,
}

/// The body of a `:classify` or `:regress` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ExamplesRequest {
    /// `signature_name`; `None` means the default signature.
    pub signature_name: Option<String>,
    /// Features shared by every example (`ExampleListWithContext`).
    pub context: Option<Example>,
    /// The examples, at least one.
    pub examples: Vec<Example>,
}

/// A `:classify` request.
pub type ClassifyRequest = ExamplesRequest;
/// A `:regress` request.
pub type RegressRequest = ExamplesRequest;

fn kind_name(f: &Feature) -> &'static str {
    match f {
        Feature::Empty => "UNKNOWN",
        Feature::Bytes(_) => "bytes",
        Feature::Float(_) => "float",
        Feature::Int64(_) => "int64",
    }
}

/// TF Serving's `AddValueToFeature`.
fn add_value(name: &str, v: &Value, feature: &mut Feature) -> Result<(), Error> {
    let unexpected = || {
        Error::invalid_argument(format!(
            "Feature: {name} has element with unexpected JSON type: {}",
            v.type_name()
        ))
    };
    let incompatible = |f: &Feature| {
        Error::invalid_argument(format!(
            "Unexpected element type in feature: {name} expecting type: {}",
            kind_name(f)
        ))
    };
    match v {
        Value::Null | Value::Array(_) => Err(unexpected()),
        Value::Object(_) if !v.is_b64_object() => Err(unexpected()),
        Value::Object(_) => push_bytes(feature, json::b64_bytes(v)?).map_err(|f| incompatible(&f)),
        Value::String(s) => push_bytes(feature, s.clone()).map_err(|f| incompatible(&f)),
        Value::Bool(b) => push_int(feature, i64::from(*b)).map_err(|f| incompatible(&f)),
        Value::Number(Number::Double(d)) => match feature {
            Feature::Empty => {
                *feature = Feature::Float(vec![*d as f32]);
                Ok(())
            }
            Feature::Float(values) => {
                values.push(*d as f32);
                Ok(())
            }
            other => Err(incompatible(other)),
        },
        Value::Number(Number::Int(i)) => push_int(feature, *i).map_err(|f| incompatible(&f)),
        Value::Number(Number::Uint(_)) => {
            if matches!(feature, Feature::Empty | Feature::Int64(_)) {
                Err(Error::invalid_argument(format!(
                    "Feature: {name} has uint64 element. Only int64_t is supported."
                )))
            } else {
                Err(incompatible(feature))
            }
        }
    }
}

fn push_bytes(feature: &mut Feature, bytes: Vec<u8>) -> Result<(), Feature> {
    match feature {
        Feature::Empty => *feature = Feature::Bytes(vec![bytes]),
        Feature::Bytes(values) => values.push(bytes),
        other => return Err(other.clone()),
    }
    Ok(())
}

fn push_int(feature: &mut Feature, v: i64) -> Result<(), Feature> {
    match feature {
        Feature::Empty => *feature = Feature::Int64(vec![v]),
        Feature::Int64(values) => values.push(v),
        other => return Err(other.clone()),
    }
    Ok(())
}

/// TF Serving's `MakeExampleFromJsonObject`.
fn example_from(v: &Value) -> Result<Example, Error> {
    let Value::Object(members) = v else {
        return Err(Error::invalid_argument(format!(
            "Example must be JSON object but got JSON {}",
            v.type_name()
        )));
    };
    let mut example = Example::default();
    for (k, content) in members {
        let name = String::from_utf8_lossy(k).into_owned();
        let mut feature = Feature::Empty;
        match content {
            Value::Array(items) => {
                for item in items {
                    add_value(&name, item, &mut feature)?;
                }
            }
            single => add_value(&name, single, &mut feature)?,
        }
        example.features.insert(name, feature);
    }
    Ok(example)
}

fn write_example(w: &mut PrettyWriter, example: &Example) {
    w.start_object();
    for (name, feature) in &example.features {
        w.key(name.as_bytes());
        w.start_array();
        match feature {
            Feature::Empty => {}
            Feature::Bytes(values) => {
                for v in values {
                    if std::str::from_utf8(v).is_ok() {
                        w.string(v);
                    } else {
                        w.start_object();
                        w.key(b"b64");
                        w.string(json::encode_base64(v).as_bytes());
                        w.end_object();
                    }
                }
            }
            // WriteDecimal always marks a float as one (`.0`, exponent or a
            // non-finite token), so the kind survives the round trip.
            Feature::Float(values) => values.iter().for_each(|v| w.f32(*v)),
            Feature::Int64(values) => values.iter().for_each(|v| w.display(v)),
        }
        w.end_array();
    }
    w.end_object();
}

impl ExamplesRequest {
    /// Reads a `:classify` or `:regress` body as TF Serving does, reading at
    /// most [`DEFAULT_MAX_JSON_VALUES`](crate::DEFAULT_MAX_JSON_VALUES)
    /// JSON values.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        Self::from_json_limited(body, crate::DEFAULT_MAX_JSON_VALUES)
    }

    /// [`ExamplesRequest::from_json`] reading at most `max_values` JSON
    /// values, refused as soon as the count passes it.
    pub fn from_json_limited(body: &[u8], max_values: usize) -> Result<Self, Error> {
        let kept = json::parse_object(body, &["signature_name", "context", "examples"], max_values)?;
        let get = |key: &str| kept.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let signature_name = json::signature_member(&kept)?;
        let context = get("context").map(example_from).transpose()?;
        let examples = match get("examples") {
            None => {
                return Err(Error::invalid_argument(
                    "When method is classify, key 'examples' is expected and was not found",
                ));
            }
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(Error::invalid_argument("'examples' value is an empty array"));
            }
            Some(Value::Array(items)) => items.iter().map(example_from).collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(Error::invalid_argument(
                    "Expecting 'examples' value to be an list/array",
                ));
            }
        };
        Ok(ExamplesRequest {
            signature_name,
            context,
            examples,
        })
    }

    /// Writes the request as REST JSON that TF Serving reads back to the same
    /// features (floats always carry a decimal point or exponent, non-UTF-8
    /// bytes go as `{"b64": …}`).
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        if self.examples.is_empty() {
            return Err(Error::invalid_argument("'examples' value is an empty array"));
        }
        let mut w = PrettyWriter::new();
        w.start_object();
        if let Some(name) = &self.signature_name {
            w.key(b"signature_name");
            w.string(name.as_bytes());
        }
        if let Some(context) = &self.context {
            w.key(b"context");
            write_example(&mut w, context);
        }
        w.key(b"examples");
        w.start_array();
        for e in &self.examples {
            write_example(&mut w, e);
        }
        w.end_array();
        w.end_object();
        Ok(w.into_bytes())
    }
}

/// One class of a classification result.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// The label; empty when the model has none.
    pub label: String,
    /// The score.
    pub score: f32,
}

/// A `:classify` response: one list of classes per example.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyResponse {
    /// `results[i]` are the classes of example `i`.
    pub results: Vec<Vec<Class>>,
}

/// A `:regress` response: one value per example.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressResponse {
    /// `results[i]` is the value for example `i`.
    pub results: Vec<f32>,
}

fn results_member(body: &[u8]) -> Result<Vec<Value>, Error> {
    let kept = json::parse_object(body, &["results", "error"], usize::MAX)?;
    match kept.into_iter().next() {
        Some((k, Value::String(m))) if k == "error" => Err(Error::new(
            crate::Code::Unknown,
            String::from_utf8_lossy(&m).into_owned(),
        )),
        Some((k, Value::Array(items))) if k == "results" => Ok(items),
        _ => Err(Error::invalid_argument("Expecting 'results' to be an list/array")),
    }
}

fn score(v: &Value, at: &str) -> Result<f32, Error> {
    match v {
        Value::Number(n) => Ok(n.as_f64() as f32),
        other => Err(Error::invalid_argument(format!(
            "Expecting a number at {at} but got JSON {}",
            other.type_name()
        ))),
    }
}

impl ClassifyResponse {
    /// Writes the response as TF Serving does.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        if self.results.is_empty() {
            return Err(Error::invalid_argument(
                "Cannot convert empty ClassificationResults to JSON",
            ));
        }
        let mut w = PrettyWriter::new();
        w.start_object();
        w.key(b"results");
        w.start_array();
        for classes in &self.results {
            w.set_single_line_arrays(true);
            w.start_array();
            for c in classes {
                w.start_array();
                w.string(c.label.as_bytes());
                w.f32(c.score);
                w.end_array();
            }
            w.end_array();
            w.set_single_line_arrays(false);
        }
        w.end_array();
        w.end_object();
        Ok(w.into_bytes())
    }

    /// Reads a response body: `{"results": [[[label, score], …], …]}`.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        let results = results_member(body)?
            .iter()
            .enumerate()
            .map(|(i, classes)| {
                let Value::Array(classes) = classes else {
                    return Err(Error::invalid_argument(format!(
                        "Expecting a list of classes at results[{i}]"
                    )));
                };
                classes
                    .iter()
                    .enumerate()
                    .map(|(j, pair)| match pair {
                        Value::Array(p) if p.len() == 2 => match &p[0] {
                            Value::String(label) => Ok(Class {
                                label: String::from_utf8_lossy(label).into_owned(),
                                score: score(&p[1], &format!("results[{i}][{j}][1]"))?,
                            }),
                            _ => Err(Error::invalid_argument(format!(
                                "Expecting a label string at results[{i}][{j}][0]"
                            ))),
                        },
                        _ => Err(Error::invalid_argument(format!(
                            "Expecting a [label, score] pair at results[{i}][{j}]"
                        ))),
                    })
                    .collect()
            })
            .collect::<Result<_, Error>>()?;
        Ok(ClassifyResponse { results })
    }
}

impl RegressResponse {
    /// Writes the response as TF Serving does.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        if self.results.is_empty() {
            return Err(Error::invalid_argument(
                "Cannot convert empty RegressionResults to JSON",
            ));
        }
        let mut w = PrettyWriter::new();
        w.start_object();
        w.key(b"results");
        w.set_single_line_arrays(true);
        w.start_array();
        for v in &self.results {
            w.f32(*v);
        }
        w.end_array();
        w.end_object();
        Ok(w.into_bytes())
    }

    /// Reads a response body: `{"results": [v, …]}`.
    pub fn from_json(body: &[u8]) -> Result<Self, Error> {
        let results = results_member(body)?
            .iter()
            .enumerate()
            .map(|(i, v)| score(v, &format!("results[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(RegressResponse { results })
    }
}
