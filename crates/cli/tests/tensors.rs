//! A model that is not an image classifier, served by `edgeserve serve`
//! from a bare `model.onnx` as tensors on its graph's signature: TF
//! Serving's `half_plus_two` rebuilt as ONNX answers TF Serving's documented
//! requests and errors, and answers as onnxruntime does behind KServe's V1
//! server (a peer, not us) for the same file and request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

mod common;

/// `half_plus_two` as version 1 of a fresh base path (bare: no manifest),
/// and `edgeserve serve` of it.
fn serve_half_plus_two(tag: &str) -> (common::ModelDir, common::Proc) {
    let dir = common::ModelDir::new(tag);
    let v1 = dir.path.join("1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::write(v1.join("model.onnx"), edgeserve_testkit::onnx::half_plus_two()).unwrap();
    let server = common::serve(&dir, "half_plus_two", &[]);
    (dir, server)
}

fn call(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, head, body) = common::http(addr, method, path, "", body.as_bytes());
    assert!(head.contains("content-type: application/json"), "{head}");
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, value)
}

const PREDICT: &str = "/v1/models/half_plus_two:predict";

/// A predict answer's one list of numbers, under `key` (`predictions` or
/// `outputs`), and nothing else beside it. (Compared as numbers: JSON
/// writes 3.0 as `3.0` or `3`, which are the same value.)
fn numbers(status: u16, body: &Value, key: &str) -> Vec<f64> {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list: {body}"))
        .iter()
        .map(|v| v.as_f64().unwrap_or_else(|| panic!("{v} in {body}")))
        .collect()
}

#[test]
fn half_plus_two_answers_tf_servings_documented_requests_and_errors() {
    let (_dir, server) = serve_half_plus_two("tensors-docs");
    let addr = &server.addr;

    let (status, body) = call(addr, "GET", "/v1/models/half_plus_two", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model_version_status"][0]["state"], "AVAILABLE", "{body}");

    // The request and answer of TF Serving's REST documentation.
    let (status, body) = call(addr, "POST", PREDICT, r#"{"instances": [1.0, 2.0, 5.0]}"#);
    assert_eq!(numbers(status, &body, "predictions"), [2.5, 3.0, 4.5]);
    // Columnar, unnamed and named.
    let (status, body) = call(addr, "POST", PREDICT, r#"{"inputs": [1.0, 2.0, 5.0]}"#);
    assert_eq!(numbers(status, &body, "outputs"), [2.5, 3.0, 4.5]);
    let (status, body) = call(addr, "POST", PREDICT, r#"{"inputs": {"x": [-4.0]}}"#);
    assert_eq!(numbers(status, &body, "outputs"), [0.0]);
    // Rows naming the input.
    let (status, body) = call(
        addr,
        "POST",
        PREDICT,
        r#"{"instances": [{"x": 4.0}, {"x": 6.0}]}"#,
    );
    assert_eq!(numbers(status, &body, "predictions"), [4.0, 5.0]);

    // The signature is the graph's: x and y, one dynamic dimension.
    let (status, body) = call(addr, "GET", "/v1/models/half_plus_two/metadata", "");
    assert_eq!(status, 200, "{body}");
    let def = &body["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(def["method_name"], "tensorflow/serving/predict", "{body}");
    for (side, name) in [("inputs", "x"), ("outputs", "y")] {
        let info = &def[side][name];
        assert_eq!(info["dtype"], "DT_FLOAT", "{body}");
        assert_eq!(info["tensor_shape"]["dim"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(info["tensor_shape"]["dim"][0]["size"], "-1", "{body}");
    }
    assert_eq!(body["model_spec"]["name"], "half_plus_two", "{body}");
    assert_eq!(body["model_spec"]["version"], "1", "{body}");

    // Errors: a predict signature is no classification or regression one
    // (TF Serving's words), and bad inputs are refused by name.
    let examples = r#"{"examples": [{"x": 1.0}]}"#;
    for (verb, method) in [("classify", "classify"), ("regress", "regress")] {
        let what = if verb == "classify" {
            "classification"
        } else {
            "regression"
        };
        let (status, body) = call(
            addr,
            "POST",
            &format!("/v1/models/half_plus_two:{verb}"),
            examples,
        );
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"],
            format!(
                "Expected {what} signature method_name to be tensorflow/serving/{method}. Was: tensorflow/serving/predict"
            ),
            "{body}"
        );
    }
    // TF Serving's parser looks for the signature's inputs, not the body's.
    let (status, body) = call(addr, "POST", PREDICT, r#"{"inputs": {"z": [1.0]}}"#);
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"], "Missing named input: x in 'inputs' object.",
        "{body}"
    );
    let (status, body) = call(addr, "POST", PREDICT, r#"{"instances": ["two"]}"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(addr, "POST", PREDICT, r#"{"instances": [[1.0, 2.0]]}"#);
    assert_eq!(status, 400, "a rank-2 tensor for a vector input: {body}");
    let (status, body) = call(
        addr,
        "POST",
        "/v1/models/half_plus_two:predict",
        r#"{"signature_name": "regress_x_to_y", "instances": [1.0]}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("regress_x_to_y"),
        "{body}"
    );

    // And the server still answers.
    let (status, body) = call(addr, "POST", PREDICT, r#"{"instances": [0.0]}"#);
    assert_eq!(numbers(status, &body, "predictions"), [2.0]);
}

#[test]
fn half_plus_two_answers_as_onnxruntime_behind_kserve_does() {
    let (dir, ours) = serve_half_plus_two("tensors-peer");
    let peer = common::kserve_file(&dir.path.join("1/model.onnx"), "half_plus_two");
    // Values whose halves round: float32 arithmetic on both sides.
    let xs = [-3.25f32, 0.0, 1e-3, 7.5, 123_456.79, -0.1, 3.0e-20, 65_504.0];
    let request = json!({ "instances": xs }).to_string();
    let (status, mine) = call(&ours.addr, "POST", PREDICT, &request);
    assert_eq!(status, 200, "{mine}");
    let (status, theirs) = call(&peer.addr, "POST", PREDICT, &request);
    assert_eq!(status, 200, "{theirs}");
    let as_f32 =
        |v: &Value| -> Vec<f32> { numbers(200, v, "predictions").iter().map(|p| *p as f32).collect() };
    let (mine, theirs) = (as_f32(&mine), as_f32(&theirs));
    assert_eq!(mine, theirs);
    let by_hand: Vec<f32> = xs.iter().map(|x| 0.5 * x + 2.0).collect();
    assert_eq!(mine, by_hand);
}

/// The JS tests (the package, the edge Worker) have no testkit: they read
/// `half_plus_two` from `tests/fixtures/`, which must be this one. With
/// `EDGESERVE_WRITE_FIXTURES=1` the test writes it instead.
#[test]
fn the_js_tests_half_plus_two_is_testkits() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/half_plus_two.onnx");
    let model = edgeserve_testkit::onnx::half_plus_two();
    if std::env::var_os("EDGESERVE_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &model).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        committed == model,
        "{} differs from testkit's half_plus_two: run this test with EDGESERVE_WRITE_FIXTURES=1",
        path.display()
    );
}
