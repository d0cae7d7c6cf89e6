//! [`TensorModel`]: a model that is not an image classifier, served on its
//! graph's own signature (TF Serving's `half_plus_two` rebuilt as ONNX).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::protocol::VersionSelector;
use edgeserve::protocol::{Code, Format, PredictRequest, Tensor};
use edgeserve::{Backend, BackendKind, LoadOptions, TensorModel};

fn half_plus_two() -> TensorModel {
    TensorModel::load(&edgeserve_testkit::onnx::half_plus_two(), &LoadOptions::default()).unwrap()
}

#[test]
fn predict_runs_on_the_graphs_signature_in_either_format() {
    let model = half_plus_two();
    assert_eq!(model.backend(), BackendKind::Cpu);
    for format in [Format::Row, Format::Columnar] {
        let mut request =
            PredictRequest::instances(Tensor::from_vec(vec![3], vec![1.0f32, 2.0, 5.0]).unwrap());
        request.format = format;
        let response = edgeserve_conformance::block_on(model.predict(request)).unwrap();
        assert_eq!(response.format, format);
        let y = response.outputs.get("y").unwrap();
        assert_eq!(y.shape(), [3]);
        assert_eq!(y.as_slice::<f32>().unwrap(), [2.5, 3.0, 4.5]);
    }
}

#[test]
fn metadata_is_the_graphs_signature_under_the_servers_name() {
    let metadata = half_plus_two().metadata("hpt", 7);
    assert_eq!(metadata.model_spec.name, "hpt");
    assert_eq!(metadata.model_spec.version, Some(VersionSelector::Number(7)));
    let def = metadata.metadata.signature_def.get("").unwrap();
    assert_eq!(def.method_name, "tensorflow/serving/predict");
    assert_eq!(def.inputs.keys().collect::<Vec<_>>(), ["x"]);
    assert_eq!(def.outputs.keys().collect::<Vec<_>>(), ["y"]);
}

#[test]
fn bad_requests_are_refused_by_name_and_the_model_goes_on() {
    let model = half_plus_two();
    let run = |request| edgeserve_conformance::block_on(model.predict(request));
    let named = |name: &str, t: Tensor| PredictRequest::named_inputs([(name.to_owned(), t)].into());
    let e = run(named("z", Tensor::from_vec(vec![1], vec![1.0f32]).unwrap())).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("z"), "{e}");
    let e = run(named("x", Tensor::from_vec(vec![1, 1], vec![1.0f32]).unwrap())).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = run(named("x", Tensor::from_vec(vec![1], vec![1i64]).unwrap())).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let ok = run(named("x", Tensor::from_vec(vec![1], vec![0.0f32]).unwrap())).unwrap();
    assert_eq!(ok.outputs["y"].as_slice::<f32>().unwrap(), [2.0]);
}

#[test]
fn only_the_cpu_loads_it_synchronously_and_no_classifier_manifest_fits_it() {
    let bytes = edgeserve_testkit::onnx::half_plus_two();
    let options = LoadOptions {
        backend: Backend::Webgpu,
        ..LoadOptions::default()
    };
    assert!(TensorModel::load(&bytes, &options).is_err());
    // A classifier needs an image input: a manifest cannot make this one.
    let manifest = edgeserve::derive_manifest(
        &bytes,
        &edgeserve::ManifestOptions {
            name: "hpt".into(),
            version: 1,
            file: "model.onnx".into(),
            preset: edgeserve::Preset::default(),
            size: None,
            output: None,
            labels: None,
        },
    );
    assert!(
        manifest
            .unwrap_err()
            .to_string()
            .contains("not an image classifier")
    );
}

#[test]
fn predict_json_reads_and_answers_tf_servings_json() {
    let model = half_plus_two();
    let run = |body: &str| edgeserve_conformance::block_on(model.predict_json(body.as_bytes()));
    let json = |body: Vec<u8>| serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    let rows = json(run(r#"{"instances": [1.0, 2.0, 5.0]}"#).unwrap());
    assert_eq!(rows, serde_json::json!({"predictions": [2.5, 3.0, 4.5]}));
    let columns = json(run(r#"{"inputs": {"x": [1.0, 2.0, 5.0]}}"#).unwrap());
    assert_eq!(columns, serde_json::json!({"outputs": [2.5, 3.0, 4.5]}));
    let e = run(r#"{"instances": [1.0, "two"]}"#).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = run(r#"{"signature_name": "regress_x_to_y", "instances": [1.0]}"#).unwrap_err();
    assert!(e.message().contains("regress_x_to_y"), "{e}");
}
