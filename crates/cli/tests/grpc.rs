//! `edgeserve serve`'s gRPC API (TF Serving's `PredictionService` and
//! `ModelService`) as the official `tensorflow-serving-api` Python client
//! sees it (`tests/peers/tfs_grpc_client.py`: a peer, not our client):
//! answers equal to the REST API's, tensor for tensor, and to onnxruntime's
//! reference logits; TF Serving's errors; a config reload; and the gRPC
//! limits, each refusing with its typed status while the server answers
//! the next call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

mod common;

const LITE0: &str = "efficientnet-lite0";

/// A model config file serving `half_plus_two` (a bare `model.onnx`,
/// tensors) and Lite0 (an image classifier) from `dir`.
fn models(dir: &common::ModelDir) -> std::path::PathBuf {
    let hpt = dir.path.join("half_plus_two/1");
    std::fs::create_dir_all(&hpt).unwrap();
    std::fs::write(hpt.join("model.onnx"), edgeserve_testkit::onnx::half_plus_two()).unwrap();
    common::copy_model(LITE0, &dir.path.join("lite0/1"));
    let config = dir.path.join("models.config");
    std::fs::write(&config, config_text(dir, &["half_plus_two", "lite0"])).unwrap();
    config
}

fn config_text(dir: &common::ModelDir, names: &[&str]) -> String {
    let configs: String = names
        .iter()
        .map(|n| {
            format!(
                "config {{ name: '{n}' base_path: '{}' model_platform: 'tensorflow' }}\n",
                dir.path.join(n).display()
            )
        })
        .collect();
    format!("model_config_list {{\n{configs}}}\n")
}

fn client(server: &common::Proc, plan: &Value) -> Vec<Value> {
    let addr = server
        .grpc_addr
        .as_deref()
        .expect("the banner names the gRPC address");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let out = common::tfs_grpc_client(addr, &plan.to_string());
    let results: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(results.len(), plan.as_array().unwrap().len());
    results
}

fn rest(server: &common::Proc, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, _, body) = common::http(&server.addr, method, path, "", body.as_bytes());
    (status, serde_json::from_slice(&body).unwrap())
}

fn ok(r: &Value) -> &Value {
    assert_eq!(r["ok"], true, "{r}");
    r
}

fn refused<'a>(r: &'a Value, code: &str) -> &'a str {
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["code"], code, "{r}");
    r["details"].as_str().unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A REST error's message.
fn rest_error(server: &common::Proc, method: &str, path: &str, body: &str) -> String {
    let (status, body) = rest(server, method, path, body);
    assert_ne!(status, 200, "{body}");
    body["error"].as_str().unwrap().to_owned()
}

