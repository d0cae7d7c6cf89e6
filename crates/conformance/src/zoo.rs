//! The model zoo (`tests/zoo/`): public architectures nobody tuned edgeserve
//! for (torchvision's ResNets, MobileNets, SqueezeNet, ShuffleNet,
//! EfficientNet, RegNet, DenseNet, GoogLeNet, ConvNeXt, ViT and Swin, timm's
//! DeiT and Keras's MobileNetV2 through tf2onnx, at opsets 11 to 21), each as
//! fp32, fp16 and two int8 forms, with
//! onnxruntime's logits for two photos (`tests/zoo/generate.py` wrote them;
//! `tests/zoo/README.md` says how). Every backend runs the same checks:
//! [`check`] on what it loads, [`refusal_is_named`] on what it refuses.

use crate::top_k_indices;
use edgeserve_engine::{Engine, EngineError};
use edgeserve_protocol::{PredictRequest, Tensor};
use std::collections::BTreeMap;

/// The photos every zoo model has reference logits for.
pub const IMAGES: [&str; 2] = ["chelsea", "coffee"];

/// The zoo's input side (every model takes `[N, 3, 64, 64]`).
pub const SIZE: usize = 64;

const REFERENCE: &str = include_str!("../../../tests/zoo/reference.json");
const CHELSEA: &[u8] = include_bytes!("../../../tests/zoo/inputs/chelsea_64_nchw_f32le.bin");
const COFFEE: &[u8] = include_bytes!("../../../tests/zoo/inputs/coffee_64_nchw_f32le.bin");

/// How a zoo model stores its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The exported model.
    Fp32,
    /// fp16 weights and compute, fp32 input and output (onnxconverter-common).
    Fp16,
    /// onnxruntime's dynamic quantisation: `DynamicQuantizeLinear`,
    /// `ConvInteger`, `MatMulInteger`.
    Int8Dynamic,
    /// onnxruntime's static quantisation, `QuantizeLinear`/`DequantizeLinear` pairs.
    Int8Qdq,
}

impl Variant {
    fn parse(s: &str) -> Variant {
        match s {
            "fp32" => Variant::Fp32,
            "fp16" => Variant::Fp16,
            "int8-dynamic" => Variant::Int8Dynamic,
            "int8-qdq" => Variant::Int8Qdq,
            other => panic!("reference.json: unknown variant {other:?}"),
        }
    }

    /// The largest difference from onnxruntime's logits a backend may show,
    /// as a fraction of the largest |logit| of the model's reference run.
    ///
    /// - fp32: 1e-3, the bound the whole-model tests use for Lite0.
    /// - fp16: 3e-2. onnxruntime computes the fp16 graph in half precision
    ///   (11-bit mantissa, ~5e-4 relative per op, accumulated over ~20
    ///   layers), while tract and the GPU widen the weights and compute in
    ///   f32, so the difference is onnxruntime's own rounding; the fp16 Lite0
    ///   test allows the same 3 % of its scale.
    /// - int8: 5e-2 of the nearer of onnxruntime's two runs of the graph:
    ///   its integer kernels (what its users get) and its unfused run (QDQ
    ///   pairs simulated in float). Every runtime quantises the activations;
    ///   a value on a rounding boundary moves by one quantisation step (1/255
    ///   of a tensor's range) in one run and not another, and the step passes
    ///   through every layer after it. On these random-weight models
    ///   onnxruntime's own two runs lie up to 13 % of the scale apart
    ///   (MobileNetV2), so no single reference can be matched more tightly
    ///   than that; a backend that computes in f32 between the pairs (the
    ///   GPU) lands near the float run, tract's integer kernels near the
    ///   integer one. Where the two runs differ by more than this bound, it
    ///   is 1.25 times their difference ([`ZooModel::tolerance`]): on
    ///   DenseNet's QDQ file a third run (tract's) lies as far from both as
    ///   they lie from each other (9 % of the scale).
    ///
    /// For fp16 and int8 the top-1 must also agree, for fp32 the top-5 (in
    /// both cases up to classes whose reference logits are within the bound
    /// of each other, whose order no bound can fix).
    pub fn relative_tolerance(self) -> f32 {
        match self {
            Variant::Fp32 => 1e-3,
            Variant::Fp16 => 3e-2,
            Variant::Int8Dynamic | Variant::Int8Qdq => 5e-2,
        }
    }

