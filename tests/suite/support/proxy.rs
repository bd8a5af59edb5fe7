//! A forward HTTP proxy for the tests, std only, one thread per connection: `CONNECT` tunnels
//! and absolute-URI requests (`POST http://host/ HTTP/1.1`), relayed to the address it maps a
//! host name to (so that an endpoint name only the proxy can reach works) or else to the host
//! itself. It can demand Basic credentials (407 otherwise) or answer everything with one status
//! (502, 503), and it logs each request line with the `Proxy-Authorization` it came with.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One request the proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// As received: `CONNECT host:443 HTTP/1.1`, `POST http://host/ HTTP/1.1`.
    pub request_line: String,
    pub proxy_authorization: Option<String>,
}

pub struct TestProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    log: Vec<Logged>,
    routes: HashMap<String, SocketAddr>,
    /// The `Proxy-Authorization` value demanded, if any.
    credentials: Option<String>,
    /// A status to answer every request with.
    refuse_with: Option<u16>,
    stopping: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TestProxy {
    /// Starts a proxy on a free port of 127.0.0.1; it accepts connections when this returns.
    pub fn start() -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot start the test proxy");
        let addr = listener.local_addr().expect("the proxy has an address");
        let shared = Arc::new(Shared::default());
        let accept_thread = thread::spawn({
            let shared = Arc::clone(&shared);
            move || {
                for stream in listener.incoming() {
                    if shared.lock().stopping {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&shared);
                    thread::spawn(move || {
                        let _ = serve(stream, &shared);
                    });
                }
            }
        });
        TestProxy {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY` and friends.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://user:password@127.0.0.1:<port>`.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// `127.0.0.1:<port>`, as messages name the proxy.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Connections for `host` (any port) go to `to`: the proxy resolves the name, not the client.
    pub fn route(&self, host: &str, to: SocketAddr) {
        self.shared.lock().routes.insert(host.to_string(), to);
    }

    /// Demands `Proxy-Authorization: Basic base64(user:password)`, answering 407 otherwise.
    pub fn require_credentials(&self, user: &str, password: &str) {
        self.shared.lock().credentials = Some(basic_authorization(user, password));
    }

    /// Answers every request with `status` (502, 503…) and relays nothing.
    pub fn refuse_with(&self, status: u16) {
        self.shared.lock().refuse_with = Some(status);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.shared.lock().log.clone()
    }

    pub fn request_lines(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.request_line).collect()
    }

    /// Waits (bounded) until `n` requests have been logged; returns whether they were.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.log.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        // Wake the accept loop so that it sees `stopping`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// `Basic base64(user:password)`, as a client sends it.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A request head: the request line and the headers, names as sent.
struct Head {
    line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    /// Reads a head; None at a clean end of the connection.
    fn read(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
        let mut line = String::new();
        while line.trim().is_empty() {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(None);
            }
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        Ok(Some(Head {
            line: line.trim_end().to_string(),
            headers,
        }))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> usize {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    // The upstream connection of absolute-URI requests, kept alive with the client's.
    let mut upstream: Option<(String, BufReader<TcpStream>)> = None;
    while let Some(head) = Head::read(&mut reader)? {
        let (refusal, credentials, routes) = {
            let mut state = shared.lock();
            state.log.push(Logged {
                request_line: head.line.clone(),
                proxy_authorization: head.header("proxy-authorization").map(str::to_string),
            });
            shared.changed.notify_all();
            (
                state.refuse_with,
                state.credentials.clone(),
                state.routes.clone(),
            )
        };
        if let Some(status) = refusal {
            return answer(&mut writer, status, "");
        }
        if credentials.is_some() && head.header("proxy-authorization") != credentials.as_deref() {
            return answer(
                &mut writer,
                407,
                "Proxy-Authenticate: Basic realm=\"test proxy\"\r\n",
            );
        }
        let mut parts = head.line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "CONNECT" {
            let Ok(server) = connect(target, 443, &routes) else {
                return answer(&mut writer, 502, "");
            };
            writer.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            return tunnel(reader, writer, server);
        }
        // Absolute form: http://host[:port]/path
        let Some(rest) = target.strip_prefix("http://") else {
            return answer(&mut writer, 400, "");
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut body = vec![0; head.content_length()];
        reader.read_exact(&mut body)?;
        if upstream.as_ref().is_none_or(|(to, _)| to != authority) {
            let Ok(server) = connect(authority, 80, &routes) else {
                return answer(&mut writer, 502, "");
            };
            upstream = Some((authority.to_string(), BufReader::new(server)));
        }
        let Some((_, server)) = upstream.as_mut() else {
            unreachable!("just connected")
        };
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in &head.headers {
            if !name.to_ascii_lowercase().starts_with("proxy-") {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        request.push_str("\r\n");
        server.get_mut().write_all(request.as_bytes())?;
        server.get_mut().write_all(&body)?;
        let response = Head::read(server)?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let mut response_body = vec![0; response.content_length()];
        server.read_exact(&mut response_body)?;
        let mut bytes = format!("{}\r\n", response.line);
        for (name, value) in &response.headers {
            bytes.push_str(&format!("{name}: {value}\r\n"));
        }
        bytes.push_str("\r\n");
        writer.write_all(bytes.as_bytes())?;
        writer.write_all(&response_body)?;
    }
    Ok(())
}

/// `host:port` (port defaulting to `default_port`), through the routes first.
fn connect(
    authority: &str,
    default_port: u16,
    routes: &HashMap<String, SocketAddr>,
) -> io::Result<TcpStream> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => (host, port.parse().unwrap_or(0)),
        _ => (authority, default_port),
    };
    match routes.get(host) {
        Some(addr) => TcpStream::connect(addr),
        None => TcpStream::connect((host.trim_matches(['[', ']']), port)),
    }
}

/// A status line with no body, then the end of the connection.
fn answer(writer: &mut TcpStream, status: u16, headers: &str) -> io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        407 => "Proxy Authentication Required",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Refused",
    };
    writer.write_all(
        format!(
            "HTTP/1.1 {status} {reason}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )?;
    writer.flush()?;
    let _ = writer.shutdown(Shutdown::Write);
    // Let the client see the answer before the connection goes.
    let _ = writer.read(&mut [0; 1024]);
    Ok(())
}

/// Copies bytes both ways until either side closes.
fn tunnel(
    client_reader: BufReader<TcpStream>,
    mut client: TcpStream,
    mut server: TcpStream,
) -> io::Result<()> {
    let mut server_writer = server.try_clone()?;
    let upward = thread::spawn(move || {
        // Bytes the client sent after CONNECT that are already buffered come first.
        let buffered = client_reader.buffer().to_vec();
        let mut client_reader = client_reader.into_inner();
        let _ = server_writer.write_all(&buffered);
        let _ = io::copy(&mut client_reader, &mut server_writer);
        let _ = server_writer.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = upward.join();
    Ok(())
}
