//! The threaded build's pool (built with `+atomics` and shared memory; `./x`
//! `build_threads`). Only the JS host can start a thread: the package's
//! `pkg/src/threads.js` starts one worker per thread but the first (Web
//! Workers, or Node's `worker_threads`), each instantiating this module on
//! the same memory, then calls [`threads_start`] on the thread that will
//! run the inferences, which builds a rayon pool whose first thread is that
//! one and parks the others here, and hands each worker its slot to
//! [`thread_run`]. The pool then serves tract's matrix products and the CPU
//! kernels.
//!
//! Why the calling thread is one of the pool's: with a pool of its own
//! threads only, each inference woke one of them to run it while the
//! caller waited, and that one woke the others. Three threads shared two
//! cores, and Linux often queued the woken helper behind the busy thread
//! on its core rather than on the idle one (`perf sched timehist` in
//! Chromium: 1.8–5.4 ms in the run queue, then both on one core until the
//! kernel moved one, 9–15 ms into the call), so a 2-thread Lite0 call ran
//! at one thread's speed for much of its time: 16–22 ms instead of 12 in
//! about two calls of three. With the caller as thread 0, the helper keeps
//! a core of its own from call to call and wakes there (median 0.04 ms in
//! the run queue, over 1 ms in 5 calls of 50; `benches/README.md`).
//! onnxruntime-web's pool has its caller run the same way.
//!
//! Rayon's idle threads sleep on a condition variable (`memory.atomic.wait`),
//! so an idle pool costs no CPU (during an inference they spin for its
//! work instead: `edgeserve_cpu`'s `team.rs`). The inference's thread waits
//! for its helpers the same way, which a browser's main thread may not do:
//! the package starts this build only where blocking is allowed (Node, and
//! dedicated workers of a cross-origin isolated page).

use crate::error::JsError;
use edgeserve::protocol::Code;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use wasm_bindgen::prelude::*;

/// The pool's threads after the first, built but not yet running: slot `i`
/// (pool thread `i + 1`) is taken by the worker told to run slot `i`.
static PARKED: Mutex<Vec<Option<rayon::ThreadBuilder>>> = Mutex::new(Vec::new());

/// A panic in a thread cannot leave the slots half-written (each is one
/// `take` or `push`), so a poisoned lock's contents are still right.
fn parked() -> MutexGuard<'static, Vec<Option<rayon::ThreadBuilder>>> {
    PARKED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether [`threads_start`] ran (its pool may have no parked threads).
static STARTED: AtomicBool = AtomicBool::new(false);

/// Builds the pool of `n` threads (1 to 64), the calling thread the first of
/// them, and makes the CPU backend run on it. Inferences must then run on
/// this thread. The host must call [`thread_run`] with each slot 0..n-1, one
/// per worker; until a thread runs, work waits for it. Once per instance.
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
    if STARTED.swap(true, Ordering::AcqRel) {
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
        .use_current_thread()
        .spawn_handler(|thread| {
            parked().push(Some(thread));
            Ok(())
        })
        .build()
        .map_err(|e| JsError::new("internal", Code::Internal, format!("the thread pool: {e}")))?;
    edgeserve_cpu::use_thread_pool(Arc::new(pool));
    Ok(())
}

/// Runs the pool thread parked in slot `index` (pool thread `index + 1`) on
/// the calling worker; returns only when the pool ends (never, while the
/// instance lives).
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

/// The byte address in the shared memory of the `u32` a pool thread's host
/// sets (`Atomics.store`, non-zero) once the thread has trapped:
/// `edgeserve_cpu::lost_thread_flag`. Asked before the thread runs, since
/// nothing should call into the instance on a thread after a trap there.
#[wasm_bindgen]
pub fn thread_lost_flag() -> usize {
    edgeserve_cpu::lost_thread_flag()
}

/// A test hook of debug builds: the next piece of a parallel operator that
/// a pool thread other than the inference's own takes panics there, which
/// traps that thread (`edgeserve_cpu::inject_pool_thread_fault`).
#[cfg(debug_assertions)]
#[wasm_bindgen]
pub fn debug_fault_pool_thread() {
    edgeserve_cpu::inject_pool_thread_fault();
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