    fn top_k(self) -> usize {
        match self {
            Variant::Fp32 => 5,
            _ => 1,
        }
    }

    /// The name the generator and the docs use.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Fp32 => "fp32",
            Variant::Fp16 => "fp16",
            Variant::Int8Dynamic => "int8-dynamic",
            Variant::Int8Qdq => "int8-qdq",
        }
    }
}

/// One model of the zoo, with its reference.
#[derive(Debug, Clone)]
pub struct ZooModel {
    /// The file under `tests/zoo/`.
    pub file: String,
    /// The architecture (`resnet-basic`, `convnext`, `vit`…).
    pub family: String,
    /// How it stores its numbers.
    pub variant: Variant,
    /// The op types in the graph.
    pub ops: Vec<String>,
    /// The largest |logit| of onnxruntime's run over both photos.
    pub scale: f32,
    /// For int8 models: the largest difference between onnxruntime's two
    /// runs of the graph (integer kernels, and QDQ simulated in float).
    pub onnxruntime_spread: f32,
    /// Whether the model takes its input channels last, `[N, 64, 64, 3]`
    /// (Keras exports); `[N, 3, 64, 64]` otherwise.
    pub nhwc: bool,
    logits: BTreeMap<String, Vec<f32>>,
    /// For int8 models, onnxruntime's float-simulated run.
    simulated: BTreeMap<String, Vec<f32>>,
}

impl ZooModel {
    /// The largest difference from onnxruntime's logits allowed (see
    /// [`Variant::relative_tolerance`]): the variant's share of the scale,
    /// and for int8 at least 1.25 times what separates onnxruntime's own
    /// two runs.
    pub fn tolerance(&self) -> f32 {
        (self.variant.relative_tolerance() * self.scale).max(1.25 * self.onnxruntime_spread)
    }

    /// onnxruntime's logits for one of [`IMAGES`].
    pub fn reference(&self, image: &str) -> &[f32] {
        &self.logits[image]
    }

    /// The reference `got` is held to: onnxruntime's logits, or for an int8
    /// model the nearer of its two runs' (see [`Variant::relative_tolerance`]).
    pub fn nearest_reference(&self, image: &str, got: &[f32]) -> &[f32] {
        let integer = self.reference(image);
        match self.simulated.get(image) {
            Some(float)
                if float.len() == got.len()
                    && integer.len() == got.len()
                    && crate::max_abs_diff(got, float) < crate::max_abs_diff(got, integer) =>
            {
                float
            }
            _ => integer,
        }
    }

    /// The model's bytes, read from `tests/zoo/`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self) -> Vec<u8> {
        let path = crate::repo_dir().join("tests/zoo").join(&self.file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }
}

/// Every model of the zoo, in file order.
pub fn models() -> Vec<ZooModel> {
    let json: serde_json::Value = serde_json::from_str(REFERENCE).expect("tests/zoo/reference.json");
    let models = json["models"].as_object().expect("reference.json: models");
    models
        .iter()
        .map(|(file, m)| {
            let floats = |v: &serde_json::Value| -> Vec<f32> {
                v.as_array()
                    .unwrap_or_else(|| panic!("{file}: logits"))
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            };
            ZooModel {
                file: file.clone(),
                family: m["family"].as_str().unwrap().to_owned(),
                variant: Variant::parse(m["variant"].as_str().unwrap()),
                ops: m["ops"].as_object().unwrap().keys().cloned().collect(),
                scale: m["max_abs_logit"].as_f64().unwrap() as f32,
                onnxruntime_spread: m["onnxruntime_int8_spread"].as_f64().unwrap_or(0.0) as f32,
                nhwc: m["input"] == serde_json::json!([1, SIZE, SIZE, 3]),
                logits: IMAGES
                    .iter()
                    .map(|&i| (i.to_owned(), floats(&m["results"][i]["logits"])))
                    .collect(),
                simulated: IMAGES
                    .iter()
                    .filter(|&&i| !m["results"][i]["logits_float_simulated"].is_null())
                    .map(|&i| (i.to_owned(), floats(&m["results"][i]["logits_float_simulated"])))
                    .collect(),
            }
        })
        .collect()
}

