//! Fake TCP servers for the failure modes no real peer shows on demand:
//! [`Fake`] is silent, answers garbage, a huge frame length, resets mid
//! frame, answers HTTP with a fixed status, or closes at once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a fake server does with each connection.
#[derive(Clone)]
enum Behaviour {
    Silent,
    Garbage,
    HugeLength,
    ResetMidFrame,
    Http(String),
    Close,
}

/// A fake TCP server on 127.0.0.1:0 serving until dropped.
pub struct Fake {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    /// Accepts, reads, never answers.
    pub fn silent() -> Fake {
        Fake::start(Behaviour::Silent)
    }

    /// Answers every read with a 4-byte length prefix and that many random bytes.
    pub fn garbage() -> Fake {
        Fake::start(Behaviour::Garbage)
    }

    /// Answers with length prefix 0x7fff_ffff and a few bytes, then keeps quiet.
    pub fn huge_length() -> Fake {
        Fake::start(Behaviour::HugeLength)
    }

    /// Answers with length prefix 100 and 10 bytes, then resets (SO_LINGER 0).
    pub fn reset_mid_frame() -> Fake {
        Fake::start(Behaviour::ResetMidFrame)
    }

    /// Answers every HTTP request with `status` ("503 Service Unavailable" or
    /// a full "HTTP/1.1 204 No Content") and an empty body, then closes.
    pub fn http(status: &str) -> Fake {
        Fake::start(Behaviour::Http(status.to_owned()))
    }

    /// Accepts, reads the first bytes, closes: Docker's published port
    /// with nothing listening behind it, a load balancer with no backend.
    pub fn closing() -> Fake {
        Fake::start(Behaviour::Close)
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("local_addr");
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, conns, accepted) = (stop.clone(), conns.clone(), accepted.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    // Keep a handle to end long-lived connections on drop;
                    // not for ResetMidFrame, whose close must be the last fd.
                    if !matches!(
                        behaviour,
                        Behaviour::ResetMidFrame | Behaviour::Http(_) | Behaviour::Close
                    ) {
                        if let Ok(clone) = stream.try_clone() {
                            conns.lock().unwrap().push(clone);
                        }
                    }
                    let b = behaviour.clone();
                    thread::spawn(move || serve(stream, &b));
                }
            })
        };
        Fake {
            addr,
            stop,
            conns,
            accepted,
            thread: Some(thread),
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept, then end every connection's reads.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn serve(mut s: TcpStream, behaviour: &Behaviour) {
    let mut buf = [0u8; 4096];
    let mut rng = Rng::new();
    let mut request = Vec::new();
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let reply = match behaviour {
            Behaviour::Close => return,
            Behaviour::Silent => continue,
            Behaviour::Garbage => {
                let len = 16 + (rng.next() % 48) as usize;
                let mut r = (len as u32).to_be_bytes().to_vec();
                r.extend((0..len).map(|_| rng.next() as u8));
                r
            }
            Behaviour::HugeLength => {
                let mut r = 0x7fff_ffffu32.to_be_bytes().to_vec();
                r.extend_from_slice(&[0, 0, 0, 7, 0, 0]);
                r
            }
            Behaviour::ResetMidFrame => {
                let mut r = 100u32.to_be_bytes().to_vec();
                r.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0]);
                let _ = s.write_all(&r);
                reset(s);
                return;
            }
            Behaviour::Http(status) => {
                request.extend_from_slice(&buf[..n]);
                if !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    continue;
                }
                let line = if status.starts_with("HTTP/") {
                    status.clone()
                } else {
                    format!("HTTP/1.1 {status}")
                };
                let r = format!("{line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(r.as_bytes());
                let _ = s.shutdown(Shutdown::Write);
                // Drain until the client closes (or 5 s), so close() sends no RST.
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                return;
            }
        };
        if s.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Closes `s` with an RST instead of a FIN (SO_LINGER on, timeout 0).
fn reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(s);
}

/// xorshift64, seeded from the clock: garbage, not cryptography.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
