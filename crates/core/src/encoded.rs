//! Models served with an encoded-image input (manifest `input.encoding:
//! "image"`): the signature takes one PNG/JPEG/… file per element of a
//! `DT_STRING` tensor of shape `[-1]`, as many TF Serving image models do, and
//! this adapter decodes and preprocesses each before the model runs. The same
//! `{"b64": …}` request then runs locally and on a server alike.

use crate::ImageInput;
use crate::images::preprocess_images;
use edgeserve_engine::{BoxFuture, Engine, EngineError, ModelSignature, NamedTensors, validate_inputs};
use edgeserve_protocol::{DataType, Error as ProtocolError, Tensor, TensorData};
use edgeserve_vision::{DecodeOptions, Preprocessing};

/// A local engine behind an encoded-image signature.
pub(crate) struct EncodedImages {
    inner: Box<dyn Engine>,
    signature: ModelSignature,
    input: String,
    preprocessing: Preprocessing,
    decode: DecodeOptions,
}

impl EncodedImages {
    /// `inner`, whose image input `input` becomes a string input.
    pub(crate) fn new(
        inner: Box<dyn Engine>,
        input: &str,
        preprocessing: Preprocessing,
        decode: DecodeOptions,
    ) -> EncodedImages {
        let mut signature = inner.signature().clone();
        for spec in signature.inputs.iter_mut().filter(|s| s.name == input) {
            spec.dtype = DataType::String;
            spec.shape = vec![None];
            spec.unknown_rank = false;
        }
        EncodedImages {
            inner,
            signature,
            input: input.to_owned(),
            preprocessing,
            decode,
        }
    }

    /// The float batch for the encoded images in `inputs`. A tensor already
    /// preprocessed (the classifier decodes images itself) goes through as
    /// the model takes it.
    fn preprocess(&self, mut inputs: NamedTensors) -> Result<NamedTensors, EngineError> {
        if inputs
            .get(&self.input)
            .is_some_and(|t| t.dtype() != DataType::String)
        {
            validate_inputs(self.inner.signature(), &inputs)?;
            return Ok(inputs);
        }
        validate_inputs(&self.signature, &inputs)?;
        let files = match inputs.remove(&self.input).map(|t| t.into_parts().1) {
            Some(TensorData::String(files)) => files,
            _ => {
                return Err(ProtocolError::invalid_argument(format!(
                    "input {} takes encoded images (DT_STRING)",
                    self.input
                ))
                .into());
            }
        };
        if files.is_empty() {
            return Err(
                ProtocolError::invalid_argument(format!("input {} holds no image", self.input)).into(),
            );
        }
        let images: Vec<ImageInput<'_>> = files.iter().map(|f| ImageInput::Encoded(f)).collect();
        let (data, _) = preprocess_images(&self.preprocessing, &self.decode, &images, |i, e| {
            EngineError::Request(ProtocolError::invalid_argument(format!(
                "{}[{i}]: {e}",
                self.input
            )))
        })?;
        let batch = Tensor::from_vec(self.preprocessing.batch_shape(images.len()), data)?;
        inputs.insert(self.input.clone(), batch);
        Ok(inputs)
    }
}

impl Engine for EncodedImages {
    fn kind(&self) -> edgeserve_engine::BackendKind {
        self.inner.kind()
    }

    fn signature(&self) -> &ModelSignature {
        &self.signature
    }

    fn run(&self, inputs: NamedTensors) -> BoxFuture<'_, Result<NamedTensors, EngineError>> {
        Box::pin(async move {
            let floats = self.preprocess(inputs)?;
            self.inner.run(floats).await
        })
    }
}
