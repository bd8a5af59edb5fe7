//! A stand-in for the fake Lightsail endpoint that answers every request with one canned HTTP
//! response (any status, any body bytes), so that property tests can feed the binary arbitrary
//! API answers. It parses just enough HTTP/1.1 to find the end of each request (headers, then a
//! Content-Length body), keeps connections alive, and counts requests. The shared fake in
//! tests/common validates and models the API; this one deliberately does not.
//!
//! Used through `#[path]` by tests/properties.rs; depends on std only.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

/// One HTTP answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status,
            content_type: "application/x-amz-json-1.1".to_string(),
            body: body.into(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = format!(
            "HTTP/1.1 {} Canned\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            self.status,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

struct Shared {
    answer: Mutex<Canned>,
    requests: AtomicUsize,
    stopping: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
}

/// A running canned endpoint on 127.0.0.1; dropping it stops it and closes its connections.
pub struct CannedEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl CannedEndpoint {
    pub fn start(answer: Canned) -> CannedEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the canned endpoint");
        let addr = listener.local_addr().expect("no local address");
        let shared = Arc::new(Shared {
            answer: Mutex::new(answer),
            requests: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
        });
        let accept_thread = thread::spawn({
            let shared = Arc::clone(&shared);
            move || {
                for stream in listener.incoming() {
                    if shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Ok(clone) = stream.try_clone() {
                        lock(&shared.connections).push(clone);
                    }
                    let shared = Arc::clone(&shared);
                    thread::spawn(move || serve(stream, &shared));
                }
            }
        });
        CannedEndpoint {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every later request gets this answer.
    pub fn set(&self, answer: Canned) {
        *lock(&self.shared.answer) = answer;
    }

    /// Requests answered or being answered so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

impl Drop for CannedEndpoint {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for stream in lock(&self.shared.connections).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers each request on the connection with the current canned answer, until EOF.
fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let mut content_length = 0usize;
        let mut saw_request_line = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                if saw_request_line {
                    break;
                }
                continue;
            }
            saw_request_line = true;
            if let Some((name, value)) = line.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let answer = lock(&shared.answer).to_bytes();
        if writer
            .write_all(&answer)
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}
