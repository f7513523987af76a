#!/usr/bin/env python3
"""A SASL front for a Kafka broker that has no working SASL of its own (tansu).

Usage: sasl_front.py --listen PORT --broker HOST:PORT --user NAME:PASSWORD...
                     [--mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512] [--impostor]

Speaks Kafka framing to each client the way a SASL_PLAINTEXT listener does:

- Before authentication only ApiVersions (18), SaslHandshake (17) and
  SaslAuthenticate (36) are allowed; anything else closes the connection,
  as Kafka does.
- ApiVersions is relayed to the broker, and its answer is patched to list
  SaslHandshake 0-1 and SaslAuthenticate 0-2 (a broker without SASL may not).
- SaslHandshake v0/v1 picks a mechanism from --mechanisms; an unknown one is
  answered UNSUPPORTED_SASL_MECHANISM (33) with the offered list. After v0
  the SASL tokens come as raw length-prefixed frames; after v1 inside
  SaslAuthenticate v0-v2 (v2 is flexible: request header v2, response
  header v1).
- PLAIN (RFC 4616) checks "\\0user\\0password". SCRAM-SHA-256/512 use the
  `scramp` library's server side (RFC 5802/7677), so a client's SCRAM is
  checked by an independent implementation. Failures answer
  SASL_AUTHENTICATION_FAILED (58) with Kafka's messages, then close.
- Once authenticated, every request is relayed to the broker over this
  client's own plain connection, and its answer relayed back.

With --impostor it plays a server that does not know the passwords: SCRAM
proofs are not checked and the final message carries a made-up server
signature, which a client must refuse.

With --no-sasl it plays a Kafka listener without SASL (PLAINTEXT): every
request is relayed, and SaslHandshake is answered ILLEGAL_SASL_STATE (34)
with no mechanisms, as Kafka's KafkaApis.handleSaslHandshakeRequest does.

With --close-after-api-versions it plays a broker shutting down: ApiVersions
is relayed, and any other request (SaslHandshake too) closes the connection.

Prints "listening on PORT" on stdout once it accepts connections, and one
line per authentication outcome on stderr (never a password).
"""
import argparse
import base64
import os
import socket
import struct
import sys
import threading

import scramp

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
OUR_SASL_RANGES = {SASL_HANDSHAKE: (0, 1), SASL_AUTHENTICATE: (0, 2)}
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58
ILLEGAL_SASL_STATE = 34


class Closed(Exception):
    pass


def log(msg):
    print(f"sasl_front: {msg}", file=sys.stderr, flush=True)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Closed()
        buf += chunk
    return bytes(buf)


def read_frame(sock):
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    if size < 0 or size > 100 * 1024 * 1024:
        raise Closed()
    return recv_exact(sock, size)


def write_frame(sock, payload):
    sock.sendall(struct.pack(">i", len(payload)) + payload)


def uvarint(data, pos):
    value, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def put_uvarint(n):
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def skip_tags(data, pos):
    count, pos = uvarint(data, pos)
    for _ in range(count):
        _, pos = uvarint(data, pos)
        size, pos = uvarint(data, pos)
        pos += size
    return pos


class Request:
    """A request frame: header (v1, or v2 when flexible) and the body's offset."""

    def __init__(self, frame, flexible):
        self.frame = frame
        self.key, self.version, self.correlation = struct.unpack(">hhi", frame[:8])
        (client_len,) = struct.unpack(">h", frame[8:10])
        pos = 10 + max(client_len, 0)
        if flexible(self.key, self.version):
            pos = skip_tags(frame, pos)
        self.body = frame[pos:]


def request_is_flexible(key, version):
    # Only the requests the front reads itself matter here.
    return (key == SASL_AUTHENTICATE and version >= 2) or (
        key == API_VERSIONS and version >= 3
    )


def string16(s):
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def patch_api_versions(body, version):
    """Lists SaslHandshake and SaslAuthenticate in an ApiVersions answer."""
    (error,) = struct.unpack(">h", body[:2])
    if error != 0:
        return body
    pos = 2
    entries = []
    if version >= 3:
        n, pos = uvarint(body, pos)
        n -= 1
        for _ in range(n):
            key, lo, hi = struct.unpack(">hhh", body[pos : pos + 6])
            pos = skip_tags(body, pos + 6)
            entries.append((key, lo, hi))
    else:
        (n,) = struct.unpack(">i", body[pos : pos + 4])
        pos += 4
        for _ in range(n):
            entries.append(struct.unpack(">hhh", body[pos : pos + 6]))
            pos += 6
    rest = body[pos:]
    entries = [e for e in entries if e[0] not in OUR_SASL_RANGES]
    entries += [(k, lo, hi) for k, (lo, hi) in OUR_SASL_RANGES.items()]
    entries.sort()
    out = bytearray(body[:2])
    if version >= 3:
        out += put_uvarint(len(entries) + 1)
        for e in entries:
            out += struct.pack(">hhh", *e) + b"\x00"
    else:
        out += struct.pack(">i", len(entries))
        for e in entries:
            out += struct.pack(">hhh", *e)
    return bytes(out + rest)


