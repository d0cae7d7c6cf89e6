"""KServe's V1 model server (PyPI `kserve`) serving an ONNX classifier
through onnxruntime: a TF-Serving-protocol peer that is not edgeserve.

The model is KServe's documented custom-model pattern: `instances` in,
`predictions` out, nothing else. KServe V1 has no `/metadata` route and no
version paths, which is what the remote backend must cope with.

Usage: python kserve_onnx.py --name NAME --onnx FILE [--threads N]
Binds 127.0.0.1 on a port the OS picks (KServe's own server binds
0.0.0.0, so it is handed a socket bound here instead), prints
`http://127.0.0.1:PORT` once it listens, and runs until SIGTERM.
"""

import argparse
import logging
import os
import socket
import sys
import warnings

# Only the address goes to stdout (its first line is what the tests wait
# for); KServe's and uvicorn's logs go to stderr with everything else.
address_out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

# KServe parses sys.argv when imported: it must not see ours.
ours = sys.argv[1:]
sys.argv = sys.argv[:1]

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import kserve  # noqa: E402
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING  # noqa: E402
from kserve.protocol.rest.server import RESTServer  # noqa: E402


class OnnxModel(kserve.Model):
    def __init__(self, name, path, threads):
        super().__init__(name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.ready = True

    def predict(self, payload, headers=None):
        x = np.asarray(payload["instances"], dtype=np.float32)
        (y,) = self.session.run(None, {self.input: x})
        return {"predictions": y.tolist()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--threads", type=int, default=1,
                        help="onnxruntime's intra-op threads (the tests use 1; the load benchmark the server's count)")
    args = parser.parse_args(ours)

    model = OnnxModel(args.name, args.onnx, args.threads)
    server = kserve.ModelServer(enable_grpc=False, workers=1)
    # A line per request would bury the tests' own output, and so would a
    # traceback per refused request: the refusal's text reaches the client
    # in the answer, which is what the tests check.
    # FastAPI's deprecation warnings are about KServe's code, not ours.
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "kserve", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    server.register_model(model)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        sock.getsockname()[1],
        grace_period=1,
    )
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", file=address_out, flush=True)
    rest.run(sockets=[sock])


if __name__ == "__main__":
    main()
