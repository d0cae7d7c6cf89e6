//! `edgeserve serve` as a real process on 127.0.0.1 with an OS-assigned
//! port, spoken to over real HTTP: TF Serving's status, metadata, predict
//! (row and columnar) and error bodies, and the answers against
//! onnxruntime's reference logits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::protocol::PredictRequest;
use edgeserve_conformance as suite;
use std::io::Write;

mod common;

/// A server process serving the bundled Lite0 as `lite0` version 1, killed
/// (by its own pid) and its model directory removed when dropped.
struct Server {
    _proc: common::Proc,
    addr: String,
    _dir: common::ModelDir,
}

impl Server {
    fn start(tag: &str) -> Server {
        Server::start_with(tag, &[])
    }

    fn start_with(tag: &str, flags: &[&str]) -> Server {
        let dir = common::ModelDir::new(&format!("serve-{tag}"));
        dir.add_version(1, "efficientnet-lite0");
        // A directory that is not a number is not a version (TF Serving).
        std::fs::create_dir_all(dir.path.join("not-a-version")).unwrap();
        let proc = common::serve(&dir, "lite0", flags);
        assert!(proc.banner.contains("model lite0 version 1"), "{}", proc.banner);
        Server {
            addr: proc.addr.clone(),
            _proc: proc,
            _dir: dir,
        }
    }

    /// One request; the status, the content type and the body.
    fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let (status, head, body) = self.call_with(method, path, "", body);
        let content_type = head
            .lines()
            .find_map(|l| l.strip_prefix("content-type: ").map(str::to_owned))
            .unwrap_or_default();
        (status, content_type, body)
    }

    /// One request with extra header lines; the status, the response head
    /// (lower-cased) and the body.
    fn call_with(&self, method: &str, path: &str, extra: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        common::http(&self.addr, method, path, extra, body)
    }

    fn json(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let (status, content_type, body) = self.call(method, path, body);
        assert_eq!(content_type, "application/json", "{method} {path}");
        (status, serde_json::from_slice(&body).unwrap())
    }
}

fn logits(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn status_and_metadata_are_tf_servings() {
    let s = Server::start("status");
    let (status, body) = s.json("GET", "/v1/models/lite0", b"");
    assert_eq!(status, 200);
    let v = &body["model_version_status"];
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["version"], "1");
    assert_eq!(v[0]["state"], "AVAILABLE");
    assert_eq!(v[0]["status"]["error_code"], "OK");

    let (status, body) = s.json("GET", "/v1/models/lite0/versions/1/metadata", b"");
    assert_eq!(status, 200);
    assert_eq!(body["model_spec"]["name"], "lite0");
    assert_eq!(body["model_spec"]["version"], "1");
    let sig = &body["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(sig["inputs"]["input"]["dtype"], "DT_FLOAT");
    let dims: Vec<&str> = sig["inputs"]["input"]["tensor_shape"]["dim"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["size"].as_str().unwrap())
        .collect();
    assert_eq!(dims, ["-1", "3", "224", "224"]);
    assert_eq!(sig["method_name"], "tensorflow/serving/predict");
}

#[test]
fn errors_have_tf_servings_codes_and_bodies() {
    let s = Server::start("errors");
    let cases: [(&str, &str, &[u8], u16, &str); 7] = [
        (
            "GET",
            "/v1/models/nope",
            b"",
            404,
            "Could not find any versions of model nope",
        ),
        (
            "GET",
            "/v1/models/lite0/versions/7",
            b"",
            404,
            "Could not find version 7 of model lite0",
        ),
        (
            "POST",
            "/v1/models/nope:predict",
            b"{}",
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "GET",
            "/v1/models/lite0/versions/2/metadata",
            b"",
            404,
            "Servable not found for request: Specific(lite0, 2)",
        ),
        (
            "POST",
            "/v1/models/lite0:predict",
            b"{\"instances\": [1",
            400,
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 16",
        ),
        ("GET", "/v1/models", b"", 400, "Missing model name in request."),
        (
            "POST",
            "/v1/models/lite0/metadata",
            b"",
            400,
            "Malformed request: POST /v1/models/lite0/metadata",
        ),
    ];
    for (method, path, body, code, message) in cases {
        let (status, json) = s.json(method, path, body);
        assert_eq!(
            (status, json["error"].as_str()),
            (code, Some(message)),
            "{method} {path}"
        );
    }
    // A request naming an input the model does not have: TF Serving's codec
    // names the one it expected.
    let (status, json) = s.json(
        "POST",
        "/v1/models/lite0:predict",
        br#"{"inputs": {"image": [1.0]}}"#,
    );
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("Missing named input: input in 'inputs' object."))
    );
    // Outside /v1/: a plain 404 page, as TF Serving's HTTP library answers.
    let (status, content_type, _) = s.call("GET", "/healthz", b"");
    assert_eq!((status, content_type.as_str()), (404, "text/html"));
    // Still serving after all that.
    assert_eq!(s.json("GET", "/v1/models/lite0", b"").0, 200);
}

