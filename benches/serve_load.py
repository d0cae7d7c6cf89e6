#!/usr/bin/env python3
"""Load on `edgeserve serve`, measured with wrk: requests/s and p50/p99
latency of :predict for EfficientNet-Lite0 on loopback, at several
concurrencies, with two bodies for the same photo: a float tensor (what a
client that preprocesses sends) and the file as {"b64": ...} (a model whose
manifest says `input.encoding: "image"`, so the server decodes).

With `--batching`, two servers run side by side on the same models, one
without and one with `--enable_batching` (`--batching-parameters`, TF
Serving's text format), and each concurrency is measured on both in turn
(interleaved), with the ratio of their throughputs. There, `--grpc-python`
(the gRPC tests' venv) measures each server over gRPC too (`grpc_load.py`:
the same tensor as `tensor_content`), and `--peer-python` (the KServe
venv) adds a peer: onnxruntime behind KServe's V1 server
(`tests/peers/kserve_onnx.py`, as many onnxruntime threads as the machine
has cores), sent the same REST body by the same wrk.

Not a test: it prints a markdown table. Every process it starts binds
127.0.0.1 and is stopped by pid before it returns.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
"""


def wrk_units(value, unit):
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[unit]
    return float(value) * scale


def run_wrk(url, body, connections, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(LUA)
    try:
        out = subprocess.run(
            ["wrk", "-t", str(min(connections, 2)), "-c", str(connections),
             "-d", f"{seconds}s", "--latency", "--timeout", "30s", "-s", lua.name, url],
            env={**os.environ, "BODY": body}, capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: wrk_units(*re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s|m)\b", out).groups())
           for p in ("50", "99")}
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket = re.search(r"Socket errors:.*", out)
    return rps, lat["50"], lat["99"], int(errors.group(1)) if errors else 0, socket.group(0) if socket else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="edgeserve binary")
    ap.add_argument("--payload", required=True, help="payload binary")
    ap.add_argument("--model-dir", required=True, help="bundled Lite0 directory")
    ap.add_argument("--image", required=True)
    ap.add_argument("--connections", default="1,8,32")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--batching", action="store_true",
                    help="compare batching off and on (float-tensor body only)")
    ap.add_argument("--grpc-python", help="with --batching: a Python with tensorflow-serving-api, for gRPC load")
    ap.add_argument("--peer-python", help="with --batching: a Python with kserve and onnxruntime, for the peer")
    ap.add_argument("--tensor", help="with --grpc-python: Lite0's preprocessed input (little-endian float32)")
    ap.add_argument("--batching-parameters",
                    default="max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000 }\n"
                            "max_enqueued_batches { value: 64 }\nnum_batch_threads { value: 2 }\n")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="edgeserve-load-")
    servers = []
    try:
        for name, encoding in (("lite0", "tensor"), ("lite0_b64", "image")):
            version = os.path.join(work, name, "1")
            os.makedirs(version)
            for f in os.listdir(args.model_dir):
                if f.endswith((".onnx", ".txt")):
                    os.symlink(os.path.abspath(os.path.join(args.model_dir, f)), os.path.join(version, f))
            manifest = json.load(open(os.path.join(args.model_dir, "manifest.json")))
            manifest["input"]["encoding"] = encoding
            json.dump(manifest, open(os.path.join(version, "manifest.json"), "w"))
        config = os.path.join(work, "models.config")
        with open(config, "w") as f:
            f.write("model_config_list {\n")
            for name in ("lite0", "lite0_b64"):
                f.write(f'  config {{ name: "{name}" base_path: "{name}" model_platform: "onnx" }}\n')
            f.write("}\n")

        sizes = json.loads(subprocess.run(
            [args.payload, os.path.join(args.model_dir, "manifest.json"), args.image, work],
            capture_output=True, text=True, check=True).stdout)

        def start(extra):
            proc = subprocess.Popen(
                [args.server, "serve", "--rest_api_port", "0", "--port", "0",
                 "--rest_api_max_pending_requests", "256", "--model_config_file", config, *extra],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            servers.append(proc)
            deadline = time.time() + 120
            while time.time() < deadline:
                line = proc.stdout.readline()
                if not line:
                    sys.exit("edgeserve serve exited before printing its address")
                m = re.search(r"on (http://\S+)", line)
                if m:
                    grpc = re.search(r"gRPC on (127\.0\.0\.1:\d+)", line)
                    return m.group(1), grpc.group(1) if grpc else None
            sys.exit("edgeserve serve did not print its address in 120 s")

        if args.batching:
            params = os.path.join(work, "batching.config")
            with open(params, "w") as f:
                f.write(args.batching_parameters)
            off, off_grpc = start([])
            on, on_grpc = start(["--enable_batching", "--batching_parameters_file", params])
            body = os.path.join(work, "float.json")
            # Each side: (label, REST predict URL, gRPC address or None).
            sides = [("off", f"{off}/v1/models/lite0:predict", off_grpc),
                     ("on", f"{on}/v1/models/lite0:predict", on_grpc)]
            if args.peer_python:
                peer = subprocess.Popen(
                    [args.peer_python, os.path.join(os.path.dirname(__file__), "..", "tests", "peers", "kserve_onnx.py"),
                     "--name", "lite0", "--onnx", os.path.join(args.model_dir, "efficientnet-lite0.onnx"),
                     "--threads", str(os.cpu_count())],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                servers.append(peer)
                sides.append(("kserve", f"{peer.stdout.readline().strip()}/v1/models/lite0:predict", None))
            for _, url, _ in sides:
                run_wrk(url, body, 1, 2)  # warm-up

            def grpc_load(addr, c):
                out = subprocess.run(
                    [args.grpc_python, os.path.join(os.path.dirname(__file__), "grpc_load.py"), "--addr", addr,
                     "--model", "lite0", "--input", "input", "--tensor", args.tensor, "--shape", "1,3,224,224",
                     "--connections", str(c), "--seconds", str(args.seconds)],
                    capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                return r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], ""

            rows = []
            for c in (int(x) for x in args.connections.split(",")):
                measured = {}
                for label, url, grpc in sides:
                    runs = [("REST", lambda: run_wrk(url, body, c, args.seconds))]
                    if args.grpc_python and grpc:
                        runs.append(("gRPC", lambda: grpc_load(grpc, c)))
                    for api, measure in runs:
                        measured[(label, api)] = measure()
                        rps, p50, p99, bad, sock = measured[(label, api)]
                        print(f"{label:6} {api:4} c={c:<3} {rps:8.1f} req/s  p50 {p50:8.2f} ms  "
                              f"p99 {p99:8.2f} ms  errors {bad} {sock}", file=sys.stderr)
                rows.append((c, measured))
            print(f"\nbatching parameters: {args.batching_parameters!r}\n")
            print("| connections | API | off: req/s | off: p50 / p99 | on: req/s | on: p50 / p99 | on / off | errors (off, on) |")
            print("|---|---|---|---|---|---|---|---|")
            for c, m in rows:
                for api in ("REST", "gRPC"):
                    if ("off", api) not in m:
                        continue
                    a, b = m[("off", api)], m[("on", api)]
                    print(f"| {c} | {api} | {a[0]:.1f} | {a[1]:.1f} / {a[2]:.1f} ms | {b[0]:.1f} | "
                          f"{b[1]:.1f} / {b[2]:.1f} ms | {b[0] / a[0]:.2f}x | {a[3]}, {b[3]} |")
            if args.peer_python:
                print("\n| connections | KServe + onnxruntime: req/s | p50 / p99 | edgeserve (off) / KServe | errors |")
                print("|---|---|---|---|---|")
                for c, m in rows:
                    k, a = m[("kserve", "REST")], m[("off", "REST")]
                    print(f"| {c} | {k[0]:.1f} | {k[1]:.1f} / {k[2]:.1f} ms | {a[0] / k[0]:.2f}x | {k[3]} |")
            return

        url, _ = start([])

        rows = []
        for label, model, body in (("float tensor", "lite0", "float.json"),
                                   ("b64 file", "lite0_b64", "b64.json")):
            endpoint = f"{url}/v1/models/{model}:predict"
            run_wrk(endpoint, os.path.join(work, body), 1, 2)  # warm-up
            for c in (int(x) for x in args.connections.split(",")):
                rps, p50, p99, bad, sock = run_wrk(endpoint, os.path.join(work, body), c, args.seconds)
                rows.append((label, c, rps, p50, p99, bad, sock))
                print(f"{label:12} c={c:<3} {rps:8.1f} req/s  p50 {p50:8.2f} ms  p99 {p99:8.2f} ms"
                      f"  non-2xx {bad} {sock}", file=sys.stderr)

        print(f"\nimage {sizes['image_bytes']:,} B; float-tensor body {sizes['float']['bytes']:,} B "
              f"(client encode {sizes['float']['encode_ms']:.2f} ms); b64 body {sizes['b64']['bytes']:,} B "
              f"(client encode {sizes['b64']['encode_ms']:.2f} ms)\n")
        print("| body | connections | requests/s | p50 | p99 | non-2xx |")
        print("|---|---|---|---|---|---|")
        for label, c, rps, p50, p99, bad, _ in rows:
            print(f"| {label} | {c} | {rps:.1f} | {p50:.1f} ms | {p99:.1f} ms | {bad} |")
    finally:
        for server in servers:
            os.kill(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
