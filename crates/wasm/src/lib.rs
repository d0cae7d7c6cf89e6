//! The wasm-bindgen exports behind the npm package (`pkg/`).
//!
//! These are the raw bindings: bytes and plain objects in, plain objects
//! out. The package's JavaScript (`pkg/src/`) is the public face: it
//! fetches models with progress and cancellation, turns browser images into
//! pixels, and rethrows errors as `EdgeserveError`. Everything that checks
//! input lives here, in Rust, so no input reaches a panic; errors cross as
//! JS `Error`s carrying a stable `code` and TF Serving's `status`.
//!
//! TF Serving requests and responses cross as JSON text, read and written by
//! the protocol crate exactly as TF Serving's REST API does: a request a
//! user copied from TF Serving's docs means the same here (`b64`, row and
//! columnar forms, `signature_name`), which a generic JS-object mapping
//! would not guarantee.

#![cfg(target_arch = "wasm32")]

mod endpoint;
mod error;
mod options;
mod tensors;
#[cfg(target_feature = "atomics")]
mod threads;

pub use endpoint::RawEndpoint;
pub use tensors::RawTensorModel;

use edgeserve::protocol::Code;
use edgeserve::{Classifier, ImageInput, PixelFormat, Report};
use error::{JsError, disposed, js_reason};
use js_sys::{Reflect, Uint8Array};
use serde::Serialize;
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Reports a panic on the console before the instance traps. No input
/// should reach one; this is for the bug that does.
#[wasm_bindgen(start)]
fn start() {
    edgeserve_ctors::ensure();
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(
            &format!("edgeserve: internal error (a bug, please report): {info}").into(),
        );
    }));
}

/// Where a model would run under these options, without loading anything:
/// `{ needsModel, backend, reason }`. The package asks before downloading
/// a model, so a model that goes to the remote is never fetched.
#[wasm_bindgen]
pub fn plan(manifest: &str, options: JsValue) -> Result<JsValue, JsValue> {
    let (manifest, options) = options::manifest_and_options(manifest, options)?;
    let plan = edgeserve::plan(&manifest, &options).map_err(JsError::from)?;
    let (backend, why) = match &plan {
        edgeserve::Plan::Local(why) => (edgeserve::BackendKind::Cpu, why),
        edgeserve::Plan::Remote(why) => (edgeserve::BackendKind::Remote, why),
    };
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct PlanOut {
        needs_model: bool,
        backend: String,
        reason: String,
    }
    to_js(&PlanOut {
        needs_model: plan.needs_model(),
        backend: backend.to_string(),
        reason: why.to_string(),
    })
}

/// JSON the protocol crate wrote, as a JS string (it writes UTF-8; this
/// only guards the conversion).
fn json_text(body: Vec<u8>, what: &str) -> Result<String, JsError> {
    String::from_utf8(body)
        .map_err(|e| JsError::new("internal", Code::Internal, format!("{what} is not UTF-8: {e}")))
}

/// What a `predict` resolves to: `{ body, report }`, the response as TF
/// Serving's JSON text.
fn predict_out(body: Vec<u8>, report: impl Serialize) -> Result<JsValue, JsValue> {
    #[derive(Serialize)]
    struct Out<R> {
        body: String,
        report: R,
    }
    to_js(&Out {
        body: json_text(body, "the response")?,
        report,
    })
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new("internal", Code::Internal, e.to_string()).into())
}

/// A report as JS sees it: the backend, the reason as data and as text.
#[derive(Serialize)]
struct JsReport<'a> {
    backend: String,
    why: &'a edgeserve::Why,
    /// Under `auto`, each local backend's measured run (or why it could
    /// not run), the one kept first.
    local: Option<&'a edgeserve::LocalChoice>,
    /// For a remote run, where its signature came from (`{ from, reason }`).
    signature: Option<&'a edgeserve::RemoteSignature>,
    reason: String,
    timings: &'a edgeserve::Timings,
    /// The threads the CPU backend ran on (its pool's size, 1 without
    /// one); absent for the other backends.
    threads: Option<usize>,
}

