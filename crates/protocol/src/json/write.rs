//! JSON output laid out exactly as TF Serving's rapidjson `PrettyWriter` lays
//! it out, with TF Serving's float formatting (`WriteDecimal`).

use super::value::{Number, Value};

/// Appends `bytes` as a JSON string the way rapidjson's writer escapes it:
/// `"`, `\` and control characters escaped, everything else (including bytes
/// that are not UTF-8) written as is.
pub(crate) fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// ASCII text of at most 40 bytes on the stack. `%g` text is at most a sign,
/// 17 digits, a point and a 5-character exponent (the fixed form has an
/// exponent in -4..17, so at most 4 leading zeros), so formatting a number
/// never allocates: a float-tensor request is 150,528 of them.
pub(crate) struct Text {
    buf: [u8; 40],
    len: usize,
}

impl Text {
    fn new() -> Self {
        Text { buf: [0; 40], len: 0 }
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl std::fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.extend(s.as_bytes());
        Ok(())
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let keep = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    &digits[..keep]
}

/// C's `printf("%.{precision}g", v)` for a finite `v`.
///
/// Hand-written because Rust's formatter has no `%g`. The digits come from
/// one exact `{:e}` conversion (which rounds exact ties to even, as glibc
/// does); the fixed form is laid out from the same digits, since `%g` takes
/// its exponent from the rounded `%e` form.
pub(crate) fn format_g(v: f64, precision: usize) -> Text {
    use std::fmt::Write as _;
    let precision = precision.clamp(1, 17);
    let mut out = Text::new();
    if v.is_sign_negative() {
        out.push(b'-');
    }
    if v == 0.0 {
        out.push(b'0');
        return out;
    }
    let mut sci = Text::new();
    // Cannot fail: at most 1 + 1 + 16 + 5 bytes.
    let _ = write!(sci, "{:.*e}", precision - 1, v.abs());
    let sci = sci.as_bytes();
    let e = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
    let lead = sci.first().copied().unwrap_or(b'0');
    let frac = sci.get(2..e).unwrap_or_default();
    let exp: i32 = std::str::from_utf8(sci.get(e + 1..).unwrap_or_default())
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let p = i32::try_from(precision).unwrap_or(17);
    if exp < -4 || exp >= p {
        out.push(lead);
        let frac = trim_zeros(frac);
        if !frac.is_empty() {
            out.push(b'.');
            out.extend(frac);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        if exp.unsigned_abs() < 10 {
            out.push(b'0');
        }
        let _ = write!(out, "{}", exp.unsigned_abs());
    } else if exp >= 0 {
        // exp < precision, so the integer part is all in the digits.
        let int_len = exp.unsigned_abs() as usize;
        out.push(lead);
        out.extend(frac.get(..int_len).unwrap_or_default());
        let rest = trim_zeros(frac.get(int_len..).unwrap_or_default());
        if !rest.is_empty() {
            out.push(b'.');
            out.extend(rest);
        }
    } else {
        out.extend(b"0.");
        for _ in 1..exp.unsigned_abs() {
            out.push(b'0');
        }
        out.push(lead);
        out.extend(trim_zeros(frac));
    }
    out
}

/// TF Serving's `WriteDecimal` for one float type: shortest `%g` text if it
/// reads back to the same value, else `max_digits10` digits; `.0` appended to
/// plain integers; `NaN`, `Infinity`, `-Infinity` for non-finite values.
fn write_decimal(out: &mut Vec<u8>, v: f64, round_trips: impl Fn(&str) -> bool, max_digits10: usize) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v < 0.0 { b"-Infinity" } else { b"Infinity" });
        return;
    }
    let mut text = format_g(v, 6);
    if !round_trips(text.as_str()) {
        text = format_g(v, max_digits10);
    }
    out.extend_from_slice(text.as_bytes());
    if !text.as_bytes().iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
}

