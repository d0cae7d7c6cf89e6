//! The CPU backend on a thread pool (natively `CpuOptions::threads` > 1):
//! each inference runs on one of the pool's threads, and the caller's
//! cancel scope must go there with it, or a request whose deadline passed
//! would run to its end. A test binary of its own: the pool is
//! process-wide, set by the first engine loaded with threads.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{ConvLayout, CpuEngine, CpuOptions};
use edgeserve_engine::{EngineError, NamedTensors, cancel};
use edgeserve_protocol::Tensor;
use edgeserve_testkit::onnx::{Graph, a_i, a_ints, floats, node, values};

fn engine() -> CpuEngine {
    let g = Graph::new(vec![node("Relu", &["x"], "y", vec![])], vec![("x", vec![1, 4])]);
    let options = CpuOptions {
        threads: Some(2),
        ..CpuOptions::default()
    };
    CpuEngine::load(&g.bytes(), &options).unwrap()
}

fn inputs() -> NamedTensors {
    let x = Tensor::from_vec(vec![1, 4], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap();
    NamedTensors::from([("x".to_owned(), x)])
}

#[test]
fn the_pool_runs_the_model_and_the_callers_cancel_scope_goes_with_it() {
    let engine = engine();
    assert_eq!(edgeserve_cpu::threads(), 2, "the engine loaded a 2-thread pool");

    let out = engine.run_blocking(inputs()).unwrap();
    assert_eq!(out["y"].as_slice::<f32>().unwrap(), &[0.0, 2.0, 0.0, 4.0]);

    // A live scope runs to the end; a cancelled one stops, though the work
    // runs on a pool thread, where the caller's thread-local scope is not.
    let token = cancel::CancelToken::new();
    let out = cancel::scope(&token, || engine.run_blocking(inputs())).unwrap();
    assert_eq!(out["y"].as_slice::<f32>().unwrap(), &[0.0, 2.0, 0.0, 4.0]);
    token.cancel();
    let refused = cancel::scope(&token, || engine.run_blocking(inputs()));
    assert_eq!(refused.err(), Some(EngineError::Cancelled));

    // The scope ended with the call: the next request runs.
    assert!(engine.run_blocking(inputs()).is_ok());
}

/// A depthwise 3×3 and a 1×1 convolution, each clipped, on 32 channels of
/// 28×28: both split across the pool in many pieces (planes, rows).
fn convolutions(layout: ConvLayout) -> CpuEngine {
    let (c, h) = (32usize, 28usize);
    let clip = |x: &str, y: &str| node("Clip", &[x, "lo", "hi"], y, vec![]);
    let mut g = Graph::new(
        vec![
            node(
                "Conv",
                &["x", "kd", "bd"],
                "d",
                vec![
                    a_i("group", c as i64),
                    a_ints("kernel_shape", &[3, 3]),
                    a_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            clip("d", "dc"),
            node(
                "Conv",
                &["dc", "kp", "bp"],
                "p",
                vec![a_ints("kernel_shape", &[1, 1])],
            ),
            clip("p", "y"),
        ],
        vec![("x", vec![1, c, h, h])],
    );
    g.inits = vec![
        floats("kd", &[c, 1, 3, 3], values(c * 9, 1)),
        floats("bd", &[c], values(c, 2)),
        floats("kp", &[c, c, 1, 1], values(c * c, 3)),
        floats("bp", &[c], values(c, 4)),
        floats("lo", &[], vec![0.0]),
        floats("hi", &[], vec![6.0]),
    ];
    g.outputs = vec![("y".into(), Some(vec![1, c, h, h]))];
    let options = CpuOptions {
        threads: Some(2),
        layout,
        ..CpuOptions::default()
    };
    CpuEngine::load(&g.bytes(), &options).unwrap()
}

fn image(seed: u64) -> NamedTensors {
    let x = Tensor::from_vec(vec![1, 32, 28, 28], values(32 * 28 * 28, seed)).unwrap();
    NamedTensors::from([("x".to_owned(), x)])
}

/// Runs `inputs` on both engines and asserts that `y` is tract's answer.
fn gives_tracts_answer(ours: &CpuEngine, tracts: &CpuEngine, inputs: NamedTensors, seed: u64) {
    let (got, want) = (
        ours.run_blocking(inputs.clone()).unwrap(),
        tracts.run_blocking(inputs).unwrap(),
    );
    let (got, want) = (
        got["y"].as_slice::<f32>().unwrap(),
        want["y"].as_slice::<f32>().unwrap(),
    );
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "seed {seed}, value {i}: {g} against {w}"
        );
    }
}

/// Whether the CPU has what the blocked kernels need (AVX2 and FMA).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// edgeserve's kernels split their work across the pool's threads, which
/// an inference keeps awake (`team.rs`): run after run, and with three
/// callers at once, each answer is tract's own (its convolutions, in
/// channels-last, do not go through the team). Side by side, tract's
/// convolutions (matrix products) are what crashed the process before
/// inferences took turns on the pool (`fused::on_pool`).
#[test]
fn kernels_split_across_the_pool_give_tracts_answer_run_after_run_and_side_by_side() {
    let ours = convolutions(ConvLayout::Blocked);
    let tracts = convolutions(ConvLayout::ChannelsLast);
    let check = |seed: u64| gives_tracts_answer(&ours, &tracts, image(seed), seed);
    for seed in 10..30 {
        check(seed);
    }
    std::thread::scope(|s| {
        for caller in 0..3u64 {
            s.spawn(move || {
                for seed in 0..60 {
                    check(100 + caller * 100 + seed);
                }
            });
        }
    });
}

/// A classifier head on one image, `[1, 300] → Gemm → [1, 37]`: its rows
/// split between the pool's two threads (19 and 18), each answer tract's
/// own.
#[test]
fn a_classifier_head_split_across_the_pool_gives_tracts_answer() {
    let (k, n) = (300usize, 37usize);
    let engine = |layout| {
        let g = edgeserve_testkit::onnx::gemm_head(1, k, n);
        let options = CpuOptions {
            threads: Some(2),
            layout,
            ..CpuOptions::default()
        };
        CpuEngine::load(&g.bytes(), &options).unwrap()
    };
    let (ours, tracts) = (engine(ConvLayout::Blocked), engine(ConvLayout::ChannelsLast));
    let x = |seed| {
        NamedTensors::from([(
            "x".to_owned(),
            Tensor::from_vec(vec![1, k], values(k, seed)).unwrap(),
        )])
    };
    let ops: Vec<String> = ours.profile(x(1)).unwrap().into_iter().map(|o| o.op).collect();
    assert_eq!(ops.iter().any(|o| o == "EdgeserveGemv"), avx2(), "ran {ops:?}");
    assert_eq!(
        ours.run_blocking(x(1)).unwrap()["y"]
            .as_slice::<f32>()
            .unwrap()
            .len(),
        n
    );
    for seed in 20..40 {
        gives_tracts_answer(&ours, &tracts, x(seed), seed);
    }
}

/// An expansion and its depthwise step (`testkit::onnx::Expansion`, 344
/// channels of 56×56, 4.3 MB an image), fused natively with AVX2 and FMA
/// (`EdgeserveExpandDepthwise`): each image's 43 channel blocks split
/// between the pool's two threads (22 and 21), each with its rings of rows,
/// two images a run. Run after run, the answer is tract's own.
#[test]
fn an_expansion_fused_into_its_depthwise_step_split_across_the_pool_gives_tracts_answer() {
    use edgeserve_testkit::onnx::Expansion;
    let c = Expansion {
        batch: 2,
        k: 16,
        channels: 344,
        h: 56,
        w: 56,
        kernel: 5,
        stride: 2,
        pads: [1, 1, 2, 2],
    };
    let engine = |layout| {
        let options = CpuOptions {
            threads: Some(2),
            layout,
            ..CpuOptions::default()
        };
        CpuEngine::load(&c.graph().bytes(), &options).unwrap()
    };
    let (ours, tracts) = (engine(ConvLayout::Blocked), engine(ConvLayout::ChannelsLast));
    let shape = vec![c.batch, c.k, c.h, c.w];
    let x = |seed| {
        let n = shape.iter().product();
        let v = values(n, seed).iter().map(|v| v * 2.0).collect();
        NamedTensors::from([("x".to_owned(), Tensor::from_vec(shape.clone(), v).unwrap())])
    };
    let ops: Vec<String> = ours.profile(x(1)).unwrap().into_iter().map(|o| o.op).collect();
    assert_eq!(
        ops.iter().any(|o| o == "EdgeserveExpandDepthwise"),
        avx2(),
        "ran {ops:?}"
    );
    for seed in 2..12 {
        gives_tracts_answer(&ours, &tracts, x(seed), seed);
    }
}
