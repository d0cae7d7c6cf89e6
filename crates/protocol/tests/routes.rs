//! REST paths (spec §1).

// Tests fail by panicking; helpers outside #[test] fns are tests too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_protocol::{Endpoint, Route, VersionSelector, is_api_path};

fn ok(method: &str, path: &str) -> Route {
    Route::parse(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn err(method: &str, path: &str) -> String {
    Route::parse(method, path).expect_err(path).to_string()
}

#[test]
fn every_endpoint_parses() {
    let r = ok("GET", "/v1/models/m");
    assert_eq!(
        (r.model.as_str(), r.version.clone(), r.endpoint),
        ("m", None, Endpoint::Status)
    );
    let r = ok("GET", "/v1/models/m/versions/3");
    assert_eq!(
        (r.version, r.endpoint),
        (Some(VersionSelector::Number(3)), Endpoint::Status)
    );
    let r = ok("GET", "/v1/models/m/labels/stable/metadata");
    assert_eq!(
        (r.version, r.endpoint),
        (Some(VersionSelector::Label("stable".into())), Endpoint::Metadata)
    );
    assert_eq!(ok("GET", "/v1/models/m/metadata").endpoint, Endpoint::Metadata);
    assert_eq!(ok("POST", "/v1/models/m:predict").endpoint, Endpoint::Predict);
    assert_eq!(
        ok("POST", "/v1/models/m/versions/00000123:classify").version,
        Some(VersionSelector::Number(123))
    );
    assert_eq!(
        ok("POST", "/v1/models/m/labels/canary:regress").endpoint,
        Endpoint::Regress
    );
    // Literal parts are case-insensitive; a query is ignored.
    assert_eq!(
        ok("GET", "/V1/MODELS/m/VERSIONS/2/METADATA?x=1").endpoint,
        Endpoint::Metadata
    );
    // A model may be called "metadata".
    assert_eq!(ok("GET", "/v1/models/metadata").model, "metadata");
}

#[test]
fn names_and_labels_are_percent_decoded_without_plus_as_space() {
    let r = ok(
        "POST",
        "/v1/models/modelname%21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D:predict",
    );
    assert_eq!(r.model, "modelname!#$%&'()*+,/:;=?@[]");
    assert_eq!(ok("GET", "/v1/models/a+b").model, "a+b");
    let r = ok("GET", "/v1/models/m/labels/a%20b");
    assert_eq!(r.version, Some(VersionSelector::Label("a b".into())));
}

#[test]
fn malformed_paths_use_tf_serving_wording() {
    for (m, p) in [
        ("GET", "/v1/models/m/versions/abc"),
        ("GET", "/v1/models/m/version/5"),
        ("GET", "/v1/models/m/label/x"),
        ("GET", "/v1/models/m/versions/1/labels/x"),
        ("POST", "/v1/models/m/metadata"),
        ("GET", "/v1/models/m:predict"),
        ("POST", "/v1/models/m:PREDICT"),
        ("PUT", "/v1/models/m"),
        ("GET", "/v1/models/"),
        ("GET", "/v1/foo"),
    ] {
        assert_eq!(err(m, p), format!("Malformed request: {m} {p}"));
    }
    assert_eq!(err("GET", "/v1/models"), "Missing model name in request.");
    assert_eq!(
        err("GET", "/v1/models/versions/3"),
        "Missing model name in request."
    );
    assert_eq!(
        err("GET", "/v1/models/m/versions/18446744073709551615"),
        "Failed to convert version: 18446744073709551615 to numeric."
    );
    let e = Route::parse("GET", "/v1/models").unwrap_err();
    assert_eq!(e.http_status(), 400);
}

#[test]
fn only_v1_paths_are_api_paths() {
    assert!(is_api_path("/v1/models/m"));
    assert!(is_api_path("/V1/anything"));
    assert!(!is_api_path("/v1"));
    assert!(!is_api_path("/v2/models/m"));
    assert!(!is_api_path("/"));
    assert!(!is_api_path("/v1é/models"));
    assert!(!is_api_path("/vé"));
    assert!(Route::parse("GET", "/v1/modelé").is_err());
    assert!(Route::parse("POST", "/v1/models/é:predicté").is_err());
}

#[test]
fn built_paths_encode_and_parse_back() {
    let cases = [
        Route::new("plain", Endpoint::Status),
        Route::new("a/b:c?d#e%f g+h", Endpoint::Predict).with_version(VersionSelector::Number(42)),
        Route::new("ünï", Endpoint::Metadata).with_version(VersionSelector::Label("st/able".into())),
        Route::new("m", Endpoint::Classify),
        Route::new("m", Endpoint::Regress).with_version(VersionSelector::Label("x".into())),
    ];
    for r in cases {
        let path = r.to_path().unwrap();
        assert_eq!(Route::parse(r.endpoint.method(), &path).unwrap(), r, "{path}");
    }
    assert_eq!(
        Route::new("a/b", Endpoint::Predict)
            .with_version(VersionSelector::Number(1))
            .to_path()
            .unwrap(),
        "/v1/models/a%2Fb/versions/1:predict"
    );
    assert!(Route::new("", Endpoint::Status).to_path().is_err());
    assert!(
        Route::new("m", Endpoint::Status)
            .with_version(VersionSelector::Number(-1))
            .to_path()
            .is_err()
    );
}