/// One of [`IMAGES`] preprocessed, `[1, 3, 64, 64]`.
pub fn input(image: &str) -> Tensor {
    let bytes = match image {
        "chelsea" => CHELSEA,
        "coffee" => COFFEE,
        other => panic!("no zoo input for {other:?}"),
    };
    let v = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_vec(vec![1, 3, SIZE, SIZE], v).unwrap()
}

impl ZooModel {
    /// One of [`IMAGES`] as this model takes it: [`input`], channels last
    /// for an NHWC model.
    pub fn input(&self, image: &str) -> Tensor {
        let nchw = input(image);
        if !self.nhwc {
            return nchw;
        }
        let v = nchw.as_slice::<f32>().expect("f32 input");
        let plane = SIZE * SIZE;
        let hwc = (0..plane * 3).map(|i| v[(i % 3) * plane + i / 3]).collect();
        Tensor::from_vec(vec![1, SIZE, SIZE, 3], hwc).unwrap()
    }
}

/// What a backend's run of a zoo model measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// The largest difference from onnxruntime over both photos, as a
    /// fraction of the model's scale.
    pub relative_diff: f32,
}

/// Checks a model's top-k against the reference's: equal, except where the
/// reference's own logits are within `tolerance` of each other.
fn same_top_k(got: &[f32], want: &[f32], k: usize, tolerance: f32) -> Result<(), String> {
    let (g, w) = (top_k_indices(got, k), top_k_indices(want, k));
    for (a, b) in g.iter().zip(&w) {
        if a != b && (want[*a] - want[*b]).abs() > tolerance {
            return Err(format!("top-{k} {g:?}, onnxruntime's {w:?}"));
        }
    }
    Ok(())
}

/// Compares a backend's logits for one of [`IMAGES`] with onnxruntime's
/// (the nearer run for int8): within [`ZooModel::tolerance`], the same
/// top-k. Returns the difference as a fraction of the model's scale; the
/// error says what differed.
pub fn compare(model: &ZooModel, image: &str, got: &[f32]) -> Result<f32, String> {
    let want = model.nearest_reference(image, got);
    if got.len() != want.len() {
        return Err(format!(
            "{image}: {} logits, onnxruntime has {}",
            got.len(),
            want.len()
        ));
    }
    let diff = crate::max_abs_diff(got, want);
    if diff.is_nan() || got.iter().any(|v| !v.is_finite()) {
        return Err(format!("{image}: logits not finite"));
    }
    if diff > model.tolerance() {
        return Err(format!(
            "{image}: max abs diff {diff:.3e} > {:.3e} ({} of max |logit| {:.3}; onnxruntime's own spread {:.3e})",
            model.tolerance(),
            model.variant.relative_tolerance(),
            model.scale,
            model.onnxruntime_spread
        ));
    }
    same_top_k(got, want, model.variant.top_k(), model.tolerance()).map_err(|e| format!("{image}: {e}"))?;
    Ok(diff / model.scale)
}

/// Runs both photos through `engine` (a TF Serving row-form request, as a
/// client sends it) and [`compare`]s the logits with onnxruntime's.
pub async fn check(engine: &dyn Engine, model: &ZooModel) -> Result<Measured, String> {
    let mut worst = 0f32;
    for image in IMAGES {
        let response = engine
            .predict(PredictRequest::instances(model.input(image)))
            .await
            .map_err(|e| format!("{image}: the run failed: {e}"))?;
        let got = response
            .outputs
            .get("logits")
            .ok_or_else(|| format!("{image}: no `logits` output"))?
            .as_slice::<f32>()
            .ok_or_else(|| format!("{image}: the logits are not float32"))?;
        worst = worst.max(compare(model, image, got)?);
    }
    Ok(Measured { relative_diff: worst })
}

/// A backend's refusal of a zoo model is acceptable only as a typed
/// [`EngineError::UnsupportedOp`] naming an op the model has, which the
/// backend either does not list (`supported`) or lists with a stated
/// limitation (`detail`: a rank, an attribute) that this use hits. Anything
/// else (an op the model lacks, a listed op refused without a reason, an
/// error of another kind) is a failure, described. Returns "op (detail)".
pub fn refusal_is_named(error: &EngineError, model: &ZooModel, supported: &[&str]) -> Result<String, String> {
    match error {
        EngineError::UnsupportedOp { op, detail, node, .. } => {
            if !model.ops.iter().any(|o| o == op) {
                return Err(format!(
                    "refused op {op:?} (node {node:?}), which the model does not have: {error}"
                ));
            }
            if supported.contains(&op.as_str()) && detail.is_empty() {
                return Err(format!(
                    "refused op {op} (node {node:?}), which the backend lists, without a reason"
                ));
            }
            Ok(if detail.is_empty() {
                op.clone()
            } else {
                format!("{op} ({detail})")
            })
        }
        other => Err(format!("refused without naming an op: {other}")),
    }
}

