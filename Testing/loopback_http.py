"""A small HTTP server on 127.0.0.1 for download tests: byte ranges, ETags, cut connections, proxying.

    with LoopbackServer({"/m.zip": data}) as srv:
        url = srv.url("/m.zip")
        srv.cut["/m.zip"] = 1000        # the next response stops after 1000 bytes and closes
        srv.slow["/m.zip"] = 0.05       # sleep 50 ms after each 64 KiB
        srv.redirect["/api/m.zip"] = "/m.zip"   # 302 to another path
        srv.requests                    # [(path, Range header or None, bytes sent), ...]

Requests for absolute URIs (``GET http://host/path``, what a client sends to a proxy) are served
from the same files by path, and recorded with the host, so a test can prove a proxy was used.
The server runs in a daemon thread and is shut down on exit; each request has a 10 s socket timeout.
"""
from __future__ import annotations

import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class _Handler(BaseHTTPRequestHandler):
    timeout = 10
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):                                                  # noqa: N802 (http.server API)
        srv = self.server.owner
        parsed = urlparse(self.path)
        path, host = parsed.path, parsed.netloc or None
        data = srv.files.get(path)
        rng = self.headers.get("Range")
        if path in srv.redirect:          # as NGC's API answers with a redirect to signed storage
            srv.requests.append((path, rng, 0, host))
            self.send_response(302)
            self.send_header("Location", srv.url(srv.redirect[path]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if data is None:
            srv.requests.append((path, rng, 0, host))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
        start = 0
        found = re.match(r"bytes=(\d+)-$", rng or "")
        if found and srv.ranges and self.headers.get("If-Range", etag) == etag:
            start = int(found.group(1))
            if start >= len(data):
                srv.requests.append((path, rng, 0, host))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        length = srv.declared_length.get(path, len(body))
        if length is None:                # no length: the body ends when the connection closes
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = srv.cut.pop(path, None)
        sent = body if cut is None else body[:cut]
        pause = srv.slow.get(path, 0.0)
        done = 0
        try:
            for i in range(0, len(sent), 65536 if pause else max(len(sent), 1)):
                self.wfile.write(sent[i:i + 65536] if pause else sent)
                self.wfile.flush()
                done = min(len(sent), i + (65536 if pause else len(sent)))
                time.sleep(pause)
        except (ConnectionError, OSError):
            self.close_connection = True
        srv.requests.append((path, rng, done, host))
        if cut is not None:
            self.close_connection = True


class LoopbackServer:
    """Serve ``files`` ({path: bytes}) on 127.0.0.1 on a free port while the ``with`` block runs."""

    def __init__(self, files: dict, ranges: bool = True):
        self.files = dict(files)
        self.ranges = ranges
        self.cut = {}
        self.declared_length = {}
        self.slow = {}
        self.redirect = {}
        self.requests = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
