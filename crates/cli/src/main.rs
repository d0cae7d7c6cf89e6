//! `edgeserve`: classify images on the CPU with the bundled
//! EfficientNet-Lite0 (or any model directory with a manifest).

use clap::{Parser, Subcommand};
use edgeserve::{Classification, Classifier, DecodeOptions, ImageInput, LoadOptions};
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
        /// Threads for matrix products (default 1).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
        /// Refuse images with more pixels than this.
        #[arg(long, default_value_t = edgeserve_default_max_pixels())]
        max_pixels: u64,
    },
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
    let manifest_bytes = read(&dir.join("manifest.json"))?;
    let manifest = edgeserve::ModelManifest::from_json(&manifest_bytes)
        .map_err(|e| format!("{}: {e}", dir.join("manifest.json").display()))?;
    let model_bytes = read(&dir.join(&manifest.model.file))?;
    let labels = match &manifest.labels {
        Some(l) => {
            let bytes = read(&dir.join(&l.file))?;
            Some(String::from_utf8(bytes).map_err(|_| format!("{}: labels are not UTF-8", l.file))?)
        }
        None => None,
    };
    Classifier::load(&model_bytes, &manifest_bytes, labels.as_deref(), options)
        .map_err(|e| format!("{}: {e}", dir.display()))
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
    let Command::Classify {
        images,
        model,
        top_k,
        json,
        threads,
        max_pixels,
    } = Cli::parse().command;
    let options = LoadOptions {
        decode: DecodeOptions { max_pixels },
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
