//! What keeps tract 0.23.9 off four of its int8 paths that fail on models
//! onnxruntime's quantiser writes (found by the zoo, tests/zoo): one kernel
//! it must not pick on this machine, and three graph rewrites, each computing
//! exactly what the nodes it replaces do.
//!
//! **AMX.** On a CPU with Intel AMX (Sapphire Rapids and later), tract's
//! `avx512amx_mmm_i32_16x16` int8 kernel killed `edgeserve serve` with a
//! segmentation fault on the sixth zoo request (densenet-int8-dynamic; the
//! same model in a test's own thread ran). tract's knob `TRACT_CPU_ISA` takes
//! AMX int8 out of its kernel pool; its AVX-512 VNNI kernels give the same
//! integers (tract's own comment on the AMX kernel says bit-identical). Set
//! as tract's deployment default, so a `TRACT_CPU_ISA` in the environment
//! still wins.
//!
//! **Quantised softmax.** tract rewrites `DequantizeLinear → Softmax → QuantizeLinear` into
//! a fixed-point softmax (TFLite's), whose output goes wrong for output
//! scales below the 0.008 its own property tests cover: with onnxruntime's
//! usual 1/255 (probabilities in u8) a ViT's attention weights came out up
//! to 254 steps off and its logits 80 % of their scale away from
//! onnxruntime's (tests/zoo, vit-int8-qdq). The dequantisation in front of
//! each such softmax is written out as `(Cast(q) - Cast(zero point)) *
//! scale`, exactly what `DequantizeLinear` computes; tract then finds no
//! chain to fuse and runs the softmax in f32, then quantises its output as
//! the model says, as onnxruntime does.

use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto, attribute_proto};

const FLOAT: i64 = 1;

/// Takes AMX int8 out of tract's kernels, once, before tract first probes
/// the machine (it probes once per process).
pub(crate) fn before_first_load() {
    // x86_64 only: tract refuses to run with a feature of another
    // architecture named in the knob.
    #[cfg(target_arch = "x86_64")]
    {
        static DONE: std::sync::Once = std::sync::Once::new();
        DONE.call_once(|| {
            // An error means tract has no such knob or feature: nothing to avoid.
            let _ = tract_onnx::tract_core::knobs::set_config_global("TRACT_CPU_ISA", "-amx-int8");
        });
    }
}

/// Applies the three rewrites to a graph of the default domain's `opset`.
pub(crate) fn apply(graph: &mut GraphProto, opset: i64) {
    unfuse_softmax(graph);
    drop_empty_pads(graph);
    clip_before_quantize(graph, opset);
}

/// How many quantisation steps from zero a value may lie before the clip:
/// far past any 8- or 16-bit range, far inside `i32`.
const CLIP_STEPS: f32 = 1_048_576.0;

/// **Saturating quantisation.** tract's `QuantizeLinear` computes
/// `round(x / scale) as i32 + zero_point` and saturates after the addition:
/// an `x` more than 2^31 steps out (an infinity from a division by a
/// variance that quantisation made zero, in the decomposed LayerNorm of a
/// DeiT exported before opset 17: deit-int8-qdq) overflows the addition,
/// which panics in a debug build and in a release build wraps to the wrong
/// end of the range (0 for +inf). A `Clip` to ±2^20 steps in front of every
/// `QuantizeLinear` of a computed tensor with a constant scale changes no
/// result: anything past ±65,535 steps saturates anyway. Returns how many.
fn clip_before_quantize(graph: &mut GraphProto, opset: i64) -> usize {
    // An f32 initializer's values through tract's own tensor loader (raw or
    // typed data, or a file beside the model), as the GPU planner reads
    // its constants.
    let largest_scale = |name: &str| -> Option<f32> {
        let t = graph.initializer.iter().find(|t| t.name == name)?;
        if t.data_type != FLOAT as i32 {
            return None;
        }
        let t =
            tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, t, None).ok()?;
        t.to_plain_array_view::<f32>()
            .ok()?
            .iter()
            .map(|s| s.abs())
            .filter(|s| s.is_finite() && *s > 0.0)
            .reduce(f32::max)
    };
    let constants: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut clips = Vec::new();
    for (at, node) in graph.node.iter().enumerate() {
        if node.op_type != "QuantizeLinear" {
            continue;
        }
        let (Some(x), Some(scale)) = (node.input.first(), node.input.get(1)) else {
            continue;
        };
        if constants.contains(x.as_str()) {
            continue;
        }
        if let Some(bound) = largest_scale(scale)
            .map(|s| s * CLIP_STEPS)
            .filter(|b| b.is_finite())
        {
            clips.push((at, x.clone(), bound));
        }
    }
    let count = clips.len();
    let mut inserted = Vec::new();
    for (k, (at, x, bound)) in clips.into_iter().enumerate() {
        let base = format!("{x}/edgeserve_clip_{k}");
        let clipped = format!("{base}/out");
        let mut clip = NodeProto {
            name: base.clone(),
            op_type: "Clip".into(),
            input: vec![x.clone()],
            output: vec![clipped.clone()],
            ..NodeProto::default()
        };
        if opset < 11 {
            let float = |name: &str, f: f32| AttributeProto {
                name: name.into(),
                r#type: attribute_proto::AttributeType::Float as i32,
                f,
                ..AttributeProto::default()
            };
            clip.attribute = vec![float("min", -bound), float("max", bound)];
        } else {
            for (suffix, v) in [("min", -bound), ("max", bound)] {
                let name = format!("{base}/{suffix}");
                graph.initializer.push(TensorProto {
                    name: name.clone(),
                    data_type: FLOAT as i32,
                    float_data: vec![v],
                    ..TensorProto::default()
                });
                clip.input.push(name);
            }
        }
        graph.node[at].input[0] = clipped;
        inserted.push((at, clip));
    }
    // Each clip goes right in front of its QuantizeLinear, so the nodes stay
    // in an order that computes every input before it is read.
    for (at, clip) in inserted.into_iter().rev() {
        graph.node.insert(at, clip);
    }
    count
}

