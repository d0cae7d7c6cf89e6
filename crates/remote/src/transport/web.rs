use super::{Failure, HttpRequest, HttpResponse};
use js_sys::{Promise, Uint8Array};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, RequestInit, Response};

// The global functions, not `window.…`: they exist in browsers, workers,
// Cloudflare-style edge runtimes and Node alike.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_request(request: &Request) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// `fetch`, with the timeout as an `AbortController` that a timer fires.
pub(crate) struct Transport;

impl Transport {
    pub(crate) fn new() -> Result<Transport, String> {
        Ok(Transport)
    }

    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Failure> {
        let controller = AbortController::new().map_err(|e| Failure::Other(describe(&e)))?;
        let fire: Closure<dyn FnMut()> = {
            let controller = controller.clone();
            Closure::once(move || controller.abort())
        };
        let timer = set_timeout(fire.as_ref().unchecked_ref(), request.timeout.as_millis() as f64);
        let guard = InFlight {
            controller,
            timer,
            _fire: fire,
        };
        let result = exchange(&request, &guard.controller).await;
        let timed_out = guard.controller.signal().aborted();
        drop(guard);
        result.map_err(|e| match e {
            _ if timed_out => Failure::Timeout,
            other => other,
        })
    }

    pub(crate) async fn sleep(&self, duration: Duration) {
        let ms = duration.as_millis() as f64;
        let promise = Promise::new(&mut |resolve, _reject| {
            set_timeout(&resolve, ms);
        });
        // A rejected sleep only shortens the wait.
        let _ = JsFuture::from(promise).await;
    }
}

/// One fetch in flight. Dropped when it ends or when its caller drops the
/// call (cancellation): the timer is cleared, so it never calls its freed
/// closure, and the fetch is aborted so the browser stops the transfer.
struct InFlight {
    controller: AbortController,
    timer: JsValue,
    _fire: Closure<dyn FnMut()>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        clear_timeout(&self.timer);
        // After completion this is a no-op; mid-flight it cancels.
        self.controller.abort();
    }
}

fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

async fn exchange(request: &HttpRequest, controller: &AbortController) -> Result<HttpResponse, Failure> {
    let other = |e: JsValue| Failure::Other(describe(&e));
    let init = RequestInit::new();
    init.set_method(request.method.as_str());
    let headers = Headers::new().map_err(other)?;
    for (name, value) in &request.headers {
        headers.append(name, value).map_err(other)?;
    }
    init.set_headers(&headers);
    if let Some(body) = &request.body {
        init.set_body(&Uint8Array::from(body.as_slice()));
    }
    init.set_signal(Some(&controller.signal()));
    let req = Request::new_with_str_and_init(&request.url, &init).map_err(other)?;
    // fetch rejects (a TypeError) only when no answer arrived at all: no
    // connection, DNS, CORS. Treated as "not received", like a refused
    // connection natively.
    let response: Response = JsFuture::from(fetch_request(&req))
        .await
        .map_err(|e| Failure::Connect(describe(&e)))?
        .dyn_into()
        .map_err(other)?;
    let limit = request.max_response_bytes;
    let announced = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(length) = announced.filter(|&n| n > limit) {
        controller.abort();
        return Err(Failure::TooLarge(Some(length)));
    }
    // Without a length the body is read whole before it is measured:
    // streaming it chunk by chunk needs ReadableStream readers that not
    // every runtime has.
    let buffer = JsFuture::from(response.array_buffer().map_err(other)?)
        .await
        .map_err(other)?;
    let bytes = Uint8Array::new(&buffer);
    if u64::from(bytes.length()) > limit {
        return Err(Failure::TooLarge(None));
    }
    Ok(HttpResponse {
        status: response.status(),
        body: bytes.to_vec(),
    })
}
