//! A fault-injecting HTTP proxy on 127.0.0.1, between the store client and moto.
//!
//! One request per client connection (each answer closes it), forwarded over a fresh
//! upstream connection. By the request's sequence number it injects, deterministically:
//! a connection reset (RST) after reading part of the request, a `503 SlowDown`, or, for
//! GETs that are not ranged, a reset halfway through the response body. It counts what it did, so a test
//! can prove the faults happened, and records which data-carrying PUTs had a checksum.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Which faults to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Faults {
    /// Forward everything (for counting requests).
    None,
    /// Resets, 503s and cut responses, as described in the module documentation.
    Flaky,
}

/// What a hook sees of a request before it is forwarded.
pub struct RequestHead {
    pub method: String,
    pub target: String,
}

type Hook = Box<dyn Fn(&RequestHead) + Send + Sync>;

#[derive(Default, Debug)]
pub struct Stats {
    pub requests: AtomicU64,
    pub resets: AtomicU64,
    pub slow_downs: AtomicU64,
    pub cut_responses: AtomicU64,
    pub puts_with_checksum: AtomicU64,
    pub puts_without_checksum: AtomicU64,
}

pub struct Proxy {
    pub endpoint: String,
    pub stats: Arc<Stats>,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl Proxy {
    pub fn start(upstream: &str, faults: Faults) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream host:port");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let stats = Arc::new(Stats::default());
        let hook: Arc<Mutex<Option<Hook>>> = Arc::new(Mutex::new(None));
        let (s, h) = (stats.clone(), hook.clone());
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, h) = (s.clone(), h.clone());
                thread::spawn(move || {
                    let _ = serve(conn, upstream, faults, &s, &h);
                });
            }
        });
        Proxy {
            endpoint,
            stats,
            hook,
        }
    }

    /// Runs `f` before forwarding each request (e.g. to race a competing writer).
    pub fn before_forwarding(&self, f: impl Fn(&RequestHead) + Send + Sync + 'static) {
        *self.hook.lock().unwrap() = Some(Box::new(f));
    }

    pub fn count(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::SeqCst)
    }
}

/// What to do with request number `n` (0-based): every GET that is not already a
/// resumed (ranged) one is cut, so every download must resume at least once.
fn fault_for(n: u64, method: &str, ranged: bool) -> Option<&'static str> {
    match n % 7 {
        3 => Some("reset"),
        5 => Some("slow-down"),
        _ if method == "GET" && !ranged => Some("cut"),
        _ => None,
    }
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    faults: Faults,
    stats: &Stats,
    hook: &Mutex<Option<Hook>>,
) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(()); // closed before a request
        }
        let end = line == b"\r\n";
        head.extend_from_slice(&line);
        if end {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("").to_string();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let n = stats.requests.fetch_add(1, Ordering::SeqCst);
    let fault = match faults {
        Faults::None => None,
        Faults::Flaky => fault_for(n, &method, header("range").is_some()),
    };

    if fault == Some("reset") {
        // Read some of the body first, as a reset in the middle of an upload would.
        let mut some = vec![0; length.min(64 << 10) / 2];
        reader.read_exact(&mut some)?;
        stats.resets.fetch_add(1, Ordering::SeqCst);
        return reset(client);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if method == "PUT" && length > 0 {
        if header("x-amz-checksum-sha256").is_some() {
            stats.puts_with_checksum.fetch_add(1, Ordering::SeqCst);
        } else {
            stats.puts_without_checksum.fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut client = client;
    if fault == Some("slow-down") {
        stats.slow_downs.fetch_add(1, Ordering::SeqCst);
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        write!(
            client,
            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        return client.shutdown(Shutdown::Both);
    }
    if let Some(h) = hook.lock().unwrap().as_ref() {
        h(&RequestHead {
            method: method.clone(),
            target: target.clone(),
        });
    }

    // Forward with "Connection: close", so the upstream's answer ends at its EOF.
    let mut up = TcpStream::connect(upstream)?;
    let mut fwd = format!("{request_line}\r\n");
    for (k, v) in &headers {
        if k != "connection" {
            fwd.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    fwd.push_str("connection: close\r\n\r\n");
    up.write_all(fwd.as_bytes())?;
    up.write_all(&body)?;

    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if fault == Some("cut") && answer.len() > 4096 {
        // Headers and half the body, then a reset: the client must resume with a Range.
        stats.cut_responses.fetch_add(1, Ordering::SeqCst);
        client.write_all(&answer[..answer.len() / 2])?;
        return reset(client);
    }
    client.write_all(&answer)?;
    client.shutdown(Shutdown::Both)
}

/// Closes with RST instead of FIN: SO_LINGER with a zero timeout.
fn reset(s: TcpStream) -> io::Result<()> {
    nix::sys::socket::setsockopt(
        &s.as_fd(),
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .map_err(io::Error::from)?;
    drop(s);
    Ok(())
}
