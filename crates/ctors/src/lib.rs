//! Runs a wasm module's static constructors exactly once.
//!
//! cubecl (the WebGPU backend's shader compiler) registers ~400 items at
//! start-up through `inventory`, and tract registers its kernels the same
//! way; wasm-ld gathers those constructors into the synthetic
//! `__wasm_call_ctors`. When no code calls that function, wasm-ld treats the
//! module as a "command", entered once, and inserts a call to it at the top
//! of every export. JS calls exports all the time (the glue allocating a
//! string, a promise callback, serde-wasm-bindgen building an object), so the
//! constructors ran again and again:
//! - in the npm package (Node, full build) 20–23 ms per `classify`, more
//!   than a third of the call (benches/README.md, 2026-11-23);
//! - in a wasm-bindgen-test binary in Chromium, where every resolved GPU
//!   promise enters an export, 3–15 s of the page's main thread per run of a
//!   64×64 zoo model, long enough that chromedriver gave up on the page.
//!
//! Referencing `__wasm_call_ctors` here makes wasm-ld leave the exports
//! alone. Every entry point of a backend calls [`ensure`] before it reads
//! anything registered, so the constructors run exactly once per instance,
//! whichever entry comes first (wasm-bindgen-test's runner calls no start
//! function). Natively, the platform runs constructors and [`ensure`] does
//! nothing.

/// Runs the static constructors if they have not run in this wasm instance;
/// nothing natively.
pub fn ensure() {
    #[cfg(target_arch = "wasm32")]
    {
        static DONE: std::sync::Once = std::sync::Once::new();
        DONE.call_once(linker::call_ctors);
    }
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod linker {
    unsafe extern "C" {
        /// Synthesised by wasm-ld: every `.init_array` entry, in order.
        fn __wasm_call_ctors();
    }

    pub(super) fn call_ctors() {
        // SAFETY: the linker's constructor function takes nothing and
        // returns nothing; `Once` in the caller runs it at most once per
        // instance, before any code that reads what it registers.
        unsafe { __wasm_call_ctors() }
    }
}
