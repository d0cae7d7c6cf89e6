//! The TF Serving REST client and the remote backend against real servers:
//! `edgeserve serve` (a separate process on 127.0.0.1) serving Lite2 and
//! Lite0, and the fault proxy in front of it. The remote runs the
//! conformance suite, matches the local run, reads status and metadata,
//! types the server's errors, and turns every fault into a typed error.
//!
//! `cargo test --workspace` builds both servers; see
//! `edgeserve_testkit::process::binary`.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance as suite;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{BackendKind, Engine, EngineError};
use edgeserve_protocol::{Code, Example, ExamplesRequest, Feature, PredictRequest, VersionSelector};
use edgeserve_remote::{RemoteClient, RemoteConfig, RemoteEngine, RemoteError, RetryPolicy};
use edgeserve_testkit::process::{Proc, fault_log, fault_proxy, serve_bundled as serve};
use std::time::{Duration, Instant};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    suite::block_on(f)
}

fn logits(engine: &dyn Engine, request: PredictRequest) -> Vec<f32> {
    let response = block_on(engine.predict(request)).unwrap();
    response.outputs["logits"].as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn remote_lite2_matches_onnxruntime_and_the_local_run() {
    let (_dir, server) = serve("remote-lite2", "efficientnet-lite2", "lite2");
    let remote = block_on(RemoteEngine::connect(RemoteConfig::new(server.url(), "lite2"))).unwrap();
    assert_eq!(remote.kind(), BackendKind::Remote);
    assert_eq!(
        remote.signature().inputs[0].shape,
        vec![Some(1), Some(3), Some(260), Some(260)]
    );
    // The conformance suite, unchanged, on the remote backend.
    suite::reference_logits_match(&remote, "efficientnet-lite2.onnx", 260, 1e-3);
    suite::bad_requests_are_refused(&remote, 260);

    let local = CpuEngine::load(&suite::bundled("efficientnet-lite2"), &CpuOptions::default()).unwrap();
    let gzipped = block_on(RemoteEngine::connect(RemoteConfig {
        gzip_requests: true,
        ..RemoteConfig::new(server.url(), "lite2")
    }))
    .unwrap();
    for image in ["chelsea", "coffee"] {
        let request = PredictRequest::instances(suite::fixture_input(image, 260));
        let here = logits(&local, request.clone());
        let there = logits(&remote, request.clone());
        let diff = suite::max_abs_diff(&here, &there);
        eprintln!("lite2 {image}: local vs remote max abs diff {diff:.2e}");
        assert!(diff <= 1e-4, "{image}: local vs remote {diff}");
        assert_eq!(logits(&gzipped, request), there, "gzip changes nothing");
    }
}

#[test]
fn client_reads_status_and_metadata_and_types_server_errors() {
    let (_dir, server) = serve("remote-status", "efficientnet-lite0", "lite0");
    let client = RemoteClient::new(RemoteConfig::new(server.url(), "lite0")).unwrap();
    let status = block_on(client.status()).unwrap();
    assert_eq!(status.model_version_status.len(), 1);
    assert_eq!(status.model_version_status[0].version, 1);
    let metadata = block_on(client.metadata()).unwrap();
    assert_eq!(metadata.model_spec.name, "lite0");
    assert!(metadata.metadata.signature_def.get("").is_ok());

    let missing = RemoteClient::new(RemoteConfig {
        version: Some(VersionSelector::Number(7)),
        ..RemoteConfig::new(server.url(), "lite0")
    })
    .unwrap();
    match block_on(missing.status()).unwrap_err() {
        RemoteError::Status {
            status,
            error,
            attempts,
            url,
            step,
            tf_serving_body,
            ..
        } => {
            assert_eq!(
                (step, tf_serving_body),
                (edgeserve_protocol::Endpoint::Status, true)
            );
            assert_eq!((status, error.code(), attempts), (404, Code::NotFound, 1));
            assert_eq!(error.message(), "Could not find version 7 of model lite0");
            assert!(url.ends_with("/v1/models/lite0/versions/7"), "{url}");
        }
        other => panic!("{other:?}"),
    }
    let unknown = RemoteClient::new(RemoteConfig::new(server.url(), "nope")).unwrap();
    let e = block_on(unknown.metadata()).unwrap_err();
    assert_eq!(e.http_status(), Some(404));
    assert_eq!(e.code(), Code::NotFound);

    // :classify through the client: the photo as an example's encoded
    // image; the classes come back as (label, probability), highest first.
    let coffee = suite::shared("fixtures/images/coffee_orig.png");
    let examples = ExamplesRequest {
        signature_name: None,
        context: None,
        examples: vec![Example {
            features: [("image/encoded".to_owned(), Feature::Bytes(vec![coffee]))].into(),
        }],
    };
    let classes = block_on(client.classify(&examples)).unwrap();
    let first = &classes.results[0];
    assert_eq!(first.len(), 1000, "every class, as a TF classification signature");
    assert_eq!(first[0].label, "espresso");
    assert!(first.windows(2).all(|w| w[0].score >= w[1].score));
    let total: f32 = first.iter().map(|c| c.score).sum();
    assert!((total - 1.0).abs() < 1e-3, "probabilities sum to {total}");

    // A feature that is not an image is named in the error, with its path.
    let floats = ExamplesRequest::from_json(br#"{"examples": [{"x": 1.0}]}"#).unwrap();
    let e = block_on(client.classify(&floats)).unwrap_err();
    assert_eq!(
        (e.http_status(), e.code()),
        (Some(400), Code::InvalidArgument),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("examples[0] has no feature 'image/encoded'"),
        "{e}"
    );
    // An image classifier has no regression signature: TF Serving's answer.
    let e = block_on(client.regress(&examples)).unwrap_err();
    assert_eq!(e.http_status(), Some(400), "{e}");
    assert!(
        e.to_string()
            .contains("Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/predict"),
        "{e}"
    );

    // Checked against the remote signature before anything is sent.
    let nhwc = edgeserve_protocol::Tensor::from_vec(vec![1, 224, 224, 3], vec![0f32; 224 * 224 * 3]).unwrap();
    match block_on(client.predict(&PredictRequest::instances(nhwc))).unwrap_err() {
        RemoteError::Signature { error, .. } => {
            assert_eq!(
                error.message(),
                "Input input: expects shape [-1,3,224,224] but got [1,224,224,3]"
            )
        }
        other => panic!("{other:?}"),
    }
}

fn fast_retries(url: String) -> RemoteConfig {
    RemoteConfig {
        retry: RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
        },
        timeout: Duration::from_secs(60),
        ..RemoteConfig::new(url, "lite0")
    }
}

#[test]
fn client_faults_are_retried_or_typed_never_a_panic() {
    let (_dir, server) = serve("faults", "efficientnet-lite0", "lite0");
    let request = PredictRequest::instances(suite::fixture_input("chelsea", 224));
    let want = {
        let direct = block_on(RemoteEngine::connect(RemoteConfig::new(server.url(), "lite0"))).unwrap();
        logits(&direct, request.clone())
    };
    let posts = |proxy: &Proc| fault_log(proxy).iter().filter(|l| l.starts_with("POST")).count();

    // 503 twice, then the real answer: retried, same logits.
    let proxy = fault_proxy(&server, "503,503");
    let engine = block_on(RemoteEngine::connect(fast_retries(proxy.url()))).unwrap();
    assert_eq!(logits(&engine, request.clone()), want);
    assert_eq!(posts(&proxy), 3, "{:?}", fault_log(&proxy));

    // 429, 502, 503, 504 then out of retries: the last status, typed.
    let proxy = fault_proxy(&server, "429,502,504,503");
    let client = RemoteClient::new(fast_retries(proxy.url())).unwrap();
    match block_on(client.predict(&request)).unwrap_err() {
        RemoteError::Status {
            status,
            attempts,
            error,
            ..
        } => {
            assert_eq!((status, attempts, error.code()), (503, 4, Code::Unavailable));
            assert_eq!(error.message(), "injected fault: HTTP 503");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(posts(&proxy), 4);

    // 400: not retried; TF Serving's code carried through the engine.
    let proxy = fault_proxy(&server, "400");
    let engine = block_on(RemoteEngine::connect(fast_retries(proxy.url()))).unwrap();
    let e = block_on(engine.predict(request.clone())).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (Code::InvalidArgument, "injected fault: HTTP 400")
    );
    assert_eq!(posts(&proxy), 1);

    // A hang: the timeout fires, and is not retried.
    let proxy = fault_proxy(&server, "hang");
    let client = RemoteClient::new(RemoteConfig {
        timeout: Duration::from_millis(700),
        ..fast_retries(proxy.url())
    })
    .unwrap();
    let t = Instant::now();
    let e = block_on(client.predict(&request)).unwrap_err();
    let waited = t.elapsed();
    assert!(matches!(e, RemoteError::Timeout { timeout_ms: 700, .. }), "{e:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(posts(&proxy), 1);

    // Bodies over the limit, announced or not, are refused unread.
    let proxy = fault_proxy(&server, "big,big-chunked");
    let client = RemoteClient::new(RemoteConfig {
        max_response_bytes: 1 << 20,
        ..fast_retries(proxy.url())
    })
    .unwrap();
    let e = block_on(client.predict(&request)).unwrap_err();
    assert!(
        matches!(
            e,
            RemoteError::TooLarge {
                limit: 1048576,
                got: Some(268435456),
                ..
            }
        ),
        "{e:?}"
    );
    let e = block_on(client.predict(&request)).unwrap_err();
    assert!(matches!(e, RemoteError::TooLarge { got: None, .. }), "{e:?}");
    assert_eq!(e.code(), Code::ResourceExhausted);

    // A 200 that is not JSON.
    let proxy = fault_proxy(&server, "garbage");
    let engine = block_on(RemoteEngine::connect(fast_retries(proxy.url()))).unwrap();
    let e = block_on(engine.predict(request.clone())).unwrap_err();
    assert!(
        matches!(
            &e,
            EngineError::Remote {
                code: Code::Internal,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("predict (POST http://"), "{e}");
    assert!(e.to_string().contains(":predict): invalid answer: "), "{e}");

    // Nobody listening: connection errors are retried, then typed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = RemoteClient::new(fast_retries(format!("http://127.0.0.1:{port}"))).unwrap();
    match block_on(client.status()).unwrap_err() {
        RemoteError::Connect { attempts, reason, .. } => {
            assert_eq!(attempts, 4);
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
