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
