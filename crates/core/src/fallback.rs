//! Fallback: when it is allowed, and the remote that answers a request the
//! local backend failed on. Every failure a remote may answer passes
//! through here, so the report's `LocalRunFailed` has one author.

use crate::options::LoadOptions;
use crate::routing::{Backend, Why};
use edgeserve_engine::{BackendKind, BoxFuture, Engine, EngineError, ModelSignature};
use edgeserve_remote::{RemoteConfig, RemoteEngine, SignatureSource};
use std::sync::{Arc, Mutex, PoisonError};

/// The remote that answers when the local backend fails on a request,
/// connected on first need (a classifier that never fails never touches the
/// network).
pub(crate) struct Fallback {
    config: RemoteConfig,
    /// The manifest's signature, for a remote without TF Serving's metadata.
    known: ModelSignature,
    engine: Mutex<Option<Arc<RemoteEngine>>>,
}

/// The remote a local model may fall back to under `options`: only under
/// `auto`, with fallback on and a remote configured.
pub(crate) fn allowed(options: &LoadOptions) -> Option<&RemoteConfig> {
    let auto = options.backend == Backend::Auto && options.fallback;
    options.remote.as_ref().filter(|_| auto)
}

impl Fallback {
    /// A fallback to `config`, not yet connected; `known` is the manifest's
    /// signature.
    pub(crate) fn new(config: RemoteConfig, known: ModelSignature) -> Fallback {
        Fallback {
            config,
            known,
            engine: Mutex::new(None),
        }
    }

    /// Where the remote's signature came from, once it is connected.
    pub(crate) fn signature_source(&self) -> Option<SignatureSource> {
        let engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        engine.as_ref().map(|e| e.signature_source().clone())
    }

    async fn engine(&self) -> Result<Arc<RemoteEngine>, EngineError> {
        if let Some(e) = self.engine.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(e);
        }
        let fresh =
            Arc::new(RemoteEngine::connect_with_signature(self.config.clone(), self.known.clone()).await?);
        *self.engine.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }
}

/// `call` on `local` (the backend `ran`, chosen for `why`), or on the
/// remote when the local backend itself fails and there is a `fallback`;
/// the result, the backend that answered and why. The input is kept for
/// the remote only when there is one to fall back to.
pub(crate) async fn call<I: Clone, T>(
    local: &dyn Engine,
    (ran, why): (BackendKind, &Why),
    fallback: Option<&Fallback>,
    input: I,
    call: impl for<'a> Fn(&'a dyn Engine, I) -> BoxFuture<'a, Result<T, EngineError>>,
) -> Result<(T, BackendKind, Why), EngineError> {
    let kept = fallback.map(|_| input.clone());
    match (call(local, input).await, kept, fallback) {
        (Ok(out), _, _) => Ok((out, ran, why.clone())),
        (Err(e), Some(input), Some(fallback)) if backend_failed(&e) => {
            let why = Why::LocalRunFailed {
                backend: ran,
                error: e.to_string(),
            };
            let remote = fallback.engine().await?;
            let out = call(remote.as_ref(), input).await?;
            Ok((out, BackendKind::Remote, why))
        }
        (Err(e), _, _) => Err(e),
    }
}

/// A failure of the backend itself, not of the request or the image: the
/// only kind another backend may do better on.
fn backend_failed(e: &EngineError) -> bool {
    matches!(e, EngineError::Run { .. })
}
