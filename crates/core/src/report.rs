//! What a caller is told about each answer: the backend that ran, why,
//! how the local backends compared, and the time each step took.

use crate::routing::*;
use edgeserve_engine::BackendKind;
use edgeserve_remote::SignatureSource;
use serde::Serialize;
use web_time::Instant;

/// Milliseconds spent in each step. Serialised in camelCase (`decodeMs`),
/// as JS reads it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Decoding the image(s).
    pub decode_ms: f64,
    /// Resize, crop, normalise.
    pub preprocess_ms: f64,
    /// Running the model.
    pub inference_ms: f64,
    /// The remote backend's round trip (network and the server's inference;
    /// TF Serving does not say how the two split).
    pub transfer_ms: f64,
}

impl Timings {
    /// Files the time a backend took: a remote round trip is transfer time,
    /// a local run inference time.
    pub(crate) fn record_run(&mut self, backend: BackendKind, ms: f64) {
        match backend {
            BackendKind::Remote => self.transfer_ms = ms,
            _ => self.inference_ms = ms,
        }
    }
}

/// One local backend that `auto` tried at load.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The backend.
    pub backend: BackendKind,
    /// Its time for one batch-1 run after warmup, when there was a choice
    /// to make (both backends loaded).
    pub run_ms: Option<f64>,
    /// Why it could not run the model, when it could not.
    pub error: Option<String>,
}

/// How `auto` chose between the local backends: each one's measured run,
/// or why it could not run; the fastest was kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalChoice {
    /// Every local backend tried, the one kept first.
    pub candidates: Vec<Candidate>,
}

impl std::fmt::Display for LocalChoice {
    /// `cpu 25.1 ms, webgpu 912.0 ms`, or `cpu loaded, webgpu could not
    /// run: …` (nothing is timed when there is nothing to choose).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, c) in self.candidates.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match (&c.run_ms, &c.error) {
                (_, Some(e)) => write!(f, "{} could not run: {e}", c.backend)?,
                (Some(ms), None) => write!(f, "{} {ms:.1} ms", c.backend)?,
                (None, None) => write!(f, "{} loaded", c.backend)?,
            }
        }
        Ok(())
    }
}

/// Where the remote backend's signature came from: the server's TF Serving
/// metadata, or the manifest (a server without that route, or discovery
/// off), when the answers' shapes are checked instead. Serialised as
/// `{ from: 'metadata' | 'manifest', reason }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteSignature {
    /// `metadata` or `manifest`.
    pub from: &'static str,
    /// Why the manifest's: the metadata call's answer, with its URL, or
    /// that discovery is off; `None` for the metadata's.
    pub reason: Option<String>,
}

impl From<&SignatureSource> for RemoteSignature {
    fn from(source: &SignatureSource) -> Self {
        match source {
            SignatureSource::Metadata => RemoteSignature {
                from: "metadata",
                reason: None,
            },
            SignatureSource::Fallback { reason } => RemoteSignature {
                from: "manifest",
                reason: Some(format!("the server has no TF Serving metadata: {reason}")),
            },
            SignatureSource::Given => RemoteSignature {
                from: "manifest",
                reason: Some("discovery is off".into()),
            },
        }
    }
}

/// What ran, why, and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The backend that ran.
    pub backend: BackendKind,
    /// Why it was chosen.
    pub why: Why,
    /// Under `auto`, how the local backend was chosen (`None` when one was
    /// asked for, or the remote ran).
    pub local: Option<LocalChoice>,
    /// For a remote run, where its signature came from.
    pub signature: Option<RemoteSignature>,
    /// Time per step.
    pub timings: Timings,
}

impl std::fmt::Display for Report {
    /// `backend: why`, e.g. `remote: model 24.3 MB > local budget 20.0 MB`,
    /// then how `auto` chose the local backend, e.g. `; local backends:
    /// cpu 25.1 ms, webgpu 912.0 ms`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.backend, self.why)?;
        if let Some(local) = &self.local {
            write!(f, "; local backends: {local}")?;
        }
        if let Some(RemoteSignature {
            from: "manifest",
            reason: Some(reason),
        }) = &self.signature
        {
            write!(f, "; signature from the manifest: {reason}")?;
        }
        Ok(())
    }
}

/// One class of a result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    /// Output index.
    pub index: usize,
    /// The class name, when the model has labels.
    pub label: Option<String>,
    /// Probability (softmax of logits, or the model's own probabilities).
    pub score: f32,
}

/// The top classes of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// Highest first.
    pub classes: Vec<ClassScore>,
    /// What ran.
    pub report: Report,
}

pub(crate) fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
