//! The CPU path compiled to wasm32 (with simd128) and run under Node by
//! `wasm-bindgen-test-runner`: the bundled model classifies the coffee photo.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::{BackendKind, Classifier, ImageInput, LoadOptions};
use wasm_bindgen_test::wasm_bindgen_test;

const MODEL: &[u8] = include_bytes!("../../../models/efficientnet-lite0/efficientnet-lite0.onnx");
const MANIFEST: &[u8] = include_bytes!("../../../models/efficientnet-lite0/manifest.json");
const LABELS: &str = include_str!("../../../models/efficientnet-lite0/imagenet_labels.txt");
const COFFEE: &[u8] = include_bytes!("../../../www/samples/coffee_orig.png");

#[wasm_bindgen_test]
async fn coffee_is_espresso_in_wasm() {
    let c = Classifier::load(MODEL, MANIFEST, Some(LABELS), &LoadOptions::default()).unwrap();
    let r = c.classify(ImageInput::Encoded(COFFEE), 5).await.unwrap();
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));
    assert!(r.classes[0].score > 0.9, "{}", r.classes[0].score);
    assert_eq!(r.report.backend, BackendKind::Cpu);
}

#[wasm_bindgen_test]
async fn a_broken_image_is_an_error_not_a_trap() {
    let c = Classifier::load(MODEL, MANIFEST, Some(LABELS), &LoadOptions::default()).unwrap();
    let e = c
        .classify(ImageInput::Encoded(&COFFEE[..1000]), 5)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("PNG"), "{e}");
}
