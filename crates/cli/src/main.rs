//! `edgeserve`: classify images on the CPU with the bundled
//! EfficientNet-Lite0 (or any model directory with a manifest), or serve
//! models over TF Serving's REST API.

use clap::{Parser, Subcommand};
use edgeserve::{Classification, Classifier, DecodeOptions, ImageInput, LoadOptions};
use edgeserve_server::{RequestLimits, ServeOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

// The default model travels inside the binary, so `edgeserve classify`
// works from anywhere; it is still loaded (and verified) at run time.
const BUNDLED_MODEL: &[u8] = include_bytes!("../../../models/efficientnet-lite0/efficientnet-lite0.onnx");
const BUNDLED_MANIFEST: &[u8] = include_bytes!("../../../models/efficientnet-lite0/manifest.json");
const BUNDLED_LABELS: &str = include_str!("../../../models/efficientnet-lite0/imagenet_labels.txt");

#[derive(Parser)]
#[command(name = "edgeserve", version, about = "TF Serving's contract, on the device")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify images (PNG, JPEG, WebP, GIF, BMP) and print the top classes.
    Classify {
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// A model directory with manifest.json (default: the bundled
        /// EfficientNet-Lite0).
        #[arg(long)]
        model: Option<PathBuf>,
        /// How many classes to print.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
        top_k: u16,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Threads one inference is split across (default 1).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Refuse images with more pixels than this.
        #[arg(long, default_value_t = edgeserve_default_max_pixels())]
        max_pixels: u64,
    },
    /// Serve a model over TF Serving's REST API (flags named as TF
    /// Serving's). Prints the address once it listens; stops on SIGINT or
    /// SIGTERM after the requests in flight.
    Serve {
        /// The REST port; 0 asks the OS for a free one.
        #[arg(long = "rest_api_port", default_value_t = 8501)]
        rest_api_port: u16,
        /// TF Serving's gRPC API port (PredictionService, ModelService); 0
        /// asks the OS for a free one.
        #[arg(long = "port", default_value_t = 8500)]
        port: u16,
        /// The address the gRPC API listens on (loopback unless told otherwise).
        #[arg(long = "grpc_bind", default_value = "127.0.0.1")]
        grpc_bind: std::net::IpAddr,
        /// Serve no gRPC API, REST only.
        #[arg(long = "no_grpc")]
        no_grpc: bool,
        /// Merge the engine runs of requests to one model version that wait
        /// together into one run (TF Serving's request batching).
        #[arg(long = "enable_batching")]
        enable_batching: bool,
        /// TF Serving's BatchingParameters in text format (max_batch_size,
        /// batch_timeout_micros, max_enqueued_batches, num_batch_threads,
        /// allowed_batch_sizes); with --enable_batching.
        #[arg(long = "batching_parameters_file", requires = "enable_batching")]
        batching_parameters_file: Option<PathBuf>,
        /// The address to listen on (loopback unless told otherwise).
        #[arg(long = "rest_api_bind", default_value = "127.0.0.1")]
        rest_api_bind: std::net::IpAddr,
        /// The model's name in URLs.
        #[arg(long = "model_name", default_value = "model")]
        model_name: String,
        /// The model's base path: version directories (`1/`, `2/`…) each
        /// holding manifest.json, the model and its labels. The highest
        /// version is served.
        #[arg(long = "model_base_path", required_unless_present = "model_config_file")]
        model_base_path: Option<PathBuf>,
        /// Serve the models of a TF Serving `model_config_list` text file
        /// (names, base paths, version policies, version labels) instead.
        #[arg(long = "model_config_file", conflicts_with = "model_base_path")]
        model_config_file: Option<PathBuf>,
        /// Look for new and removed versions this often; 0 looks once at
        /// start, a negative value never again either.
        #[arg(
            long = "file_system_poll_wait_seconds",
            default_value_t = 1,
            allow_negative_numbers = true
        )]
        file_system_poll_wait_seconds: i64,
        /// Requests taking longer get 504 DEADLINE_EXCEEDED.
        #[arg(long = "rest_api_timeout_in_ms", default_value_t = 30_000)]
        rest_api_timeout_in_ms: u64,
        /// Add CORS headers (allow any origin) to every `/v1/` response.
        #[arg(long = "rest_api_enable_cors_support")]
        rest_api_enable_cors_support: bool,
        /// Threads one inference is split across (default 1: each request
        /// on its own thread, side by side; above 1, requests take turns on
        /// a pool of that many).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// The preprocessing of version directories that hold only
        /// `model.onnx` (their manifest is derived from the graph):
        /// imagenet, inception or raw (see `edgeserve manifest --help`).
        #[arg(long, default_value = "imagenet", value_parser = parse_preset)]
        preset: edgeserve::Preset,
        #[command(flatten)]
        limits: ServeLimits,
    },
    /// Write the manifest of an ONNX image classifier: the input's name,
    /// layout and size and the output's name read from the graph, the file's
    /// size and SHA-256 computed, the preprocessing from a preset.
    Manifest {
        /// The ONNX file.
        model: PathBuf,
        /// The preprocessing the model was trained with: `imagenet`
        /// (torchvision, timm: mean 0.485/0.456/0.406, std 0.229/0.224/0.225
        /// of 0–1 pixels), `inception` ([-1, 1]: Keras MobileNet, Inception,
        /// EfficientNet-Lite) or `raw` (0–255). Each resizes the shorter side
        /// to 256/224 of the input and crops the centre.
        #[arg(long, default_value = "imagenet", value_parser = parse_preset)]
        preset: edgeserve::Preset,
        /// The labels file (one class name per line), beside the manifest.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// The input's width and height, where the graph leaves them dynamic.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
        size: Option<u32>,
        /// The class-score output, where the graph has several.
        #[arg(long)]
        output: Option<String>,
        /// The model's name (default: the file name without `.onnx`).
        #[arg(long)]
        name: Option<String>,
        /// The model's version.
        #[arg(long, default_value_t = 1)]
        version: i64,
        /// Where to write it (default: manifest.json beside the model; `-`
        /// for stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

fn parse_preset(name: &str) -> Result<edgeserve::Preset, String> {
    edgeserve::Preset::from_name(name).map_err(|e| e.to_string())
}

/// What any one client may make `edgeserve serve` spend; each has a default
/// that keeps a small machine up (see `ServeOptions`).
#[derive(clap::Args)]
struct ServeLimits {
    /// Largest request body in bytes (413 above it, before it is read).
    #[arg(long = "rest_api_max_body_bytes", default_value_t = ServeOptions::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most bytes a gzip request body may inflate to.
    #[arg(long = "rest_api_max_inflated_bytes", default_value_t = RequestLimits::default().max_inflated_bytes)]
    max_inflated_bytes: u64,
    /// Most JSON values (numbers, strings, arrays, objects) in one request.
    #[arg(long = "rest_api_max_json_values", default_value_t = RequestLimits::default().max_json_values)]
    max_json_values: usize,
    /// Close a connection that has not sent a whole request head this long.
    #[arg(long = "rest_api_header_read_timeout_in_ms", default_value_t = 10_000)]
    header_read_timeout_in_ms: u64,
    /// Answer 408 to a request whose body has not arrived this long after its head.
    #[arg(long = "rest_api_body_read_timeout_in_ms", default_value_t = 60_000)]
    body_read_timeout_in_ms: u64,
    /// Open connections at most (more wait in the listen backlog).
    #[arg(long = "rest_api_max_connections", default_value_t = ServeOptions::default().max_connections)]
    max_connections: usize,
    /// Requests admitted at once (reading, waiting or running); more get 503 at once.
    #[arg(long = "rest_api_max_pending_requests", default_value_t = ServeOptions::default().max_pending_requests)]
    max_pending_requests: usize,
    /// Requests running at once (default: the cores this process may use).
    #[arg(long = "rest_api_max_running_requests")]
    max_running_requests: Option<usize>,
    /// Largest gRPC message in bytes (RESOURCE_EXHAUSTED above it, before it is decoded).
    #[arg(long = "grpc_max_receive_message_length", default_value_t = ServeOptions::default().grpc_max_message_bytes)]
    grpc_max_message_bytes: usize,
    /// Most values (tensor elements, example feature values) in one gRPC request.
    #[arg(long = "grpc_max_values", default_value_t = ServeOptions::default().grpc_max_values)]
    grpc_max_values: usize,
    /// After SIGINT/SIGTERM, close connections still open after this long.
    #[arg(long = "shutdown_grace_in_ms", default_value_t = 10_000)]
    shutdown_grace_in_ms: u64,
    /// Largest image in pixels (width × height).
    #[arg(long = "max_image_pixels", default_value_t = DecodeOptions::default().max_pixels)]
    max_image_pixels: u64,
    /// Most images in one request.
    #[arg(long = "max_images_per_request", default_value_t = DecodeOptions::default().max_images)]
    max_images_per_request: usize,
    /// Most pixels one request's images may hold together.
    #[arg(long = "max_request_pixels", default_value_t = DecodeOptions::default().max_request_pixels)]
    max_request_pixels: u64,
    /// Most images run through a model at once (more run in chunks): bounds
    /// the memory a run's activations take.
    #[arg(long = "max_images_per_run", default_value_t = DecodeOptions::default().max_images_per_run)]
    max_images_per_run: usize,
}

fn edgeserve_default_max_pixels() -> u64 {
    DecodeOptions::default().max_pixels
}

#[derive(Serialize)]
#[serde(untagged)]
enum Outcome {
    Ok {
        image: String,
        #[serde(flatten)]
        result: Classification,
    },
    Failed {
        image: String,
        error: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn load(model: Option<&Path>, options: &LoadOptions) -> Result<Classifier, String> {
    let Some(dir) = model else {
        return Classifier::load(BUNDLED_MODEL, BUNDLED_MANIFEST, Some(BUNDLED_LABELS), options)
            .map_err(|e| format!("bundled model: {e}"));
    };
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    let loaded =
        edgeserve_server::model_dir::load_model_dir(dir, name, 1, edgeserve::Preset::default(), options)
            .map_err(|e| e.to_string())?;
    match loaded.model {
        edgeserve_server::model_dir::Model::Classifier(c) => Ok(*c),
        edgeserve_server::model_dir::Model::Tensors(_) => Err(format!(
            "{}: not an image classifier ({}); `edgeserve serve` serves it as tensors",
            dir.display(),
            loaded.as_tensors_because.unwrap_or_default()
        )),
    }
}

/// `edgeserve manifest`: the manifest of `model`, written beside it (or to
/// `out`); the labels file must sit beside the manifest, which names it.
#[allow(clippy::too_many_arguments)] // one per flag, passed straight through
fn write_manifest(
    model: &Path,
    preset: edgeserve::Preset,
    labels: Option<&Path>,
    size: Option<u32>,
    output: Option<String>,
    name: Option<String>,
    version: i64,
    out: Option<&Path>,
) -> Result<(), String> {
    let bytes = read(model)?;
    let file_name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{}: not a file name", p.display()))
    };
    let file = file_name(model)?;
    let out = out.map_or_else(|| model.with_file_name("manifest.json"), Path::to_owned);
    let labels = match labels {
        Some(path) => {
            let text = read(path)?;
            let beside = |p: &Path| p.parent().map(|d| d.canonicalize().ok());
            if out != Path::new("-") && beside(path) != beside(&out) {
                eprintln!(
                    "edgeserve: note: the manifest names {} by its file name; keep it beside {}",
                    path.display(),
                    out.display()
                );
            }
            Some(edgeserve::LabelsSpec {
                file: file_name(path)?,
                sha256: edgeserve::sha256_hex(&text),
            })
        }
        None => None,
    };
    let name = name.unwrap_or_else(|| file.strip_suffix(".onnx").unwrap_or(&file).to_owned());
    let options = edgeserve::ManifestOptions {
        name,
        version,
        file,
        preset,
        size,
        output,
        labels,
    };
    let manifest =
        edgeserve::derive_manifest(&bytes, &options).map_err(|e| format!("{}: {e}", model.display()))?;
    let text = manifest.to_json();
    if out == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(&out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!(
        "edgeserve: wrote {} (input {:?} {}x{} {}, output {:?}, preset {})",
        out.display(),
        manifest.input.name,
        manifest.input.width,
        manifest.input.height,
        format!("{:?}", manifest.input.layout).to_lowercase(),
        manifest.output.name,
        preset.name()
    );
    Ok(())
}

fn print_text(image: &str, c: &Classification) {
    let t = &c.report.timings;
    println!(
        "{image}  (decode {:.1} ms, preprocess {:.1} ms, inference {:.1} ms; backend {}: {})",
        t.decode_ms, t.preprocess_ms, t.inference_ms, c.report.backend, c.report.why
    );
    for (rank, class) in c.classes.iter().enumerate() {
        let label = class
            .label
            .clone()
            .unwrap_or_else(|| format!("class {}", class.index));
        println!("  {:>2}. {label:<40} {:>7.3}%", rank + 1, 100.0 * class.score);
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Classify {
            images,
            model,
            top_k,
            json,
            threads,
            max_pixels,
        } => classify(images, model, top_k, json, threads, max_pixels),
        Command::Manifest {
            model,
            preset,
            labels,
            size,
            output,
            name,
            version,
            out,
        } => match write_manifest(
            &model,
            preset,
            labels.as_deref(),
            size,
            output,
            name,
            version,
            out.as_deref(),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edgeserve: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve {
            rest_api_port,
            port,
            grpc_bind,
            no_grpc,
            enable_batching,
            batching_parameters_file,
            rest_api_bind,
            model_name,
            model_base_path,
            model_config_file,
            file_system_poll_wait_seconds,
            rest_api_timeout_in_ms,
            rest_api_enable_cors_support,
            threads,
            preset,
            limits,
        } => {
            let configs = match (model_config_file, model_base_path) {
                (Some(file), _) => match read_model_config(&file) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("edgeserve: {e}");
                        return ExitCode::from(2);
                    }
                },
                (None, Some(base)) => vec![edgeserve_server::ModelConfig::single(model_name, base)],
                (None, None) => {
                    eprintln!("edgeserve: give --model_base_path or --model_config_file");
                    return ExitCode::from(2);
                }
            };
            let configs = configs
                .into_iter()
                .map(|c| edgeserve_server::ModelConfig { preset, ..c })
                .collect();
            let poll = u64::try_from(file_system_poll_wait_seconds)
                .ok()
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs);
            let ms = std::time::Duration::from_millis;
            let defaults = ServeOptions::default();
            let options = ServeOptions {
                addr: std::net::SocketAddr::new(rest_api_bind, rest_api_port),
                timeout: ms(rest_api_timeout_in_ms),
                cors: rest_api_enable_cors_support,
                max_body_bytes: limits.max_body_bytes,
                limits: RequestLimits {
                    max_inflated_bytes: limits.max_inflated_bytes,
                    max_json_values: limits.max_json_values,
                },
                header_read_timeout: ms(limits.header_read_timeout_in_ms),
                body_read_timeout: ms(limits.body_read_timeout_in_ms),
                max_connections: limits.max_connections,
                max_pending_requests: limits.max_pending_requests,
                // With batching, a request waiting for its batch holds a
                // worker while the batch threads do the CPU work, so every
                // admitted request may wait.
                max_running_requests: limits.max_running_requests.unwrap_or(if enable_batching {
                    limits.max_pending_requests
                } else {
                    defaults.max_running_requests
                }),
                shutdown_grace: ms(limits.shutdown_grace_in_ms),
                grpc_addr: (!no_grpc).then(|| std::net::SocketAddr::new(grpc_bind, port)),
                grpc_max_message_bytes: limits.grpc_max_message_bytes,
                grpc_max_values: limits.grpc_max_values,
            };
            let load = LoadOptions {
                cpu: edgeserve_cpu_options(threads),
                decode: DecodeOptions {
                    max_pixels: limits.max_image_pixels,
                    max_images: limits.max_images_per_request,
                    max_request_pixels: limits.max_request_pixels,
                    max_images_per_run: limits.max_images_per_run,
                },
                ..LoadOptions::default()
            };
            let batching = match (enable_batching, batching_parameters_file) {
                (false, _) => None,
                (true, None) => Some(edgeserve_server::BatchingParameters::default()),
                (true, Some(file)) => match std::fs::read_to_string(&file)
                    .map_err(|e| format!("{}: {e}", file.display()))
                    .and_then(|text| {
                        edgeserve_server::parse_batching_parameters(&text, &file.display().to_string())
                            .map_err(|e| e.to_string())
                    }) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!("edgeserve: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            match serve(configs, load, poll, options, batching) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("edgeserve: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn read_model_config(file: &Path) -> Result<Vec<edgeserve_server::ModelConfig>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    edgeserve_server::parse_model_config(&text, &file.display().to_string(), dir).map_err(|e| e.to_string())
}

fn serve(
    configs: Vec<edgeserve_server::ModelConfig>,
    load: LoadOptions,
    poll: Option<std::time::Duration>,
    options: ServeOptions,
    batching: Option<edgeserve_server::BatchingParameters>,
) -> Result<(), String> {
    let batcher = batching.map(edgeserve_server::Batcher::start).transpose()?;
    let models =
        edgeserve_server::Models::start_batched(configs, load, batcher).map_err(|e| e.to_string())?;
    // Reported on stderr: a caller may stop reading stdout after the banner.
    let _poller = match poll {
        Some(every) => Some(
            models
                .spawn_poller(every, |t| eprintln!("edgeserve: {t}"))
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let store = models.snapshot();
    let serving: Vec<String> = store
        .names()
        .map(|name| {
            let versions: Vec<String> = store
                .model(name)
                .map(|m| m.loaded_versions().iter().map(i64::to_string).collect())
                .unwrap_or_default();
            format!("model {name} version {}", versions.join(","))
        })
        .collect();
    // Inference runs on the blocking pool, at most `max_running_requests`
    // at once (the server's permits); the pool's own cap is a backstop.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(options.max_running_requests.max(1) + 4)
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let bound = edgeserve_server::bind(models, options)
            .await
            .map_err(|e| e.to_string())?;
        let addr = bound.local_addr().ok_or("the socket has no address")?;
        let grpc = bound
            .grpc_addr()
            .map(|a| format!(" and gRPC on {a}"))
            .unwrap_or_default();
        // Tests and scripts read this line to find OS-assigned ports.
        println!("edgeserve: serving {} on http://{addr}{grpc}", serving.join(", "));
        use std::io::Write;
        let _ = std::io::stdout().flush();
        bound.run(shutdown_signal()).await.map_err(|e| e.to_string())
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

fn classify(
    images: Vec<PathBuf>,
    model: Option<PathBuf>,
    top_k: u16,
    json: bool,
    threads: Option<u16>,
    max_pixels: u64,
) -> ExitCode {
    let options = LoadOptions {
        decode: DecodeOptions {
            max_pixels,
            ..DecodeOptions::default()
        },
        cpu: edgeserve_cpu_options(threads),
        ..LoadOptions::default()
    };
    let classifier = match load(model.as_deref(), &options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edgeserve: {e}");
            return ExitCode::from(2);
        }
    };
    let mut outcomes = Vec::new();
    for path in &images {
        let name = path.display().to_string();
        let result = read(path).and_then(|bytes| {
            pollster::block_on(classifier.classify(ImageInput::Encoded(&bytes), usize::from(top_k)))
                .map_err(|e| e.to_string())
        });
        outcomes.push(match result {
            Ok(result) => Outcome::Ok { image: name, result },
            Err(error) => Outcome::Failed { image: name, error },
        });
    }
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed { .. }))
        .count();
    if json {
        match serde_json::to_string_pretty(&outcomes) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("edgeserve: {e}"),
        }
    } else {
        for o in &outcomes {
            match o {
                Outcome::Ok { image, result } => print_text(image, result),
                Outcome::Failed { image, error } => eprintln!("{image}: error: {error}"),
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn edgeserve_cpu_options(threads: Option<u16>) -> edgeserve::CpuOptions {
    edgeserve::CpuOptions {
        threads: threads.map(usize::from),
        ..Default::default()
    }
}
