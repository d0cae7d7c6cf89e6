//! `edgeserve-fault-proxy`: a test tool (in the test-only `edgeserve-testkit`
//! crate, never shipped). An HTTP proxy on 127.0.0.1 in front of a real TF Serving REST
//! endpoint (`edgeserve serve`) that answers POST requests by a script of
//! faults, so clients' retries, timeouts and limits are tested against real
//! sockets and a real server rather than an in-process fake.
//!
//! ```text
//! edgeserve-fault-proxy --upstream 127.0.0.1:8501 --post 503,503,pass
//! ```
//!
//! Each POST takes the next action of `--post` (then `pass` once it is used
//! up); GETs always pass. Actions:
//! - `pass`: forward to the upstream server and relay its answer;
//! - a status such as `503`: answer it with a TF Serving `{"error": …}` body;
//! - `hang`: read the request and answer nothing for 120 s;
//! - `big`: a 200 announcing a 256 MiB body (and sending it until the client
//!   hangs up);
//! - `big-chunked`: the same without a Content-Length (chunked);
//! - `garbage`: a 200 whose body is not JSON.
//!
//! With `--require-header NAME:VALUE` it stands for an origin that wants
//! credentials: a request without that exact header gets 401, and every
//! relayed answer carries the value back in an `x-origin-saw` header (what
//! a careless origin might leak), for the tests to check that the client in
//! between adds the one and strips the other.
//!
//! `GET /faults/log` answers the requests seen so far, one
//! `METHOD path action` line each. The first line on stdout is
//! `listening on http://ADDR`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
enum Action {
    Pass,
    Status(u16),
    Hang,
    Big,
    BigChunked,
    Garbage,
}

impl Action {
    fn parse(s: &str) -> Action {
        match s {
            "pass" => Action::Pass,
            "hang" => Action::Hang,
            "big" => Action::Big,
            "big-chunked" => Action::BigChunked,
            "garbage" => Action::Garbage,
            n => Action::Status(n.parse().unwrap_or_else(|_| panic!("unknown action {n:?}"))),
        }
    }
}

struct State {
    script: Vec<Action>,
    log: Vec<String>,
    /// `--require-header`: the header name (lower case) and its value.
    required: Option<(String, String)>,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn answer(stream: &mut TcpStream, status: u16, extra: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn forward(upstream: &str, request: &Request) -> Vec<u8> {
    let mut up = TcpStream::connect(upstream).expect("upstream is down");
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {upstream}\r\n",
        request.method, request.path
    );
    for (k, v) in &request.headers {
        let skip = ["host", "connection", "content-length"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        request.body.len()
    ));
    up.write_all(head.as_bytes()).unwrap();
    up.write_all(&request.body).unwrap();
    let mut reply = Vec::new();
    up.read_to_end(&mut reply).unwrap();
    reply
}

fn serve(mut stream: TcpStream, upstream: &str, state: &Mutex<State>) {
    let Some(request) = read_request(&mut stream) else {
        return;
    };
    if request.method == "GET" && request.path == "/faults/log" {
        let log = state.lock().unwrap().log.join("\n");
        answer(&mut stream, 200, "", log.as_bytes());
        return;
    }
    let required = state.lock().unwrap().required.clone();
    if let Some((name, value)) = &required {
        let seen = request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        if seen != Some(value.as_str()) {
            let entry = format!("{} {} refused: no {name}", request.method, request.path);
            state.lock().unwrap().log.push(entry);
            let body = format!("{{ \"error\": \"the origin needs {name}\" }}");
            answer(&mut stream, 401, "", body.as_bytes());
            return;
        }
    }
    let action = {
        let mut s = state.lock().unwrap();
        let action = if request.method == "POST" && !s.script.is_empty() {
            s.script.remove(0)
        } else {
            Action::Pass
        };
        let entry = format!("{} {} {action:?}", request.method, request.path);
        s.log.push(entry);
        action
    };
    match action {
        Action::Pass => {
            let mut reply = forward(upstream, &request);
            if let Some((_, value)) = &required {
                // After the status line: a header echoing the credential.
                if let Some(at) = reply.windows(2).position(|w| w == b"\r\n") {
                    let echo = format!("\r\nx-origin-saw: {value}");
                    reply.splice(at..at, echo.into_bytes());
                }
            }
            let _ = stream.write_all(&reply);
        }
        Action::Status(code) => {
            let body = format!("{{ \"error\": \"injected fault: HTTP {code}\" }}");
            answer(&mut stream, code, "", body.as_bytes());
        }
        Action::Hang => std::thread::sleep(Duration::from_secs(120)),
        Action::Garbage => answer(&mut stream, 200, "", b"<html>not json"),
        Action::Big | Action::BigChunked => {
            let chunked = matches!(action, Action::BigChunked);
            let framing = if chunked {
                "Transfer-Encoding: chunked\r\n".to_owned()
            } else {
                format!("Content-Length: {}\r\n", 256u64 << 20)
            };
            let head = format!("HTTP/1.1 200 OK\r\n{framing}Connection: close\r\n\r\n");
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let block = vec![b' '; 1 << 20];
            for _ in 0..256 {
                let sent = if chunked {
                    stream
                        .write_all(format!("{:x}\r\n", block.len()).as_bytes())
                        .and_then(|_| stream.write_all(&block))
                        .and_then(|_| stream.write_all(b"\r\n"))
                } else {
                    stream.write_all(&block)
                };
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let upstream = flag("--upstream").expect("--upstream HOST:PORT is required");
    let script = flag("--post")
        .map(|s| s.split(',').map(Action::parse).collect())
        .unwrap_or_default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let required = flag("--require-header").map(|h| {
        let (name, value) = h.split_once(':').expect("--require-header takes NAME:VALUE");
        (name.trim().to_ascii_lowercase(), value.trim().to_owned())
    });
    let state = Arc::new(Mutex::new(State {
        script,
        log: Vec::new(),
        required,
    }));
    for stream in listener.incoming().flatten() {
        let (state, upstream) = (state.clone(), upstream.clone());
        std::thread::spawn(move || serve(stream, &upstream, &state));
    }
}
