"""The HTTP transport shared by the Backstage and LiteLLM clients.

One `ApiSession` per client: base URL, bearer auth, timeouts, TLS verification, a urllib3 `Retry` on the
adapter, JSON decoding, and one error type (`ApiError`) whose text is a single line carrying the server's
own message. Secrets never reach exception text, log lines or reprs.
"""

from __future__ import annotations

import ast
import collections
import json
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import msgspec
import requests
import structlog
import urllib3.exceptions
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from . import __version__
from .interrupt import Interrupt
from .urls import mask_userinfo, public_url, url_secrets

log = structlog.get_logger("catalog_sync.http")

# Statuses worth retrying on an idempotent GET: throttling and gateway/proxy trouble.
RETRY_STATUSES = (429, 502, 503, 504)
# Longest Retry-After we are willing to sleep; a proxy asking for an hour should fail the run instead.
MAX_RETRY_AFTER = 60.0
MAX_MESSAGE = 500
SNIPPET = 200

Params = Sequence[tuple[str, str | int | float]]


USER_AGENT = f"catalog-sync/{__version__}"


class ApiError(Exception):
    """A failed call to Backstage or LiteLLM: `str()` is one line, without host, query string or headers."""

    def __init__(
        self,
        service: str,
        method: str,
        endpoint: str,
        status: int | None,
        message: str,
        error_type: str | None = None,
    ) -> None:
        self.service = service
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.message = message
        self.error_type = error_type
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.service} {self.method} {self.endpoint}"
        if self.status is None:
            return f"{where}: {self.message}"
        return f"{where}: HTTP {self.status}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-style constructor: the default pickling (cls(*args)) would pass the whole text as `service`.
        return (
            type(self),
            (self.service, self.method, self.endpoint, self.status, self.message, self.error_type),
        )


class TransportError(ApiError):
    """The server was not reached or the exchange broke (refused, reset, timeout, DNS, TLS): status None."""


class Interrupted(TransportError):
    """Not sent, or given up while waiting to retry, because the run is stopping (SIGTERM, Ctrl-C)."""


class _StopRetrying(Exception):
    """Raised out of urllib3's retry loop when a stop is requested during a backoff."""


class ResponseError(ApiError):
    """A 2xx whose body is not the JSON that was expected (HTML page, truncated, wrong type or shape)."""


_E = TypeVar("_E", bound=ApiError)


# --- error message extraction ---------------------------------------------------------------------

_WS = re.compile(r"\s+")


def _one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _unwrap(message: str, depth: int = 0) -> str:
    """Unwrap a message that is itself a serialised dict.

    LiteLLM's ProxyException stringifies the HTTPException detail: "{'error': 'User with id alice already
    exists'}" (docs/litellm-api.md#error-envelopes).
    """
    stripped = message.strip()
    if depth > 3 or not (stripped.startswith("{") and stripped.endswith("}")) or len(stripped) > 10_000:
        return message
    value: Any
    try:
        value = json.loads(stripped)
    except ValueError:
        try:
            value = ast.literal_eval(stripped)  # literals only: never evaluates code
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return message
    if isinstance(value, dict):
        for key in ("error", "message", "detail", "msg"):
            inner = value.get(key)
            if isinstance(inner, str) and inner.strip():
                return _unwrap(inner, depth + 1)
    return message


def _validation_errors(items: list[Any]) -> str:
    """FastAPI 422 `detail` list -> "body.user_role: Input should be ..."; several joined with "; "."""
    parts = []
    for item in items:
        if isinstance(item, Mapping):
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
            msg = item.get("msg")
            text = msg if isinstance(msg, str) else _compact(item)
            parts.append(f"{where}: {text}" if where else text)
        else:
            parts.append(str(item))
    return "; ".join(parts) or "validation error"


