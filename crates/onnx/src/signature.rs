//! The signature an ONNX graph declares: each input's and output's element
//! type and shape as the file states them (a dimension that is symbolic,
//! zero or negative is unknown; no shape at all is unknown rank).
//!
//! The WebGPU backend serves exactly this. The CPU backend reports tract's
//! facts instead, which are the declared ones refined by tract's analysis
//! (an output the file leaves unshaped gets its inferred shape), so its
//! signature stays tract's.

use crate::pb::tensor_shape_proto::dimension;
use crate::pb::{GraphProto, type_proto};
use edgeserve_engine::{EngineError, ModelSignature, TensorSpec};
use edgeserve_protocol::DataType;

/// The graph's real inputs, by name and in order: its declared inputs less
/// those an initializer also defines (older exporters list every weight as
/// an input too).
pub fn real_inputs(graph: &GraphProto) -> Vec<String> {
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !initializers.contains(n.as_str()))
        .collect()
}

/// The declared signature of `graph` for its real `inputs` (not
/// initializers) and `outputs`, by name; `dtype` maps an ONNX element type
/// code to the backend's data type, or refuses it naming the tensor.
pub fn declared(
    graph: &GraphProto,
    inputs: &[String],
    outputs: &[String],
    dtype: impl Fn(i32, &str) -> Result<DataType, EngineError>,
) -> Result<ModelSignature, EngineError> {
    let spec = |name: &str, output: bool| -> Result<TensorSpec, EngineError> {
        let infos = if output { &graph.output } else { &graph.input };
        let info = infos
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| EngineError::InvalidModel(format!("tensor {name:?} has no declared type")))?;
        let tensor = match info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t,
            _ => return Err(EngineError::InvalidModel(format!("{name:?} is not a tensor"))),
        };
        let dtype = dtype(tensor.elem_type, name)?;
        let (shape, unknown_rank) = match &tensor.shape {
            Some(s) => (
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(dimension::Value::DimValue(v)) if v > 0 => usize::try_from(v).ok(),
                        _ => None,
                    })
                    .collect(),
                false,
            ),
            None => (Vec::new(), true),
        };
        Ok(TensorSpec {
            name: name.to_owned(),
            dtype,
            shape,
            unknown_rank,
        })
    };
    Ok(ModelSignature {
        inputs: inputs.iter().map(|n| spec(n, false)).collect::<Result<_, _>>()?,
        outputs: outputs.iter().map(|n| spec(n, true)).collect::<Result<_, _>>()?,
    })
}
