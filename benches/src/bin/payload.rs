//! The client side of a request, measured: for one photo, the body of a
//! float-tensor predict request (decode, preprocess as the manifest says,
//! JSON) against a `{"b64": …}` request carrying the file itself. Writes
//! both bodies for the load benchmark and prints sizes and median encode
//! times as JSON.
//!
//! `payload MANIFEST.json IMAGE OUT_DIR [RUNS]`

use edgeserve_engine::ModelManifest;
use edgeserve_protocol::{PredictRequest, Tensor};
use std::time::Instant;

fn median_ms(
    runs: usize,
    mut f: impl FnMut() -> Result<Vec<u8>, Box<dyn std::error::Error>>,
) -> Result<(f64, Vec<u8>), Box<dyn std::error::Error>> {
    let mut times = Vec::with_capacity(runs);
    let mut body = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        body = f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], body))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (manifest, image, out, runs) = match &args[1..] {
        [m, i, o] => (m, i, o, 30),
        [m, i, o, r] => (m, i, o, r.parse()?),
        _ => return Err("usage: payload MANIFEST.json IMAGE OUT_DIR [RUNS]".into()),
    };
    let manifest = ModelManifest::from_json(&std::fs::read(manifest)?)?;
    let pre = manifest.preprocessing();
    let file = std::fs::read(image)?;
    let (float_ms, float_body) = median_ms(runs, || {
        let decoded = edgeserve_vision::decode(&file, &Default::default())?;
        let tensor = pre.to_tensor(&[decoded])?;
        Ok(PredictRequest::instances(tensor).to_json()?)
    })?;
    let (b64_ms, b64_body) = median_ms(runs, || {
        let tensor = Tensor::from_vec(vec![1], vec![file.clone()])?;
        Ok(PredictRequest::instances(tensor).to_json()?)
    })?;
    let out = std::path::Path::new(out);
    std::fs::write(out.join("float.json"), &float_body)?;
    std::fs::write(out.join("b64.json"), &b64_body)?;
    println!(
        "{{\"image_bytes\": {}, \"float\": {{\"bytes\": {}, \"encode_ms\": {float_ms:.3}}}, \"b64\": {{\"bytes\": {}, \"encode_ms\": {b64_ms:.3}}}}}",
        file.len(),
        float_body.len(),
        b64_body.len()
    );
    Ok(())
}