#[test]
fn the_official_client_gets_tf_servings_answers_equal_to_rest_and_onnxruntime() {
    let dir = common::ModelDir::new("grpc-peer");
    let config = models(&dir);
    let server = common::serve_config(&config, &[]);
    let chelsea_tensor = edgeserve_testkit::shared_dir().join("fixtures/inputs/chelsea_224_nchw_f32le.bin");
    let chelsea_png = edgeserve_testkit::shared_dir().join("fixtures/images/chelsea_orig.png");
    let hpt = |extra: Value| {
        let mut item = json!({"call": "predict", "model": "half_plus_two", "inputs": {"x": {"values": [1.0, 2.0, 5.0]}}});
        item.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        item
    };
    let plan = json!([
        hpt(json!({})),
        // One float_val for a shape of 4: TensorFlow repeats it.
        hpt(json!({"inputs": {"x": {"float_val": [2.0], "shape": [4]}}, "version": 1})),
        hpt(json!({"output_filter": ["nope"]})),
        hpt(json!({"output_filter": ["y", "y"]})),
        hpt(json!({"inputs": {"z": {"values": [1.0]}}})),
        hpt(json!({"model": "nope"})),
        hpt(json!({"version": 7})),
        hpt(json!({"label": "stable"})),
        hpt(json!({"no_spec": true})),
        {"call": "metadata", "model": "half_plus_two"},
        {"call": "metadata", "model": "half_plus_two", "fields": []},
        {"call": "metadata", "model": "half_plus_two", "fields": ["signature_def", "graph"]},
        {"call": "status", "model": "half_plus_two"},
        {"call": "status", "model": "nope"},
        {"call": "classify", "model": "half_plus_two", "floats": [1.0]},
        {"call": "regress", "model": "half_plus_two", "floats": [1.0]},
        {"call": "classify", "model": "lite0"},
        {"call": "multi_inference", "model": "lite0", "images": [chelsea_png]},
        {"call": "predict", "model": "lite0", "inputs": {"input": {"file": chelsea_tensor, "shape": [1, 3, 224, 224]}}},
        {"call": "classify", "model": "lite0", "images": [chelsea_png]},
        {"call": "metadata", "model": "lite0"},
        // A reload without lite0 unloads it; one with it loads it again.
        {"call": "reload", "configs": [{"name": "half_plus_two", "base_path": dir.path.join("half_plus_two")}]},
        {"call": "status", "model": "lite0"},
        {"call": "classify", "model": "lite0", "images": [chelsea_png]},
        {"call": "reload", "configs": [{"name": "half_plus_two", "base_path": dir.path.join("half_plus_two")}, {"name": "lite0", "base_path": dir.path.join("lite0"), "platform": "onnx"}]},
        {"call": "status", "model": "lite0"},
        {"call": "reload", "configs": [{"name": "half_plus_two", "base_path": dir.path.join("half_plus_two"), "platform": "pytorch"}]},
        {"call": "reload", "configs": [{"name": "x", "base_path": dir.path.join("nothing-here")}]},
        {"call": "status", "model": "half_plus_two"},
        // A deadline the call cannot meet: eight images through Lite0 in
        // 50 ms. The calls after it are answered.
        {"call": "predict", "model": "lite0", "timeout": 0.05,
         "inputs": {"input": {"float_val": [0.0], "shape": [8, 3, 224, 224]}}},
        hpt(json!({})),
    ]);
    let r = client(&server, &plan);

    // Predict: TF Serving's documented half_plus_two answer, the spec that
    // answered, and the REST API's answer for the same tensor.
    let y = &ok(&r[0])["outputs"]["y"];
    assert_eq!(y["dtype"], "float32");
    assert_eq!(y["shape"], json!([3]));
    assert_eq!(floats(&y["values"]), [2.5, 3.0, 4.5]);
    assert_eq!(
        r[0]["model_spec"],
        json!({"name": "half_plus_two", "version": 1, "signature_name": "serving_default"})
    );
    let (status, body) = rest(
        &server,
        "POST",
        "/v1/models/half_plus_two:predict",
        r#"{"inputs": {"x": [1.0, 2.0, 5.0]}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(floats(&body["outputs"]), floats(&y["values"]));
    assert_eq!(floats(&ok(&r[1])["outputs"]["y"]["values"]), [3.0; 4]);

    // TF Serving's refusals, worded as the REST API words them where both
    // have the case.
    assert_eq!(
        refused(&r[2], "INVALID_ARGUMENT"),
        "output tensor alias not found in signature: nope Outputs expected to be in the set {y}."
    );
    assert_eq!(
        refused(&r[3], "INVALID_ARGUMENT"),
        "duplicate output tensor alias: y"
    );
    let missing = refused(&r[4], "INVALID_ARGUMENT");
    assert!(missing.contains('x') && missing.contains('z'), "{missing}");
    for (i, path) in [
        (5, "/v1/models/nope:predict"),
        (6, "/v1/models/half_plus_two/versions/7:predict"),
        (7, "/v1/models/half_plus_two/labels/stable:predict"),
    ] {
        let code = r[i]["code"].as_str().unwrap().to_owned();
        let details = refused(&r[i], &code);
        assert_eq!(
            details,
            rest_error(&server, "POST", path, r#"{"inputs": {"x": [1.0]}}"#)
        );
    }
    assert_eq!(r[5]["code"], "NOT_FOUND");
    assert_eq!(refused(&r[8], "INVALID_ARGUMENT"), "Missing ModelSpec");

    // Metadata: the graph's signature, as the REST API gives it.
    let sig = &ok(&r[9])["signatures"]["serving_default"];
    assert_eq!(sig["method_name"], "tensorflow/serving/predict");
    assert_eq!(sig["inputs"], json!({"x": {"dtype": "float32", "shape": [-1]}}));
    assert_eq!(sig["outputs"], json!({"y": {"dtype": "float32", "shape": [-1]}}));
    let (_, meta) = rest(&server, "GET", "/v1/models/half_plus_two/metadata", "");
    let rest_sig = &meta["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(rest_sig["inputs"]["x"]["tensor_shape"]["dim"][0]["size"], "-1");
    assert_eq!(
        refused(&r[10], "INVALID_ARGUMENT"),
        "GetModelMetadataRequest must specify at least one metadata_field"
    );
    assert_eq!(
        refused(&r[11], "INVALID_ARGUMENT"),
        "Metadata field graph is not supported"
    );

    // Status.
    assert_eq!(
        ok(&r[12])["versions"],
        json!([{"version": 1, "state": "AVAILABLE", "error_code": 0, "error_message": ""}])
    );
    assert_eq!(
        refused(&r[13], "NOT_FOUND"),
        rest_error(&server, "GET", "/v1/models/nope", "")
    );

    // Classify and regress on a predict signature, as TF Serving refuses them.
    assert_eq!(
        refused(&r[14], "INVALID_ARGUMENT"),
        "Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict"
    );
    assert_eq!(
        refused(&r[15], "INVALID_ARGUMENT"),
        "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/predict"
    );
    assert_eq!(refused(&r[16], "INVALID_ARGUMENT"), "Input is empty.");
    refused(&r[17], "UNIMPLEMENTED");

    // Lite0: onnxruntime's logits, and the REST API's, tensor for tensor.
    let logits = &ok(&r[18])["outputs"]["logits"];
    assert_eq!(logits["shape"], json!([1, 1000]));
    let grpc_logits = floats(&logits["values"]);
    let reference: Value =
        serde_json::from_slice(&edgeserve_testkit::shared("fixtures/reference_onnxruntime.json")).unwrap();
    let ort = floats(&reference["models"]["efficientnet-lite0.onnx"]["results"]["chelsea"]["logits"]);
    let worst = grpc_logits
        .iter()
        .zip(&ort)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-3, "largest difference from onnxruntime: {worst}");
    let body = json!({"instances": [common::photo_row("chelsea")]}).to_string();
    let (status, rest_logits) = rest(&server, "POST", "/v1/models/lite0:predict", &body);
    assert_eq!(status, 200, "{rest_logits}");
    assert_eq!(floats(&rest_logits["predictions"][0]), grpc_logits);

    // Classify: the REST API's classes and scores for the same image.
    let classes = &ok(&r[19])["results"][0];
    assert_eq!(r[19]["model_spec"]["name"], "lite0");
    let png = std::fs::read(&chelsea_png).unwrap();
    let (status, rest_classes) = rest(
        &server,
        "POST",
        "/v1/models/lite0:classify",
        std::str::from_utf8(&common::classify_body(vec![png])).unwrap(),
    );
    assert_eq!(status, 200, "{rest_classes}");
    let top = |list: &Value| -> Vec<(String, f32)> {
        list.as_array().unwrap()[..5]
            .iter()
            .map(|c| (c[0].as_str().unwrap().to_owned(), c[1].as_f64().unwrap() as f32))
            .collect()
    };
    assert_eq!(top(classes), top(&rest_classes["results"][0]));
    assert_eq!(top(classes)[0].0, "tiger cat");
    assert_eq!(
        ok(&r[20])["signatures"]["serving_default"]["inputs"]["input"]["shape"],
        json!([-1, 3, 224, 224])
    );

    // Reloads: lite0 goes (END, and not found), comes back; a bad config is
    // refused with the reason, and leaves the models as they were.
    assert_eq!(ok(&r[21])["error_code"], 0);
    assert_eq!(ok(&r[22])["versions"][0]["state"], "END");
    assert_eq!(
        refused(&r[23], "NOT_FOUND"),
        "Servable not found for request: Latest(lite0)"
    );
    ok(&r[24]);
    assert_eq!(ok(&r[25])["versions"][0]["state"], "AVAILABLE");
    let platform = refused(&r[26], "INVALID_ARGUMENT");
    assert!(
        platform.contains("model_platform 'pytorch' is not served"),
        "{platform}"
    );
    let nothing = refused(&r[27], "NOT_FOUND");
    assert!(nothing.contains("nothing-here"), "{nothing}");
    assert_eq!(ok(&r[28])["versions"][0]["state"], "AVAILABLE");
    refused(&r[29], "DEADLINE_EXCEEDED");
    assert_eq!(floats(&ok(&r[30])["outputs"]["y"]["values"]), [2.5, 3.0, 4.5]);
}

#[test]
fn grpc_limits_refuse_with_their_status_and_the_server_answers_the_next_call() {
    let dir = common::ModelDir::new("grpc-limits");
    let config = models(&dir);
    let server = common::serve_config(
        &config,
        &[
            "--grpc_max_receive_message_length",
            "4096",
            "--grpc_max_values",
            "1000",
        ],
    );
    let x = |spec: Value| json!({"call": "predict", "model": "half_plus_two", "inputs": {"x": spec}});
    let plan = json!([
        // 1,001 elements from one value: refused before it is expanded.
        x(json!({"float_val": [1.0], "shape": [1001]})),
        x(json!({"float_val": [1.0], "shape": [1000]})),
        // 2,000 floats in tensor_content: 8,000 bytes, over the message limit.
        x(json!({"values": vec![0.5f32; 2000]})),
        x(json!({"values": [1.0]})),
    ]);
    let r = client(&server, &plan);
    let over = refused(&r[0], "INVALID_ARGUMENT");
    assert!(over.contains("more than the 1000 elements allowed"), "{over}");
    assert_eq!(floats(&ok(&r[1])["outputs"]["y"]["values"]), [2.5; 1000]);
    refused(&r[2], "RESOURCE_EXHAUSTED");
    assert_eq!(floats(&ok(&r[3])["outputs"]["y"]["values"]), [2.5]);
    // The REST API answers too.
    let (status, _) = rest(&server, "GET", "/v1/models/half_plus_two", "");
    assert_eq!(status, 200);
}

#[test]
fn a_full_server_refuses_grpc_calls_with_unavailable_at_once_and_answers_after() {
    let dir = common::ModelDir::new("grpc-busy");
    let config = models(&dir);
    // One request admitted at a time: the second call in flight is refused.
    let server = common::serve_config(
        &config,
        &[
            "--rest_api_max_pending_requests",
            "1",
            "--rest_api_max_running_requests",
            "1",
        ],
    );
    // Twenty-four images through Lite0 take far longer than the 0.1 s
    // after which the second call is sent.
    let slow = json!({"call": "predict", "model": "lite0",
        "inputs": {"input": {"float_val": [0.0], "shape": [24, 3, 224, 224]}}});
    let quick = json!({"call": "predict", "model": "half_plus_two", "after": 0.1,
        "inputs": {"x": {"values": [1.0]}}});
    let plan = json!([
        {"call": "together", "calls": [slow, quick]},
        {"call": "predict", "model": "half_plus_two", "inputs": {"x": {"values": [1.0]}}},
    ]);
    let r = client(&server, &plan);
    let [first, second] = ok(&r[0])["results"].as_array().unwrap().as_slice() else {
        panic!("two results expected: {}", r[0])
    };
    assert_eq!(ok(first)["outputs"]["logits"]["shape"], json!([24, 1000]));
    assert_eq!(
        refused(second, "UNAVAILABLE"),
        "The server is busy: 1 requests are already admitted; try again later"
    );
    assert_eq!(floats(&ok(&r[1])["outputs"]["y"]["values"]), [2.5]);
}
