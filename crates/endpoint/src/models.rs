//! The models an endpoint holds, by name and version.
//!
//! A [`ModelStore`] is meant as an immutable snapshot: requests read one,
//! and a host that loads and unloads versions (the native server's manager)
//! publishes a new one on every change, so a request never sees half a
//! change. A host with fixed models (the edge Worker) builds one at start.

use edgeserve::protocol::{
    Code, Error, ModelMetadataResponse, ModelState, PredictRequest, PredictResponse, StatusProto,
    VersionSelector,
};
use edgeserve::{Classifier, TensorModel};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A loaded model: an image classifier (predict, and `:classify` of
/// images), or a model served as tensors only (predict).
pub enum Model {
    /// An image classifier with its manifest and labels (boxed: it is
    /// many times the size of the other variant).
    Classifier(Box<Classifier>),
    /// Any other model: its graph's signature, tensors in and out.
    Tensors(TensorModel),
}

impl From<Classifier> for Model {
    fn from(c: Classifier) -> Model {
        Model::Classifier(Box::new(c))
    }
}

impl From<TensorModel> for Model {
    fn from(t: TensorModel) -> Model {
        Model::Tensors(t)
    }
}

impl Model {
    /// Answers a TF Serving predict request.
    pub async fn predict(&self, request: PredictRequest) -> Result<PredictResponse, Error> {
        match self {
            Model::Classifier(c) => c.predict(request).await,
            Model::Tensors(t) => t.predict(request).await,
        }
    }

    /// TF Serving's metadata, under the server's name and version (the URL's
    /// and the directory's, not a manifest's).
    fn metadata(&self, name: &str, version: i64) -> ModelMetadataResponse {
        match self {
            Model::Classifier(c) => {
                let mut metadata = c.metadata();
                metadata.model_spec.name = name.to_owned();
                metadata.model_spec.version = Some(VersionSelector::Number(version));
                metadata
            }
            Model::Tensors(t) => t.metadata(name, version),
        }
    }
}

/// One loaded version of a model.
pub struct Servable {
    /// The version number (the directory's name).
    pub version: i64,
    /// The loaded model.
    pub model: Model,
    /// TF Serving's metadata for it, built once: every predict request reads
    /// its signature.
    pub metadata: ModelMetadataResponse,
}

impl Servable {
    /// `model` (a [`Classifier`] or a [`TensorModel`]) served as version
    /// `version` of model `name`.
    pub fn new(name: &str, version: i64, model: impl Into<Model>) -> Servable {
        let model = model.into();
        let metadata = model.metadata(name, version);
        Servable {
            version,
            model,
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
    // Natively a Servable is Send + Sync and requests on several threads
    // share it; in wasm32 (one thread) the classifier holds JS objects, and
    // the same Arc is merely a shared pointer.
    #[allow(clippy::arc_with_non_send_sync)]
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
    pub fn declare(&mut self, name: &str, labels: BTreeMap<String, i64>) {
        self.models.entry(name.to_owned()).or_default().labels = labels;
    }

    /// Records where version `version` of model `name` stands.
    pub fn set_state(&mut self, name: &str, version: i64, state: VersionState) {
        self.models
            .entry(name.to_owned())
            .or_default()
            .states
            .insert(version, state);
    }

    /// Takes version `version` out of service; its state becomes END.
    pub fn unload(&mut self, name: &str, version: i64) {
        if let Some(entry) = self.models.get_mut(name) {
            entry.loaded.remove(&version);
            entry.states.insert(version, VersionState::ok(ModelState::End));
        }
    }

    /// Records that version `version` failed to load: END, with `code` and
    /// the reason as TF Serving's status shows them.
    pub fn failed(&mut self, name: &str, version: i64, code: Code, message: String) {
        self.set_state(
            name,
            version,
            VersionState {
                state: ModelState::End,
                status: StatusProto {
                    error_code: code,
                    error_message: message,
                },
            },
        );
    }

    /// Marks version `version` of model `name` as LOADING.
    pub fn loading(&mut self, name: &str, version: i64) {
        self.set_state(name, version, VersionState::ok(ModelState::Loading));
    }

    /// Marks version `version` of model `name` as UNLOADING.
    pub fn unloading(&mut self, name: &str, version: i64) {
        self.set_state(name, version, VersionState::ok(ModelState::Unloading));
    }
}
