//! The remote path compiled to wasm32 and run under Node: the client's
//! `fetch` transport talks to a real `edgeserve serve` process serving
//! EfficientNet-Lite2, which `./x test` starts on 127.0.0.1 and stops by its
//! pid, passing its URL in `EDGESERVE_REMOTE_URL`. Lite2 is over the default
//! local budget, so `auto` sends the chelsea photo to it.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::{BackendKind, Classifier, ImageInput, LoadOptions, RemoteConfig};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

const MANIFEST: &[u8] = include_bytes!("../../../models/efficientnet-lite2/manifest.json");
const LABELS: &str = include_str!("../../../models/efficientnet-lite2/imagenet_labels.txt");
const CHELSEA: &[u8] = include_bytes!("../../../www/samples/chelsea_orig.png");
const REFERENCE: &str = include_str!("../../../../shared/fixtures/reference_onnxruntime.json");

#[wasm_bindgen(inline_js = "export function remote_url() { \
    return (typeof process !== 'undefined' && process.env.EDGESERVE_REMOTE_URL) || ''; } \
    export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }")]
extern "C" {
    fn remote_url() -> String;
    fn sleep(ms: u32) -> js_sys::Promise;
}

#[wasm_bindgen_test]
async fn lite2_runs_remotely_from_wasm_with_onnxruntimes_top5() {
    let url = remote_url();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "EDGESERVE_REMOTE_URL is {url:?}: run this test through ./x test, which starts the server"
    );
    let options = LoadOptions {
        remote: Some(RemoteConfig::new(url, "efficientnet-lite2")),
        ..LoadOptions::default()
    };
    let c = Classifier::open(None, MANIFEST, Some(LABELS), &options)
        .await
        .unwrap();
    let r = c.classify(ImageInput::Encoded(CHELSEA), 5).await.unwrap();
    assert_eq!(r.report.backend, BackendKind::Remote);
    assert_eq!(
        r.report.to_string(),
        "remote: model 24.3 MB > local budget 20.0 MB"
    );
    let reference: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    let want: Vec<u64> = reference["models"]["efficientnet-lite2.onnx"]["results"]["chelsea"]["top5"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    let got: Vec<u64> = r.classes.iter().map(|c| c.index as u64).collect();
    assert_eq!(got, want);
}

#[wasm_bindgen_test]
async fn an_unreachable_remote_is_a_typed_error_not_a_trap() {
    // Port 1 (tcpmux): nothing listens there on any machine this runs on.
    let mut config = RemoteConfig::new("http://127.0.0.1:1", "efficientnet-lite2");
    config.retry.max_retries = 1;
    config.retry.initial_backoff = std::time::Duration::from_millis(10);
    let options = LoadOptions {
        remote: Some(config),
        ..LoadOptions::default()
    };
    let e = Classifier::open(None, MANIFEST, Some(LABELS), &options)
        .await
        .err()
        .unwrap();
    let text = e.to_string();
    assert!(
        text.contains("metadata (GET http://127.0.0.1:1/v1/models/efficientnet-lite2/metadata): cannot connect after 2 attempt(s)"),
        "{text}"
    );
}

#[wasm_bindgen_test]
async fn a_dropped_call_is_cancelled_cleanly() {
    let mut config = RemoteConfig::new(remote_url(), "efficientnet-lite2");
    config.timeout = std::time::Duration::from_millis(100);
    let options = LoadOptions {
        remote: Some(config),
        ..LoadOptions::default()
    };
    let c = Classifier::open(None, MANIFEST, Some(LABELS), &options)
        .await
        .unwrap();
    // Started (the fetch is sent on the first poll), then dropped.
    let mut call = Box::pin(c.classify(ImageInput::Encoded(CHELSEA), 5));
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx).is_pending())).await;
    assert!(first, "a remote call cannot finish without waiting");
    drop(call);
    // Past the dropped call's timeout: its timer must not fire into freed
    // memory (Node would die of the uncaught error), and the classifier
    // keeps working.
    wasm_bindgen_futures::JsFuture::from(sleep(300)).await.unwrap();
    let mut config = RemoteConfig::new(remote_url(), "efficientnet-lite2");
    config.timeout = std::time::Duration::from_secs(60);
    let c = Classifier::open(
        None,
        MANIFEST,
        Some(LABELS),
        &LoadOptions {
            remote: Some(config),
            ..LoadOptions::default()
        },
    )
    .await
    .unwrap();
    let r = c.classify(ImageInput::Encoded(CHELSEA), 1).await.unwrap();
    assert_eq!(r.report.backend, BackendKind::Remote);
}
