//! The predict request/response rules of TF Serving's REST codec, one test
//! per rule of `shared/docs/tf-serving-rest-api.md` §2–§4 and §6.

// Tests fail by panicking; helpers outside #[test] fns are tests too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_protocol::{
    Code, DataType, Error, Format, Inputs, PredictRequest, PredictResponse, Tensor, TensorData, TensorTypes,
};
use std::collections::BTreeMap;

fn types(pairs: &[(&str, DataType)]) -> TensorTypes {
    pairs.iter().map(|(k, d)| (k.to_string(), *d)).collect()
}

fn parse(body: &str, sig: &[(&str, DataType)]) -> Result<PredictRequest, Error> {
    let t = types(sig);
    PredictRequest::from_json(body.as_bytes(), |_| Ok(t))
}

fn err(body: &str, sig: &[(&str, DataType)]) -> Error {
    parse(body, sig).expect_err(body)
}

fn single(body: &str, dtype: DataType) -> Tensor {
    match parse(body, &[("x", dtype)])
        .unwrap_or_else(|e| panic!("{body}: {e}"))
        .inputs
    {
        Inputs::Single(t) => t,
        other => panic!("{body}: not a single input: {other:?}"),
    }
}

fn named(body: &str, sig: &[(&str, DataType)]) -> BTreeMap<String, Tensor> {
    match parse(body, sig).unwrap_or_else(|e| panic!("{body}: {e}")).inputs {
        Inputs::Named(m) => m,
        other => panic!("{body}: not named: {other:?}"),
    }
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_slice(shape, v).unwrap()
}

const F: DataType = DataType::Float;

