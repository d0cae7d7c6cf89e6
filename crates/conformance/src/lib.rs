//! The conformance suite every backend runs unchanged (as tract's `test-rt`
//! suites and burn's per-backend test macros do): whole-model outputs against
//! onnxruntime's reference logits, batching, and request checking. Each check
//! takes a `&dyn Engine` and panics with a precise message on failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_engine::{Engine, EngineError};
use edgeserve_protocol::{Code, DataType, Format, Inputs, PredictRequest, Tensor};
use std::collections::BTreeMap;

pub mod zoo;

pub use edgeserve_testkit::{repo_dir, shared, shared_dir};

#[doc(hidden)]
pub use edgeserve_engine as __engine;

/// The bundled default model's bytes.
pub fn bundled_lite0() -> Vec<u8> {
    bundled("efficientnet-lite0")
}

/// The bytes of a model the repository carries, by its directory under
/// `models/` (`efficientnet-lite0`, `efficientnet-lite2`).
pub fn bundled(model: &str) -> Vec<u8> {
    let path = repo_dir().join(format!("models/{model}/{model}.onnx"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The exact preprocessed input of a fixture photo, `[1, 3, size, size]`.
pub fn fixture_input(image: &str, size: usize) -> Tensor {
    let bytes = shared(&format!("fixtures/inputs/{image}_{size}_nchw_f32le.bin"));
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_vec(vec![1, 3, size, size], v).unwrap()
}

fn reference() -> serde_json::Value {
    serde_json::from_slice(&shared("fixtures/reference_onnxruntime.json")).unwrap()
}

/// onnxruntime's logits for `image` on the model file `model` (a key of
/// `reference_onnxruntime.json`, e.g. `efficientnet-lite0.onnx`).
pub fn reference_logits(model: &str, image: &str) -> Vec<f32> {
    reference()["models"][model]["results"][image]["logits"]
        .as_array()
        .unwrap_or_else(|| panic!("no reference logits for {model} / {image}"))
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// onnxruntime's top-5 class indices.
pub fn reference_top5(model: &str, image: &str) -> Vec<usize> {
    let r = reference();
    let top5 = r["models"][model]["results"][image]["top5"].as_array();
    match top5 {
        Some(list) => list
            .iter()
            .map(|e| e["index"].as_u64().unwrap() as usize)
            .collect(),
        None => top_k_indices(&reference_logits(model, image), 5),
    }
}

/// Indices of the `k` largest values, largest first.
pub fn top_k_indices(v: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    idx.truncate(k);
    idx
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Blocks on a future, parking the thread while it waits (a remote backend
/// waits on the network; spinning would take a core from the server).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

fn logits_of(engine: &dyn Engine, input: Tensor) -> Vec<f32> {
    let response = block_on(engine.predict(PredictRequest::instances(input))).unwrap();
    assert_eq!(response.format, Format::Row);
    let out = &response.outputs["logits"];
    out.as_slice::<f32>().unwrap().to_vec()
}

/// The model's logits for both fixture photos match onnxruntime's within
/// `tolerance` (max abs), with the same top-5, through a TF Serving request.
pub fn reference_logits_match(engine: &dyn Engine, model: &str, size: usize, tolerance: f32) {
    for image in ["chelsea", "coffee"] {
        let got = logits_of(engine, fixture_input(image, size));
        let want = reference_logits(model, image);
        let diff = max_abs_diff(&got, &want);
        eprintln!(
            "{} {model} {image}: max abs diff vs onnxruntime {diff:.2e}",
            engine.kind()
        );
        assert!(
            diff <= tolerance,
            "{model} {image}: max abs diff {diff} > {tolerance}"
        );
        assert_eq!(
            top_k_indices(&got, 5),
            reference_top5(model, image),
            "{model} {image}: top-5 differs"
        );
    }
}

/// A batch of two gives the same outputs as two single runs.
pub fn batch_equals_singles(engine: &dyn Engine, size: usize) {
    let a = fixture_input("chelsea", size);
    let b = fixture_input("coffee", size);
    let single_a = logits_of(engine, a.clone());
    let single_b = logits_of(engine, b.clone());
    let batch = Tensor::stack(vec![a.row(0).unwrap(), b.row(0).unwrap()]).unwrap();
    let both = logits_of(engine, batch);
    assert_eq!(both.len(), 2000);
    let (da, db) = (
        max_abs_diff(&both[..1000], &single_a),
        max_abs_diff(&both[1000..], &single_b),
    );
    assert!(da <= 1e-4 && db <= 1e-4, "batch vs single: {da}, {db}");
}

fn request_error(engine: &dyn Engine, request: PredictRequest) -> EngineError {
    block_on(engine.predict(request)).expect_err("the request should have been refused")
}

/// Requests that do not fit the signature are refused with
/// `INVALID_ARGUMENT` errors that name the tensor and what was expected.
pub fn bad_requests_are_refused(engine: &dyn Engine, size: usize) {
    let good = fixture_input("coffee", size);
    let named = |name: &str, t: Tensor| PredictRequest {
        signature_name: None,
        format: Format::Columnar,
        inputs: Inputs::Named(BTreeMap::from([(name.to_owned(), t)])),
    };
    let e = request_error(engine, named("image", good.clone()));
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.to_string().contains("Missing but required: {input}"), "{e}");

    let ints = Tensor::from_vec(good.shape().to_vec(), vec![0i32; good.len()]).unwrap();
    let e = request_error(engine, named("input", ints));
    assert_eq!(e.to_string(), "Input input: expects dtype float but got int32");

    let nhwc = Tensor::from_vec(vec![1, size, size, 3], vec![0f32; good.len()]).unwrap();
    let e = request_error(engine, named("input", nhwc));
    assert!(e.to_string().starts_with("Input input: expects shape ["), "{e}");
    assert!(
        e.to_string().ends_with(&format!("but got [1,{size},{size},3]")),
        "{e}"
    );

    let mut wrong_sig = PredictRequest::instances(good);
    wrong_sig.signature_name = Some("nope".into());
    let e = request_error(engine, wrong_sig);
    assert_eq!(
        e.to_string(),
        "Serving signature name: \"nope\" not found in signature def"
    );
    assert_eq!(engine.signature().inputs[0].dtype, DataType::Float);
}

/// A run under a cancelled [`cancel`](edgeserve_engine::cancel) token stops
/// at the backend's first checkpoint with [`EngineError::Cancelled`] (what a
/// server's deadline relies on to free the worker), and the engine answers
/// the next request outside that scope as before.
pub fn cancelled_run_stops_and_the_engine_still_answers(engine: &dyn Engine, size: usize) {
    use edgeserve_engine::cancel::{self, CancelToken};
    let token = CancelToken::new();
    token.cancel();
    let input = fixture_input("coffee", size);
    let e = cancel::scope(&token, || {
        block_on(engine.predict(PredictRequest::instances(input.clone())))
    })
    .expect_err("a cancelled run should stop");
    assert!(matches!(e, EngineError::Cancelled), "{e}");
    assert_eq!(e.code(), Code::DeadlineExceeded);
    // A live token does not stop anything.
    let live = CancelToken::new();
    let logits = cancel::scope(&live, || logits_of(engine, input));
    assert_eq!(logits.len(), 1000);
}

/// The whole-model tests every local backend runs unchanged: Lite0 against
/// onnxruntime, its signature, batch vs single runs, refused requests, the
/// fp16 model, Lite2, and a cancelled run. `$load` turns model bytes into an engine (a
/// `Result<impl Engine, EngineError>`); it is called once for Lite0.
#[macro_export]
macro_rules! local_backend_suite {
    ($engine:ty, $load:expr) => {
        fn lite0() -> &'static $engine {
            static E: std::sync::OnceLock<$engine> = std::sync::OnceLock::new();
            E.get_or_init(|| ($load)(&$crate::bundled_lite0()).unwrap())
        }

        #[test]
        fn lite0_matches_onnxruntime() {
            $crate::reference_logits_match(lite0(), "efficientnet-lite0.onnx", 224, 1e-3);
        }

        #[test]
        fn lite0_signature_has_a_free_batch_dimension() {
            let s = $crate::__engine::Engine::signature(lite0());
            assert_eq!(s.inputs[0].name, "input");
            assert_eq!(s.inputs[0].shape, vec![None, Some(3), Some(224), Some(224)]);
            assert_eq!(s.outputs[0].name, "logits");
            assert_eq!(s.outputs[0].shape, vec![None, Some(1000)]);
        }

        #[test]
        fn lite0_batch_of_two_equals_two_single_runs() {
            $crate::batch_equals_singles(lite0(), 224);
        }

        #[test]
        fn lite0_refuses_requests_that_do_not_fit() {
            $crate::bad_requests_are_refused(lite0(), 224);
        }

        #[test]
        fn lite0_cancelled_run_stops_and_the_engine_still_answers() {
            $crate::cancelled_run_stops_and_the_engine_still_answers(lite0(), 224);
        }

        #[test]
        fn fp16_model_loads_and_gives_the_same_top5() {
            let e = ($load)(&$crate::shared("models/efficientnet-lite0-fp16.onnx")).unwrap();
            // f16 weights widened to f32: within the fp16 model's own distance from fp32.
            $crate::reference_logits_match(&e, "efficientnet-lite0-fp16.onnx", 224, 0.03);
        }

        #[test]
        fn lite2_matches_onnxruntime() {
            let e = ($load)(&$crate::bundled("efficientnet-lite2")).unwrap();
            assert_eq!(
                $crate::__engine::Engine::signature(&e).inputs[0].shape,
                vec![Some(1), Some(3), Some(260), Some(260)]
            );
            $crate::reference_logits_match(&e, "efficientnet-lite2.onnx", 260, 1e-3);
        }
    };
}