#[test]
fn predict_row_and_columnar_match_onnxruntime() {
    let s = Server::start("predict");
    let input = suite::fixture_input("chelsea", 224);
    let reference = suite::reference_logits("efficientnet-lite0.onnx", "chelsea");

    let body = PredictRequest::instances(input.clone()).to_json().unwrap();
    let (status, json) = s.json("POST", "/v1/models/lite0:predict", &body);
    assert_eq!(status, 200, "{json}");
    let rows = json["predictions"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = logits(&rows[0]);
    assert!(suite::max_abs_diff(&row, &reference) <= 1e-3);
    assert_eq!(
        suite::top_k_indices(&row, 5),
        suite::reference_top5("efficientnet-lite0.onnx", "chelsea")
    );

    let columnar = format!(
        "{{\"signature_name\": \"serving_default\", \"inputs\": {{\"input\": {}}}}}",
        serde_json::to_string(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()["instances"])
            .unwrap()
    );
    let (status, json) = s.json("POST", "/v1/models/lite0/versions/1:predict", columnar.as_bytes());
    assert_eq!(status, 200, "{json}");
    let col = logits(&json["outputs"][0]);
    assert!(suite::max_abs_diff(&col, &row) <= 1e-6);
}

const CORS: [&str; 3] = [
    "access-control-allow-origin: *",
    "access-control-allow-methods: post, get",
    "access-control-allow-headers: content-type",
];

#[test]
fn cors_headers_only_with_the_flag_and_preflight_as_tf_serving() {
    let plain = Server::start("nocors");
    let (status, head, _) =
        plain.call_with("GET", "/v1/models/lite0", "Origin: https://app.example\r\n", b"");
    assert_eq!(status, 200);
    assert!(!head.contains("access-control-"), "{head}");
    // Preflight is answered whatever the flag: 200 for an http(s) origin,
    // 400 otherwise, both with an empty body.
    let preflights = [
        ("Origin: https://app.example\r\n", 200),
        ("Origin: http://localhost:5173\r\n", 200),
        ("Origin: null\r\n", 400),
        ("", 400),
    ];
    for (origin, code) in preflights {
        let (status, _, body) = plain.call_with("OPTIONS", "/v1/models/lite0:predict", origin, b"");
        assert_eq!((status, body.len()), (code, 0), "{origin:?}");
    }
    drop(plain);

    let cors = Server::start_with("cors", &["--rest_api_enable_cors_support"]);
    for (path, code) in [("/v1/models/lite0", 200), ("/v1/models/nope", 404)] {
        let (status, head, _) = cors.call_with("GET", path, "Origin: https://app.example\r\n", b"");
        assert_eq!(status, code);
        for h in CORS {
            assert!(head.contains(h), "{path}: {h} missing from {head}");
        }
    }
    let (status, head, _) = cors.call_with(
        "OPTIONS",
        "/v1/models/lite0",
        "Origin: https://a.example\r\n",
        b"",
    );
    assert_eq!(status, 200);
    assert!(head.contains(CORS[0]), "{head}");
}

#[test]
fn gzip_request_bodies_are_inflated() {
    use flate2::{Compression, write::GzEncoder};
    let s = Server::start("gzip");
    let body = PredictRequest::instances(suite::fixture_input("coffee", 224))
        .to_json()
        .unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&body).unwrap();
    let gz = gz.finish().unwrap();
    let plain = s.call("POST", "/v1/models/lite0:predict", &body);
    let zipped = s.call_with(
        "POST",
        "/v1/models/lite0:predict",
        "Content-Encoding: gzip\r\n",
        &gz,
    );
    assert_eq!(plain.0, 200);
    assert_eq!((zipped.0, &zipped.2), (200, &plain.2));
    let json: serde_json::Value = serde_json::from_slice(&zipped.2).unwrap();
    assert_eq!(
        suite::top_k_indices(&logits(&json["predictions"][0]), 5),
        suite::reference_top5("efficientnet-lite0.onnx", "coffee")
    );
    // Not gzip at all: a 400 with TF Serving's error body.
    let (status, _, body) = s.call_with(
        "POST",
        "/v1/models/lite0:predict",
        "Content-Encoding: gzip\r\n",
        b"{}",
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 400);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .starts_with("Failed to decompress"),
        "{json}"
    );
}

