//! Keeps the served versions in step with the disk, as TF Serving's file
//! system poller and its availability-preserving policy do: a new version is
//! loaded before the one it replaces is unloaded, so requests never meet a
//! model with no version.

use crate::ServeError;
use crate::batching::Batcher;
use crate::config::ModelConfig;
use crate::model_dir::{ModelStore, Servable, load_model_dir_wrapped, versions};
use edgeserve::LoadOptions;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// How many times a version that fails to load is tried while its directory
/// stays as it is (TF Serving's `max_num_load_retries` is 5 retries after
/// the first try). A directory whose files change afterwards (a copy still
/// arriving when it was first seen) is tried again, until it loads.
pub const MAX_LOAD_ATTEMPTS: u32 = 6;

/// What a version directory holds, as far as a retry cares: each file's
/// name, size and modification time. A copy still in progress changes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Fingerprint(Vec<(std::ffi::OsString, u64, Option<std::time::SystemTime>)>);

impl Fingerprint {
    fn of(dir: &std::path::Path) -> Fingerprint {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((e.file_name(), meta.len(), meta.modified().ok()))
            })
            .collect();
        files.sort();
        Fingerprint(files)
    }
}

/// The models a server holds, and the means to reload them.
pub struct Models {
    /// Replaced whole by [`Models::reload`]; read at every poll.
    configs: RwLock<Vec<ModelConfig>>,
    load: LoadOptions,
    current: RwLock<Arc<ModelStore>>,
    /// Failed load attempts by (model, version), with what the directory
    /// held at the last one; serialises polls too.
    attempts: Mutex<BTreeMap<(String, i64), (u32, Fingerprint)>>,
    /// Request batching, when on: every version loaded gets a queue.
    batcher: Option<Batcher>,
}

/// A version's change of state, as [`Models::poll`] made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The version loaded and serves requests.
    Loaded {
        /// The model.
        model: String,
        /// The version.
        version: i64,
        /// For a bare model served as tensors: why it is not served as
        /// an image classifier.
        as_tensors_because: Option<String>,
    },
    /// The version was taken out of service.
    Unloaded {
        /// The model.
        model: String,
        /// The version.
        version: i64,
    },
    /// The version failed to load.
    Failed {
        /// The model.
        model: String,
        /// The version.
        version: i64,
        /// Why.
        error: String,
    },
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transition::Loaded {
                model,
                version,
                as_tensors_because: None,
            } => write!(f, "model {model} version {version}: AVAILABLE"),
            Transition::Loaded {
                model,
                version,
                as_tensors_because: Some(why),
            } => write!(
                f,
                "model {model} version {version}: AVAILABLE, served as tensors on its graph's signature ({why})"
            ),
            Transition::Unloaded { model, version } => {
                write!(f, "model {model} version {version}: END (unloaded)")
            }
            Transition::Failed {
                model,
                version,
                error,
            } => {
                write!(
                    f,
                    "model {model} version {version}: END (failed to load: {error})"
                )
            }
        }
    }
}

impl Models {
    /// Loads what `configs` ask for, once. Fails when a model ends up with no
    /// version, or a version label points at a version that did not load.
    pub fn start(configs: Vec<ModelConfig>, load: LoadOptions) -> Result<Arc<Models>, ServeError> {
        Models::start_batched(configs, load, None)
    }

    /// [`Models::start`] with every version's engine runs batched by
    /// `batcher` (`--enable_batching`).
    pub fn start_batched(
        configs: Vec<ModelConfig>,
        load: LoadOptions,
        batcher: Option<Batcher>,
    ) -> Result<Arc<Models>, ServeError> {
        let mut store = ModelStore::new();
        for c in &configs {
            store.declare(&c.name, c.labels.clone());
        }
        let models = Arc::new(Models {
            configs: RwLock::new(configs),
            load,
            current: RwLock::new(Arc::new(store)),
            attempts: Mutex::new(BTreeMap::new()),
            batcher,
        });
        let transitions = models.poll();
        models.check_loaded(&models.configs(), &transitions)?;
        Ok(models)
    }

