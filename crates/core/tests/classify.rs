//! The whole path, image file to top-5, against onnxruntime's references,
//! and the typed errors of every bad input.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::protocol::PredictRequest;
use edgeserve::{BackendKind, Classifier, DecodeOptions, EngineError, ImageInput, LoadOptions, PixelFormat};
use edgeserve_conformance as suite;
use std::sync::OnceLock;

fn bundled(file: &str) -> Vec<u8> {
    std::fs::read(suite::repo_dir().join("models/efficientnet-lite0").join(file)).unwrap()
}

fn labels() -> String {
    String::from_utf8(bundled("imagenet_labels.txt")).unwrap()
}

fn load(options: &LoadOptions) -> Result<Classifier, EngineError> {
    Classifier::load(
        &suite::bundled_lite0(),
        &bundled("manifest.json"),
        Some(&labels()),
        options,
    )
}

fn lite0() -> &'static Classifier {
    static C: OnceLock<Classifier> = OnceLock::new();
    C.get_or_init(|| load(&LoadOptions::default()).unwrap())
}

fn photo(name: &str) -> Vec<u8> {
    suite::shared(&format!("fixtures/images/{name}_orig.png"))
}

#[test]
fn from_the_photo_files_top5_and_logits_match_onnxruntime() {
    let c = lite0();
    for name in ["chelsea", "coffee"] {
        let image = edgeserve_vision::decode(&photo(name), &DecodeOptions::default()).unwrap();
        let input = c.manifest().preprocessing().to_tensor(&[image]).unwrap();
        let response = suite::block_on(c.predict(PredictRequest::instances(input))).unwrap();
        let logits = response.outputs["logits"].as_slice::<f32>().unwrap();
        let want = suite::reference_logits("efficientnet-lite0.onnx", name);
        let diff = suite::max_abs_diff(logits, &want);
        eprintln!("{name}: full path max abs diff vs onnxruntime {diff:.4}");
        assert!(diff <= 0.05, "{name}: {diff}");
        assert_eq!(
            suite::top_k_indices(logits, 5),
            suite::reference_top5("efficientnet-lite0.onnx", name)
        );
    }
}

#[test]
fn classify_names_the_class_and_what_ran() {
    let r = suite::block_on(lite0().classify(ImageInput::Encoded(&photo("coffee")), 5)).unwrap();
    assert_eq!(r.classes.len(), 5);
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));
    assert_eq!(r.classes[0].index, 967);
    assert!(r.classes[0].score > 0.9, "{}", r.classes[0].score);
    assert!(r.classes.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(r.report.backend, BackendKind::Cpu);
    assert_eq!(r.report.why.to_string(), "auto: no remote is configured");
    assert!(r.report.timings.inference_ms > 0.0 && r.report.timings.decode_ms > 0.0);
    let top5: Vec<usize> = r.classes.iter().map(|c| c.index).collect();
    assert_eq!(top5, suite::reference_top5("efficientnet-lite0.onnx", "coffee"));
}

#[test]
fn a_batch_gives_what_single_images_give() {
    let (cat, coffee) = (photo("chelsea"), photo("coffee"));
    let c = lite0();
    let batch =
        suite::block_on(c.classify_batch(&[ImageInput::Encoded(&cat), ImageInput::Encoded(&coffee)], 3))
            .unwrap();
    let one = suite::block_on(c.classify(ImageInput::Encoded(&cat), 3)).unwrap();
    assert_eq!(batch.len(), 2);
    for (a, b) in batch[0].classes.iter().zip(&one.classes) {
        assert_eq!(a.index, b.index);
        assert!((a.score - b.score).abs() < 1e-5);
    }
    assert_eq!(batch[1].classes[0].label.as_deref(), Some("espresso"));
}

