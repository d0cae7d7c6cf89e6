//! A user's own ONNX file, with no hand-written manifest: `edgeserve
//! manifest` writes one from the graph, and `edgeserve serve` serves a
//! version directory that holds only `model.onnx` (and `labels.txt`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

mod common;

const LITE0: &str = "efficientnet-lite0";

fn bundled(file: &str) -> std::path::PathBuf {
    edgeserve_testkit::repo_dir()
        .join("models")
        .join(LITE0)
        .join(file)
}

#[test]
fn manifest_reads_lite0_as_its_shipped_manifest_says() {
    let dir = common::ModelDir::new("manifest-cmd");
    let model = dir.path.join("lite0.onnx");
    std::fs::copy(bundled("efficientnet-lite0.onnx"), &model).unwrap();
    std::fs::copy(
        bundled("imagenet_labels.txt"),
        dir.path.join("imagenet_labels.txt"),
    )
    .unwrap();
    let out = Command::new(common::binary("edgeserve"))
        .args(["manifest", "--preset", "inception", "--name", LITE0, "--labels"])
        .arg(dir.path.join("imagenet_labels.txt"))
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("(input \"input\" 224x224 nchw, output \"logits\", preset inception)"),
        "{stderr}"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path.join("manifest.json")).unwrap()).unwrap();
    let shipped: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundled("manifest.json")).unwrap()).unwrap();
    // Everything the graph and the files say is what the shipped manifest
    // says; only the file name and the preset's [-1, 1] (127.5, where
    // Lite0's own is 127/128) differ.
    for key in ["schema", "name", "version", "input", "output", "labels"] {
        assert_eq!(written[key], shipped[key], "{key}");
    }
    assert_eq!(written["model"]["sha256"], shipped["model"]["sha256"]);
    assert_eq!(written["model"]["bytes"], shipped["model"]["bytes"]);
    assert_eq!(written["model"]["file"], "lite0.onnx");
    assert_eq!(
        written["preprocessing"]["resize"],
        shipped["preprocessing"]["resize"]
    );
    assert_eq!(
        written["preprocessing"]["normalize"]["mean"],
        serde_json::json!([127.5, 127.5, 127.5])
    );

    // The manifest it wrote loads: the CLI classifies with it.
    let out = Command::new(common::binary("edgeserve"))
        .args(["classify", "--json", "--model"])
        .arg(&dir.path)
        .arg(edgeserve_testkit::repo_dir().join("www/samples/coffee_orig.png"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result[0]["classes"][0]["label"], "espresso", "{result}");

    // `-` writes to stdout; a graph that is not a classifier is refused
    // with the reason, and nothing is written.
    let out = Command::new(common::binary("edgeserve"))
        .args(["manifest", "--out", "-", "--size", "300"])
        .arg(&model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("whose height is 224, not the size 300 asked for"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let out = Command::new(common::binary("edgeserve"))
        .args(["manifest", "--preset", "caffe"])
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown preset \"caffe\" (expected one of imagenet, inception, raw)"),
        "{stderr}"
    );
}

#[test]
fn serve_derives_the_manifest_of_a_bare_version_directory() {
    let dir = common::ModelDir::new("manifest-bare");
    let v1 = dir.path.join("1");
    std::fs::create_dir_all(&v1).unwrap();
    std::fs::copy(bundled("efficientnet-lite0.onnx"), v1.join("model.onnx")).unwrap();
    std::fs::copy(bundled("imagenet_labels.txt"), v1.join("labels.txt")).unwrap();
    let server = common::serve(&dir, "mine", &["--preset", "inception"]);
    assert!(
        server.banner.contains("model mine version 1"),
        "{}",
        server.banner
    );

    let (status, _, body) = common::http(&server.addr, "GET", "/v1/models/mine/metadata", "", b"");
    assert_eq!(status, 200);
    let metadata: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let inputs = &metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"];
    assert_eq!(
        inputs["input"]["tensor_shape"]["dim"][2]["size"], "224",
        "{metadata}"
    );

    let photo = std::fs::read(edgeserve_testkit::repo_dir().join("www/samples/coffee_orig.png")).unwrap();
    let (status, _, body) = common::http(
        &server.addr,
        "POST",
        "/v1/models/mine:classify",
        "",
        &common::classify_body(vec![photo]),
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{json}");
    // labels.txt was found and named the classes.
    assert_eq!(json["results"][0][0][0], "espresso", "{json}");
    drop(server);

    // A bare directory whose graph is no image classifier and does not load
    // as tensors either (tests/tensors.rs serves one that does): the server
    // says why, both ways, and what to do, and does not start.
    let bad = common::ModelDir::new("manifest-bare-bad");
    let v1 = bad.path.join("1");
    std::fs::create_dir_all(&v1).unwrap();
    let graph = edgeserve_testkit::onnx::Graph::new(
        vec![edgeserve_testkit::onnx::node("NoSuchOp", &["x"], "y", vec![])],
        vec![("x", vec![1, 10])],
    );
    std::fs::write(v1.join("model.onnx"), graph.bytes()).unwrap();
    let out = common::serve_command(&bad, "flat", &["--file_system_poll_wait_seconds", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("model.onnx does not load as tensors (")
            && stderr.contains("NoSuchOp")
            && stderr.contains("no manifest.json is here, nor could one be derived from it (")
            && stderr.contains("(2-D); an image input is 4-D")
            && stderr.contains("write one with `edgeserve manifest`"),
        "{stderr}"
    );
}
