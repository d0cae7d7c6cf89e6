//! Natively, edgeserve's WebGPU backend (wgpu; on a machine without a GPU,
//! Mesa's lavapipe runs Vulkan on the CPU) vs the CPU backend (tract) on
//! Lite0 batch 1: load time, first inference after load, and the median
//! of interleaved runs after warm-up, with the ratio. Not a test.
//!
//! `webgpu_vs_tract [RUNS]` from the repository root (default 20 runs).

use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::{Engine, NamedTensors};
use edgeserve_protocol::Tensor;
use edgeserve_webgpu::{WebGpuEngine, WebGpuOptions};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(20);
    let model = std::fs::read("models/efficientnet-lite0/efficientnet-lite0.onnx")?;
    let shared = std::env::var("EDGESERVE_SHARED").unwrap_or_else(|_| "../shared".into());
    let bytes = std::fs::read(format!("{shared}/fixtures/inputs/chelsea_224_nchw_f32le.bin"))?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let inputs = || -> NamedTensors {
        let t = Tensor::from_vec(vec![1, 3, 224, 224], values.clone()).expect("224×224 input");
        [("input".to_owned(), t)].into()
    };

    let t = Instant::now();
    let gpu = pollster::block_on(WebGpuEngine::load(&model, &WebGpuOptions::default()))?;
    let gpu_load = ms(t);
    let t = Instant::now();
    pollster::block_on(gpu.run(inputs()))?;
    let gpu_first = ms(t);

    let t = Instant::now();
    let cpu = CpuEngine::load(&model, &CpuOptions::default())?;
    let cpu_load = ms(t);
    let t = Instant::now();
    cpu.run_blocking(inputs())?;
    let cpu_first = ms(t);

    let (mut g, mut c) = (Vec::new(), Vec::new());
    for i in 0..runs + 3 {
        let t = Instant::now();
        pollster::block_on(gpu.run(inputs()))?;
        let gm = ms(t);
        let t = Instant::now();
        cpu.run_blocking(inputs())?;
        let cm = ms(t);
        if i >= 3 {
            g.push(gm);
            c.push(cm);
        }
    }
    let (gm, cm) = (median(g), median(c));
    let (steps, fused) = gpu.program_stats();
    println!(
        "adapter: {:?}; plan: {steps} steps, {fused} activations fused",
        gpu.adapter()
    );
    println!("| | steady (median of {runs}) | load (incl. warmup) | first inference after load |");
    println!("|---|---|---|---|");
    println!("| edgeserve WebGPU | {gm:.1} ms | {gpu_load:.0} ms | {gpu_first:.1} ms |");
    println!("| edgeserve CPU (tract, 1 thread) | {cm:.1} ms | {cpu_load:.0} ms | {cpu_first:.1} ms |");
    println!("ratio WebGPU / tract (steady): {:.2}x", gm / cm);
    Ok(())
}