#[test]
fn a_batch_over_the_images_per_run_runs_in_chunks_with_the_same_answers() {
    let (cat, coffee) = (photo("chelsea"), photo("coffee"));
    let images: Vec<ImageInput<'_>> = [&cat, &coffee, &cat, &coffee, &cat]
        .into_iter()
        .map(|b| ImageInput::Encoded(b))
        .collect();
    let whole = suite::block_on(lite0().classify_batch(&images, 5)).unwrap();
    let mut options = LoadOptions::default();
    options.decode.max_images_per_run = 2;
    let chunked = suite::block_on(load(&options).unwrap().classify_batch(&images, 5)).unwrap();
    assert_eq!(chunked.len(), 5);
    for (i, (a, b)) in whole.iter().zip(&chunked).enumerate() {
        let (ia, ib): (Vec<_>, Vec<_>) = (
            a.classes.iter().map(|c| c.index).collect(),
            b.classes.iter().map(|c| c.index).collect(),
        );
        assert_eq!(ia, ib, "image {i}");
        for (x, y) in a.classes.iter().zip(&b.classes) {
            assert!((x.score - y.score).abs() < 1e-5, "image {i}");
        }
    }
    assert_eq!(chunked[4].classes[0].index, whole[0].classes[0].index);
    assert_eq!(chunked[3].classes[0].label.as_deref(), Some("espresso"));
}

#[test]
fn canvas_pixels_classify_like_the_file() {
    let img = image::load_from_memory(&photo("coffee")).unwrap().to_rgba8();
    let (w, h) = img.dimensions();
    let input = ImageInput::Pixels {
        width: w,
        height: h,
        format: PixelFormat::Rgba8,
        data: img.as_raw(),
    };
    let r = suite::block_on(lite0().classify(input, 1)).unwrap();
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));
}

#[test]
fn bad_images_are_typed_errors() {
    let c = lite0();
    let err = |input: ImageInput<'_>| suite::block_on(c.classify(input, 5)).unwrap_err();
    // A GIF signature followed by junk: the junk reads as a 25133x29813 header.
    let e = err(ImageInput::Encoded(b"GIF89a-but-not-really"));
    assert!(
        matches!(
            e,
            EngineError::Vision(edgeserve_vision::VisionError::TooLarge { .. })
        ),
        "{e:?}"
    );
    let png = photo("coffee");
    let e = err(ImageInput::Encoded(&png[..png.len() / 3]));
    assert!(
        matches!(
            e,
            EngineError::Vision(edgeserve_vision::VisionError::Decode { .. })
        ),
        "{e:?}"
    );
    let e = err(ImageInput::Encoded(&bundled("manifest.json")));
    assert!(e.to_string().starts_with("not a supported image"), "{e}");
    let e = err(ImageInput::Pixels {
        width: 0,
        height: 0,
        format: PixelFormat::Rgba8,
        data: &[],
    });
    assert_eq!(e.to_string(), "the image is empty (0x0 pixels)");
    let small = load(&LoadOptions {
        decode: DecodeOptions {
            max_pixels: 1000,
            ..DecodeOptions::default()
        },
        ..LoadOptions::default()
    })
    .unwrap();
    let e = suite::block_on(small.classify(ImageInput::Encoded(&photo("coffee")), 5)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the image is 600x400 = 240000 pixels, over the limit of 1000 pixels"
    );
}

#[test]
fn a_model_that_is_not_the_manifests_is_refused() {
    let mut model = suite::bundled_lite0();
    model[1000] ^= 1;
    let e = Classifier::load(
        &model,
        &bundled("manifest.json"),
        Some(&labels()),
        &LoadOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, EngineError::Integrity(_)), "{e:?}");
    assert!(e.to_string().contains("the manifest says ad5c487b"), "{e}");
    let e = Classifier::load(
        &suite::bundled_lite0(),
        &bundled("manifest.json"),
        Some("a\nb\n"),
        &LoadOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, EngineError::Integrity(_)), "{e:?}");
    let manifest = String::from_utf8(bundled("manifest.json"))
        .unwrap()
        .replace("\"input\", \"layout\"", "\"image\", \"layout\"");
    let e = Classifier::load(
        &suite::bundled_lite0(),
        manifest.as_bytes(),
        Some(&labels()),
        &LoadOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "invalid manifest: input \"image\" is not in the model (its inputs: [\"input\"])"
    );
}

