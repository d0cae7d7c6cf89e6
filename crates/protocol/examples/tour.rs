//! A tour of the protocol crate: a TF Serving REST request is read with the
//! signature's input types, converted to the gRPC message and back, and a
//! response is written exactly as TF Serving writes it.
//!
//! `cargo run -p edgeserve-protocol --example tour [request.json]`

use edgeserve_protocol::{
    DataType, Endpoint, Error, Format, ModelSpec, PredictRequest, PredictResponse, Route, Tensor, TensorTypes,
};
use prost::Message;

const SAMPLE: &str = r#"{
  "signature_name": "serving_default",
  "instances": [[0.5, -1.25, 3e-5], [NaN, Infinity, 7]]
}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let body = match std::env::args().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => SAMPLE.as_bytes().to_vec(),
    };
    let types = TensorTypes::from([("x".to_owned(), DataType::Float)]);
    println!("request body:\n{}\n", String::from_utf8_lossy(&body));
    let request = match PredictRequest::from_json(&body, |_| Ok(types.clone())) {
        Ok(r) => r,
        Err(e) => return Err(report(e)),
    };
    let route = Route::new("demo", Endpoint::Predict);
    println!(
        "POST {}  (signature {:?}, {:?} format)",
        route.to_path()?,
        request.signature(),
        request.format
    );
    let proto = request.to_proto(
        &ModelSpec {
            name: "demo".into(),
            ..Default::default()
        },
        &types,
    )?;
    println!("as a gRPC PredictRequest: {} bytes", proto.encoded_len());
    let (_, back) = PredictRequest::from_proto(&proto)?;
    let x = back.into_named(&types)?.remove("x").ok_or("input x missing")?;
    println!(
        "input x: shape {:?}, values {:?}\n",
        x.shape(),
        x.as_slice::<f32>().unwrap_or_default()
    );

    // A stand-in "model": y = 2x, answered in the request's format.
    let doubled: Vec<f32> = x
        .as_slice::<f32>()
        .unwrap_or_default()
        .iter()
        .map(|v| 2.0 * v)
        .collect();
    let y = Tensor::from_vec(x.shape().to_vec(), doubled)?;
    let response = PredictResponse {
        format: Format::Row,
        outputs: [("y".to_owned(), y)].into(),
    };
    println!(
        "response body, byte for byte as TF Serving writes it:\n{}",
        String::from_utf8_lossy(&response.to_json()?)
    );
    Ok(())
}

fn report(e: Error) -> Box<dyn std::error::Error> {
    eprintln!(
        "HTTP {} {}",
        e.http_status(),
        String::from_utf8_lossy(&e.to_json_body())
    );
    Box::new(e)
}