#[test]
fn row_format_batches_instances_along_a_new_first_dimension() {
    let t = single(r#"{"instances": [[1, 2, 3], [4, 5, 6]]}"#, F);
    assert_eq!(t, f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]));
    let t = single(r#"{"instances": [1.5, 2.5]}"#, F);
    assert_eq!(t, f32s(&[2], &[1.5, 2.5]));
    let req = parse(r#"{"instances": [[1]]}"#, &[("x", F)]).unwrap();
    assert_eq!(req.format, Format::Row);
    assert_eq!(req.signature_name, None);
    assert_eq!(req.signature(), "serving_default");
}

#[test]
fn first_item_decides_named_or_plain() {
    let sig = [("x", F)];
    let m = named(r#"{"instances": [{"x": [1, 2]}, {"x": [3, 4]}]}"#, &sig);
    assert_eq!(m["x"], f32s(&[2, 2], &[1., 2., 3., 4.]));
    assert_eq!(
        err(r#"{"instances": [{"x": 1}, [2]]}"#, &sig).message(),
        "Expecting object but got list at item 1 of input list"
    );
    assert_eq!(
        err(r#"{"instances": [[1], {"x": [2]}]}"#, &sig).message(),
        "Expecting value/list but got object at item 1 of input list"
    );
    // A b64 object is a value, not a named item.
    let s = [("x", DataType::String)];
    let t = match parse(r#"{"instances": [{"b64": "YQ=="}, "b"]}"#, &s)
        .unwrap()
        .inputs
    {
        Inputs::Single(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(t.as_slice::<Vec<u8>>().unwrap(), &[b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn several_inputs_need_named_instances_with_exactly_their_keys() {
    let sig = [("a", F), ("b", DataType::Int32)];
    assert_eq!(
        err(r#"{"instances": [[1]]}"#, &sig).message(),
        "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map"
    );
    // Inputs may differ in per-instance shape but share the batch.
    let m = named(
        r#"{"instances": [{"a": [1, 2], "b": 7}, {"a": [3, 4], "b": 8}]}"#,
        &sig,
    );
    assert_eq!(m["a"], f32s(&[2, 2], &[1., 2., 3., 4.]));
    assert_eq!(m["b"], Tensor::from_vec(vec![2], vec![7i32, 8]).unwrap());
    let e = err(r#"{"instances": [{"a": [1]}]}"#, &sig);
    assert_eq!(
        e.message(),
        "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"a\": [\n        1\n    ]\n} keys must be equal to: a,b"
    );
    let e = err(r#"{"instances": [{"a": [1], "b": 1, "c": 2}]}"#, &sig);
    assert_eq!(
        e.message(),
        "Failed to process element: 0 key: c of 'instances' list. Error: INVALID_ARGUMENT: JSON object: does not have named input: c"
    );
}

#[test]
fn instances_need_equal_element_counts_then_equal_shapes() {
    let sig = [("x", F)];
    assert_eq!(
        err(r#"{"instances": [[1, 2], [3]]}"#, &sig).message(),
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"
    );
    assert_eq!(
        err(r#"{"instances": [[1, 2], [[3, 4]]]}"#, &sig).message(),
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [2] but got: [1,2]"
    );
    // json_tensor.h calls this valid; the code rejects it (doc §10.5).
    assert!(parse(r#"{"instances": [ [[1, 2]], [[3], [4]] ]}"#, &sig).is_err());
}

#[test]
fn shape_comes_from_the_first_element_at_each_depth() {
    let sig = [("x", F)];
    assert_eq!(
        err(r#"{"inputs": [[1, 2], [3]]}"#, &sig).message(),
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2"
    );
    assert_eq!(
        err(r#"{"inputs": [[1, 2], 3]}"#, &sig).message(),
        "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"
    );
    assert_eq!(
        err(r#"{"inputs": [1, [2]]}"#, &sig).message(),
        "Encountered list at unexpected level: 1 expected < 1"
    );
    // An empty list ends shape inference.
    assert_eq!(single(r#"{"inputs": []}"#, F).shape(), &[0]);
    assert_eq!(single(r#"{"inputs": [[], []]}"#, F).shape(), &[2, 0]);
}

#[test]
fn integers_only_from_integer_literals() {
    for dt in [
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Uint8,
        DataType::Int64,
    ] {
        for lit in ["1.0", "1e2", "NaN", "true", "\"1\""] {
            let e = err(&format!(r#"{{"inputs": [{lit}]}}"#), &[("x", dt)]);
            assert_eq!(e.code(), Code::InvalidArgument);
            assert!(
                e.message().ends_with(&format!("is not of expected type: {dt}")),
                "{dt} {lit}: {e}"
            );
        }
    }
    assert_eq!(
        err(r#"{"inputs": [1.0]}"#, &[("x", DataType::Int32)]).message(),
        "JSON Value: 1.0 Type: Number is not of expected type: int32"
    );
    assert!(parse(r#"{"inputs": [2147483648]}"#, &[("x", DataType::Int32)]).is_err());
    assert!(parse(r#"{"inputs": [9223372036854775808]}"#, &[("x", DataType::Int64)]).is_err());
    assert!(parse(r#"{"inputs": [-1]}"#, &[("x", DataType::Uint32)]).is_err());
    assert!(parse(r#"{"inputs": [4294967296]}"#, &[("x", DataType::Uint32)]).is_err());
    assert!(parse(r#"{"inputs": [-1]}"#, &[("x", DataType::Uint64)]).is_err());
    let t = single(
        r#"{"inputs": [-9223372036854775808, 9223372036854775807]}"#,
        DataType::Int64,
    );
    assert_eq!(t.as_slice::<i64>().unwrap(), &[i64::MIN, i64::MAX]);
    let t = single(r#"{"inputs": [18446744073709551615]}"#, DataType::Uint64);
    assert_eq!(t.as_slice::<u64>().unwrap(), &[u64::MAX]);
    let t = single(r#"{"inputs": [4294967295]}"#, DataType::Uint32);
    assert_eq!(t.as_slice::<u32>().unwrap(), &[u32::MAX]);
    // No narrowing check, as in TF Serving: 300 reaches a uint8 model as 44.
    let t = single(r#"{"inputs": [300, -1]}"#, DataType::Uint8);
    assert_eq!(t.as_slice::<u8>().unwrap(), &[44, 255]);
    let t = single(r#"{"inputs": [-129]}"#, DataType::Int8);
    assert_eq!(t.as_slice::<i8>().unwrap(), &[127]);
}

#[test]
fn floats_take_any_number_with_overflow_to_infinity() {
    let t = single(
        r#"{"inputs": [1, 1435774380, 1e39, -1e39, 1e-50, NaN, Infinity, -Infinity, -0.0, 0.1]}"#,
        F,
    );
    let v = t.as_slice::<f32>().unwrap();
    assert_eq!(v[0], 1.0);
    assert_eq!(v[1], 1_435_774_336.0);
    assert_eq!(v[2], f32::INFINITY);
    assert_eq!(v[3], f32::NEG_INFINITY);
    assert_eq!(v[4], 0.0);
    assert!(v[5].is_nan());
    assert_eq!((v[6], v[7]), (f32::INFINITY, f32::NEG_INFINITY));
    assert!(v[8] == 0.0 && v[8].is_sign_negative());
    assert_eq!(v[9], 0.1f32);
    let t = single(r#"{"inputs": [0.1, 1e308, -Inf]}"#, DataType::Double);
    assert_eq!(t.as_slice::<f64>().unwrap(), &[0.1, 1e308, f64::NEG_INFINITY]);
    assert_eq!(
        err(r#"{"inputs": [1e309]}"#, &[("x", F)]).message(),
        "JSON Parse error: Number too big to be stored in double. at offset: 12"
    );
    assert_eq!(
        err(r#"{"inputs": [nan]}"#, &[("x", F)]).message(),
        "JSON Parse error: Invalid value. at offset: 12"
    );
}

#[test]
fn null_and_wrong_json_types_are_refused() {
    assert_eq!(
        err(r#"{"inputs": [null]}"#, &[("x", F)]).message(),
        "JSON Value: null Type: Null is not of expected type: float"
    );
    assert_eq!(
        err(r#"{"inputs": [0]}"#, &[("x", DataType::Bool)]).message(),
        "JSON Value: 0 Type: Number is not of expected type: bool"
    );
    assert_eq!(
        err(r#"{"inputs": ["a"]}"#, &[("x", F)]).message(),
        "JSON Value: \"a\" Type: String is not of expected type: float"
    );
    assert_eq!(
        err(r#"{"inputs": [{"b64": "YQ=="}]}"#, &[("x", F)]).message(),
        "JSON Value: {\n    \"b64\": \"YQ==\"\n} Type: Object is not of expected type: float"
    );
    let t = single(r#"{"inputs": [true, false]}"#, DataType::Bool);
    assert_eq!(t.as_slice::<bool>().unwrap(), &[true, false]);
}

#[test]
fn strings_are_utf8_text_or_b64_objects() {
    let s = DataType::String;
    let t = single(
        r#"{"inputs": ["héllo", {"b64": "AP8="}, {"b64": " A P\n8 "}, {"b64": "AP8"}]}"#,
        s,
    );
    let v = t.as_slice::<Vec<u8>>().unwrap();
    assert_eq!(v[0], "héllo".as_bytes());
    assert_eq!(v[1], [0x00, 0xff]);
    assert_eq!(v[2], [0x00, 0xff]);
    assert_eq!(v[3], [0x00, 0xff]);
    // "." is absl's alternative padding character.
    assert_eq!(
        single(r#"{"inputs": {"b64": "YQ.."}}"#, s)
            .as_slice::<Vec<u8>>()
            .unwrap(),
        &[b"a".to_vec()]
    );
    for bad in ["AP-_", "YQ=", "YQ===", "Y", "YQ==YQ=="] {
        let e = err(&format!(r#"{{"inputs": [{{"b64": "{bad}"}}]}}"#), &[("x", s)]);
        assert_eq!(e.message(), "Unable to base64 decode", "{bad}");
    }
    assert_eq!(
        err(r#"{"inputs": [{"b64": "YQ==", "x": 1}]}"#, &[("x", s)]).message(),
        "JSON Value: {\n    \"b64\": \"YQ==\",\n    \"x\": 1\n} not formatted correctly for base64 data"
    );
    assert_eq!(
        err(r#"{"inputs": [{"b64": 5}]}"#, &[("x", s)]).message(),
        "JSON Value: {\n    \"b64\": 5\n} not formatted correctly for base64 data"
    );
}

#[test]
fn dtypes_the_codec_cannot_read_are_unimplemented() {
    for dt in [DataType::Half, DataType::Bfloat16, DataType::Uint16] {
        let e = err(r#"{"inputs": [1.0]}"#, &[("x", dt)]);
        assert_eq!(e.code(), Code::Unimplemented);
        assert_eq!(e.http_status(), 501);
        assert_eq!(
            e.message(),
            format!("Conversion of JSON Value: 1.0 to type: {dt}")
        );
        // Inside the row format the error is wrapped as INVALID_ARGUMENT.
        let e = err(r#"{"instances": [1.0]}"#, &[("x", dt)]);
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(
            e.message()
                .contains("Error: UNIMPLEMENTED: Conversion of JSON Value"),
            "{e}"
        );
    }
}

#[test]
fn columnar_format_takes_a_value_or_named_tensors() {
    let t = single(r#"{"inputs": 5}"#, F);
    assert_eq!(t, Tensor::scalar(5.0f32));
    let t = single(r#"{"inputs": {"b64": "YQ=="}}"#, DataType::String);
    assert_eq!(t, Tensor::scalar(b"a".to_vec()));
    let sig = [("a", F), ("b", DataType::Int64)];
    let m = named(r#"{"inputs": {"a": [[1, 2]], "b": 3, "extra": "ignored"}}"#, &sig);
    assert_eq!(m.len(), 2);
    assert_eq!(m["a"], f32s(&[1, 2], &[1., 2.]));
    assert_eq!(m["b"], Tensor::scalar(3i64));
    assert_eq!(
        err(r#"{"inputs": {"a": 1}}"#, &sig).message(),
        "Missing named input: b in 'inputs' object."
    );
    assert_eq!(
        err(r#"{"inputs": [1]}"#, &sig).message(),
        "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"
    );
    let req = parse(r#"{"inputs": {"a": 1, "b": 2}}"#, &sig).unwrap();
    assert_eq!(req.format, Format::Columnar);
}

#[test]
fn top_level_rules() {
    let sig = [("x", F)];
    assert_eq!(
        err(r#"{"instances": [1], "inputs": [1]}"#, &sig).message(),
        "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"
    );
    assert_eq!(
        err(r#"{"signature_name": "s"}"#, &sig).message(),
        "Missing 'inputs' or 'instances' key"
    );
    assert_eq!(
        err(r#"{"instances": 1}"#, &sig).message(),
        "Expecting 'instances' to be an list/array"
    );
    assert_eq!(
        err(r#"{"instances": []}"#, &sig).message(),
        "No values in 'instances' array"
    );
    assert_eq!(
        err(r#"{"signature_name": null, "instances": [1]}"#, &sig).message(),
        "JSON Value: null not formatted correctly. 'signature_name' key must be a string value."
    );
    assert_eq!(err("[1]", &sig).message(), "JSON Value: [1] Is not object");
    assert_eq!(err("", &sig).message(), "JSON Parse error: The document is empty");
    let e = err(r#"{"instances": [1],"#, &sig);
    assert_eq!(
        e.message(),
        "JSON Parse error: Missing a name for object member. at offset: 18"
    );
    assert_eq!(e.http_status(), 400);
    // Unknown keys are ignored, trailing bytes too.
    let t = single(r#"{"foo": {"bar": [null]}, "instances": [1]} {"more": 1}"#, F);
    assert_eq!(t, f32s(&[1], &[1.]));
}

#[test]
fn an_unknown_key_nested_500000_deep_is_ignored() {
    let depth = 500_000;
    let body = format!(
        r#"{{"junk": {}{}, "instances": [[1, 2]]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let t = single(&body, F);
    assert_eq!(t, f32s(&[1, 2], &[1., 2.]));
}

#[test]
fn the_signature_is_looked_up_by_name() {
    let mut asked = Vec::new();
    let lookup = |name: &str| {
        asked.push(name.to_owned());
        if name == "serving_default" || name == "other" {
            Ok(types(&[("x", F)]))
        } else {
            Err(Error::invalid_argument(format!(
                "Serving signature name: \"{name}\" not found in signature def"
            )))
        }
    };
    let req = PredictRequest::from_json(br#"{"signature_name": "other", "instances": [1]}"#, lookup).unwrap();
    assert_eq!(req.signature_name.as_deref(), Some("other"));
    assert_eq!(asked, ["other"]);
    let e = PredictRequest::from_json(br#"{"signature_name": "nope", "instances": [1]}"#, |n: &str| {
        Err(Error::invalid_argument(format!(
            "Serving signature name: \"{n}\" not found in signature def"
        )))
    })
    .unwrap_err();
    assert_eq!(
        e.message(),
        "Serving signature name: \"nope\" not found in signature def"
    );
    // An empty name means the default signature.
    let req = PredictRequest::from_json(br#"{"signature_name": "", "instances": [1]}"#, |n: &str| {
        assert_eq!(n, "serving_default");
        Ok(types(&[("x", F)]))
    })
    .unwrap();
    assert_eq!(req.signature(), "serving_default");
    let e = PredictRequest::from_json(br#"{"instances": [1]}"#, |_| Ok(TensorTypes::new())).unwrap_err();
    assert_eq!(e.message(), "Failed to get input map for signature: DEFAULT");
}

fn out(pairs: Vec<(&str, Tensor)>, format: Format) -> PredictResponse {
    PredictResponse {
        format,
        outputs: pairs.into_iter().map(|(k, t)| (k.to_owned(), t)).collect(),
    }
}

fn text(r: &PredictResponse) -> String {
    String::from_utf8(r.to_json().unwrap()).unwrap()
}

#[test]
fn row_responses_are_laid_out_like_tf_serving() {
    let logits = f32s(&[2, 3], &[0.5, -1.0, 3.25, 1e-7, 9e6, 0.2]);
    assert_eq!(
        text(&out(vec![("logits", logits.clone())], Format::Row)),
        "{\n    \"predictions\": [[0.5, -1.0, 3.25], [1e-07, 9e+06, 0.2]\n    ]\n}"
    );
    let ids = Tensor::from_vec(vec![2], vec![5i64, 6]).unwrap();
    assert_eq!(
        text(&out(vec![("a", logits.clone()), ("b", ids)], Format::Row)),
        "{\n    \"predictions\": [\n        {\n            \"a\": [0.5, -1.0, 3.25],\n            \"b\": 5\n        },\n        {\n            \"a\": [1e-07, 9e+06, 0.2],\n            \"b\": 6\n        }\n    ]\n}"
    );
    let empty = Tensor::new(vec![0, 3], TensorData::Float(vec![])).unwrap();
    assert_eq!(
        text(&out(vec![("y", empty)], Format::Row)),
        "{\n    \"predictions\": []\n}"
    );
}

#[test]
fn columnar_responses_are_fully_multi_line() {
    let a = f32s(&[1, 2], &[1.0, 2.0]);
    assert_eq!(
        text(&out(
            vec![("a", a.clone()), ("b", Tensor::scalar(3i64))],
            Format::Columnar
        )),
        "{\n    \"outputs\": {\n        \"a\": [\n            [\n                1.0,\n                2.0\n            ]\n        ],\n        \"b\": 3\n    }\n}"
    );
    assert_eq!(
        text(&out(vec![("y", Tensor::scalar(f64::NAN))], Format::Columnar)),
        "{\n    \"outputs\": NaN\n}"
    );
}

#[test]
fn string_outputs_named_bytes_are_base64() {
    let s = Tensor::from_vec(vec![2], vec![b"a".to_vec(), b"b".to_vec()]).unwrap();
    assert_eq!(
        text(&out(vec![("out_bytes", s.clone())], Format::Row)),
        "{\n    \"predictions\": [{\n            \"b64\": \"YQ==\"\n        }, {\n            \"b64\": \"Yg==\"\n        }\n    ]\n}"
    );
    assert_eq!(
        text(&out(vec![("out", s)], Format::Row)),
        "{\n    \"predictions\": [\"a\", \"b\"\n    ]\n}"
    );
}

#[test]
fn responses_that_cannot_be_written_are_errors() {
    let e = out(vec![("y", Tensor::scalar(1.0f32))], Format::Row)
        .to_json()
        .unwrap_err();
    assert_eq!(e.message(), "Tensor name: y has no shape information ");
    let a = f32s(&[1], &[1.0]);
    let b = f32s(&[2], &[1.0, 2.0]);
    let e = out(vec![("a", a), ("b", b)], Format::Row).to_json().unwrap_err();
    assert_eq!(
        e.message(),
        "Tensor name: b has inconsistent batch size: 2 expecting: 1"
    );
    let h = Tensor::from_vec(vec![1], vec![edgeserve_protocol::half::f16::ONE]).unwrap();
    let e = out(vec![("h", h)], Format::Columnar).to_json().unwrap_err();
    assert_eq!(e.message(), "Failed to write JSON value for tensor type: half");
    assert_eq!(e.http_status(), 400);
    let e = out(vec![], Format::Row).to_json().unwrap_err();
    assert_eq!(e.message(), "Cannot convert empty tensor map to JSON");
}

#[test]
fn responses_read_back_given_the_output_signature() {
    let logits = f32s(&[2, 3], &[0.5, -1.0, 3.25, 1e-7, f32::INFINITY, 0.2]);
    let ids = Tensor::from_vec(vec![2], vec![5i64, 6]).unwrap();
    let sig = types(&[("a", F), ("b", DataType::Int64)]);
    for format in [Format::Row, Format::Columnar] {
        let r = out(vec![("a", logits.clone()), ("b", ids.clone())], format);
        let back = PredictResponse::from_json(&r.to_json().unwrap(), &sig).unwrap();
        assert_eq!(back, r);
    }
    let bytes_sig = types(&[("y_bytes", DataType::String)]);
    let s = Tensor::from_vec(vec![1], vec![vec![0u8, 0xff]]).unwrap();
    let r = out(vec![("y_bytes", s)], Format::Row);
    assert_eq!(
        PredictResponse::from_json(&r.to_json().unwrap(), &bytes_sig).unwrap(),
        r
    );
    let empty = PredictResponse::from_json(b"{\"predictions\": []}", &types(&[("y", F)])).unwrap();
    assert_eq!(empty.outputs["y"].shape(), &[0]);
    let e = PredictResponse::from_json(br#"{"error": "Servable not found"}"#, &sig).unwrap_err();
    assert_eq!(e.message(), "Servable not found");
    let e = PredictResponse::from_json(br#"{"predictions": 1}"#, &sig).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[test]
fn requests_write_and_read_back() {
    let x = f32s(&[2, 2], &[1.0, 2.5, -0.0, 1e-40]);
    let sig = types(&[("x", F)]);
    let mut req = PredictRequest::instances(x.clone());
    req.signature_name = Some("serving_default".into());
    let body = req.to_json().unwrap();
    assert_eq!(
        PredictRequest::from_json(&body, |_| Ok(sig.clone())).unwrap(),
        req
    );
    // Bytes that are not UTF-8, and inputs named *_bytes, go as b64.
    let s = Tensor::from_vec(vec![1], vec![vec![0xffu8]]).unwrap();
    let img = Tensor::from_vec(vec![1], vec![b"png".to_vec()]).unwrap();
    let req = PredictRequest::named_inputs(BTreeMap::from([
        ("raw".to_owned(), s),
        ("image_bytes".to_owned(), img),
    ]));
    let body = String::from_utf8(req.to_json().unwrap()).unwrap();
    assert!(body.contains("\"b64\": \"/w==\""), "{body}");
    assert!(body.contains("\"b64\": \"cG5n\""), "{body}");
    let sig = types(&[("raw", DataType::String), ("image_bytes", DataType::String)]);
    assert_eq!(
        PredictRequest::from_json(body.as_bytes(), |_| Ok(sig.clone())).unwrap(),
        req
    );
    let e = PredictRequest::instances(Tensor::scalar(1.0f32))
        .to_json()
        .unwrap_err();
    assert_eq!(e.message(), "Tensor name:  has no shape information ");
}

#[test]
fn errors_map_to_http_and_tf_serving_bodies() {
    let e = Error::invalid_argument("bad \"x\"\n");
    assert_eq!(e.http_status(), 400);
    assert_eq!(e.to_json_body(), b"{\n    \"error\": \"bad \\\"x\\\"\\n\"\n}");
    for (code, status) in [
        (Code::Cancelled, 499),
        (Code::Unknown, 500),
        (Code::InvalidArgument, 400),
        (Code::DeadlineExceeded, 504),
        (Code::NotFound, 404),
        (Code::AlreadyExists, 409),
        (Code::PermissionDenied, 403),
        (Code::ResourceExhausted, 429),
        (Code::FailedPrecondition, 400),
        (Code::Aborted, 409),
        (Code::OutOfRange, 400),
        (Code::Unimplemented, 501),
        (Code::Internal, 500),
        (Code::Unavailable, 503),
        (Code::DataLoss, 500),
        (Code::Unauthenticated, 401),
    ] {
        assert_eq!(code.http_status(), status, "{code}");
        assert_eq!(Code::from_proto(code.to_proto()), code);
    }
    let e = Error::from_http_response(
        404,
        br#"{ "error": "Servable not found for request: Latest(half)" }"#,
    );
    assert_eq!(e.code(), Code::NotFound);
    assert_eq!(e.message(), "Servable not found for request: Latest(half)");
    let e = Error::from_http_response(502, b"<html>Bad Gateway</html>");
    assert_eq!(e.code(), Code::Unknown);
    assert!(
        e.message().contains("HTTP 502") && e.message().contains("Bad Gateway"),
        "{e}"
    );
    // Whether the body was TF Serving's error object: a peer that refused,
    // or some other server's page (FastAPI's 404 for a path it lacks).
    let (e, tf_serving) =
        Error::read_http_response(404, br#"{"error": "Model with name nope does not exist."}"#);
    assert!(tf_serving);
    assert_eq!(e.message(), "Model with name nope does not exist.");
    let (e, tf_serving) = Error::read_http_response(404, br#"{"detail":"Not Found"}"#);
    assert!(!tf_serving);
    assert_eq!(e.code(), Code::NotFound);
}