/// **Empty pads.** Between a `DequantizeLinear` and its `QuantizeLinear`
/// tract turns a chain of element-wise ops into a 256-entry lookup table,
/// built by running the chain on a rank-1 tensor; a `Pad` in the chain
/// (Swin's window padding, all zeros when the window divides the feature
/// map) then fails on its 4-D pads and the whole model is refused
/// (swin-int8-qdq). A `Pad` whose pads are a constant of zeros is the
/// identity: its readers read its input instead. Returns how many went.
fn drop_empty_pads(graph: &mut GraphProto) -> usize {
    let zeros = |name: &str| {
        graph.initializer.iter().any(|t| {
            t.name == name
                && (t.int64_data.iter().all(|&v| v == 0)
                    && t.raw_data.iter().all(|&b| b == 0)
                    && t.int32_data.iter().all(|&v| v == 0))
        })
    };
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let empty: Vec<(String, String)> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Pad" && n.input.len() >= 2 && n.output.len() == 1)
        .filter(|n| zeros(&n.input[1]) && !outputs.contains(&n.output[0].as_str()))
        .map(|n| (n.output[0].clone(), n.input[0].clone()))
        .collect();
    if empty.is_empty() {
        return 0;
    }
    graph
        .node
        .retain(|n| !(n.op_type == "Pad" && empty.iter().any(|(out, _)| n.output.first() == Some(out))));
    for node in &mut graph.node {
        for input in &mut node.input {
            if let Some((_, source)) = empty.iter().find(|(out, _)| out == input) {
                *input = source.clone();
            }
        }
    }
    empty.len()
}

/// Rewrites the softmaxes as above; returns how many it freed.
fn unfuse_softmax(graph: &mut GraphProto) -> usize {
    let softmax_inputs: Vec<String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Softmax")
        .filter_map(|n| n.input.first().cloned())
        .collect();
    let mut rewritten = 0;
    let mut nodes = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let feeds_softmax = node.op_type == "DequantizeLinear"
            && node.output.first().is_some_and(|o| softmax_inputs.contains(o))
            // A per-axis dequantisation (its `axis` matters) is never in
            // front of a softmax in practice; leave it to tract.
            && !node.attribute.iter().any(|a| a.name == "axis" || a.name == "block_size");
        if feeds_softmax && (2..=3).contains(&node.input.len()) {
            nodes.extend(written_out(&node));
            rewritten += 1;
        } else {
            nodes.push(node);
        }
    }
    graph.node = nodes;
    rewritten
}

fn cast_to_float(name: &str, input: &str, output: String) -> NodeProto {
    NodeProto {
        name: name.to_owned(),
        op_type: "Cast".into(),
        input: vec![input.to_owned()],
        output: vec![output],
        attribute: vec![AttributeProto {
            name: "to".into(),
            r#type: attribute_proto::AttributeType::Int as i32,
            i: FLOAT,
            ..AttributeProto::default()
        }],
        ..NodeProto::default()
    }
}

fn binary(name: String, op: &str, a: String, b: String, out: String) -> NodeProto {
    NodeProto {
        name,
        op_type: op.into(),
        input: vec![a, b],
        output: vec![out],
        ..NodeProto::default()
    }
}

/// `DequantizeLinear(q, scale[, zero_point]) -> y` as
/// `Mul(Sub(Cast(q), Cast(zero_point)), scale) -> y`.
fn written_out(dq: &NodeProto) -> Vec<NodeProto> {
    let base = if dq.name.is_empty() {
        dq.output[0].clone()
    } else {
        dq.name.clone()
    };
    let tmp = |suffix: &str| format!("{base}/edgeserve_unfused_{suffix}");
    let mut nodes = vec![cast_to_float(&tmp("cast"), &dq.input[0], tmp("q_f32"))];
    let centred = match dq.input.get(2).filter(|zp| !zp.is_empty()) {
        Some(zp) => {
            nodes.push(cast_to_float(&tmp("cast_zero_point"), zp, tmp("zero_point_f32")));
            nodes.push(binary(
                tmp("sub"),
                "Sub",
                tmp("q_f32"),
                tmp("zero_point_f32"),
                tmp("centred"),
            ));
            tmp("centred")
        }
        None => tmp("q_f32"),
    };
    nodes.push(binary(
        tmp("mul"),
        "Mul",
        centred,
        dq.input[1].clone(),
        dq.output[0].clone(),
    ));
    nodes
}
