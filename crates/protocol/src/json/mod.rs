//! TF Serving's REST JSON codec: reading (rapidjson-compatible, iterative)
//! and writing (rapidjson `PrettyWriter` layout), and the dense tensor
//! encoding shared by requests and responses.

mod parse;
mod tensor;
mod value;
mod write;

pub(crate) use parse::parse_object;
pub(crate) use tensor::{
    Layout, b64_bytes, decode_columns, decode_rows, encode_base64, needs_b64, write_tensor,
};
pub(crate) use value::{Number, Value};
pub(crate) use write::{PrettyWriter, describe, write_string};

/// The `signature_name` member of a request's kept top-level members,
/// checked as TF Serving checks it (predict, classify and regress alike).
pub(crate) fn signature_member(kept: &[(String, Value)]) -> Result<Option<String>, crate::Error> {
    match kept.iter().find(|(k, _)| k == "signature_name") {
        None => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(String::from_utf8_lossy(s).into_owned())),
        Some((_, v)) => Err(crate::Error::invalid_argument(format!(
            "JSON Value: {} not formatted correctly. 'signature_name' key must be a string value.",
            describe(v)
        ))),
    }
}

/// The message of a `{"error": "…"}` body, if `body` is one.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<String> {
    let kept = parse_object(body, &["error"], usize::MAX).ok()?;
    match kept.into_iter().next() {
        Some((_, Value::String(message))) => Some(String::from_utf8_lossy(&message).into_owned()),
        _ => None,
    }
}
