use crate::NamedTensors;
use edgeserve_protocol::{
    DataType, Error, PREDICT_METHOD, SignatureDef, SignatureDefMap, TensorInfo, TensorShape, TensorTypes,
};
use std::collections::{BTreeMap, BTreeSet};

/// One input or output of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Its name in the model (and in requests).
    pub name: String,
    /// Element type.
    pub dtype: DataType,
    /// Dimensions; `None` where the model leaves a dimension free (batch).
    pub shape: Vec<Option<usize>>,
    /// The rank itself is unknown (some TensorFlow signatures say so); then
    /// `shape` is empty and any shape is accepted.
    pub unknown_rank: bool,
}

impl TensorSpec {
    fn tf_shape(&self) -> TensorShape {
        let sizes: Vec<i64> = self
            .shape
            .iter()
            .map(|d| d.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)))
            .collect();
        let mut shape = TensorShape::from_sizes(&sizes);
        shape.unknown_rank = self.unknown_rank;
        shape
    }

    /// The spec of a TF Serving signature's tensor called `name` (its alias:
    /// what requests use).
    pub fn from_tensor_info(name: &str, info: &TensorInfo) -> Result<TensorSpec, Error> {
        let sizes = info.tensor_shape.sizes().unwrap_or_default();
        let shape = sizes
            .iter()
            .map(|&d| match d {
                -1 => Ok(None),
                d => usize::try_from(d).map(Some).map_err(|_| {
                    Error::invalid_argument(format!("tensor {name}: dimension {d} is neither -1 nor a size"))
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(TensorSpec {
            name: name.to_owned(),
            dtype: info.dtype,
            shape,
            unknown_rank: info.tensor_shape.unknown_rank,
        })
    }

    /// Whether a tensor of `shape` fits: any shape for an unknown rank,
    /// else the same rank with every fixed dimension equal.
    pub fn fits(&self, shape: &[usize]) -> bool {
        self.unknown_rank
            || shape.len() == self.shape.len()
                && shape
                    .iter()
                    .zip(&self.shape)
                    .all(|(got, want)| want.is_none_or(|w| w == *got))
    }

    /// The shape as TF Serving's messages write it: `[-1,3,224,224]`.
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| d.map_or("-1".into(), |n| n.to_string()))
            .collect();
        format!("[{}]", dims.join(","))
    }
}

/// A model's inputs and outputs, in model order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSignature {
    /// Inputs.
    pub inputs: Vec<TensorSpec>,
    /// Outputs.
    pub outputs: Vec<TensorSpec>,
}

fn infos(specs: &[TensorSpec]) -> BTreeMap<String, TensorInfo> {
    specs
        .iter()
        .map(|s| {
            let info = TensorInfo {
                dtype: s.dtype,
                tensor_shape: s.tf_shape(),
                name: s.name.clone(),
            };
            (s.name.clone(), info)
        })
        .collect()
}

impl ModelSignature {
    /// Input names and dtypes (what the REST codec needs).
    pub fn input_types(&self) -> TensorTypes {
        self.inputs.iter().map(|s| (s.name.clone(), s.dtype)).collect()
    }

    /// Output names and dtypes.
    pub fn output_types(&self) -> TensorTypes {
        self.outputs.iter().map(|s| (s.name.clone(), s.dtype)).collect()
    }

    /// The signature as TF Serving's metadata prints it (`-1` for free
    /// dimensions), under the name `serving_default`.
    pub fn to_signature_def_map(&self) -> SignatureDefMap {
        let def = SignatureDef {
            inputs: infos(&self.inputs),
            outputs: infos(&self.outputs),
            method_name: PREDICT_METHOD.to_owned(),
            defaults: BTreeMap::new(),
        };
        SignatureDefMap {
            signature_def: BTreeMap::from([(edgeserve_protocol::DEFAULT_SIGNATURE.to_owned(), def)]),
        }
    }

