use crate::encoded::EncodedImages;
use crate::fallback::{self, Fallback};
use crate::images::*;
use crate::local::*;
use crate::options::*;
use crate::report::*;
use crate::routing::*;
use edgeserve_cpu::CpuEngine;
use edgeserve_engine::{
    BackendKind, BoxFuture, Engine, EngineError, InputEncoding, ModelManifest, OutputKind,
};
use edgeserve_protocol::{
    DataType, Error as ProtocolError, Metadata, ModelMetadataResponse, ModelSpec, PredictRequest,
    PredictResponse, Tensor, VersionSelector,
};
use edgeserve_remote::{RemoteConfig, RemoteEngine, SignatureSource};
use edgeserve_vision::{DecodeOptions, Labels, Preprocessing, softmax, top_k};
use std::borrow::Cow;
use std::collections::BTreeMap;
use web_time::Instant;

/// A model ready to classify images and answer TF Serving requests.
pub struct Classifier {
    manifest: ModelManifest,
    engine: Box<dyn Engine>,
    why: Why,
    local: Option<LocalChoice>,
    fallback: Option<Fallback>,
    /// Where the remote engine's signature came from, when it is remote.
    remote_signature: Option<SignatureSource>,
    labels: Option<Labels>,
    preprocessing: Preprocessing,
    decode: DecodeOptions,
    /// Whether the model takes any batch size (else images run one by one).
    free_batch: bool,
    /// Whether the engine's input takes encoded image files (`DT_STRING`):
    /// a remote that decodes them itself. Images are then sent as files.
    takes_files: bool,
    /// Whether a local engine is served behind an encoded-image signature
    /// (manifest `input.encoding: "image"`); images decoded here still go
    /// in as tensors, which the adapter passes through.
    served_as_files: bool,
}

impl Classifier {
    /// Loads a model from its bytes, its manifest (JSON) and its labels file
    /// onto a local backend, checking the model's and labels' SHA-256
    /// against the manifest and the manifest's tensor names and sizes
    /// against the model. Synchronous: it never uses the network, so
    /// [`Backend::Remote`] and a configured remote are refused here; use
    /// [`Classifier::open`] for those.
    pub fn load(
        model: &[u8],
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        Classifier::load_wrapped(model, manifest_json, labels, options, |engine| engine)
    }

    /// [`Classifier::load`] with the loaded engine passed through `wrap`
    /// before the classifier takes it: how a host puts its own engine
    /// around the backend's (the native server's request batching).
    pub fn load_wrapped(
        model: &[u8],
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
        wrap: impl FnOnce(Box<dyn Engine>) -> Box<dyn Engine>,
    ) -> Result<Classifier, EngineError> {
        if options.backend == Backend::Remote || options.remote.is_some() {
            return Err(EngineError::Manifest(
                "a remote backend is configured: Classifier::load runs locally only, use Classifier::open"
                    .into(),
            ));
        }
        if options.backend == Backend::Webgpu {
            return Err(EngineError::Manifest(
                "the webgpu backend is acquired asynchronously: Classifier::load runs on the CPU only, use Classifier::open"
                    .into(),
            ));
        }
        let manifest = ModelManifest::from_json(manifest_json)?;
        let labels = read_labels(&manifest, labels)?;
        let why = match options.backend {
            Backend::Auto => Why::NoRemote,
            _ => Why::Requested,
        };
        verify(model, &manifest, options)?;
        let engine = wrap(Box::new(CpuEngine::load(model, &options.cpu)?));
        Classifier::new(manifest, engine, why, labels, options.decode)
    }

    /// Opens a model on the backend [`LoadOptions`] choose, and says why in
    /// every report: locally, on the configured TF Serving endpoint, or
    /// locally with the remote as fallback.
    ///
    /// `model` may be `None` when only the remote will run it; the routing
    /// decision uses the manifest's declared size, so a model that goes
    /// remote never needs downloading.
    pub async fn open(
        model: Option<&[u8]>,
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        Classifier::open_model(
            LocalModel::<NoDigest>::Bytes(model.map(Cow::Borrowed)),
            manifest_json,
            labels,
            options,
        )
        .await
    }

