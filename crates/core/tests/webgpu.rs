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

/// A machine without a GPU driver: this test runs itself again in a child
/// process whose Vulkan loader and EGL (the two APIs wgpu tries here) are
/// pointed at driver lists that do not exist, so wgpu finds no adapter.
/// (The device is acquired once per process, hence the child.)
#[test]
fn without_an_adapter_webgpu_is_unavailable_and_auto_keeps_the_cpu_saying_why() {
    const NAME: &str = "without_an_adapter_webgpu_is_unavailable_and_auto_keeps_the_cpu_saying_why";
    if std::env::var_os("EDGESERVE_TEST_NO_GPU").is_none() {
        let missing = "/nonexistent/edgeserve-no-driver.json";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture"])
            .env("EDGESERVE_TEST_NO_GPU", "1")
            .env("VK_ICD_FILENAMES", missing)
            .env("VK_DRIVER_FILES", missing)
            .env("__EGL_VENDOR_LIBRARY_FILENAMES", missing)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }

    let e = suite::block_on(edgeserve_webgpu::adapter()).unwrap_err();
    let EngineError::Unavailable { backend, reason } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*backend, BackendKind::Webgpu);
    assert!(reason.starts_with("no WebGPU-capable adapter"), "{reason}");

    let e = open(&with(Backend::Webgpu)).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!("the webgpu backend is unavailable: {reason}")
    );

    let c = open(&with(Backend::Auto)).unwrap();
    let r = suite::block_on(c.classify(ImageInput::Encoded(&coffee()), 1)).unwrap();
    assert_eq!(r.report.backend, BackendKind::Cpu);
    assert_eq!(r.report.why, Why::NoRemote);
    assert_eq!(
        r.report.to_string(),
        format!("cpu: auto: no remote is configured; local backends: cpu loaded, webgpu could not run: {e}")
    );
    assert_eq!(r.classes[0].label.as_deref(), Some("espresso"));
}

/// A zoo model under `auto`, with the manifest `edgeserve serve` would derive.
fn open_auto(model: &edgeserve_conformance::zoo::ZooModel, bytes: &[u8]) -> Classifier {
    use edgeserve::{ManifestOptions, Preset, derive_manifest};
    let manifest = derive_manifest(
        bytes,
        &ManifestOptions {
            name: model.family.clone(),
            version: 1,
            file: model.file.clone(),
            preset: Preset::Imagenet,
            size: None,
            output: None,
            labels: None,
        },
    )
    .unwrap();
    suite::block_on(Classifier::open(
        Some(bytes),
        manifest.to_json().as_bytes(),
        None,
        &LoadOptions::default(),
    ))
    .unwrap_or_else(|e| panic!("{}: {e}", model.file))
}

/// Why the GPU could not run the model `auto` loaded into `c`, if it could not.
fn gpu_refusal(c: &Classifier) -> Option<String> {
    let choice = c.local_choice_at_load().expect("auto records its choice");
    let gpu = choice
        .candidates
        .iter()
        .find(|c| c.backend == BackendKind::Webgpu)
        .unwrap();
    gpu.error.clone()
}

/// Both photos through `c`: the report names the backend that ran, and the
/// logits are onnxruntime's within the model's bound.
fn assert_answers_as_onnxruntime(c: &Classifier, model: &edgeserve_conformance::zoo::ZooModel) {
    use edgeserve::protocol::PredictRequest;
    for image in suite::zoo::IMAGES {
        let (response, report) =
            suite::block_on(c.predict_with_report(PredictRequest::instances(model.input(image)))).unwrap();
        assert_eq!(report.backend, c.backend());
        let got = response.outputs["logits"].as_slice::<f32>().unwrap();
        if let Err(why) = suite::zoo::compare(model, image, got) {
            panic!("{} on {}: {why}", model.file, c.backend());
        }
    }
}

/// Every zoo model under `auto` runs where `auto` put it and answers as
/// onnxruntime does; the GPU refuses none of them (were it to, the choice
/// must name an op the model has, and the CPU must run it).
#[test]
fn auto_runs_every_zoo_model_on_a_backend_that_can_and_names_the_op_otherwise() {
    use suite::zoo;
    let (mut on_gpu, mut refused) = (0, 0);
    for model in zoo::models() {
        let c = open_auto(&model, &model.read());
        match &gpu_refusal(&c) {
            Some(error) => {
                assert_eq!(c.backend(), BackendKind::Cpu, "{}", model.file);
                let op = error
                    .strip_prefix("unsupported operator ")
                    .and_then(|rest| rest.split([' ', '(']).next())
                    .unwrap_or_else(|| panic!("{}: the GPU's refusal names no op: {error}", model.file));
                assert!(model.ops.iter().any(|o| o == op), "{}: {error}", model.file);
                refused += 1;
            }
            None => on_gpu += usize::from(c.backend() == BackendKind::Webgpu),
        }
        assert_answers_as_onnxruntime(&c, &model);
    }
    // Where both load, `auto` keeps the faster: on lavapipe that is the CPU.
    eprintln!("auto over the zoo: {refused} refused by the GPU and run on the CPU, {on_gpu} kept on the GPU");
    assert_eq!(
        refused, 0,
        "the GPU runs every zoo model (crates/webgpu/tests/zoo.rs)"
    );
}

/// A model with an op the GPU has no kernel for (ResNet's logits passed
/// through `Sign(x)·Abs(x)`, the same numbers): `auto` runs it on the CPU,
/// its choice names the op, and the answer is still onnxruntime's.
#[test]
fn auto_takes_the_cpu_for_a_model_with_an_op_the_gpu_lacks_and_names_the_op() {
    use edgeserve_onnx::pb::{ModelProto, NodeProto};
    use prost::Message;
    let model = suite::zoo::models()
        .into_iter()
        .find(|m| m.file == "resnet-basic.onnx")
        .unwrap();
    let mut proto = ModelProto::decode(&model.read()[..]).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    for output in graph.node.iter_mut().flat_map(|n| n.output.iter_mut()) {
        if output == "logits" {
            *output = "raw".into();
        }
    }
    let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|i| i.to_string()).collect(),
        output: vec![output.into()],
        ..NodeProto::default()
    };
    graph.node.push(node("Sign", &["raw"], "sign"));
    graph.node.push(node("Abs", &["raw"], "abs"));
    graph.node.push(node("Mul", &["sign", "abs"], "logits"));
    let c = open_auto(&model, &proto.encode_to_vec());
    assert_eq!(c.backend(), BackendKind::Cpu);
    let error = gpu_refusal(&c).expect("the GPU refused the model");
    assert!(
        error.starts_with("unsupported operator Sign (") && error.contains("(node \"sign\")"),
        "{error}"
    );
    assert_answers_as_onnxruntime(&c, &model);
}
