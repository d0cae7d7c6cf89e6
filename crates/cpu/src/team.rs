//! The pool's other threads kept awake for one inference, so that
//! edgeserve's kernels share their work without a wake-up per operator.
//!
//! Why: rayon puts an idle thread to sleep within microseconds, so every
//! parallel operator began by waking one, and ended with the operator's
//! thread asleep until the other half was done and woke it. In the
//! threaded wasm build each wake-up is `memory.atomic.notify` through the
//! browser, and Lite0 has about fifty such operators a run: the second
//! thread gained 1.12–1.18× there (`benches/README.md`). During an
//! inference a team's helpers instead look for rayon work without sleeping,
//! and the thread that splits an operator spins until its pieces are done.
//! A helper leaves after a bounded idle spell (a long serial stretch), and
//! all leave when the inference ends: nothing spins while the pool is idle.
//! onnxruntime's pool spins between operators the same way.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Non-zero once one of the pool's threads is gone: in the threaded wasm
/// build, a trap there (a panic aborts in wasm, so `catch_unwind` cannot
/// stop it) ends that thread's work mid-item. The thread's host sets it
/// (`pkg/src/threads.js`), since nothing runs in the instance on that
/// thread any more. Its items would never be counted done, and the thread
/// that split the operator spun for them for ever; it checks this instead.
/// Never cleared: an instance is not called again after a trap (`pkg/src/api.js`).
static LOST: AtomicU32 = AtomicU32::new(0);

/// The address of the flag a pool thread's host sets when the thread dies
/// (see [`LOST`]), for the host to set it in the shared memory without
/// calling into the instance.
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
pub(crate) fn lost_flag_address() -> usize {
    std::ptr::from_ref(&LOST).addr()
}

/// Ends this thread if one of the pool's threads died ([`LOST`]) while
/// this one waits for `done` of an operator's `len` pieces. No error can be
/// returned from there: its rayon scope would wait for the dead thread's
/// piece. So this thread ends as the other one did (in wasm a panic traps),
/// and its host gets the trap.
pub(crate) fn end_if_a_thread_died(done: usize, len: usize) {
    if LOST.load(Ordering::Acquire) != 0 {
        died(done, len);
    }
}

#[cold]
#[allow(
    clippy::panic,
    reason = "a trap is the only way out of the wait, see end_if_a_thread_died"
)]
fn died(done: usize, len: usize) -> ! {
    panic!("a thread of the pool died during this operator ({done} of {len} pieces done)")
}

/// A test hook, in debug builds only: the next item of a parallel operator
/// that a thread other than the inference's own claims panics there, as a
/// bug in a kernel would.
#[cfg(debug_assertions)]
static FAULT: AtomicBool = AtomicBool::new(false);

/// Arms [`FAULT`].
#[cfg(debug_assertions)]
pub(crate) fn inject_helper_fault() {
    FAULT.store(true, Ordering::Release);
}

/// Polls of an idle helper before it goes back to rayon (and sleeps): a
/// poll is a look for work in the pool's queues, plus a `pause` natively
/// (`spin_loop` is a no-op in wasm). Both come to a few milliseconds at
/// most, many times the gap between two operators of a CNN.
#[cfg(target_arch = "wasm32")]
const IDLE_POLLS: u32 = 1 << 16;
#[cfg(not(target_arch = "wasm32"))]
const IDLE_POLLS: u32 = 1 << 14;

/// One inference's team.
pub(crate) struct Team {
    /// Set when the inference ends: helpers leave.
    closed: AtomicBool,
    /// Helpers asked for and not yet gone.
    helping: AtomicUsize,
    /// The pool thread running the inference: a helper job it pops itself
    /// returns at once.
    owner: Option<usize>,
}

thread_local! {
    /// The team of the inference running on this thread.
    static CURRENT: RefCell<Option<Arc<Team>>> = const { RefCell::new(None) };
}

impl Team {
    /// Runs `work` (an inference, on a pool thread) with a team, which
    /// [`Team::current`] gives to the kernels it runs.
    pub(crate) fn with<R>(work: impl FnOnce() -> R) -> R {
        let team = Arc::new(Team {
            closed: AtomicBool::new(false),
            helping: AtomicUsize::new(0),
            owner: rayon::current_thread_index(),
        });
        let previous = CURRENT.with(|c| c.replace(Some(team.clone())));
        // Closed however `work` ends, so that no helper spins on.
        struct Close(Arc<Team>, Option<Arc<Team>>);
        impl Drop for Close {
            fn drop(&mut self) {
                self.0.closed.store(true, Ordering::Release);
                CURRENT.with(|c| *c.borrow_mut() = self.1.take());
            }
        }
        let _close = Close(team, previous);
        work()
    }

    /// The team of the inference running on this thread, if any.
    pub(crate) fn current() -> Option<Arc<Team>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Panics here if [`FAULT`] is armed and this is not the inference's
    /// own thread (a debug build's test hook).
    #[cfg(debug_assertions)]
    #[allow(clippy::panic, reason = "the hook's whole point: a kernel's panic")]
    pub(crate) fn fault_here(&self) {
        if rayon::current_thread_index() != self.owner && FAULT.swap(false, Ordering::AcqRel) {
            panic!("a fault injected into a pool thread (a test hook of debug builds)");
        }
    }

    /// Asks for helpers until the pool's other `threads - 1` threads are
    /// (or will be, once awake) looking for work.
    pub(crate) fn keep_awake(self: &Arc<Team>, threads: usize) {
        while self.helping.load(Ordering::Acquire) + 1 < threads {
            self.helping.fetch_add(1, Ordering::AcqRel);
            let team = self.clone();
            rayon::spawn(move || team.help());
        }
    }

    /// A helper: runs whatever rayon work there is, without sleeping, until
    /// the team closes or nothing comes for [`IDLE_POLLS`].
    fn help(&self) {
        if rayon::current_thread_index() != self.owner {
            let mut idle = 0u32;
            while !self.closed.load(Ordering::Acquire) && idle < IDLE_POLLS {
                if rayon::yield_now() == Some(rayon::Yield::Executed) {
                    idle = 0;
                } else {
                    idle += 1;
                    std::hint::spin_loop();
                }
            }
        }
        self.helping.fetch_sub(1, Ordering::AcqRel);
    }
}