    /// The signature of a TF Serving `SignatureDef` (a remote model's), with
    /// its aliases as names.
    pub fn from_signature_def(def: &SignatureDef) -> Result<ModelSignature, Error> {
        let specs = |m: &BTreeMap<String, TensorInfo>| {
            m.iter()
                .map(|(name, info)| TensorSpec::from_tensor_info(name, info))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(ModelSignature {
            inputs: specs(&def.inputs)?,
            outputs: specs(&def.outputs)?,
        })
    }

    /// The input called `name`.
    pub fn input(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().find(|s| s.name == name)
    }
}

fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

/// Checks request tensors against a signature: exactly its input names, each
/// with its dtype, rank and fixed dimensions. Errors are `INVALID_ARGUMENT`
/// and name the tensor, the expected and the given values.
pub fn validate_inputs(signature: &ModelSignature, inputs: &NamedTensors) -> Result<(), Error> {
    let expected: BTreeSet<&str> = signature.inputs.iter().map(|s| s.name.as_str()).collect();
    let given: BTreeSet<&str> = inputs.keys().map(String::as_str).collect();
    if expected != given {
        let join = |s: BTreeSet<&str>| s.into_iter().collect::<Vec<_>>().join(",");
        let extra = join(given.difference(&expected).copied().collect());
        let missing = join(expected.difference(&given).copied().collect());
        return Err(Error::invalid_argument(format!(
            "input size does not match signature: {}!={} len({{{}}}) != len({{{}}}). Sent extra: {{{extra}}}. \
             Missing but required: {{{missing}}}.",
            given.len(),
            expected.len(),
            join(given.clone()),
            join(expected.clone()),
        )));
    }
    for spec in &signature.inputs {
        let Some(t) = inputs.get(&spec.name) else { continue };
        if t.dtype() != spec.dtype {
            return Err(Error::invalid_argument(format!(
                "Input {}: expects dtype {} but got {}",
                spec.name,
                spec.dtype,
                t.dtype()
            )));
        }
        if !spec.fits(t.shape()) {
            return Err(Error::invalid_argument(format!(
                "Input {}: expects shape {} but got {}",
                spec.name,
                spec.shape_text(),
                shape_text(t.shape())
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgeserve_protocol::Tensor;

    fn sig() -> ModelSignature {
        ModelSignature {
            inputs: vec![TensorSpec {
                name: "input".into(),
                dtype: DataType::Float,
                shape: vec![None, Some(3)],
                unknown_rank: false,
            }],
            outputs: vec![TensorSpec {
                name: "logits".into(),
                dtype: DataType::Float,
                shape: vec![None, Some(2)],
                unknown_rank: false,
            }],
        }
    }

    #[test]
    fn accepts_free_and_matching_dimensions() {
        let t = Tensor::from_vec(vec![4, 3], vec![0f32; 12]).unwrap();
        assert!(validate_inputs(&sig(), &NamedTensors::from([("input".into(), t)])).is_ok());
    }

    #[test]
    fn names_what_is_wrong() {
        let t = Tensor::from_vec(vec![1, 4], vec![0f32; 4]).unwrap();
        let e = validate_inputs(&sig(), &NamedTensors::from([("input".into(), t)])).unwrap_err();
        assert_eq!(e.message(), "Input input: expects shape [-1,3] but got [1,4]");
        let t = Tensor::from_vec(vec![1, 3], vec![0i32; 3]).unwrap();
        let e = validate_inputs(&sig(), &NamedTensors::from([("input".into(), t)])).unwrap_err();
        assert_eq!(e.message(), "Input input: expects dtype float but got int32");
        let t = Tensor::from_vec(vec![1, 3], vec![0f32; 3]).unwrap();
        let e = validate_inputs(&sig(), &NamedTensors::from([("x".into(), t)])).unwrap_err();
        assert_eq!(
            e.message(),
            "input size does not match signature: 1!=1 len({x}) != len({input}). Sent extra: {x}. Missing but required: {input}."
        );
    }

    #[test]
    fn metadata_marks_free_dimensions_with_minus_one() {
        let m = sig().to_signature_def_map();
        let def = m.get("").unwrap();
        assert_eq!(def.inputs["input"].tensor_shape.sizes(), Some(vec![-1, 3]));
        assert_eq!(def.method_name, "tensorflow/serving/predict");
    }

    #[test]
    fn reads_a_signature_def_back_and_accepts_any_shape_for_unknown_rank() {
        let map = sig().to_signature_def_map();
        let back = ModelSignature::from_signature_def(map.get("").unwrap()).unwrap();
        assert_eq!(back, sig());

        let mut def = map.get("").unwrap().clone();
        let input = def.inputs.get_mut("input").unwrap();
        input.tensor_shape = TensorShape {
            dim: vec![],
            unknown_rank: true,
        };
        let open = ModelSignature::from_signature_def(&def).unwrap();
        let t = Tensor::from_vec(vec![2, 2, 2], vec![0f32; 8]).unwrap();
        assert!(validate_inputs(&open, &NamedTensors::from([("input".into(), t.clone())])).is_ok());
        assert!(validate_inputs(&sig(), &NamedTensors::from([("input".into(), t)])).is_err());

        input_dim(&mut def, -7);
        let e = ModelSignature::from_signature_def(&def).unwrap_err();
        assert_eq!(e.message(), "tensor input: dimension -7 is neither -1 nor a size");
    }

    fn input_dim(def: &mut SignatureDef, size: i64) {
        def.inputs.get_mut("input").unwrap().tensor_shape = TensorShape::from_sizes(&[size]);
    }
}
