//! Batch sizes over 1 on a model whose batch is free: each runs on a plan
//! made for its size while [`CpuOptions::batch_plans`] allows, the least
//! recently used evicted, and on the shared free-batch plan beyond that;
//! every size answers as batch 1 does, row for row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::NamedTensors;
use edgeserve_protocol::Tensor;

fn half_plus_two(batch_plans: usize) -> CpuEngine {
    let options = CpuOptions {
        batch_plans: Some(batch_plans),
        ..CpuOptions::default()
    };
    CpuEngine::load(&edgeserve_testkit::onnx::half_plus_two(), &options).unwrap()
}

fn run(engine: &CpuEngine, x: Vec<f32>) -> Vec<f32> {
    let n = x.len();
    let inputs = NamedTensors::from([("x".to_owned(), Tensor::from_vec(vec![n], x).unwrap())]);
    let out = engine.run_blocking(inputs).unwrap();
    let y = out.get("y").unwrap();
    assert_eq!(y.shape(), [n]);
    y.as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn sizes_past_the_kept_plans_answer_as_batch_one_does() {
    // Sizes that come back after their plan was evicted, and more sizes
    // than are kept: with two plans kept, with none (the free plan only),
    // and with more than are asked for.
    for kept in [2, 0, 8] {
        let engine = half_plus_two(kept);
        for n in [2usize, 3, 4, 2, 5, 3, 7, 1, 2] {
            let x: Vec<f32> = (0..n).map(|i| i as f32 - 1.5).collect();
            let want: Vec<f32> = x.iter().map(|v| 0.5 * v + 2.0).collect();
            assert_eq!(run(&engine, x), want, "batch {n} with {kept} plans kept");
        }
    }
}