/// `WriteDecimal<float>`.
pub(crate) fn write_f32(out: &mut Vec<u8>, v: f32) {
    write_decimal(out, f64::from(v), |t| t.parse::<f32>() == Ok(v), 9);
}

/// `WriteDecimal<double>`.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    write_decimal(out, v, |t| t.parse::<f64>() == Ok(v), 17);
}

#[derive(Clone, Copy)]
struct Level {
    in_array: bool,
    count: usize,
}

/// A replica of rapidjson's `PrettyWriter` (4-space indent), including its
/// single-line-array mode, so responses match TF Serving's byte for byte.
pub(crate) struct PrettyWriter {
    out: Vec<u8>,
    levels: Vec<Level>,
    single_line: bool,
}

impl PrettyWriter {
    pub(crate) fn new() -> Self {
        PrettyWriter {
            out: Vec::new(),
            levels: Vec::new(),
            single_line: false,
        }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// rapidjson's `kFormatSingleLineArray` on or off.
    pub(crate) fn set_single_line_arrays(&mut self, on: bool) {
        self.single_line = on;
    }

    fn indent(&mut self) {
        let n = self.levels.len() * 4;
        self.out.extend(std::iter::repeat_n(b' ', n));
    }

    fn prefix(&mut self) {
        let Some(level) = self.levels.last().copied() else {
            return;
        };
        if level.in_array {
            if level.count > 0 {
                self.out.push(b',');
                if self.single_line {
                    self.out.push(b' ');
                }
            }
            if !self.single_line {
                self.out.push(b'\n');
                self.indent();
            }
        } else {
            if level.count == 0 {
                self.out.push(b'\n');
            } else if level.count % 2 == 0 {
                self.out.extend_from_slice(b",\n");
            } else {
                self.out.extend_from_slice(b": ");
            }
            if level.count % 2 == 0 {
                self.indent();
            }
        }
        if let Some(top) = self.levels.last_mut() {
            top.count += 1;
        }
    }

    pub(crate) fn start_object(&mut self) {
        self.prefix();
        self.levels.push(Level {
            in_array: false,
            count: 0,
        });
        self.out.push(b'{');
    }

    pub(crate) fn end_object(&mut self) {
        let empty = self.levels.pop().is_none_or(|l| l.count == 0);
        if !empty {
            self.out.push(b'\n');
            self.indent();
        }
        self.out.push(b'}');
    }

    pub(crate) fn start_array(&mut self) {
        self.prefix();
        self.levels.push(Level {
            in_array: true,
            count: 0,
        });
        self.out.push(b'[');
    }

    pub(crate) fn end_array(&mut self) {
        let empty = self.levels.pop().is_none_or(|l| l.count == 0);
        if !empty && !self.single_line {
            self.out.push(b'\n');
            self.indent();
        }
        self.out.push(b']');
    }

    /// An object key (rapidjson writes keys as strings).
    pub(crate) fn key(&mut self, key: &[u8]) {
        self.string(key);
    }

    pub(crate) fn string(&mut self, s: &[u8]) {
        self.prefix();
        write_string(&mut self.out, s);
    }

    /// A value whose text is already JSON (numbers, `true`, `NaN`…).
    pub(crate) fn raw(&mut self, text: &[u8]) {
        self.prefix();
        self.out.extend_from_slice(text);
    }

    pub(crate) fn f32(&mut self, v: f32) {
        self.prefix();
        write_f32(&mut self.out, v);
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.prefix();
        write_f64(&mut self.out, v);
    }

    pub(crate) fn display(&mut self, v: impl std::fmt::Display) {
        self.raw(v.to_string().as_bytes());
    }
}

/// Longest text of a value quoted in an error message. TF Serving quotes the
/// whole value (its code has a TODO to truncate); a request of megabytes
/// should not come back inside its own error.
const SNIPPET_LIMIT: usize = 256;

fn truncate(mut text: Vec<u8>) -> String {
    if text.len() > SNIPPET_LIMIT {
        text.truncate(SNIPPET_LIMIT);
        text.extend_from_slice(b"...");
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Source text quoted in an error message, truncated.
pub(crate) fn snippet(src: &[u8]) -> String {
    truncate(src.to_vec())
}

/// A value as TF Serving's `JsonValueToString` prints it in error messages
/// (pretty-printed; a decimal that fits a float printed as a float),
/// truncated.
pub(crate) fn describe(value: &Value) -> String {
    let mut w = PrettyWriter::new();
    write_value(&mut w, value);
    truncate(w.into_bytes())
}

/// Writes `value` until the text is past [`SNIPPET_LIMIT`], then stops: the
/// text kept is the same as the whole value's, and a request of a few
/// kilobytes that inflates to millions of values costs no more than its
/// quote (pretty-printing all of one took ~520 bytes per byte sent).
fn write_value(w: &mut PrettyWriter, value: &Value) {
    if w.out.len() > SNIPPET_LIMIT {
        return;
    }
    match value {
        Value::Null => w.raw(b"null"),
        Value::Bool(b) => w.raw(if *b { b"true" } else { b"false" }),
        Value::Number(Number::Int(i)) => w.display(i),
        Value::Number(Number::Uint(u)) => w.display(u),
        Value::Number(Number::Double(d)) => {
            // rapidjson's IsFloat(): a double inside float range.
            if (-3.402_823_4e38..=3.402_823_4e38).contains(d) {
                w.f32(*d as f32)
            } else {
                w.f64(*d)
            }
        }
        Value::String(s) => w.string(s),
        Value::Array(items) => {
            w.start_array();
            for item in items {
                if w.out.len() > SNIPPET_LIMIT {
                    break;
                }
                write_value(w, item);
            }
            w.end_array();
        }
        Value::Object(members) => {
            w.start_object();
            for (k, v) in members {
                if w.out.len() > SNIPPET_LIMIT {
                    break;
                }
                w.key(k);
                write_value(w, v);
            }
            w.end_object();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_text(v: f32) -> String {
        let mut out = Vec::new();
        write_f32(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    fn f64_text(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn float_examples_from_tf_serving() {
        assert_eq!(f32_text(9_000_000.0), "9e+06");
        assert_eq!(f32_text(999_999.0), "999999.0");
        assert_eq!(f32_text(0.00003), "3e-05");
        assert_eq!(f32_text(555_557.5), "555557.5");
        assert_eq!(f32_text(3.0), "3.0");
        assert_eq!(f32_text(16_777_216.0), "16777216.0");
        assert_eq!(f32_text(1_435_774_336.0), "1.43577434e+09");
        assert_eq!(f32_text(-0.0), "-0.0");
        assert_eq!(f32_text(0.2), "0.2");
        assert_eq!(f32_text(f32::NAN), "NaN");
        assert_eq!(f32_text(f32::INFINITY), "Infinity");
        assert_eq!(f32_text(f32::NEG_INFINITY), "-Infinity");
        assert_eq!(f64_text(0.1), "0.1");
        assert_eq!(f64_text(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f64_text(1e100), "1e+100");
        assert_eq!(f64_text(123456789.0), "123456789.0");
    }

    #[test]
    fn format_g_matches_printf() {
        // Values and their C printf output (glibc), including exact ties.
        let cases: &[(f64, usize, &str)] = &[
            (0.0001, 6, "0.0001"),
            (0.00001, 6, "1e-05"),
            (123456.0, 6, "123456"),
            (1234567.0, 6, "1.23457e+06"),
            (2.5, 1, "2"),
            (3.5, 1, "4"),
            (0.125, 2, "0.12"),
            (-1.5e-300, 6, "-1.5e-300"),
            (1e21, 17, "1e+21"),
            (100.0, 3, "100"),
            (1000.0, 3, "1e+03"),
        ];
        for &(v, p, want) in cases {
            assert_eq!(format_g(v, p).as_str(), want, "%.{p}g of {v}");
        }
    }

    /// `%g` the plain way: `{:e}` for the exponent, then `{:.N}` for the
    /// fixed form. Slow (allocations), obviously right.
    fn plain_g(v: f64, p: usize) -> String {
        let sci = format!("{:.*e}", p - 1, v);
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let strip = |s: &str| {
            if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_owned()
            } else {
                s.to_owned()
            }
        };
        if exp < -4 || exp >= p as i32 {
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{}e{sign}{:02}", strip(mantissa), exp.unsigned_abs())
        } else {
            strip(&format!("{v:.*}", (p as i32 - 1 - exp) as usize))
        }
    }

    #[test]
    fn format_g_agrees_with_the_plain_form() {
        // Every exponent of f32 and f64 and many mantissas: a xorshift walk
        // over bit patterns, plus powers of ten and their neighbours, where
        // rounding carries into a new digit.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut values = Vec::new();
        for _ in 0..60_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from(f32::from_bits(x as u32)));
            values.push(f64::from_bits(x));
        }
        for e in -40..40 {
            let t = 10f64.powi(e);
            values.extend([
                t,
                t * (1.0 - 1e-7),
                t * (1.0 + 1e-7),
                9.999_995 * t,
                9.999_994_9 * t,
            ]);
        }
        for v in values.into_iter().filter(|v| v.is_finite() && *v != 0.0) {
            for p in [6, 9, 17] {
                assert_eq!(format_g(v, p).as_str(), plain_g(v, p), "%.{p}g of {v:e}");
            }
        }
    }

    #[test]
    fn strings_are_escaped_like_rapidjson() {
        let mut out = Vec::new();
        write_string(&mut out, b"a\"b\\c\n\x01/\xff");
        assert_eq!(out, b"\"a\\\"b\\\\c\\n\\u0001/\xff\"");
    }

    #[test]
    fn pretty_writer_single_line_rows() {
        let mut w = PrettyWriter::new();
        w.start_object();
        w.key(b"predictions");
        w.start_array();
        for row in [[1.0f32, 2.0], [3.0, 4.5]] {
            w.set_single_line_arrays(true);
            w.start_array();
            for v in row {
                w.f32(v);
            }
            w.end_array();
            w.set_single_line_arrays(false);
        }
        w.end_array();
        w.end_object();
        assert_eq!(
            String::from_utf8(w.into_bytes()).unwrap(),
            "{\n    \"predictions\": [[1.0, 2.0], [3.0, 4.5]\n    ]\n}"
        );
    }

    #[test]
    fn describe_stops_at_its_quote_but_quotes_the_same_text() {
        let mut deep = Value::Array((0..10_000).map(|i| Value::Number(Number::Int(i))).collect());
        for _ in 0..200 {
            deep = Value::Array(vec![deep, Value::Null]);
        }
        let mut whole = PrettyWriter::new();
        let full = |w: &mut PrettyWriter, v: &Value| {
            fn all(w: &mut PrettyWriter, v: &Value) {
                match v {
                    Value::Array(items) => {
                        w.start_array();
                        items.iter().for_each(|i| all(w, i));
                        w.end_array();
                    }
                    Value::Number(Number::Int(i)) => w.display(i),
                    _ => w.raw(b"null"),
                }
            }
            all(w, v)
        };
        full(&mut whole, &deep);
        let whole = whole.into_bytes();
        assert!(whole.len() > 100_000);
        assert_eq!(describe(&deep), truncate(whole));
    }

    #[test]
    fn describe_pretty_prints_like_tf_serving() {
        let v = super::super::parse::parse_value(br#"{"b64": 1, "x": [1.5, 1e300]}"#).unwrap();
        assert_eq!(
            describe(&v),
            "{\n    \"b64\": 1,\n    \"x\": [\n        1.5,\n        1e+300\n    ]\n}"
        );
        let long = Value::String(vec![b'a'; 1000]);
        assert!(describe(&long).ends_with("aaa..."));
        assert_eq!(describe(&long).len(), SNIPPET_LIMIT + 3);
    }
}
