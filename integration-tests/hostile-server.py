#!/usr/bin/env python3
"""A provisioning server that misbehaves on purpose, for tests of stboot's fetch step.

Listens on 127.0.0.1 only:
  --tls-port     HTTPS with --cert/--key; the behaviour is the first path element
  --http-port    plain HTTP, serving --root (the target of https -> http redirects)
  --silent-port  accepts TCP and never answers (a TLS handshake that never completes)
Prints one line "ready TLS_PORT HTTP_PORT SILENT_PORT" when all ports listen (a port
given as 0 is chosen by the kernel). Stops after --lifetime seconds, or when its
stdin is a pipe that closes, so a test run can never leave it behind.

Paths on the TLS port are /MODE/NAME. For a NAME.json under a mode that targets the
archive, the real descriptor ROOT/NAME.json is served, so its relative os_pkg_url
leads back into the same mode for the archive.

  good            serve ROOT/NAME
  stall-headers   (json) read the request, answer nothing
  stall-body      (json) headers with Content-Length, then one byte every 5 s
  desc-endless    (json) headers without length, then bytes at full speed forever
  desc-huge       (json) Content-Length: 50000000, then bytes
  redirect-loop   (json) 302 to /redirect-loop2/NAME, which redirects back
  to-http         (json) 302 to http://127.0.0.1:HTTP_PORT/NAME
  to-other-name   (json) 302 to https://localhost:TLS_PORT/good/NAME, a name the
                  certificate (for 127.0.0.1) does not carry
  auth            (json and zip) ROOT/NAME behind Basic auth stboot:s3cret
  trickle         (zip) Content-Length of the real file, 100 bytes/s
  endless         (zip) no length, bytes at full speed forever
  huge-length     (zip) Content-Length: 10^15, then bytes
  reset           (zip) Content-Length of the real file, a tenth of it, then TCP RST
  empty           (zip) 200 with an empty body
  long-length     (zip) Content-Length of the real file + 1000, the whole file, close
  huge-header     (json) 200 with an 8 MB response header
  to-file         (json) 302 to file:///etc/passwd
  status-404, status-503   (json) that status
  busy            (json and zip) the first request for a path: 503 with Retry-After: 2,
                  then ROOT/NAME
  busy-date       as busy, with Retry-After as an HTTP date 2 s from now (the Date
                  header is this second or the next)
  busy-long       (json) 429 with Retry-After: 3600, always
  count           /count/MODE/NAME answers how many requests /MODE/NAME has had
  resume          (zip) with an ETag; the first request: a tenth of the file, then TCP
                  RST; later ones honour Range (206) when If-Range holds the ETag
  resume-ignored  (zip) as resume, but later requests get the whole file (200): a
                  server without ranges
  resume-changed  (zip) as resume, but the ETag changes after the first request, so
                  If-Range fails and the whole file comes (200), as RFC 9110 says
  ua              /ua/MODE/NAME answers the User-Agent of the last request for /MODE/NAME
  ranges          /ranges/MODE/NAME answers the Range and If-Range headers of every
                  request for /MODE/NAME, one "RANGE IF-RANGE" line each ("-" if none)
"""
import argparse
import base64
import email.utils
import os
import socket
import ssl
import stat
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARCHIVE_MODES = {"trickle", "endless", "huge-length", "reset", "empty", "long-length", "resume", "resume-ignored",
                 "resume-changed"}
COUNTS = {}
AGENTS = {}
RANGES = {}
COUNTS_LOCK = threading.Lock()


