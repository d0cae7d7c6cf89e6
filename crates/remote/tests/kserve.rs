//! The remote backend against a TF-Serving-protocol server that is not
//! ours: KServe's V1 model server (PyPI `kserve`, onnxruntime behind a
//! `kserve.Model`) on 127.0.0.1, which serves `:predict` with `instances`
//! but has no `/metadata` route and rejects the columnar form. The same
//! conformance checks as against `edgeserve serve` (`client.rs`) run on it.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance as suite;
use edgeserve_engine::{Engine, EngineError, ModelManifest};
use edgeserve_protocol::{Code, Format, Tensor};
use edgeserve_remote::{Discovery, RemoteConfig, RemoteEngine, SignatureSource};
use edgeserve_testkit::process::kserve;
use edgeserve_testkit::repo_dir;
use std::collections::BTreeMap;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    suite::block_on(f)
}

fn lite2_manifest() -> ModelManifest {
    let text = std::fs::read(repo_dir().join("models/efficientnet-lite2/manifest.json")).unwrap();
    ModelManifest::from_json(&text).unwrap()
}

#[test]
fn kserve_v1_answers_through_the_manifest_signature_and_says_what_failed_where() {
    let server = kserve("efficientnet-lite2", "efficientnet-lite2");
    let config = RemoteConfig::new(server.url(), "efficientnet-lite2");
    let manifest = lite2_manifest();

    // Without a signature to fall back on, the missing route is the error,
    // named by step and URL, with KServe's own body.
    let e = block_on(RemoteEngine::connect(config.clone())).unwrap_err();
    assert!(e.is_missing_metadata(), "{e:?}");
    let want = format!(
        "metadata (GET {}/v1/models/efficientnet-lite2/metadata): HTTP 404: not a TF Serving error object: \"{{\\\"detail\\\":\\\"Not Found\\\"}}\"",
        server.url()
    );
    assert_eq!(e.to_string(), want);

    // With the manifest's signature: the same answers as onnxruntime, the
    // same refusals of bad requests as every backend gives.
    let remote = block_on(RemoteEngine::connect_with_signature(
        config.clone(),
        manifest.signature(),
    ))
    .unwrap();
    match remote.signature_source() {
        SignatureSource::Fallback { reason } => assert_eq!(reason, &want),
        other => panic!("{other:?}"),
    }
    suite::reference_logits_match(&remote, "efficientnet-lite2.onnx", 260, 1e-3);
    suite::bad_requests_are_refused(&remote, 260);

    // The manifest does not give the batch dimension, so a batch goes to
    // the server as it is; this Lite2 takes batches of one, and the
    // server's refusal comes back whole, with the step and the URL.
    let pair = Tensor::stack(vec![
        suite::fixture_input("chelsea", 260).row(0).unwrap(),
        suite::fixture_input("coffee", 260).row(0).unwrap(),
    ])
    .unwrap();
    let e = block_on(remote.run(BTreeMap::from([("input".to_owned(), pair)]))).unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "remote backend: predict (POST {}/v1/models/efficientnet-lite2:predict): HTTP 500: InvalidArgument : [ONNXRuntimeError]",
            server.url()
        )) && text.contains("index: 0 Got: 2 Expected: 1"),
        "{text}"
    );

    // What classify sends: named tensors, written as rows.
    let inputs = || BTreeMap::from([("input".to_owned(), suite::fixture_input("chelsea", 260))]);
    let out = block_on(remote.run(inputs())).unwrap();
    let logits = out["logits"].as_slice::<f32>().unwrap();
    let diff = suite::max_abs_diff(
        logits,
        &suite::reference_logits("efficientnet-lite2.onnx", "chelsea"),
    );
    assert!(diff <= 1e-3, "{diff}");

    // Discovery off: no metadata call, the manifest's signature at once.
    let off = RemoteConfig {
        discovery: Discovery::Off,
        ..config.clone()
    };
    let given = block_on(RemoteEngine::connect_with_signature(off, manifest.signature())).unwrap();
    assert_eq!(given.signature_source(), &SignatureSource::Given);
    assert_eq!(
        block_on(given.run(inputs())).unwrap()["logits"].shape(),
        &[1, 1000]
    );

    // The columnar form, asked for: KServe's predictor cannot read it. The
    // error names the step, the URL and the server's words.
    let columnar = RemoteConfig {
        format: Format::Columnar,
        ..config.clone()
    };
    let engine = block_on(RemoteEngine::connect_with_signature(
        columnar,
        manifest.signature(),
    ))
    .unwrap();
    let e = block_on(engine.run(inputs())).unwrap_err();
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
    assert_eq!(
        e.to_string(),
        format!(
            "remote backend: predict (POST {}/v1/models/efficientnet-lite2:predict): HTTP 500: KeyError : 'instances'",
            server.url()
        )
    );

    // A model name the server does not have: a wrong URL, told apart from
    // a wrong protocol by the predict step's 404 and KServe's message.
    let wrong = RemoteConfig::new(server.url(), "nope");
    let engine = block_on(RemoteEngine::connect_with_signature(wrong, manifest.signature())).unwrap();
    let e = block_on(engine.run(inputs())).unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "remote backend: predict (POST {}/v1/models/nope:predict): HTTP 404: Model with name nope does not exist.",
            server.url()
        )
    );

    // An input of another size is refused before anything is sent, by the
    // manifest's signature, in TF Serving's words.
    let small = Tensor::from_vec(vec![1, 3, 224, 224], vec![0f32; 3 * 224 * 224]).unwrap();
    let e = block_on(remote.run(BTreeMap::from([("input".to_owned(), small)]))).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.to_string().contains("expects shape [-1,3,260,260]"), "{e}");
}
