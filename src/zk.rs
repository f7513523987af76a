//! A minimal ZooKeeper client: the session handshake and the three requests
//! kwait needs (exists, getData, delete), over ZooKeeper's jute framing.
//!
//! Why not the `zookeeper-client` crate: measured in kwait's static build it
//! adds about 200 KB, twice the headroom left under the 1 MiB budget, for a
//! long-lived, reconnecting client that kwait does not need. A kwait session
//! lives for one check: it never sets watches, never pings, and is closed
//! (or dropped, which ZooKeeper expires) right away. Every frame is
//! length-checked before it is read, like the Kafka decoder's.
//!
//! Wire format: zookeeper-jute's `proto.jute` (ConnectRequest,
//! RequestHeader, ReplyHeader, GetDataRequest, ...), ZooDefs.OpCode, and
//! KeeperException.Code.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::probe::Attempt;
use crate::reader::Reader;
use crate::target::HostPort;

/// Largest reply accepted: a znode holds at most jute.maxbuffer (1 MiB by
/// default) of data.
const MAX_FRAME: usize = 2 << 20;
/// The session timeout kwait asks for; servers clamp it to [2, 20] ticks.
const SESSION_TIMEOUT_MS: i32 = 10_000;

const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_DELETE: i32 = 2;
const OP_CLOSE: i32 = -11;
/// The xid ZooKeeper uses for watch notifications, which kwait never asks
/// for but skips if they come.
const XID_NOTIFICATION: i32 = -1;

/// A znode's metadata (`org.apache.zookeeper.data.Stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The server answered with a KeeperException code.
    Server(i32),
    /// The connection failed, timed out, or the reply was malformed.
    Io(String),
}

pub const NO_NODE: i32 = -101;
pub const NO_AUTH: i32 = -102;
pub const BAD_VERSION: i32 = -103;
pub const NOT_EMPTY: i32 = -111;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(reason) => f.write_str(reason),
            Error::Server(code) => {
                let name = match *code {
                    NO_NODE => "NoNode",
                    NO_AUTH => "NoAuth",
                    BAD_VERSION => "BadVersion",
                    NOT_EMPTY => "NotEmpty",
                    -4 => "ConnectionLoss",
                    -100 => "APIError",
                    -112 => "SessionExpired",
                    -115 => "AuthFailed",
                    _ => "error",
                };
                write!(f, "ZooKeeper answered {name} ({code})")
            }
        }
    }
}

/// An established session. Paths given to its methods are relative to the
/// chroot, as in every ZooKeeper client.
pub struct Session {
    stream: TcpStream,
    chroot: String,
    xid: i32,
    pub id: i64,
    pub timeout_ms: i32,
}

impl Session {
    /// Connects to `addr` and establishes a new session. A server that is
    /// not serving (no quorum) closes the connection instead of answering.
    pub async fn connect(
        addr: &HostPort,
        chroot: &str,
        attempt: &Attempt,
    ) -> Result<Session, String> {
        let mut stream = attempt.connect(addr).await?;
        let mut req = Vec::with_capacity(48);
        req.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
        req.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
        req.extend_from_slice(&SESSION_TIMEOUT_MS.to_be_bytes());
        req.extend_from_slice(&0i64.to_be_bytes()); // sessionId: new
        req.extend_from_slice(&16i32.to_be_bytes()); // passwd
        req.extend_from_slice(&[0; 16]);
        req.push(0); // readOnly: false, a read-only server is not ready
        let body = exchange(&mut stream, &req, attempt, "the session handshake")
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let mut r = Reader::new(&body);
        let parsed = (|| {
            r.i32()?; // protocolVersion
            let timeout = r.i32()?;
            let id = r.i64()?;
            Ok::<_, String>((timeout, id))
        })();
        let (timeout_ms, id) =
            parsed.map_err(|e| format!("{addr}: malformed session answer: {e}"))?;
        if timeout_ms <= 0 {
            return Err(format!("{addr}: the server refused the session"));
        }
        Ok(Session {
            stream,
            chroot: chroot.to_string(),
            xid: 0,
            id,
            timeout_ms,
        })
    }

    fn full(&self, path: &str) -> String {
        match (self.chroot.as_str(), path) {
            ("", p) => p.to_string(),
            (c, "/") => c.to_string(),
            (c, p) => format!("{c}{p}"),
        }
    }

