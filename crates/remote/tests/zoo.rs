//! The model zoo (`tests/zoo/`) on the remote backend: every model served
//! by a real `edgeserve serve` on 127.0.0.1 (each a bare version directory
//! holding only `model.onnx`, as a user would lay out their own), reached
//! through the TF Serving REST client, against onnxruntime's logits.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance::{block_on, zoo};
use edgeserve_remote::{RemoteConfig, RemoteEngine};
use edgeserve_testkit::process::{ModelDir, serve_config};

#[test]
fn every_zoo_model_served_matches_onnxruntime() {
    let base = ModelDir::new("zoo");
    let models = zoo::models();
    let mut config = String::from("model_config_list {\n");
    for model in &models {
        let name = model.file.trim_end_matches(".onnx");
        let dir = base.path.join(name);
        std::fs::create_dir_all(dir.join("1")).unwrap();
        std::fs::write(dir.join("1/model.onnx"), model.read()).unwrap();
        config += &format!(
            "  config {{ name: {name:?} base_path: {:?} model_platform: \"onnx\" }}\n",
            dir.display().to_string()
        );
    }
    config += "}\n";
    let config_file = base.path.join("models.config");
    std::fs::write(&config_file, config).unwrap();
    let server = serve_config(&config_file, &[]);

    let mut table = zoo::Table::default();
    for model in &models {
        let name = model.file.trim_end_matches(".onnx");
        let outcome = block_on(async {
            let remote = RemoteEngine::connect(RemoteConfig::new(server.url(), name))
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            zoo::check(&remote, model).await
        });
        match outcome {
            Ok(m) => table.pass(model, m),
            Err(why) => table.fail(model, why),
        }
    }
    let (passed, _) = table.finish("remote (edgeserve serve)");
    assert_eq!(passed, models.len());
    drop(server);
}
