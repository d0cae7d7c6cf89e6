//! Runs the module's static constructors once.
//!
//! The WebGPU backend's shader compiler (cubecl) registers ~400 items at
//! start-up with `inventory`, whose constructors wasm-ld gathers into the
//! synthetic `__wasm_call_ctors`. When no code calls that function, wasm-ld
//! assumes a "command" module, entered once, and inserts a call to it at the
//! top of every export. The package calls exports all the time: JS glue
//! allocating a string, serde-wasm-bindgen building a result object. Measured
//! in Node on the full build, re-running the constructors cost 20–23 ms per
//! `classify`, more than a third of the call, outside every timing the report
//! gives (the edge build, without cubecl, had no such gap).
//!
//! Referencing `__wasm_call_ctors` here makes wasm-ld leave the exports
//! alone; the constructors then run exactly once, from the start function
//! or, where no start function runs (wasm-bindgen-test's runner skips it),
//! from the first model load.

use std::sync::Once;

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

/// Runs the static constructors if they have not run in this instance.
pub(crate) fn ensure() {
    static DONE: Once = Once::new();
    DONE.call_once(linker::call_ctors);
}
