use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{BackendKind, Engine, EngineError, ModelManifest, OutputKind};
use edgeserve_protocol::{
    Error as ProtocolError, Metadata, ModelMetadataResponse, ModelSpec, PredictRequest, PredictResponse,
    Tensor, VersionSelector,
};
use edgeserve_vision::{DecodeOptions, Labels, PixelFormat, Preprocessing, RgbImage, softmax, top_k};
use serde::Serialize;
use std::collections::BTreeMap;
use web_time::Instant;

/// Which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The best available (today: the CPU).
    #[default]
    Auto,
    /// The CPU (tract).
    Cpu,
}

/// Why a backend was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Why {
    /// The caller asked for it.
    Requested,
    /// `auto` was asked for and it is the only backend available.
    OnlyAvailable,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Requested => f.write_str("requested by the caller"),
            Why::OnlyAvailable => f.write_str("auto: the only backend available"),
        }
    }
}

/// Options for [`Classifier::load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The backend.
    pub backend: Backend,
    /// Limits for decoding images.
    pub decode: DecodeOptions,
    /// CPU backend options.
    pub cpu: CpuOptions,
}

/// Milliseconds spent in each step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Timings {
    /// Decoding the image(s).
    pub decode_ms: f64,
    /// Resize, crop, normalise.
    pub preprocess_ms: f64,
    /// Running the model.
    pub inference_ms: f64,
    /// Network time (remote backend only).
    pub transfer_ms: f64,
}

/// What ran, why, and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The backend that ran.
    pub backend: BackendKind,
    /// Why it was chosen.
    pub why: Why,
    /// Time per step.
    pub timings: Timings,
}

/// One class of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    /// Output index.
    pub index: usize,
    /// The class name, when the model has labels.
    pub label: Option<String>,
    /// Probability (softmax of logits, or the model's own probabilities).
    pub score: f32,
}

/// The top classes of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// Highest first.
    pub classes: Vec<ClassScore>,
    /// What ran.
    pub report: Report,
}

/// An image to classify.
#[derive(Debug, Clone, Copy)]
pub enum ImageInput<'a> {
    /// PNG, JPEG, WebP, GIF or BMP bytes.
    Encoded(&'a [u8]),
    /// Raw pixels, e.g. a canvas `ImageData`.
    Pixels {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Pixel layout.
        format: PixelFormat,
        /// The pixels, rows top to bottom.
        data: &'a [u8],
    },
}

/// A model ready to classify images and answer TF Serving requests.
pub struct Classifier {
    manifest: ModelManifest,
    engine: Box<dyn Engine>,
    why: Why,
    labels: Option<Labels>,
    preprocessing: Preprocessing,
    decode: DecodeOptions,
    /// Whether the model takes any batch size (else images run one by one).
    free_batch: bool,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

impl Classifier {
    /// Loads a model from its bytes, its manifest (JSON) and its labels file,
    /// checking the model's and labels' SHA-256 against the manifest and the
    /// manifest's tensor names and sizes against the model.
    pub fn load(
        model: &[u8],
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        let manifest = ModelManifest::from_json(manifest_json)?;
        manifest.verify_model(model)?;
        let labels = match (labels, &manifest.labels) {
            (Some(text), Some(_)) => {
                manifest.verify_labels(text.as_bytes())?;
                Some(Labels::parse(text)?)
            }
            (None, Some(spec)) => {
                return Err(EngineError::Manifest(format!(
                    "the manifest names labels file {} but no labels were given",
                    spec.file
                )));
            }
            (text, None) => text.map(Labels::parse).transpose()?,
        };
        let (engine, why): (Box<dyn Engine>, Why) = match options.backend {
            Backend::Cpu => (Box::new(CpuEngine::load(model, &options.cpu)?), Why::Requested),
            Backend::Auto => (
                Box::new(CpuEngine::load(model, &options.cpu)?),
                Why::OnlyAvailable,
            ),
        };
        Classifier::new(manifest, engine, why, labels, options.decode)
    }