class Auth:
    """One SASL exchange for one mechanism."""

    def __init__(self, front, mechanism):
        self.front = front
        self.mechanism = mechanism
        self.user = None
        self.done = False
        self.server = None
        if mechanism.startswith("SCRAM-"):
            scram = scramp.ScramMechanism(mechanism)
            self.server = scram.make_server(self._scram_credentials)
            self.scram = scram

    def _scram_credentials(self, user):
        self.user = user
        info = self.front.scram_info(self.mechanism, user)
        if info is None:
            # An unknown user fails at the proof, as Kafka does, not earlier.
            info = self.scram.make_auth_info("no such user: never matches")
        return info

    def step(self, token):
        """Returns (error_code, error_message, reply_bytes)."""
        if self.mechanism == "PLAIN":
            parts = token.split(b"\x00")
            if len(parts) != 3:
                return SASL_AUTHENTICATION_FAILED, "Invalid SASL/PLAIN request", b""
            _authzid, user, password = (p.decode("utf-8", "replace") for p in parts)
            self.user = user
            if self.front.users.get(user) == password:
                self.done = True
                return 0, None, b""
            return (
                SASL_AUTHENTICATION_FAILED,
                "Authentication failed: Invalid username or password",
                b"",
            )
        try:
            if self.server.stage is None:
                self.server.set_client_first(token.decode())
                return 0, None, self.server.get_server_first().encode()
            if self.front.impostor:
                # A server that does not know the password: it accepts any
                # proof and cannot compute the real server signature.
                self.done = True
                fake = base64.b64encode(os.urandom(64 if self.mechanism.endswith("512") else 32))
                return 0, None, b"v=" + fake
            self.server.set_client_final(token.decode())
            final = self.server.get_server_final()
            self.done = True
            return 0, None, final.encode()
        except (scramp.ScramException, UnicodeDecodeError) as e:
            log(f"SCRAM error for {self.user!r}: {e}")
            return (
                SASL_AUTHENTICATION_FAILED,
                "Authentication failed during authentication due to invalid "
                f"credentials with SASL mechanism {self.mechanism}",
                b"",
            )