def message_from_json(data: Any) -> tuple[str, str | None]:
    """(message, error_type) from any error body shape of either server
    (docs/litellm-api.md#error-envelopes, docs/backstage-api.md#error-shape)."""
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping):
            raw = err.get("message")
            text = _unwrap(raw) if isinstance(raw, str) else ("" if raw is None else _compact(raw))
            name = err.get("name")
            if isinstance(name, str) and name:  # Backstage: {"error": {"name", "message"}, "request", ...}
                return (f"{name}: {text}" if text else name), name
            etype = err.get("type")  # LiteLLM ProxyException; informative only, callers switch on status
            return (text or _compact(err)), (etype if isinstance(etype, str) else None)
        if isinstance(err, str) and err.strip():
            return _unwrap(err), None
        detail = data.get("detail")
        if isinstance(detail, str):  # plain HTTPException(detail="...")
            return _unwrap(detail), None
        if isinstance(detail, Mapping):  # HTTPException(detail={"error": "..."})
            for key in ("error", "message", "msg"):
                inner = detail.get(key)
                if isinstance(inner, str) and inner.strip():
                    return _unwrap(inner), None
            return _compact(detail), None
        if isinstance(detail, list):  # FastAPI request validation (422)
            first = detail[0] if detail and isinstance(detail[0], Mapping) else {}
            etype = first.get("type")
            return _validation_errors(detail), (etype if isinstance(etype, str) else None)
        msg = data.get("message")
        if isinstance(msg, str) and msg.strip():
            return _unwrap(msg), None
    return _compact(data)[:SNIPPET], None


def message_from_body(body: bytes, reason: str | None = None) -> tuple[str, str | None]:
    """(message, error_type) from a raw error body: JSON of any known shape, else its first 200 chars."""
    text = body.decode("utf-8", errors="replace")
    if text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            return _one_line(text, SNIPPET), None
        message, etype = message_from_json(data)
        return _one_line(message), etype
    return (reason or "empty response body"), None


# --- transport failures ---------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: args, urllib3's `.reason`, __cause__/__context__."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested: list[Any] = [*current.args, getattr(current, "reason", None), current.__cause__]
        nested.append(current.__context__)
        stack.extend(e for e in nested if isinstance(e, BaseException))


