//! Fuzz targets for every surface that bytes from outside reach: the REST
//! JSON codec, image decoding and preprocessing, the ONNX loader, the model
//! manifest, and the whole REST handler over a loaded model. Each target
//! takes any bytes and must neither panic nor abort; a refusal is a typed
//! error and fine.
//!
//! Two drivers run them: `fuzz/` (cargo-fuzz, libFuzzer, coverage-guided,
//! nightly, by hand for hours) and [`mutate`] with `tests/bounded.rs`
//! (stable, deterministic, a bounded number of mutations of the checked-in
//! corpus in every CI run). Each target's seeds are in [`seeds`] and, as
//! files, in `fuzz/corpus/<target>/`, with every input a fuzzer found that
//! failed once.

use edgeserve::protocol::{
    ClassifyResponse, DataType, ExamplesRequest, PredictRequest, PredictResponse, TensorTypes,
};
use edgeserve_endpoint::{HandlerOptions, ModelStore, RequestHead, RequestLimits, Servable};
use edgeserve_vision::{Crop, DecodeOptions, Layout, Normalize, Preprocessing, Resize};
use std::path::PathBuf;
use std::sync::OnceLock;

/// A fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// TF Serving's REST JSON: predict and classify requests, their responses.
    RestJson,
    /// An encoded image, decoded and preprocessed for a 224 × 224 input.
    Image,
    /// An ONNX file loaded on the CPU backend.
    Onnx,
    /// A model manifest.
    Manifest,
    /// A whole REST request (`METHOD PATH [gzip]`, a newline, the body) to
    /// the handler serving EfficientNet-Lite0.
    Handler,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [
        Target::RestJson,
        Target::Image,
        Target::Onnx,
        Target::Manifest,
        Target::Handler,
    ];

    /// Its name: the corpus directory and the libFuzzer target.
    pub fn name(self) -> &'static str {
        match self {
            Target::RestJson => "rest_json",
            Target::Image => "image",
            Target::Onnx => "onnx",
            Target::Manifest => "manifest",
            Target::Handler => "handler",
        }
    }

    /// Runs the target on `data`.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::RestJson => rest_json(data),
            Target::Image => image(data),
            Target::Onnx => onnx(data),
            Target::Manifest => manifest(data),
            Target::Handler => handler(data),
        }
    }
}

/// The REST codec: every reader, and every writer on what was read.
pub fn rest_json(data: &[u8]) {
    for dtype in [DataType::Float, DataType::String, DataType::Int64] {
        let types = TensorTypes::from([("input".to_owned(), dtype)]);
        if let Ok(request) = PredictRequest::from_json_limited(data, 1 << 16, |_| Ok(types.clone())) {
            let _ = request.to_json();
        }
        if let Ok(response) = PredictResponse::from_json(data, &types) {
            let _ = response.to_json();
        }
    }
    if let Ok(request) = ExamplesRequest::from_json_limited(data, 1 << 16) {
        let _ = request.to_json();
    }
    if let Ok(response) = ClassifyResponse::from_json(data) {
        let _ = response.to_json();
    }
}

/// The preprocessing of the bundled classifiers: shorter side to 256, a
/// 224 centre crop, NCHW.
fn preprocessing() -> Preprocessing {
    Preprocessing {
        width: 224,
        height: 224,
        resize: Resize::ShorterSide { size: 256 },
        crop: Crop::Center,
        normalize: Normalize::MeanStd {
            mean: [127.0; 3],
            std: [128.0; 3],
        },
        channel_order: edgeserve_vision::ChannelOrder::Rgb,
        layout: Layout::Nchw,
    }
}

/// Limits small enough that a fuzzer's iterations stay fast.
const FUZZ_DECODE: DecodeOptions = DecodeOptions {
    max_pixels: 4_000_000,
    max_images: 4,
    max_request_pixels: 8_000_000,
    max_images_per_run: 2,
};

/// Decoding and preprocessing, both resize modes.
pub fn image(data: &[u8]) {
    let Ok(decoded) = edgeserve_vision::decode(data, &FUZZ_DECODE) else {
        return;
    };
    let mut pre = preprocessing();
    let mut slot = vec![0f32; pre.item_len()];
    let _ = pre.write_into(&decoded, &mut slot);
    pre.resize = Resize::Exact;
    let _ = pre.write_into(&decoded, &mut slot);
}