impl<'a> JsReport<'a> {
    fn new(report: &'a Report) -> Self {
        JsReport {
            backend: report.backend.to_string(),
            why: &report.why,
            local: report.local.as_ref(),
            signature: report.signature.as_ref(),
            reason: report.to_string(),
            timings: &report.timings,
            threads: (report.backend == edgeserve::BackendKind::Cpu).then(edgeserve::cpu_threads),
        }
    }
}

/// An `abort` listener on a signal, removed when dropped: the closure it
/// calls is freed with it, so neither outlives the call it guards.
struct AbortListener {
    signal: web_sys::AbortSignal,
    on_abort: Closure<dyn FnMut()>,
}

impl Drop for AbortListener {
    fn drop(&mut self) {
        let target: &web_sys::EventTarget = self.signal.as_ref();
        let _ = target.remove_event_listener_with_callback("abort", self.on_abort.as_ref().unchecked_ref());
    }
}

/// Polls of this instance's futures under way. A trap inside one leaves it
/// raised: the trap comes out of the microtask that polled (js-sys's
/// futures queue), not out of any call the package made, so the package
/// sees it only as a global error event, and asks [`trapped_in_a_call`]
/// whether the trap was this instance's before it fails the calls it has
/// pending (`pkg/src/api.js`, `settled`).
static POLLING: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `work`, each of its polls counted in [`POLLING`] while it runs. Every
/// asynchronous export runs its work through this.
async fn counted<T>(work: impl Future<Output = T>) -> T {
    use std::sync::atomic::Ordering;
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        POLLING.fetch_add(1, Ordering::Relaxed);
        #[cfg(debug_assertions)]
        if TRAP_NEXT_POLL.swap(false, Ordering::Relaxed) {
            trap_in_this_poll();
        }
        let polled = work.as_mut().poll(cx);
        POLLING.fetch_sub(1, Ordering::Relaxed);
        polled
    })
    .await
}