    /// [`Classifier::open`] taking the model's bytes: the CPU backend frees
    /// them as soon as they are decoded, one copy of the weights fewer at
    /// the peak of loading (Lite0 in wasm: see `CpuEngine::load_owned`).
    pub async fn open_owned(
        model: Option<Vec<u8>>,
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        Classifier::open_model(
            LocalModel::<NoDigest>::Bytes(model.map(Cow::Owned)),
            manifest_json,
            labels,
            options,
        )
        .await
    }

    /// [`Classifier::open_owned`] for a model whose load is already under
    /// way ([`LoadingModel::start`]) and whose SHA-256 `digest` computes
    /// while it runs: a browser's WebCrypto hashes on the calling thread
    /// (Lite2: 32–46 ms), which is then not spent before the load (51–88
    /// ms). The digest is checked against the manifest before the loaded
    /// model is used; one that differs fails the load as a mismatch found
    /// before loading would have (with `fallback`, the remote then runs the
    /// model), whatever the load's outcome.
    pub async fn open_loading(
        loading: LoadingModel,
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
        digest: impl Future<Output = Result<[u8; 32], EngineError>>,
    ) -> Result<Classifier, EngineError> {
        Classifier::open_model(
            LocalModel::Loading(loading, digest),
            manifest_json,
            labels,
            options,
        )
        .await
    }

    async fn open_model<D: Future<Output = Result<[u8; 32], EngineError>>>(
        model: LocalModel<'_, D>,
        manifest_json: &[u8],
        labels: Option<&str>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        let manifest = ModelManifest::from_json(manifest_json)?;
        let labels = read_labels(&manifest, labels)?;
        let remote = options.remote.as_ref();
        let local_why = match (plan(&manifest, options)?, remote) {
            (Plan::Remote(why), Some(config)) => {
                return Classifier::on_remote(config, manifest, why, labels, options).await;
            }
            // plan() only says remote when one is configured.
            (Plan::Remote(_), None) => return Err(no_remote()),
            (Plan::Local(why), _) => why,
        };
        let fallback_to = fallback::allowed(options);
        let local = load_local(model, &manifest, options)
            .await
            .and_then(|(engine, choice)| {
                let mut c = Classifier::new(
                    manifest.clone(),
                    engine,
                    local_why,
                    labels.clone(),
                    options.decode,
                )?;
                c.local = choice;
                Ok(c)
            });
        match (local, fallback_to) {
            (Ok(mut classifier), Some(config)) => {
                classifier.fallback = Some(Fallback::new(config.clone(), classifier.manifest.signature()));
                Ok(classifier)
            }
            (Err(e), Some(config)) => {
                let why = Why::LocalLoadFailed {
                    backend: BackendKind::Cpu,
                    error: e.to_string(),
                };
                Classifier::on_remote(config, manifest, why, labels, options).await
            }
            (local, _) => local,
        }
    }

