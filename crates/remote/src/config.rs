use crate::RemoteError;
use edgeserve_protocol::{Format, VersionSelector};
use std::time::Duration;

/// Default per-attempt timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit on an answer's body: the native server's request limit, so
/// a batch that fits one way fits the other.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// How failed attempts are retried: only failures where the request cannot
/// have been acted on or the server says "try again" (no connection, HTTP
/// 429, 502, 503, 504), at most `max_retries` times, waiting
/// `initial_backoff · 2ⁿ` (capped at `max_backoff`) with jitter between
/// half and all of it, so that many clients do not retry in step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 turns retrying off).
    pub max_retries: u32,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// Whether the client reads the model's signature from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discovery {
    /// Ask `GET …/metadata` (TF Serving's). Where the server has no such
    /// route (KServe's V1 server, Seldon's, BentoML's: see
    /// [`RemoteError::is_missing_metadata`]), use the signature the caller
    /// knows (the manifest's) and check each answer's shape instead; the
    /// report says which it was.
    #[default]
    Metadata,
    /// Never ask: use the caller's signature from the start (a server
    /// without the route, or one whose metadata is slow or private).
    Off,
}

/// Where a model is served and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteConfig {
    /// The server's base URL, `http(s)://host[:port][/prefix]`; TF Serving's
    /// paths (`/v1/models/…`) are appended to it.
    pub base_url: String,
    /// The model's name on the server.
    pub model: String,
    /// A version number or label; `None` asks for the latest version.
    pub version: Option<VersionSelector>,
    /// Extra headers on every request (e.g. `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Per-attempt timeout, from sending to the last byte of the answer.
    pub timeout: Duration,
    /// Retries of failures that are safe to retry.
    pub retry: RetryPolicy,
    /// Answers larger than this are refused without being read whole.
    pub max_response_bytes: u64,
    /// Send POST bodies gzip-compressed (`Content-Encoding: gzip`, which TF
    /// Serving inflates): smaller uploads for a little CPU.
    pub gzip_requests: bool,
    /// Whether to read the signature from the server.
    pub discovery: Discovery,
    /// The format of the requests the backend writes itself (classify,
    /// tensors): [`Format::Row`] (`"instances"`, the default: every TF
    /// Serving-protocol server takes it), or [`Format::Columnar`]
    /// (`"inputs"`). Row falls back to columnar only where the inputs do
    /// not share a batch size, which rows cannot carry. A request given to
    /// `predict` is sent in its own format.
    pub format: Format,
}

impl RemoteConfig {
    /// A configuration for `model` at `base_url` with the defaults: latest
    /// version, 30 s timeout, 3 retries, 64 MiB answers, plain bodies,
    /// signature from the server's metadata where it has some, row-format
    /// requests.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        RemoteConfig {
            base_url: base_url.into(),
            model: model.into(),
            version: None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            gzip_requests: false,
            discovery: Discovery::Metadata,
            format: Format::Row,
        }
    }

    /// Checks everything that can be checked before a request is made, and
    /// gives the base URL without a trailing slash.
    pub(crate) fn validate(&self) -> Result<String, RemoteError> {
        let bad = |m: String| Err(RemoteError::Config(m));
        let url = match url::Url::parse(&self.base_url) {
            Ok(url) => url,
            Err(e) => return bad(format!("base URL {:?}: {e}", self.base_url)),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return bad(format!(
                "base URL {:?}: the scheme must be http or https, not {}",
                self.base_url,
                url.scheme()
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return bad(format!(
                "base URL {:?}: a query or fragment would end up before TF Serving's path",
                self.base_url
            ));
        }
        if self.model.is_empty() {
            return bad("the model name is empty".into());
        }
        for (name, value) in &self.headers {
            if let Some(reason) = header_fault(name, value) {
                return bad(format!("header {name:?}: {reason}"));
            }
        }
        if self.timeout.is_zero() {
            return bad("the timeout is zero".into());
        }
        if self.max_response_bytes == 0 {
            return bad("the response size limit is zero".into());
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

/// What is wrong with a header, by RFC 9110's rules (a token name; a value
/// without control characters other than tab). Checked here so both
/// transports refuse the same headers with the same words.
fn header_fault(name: &str, value: &str) -> Option<&'static str> {
    const TOKEN_PUNCT: &[u8] = b"!#$%&'*+-.^_`|~";
    if name.is_empty() {
        return Some("the name is empty");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || TOKEN_PUNCT.contains(&b))
    {
        return Some("the name has a character outside RFC 9110's token set");
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Some("the value has a control character");
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let ms: Vec<u128> = (0..7).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn refuses_what_cannot_work_and_says_why() {
        let ok = RemoteConfig::new("http://127.0.0.1:8501/", "m");
        assert_eq!(ok.validate().unwrap(), "http://127.0.0.1:8501");
        let with_prefix = RemoteConfig::new("https://example.com/tfs/", "m");
        assert_eq!(with_prefix.validate().unwrap(), "https://example.com/tfs");

        let cases: Vec<(RemoteConfig, &str)> = vec![
            (
                RemoteConfig::new("ftp://127.0.0.1:8501", "m"),
                "the scheme must be http or https, not ftp",
            ),
            (
                RemoteConfig::new("127.0.0.1:8501", "m"),
                "relative URL without a base",
            ),
            (RemoteConfig::new("not a url", "m"), "relative URL without a base"),
            (RemoteConfig::new("http://h/?x=1", "m"), "a query or fragment"),
            (RemoteConfig::new("http://h", ""), "the model name is empty"),
            (
                RemoteConfig {
                    headers: vec![("Bad Name".into(), "v".into())],
                    ..RemoteConfig::new("http://h", "m")
                },
                "header \"Bad Name\": the name has a character outside",
            ),
            (
                RemoteConfig {
                    headers: vec![("X-A".into(), "a\r\nInjected: 1".into())],
                    ..RemoteConfig::new("http://h", "m")
                },
                "the value has a control character",
            ),
            (
                RemoteConfig {
                    timeout: Duration::ZERO,
                    ..RemoteConfig::new("http://h", "m")
                },
                "the timeout is zero",
            ),
        ];
        for (config, want) in cases {
            let e = config.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }
}