#[test]
fn a_digest_given_by_the_caller_is_checked_against_the_manifest() {
    let manifest = bundled("manifest.json");
    let sha256: String = edgeserve::ModelManifest::from_json(&manifest)
        .unwrap()
        .model
        .sha256;
    let digest: [u8; 32] =
        std::array::from_fn(|i| u8::from_str_radix(&sha256[2 * i..2 * i + 2], 16).unwrap());
    let with = |digest| LoadOptions {
        model_sha256: Some(digest),
        ..LoadOptions::default()
    };
    // The right digest is trusted (the bytes are not hashed again)…
    let c = Classifier::load(&suite::bundled_lite0(), &manifest, Some(&labels()), &with(digest)).unwrap();
    assert_eq!(c.backend(), BackendKind::Cpu);
    // …a wrong one is refused, naming both…
    let mut wrong = digest;
    wrong[0] ^= 0xff;
    let e = Classifier::load(&suite::bundled_lite0(), &manifest, Some(&labels()), &with(wrong))
        .err()
        .unwrap();
    assert!(matches!(e, EngineError::Integrity(_)), "{e:?}");
    assert!(e.to_string().contains("the manifest says ad5c487b"), "{e}");
    // …and the length is still checked against the bytes themselves.
    let e = Classifier::load(
        &suite::bundled_lite0()[..1000],
        &manifest,
        Some(&labels()),
        &with(digest),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("is 1000 bytes"), "{e}");
}

