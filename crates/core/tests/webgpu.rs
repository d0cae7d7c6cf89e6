//! Choosing between the CPU and the GPU: `auto` measures both and keeps the
//! faster, says so in every report, and takes the CPU, with the GPU's
//! reason, when the GPU cannot run the model; `webgpu` alone runs on the GPU
//! or fails. Natively the GPU is wgpu's Vulkan (lavapipe on this machine).

#![cfg(all(feature = "webgpu", not(target_arch = "wasm32")))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::{Backend, BackendKind, Classifier, EngineError, ImageInput, LoadOptions, Why};
use edgeserve_conformance as suite;

fn bundled(file: &str) -> Vec<u8> {
    std::fs::read(suite::repo_dir().join("models/efficientnet-lite0").join(file)).unwrap()
}

fn open(options: &LoadOptions) -> Result<Classifier, EngineError> {
    let labels = String::from_utf8(bundled("imagenet_labels.txt")).unwrap();
    suite::block_on(Classifier::open(
        Some(&suite::bundled_lite0()),
        &bundled("manifest.json"),
        Some(&labels),
        options,
    ))
}

fn coffee() -> Vec<u8> {
    suite::shared("fixtures/images/coffee_orig.png")
}

fn with(backend: Backend) -> LoadOptions {
    LoadOptions {
        backend,
        ..LoadOptions::default()
    }
}

#[test]
fn webgpu_classifies_coffee_as_espresso_and_says_it_ran() {
    let c = open(&with(Backend::Webgpu)).unwrap();
    assert_eq!(c.backend(), BackendKind::Webgpu);
    let r = suite::block_on(c.classify(ImageInput::Encoded(&coffee()), 5)).unwrap();
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));
    assert_eq!(r.report.backend, BackendKind::Webgpu);
    assert_eq!(r.report.why, Why::Requested);
    assert_eq!(r.report.local, None);
    assert!(r.report.timings.inference_ms > 0.0);
}

#[test]
fn auto_measures_both_local_backends_and_keeps_the_faster() {
    let c = open(&LoadOptions::default()).unwrap();
    let choice = c.local_choice_at_load().expect("auto records its choice").clone();
    assert_eq!(choice.candidates.len(), 2);
    let kept = &choice.candidates[0];
    let other = &choice.candidates[1];
    assert_eq!(kept.backend, c.backend());
    let (a, b) = (kept.run_ms.unwrap(), other.run_ms.unwrap());
    assert!(a <= b, "kept {a} ms over {b} ms");
    eprintln!("auto: {choice}");
    let r = suite::block_on(c.classify(ImageInput::Encoded(&coffee()), 1)).unwrap();
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));
    assert_eq!(r.report.local, Some(choice));
    let text = r.report.to_string();
    assert!(text.contains("; local backends: "), "{text}");
    assert!(text.contains(" ms, "), "{text}");
}

#[test]
fn auto_takes_the_cpu_with_the_reason_when_the_model_is_over_the_gpu_limits() {
    let c = open(&LoadOptions {
        gpu_max_tensor_bytes: Some(1_000_000),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(c.backend(), BackendKind::Cpu);
    let choice = c.local_choice_at_load().unwrap();
    assert_eq!(choice.candidates[0].backend, BackendKind::Cpu);
    assert_eq!(
        choice.candidates[0].run_ms, None,
        "nothing to compare, nothing timed"
    );
    let gpu = &choice.candidates[1];
    assert_eq!(gpu.backend, BackendKind::Webgpu);
    let error = gpu.error.as_deref().unwrap();
    assert!(
        error.starts_with("the webgpu backend is unavailable: tensor "),
        "{error}"
    );
    assert!(
        error.contains("over the adapter's limit of 1000000 bytes"),
        "{error}"
    );
    let r = suite::block_on(c.classify(ImageInput::Encoded(&coffee()), 1)).unwrap();
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));
    assert!(
        r.report
            .to_string()
            .contains("webgpu could not run: the webgpu backend is unavailable"),
        "{}",
        r.report
    );
}

#[test]
fn webgpu_alone_fails_with_the_reason_instead_of_falling_back() {
    let e = open(&LoadOptions {
        gpu_max_tensor_bytes: Some(1_000_000),
        ..with(Backend::Webgpu)
    })
    .err()
    .expect("an explicit backend never falls back");
    assert!(
        matches!(
            e,
            EngineError::Unavailable {
                backend: BackendKind::Webgpu,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn the_synchronous_load_refuses_webgpu() {
    let labels = String::from_utf8(bundled("imagenet_labels.txt")).unwrap();
    let e = Classifier::load(
        &suite::bundled_lite0(),
        &bundled("manifest.json"),
        Some(&labels),
        &with(Backend::Webgpu),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("use Classifier::open"), "{e}");
}
