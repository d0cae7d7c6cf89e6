//! Empty: it exists so that cargo resolves the `[build-dependencies]` in
//! `Cargo.toml`, whose features are the point of this crate.

fn main() {}