/// A test hook of debug builds: the next poll of an asynchronous call's work
/// panics inside it, as a bug there would, which traps the instance in the
/// microtask that polls (the case [`trapped_in_a_call`] is for).
#[cfg(debug_assertions)]
static TRAP_NEXT_POLL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Arms [`TRAP_NEXT_POLL`] (debug builds only: the package's tests).
#[cfg(debug_assertions)]
#[wasm_bindgen]
pub fn debug_trap_next_call() {
    TRAP_NEXT_POLL.store(true, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(debug_assertions)]
#[allow(clippy::panic, reason = "the test hook's whole point: a panic inside a poll")]
fn trap_in_this_poll() -> ! {
    panic!("a trap injected into an asynchronous call (a test hook of debug builds)")
}

/// Whether a poll of one of this instance's futures began and never ended:
/// it trapped. Called by the package after a trap, so it does nothing but
/// read one value of the instance's memory.
#[wasm_bindgen]
pub fn trapped_in_a_call() -> bool {
    POLLING.load(std::sync::atomic::Ordering::Relaxed) != 0
}

/// Runs `work` unless `signal` aborts first; dropping `work` then cancels
/// whatever it had in flight (a remote call aborts its fetch). Counted
/// ([`counted`]) either way.
async fn abortable<T>(
    signal: Option<web_sys::AbortSignal>,
    work: impl Future<Output = Result<T, JsValue>>,
) -> Result<T, JsValue> {
    counted(abortable_uncounted(signal, work)).await
}

/// [`abortable`]'s work, not counted itself.
async fn abortable_uncounted<T>(
    signal: Option<web_sys::AbortSignal>,
    work: impl Future<Output = Result<T, JsValue>>,
) -> Result<T, JsValue> {
    let Some(signal) = signal else { return work.await };
    if signal.aborted() {
        return Err(error::aborted(&signal));
    }
    let mut reject = None;
    let aborted = js_sys::Promise::new(&mut |_resolve, r| reject = Some(r));
    let on_abort = Closure::<dyn FnMut()>::new(move || {
        if let Some(reject) = &reject {
            let _ = reject.call0(&JsValue::UNDEFINED);
        }
    });
    let target: &web_sys::EventTarget = signal.as_ref();
    let _ = target.add_event_listener_with_callback("abort", on_abort.as_ref().unchecked_ref());
    let _listener = AbortListener {
        signal: signal.clone(),
        on_abort,
    };
    let mut aborted = JsFuture::from(aborted);
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        match std::pin::Pin::new(&mut aborted).poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
    .unwrap_or_else(|| Err(error::aborted(&signal)))
}

/// The bytes of `array`, copied into wasm memory. An array over a detached
/// buffer reads as empty: copying from it would throw inside the copy, and a
/// JS exception unwinding through Rust frames leaves their state (borrow
/// flags) broken.
fn copy_bytes(array: &Uint8Array) -> Vec<u8> {
    if array.byte_length() == 0 {
        return Vec::new();
    }
    array.to_vec()
}

/// `target[key] = value` on a plain object made here (cannot fail but for
/// a host out of memory, which is passed on).
fn set(target: &js_sys::Object, key: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(target, &key.into(), value).map(|_| ())
}

/// The tensor `run` was given: a `Float32Array` and its shape, checked
/// against each other before anything is copied.
fn float_tensor(data: &JsValue, dims: &JsValue) -> Result<edgeserve::protocol::Tensor, JsValue> {
    let bad = |what: String| -> JsValue { JsError::new("request", Code::InvalidArgument, what).into() };
    let Some(values) = data.dyn_ref::<js_sys::Float32Array>() else {
        return Err(bad(format!(
            "run: data: expected a Float32Array, got {}",
            options::describe(data)
        )));
    };
    if !js_sys::Array::is_array(dims) {
        return Err(bad(format!(
            "run: dims: expected an array of whole numbers, got {}",
            options::describe(dims)
        )));
    }
    let dims = js_sys::Array::from(dims);
    let mut shape = Vec::with_capacity(dims.length() as usize);
    for (i, d) in dims.iter().enumerate() {
        let n = d
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX))
            .ok_or_else(|| {
                bad(format!(
                    "run: dims[{i}]: expected a whole number, got {}",
                    options::describe(&d)
                ))
            })?;
        shape.push(n as usize);
    }
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(values.length() as usize) {
        return Err(bad(format!(
            "run: dims {shape:?} hold {} values, but data has {}",
            count.map_or_else(|| "more than 2^32".to_string(), |c| c.to_string()),
            values.length()
        )));
    }
    // Detached reads as empty, as in `copy_bytes`.
    let values = if values.byte_length() == 0 {
        Vec::new()
    } else {
        values.to_vec()
    };
    edgeserve::protocol::Tensor::new(shape, edgeserve::protocol::TensorData::Float(values))
        .map_err(|e| JsError::from(e).into())
}

/// An image from JS: encoded bytes (`Uint8Array`), or pixels
/// (`{ width, height, data, format? }` with `format` `"rgba"`, the
/// default, as `ImageData` holds them, or `"rgb"`).
enum JsImage {
    Encoded(Vec<u8>),
    Pixels {
        width: u32,
        height: u32,
        format: PixelFormat,
        data: Vec<u8>,
    },
}

