//! Real processes for the CLI's tests: `edgeserve serve` and the fault proxy
//! on 127.0.0.1 with OS-assigned ports, each killed by its own pid when its
//! handle is dropped, and temporary TF Serving model directories.

#![allow(dead_code)]

use edgeserve_conformance as suite;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A child process that printed `… http://ADDR` as its first line.
pub struct Proc {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The first line it printed.
    pub banner: String,
}

impl Proc {
    pub fn spawn(mut command: Command) -> Proc {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        let addr = banner
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {banner:?}"))
            .trim()
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Proc { child, addr, banner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary TF Serving base path (`<dir>/<version>/`), removed on drop.
pub struct ModelDir {
    pub path: PathBuf,
}

impl ModelDir {
    pub fn new(tag: &str) -> ModelDir {
        let path = std::env::temp_dir().join(format!("edgeserve-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        ModelDir { path }
    }

    /// Copies a bundled model (`models/<model>/`) in as `version`.
    pub fn add_version(&self, version: u32, model: &str) -> PathBuf {
        let dir = self.path.join(version.to_string());
        copy_model(model, &dir);
        dir
    }
}

/// Copies a bundled model directory's files into `dir`.
pub fn copy_model(model: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let bundled = suite::repo_dir().join("models").join(model);
    for f in [
        format!("{model}.onnx"),
        "manifest.json".into(),
        "imagenet_labels.txt".into(),
    ] {
        std::fs::copy(bundled.join(&f), dir.join(&f)).unwrap();
    }
}

impl Drop for ModelDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `edgeserve serve` of `dir` as model `name` on an OS-assigned port.
pub fn serve(dir: &ModelDir, name: &str, flags: &[&str]) -> Proc {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgeserve"));
    command
        .args([
            "serve",
            "--rest_api_port",
            "0",
            "--model_name",
            name,
            "--model_base_path",
        ])
        .arg(&dir.path)
        .args(flags);
    Proc::spawn(command)
}

/// One raw HTTP/1.1 exchange with extra header lines (each ending in
/// `\r\n`); the status, the response head (lower-cased) and the body.
/// Raw, so tests see exactly what went over the wire.
pub fn http(addr: &str, method: &str, path: &str, extra: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec())
        .unwrap()
        .to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

/// A `:classify` body with one example per image, each image its own
/// bytes (`image/encoded`).
pub fn classify_body(images: Vec<Vec<u8>>) -> Vec<u8> {
    edgeserve::protocol::ExamplesRequest {
        signature_name: None,
        context: None,
        examples: images
            .into_iter()
            .map(|bytes| edgeserve::protocol::Example {
                features: [(
                    "image/encoded".to_owned(),
                    edgeserve::protocol::Feature::Bytes(vec![bytes]),
                )]
                .into(),
            })
            .collect(),
    }
    .to_json()
    .unwrap()
}

/// A GIF whose logical screen is `side`² but whose one frame is a single
/// pixel: a few dozen bytes that decode to a whole screen of pixels.
pub fn screen_gif(side: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend(side.to_le_bytes());
    gif.extend(side.to_le_bytes());
    gif.extend([0x80, 0, 0]); // a global colour table of 2 entries
    gif.extend([0, 0, 0, 255, 255, 255]);
    gif.push(0x2c); // image descriptor: 1x1 at (0, 0), no local table
    gif.extend([0, 0, 0, 0, 1, 0, 1, 0, 0]);
    // LZW, minimum code size 2: clear (4), index 0, end (5) in 3-bit codes.
    gif.extend([2, 2, 0x44, 0x01, 0]);
    gif.push(0x3b);
    gif
}

/// The start of a baseline greyscale JPEG of `side`² whose data stops after
/// 2,000 bytes of its scan (about 2 KB in all), without its end marker: what
/// a cut-off upload looks like. Tables are minimal (one code each: every
/// block is flat grey), so the decoder would happily fill the rest in.
pub fn truncated_jpeg(side: u16) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    jpeg.extend([0xFF, 0xDB, 0, 67, 0]); // DQT: table 0, all ones
    jpeg.extend([1; 64]);
    jpeg.extend([0xFF, 0xC0, 0, 11, 8]); // SOF0: 8 bits
    jpeg.extend(side.to_be_bytes());
    jpeg.extend(side.to_be_bytes());
    jpeg.extend([1, 1, 0x11, 0]); // one component, 1x1 sampling, table 0
    for class in [0x00, 0x10] {
        // DHT: one 1-bit code for symbol 0 (DC: no difference; AC: end of block)
        jpeg.extend([0xFF, 0xC4, 0, 20, class, 1]);
        jpeg.extend([0; 15]);
        jpeg.push(0);
    }
    jpeg.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]); // SOS
    jpeg.extend([0; 2000]);
    jpeg
}
