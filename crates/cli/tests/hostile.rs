//! `edgeserve serve` against hostile requests, as a real process on
//! 127.0.0.1: each small request that used to make it allocate gigabytes,
//! abort, hang or leak a path is refused with a typed TF Serving error, the
//! process answers the next request, and its peak resident memory
//! (`VmHWM`) stays under a stated bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edgeserve::protocol::{Example, ExamplesRequest, Feature};
use edgeserve_conformance as suite;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;

/// Peak resident memory any of these tests may leave the server at. Lite0
/// loaded and run once peaks at ~160 MB in the debug build; a hostile
/// request's refusal may add one decoded image at the per-image limit.
const PEAK_BOUND_MB: u64 = 700;

struct Server {
    proc: common::Proc,
    _dir: common::ModelDir,
}

impl Server {
    fn start(tag: &str, flags: &[&str]) -> Server {
        let dir = common::ModelDir::new(&format!("hostile-{tag}"));
        dir.add_version(1, "efficientnet-lite0");
        let proc = common::serve(&dir, "lite0", flags);
        Server { proc, _dir: dir }
    }

    fn call(&self, method: &str, path: &str, extra: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let (status, _, body) = common::http(&self.proc.addr, method, path, extra, body);
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&body)));
        (status, json)
    }

    /// The error message of a refusal with `status`.
    fn refused(&self, path: &str, extra: &str, body: &[u8], status: u16) -> String {
        let (got, json) = self.call("POST", path, extra, body);
        let mut shown = json.to_string();
        shown.truncate(600);
        assert_eq!(got, status, "{shown}");
        json["error"].as_str().unwrap().to_owned()
    }

    /// The message of a gzip predict body's 400.
    fn refused_gzip_predict(&self, gzip: &[u8]) -> String {
        self.refused(
            "/v1/models/lite0:predict",
            "Content-Encoding: gzip\r\n",
            gzip,
            400,
        )
    }

    /// The server still answers: the photo classifies to onnxruntime's top-1.
    fn still_answers(&self) {
        let request = ExamplesRequest {
            signature_name: None,
            context: None,
            examples: vec![image_example(suite::shared("fixtures/images/coffee_orig.png"))],
        };
        let (status, json) = self.call(
            "POST",
            "/v1/models/lite0:classify",
            "",
            &request.to_json().unwrap(),
        );
        assert_eq!(status, 200, "{json}");
        let labels =
            std::fs::read_to_string(suite::repo_dir().join("models/efficientnet-lite0/imagenet_labels.txt"))
                .unwrap();
        let top1 = suite::reference_top5("efficientnet-lite0.onnx", "coffee")[0];
        assert_eq!(
            json["results"][0][0][0].as_str(),
            labels.lines().nth(top1),
            "{json}"
        );
    }

    fn status_field(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// The process's peak resident memory in MB, checked against the bound.
    fn peak_within_bound(&self, row: &str) -> u64 {
        let mb = self.status_field("VmHWM:") / 1024;
        eprintln!("{row}: server peak resident memory {mb} MB");
        assert!(mb < PEAK_BOUND_MB, "{row}: peak {mb} MB");
        mb
    }

    /// CPU seconds the process has used (user + system).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.proc.pid())).unwrap();
        // Fields after the command's closing parenthesis; utime and stime
        // are the 14th and 15th of the line, in clock ticks (100 a second
        // on Linux).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }
}

fn image_example(bytes: Vec<u8>) -> Example {
    Example {
        features: [("image/encoded".to_owned(), Feature::Bytes(vec![bytes]))].into(),
    }
}

fn classify_body(examples: Vec<Example>, context: Option<Example>) -> Vec<u8> {
    ExamplesRequest {
        signature_name: None,
        context,
        examples,
    }
    .to_json()
    .unwrap()
}

