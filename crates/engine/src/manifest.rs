//! The model manifest: what an ONNX file does not say about itself.

use crate::EngineError;
use edgeserve_vision::{ChannelOrder, Crop, Layout, Normalize, Preprocessing, Resize};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The schema id every manifest carries; a future incompatible schema gets a
/// new id, and loading an unknown one is refused.
pub const MANIFEST_SCHEMA: &str = "edgeserve.model/v1";

/// The model file and its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// File name, relative to the manifest.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

/// The image input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The input tensor's name in the model.
    pub name: String,
    /// NCHW or NHWC.
    pub layout: Layout,
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    /// What the served signature takes: the preprocessed tensor (the
    /// default), or encoded images (`"image"`: a `DT_STRING` input of shape
    /// `[-1]`, one PNG/JPEG/… per element, sent as `{"b64": …}`), decoded and
    /// preprocessed as this manifest says, as TF Serving image models often
    /// take them.
    #[serde(default, skip_serializing_if = "InputEncoding::is_tensor")]
    pub encoding: InputEncoding,
}

/// What a model's served input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputEncoding {
    /// The preprocessed float tensor.
    #[default]
    Tensor,
    /// Encoded image files, one string per image.
    Image,
}

impl InputEncoding {
    fn is_tensor(&self) -> bool {
        *self == InputEncoding::Tensor
    }
}

/// What the output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Raw scores; softmax gives probabilities.
    Logits,
    /// Already probabilities.
    Probabilities,
}

/// The class-score output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The output tensor's name in the model.
    pub name: String,
    /// Logits or probabilities.
    pub kind: OutputKind,
}

/// Image preprocessing (the input size and layout come from [`InputSpec`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessingSpec {
    /// Resize policy.
    pub resize: Resize,
    /// Crop policy.
    pub crop: Crop,
    /// Normalisation.
    pub normalize: Normalize,
    /// Channel order.
    pub channel_order: ChannelOrder,
}

/// The labels file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsSpec {
    /// File name, relative to the manifest.
    pub file: String,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

/// A model manifest (`manifest.json` beside the model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    /// Always [`MANIFEST_SCHEMA`].
    pub schema: String,
    /// The model's name (the TF Serving model name it is served under).
    pub name: String,
    /// The model's version (TF Serving version number).
    pub version: i64,
    /// The model file.
    pub model: ModelFile,
    /// The image input.
    pub input: InputSpec,
    /// The class-score output.
    pub output: OutputSpec,
    /// Preprocessing.
    pub preprocessing: PreprocessingSpec,
    /// Class names, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsSpec>,
}

/// The preprocessing families most image classifiers were trained with, so
/// that a manifest for a model nobody wrote one for needs one word, not a
/// page of numbers (`edgeserve manifest --preset`, `edgeserve serve
/// --preset`). Each resizes the shorter side to 256/224 of the input and
/// crops the centre, as torchvision's, timm's and Keras' evaluation
/// transforms do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// torchvision / timm: `(pixel / 255 − mean) / std` with ImageNet's
    /// mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
    #[default]
    Imagenet,
    /// Inception-style [−1, 1]: `(pixel − 127.5) / 127.5` (Keras MobileNet,
    /// Inception, EfficientNet-Lite).
    Inception,
    /// Raw 0–255 pixel values (models that normalise inside the graph).
    Raw,
}

