//! One side of an interleaved benchmark: loads a model on the CPU backend,
//! then answers commands on stdin so a driver can alternate it with a peer
//! (onnxruntime) run for run. Each run is timed here, inside the process, so
//! the pipe does not count.
//!
//! `tract_worker MODEL.onnx INPUT.bin THREADS [blocked|nchw|nhwc [BATCH [BATCH_PLANS]]]`, then lines of
//! `run` (prints microseconds), `profile` (prints `op nodes micros` lines,
//! then `end`), or `quit`.

use edgeserve_cpu::{ConvLayout, CpuEngine, CpuOptions};
use edgeserve_engine::{Engine, NamedTensors};
use edgeserve_protocol::Tensor;
use std::io::{BufRead, Write};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tract_worker MODEL.onnx INPUT.bin THREADS [blocked|nchw|nhwc [BATCH [BATCH_PLANS]]]";
    let [model, input, threads, rest @ ..] = &args[1..] else {
        return Err(usage.into());
    };
    let layout = match rest.first().map(String::as_str) {
        None => ConvLayout::default(),
        Some("blocked") => ConvLayout::Blocked,
        Some("nchw") => ConvLayout::AsModel,
        Some("nhwc") => ConvLayout::ChannelsLast,
        Some(_) => return Err(usage.into()),
    };
    // BATCH copies of the input along a dynamic first dimension: what a
    // server's request batching hands the engine.
    let batch: usize = rest.get(1).map_or(Ok(1), |b| b.parse())?;
    // CpuOptions::batch_plans (0: batches over 1 on the free-batch plan).
    let batch_plans = rest.get(2).map(|b| b.parse()).transpose()?;
    let threads: usize = threads.parse()?;
    let t = Instant::now();
    let options = CpuOptions {
        threads: Some(threads),
        layout,
        batch_plans,
        pin_threads: None,
    };
    let engine = CpuEngine::load(&std::fs::read(model)?, &options)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let spec = engine
        .signature()
        .inputs
        .first()
        .ok_or("model has no input")?
        .clone();
    if batch > 1 && spec.shape.first().is_some_and(Option::is_some) {
        return Err(format!("batch {batch}: the model's batch dimension is fixed").into());
    }
    let one: Vec<f32> = std::fs::read(input)?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let values = one.repeat(batch);
    let shape: Vec<usize> = spec
        .shape
        .iter()
        .enumerate()
        .map(|(i, d)| d.unwrap_or(if i == 0 { batch } else { 1 }))
        .collect();
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