    /// One request; returns the reply body after its header.
    async fn call(&mut self, op: i32, body: &[u8], attempt: &Attempt) -> Result<Vec<u8>, Error> {
        self.xid = self.xid.wrapping_add(1).max(1);
        let mut req = Vec::with_capacity(8 + body.len());
        req.extend_from_slice(&self.xid.to_be_bytes());
        req.extend_from_slice(&op.to_be_bytes());
        req.extend_from_slice(body);
        let what = "a ZooKeeper answer";
        write_frame(&mut self.stream, &req, attempt)
            .await
            .map_err(Error::Io)?;
        loop {
            let reply = read_frame(&mut self.stream, attempt, what)
                .await
                .map_err(Error::Io)?;
            let mut r = Reader::new(&reply);
            let header = (|| Ok::<_, String>((r.i32()?, r.i32()?, r.i32()?, r.i32()?)))();
            let (xid, _, _, err) =
                header.map_err(|e| Error::Io(format!("malformed reply header: {e}")))?;
            if xid == XID_NOTIFICATION {
                continue;
            }
            if xid != self.xid {
                return Err(Error::Io(format!(
                    "reply for xid {xid}, expected {}",
                    self.xid
                )));
            }
            if err != 0 {
                return Err(Error::Server(err));
            }
            return Ok(reply[16..].to_vec());
        }
    }

    /// The node's Stat, or `None` when it does not exist.
    pub async fn exists(&mut self, path: &str, attempt: &Attempt) -> Result<Option<Stat>, Error> {
        let mut body = string(&self.full(path));
        body.push(0); // watch: false
        match self.call(OP_EXISTS, &body, attempt).await {
            Ok(reply) => stat(&mut Reader::new(&reply)).map(Some).map_err(Error::Io),
            Err(Error::Server(NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data and Stat, or `None` when it does not exist.
    pub async fn get_data(
        &mut self,
        path: &str,
        attempt: &Attempt,
    ) -> Result<Option<(Vec<u8>, Stat)>, Error> {
        let mut body = string(&self.full(path));
        body.push(0); // watch: false
        let reply = match self.call(OP_GET_DATA, &body, attempt).await {
            Ok(reply) => reply,
            Err(Error::Server(NO_NODE)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut r = Reader::new(&reply);
        let parsed = (|| {
            let len = r.i32()?;
            let data = if len <= 0 {
                Vec::new()
            } else {
                r.bytes(len as usize)?.to_vec()
            };
            Ok::<_, String>((data, stat(&mut r)?))
        })();
        parsed
            .map(Some)
            .map_err(|e| Error::Io(format!("malformed getData reply: {e}")))
    }

    /// Deletes the node if its data version is still `version`.
    pub async fn delete(
        &mut self,
        path: &str,
        version: i32,
        attempt: &Attempt,
    ) -> Result<(), Error> {
        let mut body = string(&self.full(path));
        body.extend_from_slice(&version.to_be_bytes());
        self.call(OP_DELETE, &body, attempt).await.map(|_| ())
    }

    /// Ends the session at once, so it leaves nothing behind on the server.
    pub async fn close(mut self, attempt: &Attempt) {
        let _ = self.call(OP_CLOSE, &[], attempt).await;
    }
}

/// A jute ustring: int32 length, then UTF-8 bytes.
fn string(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + s.len());
    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

fn stat(r: &mut Reader<'_>) -> Result<Stat, String> {
    Ok(Stat {
        czxid: r.i64()?,
        mzxid: r.i64()?,
        ctime: r.i64()?,
        mtime: r.i64()?,
        version: r.i32()?,
        cversion: r.i32()?,
        aversion: r.i32()?,
        ephemeral_owner: r.i64()?,
        data_length: r.i32()?,
        num_children: r.i32()?,
        pzxid: r.i64()?,
    })
}

async fn write_frame(stream: &mut TcpStream, body: &[u8], attempt: &Attempt) -> Result<(), String> {
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(body);
    attempt
        .within("sending to ZooKeeper", stream.write_all(&frame))
        .await
}

async fn read_frame(
    stream: &mut TcpStream,
    attempt: &Attempt,
    what: &str,
) -> Result<Vec<u8>, String> {
    let mut prefix = [0u8; 4];
    attempt
        .within(
            &format!("waiting for {what}"),
            stream.read_exact(&mut prefix),
        )
        .await?;
    let len = i32::from_be_bytes(prefix);
    let len = match usize::try_from(len) {
        Ok(n) if n <= MAX_FRAME => n,
        _ => {
            return Err(format!(
                "answered with a frame length of {len} bytes, which is not ZooKeeper"
            ))
        }
    };
    let mut body = vec![0u8; len];
    attempt
        .within(&format!("reading {what}"), stream.read_exact(&mut body))
        .await?;
    Ok(body)
}

async fn exchange(
    stream: &mut TcpStream,
    body: &[u8],
    attempt: &Attempt,
    what: &str,
) -> Result<Vec<u8>, String> {
    write_frame(stream, body, attempt).await?;
    read_frame(stream, attempt, what).await.map_err(|e| {
        if e.contains("connection closed") {
            format!("{e}: the server closed the session handshake, so it is not serving (no quorum yet?)")
        } else {
            e
        }
    })
}