fn image_example(bytes: Vec<u8>) -> edgeserve::protocol::Example {
    edgeserve::protocol::Example {
        features: [(
            "image/encoded".to_owned(),
            edgeserve::protocol::Feature::Bytes(vec![bytes]),
        )]
        .into(),
    }
}

fn labels() -> Vec<String> {
    let text =
        std::fs::read_to_string(suite::repo_dir().join("models/efficientnet-lite0/imagenet_labels.txt"))
            .unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn classify_answers_every_class_for_image_examples() {
    let s = Server::start("classify");
    let request = edgeserve::protocol::ExamplesRequest {
        signature_name: Some("serving_default".into()),
        context: None,
        examples: ["chelsea", "coffee"]
            .map(|i| image_example(suite::shared(&format!("fixtures/images/{i}_orig.png"))))
            .into(),
    };
    let (status, json) = s.json("POST", "/v1/models/lite0:classify", &request.to_json().unwrap());
    assert_eq!(status, 200, "{json}");
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let labels = labels();
    for (result, image) in results.iter().zip(["chelsea", "coffee"]) {
        let pairs = result.as_array().unwrap();
        assert_eq!(pairs.len(), labels.len());
        let top5: Vec<&str> = pairs[..5].iter().map(|p| p[0].as_str().unwrap()).collect();
        let want: Vec<&str> = suite::reference_top5("efficientnet-lite0.onnx", image)
            .into_iter()
            .map(|i| labels[i].as_str())
            .collect();
        assert_eq!(top5, want, "{image}");
    }

    // The image may come in the context, shared by every example.
    let body = edgeserve::protocol::ExamplesRequest {
        signature_name: None,
        context: Some(image_example(suite::shared("fixtures/images/coffee_orig.png"))),
        examples: vec![edgeserve::protocol::Example::default()],
    }
    .to_json()
    .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("\"context\""));
    let (status, json) = s.json("POST", "/v1/models/lite0/versions/1:classify", &body);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["results"][0][0][0], "espresso");

    let bad: [(&[u8], &str); 4] = [
        (br#"{"examples": []}"#, "'examples' value is an empty array"),
        (
            br#"{"examples": [{"image/encoded": 3.5}]}"#,
            "Feature: image/encoded of examples[0] must be bytes",
        ),
        (
            br#"{"examples": [{"image/encoded": ["a", "b"]}]}"#,
            "Feature: image/encoded of examples[0] must hold one image, got 2",
        ),
        (br#"{"examples": [{"image/encoded": "not an image"}]}"#, "image"),
    ];
    for (body, message) in bad {
        let (status, json) = s.json("POST", "/v1/models/lite0:classify", body);
        let error = json["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{json}");
        assert!(error.contains(message), "{error}");
    }
    let (status, json) = s.json("POST", "/v1/models/lite0:regress", br#"{"examples": [{}]}"#);
    assert_eq!(status, 400);
    assert_eq!(
        json["error"],
        "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/predict"
    );
    assert_eq!(s.json("GET", "/v1/models/lite0", b"").0, 200);
}