    /// Fails when a model of `configs` has no version loaded, or a version
    /// label points at a version that did not load; `transitions` say why.
    fn check_loaded(&self, configs: &[ModelConfig], transitions: &[Transition]) -> Result<(), ServeError> {
        let store = self.snapshot();
        for c in configs {
            let loaded = store
                .model(&c.name)
                .map(|m| m.loaded_versions())
                .unwrap_or_default();
            if loaded.is_empty() {
                versions(&c.base_path)?;
                let reason = transitions
                    .iter()
                    .find_map(|t| match t {
                        Transition::Failed { model, error, .. } if *model == c.name => Some(error.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| {
                        "no version directory (a child named by a number) the policy serves".into()
                    });
                return Err(ServeError::Model {
                    path: c.base_path.clone(),
                    reason,
                });
            }
            for (label, version) in &c.labels {
                if !loaded.contains(version) {
                    return Err(ServeError::Model {
                        path: c.base_path.clone(),
                        reason: format!(
                            "version label '{label}' points at version {version} of model {}, which is not loaded",
                            c.name
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Replaces the configured models with `configs`, as TF Serving's
    /// `HandleReloadConfigRequest`: models not in it are unloaded, new ones
    /// loaded, changed policies applied, all in one poll. A model given no
    /// preset keeps the one it had, and a new one takes the first
    /// configured model's (the server's `--preset`). A config naming a base
    /// path that cannot be read is refused with nothing changed; one whose
    /// model then loads no version fails with the new config in force.
    pub fn reload(&self, configs: Vec<ModelConfig>) -> Result<Vec<Transition>, ServeError> {
        for c in &configs {
            versions(&c.base_path)?;
        }
        let configs: Vec<ModelConfig> = {
            let mut current = self.configs.write().unwrap_or_else(PoisonError::into_inner);
            let fallback = current.first().map(|c| c.preset).unwrap_or_default();
            let configs: Vec<ModelConfig> = configs
                .into_iter()
                .map(|c| {
                    let preset = current
                        .iter()
                        .find(|old| old.name == c.name)
                        .map_or(fallback, |old| old.preset);
                    ModelConfig { preset, ..c }
                })
                .collect();
            *current = configs.clone();
            configs
        };
        let mut transitions = Vec::new();
        // Models dropped from the config go first, every version of them;
        // their status keeps answering, with every version END, as TF
        // Serving's does.
        let gone: Vec<(String, Vec<i64>)> = {
            let store = self.snapshot();
            store
                .names()
                .filter(|name| !configs.iter().any(|c| c.name == *name))
                .map(|name| {
                    let versions = store
                        .model(name)
                        .map(|m| m.loaded_versions().into_iter().collect())
                        .unwrap_or_default();
                    (name.to_owned(), versions)
                })
                .collect()
        };
        for (name, versions) in gone {
            for v in versions {
                self.publish(|s| s.unloading(&name, v));
                self.publish(|s| s.unload(&name, v));
                transitions.push(Transition::Unloaded {
                    model: name.clone(),
                    version: v,
                });
            }
        }
        for c in &configs {
            self.publish(|s| s.declare(&c.name, c.labels.clone()));
        }
        transitions.extend(self.poll());
        self.check_loaded(&configs, &transitions)?;
        Ok(transitions)
    }

    /// What requests read now.
    pub fn snapshot(&self) -> Arc<ModelStore> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether engine runs are batched (`--enable_batching`).
    pub fn batching(&self) -> Option<&crate::batching::BatchingParameters> {
        self.batcher.as_ref().map(Batcher::parameters)
    }

    /// The configured models.
    pub fn configs(&self) -> Vec<ModelConfig> {
        self.configs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, change: impl FnOnce(&mut ModelStore)) {
        let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = ModelStore::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// Reads every base path once and brings the served versions in line:
    /// loads the versions the policy wants and does not have (each visible as
    /// LOADING meanwhile), then unloads those it no longer wants. A base path
    /// that cannot be read leaves its model as it is.
    pub fn poll(&self) -> Vec<Transition> {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut transitions = Vec::new();
        for c in &self.configs() {
            let Ok(on_disk) = versions(&c.base_path) else {
                continue;
            };
            let numbers: BTreeSet<i64> = on_disk.keys().copied().collect();
            let aspired = c.policy.aspired(&numbers);
            let loaded = self
                .snapshot()
                .model(&c.name)
                .map(|m| m.loaded_versions())
                .unwrap_or_default();
            attempts.retain(|(model, v), _| *model != c.name || numbers.contains(v));
            for &v in aspired.difference(&loaded) {
                let (tries, seen) = attempts.entry((c.name.clone(), v)).or_default();
                if *tries >= MAX_LOAD_ATTEMPTS {
                    if Fingerprint::of(&on_disk[&v]) == *seen {
                        continue;
                    }
                    *tries = 0;
                }
                self.publish(|s| s.loading(&c.name, v));
                let wrap = |engine: Box<dyn edgeserve::Engine>| match &self.batcher {
                    Some(batcher) => batcher.wrap(engine),
                    None => engine,
                };
                match load_model_dir_wrapped(&on_disk[&v], &c.name, v, c.preset, &self.load, &wrap) {
                    Ok(loaded) => {
                        let servable = Servable::new(&c.name, v, loaded.model);
                        self.publish(|s| s.insert(servable));
                        attempts.remove(&(c.name.clone(), v));
                        transitions.push(Transition::Loaded {
                            model: c.name.clone(),
                            version: v,
                            as_tensors_because: loaded.as_tensors_because,
                        });
                    }
                    Err(e) => {
                        *tries += 1;
                        *seen = Fingerprint::of(&on_disk[&v]);
                        // The status route is for any client: it says what
                        // failed without the server's paths.
                        let public = e.public_message(&on_disk[&v]);
                        self.publish(|s| s.failed(&c.name, v, e.status_code(), public));
                        transitions.push(Transition::Failed {
                            model: c.name.clone(),
                            version: v,
                            error: e.to_string(),
                        });
                    }
                }
            }
            // Availability first: a version the policy no longer wants stays
            // while it is the only one serving, unless its directory is gone.
            let serving_aspired = self
                .snapshot()
                .model(&c.name)
                .is_some_and(|m| m.loaded_versions().intersection(&aspired).next().is_some());
            for &v in loaded.difference(&aspired) {
                if !serving_aspired && numbers.contains(&v) {
                    continue;
                }
                self.publish(|s| s.unloading(&c.name, v));
                // Requests already running hold their own Arc of the
                // servable; it is freed when the last of them finishes.
                self.publish(|s| s.unload(&c.name, v));
                transitions.push(Transition::Unloaded {
                    model: c.name.clone(),
                    version: v,
                });
            }
        }
        transitions
    }

    /// Polls every `every` on a thread of its own, reporting each transition
    /// to `report`, until the returned [`Poller`] is dropped.
    pub fn spawn_poller(
        self: &Arc<Self>,
        every: Duration,
        report: impl Fn(&Transition) + Send + 'static,
    ) -> Result<Poller, ServeError> {
        let (stop, stopped) = channel::<()>();
        let models = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("edgeserve-poller".into())
            .spawn(move || poll_until(&models, every, &stopped, report))
            .map_err(|e| ServeError::Io {
                path: "edgeserve-poller thread".into(),
                reason: e.to_string(),
            })?;
        Ok(Poller {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn poll_until(models: &Models, every: Duration, stopped: &Receiver<()>, report: impl Fn(&Transition)) {
    loop {
        match stopped.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => models.poll().iter().for_each(&report),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The polling thread; dropping it stops the thread and waits for it.
pub struct Poller {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