class Front:
    def __init__(self, args):
        self.broker = args.broker.rsplit(":", 1)
        self.broker = (self.broker[0], int(self.broker[1]))
        self.mechanisms = [m.strip() for m in args.mechanisms.split(",") if m.strip()]
        self.users = {}
        for spec in args.user:
            name, _, password = spec.partition(":")
            self.users[name] = password
        self.impostor = args.impostor
        self.no_sasl = args.no_sasl
        self.close_after_api_versions = args.close_after_api_versions
        self._scram = {}
        self._lock = threading.Lock()

    def scram_info(self, mechanism, user):
        if user not in self.users:
            return None
        with self._lock:
            key = (mechanism, user)
            if key not in self._scram:
                m = scramp.ScramMechanism(mechanism)
                self._scram[key] = m.make_auth_info(self.users[user])
            return self._scram[key]

    def serve(self, listener):
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=self.client, args=(sock,), daemon=True).start()

    def client(self, sock):
        upstream = None
        try:
            upstream = self.session(sock)
        except (Closed, OSError, struct.error, IndexError):
            pass
        finally:
            for s in (sock, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def relay(self, upstream, frame):
        if upstream[0] is None:
            upstream[0] = socket.create_connection(self.broker, timeout=30)
        write_frame(upstream[0], frame)
        return read_frame(upstream[0])

    def session(self, sock):
        upstream = [None]
        auth = None
        authenticated = False
        raw_tokens = False  # after SaslHandshake v0
        try:
            while True:
                frame = read_frame(sock)
                if raw_tokens and not authenticated:
                    code, message, reply = auth.step(frame)
                    if code != 0:
                        log(f"{auth.mechanism} failed for {auth.user!r} (v0): {message}")
                        return upstream[0]
                    if auth.done:
                        authenticated = True
                        log(f"{auth.mechanism} authenticated {auth.user!r}")
                    write_frame(sock, reply)
                    continue
                req = Request(frame, request_is_flexible)
                if self.close_after_api_versions and req.key != API_VERSIONS:
                    log(f"request key {req.key} while shutting down: closing")
                    return upstream[0]
                if self.no_sasl:
                    if req.key == SASL_HANDSHAKE:
                        log("SaslHandshake on a listener without SASL")
                        write_frame(
                            sock,
                            struct.pack(">ihi", req.correlation, ILLEGAL_SASL_STATE, 0),
                        )
                    else:
                        write_frame(sock, self.relay(upstream, frame))
                    continue
                if authenticated and req.key not in (SASL_HANDSHAKE, SASL_AUTHENTICATE):
                    response = self.relay(upstream, frame)
                    if req.key == API_VERSIONS:
                        response = response[:4] + patch_api_versions(response[4:], req.version)
                    write_frame(sock, response)
                    continue
                if req.key == API_VERSIONS:
                    response = self.relay(upstream, frame)
                    write_frame(sock, response[:4] + patch_api_versions(response[4:], req.version))
                elif req.key == SASL_HANDSHAKE:
                    (n,) = struct.unpack(">h", req.body[:2])
                    mechanism = req.body[2 : 2 + n].decode("utf-8", "replace")
                    offered = struct.pack(">i", len(self.mechanisms)) + b"".join(
                        string16(m) for m in self.mechanisms
                    )
                    if authenticated or auth is not None:
                        write_frame(sock, struct.pack(">ih", req.correlation, ILLEGAL_SASL_STATE) + offered)
                        return upstream[0]
                    if mechanism not in self.mechanisms:
                        log(f"unsupported mechanism {mechanism!r}")
                        write_frame(
                            sock,
                            struct.pack(">ih", req.correlation, UNSUPPORTED_SASL_MECHANISM) + offered,
                        )
                        return upstream[0]
                    auth = Auth(self, mechanism)
                    raw_tokens = req.version == 0
                    write_frame(sock, struct.pack(">ih", req.correlation, 0) + offered)
                elif req.key == SASL_AUTHENTICATE:
                    if auth is None or authenticated:
                        self.authenticate_answer(sock, req, ILLEGAL_SASL_STATE, "Unexpected SaslAuthenticate", b"")
                        return upstream[0]
                    body = req.body
                    if req.version >= 2:
                        n, pos = uvarint(body, 0)
                        token = body[pos : pos + n - 1]
                    else:
                        (n,) = struct.unpack(">i", body[:4])
                        token = body[4 : 4 + n]
                    code, message, reply = auth.step(token)
                    # Logged before answering, so the log is complete once
                    # the client has its answer.
                    if code != 0:
                        log(f"{auth.mechanism} failed for {auth.user!r}: {message}")
                    elif auth.done:
                        authenticated = True
                        log(f"{auth.mechanism} authenticated {auth.user!r}")
                    self.authenticate_answer(sock, req, code, message, reply)
                    if code != 0:
                        return upstream[0]
                else:
                    # Kafka closes a connection that skips authentication.
                    log(f"request key {req.key} before authentication: closing")
                    return upstream[0]
        except (Closed, OSError, struct.error, IndexError):
            return upstream[0]

    def authenticate_answer(self, sock, req, code, message, reply):
        if req.version >= 2:
            out = struct.pack(">i", req.correlation) + b"\x00"  # header v1
            out += struct.pack(">h", code)
            if message is None:
                out += b"\x00"
            else:
                raw = message.encode()
                out += put_uvarint(len(raw) + 1) + raw
            out += put_uvarint(len(reply) + 1) + reply
            out += struct.pack(">q", 0) + b"\x00"
        else:
            out = struct.pack(">ih", req.correlation, code)
            out += struct.pack(">h", -1) if message is None else string16(message)
            out += struct.pack(">i", len(reply)) + reply
            if req.version >= 1:
                out += struct.pack(">q", 0)
        write_frame(sock, out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--broker", required=True)
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--mechanisms", default="PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
    p.add_argument("--impostor", action="store_true")
    p.add_argument("--no-sasl", action="store_true")
    p.add_argument("--close-after-api-versions", action="store_true")
    args = p.parse_args()
    front = Front(args)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen))
    listener.listen(64)
    print(f"listening on {args.listen}", flush=True)
    front.serve(listener)


if __name__ == "__main__":
    main()
