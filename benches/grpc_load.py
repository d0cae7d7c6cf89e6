#!/usr/bin/env python3
"""gRPC load on a TF Serving endpoint: `connections` calls in flight at once
for `seconds`, each a `PredictionService/Predict` of the same request, sent
by grpcio's asyncio client (gRPC's C core) over one channel per caller.
Prints one JSON line: {"rps", "p50_ms", "p99_ms", "errors"}.

The request is built once with the official `tensorflow-serving-api`
messages (the input as `tensor_content`, as `tf.make_tensor_proto` writes
an array) and sent as bytes, so that the client spends its CPU on the
calls, not on encoding: on a 2-core machine it shares the cores with the
server, as wrk does for the REST figures. Run from the venv `./x test`
makes for the gRPC tests (`~/.cache/edgeserve/tfs-venv`).

    python grpc_load.py --addr 127.0.0.1:8500 --model lite0 --input input \\
        --tensor chelsea_224_nchw_f32le.bin --shape 1,3,224,224 \\
        --connections 8 --seconds 6
"""

import argparse
import asyncio
import json
import time

import grpc
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def request_bytes(model, input_name, tensor_file, shape):
    r = predict_pb2.PredictRequest()
    r.model_spec.name = model
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    t.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]))
    with open(tensor_file, "rb") as f:
        t.tensor_content = f.read()
    r.inputs[input_name].CopyFrom(t)
    return r.SerializeToString()


async def caller(addr, body, stop_at, latencies, errors):
    # One channel (one HTTP/2 connection) per caller, as wrk opens one
    # connection per concurrent request.
    async with grpc.aio.insecure_channel(addr, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        predict = channel.unary_unary(PREDICT)
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                await predict(body, timeout=30)
                latencies.append(time.perf_counter() - start)
            except grpc.aio.AioRpcError:
                errors.append(1)


async def run(args, body):
    latencies, errors = [], []
    # Warm-up: one call, so that the model's first run is not in the figures.
    async with grpc.aio.insecure_channel(args.addr, options=[("grpc.max_receive_message_length", 64 << 20)]) as c:
        await c.unary_unary(PREDICT)(body, timeout=60)
    started = time.perf_counter()
    stop_at = started + args.seconds
    await asyncio.gather(*(caller(args.addr, body, stop_at, latencies, errors) for _ in range(args.connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3 if latencies else float("nan")
    return {"rps": len(latencies) / elapsed, "p50_ms": p(0.50), "p99_ms": p(0.99), "errors": len(errors)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--tensor", required=True, help="little-endian float32 values")
    ap.add_argument("--shape", required=True, help="comma-separated dimensions")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=6)
    args = ap.parse_args()
    body = request_bytes(args.model, args.input, args.tensor, [int(d) for d in args.shape.split(",")])
    print(json.dumps(asyncio.run(run(args, body))))


if __name__ == "__main__":
    main()
