//! Models from TF Serving's directory layout: `<base_path>/<version>/` with
//! the model, its manifest and its labels, loaded into the endpoint's
//! [`ModelStore`].

use crate::ServeError;
use edgeserve::{Classifier, LoadOptions};
pub use edgeserve_endpoint::models::{ModelEntry, ModelStore, Servable, VersionState};
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

/// Loads a model directory: its manifest, the model file the manifest names,
/// and the labels file if it names one.
pub fn load_model_dir(dir: &Path, options: &LoadOptions) -> Result<Classifier, ServeError> {
    let manifest_bytes = read(&dir.join(MANIFEST_FILE))?;
    let manifest = edgeserve::ModelManifest::from_json(&manifest_bytes).map_err(|e| ServeError::Model {
        path: dir.join(MANIFEST_FILE),
        reason: e.to_string(),
    })?;
    let model = read(&dir.join(&manifest.model.file))?;
    let labels = match &manifest.labels {
        Some(spec) => {
            let bytes = read(&dir.join(&spec.file))?;
            Some(String::from_utf8(bytes).map_err(|_| ServeError::Model {
                path: dir.join(&spec.file),
                reason: "the labels file is not UTF-8".into(),
            })?)
        }
        None => None,
    };
    Classifier::load(&model, &manifest_bytes, labels.as_deref(), options).map_err(|e| ServeError::Model {
        path: dir.to_owned(),
        reason: e.to_string(),
    })
}
