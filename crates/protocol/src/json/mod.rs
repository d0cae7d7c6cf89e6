//! TF Serving's REST JSON codec: reading (rapidjson-compatible, iterative)
//! and writing (rapidjson `PrettyWriter` layout), and the dense tensor
//! encoding shared by requests and responses.

mod parse;
mod tensor;
mod value;
mod write;

pub(crate) use parse::parse_object;
pub(crate) use tensor::{
    Layout, decode_base64, decode_columns, decode_rows, encode_base64, needs_b64, write_tensor,
};
pub(crate) use value::{Number, Value};
pub(crate) use write::{PrettyWriter, describe, write_string};

/// The message of a `{"error": "…"}` body, if `body` is one.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<String> {
    let kept = parse_object(body, &["error"]).ok()?;
    match kept.into_iter().next() {
        Some((_, Value::String(message))) => Some(String::from_utf8_lossy(&message).into_owned()),
        _ => None,
    }
}
