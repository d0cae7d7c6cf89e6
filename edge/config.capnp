# edgeserve's Worker under plain workerd:
#   node edge/build.mjs && ORIGIN_AUTHORIZATION='Bearer …' \
#     npx workerd serve edge/config.capnp [--socket-addr http=127.0.0.1:8787] \
#       [--external-addr origin=127.0.0.1:8501]
# Listens on 127.0.0.1:8787; Lite0 runs here, Lite2 goes to the origin TF
# Serving (the `origin` service, 127.0.0.1:8501 unless overridden). Secrets
# and per-deployment values come from the environment.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edgeserve),
    (name = "origin", external = (address = "127.0.0.1:8501", http = ())),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const edgeserve :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "dist/worker.js"),
    (name = "edgeserve_bg.wasm", wasm = embed "../pkg/dist/edge/edgeserve_bg.wasm"),
    (name = "models/efficientnet-lite0/efficientnet-lite0.onnx", data = embed "../models/efficientnet-lite0/efficientnet-lite0.onnx"),
    (name = "models/efficientnet-lite0/manifest.json", json = embed "../models/efficientnet-lite0/manifest.json"),
    (name = "models/efficientnet-lite0/imagenet_labels.txt", text = embed "../models/efficientnet-lite0/imagenet_labels.txt"),
  ],
  bindings = [
    (name = "LOCAL_MODELS", text = "efficientnet-lite0"),
    (name = "PROXY_MODELS", text = "efficientnet-lite2"),
    (name = "ORIGIN", service = "origin"),
    (name = "ORIGIN_AUTHORIZATION", fromEnvironment = "ORIGIN_AUTHORIZATION"),
    (name = "ALLOWED_ORIGINS", fromEnvironment = "ALLOWED_ORIGINS"),
    (name = "API_KEY", fromEnvironment = "API_KEY"),
    (name = "PUBLIC_ENDPOINT", fromEnvironment = "PUBLIC_ENDPOINT"),
    (name = "MAX_BODY_BYTES", fromEnvironment = "MAX_BODY_BYTES"),
  ],
  compatibilityDate = "2026-11-01",
);