/// The threaded wasm build's load: begun on the pool's other thread, the
/// digest computed by the caller meanwhile. Here a native pool whose first
/// thread is a test thread, as the wasm build's caller is its pool's first
/// (the pool is this thread's executor alone: other tests keep theirs).
#[test]
fn a_load_begun_on_another_thread_answers_as_any_and_checks_the_digest_after() {
    use edgeserve::{Backend, LoadingModel, RemoteConfig};
    use tract_linalg::multithread::{Executor, multithread_tract_scope};
    let manifest_json = bundled("manifest.json");
    let manifest = edgeserve::ModelManifest::from_json(&manifest_json).unwrap();
    let digest: [u8; 32] =
        std::array::from_fn(|i| u8::from_str_radix(&manifest.model.sha256[2 * i..2 * i + 2], 16).unwrap());
    let cpu = LoadOptions {
        backend: Backend::Cpu,
        ..LoadOptions::default()
    };
    let model = suite::bundled_lite0();
    let open = |loading, digest: Result<[u8; 32], EngineError>| {
        suite::block_on(Classifier::open_loading(
            loading,
            &manifest_json,
            Some(&labels()),
            &cpu,
            async { digest },
        ))
    };
    let want = suite::block_on(lite0().classify(ImageInput::Encoded(&photo("coffee")), 5)).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Outside a pool: nothing to load beside.
            assert!(!LoadingModel::possible());
            assert_eq!(
                LoadingModel::start(model.clone(), &manifest, &cpu)
                    .unwrap_err()
                    .len(),
                model.len()
            );
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .use_current_thread()
                .build()
                .unwrap();
            multithread_tract_scope(Executor::MultiThread(std::sync::Arc::new(pool)), || {
                assert!(LoadingModel::possible());
                // Given back where the load would not run on this CPU, or
                // the bytes are not the manifest's size.
                let gpu = LoadOptions {
                    backend: Backend::Webgpu,
                    ..LoadOptions::default()
                };
                let remote = LoadOptions {
                    backend: Backend::Remote,
                    remote: Some(RemoteConfig::new("http://127.0.0.1:9", "lite0")),
                    ..LoadOptions::default()
                };
                for options in [&gpu, &remote] {
                    assert!(LoadingModel::start(model.clone(), &manifest, options).is_err());
                }
                assert_eq!(
                    LoadingModel::start(model[..1000].to_vec(), &manifest, &cpu)
                        .unwrap_err()
                        .len(),
                    1000
                );

                let c = open(
                    LoadingModel::start(model.clone(), &manifest, &cpu).unwrap(),
                    Ok(digest),
                )
                .unwrap();
                assert_eq!(c.backend(), BackendKind::Cpu);
                let got = suite::block_on(c.classify(ImageInput::Encoded(&photo("coffee")), 5)).unwrap();
                assert_eq!(got.classes, want.classes);
                // A digest that is not the manifest's refuses the model…
                let mut wrong = digest;
                wrong[0] ^= 0xff;
                let e = open(
                    LoadingModel::start(model.clone(), &manifest, &cpu).unwrap(),
                    Ok(wrong),
                )
                .err()
                .unwrap();
                assert!(matches!(e, EngineError::Integrity(_)), "{e:?}");
                assert!(e.to_string().contains("the manifest says ad5c487b"), "{e}");
                // …also where the bytes do not load either: the mismatch
                // says more than the parse error.
                let junk = LoadingModel::start(vec![7; model.len()], &manifest, &cpu).unwrap();
                let e = open(junk, Ok(wrong)).err().unwrap();
                assert!(e.to_string().contains("the manifest says ad5c487b"), "{e}");
                // A digest that could not be computed is the load's error.
                let e = open(
                    LoadingModel::start(model.clone(), &manifest, &cpu).unwrap(),
                    Err(EngineError::Integrity("no hash here".into())),
                )
                .err()
                .unwrap();
                assert_eq!(
                    e.to_string(),
                    "model file does not match its manifest: no hash here"
                );

                // Begun before the manifest is read, planned on the bytes'
                // size: the same answer, and the same checks once it is.
                let c = open(
                    LoadingModel::start_unread(model.clone(), &cpu).unwrap(),
                    Ok(digest),
                )
                .unwrap();
                let got = suite::block_on(c.classify(ImageInput::Encoded(&photo("coffee")), 5)).unwrap();
                assert_eq!(got.classes, want.classes);
                let short = LoadingModel::start_unread(model[..1000].to_vec(), &cpu).unwrap();
                let e = open(short, Ok(digest)).err().unwrap();
                assert!(matches!(e, EngineError::Integrity(_)), "{e:?}");
                // Not begun where the options alone send a model of this
                // size elsewhere: over the local budget with a remote, the
                // GPU asked for, or the remote.
                let over_budget = LoadOptions {
                    max_local_model_bytes: 1000,
                    remote: Some(RemoteConfig::new("http://127.0.0.1:9", "lite0")),
                    ..LoadOptions::default()
                };
                for options in [&over_budget, &gpu, &remote] {
                    let back = LoadingModel::start_unread(model.clone(), options).unwrap_err();
                    assert_eq!(back.len(), model.len());
                }
                // Under the budget, with the remote only a fallback, it is,
                // unless a GPU build puts the GPU in the running under auto.
                let within = LoadOptions {
                    max_local_model_bytes: model.len() as u64,
                    ..over_budget.clone()
                };
                let begun = LoadingModel::start_unread(model.clone(), &within).is_ok();
                assert_eq!(begun, !cfg!(feature = "webgpu"));
            });
        });
    });
}

#[test]
fn metadata_is_tf_servings() {
    let m = lite0().metadata();
    assert_eq!(m.model_spec.name, "efficientnet-lite0");
    let def = m.metadata.signature_def.get("serving_default").unwrap();
    assert_eq!(
        def.inputs["input"].tensor_shape.sizes(),
        Some(vec![-1, 3, 224, 224])
    );
    assert_eq!(def.outputs["logits"].tensor_shape.sizes(), Some(vec![-1, 1000]));
}
