//! A model served as tensors in, tensors out (the package's `TensorModel`):
//! any ONNX model without image preprocessing, its signature the graph's,
//! answering TF Serving predict requests as `edgeserve serve` does for a
//! bare `model.onnx`.

use crate::error::JsError;
use crate::{abortable, copy_bytes, json_text, predict_out};
use edgeserve::protocol::Code;
use edgeserve::{LoadOptions, TensorModel};
use js_sys::Uint8Array;
use serde::Serialize;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// The error for a call on a disposed tensor model.
fn disposed() -> JsValue {
    JsError::new(
        "disposed",
        Code::FailedPrecondition,
        "the tensor model was disposed; load the model again to use it",
    )
    .into()
}

/// What ran a tensor model's request, as the package reports it: always
/// the CPU here (the WebGPU and remote backends serve image classifiers),
/// so the reason says that rather than a routing decision.
#[derive(Serialize)]
struct TensorReport {
    backend: &'static str,
    reason: &'static str,
    threads: usize,
}

impl TensorReport {
    fn new() -> Self {
        TensorReport {
            backend: "cpu",
            reason: "cpu: a tensor model runs on the CPU backend (WebGPU and the remote serve image classifiers)",
            threads: edgeserve::cpu_threads(),
        }
    }
}

/// A loaded tensor model (the raw export; the package's `TensorModel`
/// wraps it).
#[wasm_bindgen]
pub struct RawTensorModel {
    /// `None` once disposed; calls in flight hold their own reference.
    inner: Option<Rc<TensorModel>>,
}

#[wasm_bindgen]
impl RawTensorModel {
    /// Loads `model` (the ONNX bytes) on the CPU backend: its signature
    /// is read from the graph, no manifest needed.
    pub fn open(model: Uint8Array) -> Result<RawTensorModel, JsValue> {
        edgeserve_ctors::ensure();
        let bytes = copy_bytes(&model);
        let model = TensorModel::load(&bytes, &LoadOptions::default()).map_err(JsError::from)?;
        Ok(RawTensorModel {
            inner: Some(Rc::new(model)),
        })
    }

    fn inner(&self) -> Result<Rc<TensorModel>, JsValue> {
        self.inner.clone().ok_or_else(disposed)
    }

    /// Moves the model out (to a `RawEndpoint`); this one is then disposed.
    pub(crate) fn take(&mut self) -> Result<Rc<TensorModel>, JsValue> {
        self.inner.take().ok_or_else(disposed)
    }

    /// Puts back what [`RawTensorModel::take`] moved out.
    pub(crate) fn restore(&mut self, inner: Rc<TensorModel>) {
        self.inner = Some(inner);
    }

    /// Answers a TF Serving predict request given as JSON text:
    /// `{ body, report }`, the response as TF Serving's JSON text.
    pub fn predict(
        &self,
        request: String,
        signal: Option<web_sys::AbortSignal>,
    ) -> Result<js_sys::Promise, JsValue> {
        let inner = self.inner()?;
        Ok(wasm_bindgen_futures::future_to_promise(abortable(
            signal,
            async move {
                let body = inner
                    .predict_json(request.as_bytes())
                    .await
                    .map_err(JsError::from)?;
                predict_out(body, TensorReport::new())
            },
        )))
    }

    /// TF Serving's metadata response for the model served as `name`,
    /// version `version`, as JSON text: its graph's signature as
    /// `serving_default`.
    pub fn metadata(&self, name: &str, version: f64) -> Result<String, JsValue> {
        let metadata = self.inner()?.metadata(name, version as i64);
        Ok(json_text(metadata.to_json(), "the metadata")?)
    }

    /// Frees the model. Later calls fail with code `disposed`.
    pub fn dispose(&mut self) {
        self.inner = None;
    }

    /// Whether [`RawTensorModel::dispose`] has run.
    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }
}
