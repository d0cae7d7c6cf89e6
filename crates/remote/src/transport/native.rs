use super::{Failure, HttpRequest, HttpResponse, Method};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// reqwest on a private one-thread tokio runtime. reqwest needs a tokio
/// reactor; owning one lets callers await the client from any executor
/// (pollster in the CLI, tokio in the server, a test's `block_on`).
pub(crate) struct Transport {
    client: reqwest::Client,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Transport {
    pub(crate) fn new() -> Result<Transport, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("edgeserve-remote")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
        let client = {
            let _entered = runtime.enter();
            reqwest::Client::builder()
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))?
        };
        Ok(Transport {
            client,
            runtime: Some(runtime),
        })
    }

    fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Option<AbortOnDrop<T>> {
        self.runtime.as_ref().map(|rt| AbortOnDrop(rt.spawn(f)))
    }

    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Failure> {
        let client = self.client.clone();
        let timeout = request.timeout;
        let task = self.spawn(async move {
            tokio::time::timeout(timeout, exchange(client, request))
                .await
                .unwrap_or(Err(Failure::Timeout))
        });
        match task {
            Some(task) => task
                .await
                .map_err(|e| Failure::Other(format!("the HTTP task failed: {e}")))?,
            None => Err(Failure::Other("the HTTP runtime is shut down".into())),
        }
    }

    pub(crate) async fn sleep(&self, duration: Duration) {
        // `sleep` must be created inside the runtime, hence the async block.
        if let Some(task) = self.spawn(async move { tokio::time::sleep(duration).await }) {
            // A failed sleep task only shortens the wait.
            let _ = task.await;
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // A plain drop blocks on the worker and panics inside another async
        // runtime (a server dropping its client); this one does neither.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A spawned task that is cancelled when its awaiting future is dropped, so
/// dropping a call (a caller's own timeout or cancellation) aborts the HTTP
/// exchange instead of leaving it running.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// reqwest's messages hide the cause ("error sending request"); the chain
/// says "connection refused".
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn exchange(client: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, Failure> {
    let method = match request.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
    };
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let mut response = builder.send().await.map_err(|e| {
        if e.is_connect() {
            Failure::Connect(chain(&e))
        } else {
            Failure::Other(chain(&e))
        }
    })?;
    let limit = request.max_response_bytes;
    if let Some(length) = response.content_length().filter(|&n| n > limit) {
        return Err(Failure::TooLarge(Some(length)));
    }
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::Other(chain(&e)))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Failure::TooLarge(None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse { status, body })
}
