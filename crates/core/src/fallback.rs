//! The remote that answers a request the local backend failed on.

use edgeserve_engine::EngineError;
use edgeserve_remote::{RemoteConfig, RemoteEngine};
use std::sync::{Arc, Mutex, PoisonError};

/// The remote that answers when the local backend fails on a request,
/// connected on first need (a classifier that never fails never touches the
/// network).
pub(crate) struct Fallback {
    pub(crate) config: RemoteConfig,
    pub(crate) engine: Mutex<Option<Arc<RemoteEngine>>>,
}

impl Fallback {
    pub(crate) async fn engine(&self) -> Result<Arc<RemoteEngine>, EngineError> {
        if let Some(e) = self.engine.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(e);
        }
        let fresh = Arc::new(RemoteEngine::connect(self.config.clone()).await?);
        *self.engine.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }
}

/// A failure of the backend itself, not of the request or the image: the
/// only kind another backend may do better on.
pub(crate) fn backend_failed(e: &EngineError) -> bool {
    matches!(e, EngineError::Run { .. })
}
