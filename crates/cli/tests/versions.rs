//! Model versions in `edgeserve serve`, as TF Serving manages them: a new
//! version directory is picked up by polling while requests keep running, a
//! removed one is unloaded, and `--model_config_file` serves several models
//! with version policies and labels.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::protocol::PredictRequest;
use edgeserve_conformance as suite;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

fn json(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, _, body) = common::http(addr, method, path, "", body);
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&body)));
    (status, value)
}

/// `(version, state)` of every version the status lists.
fn states(addr: &str, model: &str) -> Vec<(String, String)> {
    let (status, body) = json(addr, "GET", &format!("/v1/models/{model}"), b"");
    assert_eq!(status, 200, "{body}");
    body["model_version_status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_owned(),
                v["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies a model in as `version` the way TF Serving asks deployments to:
/// into a directory whose name is not a number, then renamed, so the poller
/// never sees half a model.
fn deploy(dir: &common::ModelDir, version: u32) {
    let staging = dir.path.join(format!("staging-{version}"));
    common::copy_model("efficientnet-lite0", &staging);
    std::fs::rename(&staging, dir.path.join(version.to_string())).unwrap();
}

/// The distinct states each version went through, in the order seen.
fn history(seen: &[Vec<(String, String)>], version: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for snapshot in seen {
        if let Some((_, state)) = snapshot.iter().find(|(v, _)| v == version)
            && out.last() != Some(state)
        {
            out.push(state.clone());
        }
    }
    out
}

#[test]
fn new_versions_load_under_load_and_removed_ones_unload() {
    let dir = common::ModelDir::new("versions-reload");
    dir.add_version(1, "efficientnet-lite0");
    let server = common::serve(&dir, "lite0", &["--file_system_poll_wait_seconds", "1"]);
    let addr = server.addr.clone();
    assert_eq!(states(&addr, "lite0"), [("1".into(), "AVAILABLE".into())]);

    let body = Arc::new(
        PredictRequest::instances(suite::fixture_input("chelsea", 224))
            .to_json()
            .unwrap(),
    );
    let want_top1 = suite::reference_top5("efficientnet-lite0.onnx", "chelsea")[0];
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (addr, body, stop, ok, failed) = (
                addr.clone(),
                body.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, json) = json(&addr, "POST", "/v1/models/lite0:predict", &body);
                    let row: Vec<f32> = json["predictions"][0]
                        .as_array()
                        .map(|r| r.iter().map(|x| x.as_f64().unwrap_or(f64::NAN) as f32).collect())
                        .unwrap_or_default();
                    if status == 200 && suite::top_k_indices(&row, 1) == [want_top1] {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.lock().unwrap().push(format!("{status}: {json}"));
                    }
                }
            })
        })
        .collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let (addr, stop, seen) = (addr.clone(), stop.clone(), seen.clone());
        // One last snapshot after the stop: a status call still running when
        // the test stops could otherwise be the last one seen, and miss a
        // state the test waited for (seen on a loaded machine).
        std::thread::spawn(move || {
            loop {
                let last = stop.load(Ordering::Relaxed);
                let now = states(&addr, "lite0");
                seen.lock().unwrap().push(now);
                if last {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    wait_for("requests to run", || ok.load(Ordering::Relaxed) >= 2);

    let at_deploy = ok.load(Ordering::Relaxed);
    deploy(&dir, 2);
    let latest = |v: &str| {
        let (status, meta) = json(&addr, "GET", "/v1/models/lite0/metadata", b"");
        status == 200 && meta["model_spec"]["version"] == v
    };
    wait_for("version 2 to serve and version 1 to unload", || {
        states(&addr, "lite0") == [("2".into(), "AVAILABLE".into()), ("1".into(), "END".into())]
    });
    assert!(latest("2"));
    let during_reload = ok.load(Ordering::Relaxed) - at_deploy;
    eprintln!("{during_reload} predictions answered while version 2 was picked up and loaded");
    assert!(during_reload > 0, "no request ran across the reload");
    let (status, body) = json(&addr, "GET", "/v1/models/lite0/versions/1/metadata", b"");
    assert_eq!(status, 404, "{body}");
    let before_removal = ok.load(Ordering::Relaxed);

    // Removing version 2's directory unloads it; version 1, still on disk,
    // is the latest again and comes back.
    std::fs::remove_dir_all(dir.path.join("2")).unwrap();
    wait_for("version 1 to serve again and version 2 to unload", || {
        states(&addr, "lite0") == [("2".into(), "END".into()), ("1".into(), "AVAILABLE".into())]
    });
    assert!(latest("1"));
    wait_for("requests after the reload", || {
        ok.load(Ordering::Relaxed) >= before_removal + 2
    });
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().unwrap());
    watcher.join().unwrap();

    let failed = failed.lock().unwrap();
    let ok = ok.load(Ordering::Relaxed);
    eprintln!("{ok} predictions during two reloads, {} failed", failed.len());
    assert!(
        failed.is_empty(),
        "{} of {} failed: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..1]
    );

    let seen = seen.lock().unwrap();
    let v1 = history(&seen, "1");
    let v2 = history(&seen, "2");
    eprintln!("version 1: {v1:?}; version 2: {v2:?}");
    assert_eq!(
        v2,
        ["LOADING", "AVAILABLE", "END"],
        "version 2 as the status showed it"
    );
    assert_eq!(
        v1,
        ["AVAILABLE", "END", "LOADING", "AVAILABLE"],
        "version 1 as the status showed it"
    );
}

fn serve_config(config: &std::path::Path) -> common::Proc {
    common::serve_config(config, &[])
}

/// Runs `edgeserve serve` expecting it to refuse to start; its stderr.
fn refused(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgeserve"))
        .args(["serve", "--rest_api_port", "0", "--port", "0"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn model_config_file_serves_policies_and_labels() {
    let root = common::ModelDir::new("versions-config");
    for v in [1, 2, 3] {
        common::copy_model("efficientnet-lite0", &root.path.join("a").join(v.to_string()));
    }
    common::copy_model("efficientnet-lite0", &root.path.join("b/5"));
    let config = root.path.join("models.config");
    let a = root.path.join("a");
    std::fs::write(
        &config,
        format!(
            r#"# TF Serving's ModelServerConfig, text format.
model_config_list {{
  config {{
    name: "a"
    base_path: "{}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 versions: 3 }} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 3 }}
  }}
  config {{ name: "b" base_path: "b" }}
}}
"#,
            a.display()
        ),
    )
    .unwrap();
    let server = serve_config(&config);
    assert!(
        server.banner.contains("model a version 1,3, model b version 5"),
        "{}",
        server.banner
    );
    let addr = &server.addr;
    assert_eq!(
        states(addr, "a"),
        [("3".into(), "AVAILABLE".into()), ("1".into(), "AVAILABLE".into())]
    );
    assert_eq!(states(addr, "b"), [("5".into(), "AVAILABLE".into())]);

    for (label, version) in [("stable", "1"), ("canary", "3")] {
        let (status, meta) = json(addr, "GET", &format!("/v1/models/a/labels/{label}/metadata"), b"");
        assert_eq!(
            (status, meta["model_spec"]["version"].as_str()),
            (200, Some(version))
        );
        let (status, body) = json(addr, "GET", &format!("/v1/models/a/labels/{label}"), b"");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["model_version_status"][0]["version"], version);
    }
    let request = PredictRequest::instances(suite::fixture_input("coffee", 224))
        .to_json()
        .unwrap();
    for path in ["/v1/models/a/labels/canary:predict", "/v1/models/b:predict"] {
        let (status, body) = json(addr, "POST", path, &request);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let refusals = [
        (
            "GET",
            "/v1/models/a/versions/2",
            404,
            "Could not find version 2 of model a",
        ),
        (
            "POST",
            "/v1/models/a/versions/2:predict",
            404,
            "Servable not found for request: Specific(a, 2)",
        ),
        (
            "GET",
            "/v1/models/a/labels/nope",
            400,
            "Unrecognized servable version label: nope",
        ),
        (
            "POST",
            "/v1/models/b/labels/stable:predict",
            400,
            "Unrecognized servable version label: stable",
        ),
    ];
    for (method, path, code, message) in refusals {
        let (status, body) = json(addr, method, path, &request);
        assert_eq!((status, body["error"].as_str()), (code, Some(message)), "{path}");
    }
    drop(server);

    // Configs that cannot be served stop the server before it listens, and
    // say where.
    let bad = root.path.join("bad.config");
    std::fs::write(
        &bad,
        "model_config_list {\n  config { name: 'a' base_path: 'a' versions: 3 }\n}\n",
    )
    .unwrap();
    let e = refused(&["--model_config_file".as_ref(), bad.as_os_str()]);
    assert!(
        e.contains("bad.config:2:37: unknown field 'versions' in config"),
        "{e}"
    );
    std::fs::write(
        &bad,
        "model_config_list { config { name: 'a' base_path: 'a' version_labels { key: 'x' value: 2 } } }",
    )
    .unwrap();
    let e = refused(&["--model_config_file".as_ref(), bad.as_os_str()]);
    assert!(
        e.contains("version label 'x' points at version 2 of model a, which is not loaded"),
        "{e}"
    );
    let e = refused(&["--model_base_path".as_ref(), root.path.join("empty").as_os_str()]);
    assert!(e.contains("empty"), "{e}");
}

/// The status of `model`'s version `v` in the server's store, as the
/// status route shows it: its state and its error message.
fn store_status(models: &edgeserve_server::Models, model: &str, v: i64) -> (String, String) {
    let store = models.snapshot();
    let states = store.model(model).unwrap().states();
    let s = &states[&v];
    (format!("{:?}", s.state), s.status.error_message.clone())
}

#[test]
fn a_version_copied_in_place_loads_once_its_files_have_all_arrived() {
    let dir = common::ModelDir::new("half-copied");
    dir.add_version(1, "efficientnet-lite0");
    let config = edgeserve_server::ModelConfig::single("lite0", dir.path.clone());
    let models = edgeserve_server::Models::start(vec![config], edgeserve::LoadOptions::default()).unwrap();
    // Version 2's directory appears before its files, and every try fails
    // until the tries run out.
    let v2 = dir.path.join("2");
    std::fs::create_dir(&v2).unwrap();
    for _ in 0..edgeserve_server::manager::MAX_LOAD_ATTEMPTS + 2 {
        models.poll();
    }
    let (state, message) = store_status(&models, "lite0", 2);
    assert_eq!(state, "End", "{message}");
    // The status route says what is missing, not where the server keeps it.
    assert!(message.starts_with("manifest.json: "), "{message}");
    assert!(!message.contains(&*dir.path.to_string_lossy()), "{message}");
    // Polls of an unchanged directory do not try again.
    assert!(models.poll().is_empty());
    // The files arrive (the copy was still running): tried again, loaded.
    common::copy_model("efficientnet-lite0", &v2);
    let transitions = models.poll();
    assert!(
        transitions
            .iter()
            .any(|t| matches!(t, edgeserve_server::Transition::Loaded { version: 2, .. })),
        "{transitions:?}"
    );
    assert_eq!(store_status(&models, "lite0", 2).0, "Available");
}

#[test]
fn manifest_files_stay_inside_their_version_directory() {
    let dir = common::ModelDir::new("escape");
    dir.add_version(1, "efficientnet-lite0");
    let config = edgeserve_server::ModelConfig::single("lite0", dir.path.clone());
    let models = edgeserve_server::Models::start(vec![config], edgeserve::LoadOptions::default()).unwrap();
    // The policy serves the latest version: each bad one is the newest when
    // it is polled.
    for (version, file) in [
        (2, "../../../../etc/passwd"),
        (3, "/etc/passwd"),
        (4, "sub/labels.txt"),
    ] {
        let v = dir.add_version(version, "efficientnet-lite0");
        let manifest = std::fs::read_to_string(v.join("manifest.json")).unwrap();
        let manifest = manifest.replace("\"imagenet_labels.txt\"", &format!("{file:?}"));
        std::fs::write(v.join("manifest.json"), manifest).unwrap();
        models.poll();
        let (state, message) = store_status(&models, "lite0", version.into());
        assert_eq!(state, "End", "{message}");
        assert!(message.contains("labels.file"), "{message}");
        assert!(message.contains("must be a plain file name"), "{message}");
        assert!(!message.contains("root:"), "{message}");
        assert!(!message.contains(&*dir.path.to_string_lossy()), "{message}");
    }
}
