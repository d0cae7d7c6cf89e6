//! The wasm memory a Lite0 load and one classification take, under Node.
//! An edge isolate has 128 MB in all and issue 7 budgets 64 MB of wasm
//! memory; wasm memory never shrinks, so the peak is what stays. Alone in
//! its test binary: another test run first would have grown the memory
//! already.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::{Classifier, ImageInput, LoadOptions};
use std::arch::wasm32::memory_size;
use wasm_bindgen_test::wasm_bindgen_test;

const MODEL: &[u8] = include_bytes!("../../../models/efficientnet-lite0/efficientnet-lite0.onnx");
const MANIFEST: &[u8] = include_bytes!("../../../models/efficientnet-lite0/manifest.json");
const LABELS: &str = include_str!("../../../models/efficientnet-lite0/imagenet_labels.txt");
const CHELSEA: &[u8] = include_bytes!("../../../www/samples/chelsea_orig.png");

const MB: usize = 1_000_000;
/// The edge package's wasm memory at instantiation (measured on the edge
/// build: 2.9 MB), which the 64 MB holds besides what loading adds.
const AT_INSTANTIATION: usize = 3 * MB;
const BUDGET: usize = 64 * MB;

fn memory_bytes() -> usize {
    memory_size(0) * 65_536
}

#[wasm_bindgen_test]
async fn lite0_loads_and_classifies_within_the_edge_memory_budget() {
    let before = memory_bytes();
    // As the package hands it over: the file copied into wasm memory, owned
    // by the load, which frees it once decoded.
    let model = MODEL.to_vec();
    let c = Classifier::open_owned(Some(model), MANIFEST, Some(LABELS), &LoadOptions::default())
        .await
        .unwrap();
    let loaded = memory_bytes() - before;
    let r = c.classify(ImageInput::Encoded(CHELSEA), 5).await.unwrap();
    assert_eq!(r.classes[0].label.as_deref(), Some("tiger cat"));
    let grown = memory_bytes() - before;
    let mb = |b: usize| b as f64 / MB as f64;
    wasm_bindgen_test::console_log!(
        "wasm memory grew {:.1} MB loading Lite0 ({:.1} MB file), {:.1} MB with one classification",
        mb(loaded),
        mb(MODEL.len()),
        mb(grown)
    );
    assert!(
        AT_INSTANTIATION + grown < BUDGET,
        "loading Lite0 and classifying grew wasm memory by {:.1} MB: with the {:.1} MB at instantiation that is over {:.0} MB",
        mb(grown),
        mb(AT_INSTANTIATION),
        mb(BUDGET)
    );
}
