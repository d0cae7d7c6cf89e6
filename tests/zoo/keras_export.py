#!/usr/bin/env python3
"""Exports a Keras application to ONNX through tf2onnx, for generate.py.

Run by generate.py in a TensorFlow virtual environment of its own (TensorFlow
and torch do not share one well): builds the real `keras.applications` model
at a reduced width, input size and class count, seeds its weights,
calibrates its batch norms on the batch generate.py gives (NHWC, as Keras
takes it), exports it with tf2onnx at the opset asked, and writes the Keras
logits of the photos generate.py gives, to check the export against.

    python keras_export.py --family mobilenet-v2 --opset 15 --calibration cal.npy \
        --photos photos.npy --out model.onnx --logits keras_logits.npy
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

SEED = 2026
CLASSES = 100


def build(family, size):
    apps = tf.keras.applications
    if family == "mobilenet-v2":
        # Width 0.35, the smallest Keras publishes weights for.
        return apps.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, weights=None, classes=CLASSES,
                                classifier_activation=None)
    raise SystemExit(f"no Keras family {family!r}")


def calibrate(model, batch):
    """With momentum 0, one training-mode pass makes every batch norm's
    moving statistics the calibration batch's own."""
    norms = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(batch, training=True)
    return len(norms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", required=True)
    ap.add_argument("--opset", type=int, required=True)
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--logits", required=True)
    args = ap.parse_args()
    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    batch = np.load(args.calibration)
    model = build(args.family, batch.shape[1])
    norms = calibrate(model, tf.constant(batch))
    photos = np.load(args.photos)
    np.save(args.logits, model(tf.constant(photos), training=False).numpy())
    spec = (tf.TensorSpec((None,) + batch.shape[1:], tf.float32, name="input"),)
    fn = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=args.opset, output_path=args.out)
    # What generate.py records: the versions, and the calibration.
    print(json.dumps({"tensorflow": tf.__version__, "keras": tf.keras.__version__, "tf2onnx": tf2onnx.__version__,
                      "batch_norms_calibrated": norms}))


if __name__ == "__main__":
    sys.exit(main())
