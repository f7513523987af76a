"""A small HTTP app for the examples (the `orders-api` image of
Dockerfile.example): GET /healthz answers 200 while it serves; on SIGTERM,
which kwait forwards, it stops accepting, finishes the requests in flight
and exits 0. Standard library only."""

import http.server
import signal
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/healthz" else b"orders-api\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass  # no access log


def main():
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    server.daemon_threads = False  # server_close() waits for requests in flight

    def drain(signum, _frame):
        print(f"app: {signal.Signals(signum).name}: draining", flush=True)
        # shutdown() waits for serve_forever() to return: not from its own thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    print("app: serving on :8000", flush=True)
    server.serve_forever()
    server.server_close()
    print("app: drained", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
