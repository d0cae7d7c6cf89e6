//! The remote client and backend against real servers: `edgeserve serve`
//! (a separate process on 127.0.0.1) serving Lite2 and Lite0, and the fault
//! proxy in front of it. Local and remote answers are compared, `auto`'s
//! routing and reports are checked, and every client fault becomes a typed
//! error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ModelDir, Proc};
use edgeserve::protocol::{Code, Example, ExamplesRequest, Feature, PredictRequest, Tensor, VersionSelector};
use edgeserve::{
    Backend, BackendKind, Classifier, Engine, EngineError, ImageInput, LoadOptions, Report, Why,
};
use edgeserve_conformance as suite;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_remote::{RemoteClient, RemoteConfig, RemoteEngine, RemoteError, RetryPolicy};
use std::process::Command;
use std::time::{Duration, Instant};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    suite::block_on(f)
}

fn bundled_file(model: &str, file: &str) -> Vec<u8> {
    std::fs::read(suite::repo_dir().join("models").join(model).join(file)).unwrap()
}

fn labels(model: &str) -> String {
    String::from_utf8(bundled_file(model, "imagenet_labels.txt")).unwrap()
}

fn logits(engine: &dyn Engine, request: PredictRequest) -> Vec<f32> {
    let response = block_on(engine.predict(request)).unwrap();
    response.outputs["logits"].as_slice::<f32>().unwrap().to_vec()
}

