//! The ONNX graph with its types and shapes known: what tract's
//! `InferenceModelExt::into_typed` makes, less one of its two analyses of
//! the whole graph.
//!
//! tract analyses the graph to its fixed point, lets each operator rewrite
//! its part of it ("incorporate"), then analyses all of it again. Where no
//! operator rewrote anything, the graph is the one just analysed and the
//! second analysis can find nothing; no operator of the tract this crate
//! builds with rewrites (none overrides the trait's default). It was a
//! quarter of the typing's time: Lite2 in wasm, in V8's baseline tier (the
//! code a warm start runs first), 6.2 of 27 ms.

use std::collections::HashMap;
use tract_onnx::prelude::{
    InferenceFact, InferenceModel, InferenceModelExt, OutletId, TVec, TractResult, TypedFact, TypedModel,
};
use tract_onnx::tract_core::internal::EvalContext;
use tract_onnx::tract_core::model::SpecialOps;
use tract_onnx::tract_core::model::translator::Translate;
use tract_onnx::tract_core::ops::TypedOp;
use tract_onnx::tract_hir::infer::{Factoid, InferenceOp};
use tract_onnx::tract_hir::internal::InferenceNode;

/// `model` analysed and translated into tract's typed operators.
pub(crate) fn into_typed(mut model: InferenceModel) -> TractResult<TypedModel> {
    model.analyse(false)?;
    let mut rewritten = false;
    loop {
        let mut this_round = false;
        for id in model.eval_order()? {
            let node = model.node(id);
            if let Some(patch) = node.op.incorporate(&model, node)? {
                patch.apply(&mut model)?;
                this_round = true;
            }
        }
        if !this_round {
            break;
        }
        rewritten = true;
    }
    let mut model = model.into_compact()?;
    if rewritten {
        model.analyse(false)?;
    }
    ToTyped.translate_model(&model)
}

/// Each node to its typed operators, or to constants where the analysis
/// found every output's value (tract's own rule, kept so that both make the
/// same graph).
#[derive(Debug)]
struct ToTyped;

impl Translate<InferenceFact, Box<dyn InferenceOp>, TypedFact, Box<dyn TypedOp>> for ToTyped {
    fn translate_node(
        &self,
        source: &InferenceModel,
        node: &InferenceNode,
        target: &mut TypedModel,
        mapping: &HashMap<OutletId, OutletId>,
    ) -> TractResult<TVec<OutletId>> {
        let facts = source.node_output_facts(node.id)?;
        // An input stays an input, and an operator with state keeps it,
        // whatever their values.
        let known = !InferenceModel::is_source(&node.op)
            && node.op.state(&EvalContext::out_of_plan())?.is_none()
            && facts.iter().all(|f| f.value.is_concrete());
        if known {
            let mut outputs = TVec::new();
            for (ix, fact) in facts.iter().enumerate() {
                if let Some(value) = fact.value.concretize() {
                    outputs.push(target.add_const(format!("{}.{ix}", node.name), value)?);
                }
            }
            return Ok(outputs);
        }
        let outputs = node.op.to_typed(source, node, target, mapping)?;
        for outlet in &outputs {
            target.outlet_fact(*outlet)?.consistent()?;
        }
        Ok(outputs)
    }
}

// Native only: the zoo's files are read from disk.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::into_typed;
    use tract_onnx::prelude::{Framework, InferenceModel, InferenceModelExt, TypedModel};

    /// The graph tract reads from `bytes`, as the CPU backend hands it on.
    fn inference(bytes: &[u8]) -> InferenceModel {
        let mut proto = edgeserve_onnx::decode(bytes).unwrap();
        edgeserve_onnx::normalize(&mut proto);
        let opset = edgeserve_onnx::default_opset(&proto);
        crate::tract_workarounds::apply(proto.graph.as_mut().unwrap(), opset);
        tract_onnx::onnx().model_for_proto_model(&proto).unwrap()
    }

    /// Each node's name, operator, inputs, output types and shapes, and
    /// whether they are constants.
    fn nodes(model: &TypedModel) -> Vec<String> {
        model
            .nodes()
            .iter()
            .map(|n| {
                let facts: Vec<_> = n
                    .outputs
                    .iter()
                    .map(|o| {
                        (
                            o.fact.datum_type,
                            format!("{:?}", o.fact.shape),
                            o.fact.konst.is_some(),
                        )
                    })
                    .collect();
                format!("{} {} {:?} {facts:?}", n.name, n.op.name(), n.inputs)
            })
            .collect()
    }

    #[test]
    fn types_every_zoo_model_and_lite0_as_tracts_own_typing_does() {
        let mut files: Vec<(String, Vec<u8>)> = edgeserve_conformance::zoo::models()
            .into_iter()
            .map(|m| (m.file.clone(), m.read()))
            .collect();
        files.push((
            "lite0".into(),
            edgeserve_testkit::shared("models/efficientnet-lite0.onnx"),
        ));
        for (name, bytes) in files {
            let ours = into_typed(inference(&bytes)).unwrap();
            let tracts = inference(&bytes).into_typed().unwrap();
            assert_eq!(nodes(&ours), nodes(&tracts), "{name}");
            assert_eq!(ours.inputs, tracts.inputs, "{name}");
            assert_eq!(ours.outputs, tracts.outputs, "{name}");
            for (a, b) in ours.nodes().iter().zip(tracts.nodes()) {
                for (x, y) in a.outputs.iter().zip(&b.outputs) {
                    assert_eq!(x.fact.konst, y.fact.konst, "{name}: the value of {}", a.name);
                }
            }
        }
    }
}
