//! Models from TF Serving's directory layout: `<base_path>/<version>/` with
//! the model, its manifest and its labels, loaded into the endpoint's
//! [`ModelStore`].

use crate::ServeError;
use edgeserve::{Classifier, LoadOptions, TensorModel};
pub use edgeserve_endpoint::models::{Model, ModelEntry, ModelStore, Servable, VersionState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name inside a version directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The version directories under `base`: children whose name parses as an
/// int64 (`00000123` is 123), as TF Serving reads them; others are ignored.
pub fn versions(base: &Path) -> Result<BTreeMap<i64, PathBuf>, ServeError> {
    let entries = std::fs::read_dir(base).map_err(|e| ServeError::Io {
        path: base.to_owned(),
        reason: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let number = entry.file_name().to_str().and_then(|n| n.parse::<i64>().ok());
        if let Some(v) = number.filter(|_| path.is_dir()) {
            out.insert(v, path);
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The model file of a version directory without a manifest, as TF
/// Serving serves a bare SavedModel directory.
pub const BARE_MODEL_FILE: &str = "model.onnx";
/// The labels file read beside [`BARE_MODEL_FILE`], when there is one.
pub const BARE_LABELS_FILE: &str = "labels.txt";

/// A loaded model directory: what it serves, and why a bare model went
/// without image preprocessing (for the server's log).
pub struct Loaded {
    /// The model.
    pub model: Model,
    /// For a bare `model.onnx` served as tensors: why no image
    /// classifier's manifest could be derived for it.
    pub as_tensors_because: Option<String>,
}

/// Loads a model directory: its manifest, the model file the manifest names,
/// and the labels file if it names one. A directory without `manifest.json`
/// that holds `model.onnx` gets the manifest `edgeserve manifest` would
/// write for it (named `name`, numbered `version`, preprocessed as
/// `preset`, with `labels.txt` when present); a bare model that is not an
/// image classifier (no such manifest fits it) is served as tensors, on its
/// graph's signature, as TF Serving serves any SavedModel.
pub fn load_model_dir(
    dir: &Path,
    name: &str,
    version: i64,
    preset: edgeserve::Preset,
    options: &LoadOptions,
) -> Result<Loaded, ServeError> {
    load_model_dir_wrapped(dir, name, version, preset, options, &|engine| engine)
}

/// [`load_model_dir`] with the model's engine passed through `wrap` (the
/// server's request batching, [`crate::batching::Batcher::wrap`]).
pub fn load_model_dir_wrapped(
    dir: &Path,
    name: &str,
    version: i64,
    preset: edgeserve::Preset,
    options: &LoadOptions,
    wrap: &dyn Fn(Box<dyn edgeserve::Engine>) -> Box<dyn edgeserve::Engine>,
) -> Result<Loaded, ServeError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let bare = !manifest_path.exists() && dir.join(BARE_MODEL_FILE).is_file();
    // The labels a bare directory's manifest was derived from are read
    // once, for its hash and for the load.
    let (manifest, manifest_bytes, model, bare_labels) = if bare {
        let model = read(&dir.join(BARE_MODEL_FILE))?;
        let labels_path = dir.join(BARE_LABELS_FILE);
        let labels = labels_path.is_file().then(|| read(&labels_path)).transpose()?;
        let derived = match edgeserve::derive_manifest(
            &model,
            &edgeserve::ManifestOptions {
                name: name.to_owned(),
                version,
                file: BARE_MODEL_FILE.into(),
                preset,
                size: None,
                output: None,
                labels: labels.as_ref().map(|bytes| edgeserve::LabelsSpec {
                    file: BARE_LABELS_FILE.into(),
                    sha256: edgeserve::sha256_hex(bytes),
                }),
            },
        ) {
            Ok(derived) => derived,
            Err(why) => return load_tensors(dir, &model, why, options, wrap),
        };
        let text = derived.to_json().into_bytes();
        (derived, text, model, labels)
    } else {
        let manifest_bytes = read(&manifest_path)?;
        let manifest =
            edgeserve::ModelManifest::from_json(&manifest_bytes).map_err(|e| ServeError::Model {
                path: manifest_path.clone(),
                reason: e.to_string(),
            })?;
        let model = read(&dir.join(&manifest.model.file))?;
        (manifest, manifest_bytes, model, None)
    };
    let labels = match &manifest.labels {
        Some(spec) => {
            let bytes = match bare_labels {
                Some(bytes) => bytes,
                None => read(&dir.join(&spec.file))?,
            };
            Some(String::from_utf8(bytes).map_err(|_| ServeError::Model {
                path: dir.join(&spec.file),
                reason: "the labels file is not UTF-8".into(),
            })?)
        }
        None => None,
    };
    let classifier = Classifier::load_wrapped(&model, &manifest_bytes, labels.as_deref(), options, wrap)
        .map_err(|e| ServeError::Model {
            path: dir.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Loaded {
        model: classifier.into(),
        as_tensors_because: None,
    })
}

/// A bare model no image classifier's manifest fits, served as tensors.
/// A file that does not load at all names both reasons.
fn load_tensors(
    dir: &Path,
    model: &[u8],
    not_a_classifier: edgeserve::EngineError,
    options: &LoadOptions,
    wrap: &dyn Fn(Box<dyn edgeserve::Engine>) -> Box<dyn edgeserve::Engine>,
) -> Result<Loaded, ServeError> {
    match TensorModel::load_wrapped(model, options, wrap) {
        Ok(tensors) => Ok(Loaded {
            model: tensors.into(),
            as_tensors_because: Some(not_a_classifier.to_string()),
        }),
        Err(e) => {
            let (e, why) = (e.to_string(), not_a_classifier.to_string());
            // A file that does not decode fails both ways alike.
            let as_classifier = if why == e {
                String::new()
            } else {
                format!(" ({why})")
            };
            Err(ServeError::Model {
                path: dir.join(BARE_MODEL_FILE),
                reason: format!(
                    "{BARE_MODEL_FILE} does not load as tensors ({e}), and no {MANIFEST_FILE} is here, \
                     nor could one be derived from it{as_classifier}; write one with `edgeserve manifest`"
                ),
            })
        }
    }
}
