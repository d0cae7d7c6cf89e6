//! A manifest for an ONNX image classifier nobody wrote one for: the input's
//! name, layout and size and the output's name read from the graph, the
//! file's size and SHA-256 computed, the preprocessing from a [`Preset`].
//! `edgeserve manifest` writes it, `edgeserve serve` derives it for a
//! version directory that holds only `model.onnx`.

use edgeserve_engine::{
    EngineError, InputEncoding, InputSpec, LabelsSpec, MANIFEST_SCHEMA, ModelFile, ModelManifest, OutputKind,
    OutputSpec, Preset,
};
use edgeserve_protocol::DataType;
use edgeserve_vision::Layout;

/// What the graph cannot say: names, the preprocessing family, and the
/// input size where the graph leaves it open.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// The model's name (TF Serving's model name).
    pub name: String,
    /// Its version.
    pub version: i64,
    /// The model file's name, beside the manifest.
    pub file: String,
    /// The preprocessing family.
    pub preset: Preset,
    /// The input's width and height where the graph leaves them dynamic
    /// (a static size that differs is refused, not overridden).
    pub size: Option<u32>,
    /// The class-score output, when the graph has several.
    pub output: Option<String>,
    /// The labels file beside the manifest.
    pub labels: Option<LabelsSpec>,
}

/// The manifest of the ONNX image classifier in `bytes`.
pub fn derive(bytes: &[u8], options: &ManifestOptions) -> Result<ModelManifest, EngineError> {
    let model = crate::decode(bytes)?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| EngineError::InvalidModel("the ONNX file holds no graph".into()))?;
    let bad =
        |m: String| EngineError::InvalidModel(format!("not an image classifier edgeserve can serve: {m}"));
    let inputs = crate::signature::real_inputs(graph);
    let [input] = inputs.as_slice() else {
        let names: Vec<_> = inputs.iter().map(|n| format!("{n:?}")).collect();
        return Err(bad(format!(
            "the graph has {} inputs ({}); an image classifier takes one image tensor",
            inputs.len(),
            names.join(", ")
        )));
    };
    // The input's type and shape as the file declares them, read where the
    // WebGPU backend reads its signature.
    let declared = crate::signature::declared(graph, std::slice::from_ref(input), &[], |elem_type, name| {
        if elem_type == ONNX_FLOAT {
            Ok(DataType::Float)
        } else {
            Err(EngineError::InvalidModel(format!(
                "input {name:?} has ONNX element type {elem_type}, not float32 (1): edgeserve feeds classifiers preprocessed float32 pixels"
            )))
        }
    })
    .map_err(|e| match e {
        EngineError::InvalidModel(m) => bad(m),
        e => e,
    })?;
    let spec = &declared.inputs[0];
    if spec.unknown_rank {
        return Err(bad(format!("input {input:?} has no declared shape")));
    }
    let dims: Vec<Option<u32>> = spec
        .shape
        .iter()
        .map(|d| d.and_then(|v| u32::try_from(v).ok()))
        .collect();
    let shape = || {
        let d: Vec<_> = dims
            .iter()
            .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
            .collect();
        format!("[{}]", d.join(", "))
    };
    if dims.len() != 4 {
        return Err(bad(format!(
            "input {:?} has shape {} ({}-D); an image input is 4-D, [N, 3, H, W] or [N, H, W, 3]",
            input,
            shape(),
            dims.len()
        )));
    }
    let (layout, h, w) = match (dims[1], dims[3]) {
        (Some(3), _) => (Layout::Nchw, dims[2], dims[3]),
        (_, Some(3)) => (Layout::Nhwc, dims[1], dims[2]),
        _ => {
            return Err(bad(format!(
                "input {:?} has shape {}: neither dimension 1 (NCHW) nor 3 (NHWC) is 3 RGB channels",
                input,
                shape()
            )));
        }
    };
    let side = |got: Option<u32>, what: &str| -> Result<u32, EngineError> {
        match (got, options.size) {
            (Some(v), Some(s)) if v != s => Err(bad(format!(
                "input {:?} has shape {}, whose {what} is {v}, not the size {s} asked for",
                input,
                shape()
            ))),
            (Some(v), _) => Ok(v),
            (None, Some(s)) if s > 0 => Ok(s),
            (None, _) => Err(bad(format!(
                "input {:?} has shape {}, whose {what} is dynamic: give the size the model was trained at (--size N)",
                input,
                shape()
            ))),
        }
    };
    let (height, width) = (side(h, "height")?, side(w, "width")?);
    let output = match &options.output {
        Some(name) => graph.output.iter().find(|o| &o.name == name).ok_or_else(|| {
            let names: Vec<_> = graph.output.iter().map(|o| format!("{:?}", o.name)).collect();
            bad(format!(
                "the graph has no output {name:?} (its outputs: {})",
                names.join(", ")
            ))
        })?,
        None => match graph.output.as_slice() {
            [one] => one,
            many => {
                let names: Vec<_> = many.iter().map(|o| format!("{:?}", o.name)).collect();
                return Err(bad(format!(
                    "the graph has {} outputs ({}); name the class scores (--output NAME)",
                    many.len(),
                    names.join(", ")
                )));
            }
        },
    };
    // A graph that ends in Softmax already gives probabilities; softmax
    // again would flatten them.
    let kind = if graph
        .node
        .iter()
        .any(|n| n.op_type == "Softmax" && n.output.iter().any(|o| o == &output.name))
    {
        OutputKind::Probabilities
    } else {
        OutputKind::Logits
    };
    let manifest = ModelManifest {
        schema: MANIFEST_SCHEMA.into(),
        name: options.name.clone(),
        version: options.version,
        model: ModelFile {
            file: options.file.clone(),
            bytes: bytes.len() as u64,
            sha256: edgeserve_engine::sha256_hex(bytes),
        },
        input: InputSpec {
            name: input.clone(),
            layout,
            width,
            height,
            encoding: InputEncoding::Tensor,
        },
        output: OutputSpec {
            name: output.name.clone(),
            kind,
        },
        preprocessing: options.preset.preprocessing(width, height),
        labels: options.labels.clone(),
    };
    manifest.validate()?;
    Ok(manifest)
}

/// ONNX's element type code of float32 (`TensorProto.FLOAT`).
const ONNX_FLOAT: i32 = 1;
