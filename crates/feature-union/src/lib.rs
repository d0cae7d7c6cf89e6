//! Build-time only, no code: its `Cargo.toml` names every third-party crate
//! whose features differed between edgeserve's wasm32 cargo invocations,
//! with the union of those features, so that every invocation builds the
//! same artifacts and a cold `./x test` compiles tract, burn and wgpu for
//! wasm32 once per set of compiler flags instead of once per invocation.
//! `edgeserve-protocol`, which every wasm32 crate of the workspace depends
//! on, depends on it for wasm32 only.