def _describe_transport(exc: BaseException, timeout: float) -> str:
    chain = list(_chain(exc))

    def has(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    tls = has(ssl.SSLError, urllib3.exceptions.SSLError, requests.exceptions.SSLError)
    if tls is not None:
        inner = has(ssl.SSLError) or tls
        return f"TLS error: {_one_line(str(inner), SNIPPET)}"
    if has(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return "DNS lookup failed"
    if has(ConnectionRefusedError):
        return "connection refused"
    if has(urllib3.exceptions.NewConnectionError):
        return "cannot connect"
    if has(requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError):
        return f"connect timeout after {timeout:g}s"
    if has(requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
        return f"read timeout after {timeout:g}s"
    if has(ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return "connection reset by peer"
    if has(requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError):
        return "connection closed before the response was complete"
    return f"connection error ({type(exc).__name__})"


# --- the session ----------------------------------------------------------------------------------


class _CappedRetry(Retry):
    """urllib3 Retry honouring Retry-After (capped at MAX_RETRY_AFTER) and a total time budget.

    urllib3 bounds the number of retries; `budget` also bounds the time: no retry starts once `budget`
    seconds have passed since the first failure of the request. Every retry logs one `retrying` line.
    """

    budget: float = math.inf
    first_failure: float | None = None
    # For the `retrying` line: whose requests, the timeout (for the reason's text), attempts in all.
    service: str = ""
    timeout: float = 0.0
    attempts: int = 1
    # This retry's backoff, drawn once (it has jitter) so that the line says what is then slept.
    _backoff: float | None = None
    interrupt: Interrupt | None = None  # a stop request ends a backoff early, and the retries with it

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER)

    def get_backoff_time(self) -> float:
        if self._backoff is None:
            self._backoff = super().get_backoff_time()
        return self._backoff

    def new(self, **kw: Any) -> _CappedRetry:
        retry = super().new(**kw)
        retry.budget, retry.first_failure = self.budget, self.first_failure
        retry.service, retry.timeout, retry.attempts = self.service, self.timeout, self.attempts
        retry.interrupt = self.interrupt
        return retry

    def sleep(self, response: Any = None) -> None:
        if self.interrupt is None:
            return super().sleep(response)
        # As urllib3 sleeps (Retry-After, else the backoff), but waking on a stop request.
        wait = self.get_retry_after(response) if self.respect_retry_after_header and response else None
        if not self.interrupt.nap(wait or self.get_backoff_time()):
            raise _StopRetrying
        return None

    def increment(self, *args: Any, **kwargs: Any) -> _CappedRetry:
        now = time.monotonic()
        first = self.first_failure if self.first_failure is not None else now
        if now - first > self.budget:
            # Out of time: the same exit as out of attempts (urllib3 hands back the last response).
            pool: Any = kwargs.get("_pool")
            raise urllib3.exceptions.MaxRetryError(pool, kwargs.get("url") or "", None)
        retry = super().increment(*args, **kwargs)
        retry.first_failure = first
        retry._log_retrying(*args, **kwargs)
        return retry

    def _log_retrying(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        **_: Any,
    ) -> None:
        after = self.get_retry_after(response) if response is not None else None
        wait = after if after and self.respect_retry_after_header else self.get_backoff_time()
        if response is not None:
            reason = f"HTTP {response.status}"
        else:
            reason = _describe_transport(error, self.timeout) if error is not None else "unknown"
        log.info(
            "retrying",
            service=self.service,
            method=method,
            endpoint=urlsplit(url or "").path,  # never the query string: it may carry ids
            attempt=f"{len(self.history) + 1}/{self.attempts}",
            wait=round(wait, 2),
            reason=reason,
        )


class ApiSession:
    """One `requests.Session` with base URL, auth, timeouts, retries and JSON error handling.

    Retries (urllib3 `Retry` on the adapter, no hand-written loop): connect errors for any method, since the
    request never reached the server; read errors and 429/502/503/504 for `retry_methods` only (GET by
    default), with exponential backoff, jitter and Retry-After honoured, bounded in attempts and in time.
    No other 4xx is ever retried. A client passes POST in `retry_methods` only when every POST it sends is
    safe to repeat (LiteLLM: /user/new answers a repeat with 409, the others are idempotent).
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        token: str,
        *,
        timeout: float = 30,
        verify: bool | str = True,
        retries: int = 3,
        backoff_factor: float = 0.5,
        backoff_max: float = 30.0,
        retry_budget: float = 120.0,
        retry_methods: frozenset[str] = frozenset({"GET"}),
        pool_size: int = 16,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{service} base URL must start with http:// or https://")
        self.service = service
        self.base_url = base_url.rstrip("/")  # as configured, user info included: requests get this one
        self.public_url = public_url(self.base_url)  # what reprs and messages show
        self.timeout = timeout
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host = f"{parts.hostname}:{port}"
        self._secret = token
        # Also what a server might echo of a URL with credentials in it (http://admin:PW@host).
        self._echoable = sorted(
            (s for s in (token, *url_secrets(base_url)) if len(s) >= 4), key=len, reverse=True
        )
        self._lock = threading.Lock()
        self._requests: collections.Counter[str] = collections.Counter()

        retry = _CappedRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=retry_methods,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            backoff_jitter=backoff_factor,  # spread the retries of parallel workers
            respect_retry_after_header=True,
            raise_on_status=False,  # hand back the last 503 so the server's own message reaches ApiError
        )
        retry.budget = retry_budget
        retry.service, retry.timeout, retry.attempts = service, timeout, retries + 1
        self._retry = retry
        self._verify = verify
        self._pool_size = pool_size
        # Proxies from the environment (HTTPS_PROXY, NO_PROXY) are read once: requests with trust_env scans
        # os.environ on every request, a millisecond each over 100,000 creates. The rest of trust_env
        # (netrc, REQUESTS_CA_BUNDLE) is unwanted: auth and verify are set here.
        self._proxies = requests.utils.get_environ_proxies(self.base_url)
        # The URL as requests would prepare it (IDNA host, quoting); paths and queries are ASCII already.
        prepared = PreparedRequest()
        prepared.prepare_url(self.base_url, None)
        self._prefix = (prepared.url or self.base_url).rstrip("/")
        self._headers = {
            **requests.utils.default_headers(),
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        # One requests.Session per worker thread: requests does not promise that a Session is thread-safe,
        # and each worker keeps its own keep-alive connection.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self.interrupt: Interrupt | None = None

    def stop_on(self, interrupt: Interrupt) -> None:
        """From now on a stop request ends retry backoffs, and once cancelled no request is sent."""
        self.interrupt = self._retry.interrupt = interrupt

    @property
    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self._pool_size, max_retries=self._retry)
            session = requests.Session()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            # Only redirects go through the session (`_exchange`): no netrc, no environment there either.
            session.trust_env = False
            self._local.session = session
            self._local.adapter = adapter
            with self._lock:
                self._sessions.append(session)
        return session

    def __repr__(self) -> str:
        return f"ApiSession(service={self.service!r}, base_url={self.public_url!r})"

    @property
    def requests(self) -> collections.Counter[str]:
        """Logical requests made so far, keyed "GET /user/list" (a copy: safe to read while others send)."""
        with self._lock:
            return collections.Counter(self._requests)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def __enter__(self) -> ApiSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------------

    def get_json(
        self, path: str, params: Params | None = None, *, fast: Callable[[bytes], Any] | None = None
    ) -> Any:
        """GET base_url+path; params are (name, value) pairs (repeatable), values URL-encoded by requests.

        `fast` may decode a 2xx JSON body into a typed value in one pass; where it returns None the body is
        decoded as plain JSON, as without it."""
        # %20 for a space, never '+': LiteLLM re-parses user_id from the raw query and reads '+' as a plus
        # (docs/litellm-api.md#user-info-id-encoding).
        query = urlencode(list(params or ()), quote_via=quote, safe="")
        return self._send("GET", path, params=query or None, body=None, fast=fast)

    def post_json(self, path: str, body: Any) -> Any:
        return self._send("POST", path, params=None, body=body)

    def error(self, cls: type[_E], method: str, path: str, message: str, status: int | None = None) -> _E:
        """An error of this session's service, with any secret scrubbed from the message."""
        return cls(self.service, method, path, status, self._scrub(message))

    def shape_error(self, method: str, path: str, expected: str, got: Any = None) -> ResponseError:
        """ResponseError for a 2xx JSON body of the wrong shape; `expected` names what was expected."""
        message = f"unexpected response: expected {expected}"
        if got is not None:
            message += f", got {describe(got)}"
        return self.error(ResponseError, method, path, message)

    def _scrub(self, text: str) -> str:
        # Defence in depth: a server echoing the credential back must not put it in our error text.
        text = mask_userinfo(text)
        for secret in self._echoable:
            if secret in text:
                text = text.replace(secret, "<redacted>")
        return text

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: str | None,
        body: Any,
        fast: Callable[[bytes], Any] | None = None,
    ) -> Any:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        if self.interrupt is not None and self.interrupt.cancelled:
            raise self.error(Interrupted, method, path, "not sent: the run is stopping")
        request = self._prepare(method, path, params, body)
        with self._lock:
            self._requests[f"{method} {path}"] += 1
        started = time.monotonic()
        try:
            resp, content = self._exchange(request)
        except _StopRetrying:
            raise self.error(Interrupted, method, path, "not retried: the run is stopping") from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = _describe_transport(exc, self.timeout)
            # `from None`: the wrapped urllib3 frames hold the request headers, which must not reach a
            # traceback renderer that prints locals.
            raise self.error(TransportError, method, path, f"{reason} ({self.host})") from None
        log.debug(
            "http_request",
            service=self.service,
            method=method,
            path=path,  # without the query string
            status=resp.status_code,
            ms=round((time.monotonic() - started) * 1000),
        )
        if not 200 <= resp.status_code < 300:
            message, etype = message_from_body(content, resp.reason)
            raise ApiError(self.service, method, path, resp.status_code, self._scrub(message), etype)
        return self._decode(method, path, resp, content, fast)

    def _prepare(self, method: str, path: str, query: str | None, body: Any) -> PreparedRequest:
        """The request as Session.request would prepare it with this session's settings, built directly:
        preparing and merging settings per request cost requests ~0.3 ms of CPU, which is a third of the
        job's time per /user/list page and per write at 100,000 users."""
        headers = CaseInsensitiveDict(self._headers)
        headers["Authorization"] = f"Bearer {self._secret}"
        data: bytes | None = None
        if body is not None:
            try:  # as requests encodes `json=`: no NaN or Infinity, which are not JSON
                data = json.dumps(body, allow_nan=False).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise self.error(ApiError, method, path, f"request body is not JSON: {exc}") from None
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(data))
        elif method not in ("GET", "HEAD"):
            headers["Content-Length"] = "0"
        request = PreparedRequest()
        request.method = method
        request.url = self._prefix + path + (f"?{query}" if query else "")
        request.headers = headers
        request.body = data
        return request

    def _exchange(self, request: PreparedRequest) -> tuple[Response, bytes]:
        """Sends through this thread's adapter (its Retry included) and reads the whole body; a redirect is
        followed as requests follows it (same rules for method, auth and hosts)."""
        session = self._session
        settings: dict[str, Any] = {
            "stream": False,
            "timeout": (self.timeout, self.timeout),
            # Per request, never from REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE, which requests lets override
            # session.verify (psf/requests#3829) and would silently drop ca_bundle or tls_verify: false.
            "verify": self._verify,
            "cert": None,
            "proxies": self._proxies,
        }
        resp: Response = self._local.adapter.send(request, **settings)
        if resp.is_redirect:
            request._cookies = RequestsCookieJar()  # type: ignore[attr-defined]  # resolve_redirects needs a jar
            hops = list(session.resolve_redirects(resp, request, **settings))
            if hops:
                return hops[-1], hops[-1].content  # read by requests on the way
        # In one read rather than Response.content's 10 KB chunks: a 100-user /user/list page is ~80 KB.
        # A connection broken mid-body raises urllib3's ProtocolError/ReadTimeoutError, as `content` would
        # (wrapped by requests); both are transport errors to the caller.
        return resp, resp.raw.read(decode_content=True)

    def _decode(
        self, method: str, path: str, resp: Response, content: bytes, fast: Callable[[bytes], Any] | None
    ) -> Any:
        ctype = resp.headers.get("Content-Type", "")
        if "json" not in ctype.lower():
            snippet = _one_line(content.decode("utf-8", errors="replace"), SNIPPET) or "empty body"
            what = ctype.split(";")[0].strip() or "no content type"
            raise self.error(
                ResponseError, method, path, f"expected JSON, got {what}: {snippet}", resp.status_code
            )
        if fast is not None:
            typed = fast(content)
            if typed is not None:
                return typed
        try:
            return loads(content)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            detail = f"{exc.msg} at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise self.error(
                ResponseError,
                method,
                path,
                f"invalid or truncated JSON ({detail}, {len(content)} bytes)",
                resp.status_code,
            ) from None


def loads(content: bytes) -> Any:
    """JSON from bytes: msgspec, which decodes a 100-user /user/list page about twice as fast as json; the
    standard library for what msgspec refuses (NaN, for one), so nothing json accepts is refused."""
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError:
        return json.loads(content)


def describe(value: Any) -> str:
    """Short type description for shape errors ("a list", "null", "an object without 'users'")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:8])
        return f"an object with keys [{keys}]"
    return type(value).__name__
