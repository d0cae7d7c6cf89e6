#!/usr/bin/env python3
"""Writes the model zoo the conformance suite runs on every backend.

A dev tool, run by hand (not in CI); the exact command and the versions it ran
with are in README.md, and written into reference.json. For each public
architecture it builds the real torchvision model (its own block classes and
forward; only widths, depths, input size and class count reduced so that the
files stay small), gives it seeded random weights, calibrates every batch
norm's statistics on crops of the two fixture photos (with random weights
and default statistics the logits shrink towards zero through depth, and any
comparison passes), exports it to ONNX at the opset listed, and derives the
reduced-size variants: fp16 (weights and compute, fp32 input and output, as
the fp16 Lite0), int8 by onnxruntime's dynamic quantisation (ConvInteger,
MatMulInteger, DynamicQuantizeLinear) and int8 static QDQ (QuantizeLinear /
DequantizeLinear pairs). onnxruntime (graph optimisations off) then gives
the reference logits for both photos. Keras families (NHWC, exported by
tf2onnx) come from keras_export.py, run in a TensorFlow environment
(--tf-python), and take the same variants and references.

    python tests/zoo/generate.py --shared ../shared
"""

import argparse
import hashlib
import importlib
import json
import platform
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import timm
import torch
import torchvision
from onnxconverter_common import float16
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from PIL import Image
from torch import nn
from torchvision import models as tvm
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf
from torchvision.models.shufflenetv2 import ShuffleNetV2
from torchvision.models.swin_transformer import SwinTransformer
from timm.models.deit import VisionTransformerDistilled
from torchvision.models.vision_transformer import VisionTransformer

# Submodules by name: `torchvision.models.googlenet` is also a function.
densenet, googlenet, regnet, resnet, squeezenet = (
    importlib.import_module(f"torchvision.models.{m}") for m in ("densenet", "googlenet", "regnet", "resnet", "squeezenet")
)

SEED = 2026
SIZE = 64
CLASSES = 100
HERE = Path(__file__).resolve().parent
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
PHOTOS = ["chelsea", "coffee"]


# --- slimmer versions of fixed-width architectures, through their own classes


class SlimResNet(resnet.ResNet):
    """torchvision's ResNet (its BasicBlock/Bottleneck and forward) with the
    stage widths 64..512 divided by `div`."""

    def __init__(self, block, layers, div, num_classes):
        super().__init__(block, layers, num_classes=num_classes)
        w = 64 // div
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = self._make_layer(block, w, layers[0])
        self.layer2 = self._make_layer(block, w * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, w * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, w * 8, layers[3], stride=2)
        self.fc = nn.Linear(w * 8 * block.expansion, num_classes)


class SlimSqueezeNet(squeezenet.SqueezeNet):
    """SqueezeNet 1.1 (torchvision's Fire modules and classifier) at half width."""

    def __init__(self, num_classes):
        super().__init__(version="1_1", num_classes=num_classes)
        Fire = squeezenet.Fire
        pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            pool(),
            Fire(32, 8, 32, 32),
            Fire(64, 8, 32, 32),
            pool(),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            pool(),
            Fire(128, 24, 96, 96),
            Fire(192, 24, 96, 96),
            Fire(192, 32, 128, 128),
            Fire(256, 32, 128, 128),
        )
        final_conv = nn.Conv2d(256, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight)
                nn.init.constant_(m.bias, 0)


