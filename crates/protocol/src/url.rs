//! TF Serving's REST paths: `/v1/models/{name}[/versions/{v}|/labels/{l}]`
//! followed by nothing (status), `/metadata`, `:predict`, `:classify` or
//! `:regress`; matched and worded as TF Serving's HTTP handler does.

use crate::{Error, VersionSelector, quote};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET …`: version status.
    Status,
    /// `GET …/metadata`.
    Metadata,
    /// `POST …:predict`.
    Predict,
    /// `POST …:classify`.
    Classify,
    /// `POST …:regress`.
    Regress,
}

impl Endpoint {
    /// The HTTP method the endpoint takes.
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::Status | Endpoint::Metadata => "GET",
            _ => "POST",
        }
    }

    /// Its name as errors and reports give it: `status`, `metadata`,
    /// `predict`, `classify`, `regress`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Status => "status",
            Endpoint::Metadata => "metadata",
            Endpoint::Predict => "predict",
            Endpoint::Classify => "classify",
            Endpoint::Regress => "regress",
        }
    }
}

/// A parsed (or to-be-built) TF Serving REST route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The model name, percent-decoded.
    pub model: String,
    /// The version or label, if the path names one.
    pub version: Option<VersionSelector>,
    /// What is asked for.
    pub endpoint: Endpoint,
}

/// Everything but RFC 3986's unreserved characters is encoded, so any name or
/// label survives TF Serving's decoding (which does not turn `+` into a space).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a model name or label for a path.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Whether TF Serving's dispatcher claims the path (`(?i)/v1/.*`); any other
/// path gets a plain 404 page, not a JSON error.
pub fn is_api_path(path: &str) -> bool {
    // Bytes, not a str slice: byte 4 may fall inside a multi-byte character.
    strip_query(path)
        .as_bytes()
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case(b"/v1/"))
}

fn strip_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Strips an ASCII-case-insensitive literal prefix.
fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// A run of `[^/:]+` at the start of `s`: (run, rest).
fn segment(s: &str) -> Option<(&str, &str)> {
    let end = s.find(['/', ':']).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

enum RawVersion<'a> {
    Number(&'a str),
    Label(&'a str),
}

/// `(?:/versions/(\d+)|/labels/([^/:]+))?` at the start of `s`.
fn version_part(s: &str) -> (Option<RawVersion<'_>>, &str) {
    if let Some(rest) = strip_ci(s, "/versions/") {
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if end > 0 {
            return (Some(RawVersion::Number(&rest[..end])), &rest[end..]);
        }
    }
    if let Some(rest) = strip_ci(s, "/labels/")
        && let Some((label, rest)) = segment(rest)
    {
        return (Some(RawVersion::Label(label)), rest);
    }
    (None, s)
}

fn decode(s: &str) -> Result<String, Error> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            Error::invalid_argument(format!(
                "Model name or label is not UTF-8 after decoding: {}",
                quote(s)
            ))
        })
}

/// The part of the GET pattern after the model name:
/// `(?:/versions/\d+|/labels/[^/:]+)?(?:/metadata)?`, to the end.
fn get_rest(rest: &str) -> Option<(Option<RawVersion<'_>>, Endpoint)> {
    let (version, rest) = version_part(rest);
    match rest {
        "" => Some((version, Endpoint::Status)),
        _ => strip_ci(rest, "/metadata")
            .filter(|r| r.is_empty())
            .map(|_| (version, Endpoint::Metadata)),
    }
}

impl Route {
    /// A route to `endpoint` of the latest version of `model`.
    pub fn new(model: impl Into<String>, endpoint: Endpoint) -> Self {
        Route {
            model: model.into(),
            version: None,
            endpoint,
        }
    }

    /// The same route for a given version or label.
    pub fn with_version(mut self, version: VersionSelector) -> Self {
        self.version = Some(version);
        self
    }

    /// Matches a request line as TF Serving does. `path` may carry a query,
    /// which is ignored. Errors are TF Serving's: `Malformed request: …`,
    /// `Missing model name in request.`, `Failed to convert version: …`.
    pub fn parse(method: &str, path: &str) -> Result<Route, Error> {
        let path = strip_query(path);
        let malformed =
            || Error::invalid_argument(format!("Malformed request: {} {}", quote(method), quote(path)));
        let tail = strip_ci(path, "/v1/models").ok_or_else(malformed)?;
        let (model, version, endpoint) = match method {
            "POST" => {
                let rest = tail.strip_prefix('/').ok_or_else(malformed)?;
                let (name, rest) = segment(rest).ok_or_else(malformed)?;
                let (version, rest) = version_part(rest);
                let verb = rest.strip_prefix(':').ok_or_else(malformed)?;
                // The pattern is case-insensitive but the dispatch that follows
                // compares the verb exactly, so `:PREDICT` is malformed.
                let endpoint = match verb {
                    "predict" => Endpoint::Predict,
                    "classify" => Endpoint::Classify,
                    "regress" => Endpoint::Regress,
                    _ => return Err(malformed()),
                };
                (Some(name), version, endpoint)
            }
            "GET" => {
                // The name group is optional, so like the regex try with a
                // name first, then without (`/v1/models/versions/3`).
                let named = tail
                    .strip_prefix('/')
                    .and_then(segment)
                    .and_then(|(name, rest)| get_rest(rest).map(|(v, e)| (Some(name), v, e)));
                let (name, version, endpoint) = named
                    .or_else(|| get_rest(tail).map(|(v, e)| (None, v, e)))
                    .ok_or_else(malformed)?;
                (name, version, endpoint)
            }
            _ => return Err(malformed()),
        };
        let model = model.ok_or_else(|| Error::invalid_argument("Missing model name in request."))?;
        let version = match version {
            None => None,
            Some(RawVersion::Number(digits)) => {
                Some(VersionSelector::Number(digits.parse().map_err(|_| {
                    Error::invalid_argument(format!(
                        "Failed to convert version: {} to numeric.",
                        quote(digits)
                    ))
                })?))
            }
            Some(RawVersion::Label(label)) => Some(VersionSelector::Label(decode(label)?)),
        };
        Ok(Route {
            model: decode(model)?,
            version,
            endpoint,
        })
    }

    /// The path for this route, with the name and label percent-encoded.
    /// Refuses what no TF Serving path can express: an empty name or label, a
    /// negative version.
    pub fn to_path(&self) -> Result<String, Error> {
        if self.model.is_empty() {
            return Err(Error::invalid_argument("Missing model name in request."));
        }
        let mut path = format!("/v1/models/{}", encode_component(&self.model));
        match &self.version {
            None => {}
            Some(VersionSelector::Number(n)) if *n < 0 => {
                return Err(Error::invalid_argument(format!(
                    "Model version must be >= 0, got: {n}"
                )));
            }
            Some(VersionSelector::Number(n)) => path.push_str(&format!("/versions/{n}")),
            Some(VersionSelector::Label(l)) if l.is_empty() => {
                return Err(Error::invalid_argument("Model version label must not be empty"));
            }
            Some(VersionSelector::Label(l)) => {
                path.push_str("/labels/");
                path.push_str(&encode_component(l));
            }
        }
        path.push_str(match self.endpoint {
            Endpoint::Status => "",
            Endpoint::Metadata => "/metadata",
            Endpoint::Predict => ":predict",
            Endpoint::Classify => ":classify",
            Endpoint::Regress => ":regress",
        });
        Ok(path)
    }
}