    async fn on_remote(
        config: &RemoteConfig,
        manifest: ModelManifest,
        why: Why,
        labels: Option<Labels>,
        options: &LoadOptions,
    ) -> Result<Classifier, EngineError> {
        let engine = RemoteEngine::connect_with_signature(config.clone(), manifest.signature()).await?;
        let source = engine.signature_source().clone();
        let mut classifier = Classifier::new(manifest, Box::new(engine), why, labels, options.decode)?;
        // A manifest does not say whether the model takes any batch size
        // (Lite2 takes only 1): images go one per request unless the
        // server's metadata said so.
        if source != SignatureSource::Metadata {
            classifier.free_batch = false;
        }
        classifier.remote_signature = Some(source);
        Ok(classifier)
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
        // A string input takes encoded image files (a remote model that
        // decodes them itself); anything else takes the preprocessed tensor.
        let takes_files = input.dtype == DataType::String;
        if takes_files {
            if !input.unknown_rank && input.shape.len() != 1 {
                return mismatch(format!(
                    "input {:?} takes strings of shape {:?}; encoded images come as a list (shape [-1])",
                    manifest.input.name, input.shape
                ));
            }
        } else {
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
        }
        let free_batch = input.shape.first().is_none_or(Option::is_none);
        let Some(output) = sig.outputs.iter().find(|o| o.name == manifest.output.name) else {
            return mismatch(format!("output {:?} is not in the model", manifest.output.name));
        };
        if let (Some(labels), Some(Some(classes))) = (&labels, output.shape.last()) {
            labels.check_count(*classes)?;
        }
        let served_as_files = !takes_files && manifest.input.encoding == InputEncoding::Image;
        let engine: Box<dyn Engine> = if served_as_files {
            Box::new(EncodedImages::new(
                engine,
                &manifest.input.name,
                pre.clone(),
                decode,
            ))
        } else {
            engine
        };
        Ok(Classifier {
            manifest,
            engine,
            why,
            local: None,
            fallback: None,
            remote_signature: None,
            labels,
            preprocessing: pre,
            decode,
            free_batch,
            takes_files,
            served_as_files,
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

    /// How `auto` chose the local backend, for reports of runs on it.
    fn local_choice(&self, ran: BackendKind) -> Option<LocalChoice> {
        self.local.clone().filter(|_| ran == self.backend())
    }

    /// Where the remote's signature came from, for reports of runs on it.
    fn signature_report(&self, ran: BackendKind) -> Option<RemoteSignature> {
        if ran != BackendKind::Remote {
            return None;
        }
        let source = match &self.remote_signature {
            Some(source) => Some(source.clone()),
            None => self.fallback.as_ref().and_then(Fallback::signature_source),
        };
        source.map(|s| RemoteSignature::from(&s))
    }

    /// Under `auto`, how the local backend was chosen at load.
    pub fn local_choice_at_load(&self) -> Option<&LocalChoice> {
        self.local.as_ref()
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

    /// Answers a TF Serving predict request on the model (on the remote if
    /// the local backend fails on it and fallback is on; see
    /// [`Classifier::predict_with_report`] to learn which ran).
    pub async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, ProtocolError> {
        Ok(self.predict_with_report(request).await?.0)
    }

    /// [`Classifier::predict`], with the report of what ran and why.
    pub async fn predict_with_report(
        &self,
        request: PredictRequest,
    ) -> Result<(PredictResponse, Report), ProtocolError> {
        let t = Instant::now();
        let (response, backend, why) = self.with_fallback(request, |e, r| e.predict(r)).await?;
        let mut timings = Timings::default();
        timings.record_run(backend, ms_since(t));
        Ok((
            response,
            Report {
                backend,
                why,
                local: self.local_choice(backend),
                signature: self.signature_report(backend),
                timings,
            },
        ))
    }

    /// A TF Serving REST predict body in, the response body out, read and
    /// written exactly as TF Serving's REST API does (the signature named in
    /// the body decides the input dtypes); with the report.
    pub async fn predict_json(&self, body: &[u8]) -> Result<(Vec<u8>, Report), ProtocolError> {
        let metadata = self.metadata();
        let request = PredictRequest::from_json(body, |signature| {
            Ok(metadata.metadata.signature_def.get(signature)?.input_types())
        })?;
        let (response, report) = self.predict_with_report(request).await?;
        Ok((response.to_json()?, report))
    }

    /// `call` on the chosen engine, or on the remote (see [`fallback::call`]).
    async fn with_fallback<I: Clone, T>(
        &self,
        input: I,
        call: impl for<'a> Fn(&'a dyn Engine, I) -> BoxFuture<'a, Result<T, EngineError>>,
    ) -> Result<(T, BackendKind, Why), EngineError> {
        let ran = (self.backend(), &self.why);
        fallback::call(self.engine.as_ref(), ran, self.fallback.as_ref(), input, call).await
    }

    /// The images decoded and preprocessed here, in batches of at most
    /// [`DecodeOptions::max_images_per_run`], or one per image when the
    /// model takes a fixed batch of one.
    fn tensors(&self, images: &[ImageInput<'_>]) -> Result<(Vec<Tensor>, Timings), EngineError> {
        let (data, timings) = preprocess_images(&self.preprocessing, &self.decode, images, |_, e| e.into())?;
        let per_run = if self.free_batch {
            self.decode.max_images_per_run.max(1)
        } else {
            1
        };
        let item = self.preprocessing.item_len();
        let batches = if data.len() <= per_run * item {
            // The common case, without a copy.
            vec![Tensor::from_vec(
                self.preprocessing.batch_shape(images.len()),
                data,
            )?]
        } else {
            data.chunks(per_run * item)
                .map(|run| Tensor::from_vec(self.preprocessing.batch_shape(run.len() / item), run.to_vec()))
                .collect::<Result<_, _>>()?
        };
        Ok((batches, timings))
    }

    /// The images as files for a model that decodes them itself: encoded
    /// images as given (nothing re-encoded, nothing lost), pixels as PNG.
    fn files(&self, images: &[ImageInput<'_>]) -> Result<(Vec<Tensor>, Timings), EngineError> {
        let t = Instant::now();
        let mut budget = self.decode.budget();
        let files = images
            .iter()
            .map(|image| match image {
                ImageInput::Encoded(bytes) => Ok(bytes.to_vec()),
                ImageInput::Pixels { .. } => Ok(edgeserve_vision::encode_png(&decode_image(
                    image,
                    &self.decode,
                    &mut budget,
                )?)?),
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let timings = Timings {
            preprocess_ms: ms_since(t),
            ..Timings::default()
        };
        Ok((vec![Tensor::from_vec(vec![files.len()], files)?], timings))
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
        self.decode.check_count(images.len())?;
        let (batches, mut timings) = if self.takes_files {
            self.files(images)?
        } else {
            self.tensors(images)?
        };
        let t = Instant::now();
        let mut scores: Vec<Vec<f32>> = Vec::with_capacity(images.len());
        let (mut backend, mut why) = (self.backend(), self.why.clone());
        for batch in batches {
            let n = batch.batch_size().unwrap_or(1);
            let inputs = BTreeMap::from([(self.manifest.input.name.clone(), batch)]);
            if !self.served_as_files {
                edgeserve_engine::validate_inputs(self.engine.signature(), &inputs)?;
            }
            let (mut outputs, ran, reason) = self.with_fallback(inputs, |e, i| e.run(i)).await?;
            if ran != backend {
                (backend, why) = (ran, reason);
            }
            let out = outputs
                .remove(&self.manifest.output.name)
                .ok_or_else(|| EngineError::Run {
                    backend,
                    reason: format!("the model gave no output {:?}", self.manifest.output.name),
                })?;
            let values = out.into_vec::<f32>().map_err(|t| EngineError::Run {
                backend,
                reason: format!(
                    "output {:?} is {}, not float",
                    self.manifest.output.name,
                    t.dtype()
                ),
            })?;
            let per = values.len() / n.max(1);
            scores.extend(values.chunks(per.max(1)).map(<[f32]>::to_vec));
        }
        timings.record_run(backend, ms_since(t));

        let report = Report {
            backend,
            why,
            local: self.local_choice(backend),
            signature: self.signature_report(backend),
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

/// The labels, checked against the manifest.
fn read_labels(manifest: &ModelManifest, labels: Option<&str>) -> Result<Option<Labels>, EngineError> {
    match (labels, &manifest.labels) {
        (Some(text), Some(_)) => {
            manifest.verify_labels(text.as_bytes())?;
            Ok(Some(Labels::parse(text)?))
        }
        (None, Some(spec)) => Err(EngineError::Manifest(format!(
            "the manifest names labels file {} but no labels were given",
            spec.file
        ))),
        (text, None) => Ok(text.map(Labels::parse).transpose()?),
    }
}
