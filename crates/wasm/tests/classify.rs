//! The bindings from wasm: the bundled Lite0 classifies the coffee and
//! chelsea photos with onnxruntime's top-5, through the same exports the
//! npm package calls. Runs under Node and, with `WASM_BINDGEN_USE_BROWSER=1`
//! and chromedriver, in headless Chromium (`./x test` does both).

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_wasm::RawClassifier;
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const MODEL: &[u8] = include_bytes!("../../../models/efficientnet-lite0/efficientnet-lite0.onnx");
const MANIFEST: &str = include_str!("../../../models/efficientnet-lite0/manifest.json");
const LABELS: &str = include_str!("../../../models/efficientnet-lite0/imagenet_labels.txt");
const COFFEE: &[u8] = include_bytes!("../../../www/samples/coffee_orig.png");
const CHELSEA: &[u8] = include_bytes!("../../../www/samples/chelsea_orig.png");
const REFERENCE: &str = include_str!("../../../../shared/fixtures/reference_onnxruntime.json");

async fn open() -> RawClassifier {
    RawClassifier::open(
        Some(Uint8Array::from(MODEL)),
        MANIFEST.into(),
        Some(LABELS.into()),
        JsValue::UNDEFINED,
        None,
    )
    .await
    .map_err(|e| format!("{e:?}"))
    .unwrap()
}

async fn classify(c: &RawClassifier, image: JsValue) -> Result<serde_json::Value, JsValue> {
    let promise = c.classify(image, 5.into(), None)?;
    let out = JsFuture::from(promise).await?;
    let text = js_sys::JSON::stringify(&out).unwrap();
    Ok(serde_json::from_str(&String::from(text)).unwrap())
}

#[wasm_bindgen_test]
async fn coffee_and_chelsea_match_onnxruntimes_top5() {
    let c = open().await;
    let reference: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    for (name, photo) in [("coffee", COFFEE), ("chelsea", CHELSEA)] {
        let got = classify(&c, Uint8Array::from(photo).into()).await.unwrap();
        let want = &reference["models"]["efficientnet-lite0.onnx"]["results"][name]["top5"];
        for i in 0..5 {
            assert_eq!(got["classes"][i]["index"], want[i]["index"], "{name} #{i}");
            assert_eq!(got["classes"][i]["label"], want[i]["label"], "{name} #{i}");
            let (g, w) = (
                got["classes"][i]["score"].as_f64().unwrap(),
                want[i]["prob"].as_f64().unwrap(),
            );
            assert!((g - w).abs() < 1e-3, "{name} #{i}: {g} vs {w}");
        }
        assert_eq!(got["report"]["backend"], "cpu");
    }
}

#[wasm_bindgen_test]
async fn bad_images_are_errors_with_codes_and_the_classifier_goes_on() {
    let c = open().await;
    for bad in [
        JsValue::NULL,
        JsValue::from_str("coffee.png"),
        Uint8Array::from(&COFFEE[..100]).into(),
    ] {
        let e = classify(&c, bad).await.unwrap_err();
        let code = Reflect::get(&e, &"code".into()).unwrap();
        assert_eq!(code.as_string().as_deref(), Some("invalid_image"), "{e:?}");
        assert!(e.is_instance_of::<js_sys::Error>());
    }
    let got = classify(&c, Uint8Array::from(COFFEE).into()).await.unwrap();
    assert_eq!(got["classes"][0]["label"], "espresso");
}
