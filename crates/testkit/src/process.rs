//! Real processes for tests: `edgeserve serve` and the fault proxy on
//! 127.0.0.1 with OS-assigned ports, each killed by its own pid when its
//! handle is dropped, and temporary TF Serving model directories.

use crate::repo_dir;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A binary of this workspace, as cargo built it for the running test:
/// `target/<profile>/<name>` beside the test's own `deps/` directory.
///
/// Integration tests of another package cannot use `CARGO_BIN_EXE_*`
/// (cargo sets it only for the package's own binaries), so the tests of the
/// remote client and of routing find `edgeserve` and the fault proxy here.
/// `cargo test --workspace` builds both (their packages have integration
/// tests); a lone `cargo test -p …` may not, and then this says what to
/// build rather than letting a test skip.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary under target/<profile>/deps");
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace` (or `./x test`) first",
        path.display()
    );
    path
}

/// A child process that printed `… http://ADDR` as its first line (and,
/// for `edgeserve serve`, `… gRPC on ADDR`).
pub struct Proc {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The gRPC API's `127.0.0.1:PORT`, when the banner names one.
    pub grpc_addr: Option<String>,
    /// The first line it printed.
    pub banner: String,
}

impl Proc {
    /// Starts `command` and waits for its first line, which must name an
    /// address on 127.0.0.1.
    pub fn spawn(mut command: Command) -> Proc {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        let after = |marker: &str| {
            banner
                .split(marker)
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        };
        let addr = after("http://").unwrap_or_else(|| panic!("no address in {banner:?}"));
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let grpc_addr = after("gRPC on ");
        Proc {
            child,
            addr,
            grpc_addr,
            banner,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id, which the test stops it by.
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
    /// The base path.
    pub path: PathBuf,
}

impl ModelDir {
    /// An empty base path, unique to this process and `tag`.
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

impl Drop for ModelDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copies a bundled model directory's files into `dir`.
pub fn copy_model(model: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let bundled = repo_dir().join("models").join(model);
    for f in [
        format!("{model}.onnx"),
        "manifest.json".into(),
        "imagenet_labels.txt".into(),
    ] {
        std::fs::copy(bundled.join(&f), dir.join(&f)).unwrap();
    }
}

/// `edgeserve serve` of `dir` as model `name` on an OS-assigned port.
pub fn serve(dir: &ModelDir, name: &str, flags: &[&str]) -> Proc {
    Proc::spawn(serve_command(dir, name, flags))
}

/// The command [`serve`] runs, for a test that starts it another way (under
/// a lower open-files limit, say).
pub fn serve_command(dir: &ModelDir, name: &str, flags: &[&str]) -> Command {
    let mut command = serve_on_any_ports();
    command
        .args(["--model_name", name, "--model_base_path"])
        .arg(&dir.path)
        .args(flags);
    command
}

/// `edgeserve serve` with REST and gRPC on OS-assigned ports, the models
/// still to name.
fn serve_on_any_ports() -> Command {
    let mut command = Command::new(binary("edgeserve"));
    command.args(["serve", "--rest_api_port", "0", "--port", "0"]);
    command
}

/// `edgeserve serve` of a TF Serving model config file, REST and gRPC on
/// OS-assigned ports, with `flags` after.
pub fn serve_config(config: &Path, flags: &[&str]) -> Proc {
    let mut command = serve_on_any_ports();
    command.arg("--model_config_file").arg(config).args(flags);
    Proc::spawn(command)
}

/// A bundled model (`models/<model>/`) as version 1 of a fresh base path,
/// served as `name`.
pub fn serve_bundled(tag: &str, model: &str, name: &str) -> (ModelDir, Proc) {
    let dir = ModelDir::new(tag);
    dir.add_version(1, model);
    let server = serve(&dir, name, &[]);
    (dir, server)
}

/// The fault proxy in front of `upstream`, answering POSTs by `script`
/// (see `src/bin/fault_proxy.rs`).
pub fn fault_proxy(upstream: &Proc, script: &str) -> Proc {
    let mut command = Command::new(binary("edgeserve-fault-proxy"));
    command.args(["--upstream", &upstream.addr, "--post", script]);
    Proc::spawn(command)
}

/// The fault proxy's log: one `METHOD path action` line per request it saw.
pub fn fault_log(proxy: &Proc) -> Vec<String> {
    let (status, _, body) = http(&proxy.addr, "GET", "/faults/log", "", b"");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
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

/// The Python of a venv `./x test` makes under `~/.cache/edgeserve/`
/// (`dir`), or the one `var` names. Without it the test fails saying so,
/// rather than skipping.
fn venv_python(var: &str, dir: &str, what: &str, step: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_default();
        Path::new(&home).join(format!(".cache/edgeserve/{dir}/bin/python"))
    });
    assert!(
        path.is_file(),
        "{} is missing: `./x test {step}` makes {what} (or set {var})",
        path.display()
    );
    path
}

/// The Python of the virtual environment that holds KServe's model server
/// (PyPI `kserve`, with onnxruntime and numpy): `EDGESERVE_KSERVE_PYTHON`,
/// else `~/.cache/edgeserve/kserve-venv/bin/python`.
pub fn kserve_python() -> PathBuf {
    venv_python(
        "EDGESERVE_KSERVE_PYTHON",
        "kserve-venv",
        "KServe's venv",
        "kserve",
    )
}

/// The Python of the virtual environment that holds the official
/// `tensorflow-serving-api` client (with TensorFlow): `EDGESERVE_TFS_PYTHON`,
/// else `~/.cache/edgeserve/tfs-venv/bin/python`.
pub fn tfs_python() -> PathBuf {
    venv_python(
        "EDGESERVE_TFS_PYTHON",
        "tfs-venv",
        "the tensorflow-serving-api venv",
        "grpc",
    )
}

/// Runs `tests/peers/tfs_grpc_client.py` (the official TF Serving Python
/// client) against the gRPC API at `addr` with `plan` (a JSON list of
/// calls, as JSON text) and returns what it printed: a JSON list with one
/// result per call.
pub fn tfs_grpc_client(addr: &str, plan: &str) -> Vec<u8> {
    let mut child = Command::new(tfs_python())
        .arg(repo_dir().join("tests/peers/tfs_grpc_client.py"))
        .args(["--addr", addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(plan.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the TF Serving client failed: {}",
        out.status
    );
    out.stdout
}

/// KServe's V1 model server (`tests/peers/kserve_onnx.py`: a `kserve.Model`
/// running onnxruntime) serving the bundled `model` as `name` on
/// 127.0.0.1; stopped by its pid when dropped. A peer that speaks TF
/// Serving's predict protocol but has no `/metadata` route.
pub fn kserve(model: &str, name: &str) -> Proc {
    kserve_file(&repo_dir().join(format!("models/{model}/{model}.onnx")), name)
}

/// [`kserve`] of any ONNX file (one input, one output).
pub fn kserve_file(onnx: &Path, name: &str) -> Proc {
    let mut command = Command::new(kserve_python());
    command
        .arg(repo_dir().join("tests/peers/kserve_onnx.py"))
        .args(["--name", name, "--onnx"])
        .arg(onnx);
    Proc::spawn(command)
}