/// A PNG of one grey level, written by hand (rows of a filter byte and the
/// pixels, deflated), so that a 40-megapixel image costs a few kilobytes.
fn grey_png(width: u32, height: u32) -> Vec<u8> {
    use flate2::{Compression, write::ZlibEncoder};
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    let mut row = vec![0x80u8; width as usize + 1];
    row[0] = 0; // filter: none
    // Rows written a few thousand at a time: one write per row of a
    // 40-million-row image takes seconds.
    let rows_per_write = (1 << 20) / row.len() + 1;
    let block = row.repeat(rows_per_write);
    let mut left = height as usize;
    while left > 0 {
        let n = left.min(rows_per_write);
        z.write_all(&block[..n * row.len()]).unwrap();
        left -= n;
    }
    let idat = z.finish().unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn a_one_pixel_wide_image_costs_no_more_than_its_pixels() {
    let s = Server::start("thin", &[]);
    // 1 x 40,000,000: exactly at the pixel limit. Scaling its shorter side
    // to 256 makes the other 10^10 pixels long: refused, typed.
    let body = classify_body(vec![image_example(grey_png(1, 40_000_000))], None);
    assert!(body.len() < 400_000, "{} bytes", body.len());
    let message = s.refused("/v1/models/lite0:classify", "", &body, 400);
    assert!(
        message.contains("cannot resize the 1x40000000 image: scaling its shorter side to 256"),
        "{message}"
    );
    s.still_answers();
    // 1 x 4,000,000 fits: only the rows the centre crop reaches are resized.
    let body = classify_body(vec![image_example(grey_png(1, 4_000_000))], None);
    let (status, json) = s.call("POST", "/v1/models/lite0:classify", "", &body);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["results"][0].as_array().unwrap().len(), 1000);
    s.peak_within_bound("1x40M PNG");
}

#[test]
fn a_huge_value_is_quoted_without_being_printed_whole() {
    use flate2::{Compression, write::GzEncoder};
    // The values limit raised so that the value reaches the message: its
    // 2,000,000 zeros 200 levels deep would pretty-print to gigabytes.
    let s = Server::start("quote", &["--rest_api_max_json_values", "3000000"]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(b"{\"signature_name\": ").unwrap();
    gz.write_all(&b"[".repeat(200)).unwrap();
    gz.write_all(b"0").unwrap();
    gz.write_all(&b",0".repeat(1_999_999)).unwrap();
    gz.write_all(&b"]".repeat(200)).unwrap();
    gz.write_all(b", \"instances\": [1]}").unwrap();
    let body = gz.finish().unwrap();
    let message = s.refused_gzip_predict(&body);
    assert!(
        message.contains("'signature_name' key must be a string value"),
        "{message}"
    );
    assert!(message.len() < 400, "{} bytes", message.len());
    s.still_answers();
    s.peak_within_bound("deep signature_name");
}

#[test]
fn a_context_image_is_decoded_once_and_images_are_bounded() {
    let s = Server::start("context", &[]);
    // A 6300 x 6300 image in the context, shared by 60 examples.
    let big = grey_png(6300, 6300);
    let body = classify_body(vec![Example::default(); 60], Some(image_example(big.clone())));
    let (status, json) = s.call("POST", "/v1/models/lite0:classify", "", &body);
    assert_eq!(status, 200, "{json}");
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 60);
    assert!(results.iter().all(|r| r == &results[0]));
    // More examples than a request may carry: refused before any decoding.
    let body = classify_body(vec![Example::default(); 80], Some(image_example(big)));
    let message = s.refused("/v1/models/lite0:classify", "", &body, 400);
    assert_eq!(
        message,
        "the request has 80 images, over the limit of 64 a request"
    );
    s.still_answers();
    s.peak_within_bound("6300² context x 60");
}

#[test]
fn tiny_files_that_decode_to_whole_screens_are_charged_by_their_header_or_refused_when_cut_off() {
    let s = Server::start("screens", &[]);
    let gif = common::screen_gif(6300);
    assert!(gif.len() < 64, "{} bytes", gif.len());
    // Each copy is its own image (its own bytes), so each is charged.
    let body = classify_body((0..16).map(|_| image_example(gif.clone())).collect(), None);
    let message = s.refused("/v1/models/lite0:classify", "", &body, 400);
    assert!(
        message.starts_with("the request's images hold more than 200000000 pixels together: 198450000 before a 6300x6300 image"),
        "{message}"
    );
    s.still_answers();
    s.peak_within_bound("16 GIFs of a 6300² screen");
    // A cut-off JPEG is refused, not decoded with its missing rows grey.
    let jpeg = common::truncated_jpeg(6300);
    assert!(jpeg.len() < 2200, "{} bytes", jpeg.len());
    let body = classify_body((0..16).map(|_| image_example(jpeg.clone())).collect(), None);
    let message = s.refused("/v1/models/lite0:classify", "", &body, 400);
    assert!(
        message
            .contains("cannot decode the JPEG image: the data ends after 2138 bytes, before the image does"),
        "{message}"
    );
    s.still_answers();
    s.peak_within_bound("16 truncated JPEGs of 6300²");
}

