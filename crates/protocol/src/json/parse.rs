//! An iterative JSON reader with rapidjson's syntax and error messages
//! (as configured by TF Serving: `kParseNanAndInfFlag`, stop when the first
//! value is done, no UTF-8 validation).

use super::value::{Number, Value};
use crate::Error;

/// Deepest nesting kept in a parsed value. TensorFlow tensors have at most 254
/// dimensions, so a tensor never needs more; the limit bounds the memory and
/// recursion of everything that walks a kept value. Values under ignored keys
/// are skipped without building anything and may be nested arbitrarily deep.
pub(crate) const MAX_DEPTH: usize = 256;

#[derive(Debug)]
struct SyntaxError {
    message: &'static str,
    offset: usize,
}

impl From<SyntaxError> for Error {
    fn from(e: SyntaxError) -> Error {
        Error::invalid_argument(format!("JSON Parse error: {} at offset: {}", e.message, e.offset))
    }
}

type Result<T> = std::result::Result<T, SyntaxError>;

/// Receives the values the driver reads.
trait Sink {
    /// Whether strings and keys are needed (false when only validating).
    const KEEP: bool;
    fn scalar(&mut self, value: Value, offset: usize) -> Result<()>;
    fn open(&mut self, object: bool, offset: usize) -> Result<()>;
    fn key(&mut self, key: Vec<u8>);
    fn close(&mut self);
}

/// The syntax error's message when a document holds more values than its
/// parse may keep; [`parse_object`] words it with the limit.
const TOO_MANY_VALUES: &str = "Too many values.";

/// Builds a [`Value`] with an explicit stack, refusing nesting beyond
/// [`MAX_DEPTH`] and more than `left` values (each scalar and container
/// counts one), checked before each is kept.
struct Builder {
    frames: Vec<Frame>,
    done: Option<Value>,
    left: usize,
}

enum Frame {
    Array(Vec<Value>),
    Object(Vec<(Vec<u8>, Value)>, Vec<u8>),
}

impl Builder {
    fn new(max_values: usize) -> Builder {
        Builder {
            frames: Vec::new(),
            done: None,
            left: max_values,
        }
    }

    fn count(&mut self, offset: usize) -> Result<()> {
        self.left = self.left.checked_sub(1).ok_or(SyntaxError {
            message: TOO_MANY_VALUES,
            offset,
        })?;
        Ok(())
    }

    fn push(&mut self, value: Value) {
        match self.frames.last_mut() {
            None => self.done = Some(value),
            Some(Frame::Array(items)) => items.push(value),
            Some(Frame::Object(members, key)) => members.push((std::mem::take(key), value)),
        }
    }
}

impl Sink for Builder {
    const KEEP: bool = true;
    fn scalar(&mut self, value: Value, offset: usize) -> Result<()> {
        self.count(offset)?;
        self.push(value);
        Ok(())
    }
    fn open(&mut self, object: bool, offset: usize) -> Result<()> {
        self.count(offset)?;
        if self.frames.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                message: "Nesting is deeper than 256 levels.",
                offset,
            });
        }
        self.frames.push(if object {
            Frame::Object(Vec::new(), Vec::new())
        } else {
            Frame::Array(Vec::new())
        });
        Ok(())
    }
    fn key(&mut self, key: Vec<u8>) {
        if let Some(Frame::Object(_, pending)) = self.frames.last_mut() {
            *pending = key;
        }
    }
    fn close(&mut self) {
        let value = match self.frames.pop() {
            Some(Frame::Array(items)) => Value::Array(items),
            Some(Frame::Object(members, _)) => Value::Object(members),
            None => return,
        };
        self.push(value);
    }
}

/// Validates without keeping anything.
struct Skipper;

impl Sink for Skipper {
    const KEEP: bool = false;
    fn scalar(&mut self, _: Value, _: usize) -> Result<()> {
        Ok(())
    }
    fn open(&mut self, _: bool, _: usize) -> Result<()> {
        Ok(())
    }
    fn key(&mut self, _: Vec<u8>) {}
    fn close(&mut self) {}
}

struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Reader<'a> {
    fn syntax(&self, message: &'static str) -> SyntaxError {
        SyntaxError {
            message,
            offset: self.pos,
        }
    }

    fn err<T>(&self, message: &'static str) -> Result<T> {
        Err(self.syntax(message))
    }

    fn skip_ws(&mut self) {
        while self.pos < self.src.len() && is_ws(self.src[self.pos]) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &[u8]) -> bool {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Number> {
        let start = self.pos;
        let minus = self.eat(b'-');
        let sign = if minus { -1.0 } else { 1.0 };
        match self.peek() {
            Some(b'N') => {
                return if self.eat_word(b"NaN") {
                    Ok(Number::Double(f64::NAN))
                } else {
                    self.err("Invalid value.")
                };
            }
            Some(b'I') => {
                if !self.eat_word(b"Inf") {
                    return self.err("Invalid value.");
                }
                if self.peek() == Some(b'i') && !self.eat_word(b"inity") {
                    return self.err("Invalid value.");
                }
                return Ok(Number::Double(sign * f64::INFINITY));
            }
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("Invalid value."),
        }
        let mut integer = true;
        if self.eat(b'.') {
            integer = false;
            if self.digits() == 0 {
                return self.err("Miss fraction part in number.");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err("Miss exponent in number.");
            }
        }
        // The token is ASCII by construction.
        let text = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
        if integer {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Number::Int(i));
            }
            if let (false, Ok(u)) = (minus, text.parse::<u64>()) {
                return Ok(Number::Uint(u));
            }
        }
        match text.parse::<f64>() {
            Ok(d) if d.is_finite() => Ok(Number::Double(d)),
            _ => Err(SyntaxError {
                message: "Number too big to be stored in double.",
                offset: start,
            }),
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return self.err("Incorrect hex digit after \\u escape in string."),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }

    /// Reads a string starting at its opening quote, appending its bytes to
    /// `out` when given.
    fn string(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<()> {
        self.pos += 1;
        loop {
            // Copy the plain run at once: strings are most of a b64 request.
            let run_start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            if let Some(o) = out.as_deref_mut() {
                o.extend_from_slice(&self.src[run_start..self.pos]);
            }
            match self.peek() {
                None | Some(0) => return self.err("Missing a closing quotation mark in string."),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let simple = match self.peek() {
                        Some(b'"') => Some(b'"'),
                        Some(b'\\') => Some(b'\\'),
                        Some(b'/') => Some(b'/'),
                        Some(b'b') => Some(0x08),
                        Some(b'f') => Some(0x0c),
                        Some(b'n') => Some(b'\n'),
                        Some(b'r') => Some(b'\r'),
                        Some(b't') => Some(b'\t'),
                        Some(b'u') => None,
                        _ => return self.err("Invalid escape character in string."),
                    };
                    self.pos += 1;
                    let code = match simple {
                        Some(b) => u32::from(b),
                        None => {
                            let mut code = self.hex4()?;
                            if (0xD800..=0xDBFF).contains(&code) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return self.err("The surrogate pair in string is invalid.");
                                }
                                let low = self.hex4()?;
                                if !(0xDC00..=0xDFFF).contains(&low) {
                                    return self.err("The surrogate pair in string is invalid.");
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            code
                        }
                    };
                    if let Some(o) = out.as_deref_mut() {
                        push_utf8(o, code);
                    }
                }
                Some(_) => return self.err("Invalid escape character in string."),
            }
        }
    }

    fn key<S: Sink>(&mut self, sink: &mut S) -> Result<()> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return self.err("Missing a name for object member.");
        }
        if S::KEEP {
            let mut key = Vec::new();
            self.string(Some(&mut key))?;
            sink.key(key);
        } else {
            self.string(None)?;
        }
        self.skip_ws();
        if !self.eat(b':') {
            return self.err("Missing a colon after a name of object member.");
        }
        Ok(())
    }

    /// Reads one complete value into `sink`, without recursion.
    fn value<S: Sink>(&mut self, sink: &mut S) -> Result<()> {
        // One entry per open container: true for an object.
        let mut open: Vec<bool> = Vec::new();
        loop {
            self.skip_ws();
            let start = self.pos;
            match self.peek() {
                Some(b'{') => {
                    sink.open(true, start)?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.eat(b'}') {
                        sink.close();
                    } else {
                        open.push(true);
                        self.key(sink)?;
                        continue;
                    }
                }
                Some(b'[') => {
                    sink.open(false, start)?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.eat(b']') {
                        sink.close();
                    } else {
                        open.push(false);
                        continue;
                    }
                }
                Some(b'"') => {
                    if S::KEEP {
                        let mut s = Vec::new();
                        self.string(Some(&mut s))?;
                        sink.scalar(Value::String(s), start)?;
                    } else {
                        self.string(None)?;
                    }
                }
                Some(b'n') if self.eat_word(b"null") => sink.scalar(Value::Null, start)?,
                Some(b't') if self.eat_word(b"true") => sink.scalar(Value::Bool(true), start)?,
                Some(b'f') if self.eat_word(b"false") => sink.scalar(Value::Bool(false), start)?,
                Some(b'-' | b'0'..=b'9' | b'N' | b'I') => {
                    let n = self.number()?;
                    sink.scalar(Value::Number(n), start)?;
                }
                _ => return self.err("Invalid value."),
            }
            // A value is complete: close every container it completes.
            loop {
                let Some(&is_object) = open.last() else {
                    return Ok(());
                };
                self.skip_ws();
                if self.eat(b',') {
                    if is_object {
                        self.key(sink)?;
                    }
                    break;
                }
                let close = if is_object { b'}' } else { b']' };
                if self.eat(close) {
                    open.pop();
                    sink.close();
                    continue;
                }
                return self.err(if is_object {
                    "Missing a comma or '}' after an object member."
                } else {
                    "Missing a comma or ']' after an array element."
                });
            }
        }
    }
}