def quarter(c):
    return max(4, c // 4)


class QuarterConv(googlenet.BasicConv2d):
    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__(in_channels if in_channels == 3 else quarter(in_channels), quarter(out_channels), **kwargs)


class QuarterInception(googlenet.Inception):
    def __init__(self, *channels):
        super().__init__(*[quarter(c) for c in channels])


def slim_googlenet(num_classes):
    """GoogLeNet (torchvision's Inception blocks and forward) at a quarter width."""
    m = googlenet.GoogLeNet(
        num_classes=num_classes,
        aux_logits=False,
        transform_input=False,
        init_weights=True,
        blocks=[QuarterConv, QuarterInception, googlenet.InceptionAux],
    )
    m.fc = nn.Linear(quarter(1024), num_classes)
    return m


def mobilenet_v2(num_classes):
    """MobileNetV2 at width 0.35 with its last 1x1 convolution at 256
    channels instead of 1,280 (a third of the file)."""
    m = tvm.mobilenet_v2(width_mult=0.35, num_classes=num_classes)
    last = m.features[-1]
    m.features[-1] = type(last)(last[0].in_channels, 256, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.classifier[-1] = nn.Linear(256, num_classes)
    return m


def mobilenet_v3_small(num_classes):
    setting, _ = _mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.5)
    return MobileNetV3(setting, last_channel=256, num_classes=num_classes)


def efficientnet_b0(num_classes):
    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.34)
    return EfficientNet(setting, dropout=0.2, last_channel=last, num_classes=num_classes)


# name: (constructor, opset, exporter)
def deit(num_classes):
    """DeiT: timm's VisionTransformerDistilled (class and distillation
    tokens, the two heads averaged at inference) at patch 8, width 32,
    depth 2. Exported at opset 14, before LayerNormalization: its
    decomposed form (ReduceMean, Sub, Pow, Sqrt, Div)."""
    model = VisionTransformerDistilled(
        img_size=SIZE, patch_size=8, num_classes=num_classes, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0
    )
    # timm's own unfused attention (scale, MatMul, Softmax, MatMul): the
    # fused path exports a Cast of the scale that the fp16 converter
    # leaves typed float while retyping its output.
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = False
    return model


FAMILIES = {
    "resnet-basic": (lambda: SlimResNet(resnet.BasicBlock, [2, 2, 2, 2], 8, CLASSES), 11, "torchscript"),
    "resnet-bottleneck": (lambda: SlimResNet(resnet.Bottleneck, [1, 2, 1, 1], 8, CLASSES), 13, "torchscript"),
    "mobilenet-v2": (lambda: mobilenet_v2(CLASSES), 13, "torchscript"),
    "mobilenet-v3-small": (lambda: mobilenet_v3_small(CLASSES), 17, "torchscript"),
    "squeezenet": (lambda: SlimSqueezeNet(CLASSES), 11, "torchscript"),
    "shufflenet-v2": (
        lambda: ShuffleNetV2([2, 2, 2], [24, 24, 48, 96, 256], num_classes=CLASSES),
        13,
        "torchscript",
    ),
    "efficientnet-b0": (lambda: efficientnet_b0(CLASSES), 19, "dynamo"),
    "regnet": (
        lambda: regnet.RegNet(
            regnet.BlockParams.from_init_params(depth=6, w_0=16, w_a=8.0, w_m=2.0, group_width=8),
            num_classes=CLASSES,
        ),
        18,
        "dynamo",
    ),
    "densenet": (
        lambda: densenet.DenseNet(
            growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16, bn_size=2, num_classes=CLASSES
        ),
        13,
        "torchscript",
    ),
    "googlenet": (lambda: slim_googlenet(CLASSES), 11, "torchscript"),
    "convnext": (
        lambda: ConvNeXt(
            [CNBlockConfig(16, 32, 2), CNBlockConfig(32, 64, 2), CNBlockConfig(64, None, 2)],
            stochastic_depth_prob=0.0,
            # torchvision's 1e-6 (trained up from there) leaves every block
            # out of the logits of a random-weight model: nothing in a block
            # could be wrong and show.
            layer_scale=0.5,
            num_classes=CLASSES,
        ),
        17,
        "torchscript",
    ),
    "vit": (
        lambda: VisionTransformer(
            image_size=SIZE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=CLASSES
        ),
        21,
        "dynamo",
    ),
    "deit": (lambda: deit(CLASSES), 14, "torchscript"),
    "swin": (
        lambda: SwinTransformer(
            patch_size=[4, 4],
            embed_dim=16,
            depths=[2, 2],
            num_heads=[1, 2],
            window_size=[4, 4],
            stochastic_depth_prob=0.0,
            num_classes=CLASSES,
        ),
        20,
        "dynamo",
    ),
}


