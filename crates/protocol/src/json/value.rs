//! The JSON document model of the codec.
//!
//! Written for this crate rather than taken from `serde_json` because TF
//! Serving's codec depends on what `serde_json` does not keep or accept: the
//! token a number was written as (`1` is an integer, `1.0` is not), the
//! non-standard `NaN`/`Infinity` tokens, byte strings that need not be UTF-8,
//! duplicate keys in source order, and skipping an ignored value of any depth
//! without recursion.

/// A JSON number, classified by its token the way rapidjson does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    /// An integer literal in `i64` range.
    Int(i64),
    /// An integer literal above `i64::MAX` that fits `u64`.
    Uint(u64),
    /// Anything else: a literal with a fraction or exponent, an integer
    /// literal outside the 64-bit ranges, or `NaN`/`Infinity`.
    Double(f64),
}

impl Number {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Uint(u) => u as f64,
            Number::Double(d) => d,
        }
    }

    pub(crate) fn as_i64(self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(i),
            _ => None,
        }
    }

    pub(crate) fn as_u64(self) -> Option<u64> {
        match self {
            Number::Int(i) => u64::try_from(i).ok(),
            Number::Uint(u) => Some(u),
            Number::Double(_) => None,
        }
    }
}

/// A parsed JSON value. Strings are bytes: rapidjson (and so TF Serving) does
/// not validate UTF-8, and `DT_STRING` tensors hold bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(Vec<u8>),
    Array(Vec<Value>),
    /// Members in source order, duplicates kept (lookups take the first).
    Object(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// rapidjson's type name, as TF Serving's messages print it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Bool(false) => "False",
            Value::Bool(true) => "True",
            Value::Number(_) => "Number",
            Value::String(_) => "String",
            Value::Array(_) => "Array",
            Value::Object(_) => "Object",
        }
    }

    /// The first member called `key`, if this is an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `{"b64": "<string>"}` with exactly that one key.
    pub(crate) fn is_b64_object(&self) -> bool {
        match self {
            Value::Object(members) => {
                members.len() == 1 && members[0].0 == b"b64" && matches!(members[0].1, Value::String(_))
            }
            _ => false,
        }
    }

    /// An object that is not a b64 object: a map of named values.
    pub(crate) fn is_named_object(&self) -> bool {
        matches!(self, Value::Object(_)) && !self.is_b64_object()
    }
}