fn serve(tag: &str, model: &str, name: &str) -> (ModelDir, Proc) {
    let dir = ModelDir::new(tag);
    dir.add_version(1, model);
    let server = common::serve(&dir, name, &[]);
    (dir, server)
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
        } => {
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
    let nhwc =
        edgeserve::protocol::Tensor::from_vec(vec![1, 224, 224, 3], vec![0f32; 224 * 224 * 3]).unwrap();
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

fn open(
    model: &str,
    remote: Option<RemoteConfig>,
    fallback: bool,
    bytes: Option<Vec<u8>>,
) -> Result<Classifier, EngineError> {
    let options = LoadOptions {
        remote,
        fallback,
        ..LoadOptions::default()
    };
    block_on(Classifier::open(
        bytes.as_deref(),
        &bundled_file(model, "manifest.json"),
        Some(&labels(model)),
        &options,
    ))
}

/// The report's text up to how `auto` chose between local backends, which
/// depends on the features built (with `webgpu`, both CPU and GPU are timed
/// and the faster kept). The choice, when there is one, must name what ran
/// first and be the text's tail.
fn said(report: &Report) -> String {
    let text = report.to_string();
    let head = format!("{}: {}", report.backend, report.why);
    match &report.local {
        None => assert_eq!(text, head),
        Some(choice) => {
            assert_eq!(choice.candidates[0].backend, report.backend, "{text}");
            assert_eq!(text, format!("{head}; local backends: {choice}"));
        }
    }
    head
}

#[test]
fn auto_sends_lite2_remote_and_keeps_lite0_local_and_says_why() {
    let (_d2, lite2) = serve("route-lite2", "efficientnet-lite2", "efficientnet-lite2");
    let photo = suite::shared("fixtures/images/chelsea_orig.png");

    // Lite2's manifest says 24.3 MB: over the default 20 MB budget, so the
    // model bytes are not even needed.
    let c = open(
        "efficientnet-lite2",
        Some(RemoteConfig::new(lite2.url(), "efficientnet-lite2")),
        true,
        None,
    )
    .unwrap();
    let r = block_on(c.classify(ImageInput::Encoded(&photo), 5)).unwrap();
    assert_eq!(r.report.backend, BackendKind::Remote);
    assert_eq!(
        r.report.to_string(),
        "remote: model 24.3 MB > local budget 20.0 MB"
    );
    assert!(r.report.timings.transfer_ms > 0.0 && r.report.timings.inference_ms == 0.0);
    let top: Vec<usize> = r.classes.iter().map(|c| c.index).collect();
    assert_eq!(top, suite::reference_top5("efficientnet-lite2.onnx", "chelsea"));

    // Lite0 (18.5 MB) stays local, with the remote configured.
    let c = open(
        "efficientnet-lite0",
        Some(RemoteConfig::new(lite2.url(), "unused")),
        true,
        Some(suite::bundled_lite0()),
    )
    .unwrap();
    let r = block_on(c.classify(ImageInput::Encoded(&photo), 5)).unwrap();
    assert_eq!(r.report.backend, BackendKind::Cpu);
    assert_eq!(said(&r.report), "cpu: model 18.5 MB <= local budget 20.0 MB");

    // On a device with little memory (navigator.deviceMemory 0.25 GiB),
    // Lite0 goes remote too: 6 × 18.5 MB for a local run is over a quarter of it.
    // With 1 GiB it stays; with no remote it runs here and says why.
    let small_device = |gib_quarters: u64, remote: Option<RemoteConfig>| {
        let options = LoadOptions {
            remote,
            device_memory_bytes: Some(gib_quarters * (1 << 28)),
            ..LoadOptions::default()
        };
        block_on(Classifier::open(
            Some(&suite::bundled_lite0()),
            &bundled_file("efficientnet-lite0", "manifest.json"),
            Some(&labels("efficientnet-lite0")),
            &options,
        ))
        .unwrap()
    };
    let (_d0, lite0) = serve("route-lite0", "efficientnet-lite0", "lite0");
    let remote_lite0 = || Some(RemoteConfig::new(lite0.url(), "lite0"));
    let reason = |c: &Classifier| {
        let r = block_on(c.classify(ImageInput::Encoded(&photo), 1)).unwrap();
        (r.report.backend, said(&r.report))
    };
    let c = small_device(1, remote_lite0());
    assert_eq!(
        reason(&c),
        (
            BackendKind::Remote,
            "remote: a local run needs ~111.3 MB, over 1/4 of the device's 268.4 MB memory".into()
        )
    );
    assert_eq!(reason(&small_device(4, remote_lite0())).0, BackendKind::Cpu);
    let (backend, text) = reason(&small_device(1, None));
    assert_eq!(backend, BackendKind::Cpu);
    assert!(
        text.ends_with("268.4 MB memory, but no remote is configured"),
        "{text}"
    );

    // Without a remote, Lite2 runs locally and the report says the budget
    // was exceeded.
    let c = open(
        "efficientnet-lite2",
        None,
        true,
        Some(suite::bundled("efficientnet-lite2")),
    )
    .unwrap();
    let r = block_on(c.classify(ImageInput::Encoded(&photo), 1)).unwrap();
    assert_eq!(
        said(&r.report),
        "cpu: model 24.3 MB > local budget 20.0 MB, but no remote is configured"
    );

    // Asked for explicitly, the remote needs a configuration.
    let options = LoadOptions {
        backend: Backend::Remote,
        ..LoadOptions::default()
    };
    let e = block_on(Classifier::open(
        None,
        &bundled_file("efficientnet-lite0", "manifest.json"),
        Some(&labels("efficientnet-lite0")),
        &options,
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("no remote endpoint is configured"), "{e}");
}

#[test]
fn a_local_load_failure_falls_back_to_the_remote_unless_forbidden() {
    let (_dir, server) = serve("route-fallback", "efficientnet-lite0", "lite0");
    // A damaged local copy: one byte changed, so the manifest's sha256 fails.
    let mut damaged = suite::bundled_lite0();
    damaged[1000] ^= 0xff;
    let remote = || Some(RemoteConfig::new(server.url(), "lite0"));

    let c = open("efficientnet-lite0", remote(), true, Some(damaged.clone())).unwrap();
    let r = block_on(c.classify(
        ImageInput::Encoded(&suite::shared("fixtures/images/coffee_orig.png")),
        1,
    ))
    .unwrap();
    assert_eq!(r.report.backend, BackendKind::Remote);
    assert!(matches!(
        r.report.why,
        Why::LocalLoadFailed {
            backend: BackendKind::Cpu,
            ..
        }
    ));
    let text = r.report.to_string();
    assert!(
        text.starts_with(
            "remote: the cpu backend could not load the model: model file does not match its manifest"
        ),
        "{text}"
    );
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));

    let e = open("efficientnet-lite0", remote(), false, Some(damaged))
        .err()
        .unwrap();
    assert!(matches!(e, EngineError::Integrity(_)), "{e}");
}

