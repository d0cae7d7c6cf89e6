//! One side of an interleaved benchmark: loads a model on the CPU backend,
//! then answers commands on stdin so a driver can alternate it with a peer
//! (onnxruntime) run for run. Each run is timed here, inside the process, so
//! the pipe does not count.
//!
//! `tract_worker MODEL.onnx INPUT.bin THREADS [blocked|nchw|nhwc]`, then lines of
//! `run` (prints microseconds), `profile` (prints `op nodes micros` lines,
//! then `end`), or `quit`.

use edgeserve_cpu::{ConvLayout, CpuEngine, CpuOptions};
use edgeserve_engine::{Engine, NamedTensors};
use edgeserve_protocol::Tensor;
use std::io::{BufRead, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (model, input, threads, layout) = match &args[1..] {
        [m, i, t] => (m, i, t, ConvLayout::default()),
        [m, i, t, l] if l == "blocked" => (m, i, t, ConvLayout::Blocked),
        [m, i, t, l] if l == "nchw" => (m, i, t, ConvLayout::AsModel),
        [m, i, t, l] if l == "nhwc" => (m, i, t, ConvLayout::ChannelsLast),
        _ => return Err("usage: tract_worker MODEL.onnx INPUT.bin THREADS [blocked|nchw|nhwc]".into()),
    };
    let threads: usize = threads.parse()?;
    let t = Instant::now();
    let options = CpuOptions {
        threads: Some(threads),
        layout,
    };
    let engine = CpuEngine::load(&std::fs::read(model)?, &options)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let spec = engine
        .signature()
        .inputs
        .first()
        .ok_or("model has no input")?
        .clone();
    let values: Vec<f32> = std::fs::read(input)?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let shape: Vec<usize> = spec.shape.iter().map(|d| d.unwrap_or(1)).collect();
    let tensor = Tensor::from_vec(shape, values)?;
    let inputs = || NamedTensors::from([(spec.name.clone(), tensor.clone())]);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {load_ms:.1}")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "run" => {
                let inputs = inputs();
                let t = Instant::now();
                let result = engine.run_blocking(inputs)?;
                let micros = t.elapsed().as_secs_f64() * 1e6;
                drop(result);
                writeln!(out, "{micros:.1}")?;
            }
            "profile" => {
                for op in engine.profile(inputs())? {
                    writeln!(out, "{} {} {:.1}", op.op.replace(' ', "_"), op.nodes, op.micros)?;
                }
                writeln!(out, "end")?;
            }
            "quit" => break,
            other => writeln!(out, "error unknown command {other:?}")?,
        }
        out.flush()?;
    }
    Ok(())
}
