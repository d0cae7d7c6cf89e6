//! TF Serving's REST API inside a JS host (an edge Worker): the same
//! request handler as the native server (`edgeserve-endpoint`), over models
//! loaded as `RawClassifier`s or `RawTensorModel`s and moved in.

use crate::error::JsError;
use crate::{RawClassifier, RawTensorModel};
use edgeserve::protocol::{Code, Route};
use edgeserve_endpoint::{HandlerOptions, ModelStore, RequestHead, RequestLimits, Servable};
use js_sys::Uint8Array;
use serde::Serialize;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A TF Serving REST endpoint over the models added to it.
#[wasm_bindgen]
pub struct RawEndpoint {
    /// Shared with the requests in flight; adding a model copies the
    /// (small: names and `Arc`s) store only while one runs.
    store: Rc<ModelStore>,
    /// What one request body may cost (`setLimits`).
    limits: RequestLimits,
}

impl Default for RawEndpoint {
    fn default() -> Self {
        RawEndpoint {
            store: Rc::new(ModelStore::new()),
            limits: RequestLimits::default(),
        }
    }
}

#[wasm_bindgen]
impl RawEndpoint {
    /// An endpoint with no models.
    #[wasm_bindgen(constructor)]
    pub fn new() -> RawEndpoint {
        RawEndpoint::default()
    }

    /// Serves `classifier` as version `version` of model `name`. The
    /// classifier moves in: it is disposed for the caller.
    pub fn add(&mut self, name: String, version: f64, classifier: &mut RawClassifier) -> Result<(), JsValue> {
        let version = servable_version(&name, version)?;
        let inner = classifier.take()?;
        let classifier = Rc::try_unwrap(inner).map_err(|inner| {
            classifier.restore(inner);
            in_flight("classifier")
        })?;
        Rc::make_mut(&mut self.store).insert(Servable::new(&name, version, classifier));
        Ok(())
    }

    /// Serves `model` (a tensor model) as version `version` of model
    /// `name`. The model moves in: it is disposed for the caller.
    #[wasm_bindgen(js_name = addTensors)]
    pub fn add_tensors(
        &mut self,
        name: String,
        version: f64,
        model: &mut RawTensorModel,
    ) -> Result<(), JsValue> {
        let version = servable_version(&name, version)?;
        let inner = model.take()?;
        let tensors = Rc::try_unwrap(inner).map_err(|inner| {
            model.restore(inner);
            in_flight("tensor model")
        })?;
        Rc::make_mut(&mut self.store).insert(Servable::new(&name, version, tensors));
        Ok(())
    }

    /// What one request body may cost: the bytes a gzip body may inflate
    /// to and the JSON values a predict or classify body may hold (each a
    /// whole number from 1).
    #[wasm_bindgen(js_name = setLimits)]
    pub fn set_limits(&mut self, max_inflated_bytes: f64, max_json_values: f64) -> Result<(), JsValue> {
        let whole = |name: &str, v: f64| {
            if v.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&v) {
                Ok(v)
            } else {
                Err(JsError::new(
                    "invalid_options",
                    Code::InvalidArgument,
                    format!("setLimits: {name} must be a positive integer, got {v}"),
                ))
            }
        };
        self.limits = RequestLimits {
            max_inflated_bytes: whole("maxInflatedBytes", max_inflated_bytes)? as u64,
            max_json_values: whole("maxJsonValues", max_json_values)? as usize,
        };
        Ok(())
    }

    /// The names of the models served.
    pub fn models(&self) -> Vec<String> {
        self.store.names().map(str::to_owned).collect()
    }

    /// The model a TF Serving path names (`/v1/models/NAME…`), percent-
    /// decoded, or `undefined` when the path is not one of TF Serving's
    /// (the handler then answers it as TF Serving would).
    #[wasm_bindgen(js_name = modelOf)]
    pub fn model_of(method: &str, path: &str) -> Option<String> {
        Route::parse(method, path).ok().map(|r| r.model)
    }

    /// Answers one request: `{ status, contentType, headers: [[name,
    /// value]…], body }` (`body` a `Uint8Array`). `origin` and
    /// `contentEncoding` are the request's headers; `cors` adds TF Serving's
    /// CORS headers to every `/v1/` reply.
    pub fn handle(
        &self,
        method: String,
        path: String,
        origin: Option<String>,
        content_encoding: Option<String>,
        body: Uint8Array,
        cors: bool,
    ) -> js_sys::Promise {
        let store = self.store.clone();
        let limits = self.limits;
        let body = crate::copy_bytes(&body);
        wasm_bindgen_futures::future_to_promise(crate::counted(async move {
            let head = RequestHead {
                method: &method,
                path: &path,
                origin: origin.as_deref(),
                content_encoding: content_encoding.as_deref(),
            };
            let reply =
                edgeserve_endpoint::handle_with(&store, HandlerOptions { cors, limits }, head, &body).await;
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Out<'a> {
                status: u16,
                content_type: &'a str,
                headers: &'a [(&'static str, &'static str)],
            }
            let out = crate::to_js(&Out {
                status: reply.status,
                content_type: reply.content_type,
                headers: &reply.headers,
            })?;
            js_sys::Reflect::set(&out, &"body".into(), &Uint8Array::from(reply.body.as_slice()))?;
            Ok(out)
        }))
    }
}

/// The version a model is added as, checked with its name.
fn servable_version(name: &str, version: f64) -> Result<i64, JsValue> {
    if name.is_empty() {
        return Err(JsError::new(
            "invalid_options",
            Code::InvalidArgument,
            "add: the model name is empty",
        )
        .into());
    }
    if !(version.fract() == 0.0 && (1.0..=9_007_199_254_740_991.0).contains(&version)) {
        return Err(JsError::new(
            "invalid_options",
            Code::InvalidArgument,
            format!("add: the version must be a positive integer, got {version}"),
        )
        .into());
    }
    Ok(version as i64)
}

/// A model with calls in flight cannot move into the endpoint.
fn in_flight(what: &str) -> JsError {
    JsError::new(
        "invalid_options",
        Code::FailedPrecondition,
        format!("add: the {what} has calls in flight; add it before using it"),
    )
}
