//! Compiles the hand-written TF Serving `.proto` files with `protox` (a pure
//! Rust protobuf compiler), so building needs no `protoc` on the machine.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tensorflow_serving/apis/predict.proto",
        "proto/tensorflow_serving/apis/get_model_status.proto",
        "proto/tensorflow_serving/apis/get_model_metadata.proto",
        // The services' files pull in every message they use (classify,
        // regress, multi-inference, model management); prost generates
        // no code for the services themselves (edgeserve-grpc does).
        "proto/tensorflow_serving/apis/prediction_service.proto",
        "proto/tensorflow_serving/apis/model_service.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    // Ordered maps make encoding deterministic, so re-encoded messages can be
    // compared byte for byte with TF Serving's.
    config.btree_map(["."]);
    config.out_dir(&out);
    config.compile_fds(fds)?;
    Ok(())
}
