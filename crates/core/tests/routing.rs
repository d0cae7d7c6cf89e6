//! Routing against a real remote: `auto` sends a model over the budget or a
//! device too small to `edgeserve serve` (a separate process on 127.0.0.1)
//! and keeps the rest local, a local load or run failure falls back to the
//! remote unless forbidden, and every report says which backend ran and
//! why. A remote that takes encoded images gets the file.
//!
//! `cargo test --workspace` builds the server; see
//! `edgeserve_testkit::process::binary`.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::protocol::{PredictRequest, Tensor};
use edgeserve::{Backend, BackendKind, Classifier, EngineError, ImageInput, LoadOptions, Report, Why};
use edgeserve_conformance as suite;
use edgeserve_remote::{RemoteClient, RemoteConfig};
use edgeserve_testkit::process::{ModelDir, serve, serve_bundled};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    suite::block_on(f)
}

fn bundled_file(model: &str, file: &str) -> Vec<u8> {
    std::fs::read(suite::repo_dir().join("models").join(model).join(file)).unwrap()
}

fn labels(model: &str) -> String {
    String::from_utf8(bundled_file(model, "imagenet_labels.txt")).unwrap()
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
    let (_d2, lite2) = serve_bundled("route-lite2", "efficientnet-lite2", "efficientnet-lite2");
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
    let (_d0, lite0) = serve_bundled("route-lite0", "efficientnet-lite0", "lite0");
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
    let (_dir, server) = serve_bundled("route-fallback", "efficientnet-lite0", "lite0");
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
    use edgeserve_onnx::pb::{ModelProto, TensorProto};
    use prost::Message;
    use sha2::Digest;
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
    let (_dir, server) = serve_bundled("route-run-failure", "efficientnet-lite0", "lite0");
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
    let server = serve(&dir, "lite2", &[]);
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
