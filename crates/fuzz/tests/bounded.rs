//! Every fuzz target over its checked-in corpus (`fuzz/corpus/<target>/`)
//! and its seeds, then a bounded, deterministic run of mutations: the same
//! inputs in every CI run, so a failure reproduces. An input that panics is
//! written to the target directory and named in the failure; add it to the
//! corpus once fixed. (Coverage-guided runs by hand: `fuzz/README.md`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_fuzz::{Rng, Target, mutate, seeds};
use std::time::{Duration, Instant};

/// Mutated inputs per target, at most; and the time each may take at most
/// (a slow machine runs fewer, the same ones first).
const MUTATIONS: usize = 50_000;
const TIME: Duration = Duration::from_secs(20);

fn corpus(target: Target) -> Vec<Vec<u8>> {
    let dir = edgeserve_testkit::repo_dir()
        .join("fuzz/corpus")
        .join(target.name());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no seed", dir.display());
    let mut inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    inputs.extend(seeds(target));
    inputs
}

/// Runs `target` on `input`; a panic is reported with the input, saved.
fn run(target: Target, input: &[u8], what: &str) {
    if std::panic::catch_unwind(|| target.run(input)).is_err() {
        let saved = std::env::temp_dir().join(format!("edgeserve-fuzz-{}-failure", target.name()));
        std::fs::write(&saved, input).unwrap();
        panic!(
            "{} panicked on {what} ({} bytes, saved as {})",
            target.name(),
            input.len(),
            saved.display()
        );
    }
}

fn fuzz(target: Target, seed: u64) {
    let inputs = corpus(target);
    for (i, input) in inputs.iter().enumerate() {
        run(target, input, &format!("corpus entry {i}"));
    }
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    let mut done = 0;
    while done < MUTATIONS && start.elapsed() < TIME {
        let mut input = inputs[rng.below(inputs.len())].clone();
        let other = &inputs[rng.below(inputs.len())];
        mutate(&mut input, other, &mut rng);
        run(target, &input, &format!("mutation {done} of seed {seed}"));
        done += 1;
    }
    eprintln!(
        "{}: {} corpus inputs, {done} mutations",
        target.name(),
        inputs.len()
    );
}

#[test]
fn rest_json() {
    fuzz(Target::RestJson, 0x5eed_0001);
}

#[test]
fn image() {
    fuzz(Target::Image, 0x5eed_0002);
}

#[test]
fn onnx() {
    fuzz(Target::Onnx, 0x5eed_0003);
}

#[test]
fn manifest() {
    fuzz(Target::Manifest, 0x5eed_0004);
}

#[test]
fn handler() {
    assert!(
        edgeserve_fuzz::handler_has_model(),
        "models/efficientnet-lite0 did not load"
    );
    fuzz(Target::Handler, 0x5eed_0005);
}

#[test]
fn the_mutator_changes_inputs_and_repeats_itself() {
    let (mut a, mut b) = (b"{\"instances\": [1]}".to_vec(), b"{\"instances\": [1]}".to_vec());
    let (mut ra, mut rb) = (Rng::new(7), Rng::new(7));
    let mut changed = 0;
    for _ in 0..100 {
        let before = a.clone();
        mutate(&mut a, b"[2, 3]", &mut ra);
        mutate(&mut b, b"[2, 3]", &mut rb);
        assert_eq!(a, b, "the same seed gives the same inputs");
        changed += usize::from(a != before);
    }
    assert!(changed > 90, "{changed} of 100 mutations changed the input");
}

#[test]
fn a_model_reading_an_undefined_name_is_refused_not_a_panic() {
    // Found by this fuzzer: an output named "log9ts" that no node defines
    // made tract's loader panic (a trap in wasm).
    let crash =
        std::fs::read(edgeserve_testkit::repo_dir().join("fuzz/corpus/onnx/crash-undefined-output-name"))
            .unwrap();
    let error = edgeserve_cpu::CpuEngine::load(&crash, &edgeserve_cpu::CpuOptions::default())
        .err()
        .expect("refused");
    assert_eq!(
        error.to_string(),
        "invalid model: the graph's output \"log9ts\" is defined by no input, initializer or node"
    );
}
