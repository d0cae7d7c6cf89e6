//! The models a server holds, loaded from TF Serving's directory layout:
//! `<base_path>/<version>/` with the model, its manifest and its labels.
//!
//! A [`ModelStore`] is an immutable snapshot: requests read one, and the
//! [`Models`](crate::Models) manager publishes a new one whenever a version is
//! loaded or unloaded, so a request never sees half a change.

use crate::ServeError;
use edgeserve::protocol::{Code, ModelMetadataResponse, ModelState, StatusProto, VersionSelector};
use edgeserve::{Classifier, LoadOptions};
use std::collections::{BTreeMap, BTreeSet};
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

/// Where one version of a model stands, as TF Serving's status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionState {
    /// LOADING, AVAILABLE, UNLOADING or END.
    pub state: ModelState,
    /// OK, or why the version failed to load.
    pub status: StatusProto,
}

impl VersionState {
    fn ok(state: ModelState) -> VersionState {
        VersionState {
            state,
            status: StatusProto::default(),
        }
    }
}

/// One model: its loaded versions, the state of every version it has known,
/// and its version labels.
#[derive(Clone, Default)]
pub struct ModelEntry {
    loaded: BTreeMap<i64, Arc<Servable>>,
    states: BTreeMap<i64, VersionState>,
    labels: BTreeMap<String, i64>,
}

impl ModelEntry {
    /// The version serving requests that name no version: the highest one
    /// loaded.
    pub fn latest(&self) -> Option<&Arc<Servable>> {
        self.loaded.values().next_back()
    }

    /// Version `v`, when it is loaded.
    pub fn version(&self, v: i64) -> Option<&Arc<Servable>> {
        self.loaded.get(&v)
    }

    /// The version a label points at.
    pub fn label(&self, label: &str) -> Option<i64> {
        self.labels.get(label).copied()
    }

    /// Every version this model has known, with its state, oldest first.
    /// Unloaded and failed versions stay, as END.
    pub fn states(&self) -> &BTreeMap<i64, VersionState> {
        &self.states
    }

    /// The version numbers loaded now.
    pub fn loaded_versions(&self) -> BTreeSet<i64> {
        self.loaded.keys().copied().collect()
    }
}

/// Models by name: a snapshot of what the server holds.
#[derive(Clone, Default)]
pub struct ModelStore {
    models: BTreeMap<String, ModelEntry>,
}

impl ModelStore {
    /// An empty store.
    pub fn new() -> ModelStore {
        ModelStore::default()
    }

    /// Adds (or replaces) one version of a model, under the name it was
    /// loaded as, and marks it AVAILABLE.
    pub fn insert(&mut self, servable: Servable) {
        let entry = self
            .models
            .entry(servable.metadata.model_spec.name.clone())
            .or_default();
        entry
            .states
            .insert(servable.version, VersionState::ok(ModelState::Available));
        entry.loaded.insert(servable.version, Arc::new(servable));
    }

    /// Model `name`.
    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.models.get(name)
    }

    /// The names of the models held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// Declares model `name` (so that its status answers while its first
    /// version loads) with its labels.
    pub(crate) fn declare(&mut self, name: &str, labels: BTreeMap<String, i64>) {
        self.models.entry(name.to_owned()).or_default().labels = labels;
    }

    pub(crate) fn set_state(&mut self, name: &str, version: i64, state: VersionState) {
        self.models
            .entry(name.to_owned())
            .or_default()
            .states
            .insert(version, state);
    }

    /// Takes version `version` out of service; its state becomes END.
    pub(crate) fn unload(&mut self, name: &str, version: i64) {
        if let Some(entry) = self.models.get_mut(name) {
            entry.loaded.remove(&version);
            entry.states.insert(version, VersionState::ok(ModelState::End));
        }
    }

    pub(crate) fn failed(&mut self, name: &str, version: i64, error: &ServeError) {
        let code = match error {
            ServeError::Io { .. } => Code::NotFound,
            _ => Code::InvalidArgument,
        };
        self.set_state(
            name,
            version,
            VersionState {
                state: ModelState::End,
                status: StatusProto {
                    error_code: code,
                    error_message: error.to_string(),
                },
            },
        );
    }

    pub(crate) fn loading(&mut self, name: &str, version: i64) {
        self.set_state(name, version, VersionState::ok(ModelState::Loading));
    }

    pub(crate) fn unloading(&mut self, name: &str, version: i64) {
        self.set_state(name, version, VersionState::ok(ModelState::Unloading));
    }
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
