//! The threaded build's pool (built with `+atomics` and shared memory; `./x`
//! `build_threads`). Only the JS host can start a thread: the package's
//! `pkg/src/threads.js` starts one worker per thread (Web Workers, or Node's
//! `worker_threads`), each instantiating this module on the same memory,
//! then calls [`threads_start`], which builds a rayon pool whose threads it
//! parks here, and hands each worker its index to [`thread_run`]. The pool
//! then serves tract's matrix products and the CPU kernels.
//!
//! Rayon's idle threads sleep on a condition variable (`memory.atomic.wait`),
//! so an idle pool costs no CPU (during an inference they spin for its
//! work instead: `edgeserve_cpu`'s `team.rs`). A thread that waits for the pool blocks the
//! same way, which a browser's main thread may not do: the package starts
//! this build only where blocking is allowed (Node, and dedicated workers of
//! a cross-origin isolated page).

use crate::error::JsError;
use edgeserve::protocol::Code;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use wasm_bindgen::prelude::*;

/// The pool's threads, built but not yet running: slot `i` is taken by the
/// worker told to run thread `i`.
static PARKED: Mutex<Vec<Option<rayon::ThreadBuilder>>> = Mutex::new(Vec::new());

/// A panic in a thread cannot leave the slots half-written (each is one
/// `take` or `push`), so a poisoned lock's contents are still right.
fn parked() -> MutexGuard<'static, Vec<Option<rayon::ThreadBuilder>>> {
    PARKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds the pool of `n` threads (1 to 64) and makes the CPU backend run on
/// it. The host must then call [`thread_run`] with each index 0..n, one per
/// worker; until a thread runs, work waits for it. Once per instance.
#[wasm_bindgen]
pub fn threads_start(n: usize) -> Result<(), JsValue> {
    if !(1..=64).contains(&n) {
        return Err(JsError::new(
            "invalid_options",
            Code::InvalidArgument,
            format!("threads: expected 1 to 64, got {n}"),
        )
        .into());
    }
    if !parked().is_empty() {
        return Err(JsError::new(
            "internal",
            Code::FailedPrecondition,
            "the thread pool was already started",
        )
        .into());
    }
    // No worker runs yet (the host tells them after this returns), so the
    // main thread never waits for this lock: it may not block in a browser.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .spawn_handler(|thread| {
            parked().push(Some(thread));
            Ok(())
        })
        .build()
        .map_err(|e| JsError::new("internal", Code::Internal, format!("the thread pool: {e}")))?;
    edgeserve_cpu::use_thread_pool(Arc::new(pool));
    Ok(())
}

/// Runs pool thread `index` on the calling worker; returns only when the
/// pool ends (never, while the instance lives).
#[wasm_bindgen]
pub fn thread_run(index: usize) -> Result<(), JsValue> {
    let thread = parked().get_mut(index).and_then(Option::take);
    let thread = thread.ok_or_else(|| {
        JsError::new(
            "internal",
            Code::Internal,
            format!("no pool thread {index} waits to run"),
        )
    })?;
    thread.run();
    Ok(())
}

/// The compiled module, for the workers to instantiate.
#[wasm_bindgen]
pub fn wasm_module() -> JsValue {
    wasm_bindgen::module()
}

/// The shared memory, for the workers to instantiate the module on.
#[wasm_bindgen]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}
