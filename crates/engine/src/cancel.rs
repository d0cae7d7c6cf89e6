//! Cooperative cancellation: a host that stops waiting for a request (its
//! deadline passed) cancels its token, and the work notices at its next
//! checkpoint (between a model's operators on the CPU, between images while
//! decoding) and stops, so a 504 frees the CPU it would have held.
//!
//! The token travels in a thread-local set by [`scope`] rather than through
//! every signature: the work of one request runs on one thread (a server's
//! blocking-pool thread, or wasm's only one), and the backends' code between
//! the host and the checkpoints (the facade, the TF Serving handler) need
//! not know about it. Outside a scope nothing is ever cancelled.

use crate::EngineError;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag the host raises to stop a request's work; cheap to clone and to
/// check.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks the work under this token to stop at its next checkpoint.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Runs `work` with `token` as this thread's current token (the previous one
/// is put back afterwards, also if `work` panics).
pub fn scope<R>(token: &CancelToken, work: impl FnOnce() -> R) -> R {
    struct Restore(Option<CancelToken>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(token.clone())));
    work()
}

/// The current scope's token, to carry the scope over to another thread
/// that does this request's work.
pub fn current() -> Option<CancelToken> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether the current scope's token is cancelled (never outside a scope).
pub fn is_cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(CancelToken::is_cancelled))
}

/// [`EngineError::Cancelled`] when the current scope's token is cancelled.
pub fn checkpoint() -> Result<(), EngineError> {
    if is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_cancelled_scope_stops() {
        assert!(checkpoint().is_ok());
        let token = CancelToken::new();
        scope(&token, || {
            assert!(checkpoint().is_ok());
            token.cancel();
            assert_eq!(checkpoint(), Err(EngineError::Cancelled));
            // A nested scope with its own token is not cancelled by ours.
            scope(&CancelToken::new(), || assert!(checkpoint().is_ok()));
            assert!(is_cancelled());
        });
        assert!(checkpoint().is_ok(), "the scope ended");
    }

    #[test]
    fn the_current_token_is_the_scopes_and_none_outside() {
        assert!(current().is_none());
        let token = CancelToken::new();
        scope(&token, || {
            let carried = current().expect("inside a scope");
            token.cancel();
            assert!(carried.is_cancelled(), "the same flag, not a copy of it");
        });
        assert!(current().is_none());
    }
}