/// UTF-8 for a code point, including lone surrogates (rapidjson writes those
/// as three bytes too rather than failing).
fn push_utf8(out: &mut Vec<u8>, code: u32) {
    // The `as u8` casts keep exactly the bits selected by the masks.
    match code {
        0..=0x7F => out.push(code as u8),
        0x80..=0x7FF => out.extend([0xC0 | (code >> 6) as u8, 0x80 | (code & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend([
            0xE0 | (code >> 12) as u8,
            0x80 | ((code >> 6) & 0x3F) as u8,
            0x80 | (code & 0x3F) as u8,
        ]),
        _ => out.extend([
            0xF0 | (code >> 18) as u8,
            0x80 | ((code >> 12) & 0x3F) as u8,
            0x80 | ((code >> 6) & 0x3F) as u8,
            0x80 | (code & 0x3F) as u8,
        ]),
    }
}

/// Parses a document whose root must be an object, keeping only the members
/// named in `wanted` (the first of each; later duplicates and every other key
/// are validated and dropped, at any depth, without recursion). Bytes after the
/// root value are ignored, as in TF Serving.
///
/// At most `max_values` values are kept, all members together: a kept value
/// costs ~32 bytes against the 2 of a `0,` in the body, so a body within
/// any byte limit could otherwise cost gigabytes (a 100 KB gzip of 98 MB
/// of zeros did). Counted as they are read, so the refusal comes before
/// the memory is spent.
pub(crate) fn parse_object(src: &[u8], wanted: &[&str], max_values: usize) -> Result2<Vec<(String, Value)>> {
    if src.is_empty() {
        return Err(Error::invalid_argument("JSON Parse error: The document is empty"));
    }
    let mut r = Reader { src, pos: 0 };
    r.skip_ws();
    if r.peek().is_none() {
        return Err(SyntaxError {
            message: "The document is empty.",
            offset: r.pos,
        }
        .into());
    }
    if r.peek() != Some(b'{') {
        let start = r.pos;
        r.value(&mut Skipper)?;
        return Err(Error::invalid_argument(format!(
            "JSON Value: {} Is not object",
            super::write::snippet(&src[start..r.pos])
        )));
    }
    r.pos += 1;
    let mut kept: Vec<(String, Value)> = Vec::new();
    let mut kept_values = 0;
    r.skip_ws();
    if r.eat(b'}') {
        return Ok(kept);
    }
    loop {
        r.skip_ws();
        if r.peek() != Some(b'"') {
            return Err(r.syntax("Missing a name for object member.").into());
        }
        let mut key = Vec::new();
        r.string(Some(&mut key))?;
        r.skip_ws();
        if !r.eat(b':') {
            return Err(r.syntax("Missing a colon after a name of object member.").into());
        }
        let name = wanted
            .iter()
            .find(|w| w.as_bytes() == key)
            .filter(|w| !kept.iter().any(|(k, _)| k == **w));
        match name {
            Some(name) => {
                let left = max_values.saturating_sub(kept_values);
                let mut b = Builder::new(left);
                r.value(&mut b).map_err(|e| {
                    if e.message == TOO_MANY_VALUES {
                        Error::invalid_argument(format!(
                            "The request holds more than {max_values} JSON values; the limit was reached at offset {}",
                            e.offset
                        ))
                    } else {
                        e.into()
                    }
                })?;
                kept_values += left - b.left;
                kept.push(((*name).to_owned(), b.done.unwrap_or(Value::Null)));
            }
            None => r.value(&mut Skipper)?,
        }
        r.skip_ws();
        if r.eat(b',') {
            continue;
        }
        if r.eat(b'}') {
            return Ok(kept);
        }
        return Err(r.syntax("Missing a comma or '}' after an object member.").into());
    }
}

type Result2<T> = std::result::Result<T, Error>;

/// Parses any complete JSON value (bounded by [`MAX_DEPTH`]).
#[cfg(test)]
pub(crate) fn parse_value(src: &[u8]) -> Result2<Value> {
    let mut r = Reader { src, pos: 0 };
    let mut b = Builder::new(usize::MAX);
    r.value(&mut b)?;
    Ok(b.done.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse_object(src.as_bytes(), &["a"], usize::MAX)
            .unwrap_err()
            .to_string()
    }

    fn get(src: &str) -> Value {
        let mut kept = parse_object(src.as_bytes(), &["a"], usize::MAX).unwrap();
        assert_eq!(kept.len(), 1, "{src}");
        kept.remove(0).1
    }

    #[test]
    fn kept_values_are_counted_across_members_and_skipped_ones_are_not() {
        let doc = br#"{"a": [1, [2, 3]], "skip": [0, 0, 0, 0, 0, 0, 0, 0], "b": {"c": "x"}}"#;
        // a: the array, 1, the inner array, 2, 3; b: the object, "x".
        assert_eq!(parse_object(doc, &["a", "b"], 7).unwrap().len(), 2);
        let e = parse_object(doc, &["a", "b"], 6).unwrap_err();
        assert_eq!(e.code(), crate::Code::InvalidArgument);
        assert_eq!(
            e.message(),
            "The request holds more than 6 JSON values; the limit was reached at offset 64"
        );
        let e = parse_object(b"{\"a\": [0, 0, 0, 0]}", &["a"], 3).unwrap_err();
        assert!(e.message().ends_with("at offset 13"), "{e}");
    }

    #[test]
    fn numbers_keep_their_token_kind() {
        assert_eq!(get(r#"{"a": 1}"#), Value::Number(Number::Int(1)));
        assert_eq!(get(r#"{"a": -0}"#), Value::Number(Number::Int(0)));
        assert_eq!(get(r#"{"a": 1.0}"#), Value::Number(Number::Double(1.0)));
        assert_eq!(get(r#"{"a": 1e2}"#), Value::Number(Number::Double(100.0)));
        assert_eq!(
            get(r#"{"a": 9223372036854775807}"#),
            Value::Number(Number::Int(i64::MAX))
        );
        assert_eq!(
            get(r#"{"a": 9223372036854775808}"#),
            Value::Number(Number::Uint(1 << 63))
        );
        assert_eq!(
            get(r#"{"a": 18446744073709551616}"#),
            Value::Number(Number::Double(18446744073709551616.0))
        );
        assert_eq!(
            get(r#"{"a": -9223372036854775809}"#),
            Value::Number(Number::Double(-9223372036854775809.0))
        );
        assert_eq!(get(r#"{"a": 1e-400}"#), Value::Number(Number::Double(0.0)));
    }

    #[test]
    fn non_finite_tokens_are_case_sensitive() {
        for (tok, want) in [
            ("NaN", f64::NAN),
            ("-NaN", f64::NAN),
            ("Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ] {
            let Value::Number(Number::Double(d)) = get(&format!(r#"{{"a": {tok}}}"#)) else {
                panic!("{tok}")
            };
            assert!(d.is_nan() == want.is_nan() && (d.is_nan() || d == want), "{tok}");
        }
        for tok in ["nan", "Nan", "inf", "Infinit", "NAN", "-infinity"] {
            assert!(
                err(&format!(r#"{{"a": {tok}}}"#))
                    .starts_with("JSON Parse error: Invalid value. at offset: "),
                "{tok}"
            );
        }
    }

    #[test]
    fn syntax_errors_use_rapidjson_wording_and_offsets() {
        assert_eq!(
            parse_object(b"", &[], usize::MAX).unwrap_err().to_string(),
            "JSON Parse error: The document is empty"
        );
        assert_eq!(err("  "), "JSON Parse error: The document is empty. at offset: 2");
        assert_eq!(
            err(r#"{"a": 1e309}"#),
            "JSON Parse error: Number too big to be stored in double. at offset: 6"
        );
        assert_eq!(
            err(r#"{"a": 1.}"#),
            "JSON Parse error: Miss fraction part in number. at offset: 8"
        );
        assert_eq!(
            err(r#"{"a": 1e}"#),
            "JSON Parse error: Miss exponent in number. at offset: 8"
        );
        assert_eq!(
            err(r#"{"a" 1}"#),
            "JSON Parse error: Missing a colon after a name of object member. at offset: 5"
        );
        assert_eq!(
            err(r#"{"a": 1 "b": 2}"#),
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 8"
        );
        assert_eq!(
            err(r#"{"a": [1 2]}"#),
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 9"
        );
        assert_eq!(
            err(r#"{"a": [1,]}"#),
            "JSON Parse error: Invalid value. at offset: 9"
        );
        assert_eq!(
            err(r#"{1: 2}"#),
            "JSON Parse error: Missing a name for object member. at offset: 1"
        );
        assert_eq!(
            err(r#"{"a": "x"#),
            "JSON Parse error: Missing a closing quotation mark in string. at offset: 8"
        );
        assert_eq!(
            err(r#"{"a": "\q"}"#),
            "JSON Parse error: Invalid escape character in string. at offset: 8"
        );
        assert_eq!(
            err(r#"{"a": "\u12G4"}"#),
            "JSON Parse error: Incorrect hex digit after \\u escape in string. at offset: 11"
        );
        assert_eq!(
            err(r#"{"a": "\uD800x"}"#),
            "JSON Parse error: The surrogate pair in string is invalid. at offset: 13"
        );
        assert_eq!(err(r#"[1, 2]"#), "JSON Value: [1, 2] Is not object");
        assert_eq!(
            err(r#"{"a": 01}"#),
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 7"
        );
    }

    #[test]
    fn strings_are_bytes_with_escapes_decoded() {
        assert_eq!(
            get(r#"{"a": "x\n\u00e9\ud83d\ude00\/"}"#),
            Value::String("x\né😀/".as_bytes().to_vec())
        );
        let raw = b"{\"a\": \"\xff\xfe\"}";
        let kept = parse_object(raw, &["a"], usize::MAX).unwrap();
        assert_eq!(kept[0].1, Value::String(vec![0xff, 0xfe]));
    }

    #[test]
    fn trailing_bytes_after_the_root_are_ignored() {
        assert_eq!(get(r#"{"a": true} trailing garbage ]]"#), Value::Bool(true));
    }

    #[test]
    fn first_of_duplicate_keys_wins_and_others_are_dropped() {
        let kept = parse_object(br#"{"z": [1], "a": 1, "a": 2}"#, &["a"], usize::MAX).unwrap();
        assert_eq!(kept, vec![("a".to_owned(), Value::Number(Number::Int(1)))]);
    }

    #[test]
    fn unknown_keys_of_any_depth_are_skipped_without_recursion() {
        let depth = 500_000;
        let mut doc = String::from(r#"{"ignored": "#);
        doc.push_str(&"[".repeat(depth));
        doc.push_str(&"]".repeat(depth));
        doc.push_str(r#", "obj": "#);
        doc.push_str(&r#"{"k":"#.repeat(depth));
        doc.push('1');
        doc.push_str(&"}".repeat(depth));
        doc.push_str(r#", "a": [1]}"#);
        assert_eq!(get(&doc), Value::Array(vec![Value::Number(Number::Int(1))]));
        // The skipped value is still validated.
        let bad = format!(r#"{{"ignored": {}, "a": 1}}"#, "[".repeat(depth));
        assert!(
            err(&bad).starts_with("JSON Parse error: Invalid value."),
            "{}",
            err(&bad)
        );
    }

    #[test]
    fn kept_values_are_bounded_in_depth() {
        let ok = format!(r#"{{"a": {}{}}}"#, "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_object(ok.as_bytes(), &["a"], usize::MAX).is_ok());
        let deep = format!(
            r#"{{"a": {}{}}}"#,
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            err(&deep),
            format!(
                "JSON Parse error: Nesting is deeper than 256 levels. at offset: {}",
                6 + MAX_DEPTH
            )
        );
    }

    #[test]
    fn parse_value_reads_any_root() {
        assert_eq!(
            parse_value(b" [true, null] ").unwrap(),
            Value::Array(vec![Value::Bool(true), Value::Null])
        );
    }
}
