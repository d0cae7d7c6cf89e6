//! The CPU backend against the shared conformance suite and onnxruntime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance as suite;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{Engine, EngineError};
use std::sync::OnceLock;

fn lite0() -> &'static CpuEngine {
    static E: OnceLock<CpuEngine> = OnceLock::new();
    E.get_or_init(|| CpuEngine::load(&suite::bundled_lite0(), &CpuOptions::default()).unwrap())
}

#[test]
fn lite0_matches_onnxruntime() {
    suite::reference_logits_match(lite0(), "efficientnet-lite0.onnx", 224, 1e-3);
}

#[test]
fn lite0_signature_has_a_free_batch_dimension() {
    let s = lite0().signature();
    assert_eq!(s.inputs[0].name, "input");
    assert_eq!(s.inputs[0].shape, vec![None, Some(3), Some(224), Some(224)]);
    assert_eq!(s.outputs[0].name, "logits");
    assert_eq!(s.outputs[0].shape, vec![None, Some(1000)]);
}

#[test]
fn lite0_batch_of_two_equals_two_single_runs() {
    suite::batch_equals_singles(lite0(), 224);
}

#[test]
fn lite0_refuses_requests_that_do_not_fit() {
    suite::bad_requests_are_refused(lite0(), 224);
}

#[test]
fn fp16_model_loads_and_gives_the_same_top5() {
    let bytes = suite::shared("models/efficientnet-lite0-fp16.onnx");
    let e = CpuEngine::load(&bytes, &CpuOptions::default()).unwrap();
    // f16 weights widened to f32: within the fp16 model's own distance from fp32.
    suite::reference_logits_match(&e, "efficientnet-lite0-fp16.onnx", 224, 0.03);
}

#[test]
fn lite2_matches_onnxruntime() {
    let e = CpuEngine::load(&suite::bundled("efficientnet-lite2"), &CpuOptions::default()).unwrap();
    assert_eq!(
        e.signature().inputs[0].shape,
        vec![Some(1), Some(3), Some(260), Some(260)]
    );
    suite::reference_logits_match(&e, "efficientnet-lite2.onnx", 260, 1e-3);
}

fn load_error(bytes: &[u8]) -> EngineError {
    match CpuEngine::load(bytes, &CpuOptions::default()) {
        Ok(_) => panic!("loading should have failed"),
        Err(e) => e,
    }
}

#[test]
fn broken_models_are_typed_errors() {
    let lite0 = suite::bundled_lite0();
    let e = load_error(&lite0[..lite0.len() / 2]);
    assert!(matches!(e, EngineError::InvalidModel(_)), "{e:?}");
    assert!(e.to_string().starts_with("invalid model: "), "{e}");

    let png = suite::shared("fixtures/images/coffee_224.png");
    let e = load_error(&png);
    assert!(matches!(e, EngineError::InvalidModel(_)), "{e:?}");

    let e = load_error(b"");
    assert!(matches!(e, EngineError::InvalidModel(_)), "{e:?}");
}

#[test]
fn an_unsupported_operator_is_named_at_load() {
    use prost::Message;
    use tract_onnx::pb::ModelProto;
    let mut proto = ModelProto::decode(&suite::bundled_lite0()[..]).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    graph.node[3].op_type = "FancyConv".into();
    let name = graph.node[3].name.clone();
    let e = load_error(&proto.encode_to_vec());
    match e {
        EngineError::UnsupportedOp { op, node, .. } => assert_eq!((op.as_str(), node), ("FancyConv", name)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn both_conv_layouts_match_onnxruntime() {
    use edgeserve_cpu::ConvLayout;
    for layout in [ConvLayout::AsModel, ConvLayout::ChannelsLast] {
        let options = CpuOptions {
            layout,
            ..CpuOptions::default()
        };
        let e = CpuEngine::load(&suite::bundled_lite0(), &options).unwrap();
        suite::reference_logits_match(&e, "efficientnet-lite0.onnx", 224, 1e-3);
        suite::batch_equals_singles(&e, 224);
    }
}