/// The ops of `model` outside `supported`: what a backend may refuse it for.
pub fn unsupported_ops<'a>(model: &'a ZooModel, supported: &[&str]) -> Vec<&'a str> {
    model
        .ops
        .iter()
        .map(String::as_str)
        .filter(|op| !supported.contains(op))
        .collect()
}

/// One line of a backend's zoo table, and the failures so far.
#[derive(Default)]
pub struct Table {
    lines: Vec<String>,
    failures: Vec<String>,
    passed: usize,
    refused: usize,
}

impl Table {
    /// A model that ran within its bound.
    pub fn pass(&mut self, model: &ZooModel, measured: Measured) {
        self.passed += 1;
        self.lines.push(format!(
            "{:38} pass   {:.2e} of max|logit| (bound {:.0e})",
            model.file,
            measured.relative_diff,
            model.variant.relative_tolerance()
        ));
    }

    /// A model the backend refused, acceptably, for `op`.
    pub fn refused(&mut self, model: &ZooModel, op: &str) {
        self.refused += 1;
        self.lines.push(format!("{:38} refused: {op}", model.file));
    }

    /// A failure.
    pub fn fail(&mut self, model: &ZooModel, why: String) {
        self.lines.push(format!("{:38} FAIL   {why}", model.file));
        self.failures.push(format!("{}: {why}", model.file));
    }

    /// Prints the table and panics with every failure.
    pub fn finish(self, backend: &str) -> (usize, usize) {
        eprintln!(
            "zoo on {backend}: {} pass, {} refused, {} failed",
            self.passed,
            self.refused,
            self.failures.len()
        );
        for line in &self.lines {
            eprintln!("  {line}");
        }
        assert!(
            self.failures.is_empty(),
            "zoo on {backend}:\n{}",
            self.failures.join("\n")
        );
        (self.passed, self.refused)
    }
}

/// Defines `fn zoo_bytes(model: &ZooModel) -> Vec<u8>` in the calling test
/// crate: natively read from `tests/zoo/`; built for wasm32 (Node,
/// Chromium: no file system) embedded in the test binary by
/// `include_bytes!`, which is why this is a macro (only the wasm32 test
/// binaries that ask carry the 25 MB). A model of reference.json missing
/// from the list below panics in the test that asks for it.
#[macro_export]
macro_rules! zoo_bytes {
    () => {
        $crate::zoo_bytes!(@files
            "convnext", "deit", "densenet", "efficientnet-b0", "googlenet", "keras-mobilenet-v2", "mobilenet-v2",
            "mobilenet-v3-small", "regnet", "resnet-basic", "resnet-bottleneck",
            "shufflenet-v2", "squeezenet", "swin", "vit"
        );
    };
    (@files $($family:literal),*) => {
        #[cfg(not(target_arch = "wasm32"))]
        fn zoo_bytes(model: &$crate::zoo::ZooModel) -> Vec<u8> {
            model.read()
        }

        #[cfg(target_arch = "wasm32")]
        fn zoo_bytes(model: &$crate::zoo::ZooModel) -> Vec<u8> {
            let name = model.file.as_str();
            $(
                for (suffix, bytes) in [
                    (".onnx", &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/zoo/", $family, ".onnx"))[..]),
                    ("-fp16.onnx", &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/zoo/", $family, "-fp16.onnx"))[..]),
                    ("-int8-dynamic.onnx", &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/zoo/", $family, "-int8-dynamic.onnx"))[..]),
                    ("-int8-qdq.onnx", &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/zoo/", $family, "-int8-qdq.onnx"))[..]),
                ] {
                    if name.strip_prefix($family) == Some(suffix) {
                        return bytes.to_vec();
                    }
                }
            )*
            panic!("{name} is not in zoo_bytes!'s list")
        }
    };
}
