"""A local HTTP server standing in for IMGW (unreachable from here): it serves what a test
tells it to, with the status, body and delay the test chooses, over real HTTP."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DATA = Path(__file__).parent.parent / "data" / "imgw"
METEO_PATH = "/api/data/warningsmeteo"
HYDRO_PATH = "/api/data/warningshydro"
NO_PRODUCTS = (404, (DATA / "meteo_no_products.json").read_bytes())


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    delay_seconds: float = 0.0


class FakeImgw:
    """`serve(path, fixture)` sets the answer for a feed; `requests` counts them."""

    def __init__(self) -> None:
        self._replies: dict[str, Reply] = {
            METEO_PATH: Reply(*NO_PRODUCTS),
            HYDRO_PATH: Reply(*NO_PRODUCTS),
        }
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                reply = server._reply(self.path)
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): that is the point

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def meteo_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_port}{METEO_PATH}"

    @property
    def hydro_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_port}{HYDRO_PATH}"

    def _reply(self, path: str) -> Reply:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            return self._replies.get(path, Reply(404, b"Not Found"))

    def set(self, path: str, reply: Reply) -> None:
        with self._lock:
            self._replies[path] = reply

    def meteo(self, fixture: str, status: int = 200, *, delay_seconds: float = 0.0) -> None:
        self.set(METEO_PATH, Reply(status, (DATA / fixture).read_bytes(), delay_seconds))

    def hydro(self, fixture: str, status: int = 200) -> None:
        self.set(HYDRO_PATH, Reply(status, (DATA / fixture).read_bytes()))

    def start(self) -> FakeImgw:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
