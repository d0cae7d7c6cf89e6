//! What the CLI's tests share: the processes, model directories and
//! hostile images of `edgeserve_testkit`, and TF Serving request bodies.

// Each test file uses a different part of it.
#![allow(dead_code, unused_imports)]

pub use edgeserve_testkit::images::*;
pub use edgeserve_testkit::process::*;

/// A `:classify` body with one example per image, each image its own
/// bytes (`image/encoded`).
pub fn classify_body(images: Vec<Vec<u8>>) -> Vec<u8> {
    edgeserve::protocol::ExamplesRequest {
        signature_name: None,
        context: None,
        examples: images
            .into_iter()
            .map(|bytes| edgeserve::protocol::Example {
                features: [(
                    "image/encoded".to_owned(),
                    edgeserve::protocol::Feature::Bytes(vec![bytes]),
                )]
                .into(),
            })
            .collect(),
    }
    .to_json()
    .unwrap()
}

/// A preprocessed fixture photo (`../shared/fixtures/inputs/<name>_224_nchw_f32le.bin`)
/// as one Lite0 row of a REST body: `[3][224][224]` numbers.
pub fn photo_row(name: &str) -> Vec<Vec<Vec<f32>>> {
    let raw = edgeserve_testkit::shared(&format!("fixtures/inputs/{name}_224_nchw_f32le.bin"));
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    values
        .chunks(224 * 224)
        .map(|plane| plane.chunks(224).map(<[f32]>::to_vec).collect())
        .collect()
}