/// Lite0 as a common bad export has it: its signature keeps the symbolic
/// batch, but the Reshape before the classifier takes a constant `[1, 1280]`
/// instead of the computed `[batch, 1280]`. Returned with its manifest (the
/// new size and sha256).
fn lite0_fixed_batch_export() -> (Vec<u8>, Vec<u8>) {
    use prost::Message;
    use sha2::Digest;
    use tract_onnx::pb::{ModelProto, TensorProto};
    let mut model = ModelProto::decode(suite::bundled_lite0().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let reshape = graph.node.iter_mut().find(|n| n.op_type == "Reshape").unwrap();
    reshape.input[1] = "fixed_batch_shape".into();
    graph.initializer.push(TensorProto {
        name: "fixed_batch_shape".into(),
        dims: vec![2],
        data_type: 7, // INT64
        int64_data: vec![1, 1280],
        ..TensorProto::default()
    });
    let bytes = model.encode_to_vec();
    let manifest = String::from_utf8(bundled_file("efficientnet-lite0", "manifest.json"))
        .unwrap()
        .replace("18547719", &bytes.len().to_string())
        .replace(
            "ad5c487b9f5fe23700c3686fa2fb75e813b0d77b9a6b16caefcecb288855a6cc",
            &format!("{:x}", sha2::Sha256::digest(&bytes)),
        );
    (bytes, manifest.into_bytes())
}

/// The fixed-batch export, with the real Lite0 on the remote. tract
/// analyses the graph for any batch at load and refuses it; the WebGPU
/// backend plans per batch size, so it loads and runs one image here, and a
/// batch of two fails at run time: the remote answers, and the report says
/// which local backend failed and how. Without the `webgpu` feature the CPU's
/// refusal at load sends everything to the remote, saying so.
#[test]
fn a_local_run_failure_falls_back_to_the_remote_unless_forbidden() {
    let (_dir, server) = serve("route-run-failure", "efficientnet-lite0", "lite0");
    let (bytes, manifest) = lite0_fixed_batch_export();
    let open = |fallback| {
        let options = LoadOptions {
            remote: Some(RemoteConfig::new(server.url(), "lite0")),
            fallback,
            ..LoadOptions::default()
        };
        block_on(Classifier::open(
            Some(&bytes),
            &manifest,
            Some(&labels("efficientnet-lite0")),
            &options,
        ))
    };
    let (cat, coffee) = (
        suite::shared("fixtures/images/chelsea_orig.png"),
        suite::shared("fixtures/images/coffee_orig.png"),
    );
    let pair = [ImageInput::Encoded(&cat), ImageInput::Encoded(&coffee)];
    let top = |r: &edgeserve::Classification| r.classes.iter().map(|c| c.index).collect::<Vec<_>>();
    let c = open(true).unwrap();
    let one = block_on(c.classify(ImageInput::Encoded(&coffee), 5)).unwrap();
    let two = block_on(c.classify_batch(&pair, 5)).unwrap();
    // Whichever path ran, the answers are Lite0's.
    assert_eq!(
        top(&two[0]),
        suite::reference_top5("efficientnet-lite0.onnx", "chelsea")
    );
    assert_eq!(top(&two[1]), top(&one));
    let tract_refusal = "Reshape volume mismatch";

    if cfg!(feature = "webgpu") {
        assert_eq!(one.report.backend, BackendKind::Webgpu, "{}", one.report);
        let choice = one.report.local.as_ref().unwrap().to_string();
        assert!(
            choice.starts_with("webgpu loaded, cpu could not run: "),
            "{choice}"
        );
        assert!(choice.contains(tract_refusal), "{choice}");

        let report = &two[0].report;
        assert_eq!(report.backend, BackendKind::Remote, "{report}");
        let Why::LocalRunFailed { backend, error } = &report.why else {
            panic!("{report}")
        };
        assert_eq!(*backend, BackendKind::Webgpu);
        assert!(error.contains("planning batch 2"), "{error}");
        assert!(
            report
                .to_string()
                .starts_with("remote: the webgpu backend failed: "),
            "{report}"
        );
        // The local engine still answers the next single image.
        let again = block_on(c.classify(ImageInput::Encoded(&cat), 1)).unwrap();
        assert_eq!(again.report.backend, BackendKind::Webgpu);

        // Fallback forbidden: the local error itself, typed.
        let e = block_on(open(false).unwrap().classify_batch(&pair, 5)).unwrap_err();
        assert!(
            matches!(
                e,
                EngineError::Run {
                    backend: BackendKind::Webgpu,
                    ..
                }
            ),
            "{e}"
        );
    } else {
        for report in [&one.report, &two[0].report] {
            assert_eq!(report.backend, BackendKind::Remote, "{report}");
            assert!(
                matches!(&report.why, Why::LocalLoadFailed { error, .. } if error.contains(tract_refusal))
            );
        }
        let e = open(false).err().unwrap();
        assert!(e.to_string().contains(tract_refusal), "{e}");
    }
}

/// A fault proxy (a separate process) in front of `upstream`, answering
/// POSTs by `script`.
fn fault_proxy(upstream: &Proc, script: &str) -> Proc {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgeserve-fault-proxy"));
    command.args(["--upstream", &upstream.addr, "--post", script]);
    Proc::spawn(command)
}

/// The proxy's log: one line per request it saw.
fn proxy_log(proxy: &Proc) -> Vec<String> {
    // Not a TF Serving path: read raw.
    let (status, _, body) = common::http(&proxy.addr, "GET", "/faults/log", "", b"");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
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
    let posts = |proxy: &Proc| proxy_log(proxy).iter().filter(|l| l.starts_with("POST")).count();

    // 503 twice, then the real answer: retried, same logits.
    let proxy = fault_proxy(&server, "503,503");
    let engine = block_on(RemoteEngine::connect(fast_retries(proxy.url()))).unwrap();
    assert_eq!(logits(&engine, request.clone()), want);
    assert_eq!(posts(&proxy), 3, "{:?}", proxy_log(&proxy));

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
    assert!(e.to_string().contains("invalid answer from http://"), "{e}");

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

/// Lite2's manifest, served with an encoded-image input.
fn image_input_manifest() -> Vec<u8> {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&bundled_file("efficientnet-lite2", "manifest.json")).unwrap();
    manifest["input"]["encoding"] = "image".into();
    serde_json::to_vec_pretty(&manifest).unwrap()
}

fn probabilities(r: &edgeserve::Classification) -> Vec<f32> {
    let mut by_index: Vec<(usize, f32)> = r.classes.iter().map(|c| (c.index, c.score)).collect();
    by_index.sort_by_key(|(i, _)| *i);
    by_index.into_iter().map(|(_, s)| s).collect()
}

#[test]
fn a_remote_that_takes_encoded_images_gets_the_file_as_b64() {
    let dir = ModelDir::new("remote-b64");
    let version = dir.add_version(1, "efficientnet-lite2");
    std::fs::write(version.join("manifest.json"), image_input_manifest()).unwrap();
    let server = common::serve(&dir, "lite2", &[]);
    let config = RemoteConfig::new(server.url(), "lite2");

    // The server's signature takes one encoded image per element.
    let client = RemoteClient::new(config.clone()).unwrap();
    let metadata = block_on(client.metadata()).unwrap();
    let input = &metadata.metadata.signature_def.get("").unwrap().inputs["input"];
    assert_eq!(input.dtype, edgeserve::protocol::DataType::String);

    // The client's own manifest is the plain one: the remote signature alone
    // decides that the photo goes as its file.
    let remote = block_on(Classifier::open(
        None,
        &bundled_file("efficientnet-lite2", "manifest.json"),
        Some(&labels("efficientnet-lite2")),
        &LoadOptions {
            backend: Backend::Remote,
            remote: Some(config),
            ..LoadOptions::default()
        },
    ))
    .unwrap();
    let photo = suite::shared("fixtures/images/chelsea_orig.png");
    let there = block_on(remote.classify(ImageInput::Encoded(&photo), 1000)).unwrap();
    assert_eq!(there.report.backend, BackendKind::Remote);
    let top: Vec<usize> = there.classes[..5].iter().map(|c| c.index).collect();
    assert_eq!(top, suite::reference_top5("efficientnet-lite2.onnx", "chelsea"));

    // The same model locally, behind the same encoded-image signature.
    let local = Classifier::load(
        &suite::bundled("efficientnet-lite2"),
        &image_input_manifest(),
        Some(&labels("efficientnet-lite2")),
        &LoadOptions::default(),
    )
    .unwrap();
    let here = block_on(local.classify(ImageInput::Encoded(&photo), 1000)).unwrap();
    let diff = suite::max_abs_diff(&probabilities(&here), &probabilities(&there));
    assert!(diff <= 1e-5, "local vs remote probabilities differ by {diff}");

    // Pixels go as a lossless PNG: the same answer as the file.
    let decoded = edgeserve_vision::decode(&photo, &Default::default()).unwrap();
    let pixels = ImageInput::Pixels {
        width: decoded.width(),
        height: decoded.height(),
        format: edgeserve::PixelFormat::Rgb8,
        data: decoded.pixels(),
    };
    let from_pixels = block_on(remote.classify(pixels, 1000)).unwrap();
    assert!(suite::max_abs_diff(&probabilities(&from_pixels), &probabilities(&there)) <= 1e-6);

    // One {"b64": …} predict request, locally and remotely: the same logits.
    let file = |bytes: &[u8]| Tensor::from_vec(vec![1], vec![bytes.to_vec()]).unwrap();
    let request = PredictRequest::instances(file(&photo));
    let json = String::from_utf8(request.to_json().unwrap()).unwrap();
    assert!(json.contains(r#""b64": "iVBORw0KGgo"#), "{}", &json[..60]);
    let out =
        |r: edgeserve::protocol::PredictResponse| r.outputs["logits"].as_slice::<f32>().unwrap().to_vec();
    let l = out(block_on(local.predict(request.clone())).unwrap());
    let r = out(block_on(remote.predict(request)).unwrap());
    assert!(suite::max_abs_diff(&l, &r) <= 1e-4);

    // A string that is not an image is named by its place in the input.
    let bad = PredictRequest::instances(file(b"hello"));
    let e = block_on(local.predict(bad.clone())).unwrap_err();
    assert!(e.message().starts_with("input[0]: not a supported image"), "{e}");
    let e = block_on(remote.predict(bad)).unwrap_err();
    assert!(e.message().starts_with("input[0]: not a supported image"), "{e}");
}