    /// A classifier over an already loaded engine.
    pub fn new(
        manifest: ModelManifest,
        engine: Box<dyn Engine>,
        why: Why,
        labels: Option<Labels>,
        decode: DecodeOptions,
    ) -> Result<Classifier, EngineError> {
        let sig = engine.signature();
        let mismatch = |m: String| Err(EngineError::Manifest(m));
        let Some(input) = sig.input(&manifest.input.name) else {
            let names: Vec<&str> = sig.inputs.iter().map(|i| i.name.as_str()).collect();
            return mismatch(format!(
                "input {:?} is not in the model (its inputs: {names:?})",
                manifest.input.name
            ));
        };
        if sig.inputs.len() != 1 {
            return mismatch(format!(
                "the model has {} inputs; image classifiers take one",
                sig.inputs.len()
            ));
        }
        let pre = manifest.preprocessing();
        let (c, h, w) = (Some(3), Some(pre.height as usize), Some(pre.width as usize));
        let want = match pre.layout {
            edgeserve_vision::Layout::Nchw => [c, h, w],
            edgeserve_vision::Layout::Nhwc => [h, w, c],
        };
        if input.shape.len() != 4 || input.shape[1..] != want {
            return mismatch(format!(
                "the manifest's {}x{} {:?} input does not fit the model's input shape {:?}",
                pre.width, pre.height, pre.layout, input.shape
            ));
        }
        let Some(output) = sig.outputs.iter().find(|o| o.name == manifest.output.name) else {
            return mismatch(format!("output {:?} is not in the model", manifest.output.name));
        };
        if let (Some(labels), Some(Some(classes))) = (&labels, output.shape.last()) {
            labels.check_count(*classes)?;
        }
        let free_batch = input.shape[0].is_none();
        Ok(Classifier {
            manifest,
            engine,
            why,
            labels,
            preprocessing: pre,
            decode,
            free_batch,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// The backend in use.
    pub fn backend(&self) -> BackendKind {
        self.engine.kind()
    }

    /// TF Serving's metadata for this model.
    pub fn metadata(&self) -> ModelMetadataResponse {
        ModelMetadataResponse {
            model_spec: ModelSpec {
                name: self.manifest.name.clone(),
                version: Some(VersionSelector::Number(self.manifest.version)),
                signature_name: String::new(),
            },
            metadata: Metadata {
                signature_def: self.engine.signature().to_signature_def_map(),
            },
        }
    }

    /// Answers a TF Serving predict request on the model.
    pub async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, ProtocolError> {
        self.engine.predict(request).await.map_err(ProtocolError::from)
    }

    fn decode_one(&self, image: &ImageInput<'_>) -> Result<RgbImage, EngineError> {
        Ok(match *image {
            ImageInput::Encoded(bytes) => edgeserve_vision::decode(bytes, &self.decode)?,
            ImageInput::Pixels {
                width,
                height,
                format,
                data,
            } => edgeserve_vision::from_pixels(width, height, format, data, &self.decode)?,
        })
    }

    /// The top `k` classes of one image.
    pub async fn classify(&self, image: ImageInput<'_>, k: usize) -> Result<Classification, EngineError> {
        let mut all = self.classify_batch(&[image], k).await?;
        all.pop().ok_or_else(|| EngineError::Run {
            backend: self.backend(),
            reason: "no result".into(),
        })
    }

    /// The top `k` classes of each image, run as one batch when the model
    /// takes any batch size (else one by one). Timings are for the whole
    /// batch.
    pub async fn classify_batch(
        &self,
        images: &[ImageInput<'_>],
        k: usize,
    ) -> Result<Vec<Classification>, EngineError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let t = Instant::now();
        let decoded = images
            .iter()
            .map(|i| self.decode_one(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut timings = Timings {
            decode_ms: ms_since(t),
            ..Timings::default()
        };

        let t = Instant::now();
        let batches: Vec<Tensor> = if self.free_batch {
            vec![self.preprocessing.to_tensor(&decoded)?]
        } else {
            decoded
                .chunks(1)
                .map(|one| self.preprocessing.to_tensor(one))
                .collect::<Result<_, _>>()?
        };
        timings.preprocess_ms = ms_since(t);

        let t = Instant::now();
        let mut scores: Vec<Vec<f32>> = Vec::with_capacity(images.len());
        for batch in batches {
            let n = batch.batch_size().unwrap_or(1);
            let inputs = BTreeMap::from([(self.manifest.input.name.clone(), batch)]);
            edgeserve_engine::validate_inputs(self.engine.signature(), &inputs)?;
            let mut outputs = self.engine.run(inputs).await?;
            let out = outputs
                .remove(&self.manifest.output.name)
                .ok_or_else(|| EngineError::Run {
                    backend: self.backend(),
                    reason: format!("the model gave no output {:?}", self.manifest.output.name),
                })?;
            let values = out.into_vec::<f32>().map_err(|t| EngineError::Run {
                backend: self.backend(),
                reason: format!(
                    "output {:?} is {}, not float",
                    self.manifest.output.name,
                    t.dtype()
                ),
            })?;
            let per = values.len() / n.max(1);
            scores.extend(values.chunks(per.max(1)).map(<[f32]>::to_vec));
        }
        timings.inference_ms = ms_since(t);

        let report = Report {
            backend: self.backend(),
            why: self.why.clone(),
            timings,
        };
        Ok(scores
            .iter()
            .map(|s| {
                let probs = match self.manifest.output.kind {
                    OutputKind::Logits => softmax(s),
                    OutputKind::Probabilities => s.clone(),
                };
                let classes = top_k(&probs, k)
                    .into_iter()
                    .map(|c| ClassScore {
                        index: c.index,
                        label: self
                            .labels
                            .as_ref()
                            .and_then(|l| l.get(c.index))
                            .map(str::to_owned),
                        score: c.score,
                    })
                    .collect();
                Classification {
                    classes,
                    report: report.clone(),
                }
            })
            .collect())
    }
}