impl JsImage {
    fn read(value: &JsValue) -> Result<JsImage, JsError> {
        let bad = |what: String| JsError::new("invalid_image", Code::InvalidArgument, what);
        if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
            return Ok(JsImage::Encoded(copy_bytes(bytes)));
        }
        if !value.is_object() {
            return Err(bad(format!(
                "image: expected encoded bytes (Uint8Array) or pixels ({{ width, height, data }}), got {}",
                options::describe(value)
            )));
        }
        let get = |name: &str| Reflect::get(value, &name.into()).unwrap_or(JsValue::UNDEFINED);
        let dimension = |name: &str| {
            let v = get(name);
            v.as_f64()
                .filter(|d| d.fract() == 0.0 && *d >= 0.0 && *d <= f64::from(u32::MAX))
                .map(|d| d as u32)
                .ok_or_else(|| {
                    bad(format!(
                        "image.{name}: expected a whole number of pixels, got {}",
                        options::describe(&v)
                    ))
                })
        };
        let (width, height) = (dimension("width")?, dimension("height")?);
        let data = get("data");
        let data = if let Some(d) = data.dyn_ref::<Uint8Array>() {
            copy_bytes(d)
        } else if let Some(d) = data.dyn_ref::<js_sys::Uint8ClampedArray>() {
            // Detached reads as empty, as in `copy_bytes`.
            if d.byte_length() == 0 {
                Vec::new()
            } else {
                d.to_vec()
            }
        } else {
            return Err(bad(format!(
                "image.data: expected a Uint8Array or Uint8ClampedArray, got {}",
                options::describe(&data)
            )));
        };
        let format = match get("format").as_string().as_deref() {
            None if get("format").is_undefined() => PixelFormat::Rgba8,
            Some("rgba") => PixelFormat::Rgba8,
            Some("rgb") => PixelFormat::Rgb8,
            _ => {
                return Err(bad(format!(
                    "image.format: expected \"rgba\" or \"rgb\", got {}",
                    options::describe(&get("format"))
                )));
            }
        };
        Ok(JsImage::Pixels {
            width,
            height,
            format,
            data,
        })
    }

    fn input(&self) -> ImageInput<'_> {
        match self {
            JsImage::Encoded(bytes) => ImageInput::Encoded(bytes),
            JsImage::Pixels {
                width,
                height,
                format,
                data,
            } => ImageInput::Pixels {
                width: *width,
                height: *height,
                format: *format,
                data,
            },
        }
    }
}

/// A model's load begun on another of the threaded build's pool threads
/// before its bytes are hashed: [`RawClassifier::open_loading`] finishes it.
#[wasm_bindgen]
pub struct RawLoadingModel {
    inner: edgeserve::LoadingModel,
}

#[wasm_bindgen]
impl RawLoadingModel {
    /// Whether [`RawLoadingModel::start`] can start a load from this thread
    /// (the threaded build, with a pool thread to spare).
    pub fn possible() -> bool {
        edgeserve::LoadingModel::possible()
    }

    /// Starts loading `model` (copied into wasm memory) on another pool
    /// thread where `manifest` and `options` (as for [`RawClassifier::open`])
    /// run it on this device's CPU and its size is the manifest's;
    /// `undefined` otherwise, when it is to load through
    /// [`RawClassifier::open`].
    pub fn start(
        model: &Uint8Array,
        manifest: &str,
        options: JsValue,
    ) -> Result<Option<RawLoadingModel>, JsValue> {
        edgeserve_ctors::ensure();
        let (parsed, options) = options::manifest_and_options(manifest, options)?;
        // Asked first: the copy is the size of the model.
        if !edgeserve::LoadingModel::possible() {
            return Ok(None);
        }
        let loading = edgeserve::LoadingModel::start(copy_bytes(model), &parsed, &options).ok();
        Ok(loading.map(|inner| RawLoadingModel { inner }))
    }

    /// [`RawLoadingModel::start`] before the manifest is read, where
    /// `options` alone keep a model of this size on this device's CPU (see
    /// `LoadingModel::start_unread`); `undefined` otherwise, and where the
    /// options are not valid (the load that follows says why).
    pub fn start_unread(model: &Uint8Array, options: JsValue) -> Option<RawLoadingModel> {
        edgeserve_ctors::ensure();
        // No manifest, so no model name yet for a remote's default: this
        // load runs here, and the remote is only there or not.
        let options = options::load_options(options, "").ok()?;
        if !edgeserve::LoadingModel::possible() {
            return None;
        }
        let loading = edgeserve::LoadingModel::start_unread(copy_bytes(model), &options).ok();
        loading.map(|inner| RawLoadingModel { inner })
    }
}

