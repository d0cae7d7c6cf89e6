//! Load options from JS, checked field by field: a wrong type or an
//! unknown field is an error naming its path (`remote.timeoutMs`), never a
//! silently ignored setting.

use crate::error::JsError;
use edgeserve::protocol::{Code, Format, VersionSelector};
use edgeserve::{Backend, Discovery, LoadOptions, ModelManifest, RemoteConfig};
use js_sys::Reflect;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use wasm_bindgen::{JsCast as _, JsValue};

/// The most classes a result may ask for (ImageNet-21k has 21,843).
const MAX_TOP_K: u32 = 100_000;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsLoadOptions {
    backend: Option<JsBackend>,
    remote: Option<JsRemote>,
    max_local_model_bytes: Option<u64>,
    fallback: Option<bool>,
    /// GiB, as `navigator.deviceMemory` reports it.
    device_memory: Option<f64>,
    max_image_pixels: Option<u64>,
    max_images_per_request: Option<usize>,
    max_request_pixels: Option<u64>,
    max_images_per_run: Option<usize>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum JsBackend {
    Auto,
    /// The CPU backend (`report.backend` says `cpu`); `"wasm"` is its
    /// spelling before 0.2, still accepted.
    #[serde(alias = "wasm")]
    Cpu,
    Webgpu,
    Remote,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsRemote {
    url: String,
    model: Option<String>,
    version: Option<i64>,
    version_label: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    timeout_ms: Option<u64>,
    retries: Option<u32>,
    gzip: Option<bool>,
    max_response_bytes: Option<u64>,
    discovery: Option<JsDiscovery>,
    format: Option<JsFormat>,
}

/// `remote.discovery`: read the signature from the server's TF Serving
/// metadata where it has some (`auto`), or never (`off`).
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum JsDiscovery {
    Auto,
    Off,
}

/// `remote.format`: the request format of classify and tensor runs.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum JsFormat {
    Row,
    Columnar,
}

/// The fields of [`JsLoadOptions`] and [`JsRemote`] as JS spells them.
/// serde-wasm-bindgen reads only the fields a struct names, so
/// `deny_unknown_fields` alone would not see a misspelt option.
const LOAD_KEYS: &[&str] = &[
    "backend",
    "remote",
    "maxLocalModelBytes",
    "fallback",
    "deviceMemory",
    "maxImagePixels",
    "maxImagesPerRequest",
    "maxRequestPixels",
    "maxImagesPerRun",
];
const REMOTE_KEYS: &[&str] = &[
    "url",
    "model",
    "version",
    "versionLabel",
    "headers",
    "timeoutMs",
    "retries",
    "gzip",
    "maxResponseBytes",
    "discovery",
    "format",
];

/// Refuses a key of `object` that is not in `allowed`, naming it.
fn check_keys(object: &JsValue, allowed: &[&str], path: &str) -> Result<(), JsError> {
    let Some(object) = object.dyn_ref::<js_sys::Object>() else {
        return Ok(());
    };
    for key in js_sys::Object::keys(object).iter() {
        let key = key.as_string().unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(format!(
                "{path}.{key}: unknown option (known: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn invalid(message: String) -> JsError {
    JsError::new("invalid_options", Code::InvalidArgument, message)
}

/// A JS value's kind for an error message: `null`, `a string`, `a Map`…
pub(crate) fn describe(value: &JsValue) -> String {
    if value.is_null() {
        return "null".into();
    }
    if value.is_undefined() {
        return "undefined".into();
    }
    if let Some(n) = value.as_f64() {
        return format!("the number {n}");
    }
    if value.is_string() {
        return "a string".into();
    }
    if let Some(b) = value.as_bool() {
        return format!("{b}");
    }
    let name = Reflect::get(value, &"constructor".into())
        .ok()
        .and_then(|c| c.dyn_into::<js_sys::Function>().ok())
        .map(|f| String::from(f.name()))
        .filter(|n| !n.is_empty());
    match name {
        Some(n) => format!("a {n}"),
        None => "an object".into(),
    }
}

/// A manifest's JSON text and the load options given with it, both read:
/// what every entry that plans or loads a model starts from.
pub(crate) fn manifest_and_options(
    manifest: &str,
    options: JsValue,
) -> Result<(ModelManifest, LoadOptions), JsValue> {
    let manifest = ModelManifest::from_json(manifest.as_bytes()).map_err(JsError::from)?;
    let options = load_options(options, &manifest.name)?;
    Ok((manifest, options))
}

/// The load options `value` sets, over the defaults; the remote's model
/// name defaults to `name` (the manifest's).
pub(crate) fn load_options(value: JsValue, name: &str) -> Result<LoadOptions, JsError> {
    let given: JsLoadOptions = if value.is_undefined() || value.is_null() {
        JsLoadOptions::default()
    } else if !value.is_object() {
        return Err(invalid(format!(
            "options: expected an object, got {}",
            describe(&value)
        )));
    } else {
        check_keys(&value, LOAD_KEYS, "options")?;
        let remote = Reflect::get(&value, &"remote".into()).unwrap_or(JsValue::UNDEFINED);
        if remote.is_object() {
            check_keys(&remote, REMOTE_KEYS, "options.remote")?;
        }
        serde_path_to_error::deserialize(serde_wasm_bindgen::Deserializer::from(value))
            .map_err(|e| invalid(format!("options.{}: {}", e.path(), e.inner())))?
    };
    let backend = match given.backend.unwrap_or(JsBackend::Auto) {
        JsBackend::Auto => Backend::Auto,
        JsBackend::Cpu => Backend::Cpu,
        JsBackend::Remote => Backend::Remote,
        JsBackend::Webgpu => Backend::Webgpu,
    };
    let mut options = LoadOptions {
        backend,
        ..LoadOptions::default()
    };
    if let Some(bytes) = given.max_local_model_bytes {
        options.max_local_model_bytes = bytes;
    }
    if let Some(fallback) = given.fallback {
        options.fallback = fallback;
    }
    if let Some(gib) = given.device_memory {
        if !(gib.is_finite() && gib > 0.0) {
            return Err(invalid(format!(
                "options.deviceMemory: expected GiB > 0 (as navigator.deviceMemory), got {gib}"
            )));
        }
        options.device_memory_bytes = Some((gib * f64::from(1u32 << 30)) as u64);
    }
    if let Some(pixels) = given.max_image_pixels {
        options.decode.max_pixels = pixels;
    }
    if let Some(images) = given.max_images_per_request {
        options.decode.max_images = images;
    }
    if let Some(pixels) = given.max_request_pixels {
        options.decode.max_request_pixels = pixels;
    }
    if let Some(images) = given.max_images_per_run {
        options.decode.max_images_per_run = images;
    }
    if let Some(r) = given.remote {
        let mut config = RemoteConfig::new(r.url, r.model.unwrap_or_else(|| name.to_owned()));
        config.version = match (r.version, r.version_label) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "options.remote: give version or versionLabel, not both".into(),
                ));
            }
            (Some(n), None) => Some(VersionSelector::Number(n)),
            (None, Some(label)) => Some(VersionSelector::Label(label)),
            (None, None) => None,
        };
        config.headers = r.headers.unwrap_or_default().into_iter().collect();
        if let Some(ms) = r.timeout_ms {
            if ms == 0 {
                return Err(invalid("options.remote.timeoutMs: must be > 0".into()));
            }
            config.timeout = Duration::from_millis(ms);
        }
        if let Some(n) = r.retries {
            config.retry.max_retries = n;
        }
        if let Some(gzip) = r.gzip {
            config.gzip_requests = gzip;
        }
        if let Some(max) = r.max_response_bytes {
            config.max_response_bytes = max;
        }
        config.discovery = match r.discovery.unwrap_or(JsDiscovery::Auto) {
            JsDiscovery::Auto => Discovery::Metadata,
            JsDiscovery::Off => Discovery::Off,
        };
        config.format = match r.format.unwrap_or(JsFormat::Row) {
            JsFormat::Row => Format::Row,
            JsFormat::Columnar => Format::Columnar,
        };
        options.remote = Some(config);
    }
    Ok(options)
}

/// `topK` of a classify call: 5 when absent.
pub(crate) fn top_k(value: &JsValue) -> Result<usize, JsError> {
    if value.is_undefined() {
        return Ok(5);
    }
    value
        .as_f64()
        .filter(|k| k.fract() == 0.0 && *k >= 1.0 && *k <= f64::from(MAX_TOP_K))
        .map(|k| k as usize)
        .ok_or_else(|| {
            invalid(format!(
                "topK: expected a whole number from 1 to {MAX_TOP_K}, got {}",
                describe(value)
            ))
        })
}
