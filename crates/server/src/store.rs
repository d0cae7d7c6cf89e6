//! The models a server holds, loaded from TF Serving's directory layout:
//! `<base_path>/<version>/` with the model, its manifest and its labels.

use crate::ServeError;
use edgeserve::protocol::{ModelMetadataResponse, VersionSelector};
use edgeserve::{Classifier, LoadOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The manifest's file name inside a version directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One loaded version of a model.
pub struct Servable {
    /// The version number (the directory's name).
    pub version: i64,
    /// The loaded model.
    pub classifier: Classifier,
    /// TF Serving's metadata for it, built once: every predict request reads
    /// its signature.
    pub metadata: ModelMetadataResponse,
}

impl Servable {
    /// `classifier` served as version `version` of model `name`.
    pub fn new(name: &str, version: i64, classifier: Classifier) -> Servable {
        let mut metadata = classifier.metadata();
        // The name and version are the server's (the URL's and the
        // directory's), not the manifest's.
        metadata.model_spec.name = name.to_owned();
        metadata.model_spec.version = Some(VersionSelector::Number(version));
        Servable {
            version,
            classifier,
            metadata,
        }
    }
}

/// Models by name, each with its loaded versions.
#[derive(Default)]
pub struct ModelStore {
    models: BTreeMap<String, BTreeMap<i64, Arc<Servable>>>,
}

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

impl ModelStore {
    /// An empty store.
    pub fn new() -> ModelStore {
        ModelStore::default()
    }

    /// Loads the latest version (the highest number) under `base` as model
    /// `name`: TF Serving's default policy, `latest { num_versions: 1 }`.
    pub fn load_latest(&mut self, name: &str, base: &Path, options: &LoadOptions) -> Result<i64, ServeError> {
        let (version, dir) = versions(base)?.pop_last().ok_or_else(|| ServeError::Model {
            path: base.to_owned(),
            reason: "no version directory (a child named by a number) was found".into(),
        })?;
        let servable = Servable::new(name, version, load_model_dir(&dir, options)?);
        self.insert(servable);
        Ok(version)
    }

    /// Adds (or replaces) one version of a model, under the name it was
    /// loaded as.
    pub fn insert(&mut self, servable: Servable) {
        self.models
            .entry(servable.metadata.model_spec.name.clone())
            .or_default()
            .insert(servable.version, Arc::new(servable));
    }

    /// The loaded versions of `name`, oldest first.
    pub fn versions_of(&self, name: &str) -> Option<&BTreeMap<i64, Arc<Servable>>> {
        self.models.get(name)
    }

    /// The names of the models held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }
}