/// A loaded model (the raw export; the package's `Classifier` wraps it).
#[wasm_bindgen]
pub struct RawClassifier {
    /// `None` once disposed. Calls in flight hold their own reference, so
    /// disposing while one runs frees the model when it ends.
    inner: Option<Rc<Classifier>>,
}

#[wasm_bindgen]
impl RawClassifier {
    /// Loads a model: `model` is the ONNX file (absent when the plan says
    /// the remote runs it), `manifest` its manifest (JSON text), `labels`
    /// its labels file, `options` the load options without the fields the
    /// package handles itself. `model_sha256`, when given, is the model's
    /// SHA-256 as WebCrypto computed it (32 bytes), checked against the
    /// manifest instead of hashing the model again in wasm.
    pub async fn open(
        model: Option<Uint8Array>,
        manifest: String,
        labels: Option<String>,
        options: JsValue,
        model_sha256: Option<Vec<u8>>,
    ) -> Result<RawClassifier, JsValue> {
        counted(async move {
            edgeserve_ctors::ensure();
            let (_, mut options) = options::manifest_and_options(&manifest, options)?;
            if let Some(digest) = model_sha256 {
                let digest = <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
                    JsError::new(
                        "internal",
                        Code::Internal,
                        format!("a SHA-256 digest is 32 bytes, got {}", digest.len()),
                    )
                })?;
                options.model_sha256 = Some(digest);
            }
            let model = model.as_ref().map(copy_bytes);
            let classifier = Classifier::open_owned(model, manifest.as_bytes(), labels.as_deref(), &options)
                .await
                .map_err(JsError::from)?;
            Ok(RawClassifier {
                inner: Some(Rc::new(classifier)),
            })
        })
        .await
    }

    /// [`RawClassifier::open`] for a model whose load `loading` started:
    /// `hash` is called once the classifier's other inputs are read, and
    /// its promise resolves to the model's SHA-256 (32 bytes), which
    /// WebCrypto computes on this thread while the pool's other thread
    /// loads (see `Classifier::open_loading`).
    pub async fn open_loading(
        loading: RawLoadingModel,
        manifest: String,
        labels: Option<String>,
        options: JsValue,
        hash: js_sys::Function,
    ) -> Result<RawClassifier, JsValue> {
        counted(async move {
            let (_, options) = options::manifest_and_options(&manifest, options)?;
            let unhashed = |why: String| {
                edgeserve::EngineError::Integrity(format!(
                    "the model's SHA-256 could not be computed to check it against the manifest: {why}"
                ))
            };
            let thrown = |e: JsValue| unhashed(js_reason(&e).unwrap_or_else(|| format!("{e:?}")));
            let digest = async move {
                let promise = hash.call0(&JsValue::NULL).map_err(thrown)?;
                let got = JsFuture::from(js_sys::Promise::resolve(&promise))
                    .await
                    .map_err(thrown)?;
                let got = got
                    .dyn_into::<Uint8Array>()
                    .map_err(|v| unhashed(format!("expected 32 bytes, got {v:?}")))?
                    .to_vec();
                <[u8; 32]>::try_from(got.as_slice())
                    .map_err(|_| unhashed(format!("expected 32 bytes, got {}", got.len())))
            };
            let classifier = Classifier::open_loading(
                loading.inner,
                manifest.as_bytes(),
                labels.as_deref(),
                &options,
                digest,
            )
            .await
            .map_err(JsError::from)?;
            Ok(RawClassifier {
                inner: Some(Rc::new(classifier)),
            })
        })
        .await
    }

    fn inner(&self) -> Result<Rc<Classifier>, JsValue> {
        self.inner.clone().ok_or_else(disposed)
    }

    /// Moves the model out (to a `RawEndpoint`); this one is then disposed.
    fn take(&mut self) -> Result<Rc<Classifier>, JsValue> {
        self.inner.take().ok_or_else(disposed)
    }

    /// Puts back what [`RawClassifier::take`] moved out.
    fn restore(&mut self, inner: Rc<Classifier>) {
        self.inner = Some(inner);
    }

    /// The top `top_k` classes of `image` with the report:
    /// `{ classes: [{ index, label, score }], report }`.
    pub fn classify(
        &self,
        image: JsValue,
        top_k: JsValue,
        signal: Option<web_sys::AbortSignal>,
    ) -> Result<js_sys::Promise, JsValue> {
        let inner = self.inner()?;
        let image = JsImage::read(&image)?;
        let k = options::top_k(&top_k)?;
        Ok(wasm_bindgen_futures::future_to_promise(abortable(
            signal,
            async move {
                let result = inner.classify(image.input(), k).await.map_err(JsError::from)?;
                #[derive(Serialize)]
                struct Out<'a> {
                    classes: &'a [edgeserve::ClassScore],
                    report: JsReport<'a>,
                }
                to_js(&Out {
                    classes: &result.classes,
                    report: JsReport::new(&result.report),
                })
            },
        )))
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
                let (body, report) = inner
                    .predict_json(request.as_bytes())
                    .await
                    .map_err(JsError::from)?;
                predict_out(body, JsReport::new(&report))
            },
        )))
    }

    /// Runs the model on one float tensor, as onnxruntime-web's
    /// `session.run` takes it: `data` (a `Float32Array`) of shape `dims`
    /// (whole numbers, their product `data.length`), sent as the signature's
    /// input in TF Serving's row form, batched along the first dimension.
    /// Resolves to `{ outputs: { name: { data, dims } }, report }`, each
    /// output a `Float32Array` (a model whose outputs are not float is
    /// answered through `predict`). No JSON on either side: this is the
    /// call to time against onnxruntime-web's.
    pub fn run(
        &self,
        data: JsValue,
        dims: JsValue,
        signal: Option<web_sys::AbortSignal>,
    ) -> Result<js_sys::Promise, JsValue> {
        let inner = self.inner()?;
        let tensor = float_tensor(&data, &dims)?;
        Ok(wasm_bindgen_futures::future_to_promise(abortable(
            signal,
            async move {
                let request = edgeserve::protocol::PredictRequest::instances(tensor);
                let (response, report) = inner.predict_with_report(request).await.map_err(JsError::from)?;
                let outputs = js_sys::Object::new();
                for (name, tensor) in response.outputs {
                    let (shape, data) = tensor.into_parts();
                    let edgeserve::protocol::TensorData::Float(values) = data else {
                        return Err(JsError::new(
                            "request",
                            Code::Unimplemented,
                            format!("run: output {name:?} is not float32; use predict for this model"),
                        )
                        .into());
                    };
                    let out = js_sys::Object::new();
                    let dims: js_sys::Array = shape.iter().map(|&d| JsValue::from(d as f64)).collect();
                    set(&out, "data", &js_sys::Float32Array::from(values.as_slice()))?;
                    set(&out, "dims", &dims)?;
                    set(&outputs, &name, &out)?;
                }
                let result = js_sys::Object::new();
                set(&result, "outputs", &outputs)?;
                set(&result, "report", &to_js(&JsReport::new(&report))?)?;
                Ok(result.into())
            },
        )))
    }

    /// TF Serving's metadata response for the model, as JSON text.
    pub fn metadata(&self) -> Result<String, JsValue> {
        Ok(json_text(self.inner()?.metadata().to_json(), "the metadata")?)
    }

    /// The backend the model runs on (`cpu`, `webgpu` or `remote`).
    pub fn backend(&self) -> Result<String, JsValue> {
        Ok(self.inner()?.backend().to_string())
    }

    /// The model's manifest name and version: `{ name, version }`.
    pub fn model(&self) -> Result<JsValue, JsValue> {
        let inner = self.inner()?;
        let m = inner.manifest();
        #[derive(Serialize)]
        struct Out<'a> {
            name: &'a str,
            version: i64,
        }
        to_js(&Out {
            name: &m.name,
            version: m.version,
        })
    }

    /// Frees the model. Later calls fail with code `disposed`.
    pub fn dispose(&mut self) {
        self.inner = None;
    }

    /// Whether [`RawClassifier::dispose`] has run.
    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }
}
