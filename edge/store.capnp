# edgeserve's Worker under plain workerd, with no model inside it: the
# models are read from a directory (`models/{name}/manifest.json` and the
# files it names, as this repository lays them out), checked against their
# manifests' SHA-256 and loaded once per isolate.
#   node edge/build.mjs worker-store.js && npx workerd serve edge/store.capnp \
#     [--socket-addr http=127.0.0.1:8787] [--directory-path model-store=DIR]
# From the repository root: listens on 127.0.0.1:8787 and serves Lite0 from
# models/ (add names to LOCAL_MODELS for more). Names in MODELS (from the
# environment) are routed by their size against MAX_LOCAL_MODEL_BYTES: here,
# or to the origin TF Serving on 127.0.0.1:8501 (`--external-addr
# origin=HOST:PORT` to change it).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edgeserve),
    # Relative to the working directory (the repository root here).
    (name = "model-store", disk = (path = "models", writable = false)),
    (name = "origin", external = (address = "127.0.0.1:8501", http = ())),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const edgeserve :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "dist/worker-store.js"),
    (name = "edgeserve_bg.wasm", wasm = embed "../pkg/dist/edge/edgeserve_bg.wasm"),
  ],
  bindings = [
    (name = "LOCAL_MODELS", text = "efficientnet-lite0"),
    (name = "MODEL_STORE", service = "model-store"),
    (name = "MODELS", fromEnvironment = "MODELS"),
    (name = "MAX_LOCAL_MODEL_BYTES", fromEnvironment = "MAX_LOCAL_MODEL_BYTES"),
    (name = "ORIGIN", service = "origin"),
    (name = "ALLOWED_ORIGINS", fromEnvironment = "ALLOWED_ORIGINS"),
    (name = "API_KEY", fromEnvironment = "API_KEY"),
    (name = "PUBLIC_ENDPOINT", fromEnvironment = "PUBLIC_ENDPOINT"),
    (name = "MAX_BODY_BYTES", fromEnvironment = "MAX_BODY_BYTES"),
  ],
  compatibilityDate = "2026-11-01",
);
