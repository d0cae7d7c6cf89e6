"""Runs a plan of gRPC calls against a TF Serving endpoint with the official
`tensorflow-serving-api` client (its `PredictionServiceStub` and
`ModelServiceStub`, tensors made and read by TensorFlow's own
`make_tensor_proto`/`make_ndarray`), and prints one JSON result per call.

A peer, not ours: the Rust test that runs it (crates/cli/tests/grpc.rs)
compares what it prints with the REST API's answers and onnxruntime's.

    python tfs_grpc_client.py --addr 127.0.0.1:8500 < plan.json

Each plan item is an object with "call" (predict, classify, regress,
multi_inference, metadata, status, reload, or together: several calls in
flight at once) and its arguments; each result
is {"ok": true, ...} or {"ok": false, "code": "INVALID_ARGUMENT",
"details": "..."}.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    model_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402


def spec_of(item, spec):
    spec.name = item["model"]
    if item.get("version") is not None:
        spec.version.value = item["version"]
    if item.get("label"):
        spec.version_label = item["label"]
    if item.get("signature"):
        spec.signature_name = item["signature"]


def tensor_of(t):
    """A TensorProto: from a file of little-endian float32s or a list of
    values through TensorFlow's make_tensor_proto (tensor_content), or with
    "float_val" set, the typed field written by hand (one value may stand
    for the whole shape)."""
    if "float_val" in t:
        p = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
        p.tensor_shape.CopyFrom(
            tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in t["shape"]])
        )
        p.float_val.extend(t["float_val"])
        return p
    if "file" in t:
        values = np.fromfile(t["file"], dtype="<f4").reshape(t["shape"])
    else:
        values = np.asarray(t["values"], dtype=t.get("dtype", "float32"))
    return tf.make_tensor_proto(values)


def examples_of(item, input_):
    for path in item.get("images", []):
        with open(path, "rb") as f:
            e = input_.example_list.examples.add()
            e.features.feature["image/encoded"].bytes_list.value.append(f.read())
    for x in item.get("floats", []):
        e = input_.example_list.examples.add()
        e.features.feature["x"].float_list.value.append(x)


def spec_json(spec):
    out = {"name": spec.name, "signature_name": spec.signature_name}
    if spec.HasField("version"):
        out["version"] = spec.version.value
    return out


def run(item, predictions, models, timeout):
    call = item["call"]
    if call == "together":
        # Each call started `after` seconds after the previous one, without
        # waiting for it (the stub's futures); results in the plan's order.
        import concurrent.futures
        import time

        with concurrent.futures.ThreadPoolExecutor(len(item["calls"])) as pool:
            futures = []
            for sub in item["calls"]:
                time.sleep(sub.get("after", 0))
                futures.append(pool.submit(one, sub, predictions, models))
            return {"results": [f.result() for f in futures]}
    if call == "predict":
        r = predict_pb2.PredictRequest()
        if not item.get("no_spec"):
            spec_of(item, r.model_spec)
        for name, t in item.get("inputs", {}).items():
            r.inputs[name].CopyFrom(tensor_of(t))
        r.output_filter.extend(item.get("output_filter", []))
        resp = predictions.Predict(r, timeout=timeout)
        outputs = {}
        for name, p in resp.outputs.items():
            a = tf.make_ndarray(p)
            outputs[name] = {
                "dtype": tf.dtypes.as_dtype(p.dtype).name,
                "shape": list(a.shape),
                "values": a.astype("float64").ravel().tolist(),
            }
        return {"outputs": outputs, "model_spec": spec_json(resp.model_spec)}
    if call in ("classify", "regress"):
        module, method = (
            (classification_pb2.ClassificationRequest, predictions.Classify)
            if call == "classify"
            else (regression_pb2.RegressionRequest, predictions.Regress)
        )
        r = module()
        spec_of(item, r.model_spec)
        examples_of(item, r.input)
        resp = method(r, timeout=timeout)
        if call == "classify":
            results = [[[c.label, c.score] for c in cs.classes] for cs in resp.result.classifications]
        else:
            results = [x.value for x in resp.result.regressions]
        return {"results": results, "model_spec": spec_json(resp.model_spec)}
    if call == "multi_inference":
        r = inference_pb2.MultiInferenceRequest()
        task = r.tasks.add()
        spec_of(item, task.model_spec)
        task.method_name = "tensorflow/serving/classify"
        examples_of(item, r.input)
        predictions.MultiInference(r, timeout=timeout)
        return {}
    if call == "metadata":
        r = get_model_metadata_pb2.GetModelMetadataRequest()
        spec_of(item, r.model_spec)
        r.metadata_field.extend(item.get("fields", ["signature_def"]))
        resp = predictions.GetModelMetadata(r, timeout=timeout)
        defs = get_model_metadata_pb2.SignatureDefMap()
        resp.metadata["signature_def"].Unpack(defs)
        signatures = {}
        for name, d in defs.signature_def.items():
            side = lambda infos: {  # noqa: E731
                k: {
                    "dtype": tf.dtypes.as_dtype(v.dtype).name,
                    "shape": [dim.size for dim in v.tensor_shape.dim],
                }
                for k, v in infos.items()
            }
            signatures[name] = {"method_name": d.method_name, "inputs": side(d.inputs), "outputs": side(d.outputs)}
        return {"signatures": signatures, "model_spec": spec_json(resp.model_spec)}
    if call == "status":
        r = get_model_status_pb2.GetModelStatusRequest()
        spec_of(item, r.model_spec)
        resp = models.GetModelStatus(r, timeout=timeout)
        return {
            "versions": [
                {
                    "version": v.version,
                    "state": get_model_status_pb2.ModelVersionStatus.State.Name(v.state),
                    "error_code": v.status.error_code,
                    "error_message": v.status.error_message,
                }
                for v in resp.model_version_status
            ]
        }
    if call == "reload":
        config = model_server_config_pb2.ModelServerConfig()
        for c in item["configs"]:
            m = config.model_config_list.config.add()
            m.name = c["name"]
            m.base_path = c["base_path"]
            m.model_platform = c.get("platform", "tensorflow")
        r = model_management_pb2.ReloadConfigRequest(config=config)
        resp = models.HandleReloadConfigRequest(r, timeout=timeout)
        return {"error_code": resp.status.error_code, "error_message": resp.status.error_message}
    raise ValueError(f"unknown call {call!r}")


def one(item, predictions, models):
    """One plan item's result: what the call answered, or its gRPC status."""
    try:
        out = run(item, predictions, models, item.get("timeout", 60.0))
        out["ok"] = True
    except grpc.RpcError as e:
        out = {"ok": False, "code": e.code().name, "details": e.details()}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    args = parser.parse_args()
    plan = json.load(sys.stdin)
    with grpc.insecure_channel(args.addr) as channel:
        predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        results = [one(item, predictions, models) for item in plan]
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