impl Preset {
    /// Every preset with its name, as the command line spells them.
    pub const ALL: [(&'static str, Preset); 3] = [
        ("imagenet", Preset::Imagenet),
        ("inception", Preset::Inception),
        ("raw", Preset::Raw),
    ];

    /// The preset a name spells, or an error listing the names.
    pub fn from_name(name: &str) -> Result<Preset, EngineError> {
        Preset::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                let names: Vec<_> = Preset::ALL.iter().map(|(n, _)| *n).collect();
                EngineError::Manifest(format!(
                    "unknown preset {:?} (expected one of {})",
                    edgeserve_protocol::quote(name),
                    names.join(", ")
                ))
            })
    }

    /// The preset's name.
    pub fn name(self) -> &'static str {
        Preset::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("imagenet", |(n, _)| n)
    }

    /// The preprocessing for an input of `width` × `height`.
    pub fn preprocessing(self, width: u32, height: u32) -> PreprocessingSpec {
        // The 224 → 256 ratio of ImageNet evaluation, on the longer side so
        // that the centre crop always fits.
        let size = (f64::from(width.max(height)) * 256.0 / 224.0).round() as u32;
        let normalize = match self {
            Preset::Imagenet => Normalize::MeanStd {
                // The 0–1 figures times 255, written out: f32 products
                // would print as 57.120003 in the manifest.
                mean: [123.675, 116.28, 103.53],
                std: [58.395, 57.12, 57.375],
            },
            Preset::Inception => Normalize::MeanStd {
                mean: [127.5; 3],
                std: [127.5; 3],
            },
            Preset::Raw => Normalize::ScaleOffset {
                scale: 1.0,
                offset: 0.0,
            },
        };
        PreprocessingSpec {
            resize: Resize::ShorterSide { size },
            crop: Crop::Center,
            normalize,
            channel_order: ChannelOrder::Rgb,
        }
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ModelManifest {
    /// Parses and checks a manifest.
    pub fn from_json(text: &[u8]) -> Result<ModelManifest, EngineError> {
        let m: ModelManifest = serde_json::from_slice(text)
            .map_err(|e| EngineError::Manifest(format!("{e} (line {}, column {})", e.line(), e.column())))?;
        m.validate()?;
        Ok(m)
    }

    /// The manifest as `manifest.json` holds it: pretty-printed JSON, fields
    /// in the schema's order.
    pub fn to_json(&self) -> String {
        // Every field is a string, a number or a struct of them: nothing can
        // fail to serialise.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Checks the fields that serde cannot.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |m: String| Err(EngineError::Manifest(m));
        if self.schema != MANIFEST_SCHEMA {
            return bad(format!(
                "schema is {:?}, this edgeserve reads {MANIFEST_SCHEMA:?}",
                self.schema
            ));
        }
        if self.name.is_empty() {
            return bad("name is empty".into());
        }
        if self.version < 0 {
            return bad(format!("version {} is negative", self.version));
        }
        let hex64 = |s: &str| {
            s.len() == 64
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex64(&self.model.sha256) {
            return bad(format!(
                "model.sha256 {:?} is not 64 lowercase hex digits",
                self.model.sha256
            ));
        }
        // A plain name: a manifest names files beside it, never elsewhere
        // (`../../etc/passwd`, `/abs`, `sub/dir` are refused), so a server
        // reads nothing outside the version directory and a Worker's store
        // nothing outside the model's prefix.
        let plain = |s: &str| {
            s.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        for (field, file) in [
            ("model.file", Some(&self.model.file)),
            ("labels.file", self.labels.as_ref().map(|l| &l.file)),
        ] {
            if let Some(file) = file.filter(|f| !plain(f)) {
                return bad(format!(
                    "{field} {:?} must be a plain file name in the manifest's directory \
                     (letters, digits, '.', '_' and '-', not starting with '.' or '-')",
                    edgeserve_protocol::quote(file)
                ));
            }
        }
        if let Some(l) = &self.labels
            && !hex64(&l.sha256)
        {
            return bad(format!(
                "labels.sha256 {:?} is not 64 lowercase hex digits",
                l.sha256
            ));
        }
        self.preprocessing()
            .validate()
            .map_err(|e| EngineError::Manifest(e.to_string()))
    }

    /// The full preprocessing for the image input.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            width: self.input.width,
            height: self.input.height,
            resize: self.preprocessing.resize,
            crop: self.preprocessing.crop,
            normalize: self.preprocessing.normalize,
            channel_order: self.preprocessing.channel_order,
            layout: self.input.layout,
        }
    }

    /// The signature this manifest describes, for a server that does not
    /// say its own (a remote without TF Serving's metadata): the image
    /// input, a float tensor of any batch in the manifest's layout and size
    /// (or, with `encoding: "image"`, a list of encoded files), and the
    /// class-score output, float, whose rank the manifest does not give.
    pub fn signature(&self) -> crate::ModelSignature {
        let (w, h) = (Some(self.input.width as usize), Some(self.input.height as usize));
        let (dtype, shape) = match (self.input.encoding, self.input.layout) {
            (InputEncoding::Image, _) => (edgeserve_protocol::DataType::String, vec![None]),
            (InputEncoding::Tensor, Layout::Nchw) => {
                (edgeserve_protocol::DataType::Float, vec![None, Some(3), h, w])
            }
            (InputEncoding::Tensor, Layout::Nhwc) => {
                (edgeserve_protocol::DataType::Float, vec![None, h, w, Some(3)])
            }
        };
        crate::ModelSignature {
            inputs: vec![crate::TensorSpec {
                name: self.input.name.clone(),
                dtype,
                shape,
                unknown_rank: false,
            }],
            outputs: vec![crate::TensorSpec {
                name: self.output.name.clone(),
                dtype: edgeserve_protocol::DataType::Float,
                shape: Vec::new(),
                unknown_rank: true,
            }],
        }
    }

    /// Checks that `bytes` are the model file: size, then SHA-256.
    pub fn verify_model(&self, bytes: &[u8]) -> Result<(), EngineError> {
        // The size first: a file of the wrong size is not worth hashing.
        self.check_model_len(bytes.len())?;
        self.verify_model_digest(bytes.len(), &Sha256::digest(bytes).into())
    }

    fn check_model_len(&self, len: usize) -> Result<(), EngineError> {
        if len as u64 != self.model.bytes {
            return Err(EngineError::Integrity(format!(
                "{} is {len} bytes, the manifest says {}",
                self.model.file, self.model.bytes
            )));
        }
        Ok(())
    }

    /// [`ModelManifest::verify_model`] for a file whose SHA-256 the caller
    /// already computed, e.g. with the browser's native WebCrypto, which is
    /// far faster than hashing in wasm.
    pub fn verify_model_digest(&self, len: usize, sha256: &[u8; 32]) -> Result<(), EngineError> {
        self.check_model_len(len)?;
        let sha256 = hex::encode(sha256);
        if sha256 != self.model.sha256 {
            return Err(EngineError::Integrity(format!(
                "{} has sha256 {sha256}, the manifest says {}",
                self.model.file, self.model.sha256
            )));
        }
        Ok(())
    }

    /// Checks that `bytes` are the labels file.
    pub fn verify_labels(&self, bytes: &[u8]) -> Result<(), EngineError> {
        let Some(l) = &self.labels else { return Ok(()) };
        let got = sha256_hex(bytes);
        if got != l.sha256 {
            return Err(EngineError::Integrity(format!(
                "{} has sha256 {got}, the manifest says {}",
                l.file, l.sha256
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{
      "schema": "edgeserve.model/v1", "name": "m", "version": 1,
      "model": {"file": "m.onnx", "bytes": 3, "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      "input": {"name": "input", "layout": "nchw", "width": 224, "height": 224},
      "output": {"name": "logits", "kind": "logits"},
      "preprocessing": {"resize": {"kind": "shorter_side", "size": 256}, "crop": "center",
        "normalize": {"kind": "mean_std", "mean": [127, 127, 127], "std": [128, 128, 128]}, "channel_order": "rgb"}
    }"#;

    #[test]
    fn parses_and_verifies() {
        let m = ModelManifest::from_json(MANIFEST.as_bytes()).unwrap();
        assert_eq!(m.preprocessing().width, 224);
        assert!(m.verify_model(b"abc").is_ok());
        assert_eq!(
            m.verify_model(b"abd").unwrap_err().to_string(),
            "model file does not match its manifest: m.onnx has sha256 \
             a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9, the manifest says \
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(
            m.verify_model(b"abcd")
                .unwrap_err()
                .to_string()
                .contains("is 4 bytes, the manifest says 3")
        );
    }

    #[test]
    fn refuses_unknown_schema_fields_and_bad_values() {
        let e = ModelManifest::from_json(MANIFEST.replace("/v1", "/v9").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("this edgeserve reads"), "{e}");
        let e = ModelManifest::from_json(MANIFEST.replace("\"crop\"", "\"cropp\"").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown field `cropp`"), "{e}");
        let e = ModelManifest::from_json(MANIFEST.replace("\"size\": 256", "\"size\": 100").as_bytes())
            .unwrap_err();
        assert!(e.to_string().contains("resize.size 100"), "{e}");
        let e = ModelManifest::from_json(MANIFEST.replace("ba7816", "BA7816").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("not 64 lowercase hex"), "{e}");
    }
}
