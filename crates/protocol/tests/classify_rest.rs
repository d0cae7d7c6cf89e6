//! Classify/regress bodies (spec §5).

// Tests fail by panicking; helpers outside #[test] fns are tests too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_protocol::{Class, ClassifyResponse, Example, ExamplesRequest, Feature, RegressResponse};

fn parse(body: &str) -> ExamplesRequest {
    ExamplesRequest::from_json(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"))
}

fn err(body: &str) -> String {
    ExamplesRequest::from_json(body.as_bytes())
        .expect_err(body)
        .to_string()
}

#[test]
fn feature_kinds_come_from_the_json_tokens() {
    let r = parse(
        r#"{"examples": [{"i": 80, "f": 80.0, "e": 1e2, "n": [NaN, -Infinity], "b": [true, false],
            "s": "txt", "raw": {"b64": "AP8="}, "mixed_s": ["a", {"b64": "Yg=="}], "none": []}]}"#,
    );
    let f = &r.examples[0].features;
    assert_eq!(f["i"], Feature::Int64(vec![80]));
    assert_eq!(f["f"], Feature::Float(vec![80.0]));
    assert_eq!(f["e"], Feature::Float(vec![100.0]));
    match &f["n"] {
        Feature::Float(v) => assert!(v[0].is_nan() && v[1] == f32::NEG_INFINITY),
        other => panic!("{other:?}"),
    }
    assert_eq!(f["b"], Feature::Int64(vec![1, 0]));
    assert_eq!(f["s"], Feature::Bytes(vec![b"txt".to_vec()]));
    assert_eq!(f["raw"], Feature::Bytes(vec![vec![0, 0xff]]));
    assert_eq!(f["mixed_s"], Feature::Bytes(vec![b"a".to_vec(), b"b".to_vec()]));
    assert_eq!(f["none"], Feature::Empty);
    assert!(r.context.is_none());
    assert!(r.signature_name.is_none());
}

#[test]
fn context_is_kept_separately() {
    let r =
        parse(r#"{"signature_name": "s", "context": {"c": [1, 2]}, "examples": [{"x": 1.5}, {"x": 2.5}]}"#);
    assert_eq!(r.signature_name.as_deref(), Some("s"));
    assert_eq!(r.context.unwrap().features["c"], Feature::Int64(vec![1, 2]));
    assert_eq!(r.examples.len(), 2);
}

#[test]
fn feature_errors_use_tf_serving_wording() {
    assert_eq!(
        err(r#"{"examples": [{"x": [1, 2.0]}]}"#),
        "Unexpected element type in feature: x expecting type: int64"
    );
    assert_eq!(
        err(r#"{"examples": [{"x": [1.0, "a"]}]}"#),
        "Unexpected element type in feature: x expecting type: float"
    );
    assert_eq!(
        err(r#"{"examples": [{"x": ["a", true]}]}"#),
        "Unexpected element type in feature: x expecting type: bytes"
    );
    assert_eq!(
        err(r#"{"examples": [{"x": null}]}"#),
        "Feature: x has element with unexpected JSON type: Null"
    );
    assert_eq!(
        err(r#"{"examples": [{"x": [[1]]}]}"#),
        "Feature: x has element with unexpected JSON type: Array"
    );
    assert_eq!(
        err(r#"{"examples": [{"x": {"a": 1}}]}"#),
        "Feature: x has element with unexpected JSON type: Object"
    );
    assert_eq!(
        err(r#"{"examples": [{"x": 9223372036854775808}]}"#),
        "Feature: x has uint64 element. Only int64_t is supported."
    );
    assert_eq!(
        err(r#"{"examples": [{"x": {"b64": "!"}}]}"#),
        "Unable to base64 decode"
    );
}

#[test]
fn examples_rules() {
    assert_eq!(
        err(r#"{"context": {}}"#),
        "When method is classify, key 'examples' is expected and was not found"
    );
    assert_eq!(
        err(r#"{"examples": {}}"#),
        "Expecting 'examples' value to be an list/array"
    );
    assert_eq!(err(r#"{"examples": []}"#), "'examples' value is an empty array");
    assert_eq!(
        err(r#"{"examples": [[1]]}"#),
        "Example must be JSON object but got JSON Array"
    );
    assert_eq!(
        err(r#"{"context": 1, "examples": [{}]}"#),
        "Example must be JSON object but got JSON Number"
    );
    assert_eq!(
        err(r#"{"signature_name": 1, "examples": [{}]}"#),
        "JSON Value: 1 not formatted correctly. 'signature_name' key must be a string value."
    );
}

#[test]
fn requests_write_and_read_back_to_the_same_features() {
    let mut e = Example::default();
    e.features.insert("i".into(), Feature::Int64(vec![80, -1]));
    e.features
        .insert("f".into(), Feature::Float(vec![80.0, 0.1, f32::INFINITY]));
    e.features
        .insert("s".into(), Feature::Bytes(vec![b"a".to_vec(), vec![0xff]]));
    e.features.insert("none".into(), Feature::Empty);
    let req = ExamplesRequest {
        signature_name: Some("sig".into()),
        context: Some(e.clone()),
        examples: vec![e.clone(), Example::default()],
    };
    let back = ExamplesRequest::from_json(&req.to_json().unwrap()).unwrap();
    assert_eq!(back, req);
}

#[test]
fn results_are_written_as_tf_serving_writes_them() {
    let c = ClassifyResponse {
        results: vec![
            vec![
                Class {
                    label: "cat".into(),
                    score: 0.75,
                },
                Class {
                    label: "dog".into(),
                    score: 0.25,
                },
            ],
            vec![Class {
                label: String::new(),
                score: 1.0,
            }],
        ],
    };
    let text = String::from_utf8(c.to_json().unwrap()).unwrap();
    assert_eq!(
        text,
        "{\n    \"results\": [[[\"cat\", 0.75], [\"dog\", 0.25]], [[\"\", 1.0]]\n    ]\n}"
    );
    assert_eq!(ClassifyResponse::from_json(text.as_bytes()).unwrap(), c);
    let r = RegressResponse {
        results: vec![1.5, 3.0],
    };
    let text = String::from_utf8(r.to_json().unwrap()).unwrap();
    assert_eq!(text, "{\n    \"results\": [1.5, 3.0]\n}");
    assert_eq!(RegressResponse::from_json(text.as_bytes()).unwrap(), r);
    assert!(RegressResponse { results: vec![] }.to_json().is_err());
    let e = ClassifyResponse::from_json(br#"{"results": [[["a"]]]}"#).unwrap_err();
    assert_eq!(e.message(), "Expecting a [label, score] pair at results[0][0]");
    let e = RegressResponse::from_json(br#"{"error": "nope"}"#).unwrap_err();
    assert_eq!(e.message(), "nope");
}
