//! The CPU backend against the shared conformance suite and onnxruntime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance as suite;
use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::EngineError;

suite::local_backend_suite!(CpuEngine, |bytes: &[u8]| CpuEngine::load(
    bytes,
    &CpuOptions::default()
));

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
fn every_conv_layout_matches_onnxruntime() {
    use edgeserve_cpu::ConvLayout;
    for layout in [ConvLayout::Blocked, ConvLayout::AsModel, ConvLayout::ChannelsLast] {
        let options = CpuOptions {
            layout,
            ..CpuOptions::default()
        };
        let e = CpuEngine::load(&suite::bundled_lite0(), &options).unwrap();
        suite::reference_logits_match(&e, "efficientnet-lite0.onnx", 224, 1e-3);
        suite::batch_equals_singles(&e, 224);
    }
    // Batches on the plan with the batch left free, as sizes past the
    // kept plans run.
    let options = CpuOptions {
        batch_plans: Some(0),
        ..CpuOptions::default()
    };
    let e = CpuEngine::load(&suite::bundled_lite0(), &options).unwrap();
    suite::batch_equals_singles(&e, 224);
}
