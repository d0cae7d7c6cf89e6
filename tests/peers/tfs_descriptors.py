"""Writes TF Serving's own message and service definitions, as the official
`tensorflow-serving-api` package compiled them (its `_pb2` modules' file
descriptors, with every file they import), as one binary
`google.protobuf.FileDescriptorSet`: what a client in another language
loads instead of `.proto` files, so that its stubs are TF Serving's, not
ours (tests/js/grpc-peer.test.mjs loads it into @grpc/grpc-js).

    python tfs_descriptors.py OUT.pb
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from google.protobuf import descriptor_pb2  # noqa: E402
from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2  # noqa: E402


def main():
    out = descriptor_pb2.FileDescriptorSet()
    seen = set()

    def add(file):
        # Dependencies first, as protoc writes a set with --include_imports.
        if file.name in seen:
            return
        seen.add(file.name)
        for dep in file.dependencies:
            add(dep)
        file.CopyToProto(out.file.add())

    for module in (prediction_service_pb2, model_service_pb2):
        add(module.DESCRIPTOR)
    with open(sys.argv[1], "wb") as f:
        f.write(out.SerializeToString())
    print(f"{len(out.file)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
