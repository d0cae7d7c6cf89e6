//! Manifests derived from graphs: what a classifier's graph says, and a
//! clear refusal for one that is not an image classifier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_engine::{LabelsSpec, ModelManifest, OutputKind, Preset};
use edgeserve_onnx::manifest::{ManifestOptions, derive};
use edgeserve_onnx::pb::tensor_shape_proto::dimension;
use edgeserve_onnx::pb::type_proto;
use edgeserve_testkit::onnx::{Graph, a_i, node, weight};
use edgeserve_vision::{Layout, Normalize, Resize};
use prost::Message;

fn options() -> ManifestOptions {
    ManifestOptions {
        name: "m".into(),
        version: 3,
        file: "m.onnx".into(),
        preset: Preset::Imagenet,
        size: None,
        output: None,
        labels: None,
    }
}

/// A classifier head over an input of `shape`: global pooling, a matrix
/// product to 5 classes, and a Softmax when `softmax`.
fn classifier(shape: Vec<usize>, softmax: bool) -> Graph {
    let mut nodes = vec![
        node("GlobalAveragePool", &["x"], "p", vec![]),
        node("Flatten", &["p"], "f", vec![a_i("axis", 1)]),
        node("MatMul", &["f", "w"], if softmax { "z" } else { "y" }, vec![]),
    ];
    if softmax {
        nodes.push(node("Softmax", &["z"], "y", vec![a_i("axis", 1)]));
    }
    let mut g = Graph::new(nodes, vec![("x", shape)]);
    g.inits.push(weight("w", &[3, 5], 1));
    g
}

/// `bytes` with the input's dimensions at `axes` made symbolic.
fn dynamic(bytes: &[u8], axes: &[usize]) -> Vec<u8> {
    let mut model = edgeserve_onnx::decode(bytes).unwrap();
    let input = &mut model.graph.as_mut().unwrap().input[0];
    let Some(type_proto::Value::TensorType(t)) = input.r#type.as_mut().unwrap().value.as_mut() else {
        unreachable!()
    };
    for &a in axes {
        t.shape.as_mut().unwrap().dim[a].value = Some(dimension::Value::DimParam(format!("d{a}")));
    }
    model.encode_to_vec()
}

#[test]
fn reads_an_nchw_classifier() {
    let bytes = dynamic(&classifier(vec![1, 3, 32, 48], false).bytes(), &[0]);
    let m = derive(&bytes, &options()).unwrap();
    assert_eq!((m.input.name.as_str(), m.input.layout), ("x", Layout::Nchw));
    assert_eq!((m.input.width, m.input.height), (48, 32));
    assert_eq!((m.output.name.as_str(), m.output.kind), ("y", OutputKind::Logits));
    assert_eq!(m.model.bytes, bytes.len() as u64);
    assert_eq!(m.model.sha256, edgeserve_engine::sha256_hex(&bytes));
    assert_eq!((m.name.as_str(), m.version), ("m", 3));
    // The crop fits the longer side: 48 · 256 / 224 = 54.9.
    assert_eq!(m.preprocessing.resize, Resize::ShorterSide { size: 55 });
    // What it writes reads back as the same manifest.
    assert_eq!(ModelManifest::from_json(m.to_json().as_bytes()).unwrap(), m);
}

#[test]
fn reads_nhwc_softmax_and_the_presets() {
    // NHWC: channels last, as TF/Keras exports. Pooling works on axis 1
    // only for NCHW, so this graph only needs to declare the shape.
    let g = Graph::new(
        vec![node("Softmax", &["x"], "y", vec![a_i("axis", 3)])],
        vec![("x", vec![1, 8, 8, 3])],
    );
    for (preset, want) in [
        (
            Preset::Imagenet,
            Normalize::MeanStd {
                mean: [123.675, 116.28, 103.53],
                std: [58.395, 57.12, 57.375],
            },
        ),
        (
            Preset::Inception,
            Normalize::MeanStd {
                mean: [127.5; 3],
                std: [127.5; 3],
            },
        ),
        (
            Preset::Raw,
            Normalize::ScaleOffset {
                scale: 1.0,
                offset: 0.0,
            },
        ),
    ] {
        let m = derive(&g.bytes(), &ManifestOptions { preset, ..options() }).unwrap();
        assert_eq!(m.input.layout, Layout::Nhwc);
        assert_eq!(m.output.kind, OutputKind::Probabilities);
        assert_eq!(m.preprocessing.normalize, want, "{preset:?}");
        assert_eq!(Preset::from_name(preset.name()).unwrap(), preset);
    }
    let e = Preset::from_name("torch").unwrap_err().to_string();
    assert!(
        e.contains("unknown preset \"torch\" (expected one of imagenet, inception, raw)"),
        "{e}"
    );
}