def handler(root, http_port):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("hostile-server: %s\n" % (fmt % args))

        def real(self, name):
            path = os.path.join(root, os.path.basename(name))
            with open(path, "rb") as f:
                return f.read()

        def send(self, code, body, headers=()):
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def headers_only(self, length=None):
            self.send_response(200)
            if length is not None:
                self.send_header("Content-Length", str(length))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()

        def cut(self, body):
            """A tenth of body, then a TCP reset."""
            self.wfile.write(body[: len(body) // 10])
            self.wfile.flush()
            time.sleep(0.2)  # let the client read the tenth before the reset
            # a TCP reset with no TLS close_notify before it (unwrap() would send
            # one, and the client would see the server close the connection)
            sock = self.connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())

        def forever(self, chunk=b"x" * 65536):
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                pass

        def do_GET(self):
            if self.path.startswith("/count/"):
                with COUNTS_LOCK:
                    n = COUNTS.get(self.path[len("/count") :], 0)
                return self.send(200, str(n).encode())
            if self.path.startswith("/ua/"):
                with COUNTS_LOCK:
                    ua = AGENTS.get(self.path[len("/ua") :], "")
                return self.send(200, ua.encode())
            if self.path.startswith("/ranges/"):
                with COUNTS_LOCK:
                    lines = RANGES.get(self.path[len("/ranges") :], [])
                return self.send(200, "".join(l + "\n" for l in lines).encode())
            with COUNTS_LOCK:
                COUNTS[self.path] = COUNTS.get(self.path, 0) + 1
                AGENTS[self.path] = self.headers.get("User-Agent", "")
                RANGES.setdefault(self.path, []).append(
                    "%s %s" % (self.headers.get("Range", "-"), self.headers.get("If-Range", "-")))
            parts = self.path.strip("/").split("/", 1)
            if len(parts) != 2:
                return self.send(404, b"")
            mode, name = parts
            try:
                self.dispatch(mode, name)
            except (OSError, ssl.SSLError):
                pass
            self.close_connection = True

        def dispatch(self, mode, name):
            if mode == "good" or (mode in ARCHIVE_MODES and name.endswith(".json")):
                return self.send(200, self.real(name))
            if mode in ("busy", "busy-date"):
                with COUNTS_LOCK:
                    first = COUNTS.get(self.path) == 1
                if not first:
                    return self.send(200, self.real(name))
                # send_response adds the Date header (this second, or the next)
                after = "2" if mode == "busy" else email.utils.formatdate(time.time() + 2, usegmt=True)
                return self.send(503, b"busy", [("Retry-After", after)])
            if mode == "busy-long":
                return self.send(429, b"busy", [("Retry-After", "3600")])
            if mode == "auth":
                want = "Basic " + base64.b64encode(b"stboot:s3cret").decode()
                if self.headers.get("Authorization") != want:
                    return self.send(401, b"", [("WWW-Authenticate", 'Basic realm="ospkg"')])
                return self.send(200, self.real(name))
            if mode == "stall-headers":
                time.sleep(3600)
            elif mode == "stall-body":
                self.headers_only(5000)
                for _ in range(5000):
                    self.wfile.write(b"{")
                    self.wfile.flush()
                    time.sleep(5)
            elif mode in ("desc-endless", "endless"):
                self.headers_only(None)
                self.forever()
            elif mode == "desc-huge":
                self.headers_only(50_000_000)
                self.forever()
            elif mode == "huge-length":
                self.headers_only(10**15)
                self.forever()
            elif mode in ("redirect-loop", "redirect-loop2"):
                other = "redirect-loop2" if mode == "redirect-loop" else "redirect-loop"
                self.send(302, b"", [("Location", "/%s/%s" % (other, name))])
            elif mode == "to-other-name":
                port = self.server.server_address[1]
                self.send(302, b"", [("Location", "https://localhost:%d/good/%s" % (port, name))])
            elif mode == "to-http":
                self.send(302, b"", [("Location", "http://127.0.0.1:%d/good/%s" % (http_port, name))])
            elif mode == "trickle":
                body = self.real(name)
                self.headers_only(len(body))
                for i in range(0, len(body), 10):
                    self.wfile.write(body[i : i + 10])
                    self.wfile.flush()
                    time.sleep(0.1)
            elif mode == "reset":
                body = self.real(name)
                self.headers_only(len(body))
                self.cut(body)
            elif mode in ("resume", "resume-ignored", "resume-changed"):
                body = self.real(name)
                with COUNTS_LOCK:
                    first = COUNTS.get(self.path) == 1
                etag = '"v2"' if mode == "resume-changed" and not first else '"v1"'
                rng = self.headers.get("Range", "")
                if first:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("ETag", etag)
                    self.send_header("Accept-Ranges", "bytes")
                    self.end_headers()
                    self.cut(body)
                elif mode == "resume" and rng.startswith("bytes=") and self.headers.get("If-Range") == etag:
                    start = int(rng[len("bytes=") :].rstrip("-"))
                    self.send(206, body[start:], [("ETag", etag), ("Content-Range",
                                                   "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))])
                else:
                    self.send(200, body, [("ETag", etag)])
            elif mode == "long-length":
                body = self.real(name)
                self.headers_only(len(body) + 1000)
                self.wfile.write(body)
                self.wfile.flush()
            elif mode == "huge-header":
                self.send_response(200)
                for i in range(8):
                    self.send_header("X-Padding-%d" % i, "p" * (1 << 20))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            elif mode == "to-file":
                self.send(302, b"", [("Location", "file:///etc/passwd")])
            elif mode == "empty":
                self.send(200, b"")
            elif mode.startswith("status-"):
                self.send(int(mode[len("status-") :]), b"no")
            else:
                self.send(404, b"")

    return H


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--silent-port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--lifetime", type=float, default=3600)
    a = ap.parse_args()

    plain_sock = socket.socket()
    plain_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    plain_sock.bind(("127.0.0.1", a.http_port))
    http_port = plain_sock.getsockname()[1]
    plain_sock.close()
    h = handler(a.root, http_port)
    tls = Server(("127.0.0.1", a.tls_port), h)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
    plain = Server(("127.0.0.1", http_port), h)
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", a.silent_port))
    silent.listen(64)  # the kernel completes TCP handshakes; nobody ever reads

    for s in (tls, plain):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready %d %d %d" % (tls.server_address[1], http_port, silent.getsockname()[1]), flush=True)

    def stdin_closed():
        sys.stdin.read()
        os._exit(0)

    if stat.S_ISFIFO(os.fstat(0).st_mode):  # a test's pipe: end with it
        threading.Thread(target=stdin_closed, daemon=True).start()
    time.sleep(a.lifetime)
    os._exit(0)


if __name__ == "__main__":
    main()
