//! `edgeserve serve --enable_batching`: requests that arrive together are
//! answered exactly as without batching, whatever their batch sizes and
//! transport; a burst beyond the queue's bound is refused with TF Serving's
//! UNAVAILABLE at once while every request it accepted is answered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;

/// half_plus_two (tensors) and Lite0 (a classifier) in a config file, with
/// a batching parameters file beside it.
fn setup(tag: &str, batching: &str) -> (common::ModelDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = common::ModelDir::new(tag);
    let hpt = dir.path.join("half_plus_two/1");
    std::fs::create_dir_all(&hpt).unwrap();
    std::fs::write(hpt.join("model.onnx"), edgeserve_testkit::onnx::half_plus_two()).unwrap();
    common::copy_model("efficientnet-lite0", &dir.path.join("lite0/1"));
    let config = dir.path.join("models.config");
    let entry = |n: &str| {
        format!(
            "config {{ name: '{n}' base_path: '{}' }}\n",
            dir.path.join(n).display()
        )
    };
    std::fs::write(
        &config,
        format!(
            "model_config_list {{\n{}{}}}\n",
            entry("half_plus_two"),
            entry("lite0")
        ),
    )
    .unwrap();
    let params = dir.path.join("batching.config");
    std::fs::write(&params, batching).unwrap();
    (dir, config, params)
}

fn post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, _, body) = common::http(addr, "POST", path, "", body.as_bytes());
    (status, serde_json::from_slice(&body).unwrap())
}

/// Sends each `(path, body)` from its own thread, 20 ms apart, all in
/// flight together; the answers in order.
fn together(addr: &str, requests: &[(&str, String)]) -> Vec<((u16, Value), Duration)> {
    let threads: Vec<_> = requests
        .iter()
        .map(|(path, body)| {
            let (addr, path, body) = (addr.to_owned(), (*path).to_owned(), body.clone());
            std::thread::sleep(Duration::from_millis(20));
            std::thread::spawn(move || {
                let started = Instant::now();
                (post(&addr, &path, &body), started.elapsed())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn requests_of_mixed_batch_sizes_arriving_together_get_the_unbatched_answers() {
    // The eight Lite0 rows below fill one batch, which then runs at once.
    let (_dir, config, params) = setup(
        "batching-same",
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 5000000 }\nnum_batch_threads { value: 1 }\n",
    );
    let plain = common::serve_config(&config, &[]);
    let params_flag = params.to_str().unwrap();
    let batched = common::serve_config(
        &config,
        &["--enable_batching", "--batching_parameters_file", params_flag],
    );
    let (chelsea, coffee) = (common::photo_row("chelsea"), common::photo_row("coffee"));
    let lite0 = "/v1/models/lite0:predict";
    let requests = vec![
        (lite0, json!({"instances": [chelsea]}).to_string()),
        (lite0, json!({"instances": [coffee, chelsea]}).to_string()),
        (
            lite0,
            json!({"inputs": {"input": [coffee, coffee, chelsea]}}).to_string(),
        ),
        (lite0, json!({"instances": [chelsea, coffee]}).to_string()),
    ];
    let started = Instant::now();
    let answers = together(&batched.addr, &requests);
    // One batch: the wait ended when it filled, not at its 5 s timeout.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    for ((path, body), ((status, answer), _)) in requests.iter().zip(answers) {
        assert_eq!(status, 200, "{answer}");
        let (status, expected) = post(&plain.addr, path, body);
        assert_eq!(status, 200, "{expected}");
        assert_eq!(answer, expected, "the batched answer differs for {path}");
    }
}

#[test]
fn a_burst_beyond_the_queue_is_refused_at_once_and_the_accepted_are_answered() {
    // One batch of at most four rows, waiting up to 5 s to fill.
    let (_dir, config, params) = setup(
        "batching-burst",
        "max_batch_size { value: 4 }\nbatch_timeout_micros { value: 5000000 }\n\
         max_enqueued_batches { value: 1 }\nnum_batch_threads { value: 1 }\n",
    );
    let params_flag = params.to_str().unwrap();
    let server = common::serve_config(
        &config,
        &["--enable_batching", "--batching_parameters_file", params_flag],
    );
    let hpt = "/v1/models/half_plus_two:predict";
    // Three rows wait for a fourth; three more do not fit beside them and
    // are refused at once; then one row fills the batch, and both run.
    let first = {
        let addr = server.addr.clone();
        std::thread::spawn(move || post(&addr, hpt, r#"{"instances": [1.0, 2.0, 3.0]}"#))
    };
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (status, refused) = post(&server.addr, hpt, r#"{"instances": [4.0, 5.0, 6.0]}"#);
    assert_eq!(status, 503, "{refused}");
    assert_eq!(
        refused["error"],
        "The batch scheduling queue to which this task was submitted is full"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once, not after {:?}",
        started.elapsed()
    );
    assert_eq!(
        post(&server.addr, hpt, r#"{"instances": [7.0]}"#),
        (200, json!({"predictions": [5.5]}))
    );
    assert_eq!(
        first.join().unwrap(),
        (200, json!({"predictions": [2.5, 3.0, 3.5]}))
    );
    // A request larger than a batch, and the server answering after.
    let (status, body) = post(&server.addr, hpt, r#"{"instances": [1.0, 2.0, 3.0, 4.0, 5.0]}"#);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "Task size 5 is larger than maximum batch size 4");
}
