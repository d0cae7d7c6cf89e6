//! Generates the services of edgeserve-protocol's `.proto` files (compiled
//! by `protox`, so no `protoc` is needed), reusing that crate's messages
//! rather than generating a second copy of them.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../protocol/proto");
    let files = [
        "tensorflow_serving/apis/prediction_service.proto",
        "tensorflow_serving/apis/model_service.proto",
    ];
    println!("cargo:rerun-if-changed={}", protos.display());
    let fds = protox::compile(files, [&protos])?;
    tonic_prost_build::configure()
        .extern_path(".tensorflow", "::edgeserve_protocol::pb::tensorflow")
        .compile_fds(fds)?;
    Ok(())
}