# --- inputs


# Keras applications, exported by tf2onnx in a TensorFlow environment of
# their own (keras_export.py): NHWC input, and the transposes tf2onnx
# writes around the NCHW convolutions. Family: (Keras family, opset).
KERAS_FAMILIES = {
    "keras-mobilenet-v2": ("mobilenet-v2", 15),
}


def keras_export(keras_family, opset, path, batch, inputs, tf_python):
    """Runs keras_export.py on the calibration batch and the photos (NHWC)
    and renames the graph's input and output to the zoo's `input` and
    `logits`. Returns the Keras logits per photo and what the script
    reports (versions, batch norms calibrated)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "cal.npy", batch.transpose(0, 2, 3, 1))
        np.save(tmp / "photos.npy", np.concatenate([inputs[p] for p in PHOTOS]).transpose(0, 2, 3, 1))
        run = subprocess.run(
            [str(tf_python), str(HERE / "keras_export.py"), "--family", keras_family, "--opset", str(opset),
             "--calibration", str(tmp / "cal.npy"), "--photos", str(tmp / "photos.npy"), "--out", str(path),
             "--logits", str(tmp / "logits.npy")],
            check=True, capture_output=True, text=True,
        )
        logits = np.load(tmp / "logits.npy")
    m = onnx.load(str(path))
    # tf2onnx numbers the constants it folds from a counter whose order
    # varies between runs (the graph and the logits do not): every name
    # but the input's and the output's is rewritten in order of first use,
    # so that the same model is the same bytes.
    renames = {m.graph.input[0].name: "input", m.graph.output[0].name: "logits"}
    for n in m.graph.node:
        for name in list(n.input) + list(n.output):
            if name and name not in renames:
                renames[name] = f"t{len(renames) - 2}"
    m.graph.input[0].name = "input"
    m.graph.output[0].name = "logits"
    for k, n in enumerate(m.graph.node):
        n.input[:] = [renames.get(i, i) for i in n.input]
        n.output[:] = [renames.get(o, o) for o in n.output]
        n.name = f"{n.op_type}_{k}"
        n.doc_string = ""
    for t in m.graph.initializer:
        t.name = renames[t.name]
    m.graph.initializer.sort(key=lambda t: int(t.name[1:]))
    m.producer_version = ""
    del m.graph.value_info[:]
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))
    return {p: logits[i:i + 1] for i, p in enumerate(PHOTOS)}, json.loads(run.stdout.strip().splitlines()[-1])


def load_photo(shared, name):
    return Image.open(shared / "fixtures" / "images" / f"{name}_orig.png").convert("RGB")


def preprocess(img, size):
    """Shorter side to round(size*256/224) (antialiased bilinear), centre
    crop, ImageNet mean/std, NCHW float32: as torchvision's weights expect."""
    short = round(size * 256 / 224)
    w, h = img.size
    scale = short / min(w, h)
    img = img.resize((max(short, round(w * scale)), max(short, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = (np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD
    return x.transpose(2, 0, 1)[None].copy()


def calibration_batch(photos, size, n, rng):
    """Random crops (scale 0.2-1), flips and colour gains of the photos: what
    the batch norms and the static quantiser see."""
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        w, h = img.size
        s = rng.uniform(0.2, 1.0) ** 0.5
        cw, ch = int(w * s), int(h * s)
        x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        crop = img.crop((x0, y0, x0 + cw, y0 + ch)).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        a = np.asarray(crop, dtype=np.float32) / 255.0 * rng.uniform(0.7, 1.3, size=3).astype(np.float32)
        out.append(((np.clip(a, 0, 1) - MEAN) / STD).transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


def reset_linear_layers(model):
    """PyTorch's default init for every Linear: torchvision zeroes ViT's and
    Swin's heads and draws the MobileNets' from N(0, 0.01), which leaves the
    logits all but equal and any comparison of them void."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()


def calibrate_batch_norms(model, batch):
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over every batch below
    model.train()
    with torch.no_grad():
        for chunk in torch.from_numpy(batch).split(16):
            model(chunk)
    model.eval()
    return len(norms)


# --- export and variants


def export(model, opset, exporter, path):
    x = torch.from_numpy(np.zeros((1, 3, SIZE, SIZE), dtype=np.float32))
    if exporter == "dynamo":
        # An example batch of 1 would be specialised to a constant.
        program = torch.onnx.export(
            model,
            (x.repeat(2, 1, 1, 1),),
            dynamo=True,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
            external_data=False,
        )
        program.save(str(path), external_data=False)
    else:
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            do_constant_folding=True,
        )
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    got = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    assert got == opset, f"{path.name}: exported at opset {got}, asked {opset}"
    # Deterministic bytes: no producer version, no doc strings of source lines.
    for n in m.graph.node:
        n.doc_string = ""
    # The dynamo exporter's intermediate shapes disagree with onnx's own
    # inference in places (which the quantiser re-runs); the loaders infer
    # them anyway.
    del m.graph.value_info[:]
    onnx.save(m, str(path))


def fp16_variant(src, dst):
    # ConstantOfShape keeps its f32 value attribute while the converter
    # retypes its output (Swin's attention mask): left in f32.
    m = float16.convert_float_to_float16(
        onnx.load(str(src)),
        keep_io_types=True,
        op_block_list=float16.DEFAULT_OP_BLOCK_LIST + ["ConstantOfShape"],
    )
    onnx.save(m, str(dst))


class Reader(CalibrationDataReader):
    def __init__(self, batch):
        self.rows = iter([{"input": r[None]} for r in batch])

    def get_next(self):
        return next(self.rows, None)


def nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def int8_dynamic_variant(src, dst):
    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
        weight_type=QuantType.QUInt8,
        per_channel=False,
    )


def int8_qdq_variant(src, dst, batch, opset):
    # Per-channel scales need DequantizeLinear's `axis`, which came in opset 13.
    quantize_static(
        str(src),
        str(dst),
        Reader(batch),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=opset >= 13,
    )


def run_onnxruntime(path, x, integer_kernels):
    """fp32 and fp16 graphs with graph optimisations off: each op as the
    spec defines it. int8 graphs as onnxruntime runs them for its users (all
    optimisations, its default): QDQ pairs fused into integer kernels.
    Unfused, onnxruntime simulates them in float and differs from its own
    integer run by up to 13 % of the logits' scale on these random-weight
    models (MobileNetV2); tract runs the integer kernels."""
    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if integer_kernels else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(["logits"], {"input": x})[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared")
    ap.add_argument("--only", nargs="*", help="families to (re)write; the rest keep their entries")
    ap.add_argument("--tf-python", type=Path, default=Path.home() / ".cache/edgeserve/tf-venv/bin/python",
                    help="the Python of a virtual environment with tensorflow-cpu and tf2onnx (Keras families)")
    args = ap.parse_args()
    ort.set_default_logger_severity(3)
    torch.manual_seed(SEED)
    photos = [load_photo(args.shared, p) for p in PHOTOS]
    inputs = {p: preprocess(img, SIZE) for p, img in zip(PHOTOS, photos)}
    (HERE / "inputs").mkdir(exist_ok=True)
    for p, x in inputs.items():
        (HERE / "inputs" / f"{p}_{SIZE}_nchw_f32le.bin").write_bytes(x.astype("<f4").tobytes())

    ref_path = HERE / "reference.json"
    reference = json.loads(ref_path.read_text()) if ref_path.exists() and args.only else {"models": {}}
    keras_versions = reference.get("generator", {}).get("keras_export")
    families = {f: (v, "torch") for f, v in FAMILIES.items()}
    families.update({f: (v, "keras") for f, v in KERAS_FAMILIES.items()})
    for family, (spec, source) in families.items():
        if args.only and family not in args.only:
            continue
        rng = np.random.default_rng(SEED)
        torch.manual_seed(SEED)
        fp32 = HERE / f"{family}.onnx"
        if source == "torch":
            make, opset, exporter = spec
            model = make().eval()
            reset_linear_layers(model)
            norms = calibrate_batch_norms(model, calibration_batch(photos, SIZE, 64, rng))
            export(model, opset, exporter, fp32)
            with torch.no_grad():
                source_logits = {p: model(torch.from_numpy(x)).numpy() for p, x in inputs.items()}
            layout = lambda x: x  # noqa: E731
        else:
            keras_family, opset = spec
            exporter = "tf2onnx"
            source_logits, keras_versions = keras_export(
                keras_family, opset, fp32, calibration_batch(photos, SIZE, 64, rng), inputs, args.tf_python
            )
            norms = keras_versions.pop("batch_norms_calibrated")
            layout = nhwc
        variants = {
            "fp32": fp32,
            "fp16": HERE / f"{family}-fp16.onnx",
            "int8-dynamic": HERE / f"{family}-int8-dynamic.onnx",
            "int8-qdq": HERE / f"{family}-int8-qdq.onnx",
        }
        fp16_variant(fp32, variants["fp16"])
        int8_dynamic_variant(fp32, variants["int8-dynamic"])
        int8_qdq_variant(fp32, variants["int8-qdq"], layout(calibration_batch(photos, SIZE, 32, rng)), opset)
        for variant, path in variants.items():
            m = onnx.load(str(path))
            ops = Counter(n.op_type for n in m.graph.node)
            results = {}
            for p, x in inputs.items():
                logits = run_onnxruntime(path, layout(x), variant.startswith("int8"))[0]
                results[p] = {"logits": [float(v) for v in logits]}
            scale = max(abs(v) for r in results.values() for v in r["logits"])
            spread = None
            if variant.startswith("int8"):
                # onnxruntime's other run of the same int8 graph (QDQ pairs
                # simulated in float, integer ops unfused), and how far it
                # lies from its integer run: what rounding-boundary effects
                # alone amount to on this model.
                for p, x in inputs.items():
                    results[p]["logits_float_simulated"] = [float(v) for v in run_onnxruntime(path, layout(x), False)[0]]
                spread = max(
                    float(np.abs(np.array(r["logits_float_simulated"]) - np.array(r["logits"])).max())
                    for r in results.values()
                )
            entry = {
                "family": family,
                "variant": variant,
                "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
                "exporter": exporter,
                "input": list(layout(np.zeros((1, 3, SIZE, SIZE))).shape),
                "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "ops": dict(sorted(ops.items())),
                "batch_norms_calibrated": norms,
                "max_abs_logit": scale,
                "onnxruntime_int8_spread": spread,
                "results": results,
            }
            if variant == "fp32":
                d = max(
                    float(np.abs(source_logits[p][0] - np.array(results[p]["logits"])).max()) for p in inputs
                )
                entry[f"{source}_vs_onnxruntime_max_abs"] = d
                assert d <= 1e-3 * scale, f"{family}: {source} vs onnxruntime {d} (scale {scale})"
            reference["models"][path.name] = entry
            print(f"{path.name:36} opset {entry['opset']:2} {entry['bytes']:>9} B  max|logit| {scale:7.3f}  "
                  f"{len(ops)} op types", flush=True)

    reference["generator"] = {
        "command": "python tests/zoo/generate.py --shared ../shared",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "onnxconverter_common": __import__("onnxconverter_common").__version__,
        "keras_export": keras_versions,
        "numpy": np.__version__,
        "seed": SEED,
        "input_size": SIZE,
        "classes": CLASSES,
        "preprocessing": "RGB; shorter side to round(S*256/224) bilinear; centre crop SxS; "
        "(x/255 - [0.485,0.456,0.406]) / [0.229,0.224,0.225]; NCHW float32",
        "reference": "onnxruntime CPUExecutionProvider: fp32 and fp16 with graph optimisations off, "
        "int8 with all (its default: integer kernels)",
    }
    reference["models"] = dict(sorted(reference["models"].items()))
    ref_path.write_text(json.dumps(reference, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