/// Loading a model file on the CPU backend.
pub fn onnx(data: &[u8]) {
    let _ = edgeserve_cpu::CpuEngine::load(data, &edgeserve_cpu::CpuOptions::default());
}

/// Reading a manifest.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = edgeserve::ModelManifest::from_json(data) {
        let _ = m.verify_model(data);
    }
}

/// The repository's `models/` directory: from the running test's package
/// when cargo runs it, else where this crate was built.
fn models_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.ancestors()
        .map(|d| d.join("models"))
        .find(|d| d.join("efficientnet-lite0").is_dir())
        .unwrap_or(dir)
}

/// EfficientNet-Lite0 loaded once, as the server serves it.
fn store() -> &'static ModelStore {
    static STORE: OnceLock<ModelStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = models_dir().join("efficientnet-lite0");
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_default();
        let labels = String::from_utf8(read("imagenet_labels.txt")).unwrap_or_default();
        let options = edgeserve::LoadOptions {
            decode: FUZZ_DECODE,
            ..edgeserve::LoadOptions::default()
        };
        let mut store = ModelStore::new();
        // Without the model every request is a 404: still a target, and the
        // bounded test checks that the model is there.
        if let Ok(c) = edgeserve::Classifier::load(
            &read("efficientnet-lite0.onnx"),
            &read("manifest.json"),
            Some(&labels),
            &options,
        ) {
            store.insert(Servable::new("lite0", 1, c));
        }
        store
    })
}

/// Whether [`handler`] serves the model (it needs the repository's
/// `models/`).
pub fn handler_has_model() -> bool {
    store().model("lite0").is_some()
}

/// A whole request through the handler: `METHOD PATH [gzip]\n` then the body.
pub fn handler(data: &[u8]) {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut words = head.split(' ');
    let method = words.next().unwrap_or_default();
    let path = words.next().unwrap_or_default();
    let gzip = words.next() == Some("gzip");
    let options = HandlerOptions {
        cors: false,
        limits: RequestLimits {
            max_inflated_bytes: 1 << 20,
            max_json_values: 1 << 18,
        },
    };
    let head = RequestHead {
        method,
        path,
        origin: None,
        content_encoding: gzip.then_some("gzip"),
    };
    let reply = pollster::block_on(edgeserve_endpoint::handle_with(store(), options, head, body));
    // Every reply is TF Serving's: a status, and JSON for API paths.
    assert!((200..600).contains(&reply.status), "status {}", reply.status);
}

/// Seeds for `target`, built here so that they stay valid as the formats
/// do: the sample requests, small images of every format, a tiny model, the
/// bundled manifest.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    match target {
        Target::RestJson => json_seeds(),
        Target::Image => image_seeds(),
        Target::Onnx => vec![tiny_onnx()],
        Target::Manifest => {
            vec![std::fs::read(models_dir().join("efficientnet-lite0/manifest.json")).unwrap_or_default()]
        }
        Target::Handler => {
            let mut out = Vec::new();
            for body in json_seeds() {
                for head in ["POST /v1/models/lite0:predict", "POST /v1/models/lite0:classify"] {
                    out.push([head.as_bytes(), b"\n", &body].concat());
                }
            }
            let image = image_seeds().swap_remove(0);
            // The codec writes the image as TF Serving's {"b64": …}.
            let example = ExamplesRequest {
                signature_name: None,
                context: None,
                examples: vec![edgeserve::protocol::Example {
                    features: [(
                        "image/encoded".to_owned(),
                        edgeserve::protocol::Feature::Bytes(vec![image]),
                    )]
                    .into(),
                }],
            }
            .to_json()
            .unwrap_or_default();
            out.push([&b"POST /v1/models/lite0:classify\n"[..], &example].concat());
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = std::io::Write::write_all(&mut gz, br#"{"instances": [[1.5, 2]]}"#);
            out.push(
                [
                    &b"POST /v1/models/lite0:predict gzip\n"[..],
                    &gz.finish().unwrap_or_default(),
                ]
                .concat(),
            );
            for get in [
                "GET /v1/models/lite0",
                "GET /v1/models/lite0/versions/1/metadata",
                "GET /v1/models/lite0/labels/stable",
                "POST /v1/models/lite0:regress",
                "OPTIONS /v1/models/lite0",
            ] {
                out.push(format!("{get}\n{{}}").into_bytes());
            }
            out
        }
    }
}

