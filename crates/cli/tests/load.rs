//! `edgeserve serve` under a bounded load of mixed valid and hostile
//! requests from 1, 8 and 32 clients on 127.0.0.1: the process never stops,
//! every valid request is answered correctly, every hostile one is refused
//! with a 4xx, and its resident memory does not grow once warm.
//!
//! Each level runs `EDGESERVE_LOAD_SECONDS` (default 60, as issue 21 asks)
//! and stops by itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve_conformance as suite;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;

struct Case {
    name: &'static str,
    path: String,
    extra: &'static str,
    body: Vec<u8>,
    /// The status wanted; for 200, the top-1 label wanted too.
    status: u16,
    top1: Option<String>,
}

fn cases() -> Vec<Case> {
    use flate2::{Compression, write::GzEncoder};
    let labels =
        std::fs::read_to_string(suite::repo_dir().join("models/efficientnet-lite0/imagenet_labels.txt"))
            .unwrap();
    let label = |image: &str| {
        let top1 = suite::reference_top5("efficientnet-lite0.onnx", image)[0];
        labels.lines().nth(top1).map(str::to_owned)
    };
    let photo = |image: &str| suite::shared(&format!("fixtures/images/{image}_orig.png"));
    let mut zeros = GzEncoder::new(Vec::new(), Compression::fast());
    zeros.write_all(b"{\"instances\": [0").unwrap();
    zeros.write_all(&b",0".repeat(5_000_000)).unwrap();
    zeros.write_all(b"]}").unwrap();
    let classify = "/v1/models/lite0:classify".to_owned();
    vec![
        Case {
            name: "classify coffee",
            path: classify.clone(),
            extra: "",
            body: common::classify_body(vec![photo("coffee")]),
            status: 200,
            top1: label("coffee"),
        },
        Case {
            name: "classify chelsea",
            path: classify.clone(),
            extra: "",
            body: common::classify_body(vec![photo("chelsea")]),
            status: 200,
            top1: label("chelsea"),
        },
        Case {
            name: "screen GIFs",
            path: classify.clone(),
            extra: "",
            body: common::classify_body((0..8).map(|_| common::screen_gif(6300)).collect()),
            status: 400,
            top1: None,
        },
        Case {
            name: "gzip of zeros",
            path: "/v1/models/lite0:predict".to_owned(),
            extra: "Content-Encoding: gzip\r\n",
            body: zeros.finish().unwrap(),
            status: 400,
            top1: None,
        },
        Case {
            name: "long name",
            path: format!("/v1/models/{}:predict", "m".repeat(20_000)),
            extra: "",
            body: b"{}".to_vec(),
            status: 404,
            top1: None,
        },
        Case {
            name: "malformed JSON",
            path: "/v1/models/lite0:predict".to_owned(),
            extra: "",
            body: b"{\"instances\": [[1, 2".to_vec(),
            status: 400,
            top1: None,
        },
    ]
}

fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

#[test]
fn mixed_valid_and_hostile_load_from_1_8_and_32_clients() {
    let seconds: u64 = std::env::var("EDGESERVE_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = common::ModelDir::new("load");
    dir.add_version(1, "efficientnet-lite0");
    let server = common::serve(&dir, "lite0", &[]);
    let cases = Arc::new(cases());
    let mut warm_rss = None;
    for clients in [1, 8, 32] {
        let answered = Arc::new(AtomicUsize::new(0));
        let until = Instant::now() + Duration::from_secs(seconds);
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let (cases, answered, addr) =
                    (Arc::clone(&cases), Arc::clone(&answered), server.addr.clone());
                std::thread::spawn(move || {
                    // Every client walks the cases from its own place, half
                    // of its requests valid.
                    let mut i = c;
                    while Instant::now() < until {
                        let case = &cases[if i % 2 == 0 {
                            i / 2 % 2
                        } else {
                            2 + i / 2 % (cases.len() - 2)
                        }];
                        let (status, _, body) =
                            common::http(&addr, "POST", &case.path, case.extra, &case.body);
                        assert_eq!(
                            status,
                            case.status,
                            "{}: {}",
                            case.name,
                            String::from_utf8_lossy(&body)
                        );
                        if let Some(top1) = &case.top1 {
                            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            assert_eq!(
                                json["results"][0][0][0].as_str(),
                                Some(top1.as_str()),
                                "{}",
                                case.name
                            );
                        }
                        answered.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let rss = rss_mb(server.pid());
        eprintln!(
            "{clients} clients: {} requests in {seconds} s, resident {rss} MB",
            answered.load(Ordering::Relaxed)
        );
        assert!(
            answered.load(Ordering::Relaxed) >= clients,
            "every client was answered"
        );
        // Warm after the first level; later levels may hold more requests
        // at once, not more memory per request.
        let warm = *warm_rss.get_or_insert(rss);
        assert!(rss <= warm + 400, "resident {rss} MB after warm-up at {warm} MB");
    }
}
