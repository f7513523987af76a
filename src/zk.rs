//! A minimal ZooKeeper client: the session handshake and the four requests
//! kwait needs (exists, getData, getChildren, delete), over ZooKeeper's jute
//! framing.
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

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use crate::net::Attempt;
use crate::net::HostPort;
use crate::reader::Reader;

/// Largest reply accepted: a znode holds at most jute.maxbuffer (1 MiB by
/// default) of data.
const MAX_FRAME: usize = 2 << 20;
/// The session timeout kwait asks for; servers clamp it to [2, 20] ticks.
const SESSION_TIMEOUT_MS: i32 = 10_000;

const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_GET_CHILDREN: i32 = 8;
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
        write_frame(&mut stream, &req, attempt)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let body = read_frame(&mut stream, attempt, "the session handshake")
            .await
            .map_err(|e| format!("{addr}: {}", handshake_failed(e)))?;
        let (timeout_ms, id) = session_answer(&body).ok_or_else(|| {
            format!(
                "{addr}: {NOT_ZOOKEEPER}: it answered {} bytes, not a session",
                body.len()
            )
        })?;
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
                .map_err(|e| Error::Io(e.to_string()))?;
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
            // The header just read took 16 bytes: the slice is in range.
            return Ok(reply[16..].to_vec());
        }
    }

    /// A read request on `path` without a watch: its reply body, or `None`
    /// when the node does not exist.
    async fn read(
        &mut self,
        op: i32,
        path: &str,
        attempt: &Attempt,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut body = string(&self.full(path));
        body.push(0); // watch: false
        match self.call(op, &body, attempt).await {
            Ok(reply) => Ok(Some(reply)),
            Err(Error::Server(NO_NODE)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's Stat, or `None` when it does not exist.
    pub async fn exists(&mut self, path: &str, attempt: &Attempt) -> Result<Option<Stat>, Error> {
        match self.read(OP_EXISTS, path, attempt).await? {
            Some(reply) => stat(&mut Reader::new(&reply)).map(Some).map_err(Error::Io),
            None => Ok(None),
        }
    }

    /// The node's data and Stat, or `None` when it does not exist.
    pub async fn get_data(
        &mut self,
        path: &str,
        attempt: &Attempt,
    ) -> Result<Option<(Vec<u8>, Stat)>, Error> {
        let Some(reply) = self.read(OP_GET_DATA, path, attempt).await? else {
            return Ok(None);
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

    /// The names of the node's children, or `None` when it does not exist.
    pub async fn children(
        &mut self,
        path: &str,
        attempt: &Attempt,
    ) -> Result<Option<Vec<String>>, Error> {
        let Some(reply) = self.read(OP_GET_CHILDREN, path, attempt).await? else {
            return Ok(None);
        };
        let mut r = Reader::new(&reply);
        let parsed = (|| {
            let count = r.i32()?;
            let mut names = Vec::new();
            for _ in 0..count.max(0) {
                // Each name takes at least its 4-byte length: a count the
                // frame cannot hold fails here, before it allocates much.
                let len = usize::try_from(r.i32()?).map_err(|_| "negative name length")?;
                names.push(String::from_utf8_lossy(r.bytes(len)?).into_owned());
            }
            Ok::<_, String>(names)
        })();
        parsed
            .map(Some)
            .map_err(|e| Error::Io(format!("malformed getChildren reply: {e}")))
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

/// Why no frame was read.
#[derive(Debug)]
enum NoFrame {
    /// The peer closed the connection before the frame began.
    Closed(String),
    /// A length no ZooKeeper frame has.
    Length(i32),
    /// The connection ended inside the frame.
    Cut(String),
    /// No answer in time, or a reset before the frame began.
    Io(String),
}

impl std::fmt::Display for NoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoFrame::Closed(what) => write!(f, "waiting for {what}: connection closed"),
            NoFrame::Length(len) => write!(
                f,
                "answered with a frame length of {len} bytes, which is not ZooKeeper"
            ),
            NoFrame::Cut(reason) | NoFrame::Io(reason) => f.write_str(reason),
        }
    }
}

/// The first words of every "this is not ZooKeeper" reason.
const NOT_ZOOKEEPER: &str =
    "no ZooKeeper answer to the session request (is this ZooKeeper's client port?)";

/// Why the session handshake got no session. A member without quorum
/// closes the connection without a word (research/kafka-zookeeper-semantics.md
/// Appendix A); anything that answers with something else is not ZooKeeper
/// (a Kafka broker's error frame, an HTTP status line).
fn handshake_failed(e: NoFrame) -> String {
    match e {
        NoFrame::Closed(_) => {
            "connection closed at the session request: no quorum yet, or not ZooKeeper's \
             client port?"
                .into()
        }
        NoFrame::Length(len) => format!("{NOT_ZOOKEEPER}: it announced a {len}-byte answer"),
        NoFrame::Cut(reason) => format!("{NOT_ZOOKEEPER}: its answer broke off ({reason})"),
        NoFrame::Io(reason) => reason,
    }
}

/// A ConnectResponse: protocolVersion (always 0), timeOut, sessionId, passwd
/// (a jute buffer), and since ZooKeeper 3.4 the readOnly flag; the session's
/// timeout and id. Anything else is not ZooKeeper's answer.
fn session_answer(body: &[u8]) -> Option<(i32, i64)> {
    let mut r = Reader::new(body);
    let version = r.i32().ok()?;
    let timeout_ms = r.i32().ok()?;
    let id = r.i64().ok()?;
    let passwd = usize::try_from(r.i32().ok()?).ok()?;
    r.skip(passwd).ok()?;
    (version == 0 && r.remaining() <= 1).then_some((timeout_ms, id))
}

async fn read_frame(
    stream: &mut TcpStream,
    attempt: &Attempt,
    what: &str,
) -> Result<Vec<u8>, NoFrame> {
    let mut prefix = [0u8; 4];
    let waiting = format!("waiting for {what}");
    match timeout_at(attempt.deadline, stream.read_exact(&mut prefix)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(NoFrame::Closed(what.into()))
        }
        Ok(Err(e)) => return Err(NoFrame::Io(attempt.failed(&waiting, Some(&e)))),
        Err(_) => return Err(NoFrame::Io(attempt.failed(&waiting, None))),
    }
    let len = i32::from_be_bytes(prefix);
    let len = match usize::try_from(len) {
        Ok(n) if n <= MAX_FRAME => n,
        _ => return Err(NoFrame::Length(len)),
    };
    let mut body = vec![0u8; len];
    let reading = format!("reading {what}");
    match timeout_at(attempt.deadline, stream.read_exact(&mut body)).await {
        Ok(Ok(_)) => Ok(body),
        Ok(Err(e)) => Err(NoFrame::Cut(attempt.failed(&reading, Some(&e)))),
        Err(_) => Err(NoFrame::Io(attempt.failed(&reading, None))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_answers() {
        let answer = |version: i32, passwd: i32, tail: &[u8]| {
            let mut b = version.to_be_bytes().to_vec();
            b.extend_from_slice(&18_000i32.to_be_bytes());
            b.extend_from_slice(&0x1234i64.to_be_bytes());
            b.extend_from_slice(&passwd.to_be_bytes());
            b.extend_from_slice(tail);
            b
        };
        // ZooKeeper 3.4+ (readOnly flag), and before.
        assert_eq!(
            session_answer(&answer(0, 16, &[7; 17])),
            Some((18_000, 0x1234))
        );
        assert_eq!(
            session_answer(&answer(0, 16, &[7; 16])),
            Some((18_000, 0x1234))
        );
        // Not ZooKeeper: a Kafka error frame, another version, a password
        // longer than the answer, bytes after it.
        assert_eq!(session_answer(&[0; 8]), None);
        assert_eq!(session_answer(&answer(1, 16, &[7; 17])), None);
        assert_eq!(session_answer(&answer(0, 64, &[7; 17])), None);
        assert_eq!(session_answer(&answer(0, -1, &[])), None);
        assert_eq!(session_answer(&answer(0, 16, &[7; 30])), None);
    }
}
