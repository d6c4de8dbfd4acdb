"""A tiny in-process HTTP harness for the API simulators.

`serve(app)` / `SimServer(app)` put any object with a `handle(...)` method behind a
`ThreadingHTTPServer` on 127.0.0.1 (ephemeral port by default). `SimApp` is the base class of the
simulators: it records every request, adds latency and answers injected faults before it hands the
request to the simulator's own `dispatch`.

Pure standard library on purpose: the simulators must run anywhere the job's tests run.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

Query = list[tuple[str, str]]


@dataclass
class Response:
    """What an app answers: status, body bytes, content type and extra headers.

    `status == 0` means "drop the connection without answering" (a fault, see `SimApp.inject`).
    """

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        obj: Any,
        status: int = 200,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return cls(status, body, content_type, dict(headers or {}))

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, b"", None, dict(headers or {}))

    @property
    def drop(self) -> bool:
        return self.status == 0


class App(Protocol):
    def handle(
        self,
        method: str,
        path: str,
        query: Query,
        headers: Mapping[str, str],
        body: bytes,
        *,
        raw_query: str | None = None,
    ) -> Response: ...


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    json: Any  # decoded JSON body, or None
    status: int  # what the app answered (0: connection dropped)
    at: float  # time.monotonic() when it arrived

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None


@dataclass
class _Fault:
    method: str | None
    route: str
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]
    times: int  # -1: forever
    delay: float
    after: bool = False  # carry the request out first, then answer with the fault (a lost response)
    key: str = ""  # the route as given to inject(): what faults_hit() counts by


class SimApp:
    """Base class of the simulators: request log, latency and fault injection.

    Subclasses implement `dispatch(method, path, query, headers, body, raw_query)`; `headers` keys
    arrive lower-cased. All simulator state is guarded by `self.lock` (re-entrant); `dispatch` runs
    under it, so a response is built (and serialised) from a consistent snapshot.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._faults: list[_Fault] = []
        self.requests: list[RecordedRequest] = []
        self.record_requests = True  # False: keep only the counts (long benchmarks)
        self._counts: Counter[str] = Counter()
        self._fault_hits: Counter[str] = Counter()  # answers by an injected fault, per inject() route
        self.latency: float = 0.0

    # ------------------------------------------------------------------ faults
    def inject(
        self,
        route: str,
        status: int,
        body: bytes | dict[str, Any] | list[Any] | str | None = None,
        times: int = 1,
        content_type: str = "application/json",
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next `times` requests whose path starts with `route` with `status` and `body`.

        `route` may carry a method: `"POST /user/new"`. `times=-1` keeps the fault until
        `clear_faults()`. `delay` sleeps before answering (a slow failure). `status=0` drops the
        connection without an answer. `after=True` first carries the request out as usual, so the
        change is made but its answer is lost (a timeout after the server acted). Faults are checked
        in the order they were injected.
        """
        key = route
        method: str | None = None
        if " " in route:
            method, route = route.split(" ", 1)
            method = method.upper()
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode("utf-8")
        else:
            raw = json.dumps(body).encode("utf-8")
        if times == 0 or times < -1:
            raise ValueError("times must be positive or -1 (forever)")
        with self._log_lock:
            self._faults.append(
                _Fault(
                    method, route, status, raw, content_type, dict(headers or {}), times, delay, after, key
                )
            )

    def clear_faults(self) -> None:
        with self._log_lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._log_lock:
            for i, f in enumerate(self._faults):
                if f.method is not None and f.method != method:
                    continue
                if not path.startswith(f.route):
                    continue
                if f.times > 0:
                    f.times -= 1
                    if f.times == 0:
                        del self._faults[i]
                self._fault_hits[f.key] += 1
                return f
        return None

    def faults_hit(self, route: str | None = None) -> int:
        """How many requests an injected fault answered: those injected as `route` (spelt as given to
        `inject`), or all. A fault test asserts this, so a scenario that never reaches its fault fails."""
        with self._log_lock:
            return self._fault_hits[route] if route is not None else sum(self._fault_hits.values())

    def faults_left(self) -> list[str]:
        """The routes of injected faults with answers still unused (`times=-1` ones always stay)."""
        with self._log_lock:
            return [f.key for f in self._faults]

    # ------------------------------------------------------------------ request log
    def request_counts(self) -> Counter[str]:
        """Requests seen so far, keyed like `"GET /user/list"` (counted even when not recorded)."""
        with self._log_lock:
            return Counter(self._counts)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self._log_lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def clear_requests(self) -> None:
        with self._log_lock:
            self.requests.clear()
            self._counts.clear()

    # ------------------------------------------------------------------ entry point
    def handle(
        self,
        method: str,
        path: str,
        query: Query,
        headers: Mapping[str, str],
        body: bytes,
        *,
        raw_query: str | None = None,
    ) -> Response:
        arrived = time.monotonic()
        method = method.upper()
        lower_headers = {k.lower(): v for k, v in headers.items()}
        if raw_query is None:
            raw_query = urlencode(query)
        latency = self.latency
        if latency > 0:
            time.sleep(latency)
        fault = self._take_fault(method, path)
        if fault is not None and fault.after:
            with self.lock:
                self.dispatch(method, path, query, lower_headers, body, raw_query)
        if fault is not None:
            if fault.delay > 0:
                time.sleep(fault.delay)
            resp = Response(fault.status, fault.body, fault.content_type or None, dict(fault.headers))
        else:
            try:
                with self.lock:
                    resp = self.dispatch(method, path, query, lower_headers, body, raw_query)
            except Exception as exc:  # a simulator bug: make it visible, do not hang the client
                resp = Response.json(
                    {"sim_error": f"{type(exc).__name__}: {exc}"}, 500, content_type="application/json"
                )
        self._record(method, path, query, body, resp.status, arrived)
        return resp

    def dispatch(
        self,
        method: str,
        path: str,
        query: Query,
        headers: Mapping[str, str],
        body: bytes,
        raw_query: str,
    ) -> Response:
        raise NotImplementedError

    def _record(self, method: str, path: str, query: Query, body: bytes, status: int, at: float) -> None:
        if not self.record_requests:
            with self._log_lock:
                self._counts[f"{method} {path}"] += 1
            return
        decoded: Any = None
        if body:
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
        rec = RecordedRequest(method, path, tuple(query), decoded, status, at)
        with self._log_lock:
            self.requests.append(rec)
            self._counts[rec.key] += 1


# ---------------------------------------------------------------------- HTTP plumbing
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stalls
    server_version = "catalog-sync-sim/1"
    sys_version = ""
    app: App  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k: v for k, v in self.headers.items()}
        resp = self.app.handle(self.command, parts.path, query, headers, body, raw_query=parts.query)
        if resp.drop:
            self.close_connection = True
            return
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve
    do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close idle keep-alive connections so handler threads end and clients see a closed server."""
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away is not an error worth a traceback here


class SimServer:
    """Serve an app on 127.0.0.1 in a background thread.

    >>> server = SimServer(app); url = server.start(); ...; server.stop()
    """

    def __init__(
        self, app: App, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context  # serve HTTPS with this server-side context
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> str:
        if self._httpd is not None:
            return self.url
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._httpd = _Server((self.host, self.port), handler)
        if self.ssl_context is not None:
            self._httpd.socket = self.ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="sim-server"
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = None
        self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def serve(app: App, port: int = 0) -> Iterator[str]:
    """Run `app` on 127.0.0.1 for the duration of the block; yields the base URL."""
    server = SimServer(app, port=port)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
