//! The fault proxy itself: each POST takes the next scripted action, GETs
//! and the rest pass through to the upstream with their method, path and
//! body, and the log lists what it saw. The upstream here is a plain
//! socket on 127.0.0.1 that echoes what reached it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_testkit::process::{Proc, binary, http};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// An upstream that answers every request with `METHOD PATH BODY` as its
/// body, and the number of requests it has answered.
fn echo_upstream() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim_end().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = line.split_whitespace();
            let echo = format!(
                "{} {} {}",
                parts.next().unwrap(),
                parts.next().unwrap(),
                String::from_utf8_lossy(&body)
            );
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{echo}",
                echo.len()
            )
            .unwrap();
        }
    });
    (addr, seen)
}

#[test]
fn scripted_posts_then_pass_through_and_a_log_of_each() {
    let (upstream, seen) = echo_upstream();
    let proxy = Proc::spawn({
        let mut c = Command::new(binary("edgeserve-fault-proxy"));
        c.args(["--upstream", &upstream, "--post", "503,garbage"]);
        c
    });
    let post = |path: &str, body: &[u8]| http(&proxy.addr, "POST", path, "", body);

    let (status, _, body) = post("/v1/models/m:predict", b"{}");
    assert_eq!(status, 503);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{ "error": "injected fault: HTTP 503" }"#
    );
    let (status, _, body) = post("/v1/models/m:predict", b"{}");
    assert_eq!((status, body.as_slice()), (200, &b"<html>not json"[..]));
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "faults never reach the upstream"
    );

    // The script is used up: the rest pass, as do GETs all along.
    let (status, _, body) = post("/v1/models/m:classify", b"{\"examples\": []}");
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "POST /v1/models/m:classify {\"examples\": []}"
    );
    let (status, _, body) = http(&proxy.addr, "GET", "/v1/models/m", "", b"");
    assert_eq!(
        (status, String::from_utf8(body).unwrap().as_str()),
        (200, "GET /v1/models/m ")
    );
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);

    assert_eq!(
        edgeserve_testkit::process::fault_log(&proxy),
        [
            "POST /v1/models/m:predict Status(503)",
            "POST /v1/models/m:predict Garbage",
            "POST /v1/models/m:classify Pass",
            "GET /v1/models/m Pass",
        ]
    );
}
