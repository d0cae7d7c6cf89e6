//! The native pool's threads bound to CPUs (`CpuOptions::pin_threads`): by
//! default each takes a CPU of its own when the pool has no more threads
//! than the CPUs this process may use. A test binary of its own: the pool
//! is process-wide, set by the first engine loaded with threads.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_cpu::{CpuEngine, CpuOptions};
use edgeserve_engine::NamedTensors;
use edgeserve_protocol::Tensor;
use edgeserve_testkit::onnx::{Graph, node};

/// `Cpus_allowed_list` of each of this process's threads whose name starts
/// with `prefix`, from `/proc`.
fn allowed_cpus(prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap();
        found.push(line.split_once(':').unwrap().1.trim().to_owned());
    }
    found.sort();
    found
}

#[test]
fn pool_threads_each_take_a_cpu_of_their_own_when_there_are_enough() {
    let process = allowed_cpus("pinning-");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let g = Graph::new(vec![node("Relu", &["x"], "y", vec![])], vec![("x", vec![1, 4])]);
    let options = CpuOptions {
        threads: Some(2),
        ..CpuOptions::default()
    };
    let engine = CpuEngine::load(&g.bytes(), &options).unwrap();
    let x = Tensor::from_vec(vec![1, 4], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap();
    let out = engine
        .run_blocking(NamedTensors::from([("x".to_owned(), x)]))
        .unwrap();
    assert_eq!(out["y"].as_slice::<f32>().unwrap(), &[0.0, 2.0, 0.0, 4.0]);

    let pool = allowed_cpus("edgeserve-cpu-");
    assert_eq!(pool.len(), 2, "two pool threads: {pool:?}");
    if cpus >= 2 {
        // One CPU each (a single number), and not the same one.
        assert!(pool.iter().all(|c| c.parse::<usize>().is_ok()), "{pool:?}");
        assert_ne!(pool[0], pool[1], "{pool:?}");
    } else {
        // Fewer CPUs than threads: left as the process is.
        assert!(
            pool.iter().all(|c| process.first().is_none_or(|p| p == c)),
            "{pool:?}"
        );
    }
}