#[test]
fn dynamic_size_needs_size_and_static_size_is_kept() {
    let bytes = dynamic(&classifier(vec![1, 3, 32, 32], false).bytes(), &[0, 2, 3]);
    let e = derive(&bytes, &options()).unwrap_err().to_string();
    assert!(
        e.contains("has shape [?, 3, ?, ?], whose height is dynamic: give the size"),
        "{e}"
    );
    let m = derive(
        &bytes,
        &ManifestOptions {
            size: Some(96),
            ..options()
        },
    )
    .unwrap();
    assert_eq!((m.input.width, m.input.height), (96, 96));
    let fixed = classifier(vec![1, 3, 32, 32], false).bytes();
    let e = derive(
        &fixed,
        &ManifestOptions {
            size: Some(96),
            ..options()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("whose height is 32, not the size 96 asked for"), "{e}");
}

#[test]
fn refuses_what_is_not_an_image_classifier() {
    let two = Graph::new(
        vec![node("Add", &["a", "b"], "y", vec![])],
        vec![("a", vec![1, 3, 8, 8]), ("b", vec![1, 3, 8, 8])],
    );
    let e = derive(&two.bytes(), &options()).unwrap_err().to_string();
    assert!(
        e.contains("the graph has 2 inputs (\"a\", \"b\"); an image classifier takes one"),
        "{e}"
    );
    let flat = Graph::new(vec![node("Relu", &["x"], "y", vec![])], vec![("x", vec![1, 10])]);
    let e = derive(&flat.bytes(), &options()).unwrap_err().to_string();
    assert!(
        e.contains("has shape [1, 10] (2-D); an image input is 4-D"),
        "{e}"
    );
    let grey = classifier(vec![1, 1, 8, 8], false);
    let e = derive(&grey.bytes(), &options()).unwrap_err().to_string();
    assert!(
        e.contains("neither dimension 1 (NCHW) nor 3 (NHWC) is 3 RGB channels"),
        "{e}"
    );
    let mut outputs = classifier(vec![1, 3, 8, 8], false);
    outputs.outputs.push(("p".into(), None));
    let e = derive(&outputs.bytes(), &options()).unwrap_err().to_string();
    assert!(
        e.contains("the graph has 2 outputs (\"y\", \"p\"); name the class scores (--output NAME)"),
        "{e}"
    );
    let m = derive(
        &outputs.bytes(),
        &ManifestOptions {
            output: Some("p".into()),
            ..options()
        },
    )
    .unwrap();
    assert_eq!(m.output.name, "p");
    let e = derive(b"not onnx", &options()).unwrap_err().to_string();
    assert!(e.contains("not a readable ONNX model"), "{e}");
}

#[test]
fn labels_are_named_and_hashed_by_the_caller() {
    let labels = LabelsSpec {
        file: "labels.txt".into(),
        sha256: edgeserve_engine::sha256_hex(b"a\nb\n"),
    };
    let g = classifier(vec![1, 3, 8, 8], false);
    let m = derive(
        &g.bytes(),
        &ManifestOptions {
            labels: Some(labels.clone()),
            ..options()
        },
    )
    .unwrap();
    assert_eq!(m.labels, Some(labels));
    // A name that is not a plain file name is refused, as in any manifest.
    let bad = LabelsSpec {
        file: "../labels.txt".into(),
        ..m.labels.unwrap()
    };
    let e = derive(
        &g.bytes(),
        &ManifestOptions {
            labels: Some(bad),
            ..options()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("must be a plain file name"), "{e}");
}