#[test]
fn an_inflated_body_is_bounded_by_its_values_not_only_its_bytes() {
    use flate2::{Compression, write::GzEncoder};
    let s = Server::start("zeros", &[]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(b"{\"instances\": [0").unwrap();
    let zeros = b",0".repeat(1_000_000);
    for _ in 0..49 {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(b"]}").unwrap();
    let body = gz.finish().unwrap();
    assert!(body.len() < 200_000, "{} bytes", body.len());
    let message = s.refused_gzip_predict(&body);
    assert!(
        message
            .starts_with("The request holds more than 4194304 JSON values; the limit was reached at offset "),
        "{message}"
    );
    s.still_answers();
    s.peak_within_bound("98 MB of zeros in 100 KB of gzip");
}

#[test]
fn a_timeout_ends_the_work_not_only_the_wait() {
    let s = Server::start("deadline", &["--rest_api_timeout_in_ms", "200"]);
    let photo = suite::shared("fixtures/images/coffee_orig.png");
    // 64 images, each its own copy: seconds of decoding and inference.
    let body = classify_body((0..64).map(|_| image_example(photo.clone())).collect(), None);
    let message = s.refused("/v1/models/lite0:classify", "", &body, 504);
    assert_eq!(message, "Request timed out after 200 ms");
    // The cancelled work stops at its next checkpoint (between images,
    // between operators): little CPU is spent once the 504 is out.
    let after_504 = s.cpu_seconds();
    std::thread::sleep(Duration::from_secs(3));
    let spent = s.cpu_seconds() - after_504;
    eprintln!("CPU after the 504: {spent:.2} s");
    assert!(spent < 0.5, "{spent:.2} CPU-seconds after the 504");
    let (status, json) = s.call("GET", "/v1/models/lite0", "", b"");
    assert_eq!(status, 200, "{json}");
    s.peak_within_bound("64-image classify past its deadline");
}

/// A connection that sent `sent` and nothing more.
fn half_open(addr: &str, sent: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(sent).unwrap();
    c
}

#[test]
fn admission_is_bounded_and_the_excess_refused_at_once() {
    let s = Server::start("admission", &["--rest_api_max_pending_requests", "2"]);
    let head = format!(
        "POST /v1/models/lite0:predict HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n{{",
        s.proc.addr
    );
    // Two requests admitted, their bodies never finished.
    let held: Vec<TcpStream> = (0..2).map(|_| half_open(&s.proc.addr, head.as_bytes())).collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let message = s.refused("/v1/models/lite0:predict", "", b"{}", 503);
    assert_eq!(
        message,
        "The server is busy: 2 requests are already admitted; try again later"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "refused at once");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    s.still_answers();
}

#[test]
fn slow_clients_are_timed_out_and_cannot_hold_every_connection() {
    let s = Server::start(
        "slow",
        &[
            "--rest_api_header_read_timeout_in_ms",
            "500",
            "--rest_api_body_read_timeout_in_ms",
            "500",
            "--rest_api_max_connections",
            "8",
        ],
    );
    // More unfinished request heads than the server keeps connections.
    let heads: Vec<TcpStream> = (0..20)
        .map(|_| half_open(&s.proc.addr, b"GET /v1/models/lite0 HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    // A real client still gets in once the slow ones are dropped.
    let (status, json) = s.call("GET", "/v1/models/lite0", "", b"");
    assert_eq!(status, 200, "{json}");
    // Each slow connection was closed by the server.
    for mut c in heads {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut rest = Vec::new();
        match c.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("a slow connection was left open: {e}"),
        }
    }
    // A body that stops half-way gets 408 once its time is up.
    let mut c = half_open(
        &s.proc.addr,
        b"POST /v1/models/lite0:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
    );
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("The request body did not arrive within 500 ms"),
        "{answer}"
    );
    s.still_answers();
}

#[test]
fn an_oversized_body_is_refused_before_it_is_sent() {
    let s = Server::start("expect", &["--rest_api_max_body_bytes", "1000"]);
    let mut c = half_open(
        &s.proc.addr,
        b"POST /v1/models/lite0:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    );
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "no 100 Continue first: {answer}"
    );
    assert!(
        answer.contains("Request body is larger than 1000 bytes"),
        "{answer}"
    );
    let (status, json) = s.call("GET", "/v1/models/lite0", "", b"");
    assert_eq!(status, 200, "{json}");
}

#[test]
fn shutdown_ends_within_its_grace_whatever_clients_do() {
    let s = Server::start(
        "shutdown",
        &[
            "--shutdown_grace_in_ms",
            "1000",
            "--rest_api_header_read_timeout_in_ms",
            "60000",
        ],
    );
    let _slow = half_open(&s.proc.addr, b"GET /v1/models/lite0 HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(200));
    terminated_within(&s.proc.pid().to_string(), Duration::from_secs(15));
}

/// Sends SIGTERM to `pid` and waits until it has stopped, at most `limit`.
fn terminated_within(pid: &str, limit: Duration) {
    let t = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", pid])
            .status()
            .unwrap()
            .success()
    );
    // Gone once /proc no longer has it running (the test still holds the
    // child, so it lingers as a zombie: state Z).
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
    };
    while !gone() {
        assert!(
            t.elapsed() < limit,
            "still running {:?} after SIGTERM",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn long_names_are_quoted_not_echoed() {
    let s = Server::start("names", &[]);
    let name = "m".repeat(60_000);
    let (status, json) = s.call("GET", &format!("/v1/models/{name}"), "", b"");
    assert_eq!(status, 404, "{json}");
    let message = json["error"].as_str().unwrap();
    assert!(
        message.starts_with("Could not find any versions of model mmm"),
        "{message}"
    );
    assert!(message.ends_with("..."), "{message}");
    assert!(message.len() < 400, "{} bytes", message.len());
    let message = s.refused(&format!("/v1/models/{name}:predict"), "", b"{}", 404);
    assert!(message.len() < 400, "{} bytes", message.len());
    s.still_answers();
}

/// The open-files limit (`Max open files`, soft) of process `pid`.
fn open_files_limit(pid: &str) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn eleven_hundred_unfinished_heads_under_a_1024_file_limit() {
    // The row at its own scale: systemd's default of 1,024 open
    // files, and more idle request heads than that. This test needs the
    // 1,100 sockets itself (./x test raises its soft limit to 4,096).
    let own = open_files_limit("self");
    assert!(
        own >= 1200,
        "this test opens 1,100 sockets; its open-files limit is {own}: run `ulimit -n 4096` first"
    );
    let dir = common::ModelDir::new("hostile-files");
    dir.add_version(1, "efficientnet-lite0");
    // The default connection cap (512); heads time out in 2 s, not 10, to
    // keep the test short.
    let flags = [
        "--rest_api_header_read_timeout_in_ms",
        "2000",
        "--shutdown_grace_in_ms",
        "1000",
    ];
    let serve = common::serve_command(&dir, "lite0", &flags);
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", "ulimit -n 1024 && exec \"$0\" \"$@\""])
        .arg(serve.get_program())
        .args(serve.get_args());
    let s = Server {
        proc: common::Proc::spawn(command),
        _dir: dir,
    };
    let pid = s.proc.pid().to_string();
    assert_eq!(open_files_limit(&pid), 1024);
    let heads: Vec<TcpStream> = (0..1100)
        .map(|_| half_open(&s.proc.addr, b"GET /v1/models/lite0 HTTP/1.1\r\nHost: x\r\n"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Connections past the cap wait in the listen backlog, holding no file
    // of the server's.
    let files = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    assert!(files <= 512 + 64, "{files} open files");
    // A real client behind all of them is answered once the heads before
    // it have timed out (two rounds of 2 s), not never.
    let t = Instant::now();
    let (status, json) = s.call("GET", "/v1/models/lite0", "", b"");
    assert_eq!(status, 200, "{json}");
    let waited = t.elapsed();
    assert!(waited < Duration::from_secs(15), "answered after {waited:?}");
    eprintln!("1,100 idle heads: a real client answered after {waited:?}; the server held {files} files");
    // SIGTERM with heads still open ends within the grace.
    let more: Vec<TcpStream> = (0..50)
        .map(|_| half_open(&s.proc.addr, b"GET /v1/models/lite0 HTTP/1.1\r\n"))
        .collect();
    terminated_within(&pid, Duration::from_secs(10));
    drop((heads, more));
}
