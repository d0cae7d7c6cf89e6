//! A kernel that fails on one of the pool's other threads (a test hook of
//! debug builds, `inject_pool_thread_fault`, makes the next piece such a
//! thread takes panic): the inference gets an error rather than waiting
//! for that piece for ever, and the next one runs as before. A test binary
//! of its own: the hook and the pool are process-wide, and a test beside
//! it could take the fault.
//!
//! In the threaded wasm build the same panic traps that thread; the
//! package's test of it is `pkg/test/threads-trap.test.mjs`.

#![cfg(all(not(target_arch = "wasm32"), debug_assertions))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::NamedTensors;
use edgeserve_protocol::Tensor;
use edgeserve_testkit::onnx::{Expansion, values};

#[test]
fn a_kernel_failing_on_another_pool_thread_fails_the_inference_and_the_next_one_runs() {
    #[cfg(target_arch = "x86_64")]
    let blocked = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let blocked = false;
    if !blocked {
        eprintln!("skipped: edgeserve's kernels need AVX2 and FMA here, and only they split work this way");
        return;
    }
    // 43 blocks of eight channels (4.3 MB, over the fusion's 4 MB), fused
    // and split between the two threads by block, each image.
    let c = Expansion {
        batch: 1,
        k: 16,
        channels: 344,
        h: 56,
        w: 56,
        kernel: 3,
        stride: 1,
        pads: [1, 1, 1, 1],
    };
    let options = CpuOptions {
        threads: Some(2),
        ..CpuOptions::default()
    };
    let engine = CpuEngine::load(&c.graph().bytes(), &options).unwrap();
    let shape = vec![c.batch, c.k, c.h, c.w];
    let x = || {
        let v = values(shape.iter().product(), 7);
        NamedTensors::from([("x".to_owned(), Tensor::from_vec(shape.clone(), v).unwrap())])
    };
    let y = |out: NamedTensors| out["y"].as_slice::<f32>().unwrap().to_vec();
    let want = y(engine.run_blocking(x()).unwrap());

    edgeserve_cpu::inject_pool_thread_fault();
    // The other thread takes a piece of most runs, but it may come too late
    // for one: the fault waits for the first piece it takes.
    let mut failed = None;
    for _ in 0..200 {
        if let Err(e) = engine.run_blocking(x()) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("no run failed: the other thread never took a piece");
    assert!(e.to_string().contains("a kernel panicked on item"), "{e}");

    // The fault is spent and nothing of the failed run is left in the way.
    for _ in 0..20 {
        assert_eq!(y(engine.run_blocking(x()).unwrap()), want);
    }
}