fn json_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"instances": [[1.0, 2.0], [3.0, 4.0]]}"#,
        r#"{"signature_name": "serving_default", "inputs": {"input": [[[1, 2]]]}}"#,
        r#"{"instances": [{"input": {"b64": "aGVsbG8="}}]}"#,
        r#"{"inputs": [NaN, Infinity, -Infinity, 1e-45, 3.4e38]}"#,
        r#"{"examples": [{"image/encoded": {"b64": "AAAA"}, "x": [1.5], "n": [1]}], "context": {"c": "s"}}"#,
        r#"{"predictions": [[0.5, 0.25]]}"#,
        r#"{"outputs": {"logits": [[1, 2]]}}"#,
        r#"{"results": [[["cat", 0.9], ["dog", 0.1]]]}"#,
        r#"{"error": "Servable not found"}"#,
    ]
    .map(|s| s.as_bytes().to_vec())
    .into()
}

fn image_seeds() -> Vec<Vec<u8>> {
    use image::{ImageFormat, RgbImage};
    let picture = RgbImage::from_fn(9, 7, |x, y| image::Rgb([(x * 28) as u8, (y * 36) as u8, 128]));
    [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Bmp,
    ]
    .into_iter()
    .filter_map(|format| {
        let mut out = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut out, format).ok()?;
        Some(out.into_inner())
    })
    .collect()
}

/// A model of one Relu over a 1 × 3 × 4 × 4 input, as an ONNX file.
fn tiny_onnx() -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb;
    let dim = |v: i64| pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)),
        ..Default::default()
    };
    let value = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: [1, 3, 4, 4].map(dim).into(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(pb::GraphProto {
            name: "tiny".into(),
            node: vec![pb::NodeProto {
                op_type: "Relu".into(),
                input: vec!["input".into()],
                output: vec!["logits".into()],
                ..Default::default()
            }],
            input: vec![value("input")],
            output: vec![value("logits")],
            ..Default::default()
        }),
        ..Default::default()
    };
    model.encode_to_vec()
}

/// Tokens worth splicing into JSON and headers: what parsers branch on.
const DICTIONARY: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"\"",
    b"\\u0000",
    b"\\ud800",
    b"NaN",
    b"-Infinity",
    b"1e400",
    b"-0",
    b"18446744073709551616",
    b"\"b64\"",
    b"{\"b64\": \"",
    b"\"instances\"",
    b"\"inputs\"",
    b"\"examples\"",
    b"\"context\"",
    b"\"signature_name\"",
    b"\"image/encoded\"",
    b"null",
    b"true",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x7f\xff\xff\xff",
];

/// A small deterministic generator (xorshift64*), so that a CI run's inputs
/// are the same every time and a failure reproduces.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; 0 is moved off).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// Changes `input` by one to eight mutations: bit flips, random or
/// "interesting" bytes, insertions and deletions, duplicated runs, tokens
/// from a dictionary, and splices of `other` (another corpus entry).
pub fn mutate(input: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        let at = rng.below(len + 1);
        match rng.below(8) {
            0 if len > 0 => input[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => input[at.min(len - 1)] = [0, 0xff, 0x7f, 0x80, b'9', b'"'][rng.below(6)],
            2 => input.insert(at, rng.below(256) as u8),
            3 if len > 0 => {
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at.min(len - 1)..end);
            }
            4 if len > 0 => {
                let start = at.min(len - 1);
                let run = input[start..(start + 1 + rng.below(64)).min(len)].to_vec();
                let to = rng.below(len + 1);
                input.splice(to..to, run);
            }
            5 | 6 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, token.iter().copied());
            }
            _ if !other.is_empty() => {
                let from = rng.below(other.len());
                let piece = &other[from..(from + 1 + rng.below(256)).min(other.len())];
                input.truncate(at);
                input.extend_from_slice(piece);
            }
            _ => {}
        }
        // Inputs stay small: the targets' cost is in what they parse.
        input.truncate(1 << 16);
    }
}
