"""What the browser tests share: the system's Chromium, a static server on 127.0.0.1 that logs what it
serves, and a proxy that logs and refuses every request sent to it (every host but 127.0.0.1 goes there)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socketserver
import threading
from pathlib import Path


def chromium_executable() -> str | None:
    """Chromium's executable: Debian's binary itself rather than its /usr/bin/chromium wrapper, which
    adds Google's API keys and extension flags, and with them background requests to Google's hosts."""
    candidates = [
        os.environ.get("HML_CHROMIUM"),
        "/usr/lib/chromium/chromium",
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


class _Refusing(socketserver.StreamRequestHandler):
    """Chromium's proxy: logs the request line of whatever reaches it (a URL, or CONNECT host:port) and refuses it."""

    def handle(self) -> None:
        line = self.rfile.readline(8192).decode("latin-1").strip()
        if line:
            self.server.refused.append(line)  # type: ignore[attr-defined]
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # every request, kept, not printed
        self.server.served.append(self.path)  # type: ignore[attr-defined]


def serve(server: socketserver.BaseServer) -> socketserver.BaseServer:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def refusing_proxy() -> socketserver.ThreadingTCPServer:
    proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Refusing)
    proxy.refused = []  # type: ignore[attr-defined]
    proxy.daemon_threads = True
    serve(proxy)
    return proxy


def serve_folder(folder: Path) -> http.server.ThreadingHTTPServer:
    """A static server of ``folder`` on 127.0.0.1 (a free port), running; ``.served`` lists the paths asked for."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_SiteHandler, directory=str(folder)))
    server.served = []  # type: ignore[attr-defined]
    serve(server)
    return server
