"""ApiSession and ApiError: error text, message extraction, retries, encoding, secrets."""

from __future__ import annotations

import json
import math
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from hypothesis import given, settings
from hypothesis import strategies as st
from responses.registries import OrderedRegistry

from catalog_sync.http import (
    USER_AGENT,
    ApiError,
    ApiSession,
    ResponseError,
    TransportError,
    message_from_body,
)

BASE = "http://litellm.test:4000"
SECRET = "sk-test-master-0123456789"


def session(**kwargs: Any) -> ApiSession:
    kwargs.setdefault("backoff_factor", 0)
    return ApiSession("litellm", BASE, SECRET, **kwargs)


# --- ApiError text --------------------------------------------------------------------------------


def test_str_is_one_line_with_service_method_endpoint_status_message() -> None:
    err = ApiError("litellm", "POST", "/user/new", 409, "User with id alice already exists")
    assert str(err) == "litellm POST /user/new: HTTP 409: User with id alice already exists"


def test_transport_error_str_has_no_status() -> None:
    err = TransportError("backstage", "GET", "/entities/by-query", None, "connection refused (bs:7007)")
    assert str(err) == "backstage GET /entities/by-query: connection refused (bs:7007)"


def test_errors_pickle_round_trip() -> None:
    err = ResponseError("litellm", "GET", "/user/list", 200, "expected JSON", None)
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, ResponseError)
    assert (copy.service, copy.status, str(copy)) == ("litellm", 200, str(err))


# --- message extraction (bodies verbatim from real servers: docs/*-api.md) ------------------

ERROR_SHAPES = [
    pytest.param(
        {
            "error": {
                "message": "{'error': 'User with id alice already exists'}",
                "type": "internal_server_error",
                "param": None,
                "code": "409",
            }
        },
        "User with id alice already exists",
        "internal_server_error",
        id="litellm-proxy-exception-stringified-dict",
    ),
    pytest.param(
        {
            "error": {
                "message": "User bob not found",
                "type": "internal_server_error",
                "param": None,
                "code": "404",
            }
        },
        "User bob not found",
        "internal_server_error",
        id="litellm-proxy-exception-plain",
    ),
    pytest.param(
        {"detail": {"error": "User not found, passed user_id=ghost"}},
        "User not found, passed user_id=ghost",
        None,
        id="litellm-detail-error",
    ),
    pytest.param({"detail": "Not Found"}, "Not Found", None, id="fastapi-detail-string"),
    pytest.param(
        {
            "detail": [
                {
                    "type": "literal_error",
                    "loc": ["body", "user_role"],
                    "msg": "Input should be <LitellmUserRoles.PROXY_ADMIN: 'proxy_admin'>",
                }
            ]
        },
        "body.user_role: Input should be <LitellmUserRoles.PROXY_ADMIN: 'proxy_admin'>",
        "literal_error",
        id="fastapi-422",
    ),
    pytest.param(
        {
            "detail": [
                {"type": "less_than_equal", "loc": ["query", "page_size"], "msg": "Input should be <= 100"},
                {"type": "greater_than_equal", "loc": ["query", "page"], "msg": "Input should be >= 1"},
            ]
        },
        "query.page_size: Input should be <= 100; query.page: Input should be >= 1",
        "less_than_equal",
        id="fastapi-422-several",
    ),
    pytest.param(
        {
            "error": {"name": "InputError", "message": "Unknown query parameter 'pageSize'"},
            "request": {"method": "GET", "url": "/entities/by-query?filter=kind=user&pageSize=10"},
            "response": {"statusCode": 400},
        },
        "InputError: Unknown query parameter 'pageSize'",
        "InputError",
        id="backstage",
    ),
]


@pytest.mark.parametrize(("body", "message", "error_type"), ERROR_SHAPES)
def test_message_extraction(body: Any, message: str, error_type: str | None) -> None:
    assert message_from_body(json.dumps(body).encode()) == (message, error_type)


def test_message_from_html_is_first_200_chars_collapsed() -> None:
    html = "<html>\n  <head><title>502 Bad Gateway</title></head>\n<body>" + "x" * 500 + "</body></html>"
    message, etype = message_from_body(html.encode())
    assert message.startswith("<html> <head><title>502 Bad Gateway</title></head> <body>xxx")
    assert len(message) <= 200 and "\n" not in message and etype is None


def test_message_from_empty_body_uses_reason() -> None:
    assert message_from_body(b"", "Not Found") == ("Not Found", None)


def test_message_with_newlines_stays_one_line() -> None:
    body = {"detail": {"error": "Assigning team admins is a premium feature. \nPricing: https://x. "}}
    message, _ = message_from_body(json.dumps(body).encode())
    assert message == "Assigning team admins is a premium feature. Pricing: https://x."


@responses.activate
def test_status_error_carries_extracted_message_and_type() -> None:
    body = {
        "error": {"message": "{'error': 'User with id alice already exists'}", "type": "x", "code": "409"}
    }
    responses.post(f"{BASE}/user/new", json=body, status=409)
    with pytest.raises(ApiError) as info:
        session().post_json("/user/new", {"user_id": "alice"})
    err = info.value
    assert type(err) is ApiError
    assert (err.service, err.method, err.endpoint, err.status) == ("litellm", "POST", "/user/new", 409)
    assert err.message == "User with id alice already exists" and err.error_type == "x"
    assert str(err) == "litellm POST /user/new: HTTP 409: User with id alice already exists"


@responses.activate
def test_endpoint_in_error_has_no_query_string_or_host() -> None:
    responses.get(f"{BASE}/user/info", json={"detail": "nope"}, status=400)
    with pytest.raises(ApiError) as info:
        session().get_json("/user/info", [("user_id", "alice")])
    assert info.value.endpoint == "/user/info"
    assert "alice" not in str(info.value) and "litellm.test" not in str(info.value)


# --- 2xx that is not the expected JSON ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expect"),
    [
        pytest.param(
            "<html><body>Sign in</body></html>", "text/html", "expected JSON, got text/html", id="html"
        ),
        pytest.param(
            '{"users": [{"user_id": "a"', "application/json", "invalid or truncated JSON", id="truncated"
        ),
        pytest.param("", "application/json", "invalid or truncated JSON", id="empty"),
        pytest.param('{"users": []}', "text/plain", "expected JSON, got text/plain", id="wrong-content-type"),
    ],
)
@responses.activate
def test_2xx_not_json_is_response_error(body: str, content_type: str, expect: str) -> None:
    responses.get(f"{BASE}/user/list", body=body, status=200, content_type=content_type)
    with pytest.raises(ResponseError) as info:
        session().get_json("/user/list")
    assert info.value.endpoint == "/user/list" and info.value.status == 200
    assert expect in info.value.message
    assert str(info.value).startswith("litellm GET /user/list: HTTP 200: ")


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ('{"spend": 1.5, "name": "zoë"}', {"spend": 1.5, "name": "zoë"}),
        # What the faster decoder refuses but the standard library reads: still accepted, as before.
        ('{"spend": NaN}', "nan"),
    ],
)
@responses.activate
def test_2xx_json_is_decoded_as_the_standard_library_would(body: str, expect: object) -> None:
    responses.get(f"{BASE}/user/list", body=body, status=200, content_type="application/json")
    got = session().get_json("/user/list")
    if expect == "nan":
        assert math.isnan(got["spend"])
    else:
        assert got == expect


def test_shape_error_names_endpoint_and_expectation() -> None:
    err = session().shape_error("GET", "/team/list", "a list of teams", {"teams": []})
    assert isinstance(err, ResponseError)
    assert str(err) == (
        "litellm GET /team/list: unexpected response: expected a list of teams,"
        " got an object with keys [teams]"
    )


# --- retries (responses emulates urllib3's status retries; see the live-server tests below too) ---


@responses.activate(registry=OrderedRegistry)
def test_get_retries_503_then_succeeds() -> None:
    responses.get(f"{BASE}/user/list", json={"error": {"message": "busy"}}, status=503)
    responses.get(f"{BASE}/user/list", json={"error": {"message": "busy"}}, status=503)
    responses.get(f"{BASE}/user/list", json={"users": []}, status=200)
    s = session(retries=3)
    assert s.get_json("/user/list") == {"users": []}
    assert len(responses.calls) == 3
    assert s.requests == {"GET /user/list": 1}  # logical requests, not attempts


@responses.activate(registry=OrderedRegistry)
def test_get_gives_up_after_retries_with_the_server_message() -> None:
    for _ in range(3):
        responses.get(f"{BASE}/user/list", json={"detail": "upstream down"}, status=502)
    with pytest.raises(ApiError) as info:
        session(retries=2).get_json("/user/list")
    assert info.value.status == 502 and info.value.message == "upstream down"
    assert len(responses.calls) == 3


@responses.activate
def test_post_503_is_not_retried_unless_the_client_opts_in() -> None:
    responses.post(f"{BASE}/user/new", json={"detail": "busy"}, status=503)
    with pytest.raises(ApiError) as info:
        session(retries=3).post_json("/user/new", {"user_id": "a"})
    assert info.value.status == 503
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 500])
@responses.activate
def test_get_4xx_and_500_are_not_retried(status: int) -> None:
    responses.get(f"{BASE}/user/info", json={"detail": "no"}, status=status)
    with pytest.raises(ApiError) as info:
        session(retries=3).get_json("/user/info", [("user_id", "a")])
    assert info.value.status == status
    assert len(responses.calls) == 1


# --- live loopback server: the real urllib3 Retry path, timeouts, refused connections -------------

Handler = Callable[[BaseHTTPRequestHandler, int], tuple[int, dict[str, str], bytes]]


class _Server:
    def __init__(self, handle: Handler) -> None:
        self.hits: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.hits.append((self.command, self.path, dict(self.headers)))
                status, headers, body = handle(self, len(outer.hits))
                try:
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

            do_GET = do_POST = _do

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], _Server]]:
    servers: list[_Server] = []

    def start(handle: Handler) -> _Server:
        servers.append(_Server(handle))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_live_get_retry_honours_retry_after(serve: Callable[[Handler], _Server]) -> None:
    def handle(_: BaseHTTPRequestHandler, n: int) -> tuple[int, dict[str, str], bytes]:
        if n == 1:
            return 429, {"Retry-After": "1"}, b'{"detail": "slow down"}'
        return 200, {}, b'{"ok": true}'

    server = serve(handle)
    s = ApiSession("litellm", server.url, SECRET, retries=2, backoff_factor=0)
    started = time.monotonic()
    assert s.get_json("/user/list") == {"ok": True}
    assert time.monotonic() - started >= 0.9
    assert len(server.hits) == 2


def test_live_retries_stop_when_the_time_budget_is_spent(serve: Callable[[Handler], _Server]) -> None:
    server = serve(lambda _, n: (503, {}, b'{"detail": "upstream down"}'))
    s = ApiSession(
        "litellm", server.url, SECRET, retries=50, backoff_factor=0.05, backoff_max=0.1, retry_budget=0.5
    )
    with pytest.raises(ApiError) as info:
        s.get_json("/user/list")
    assert info.value.status == 503 and info.value.message == "upstream down"
    assert 3 <= len(server.hits) < 20  # 0.5 s of 0.05-0.2 s backoffs, far short of 51 tries


def test_live_post_retried_when_the_client_opts_in(serve: Callable[[Handler], _Server]) -> None:
    server = serve(lambda _, n: (503, {}, b"{}") if n == 1 else (200, {}, b'{"ok": true}'))
    s = ApiSession(
        "litellm", server.url, SECRET, retries=2, backoff_factor=0, retry_methods=frozenset({"GET", "POST"})
    )
    assert s.post_json("/user/update", {"user_id": "a"}) == {"ok": True}
    assert [h[0] for h in server.hits] == ["POST", "POST"]


def test_live_post_503_sent_once(serve: Callable[[Handler], _Server]) -> None:
    server = serve(lambda _h, _n: (503, {}, b'{"detail": "busy"}'))
    s = ApiSession("litellm", server.url, SECRET, retries=3, backoff_factor=0)
    with pytest.raises(ApiError) as info:
        s.post_json("/user/update", {"user_id": "a", "max_budget": 1})
    assert info.value.status == 503 and info.value.message == "busy"
    assert len(server.hits) == 1


def test_live_get_503_retried_then_ok(serve: Callable[[Handler], _Server]) -> None:
    server = serve(lambda _h, n: (503, {}, b"{}") if n < 3 else (200, {}, b"[1]"))
    s = ApiSession("litellm", server.url, SECRET, retries=3, backoff_factor=0.01)
    assert s.get_json("/team/list") == [1]
    assert len(server.hits) == 3 and s.total_requests == 1


def test_live_headers(serve: Callable[[Handler], _Server]) -> None:
    server = serve(lambda _h, _n: (200, {}, b"{}"))
    ApiSession("backstage", server.url + "/", "tok-12345678").get_json("/x")
    _, path, headers = server.hits[0]
    assert path == "/x"
    assert headers["Authorization"] == "Bearer tok-12345678"
    assert headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("catalog-sync/")
    assert headers["Accept"] == "application/json"


def test_live_redirects_are_followed_and_the_credential_stays_on_its_host(
    serve: Callable[[Handler], _Server],
) -> None:
    other = serve(lambda _h, _n: (200, {}, b'{"at": "other"}'))

    def moved(h: BaseHTTPRequestHandler, _n: int) -> tuple[int, dict[str, str], bytes]:
        if h.path.startswith("/old"):
            return 301, {"Location": "/new?x=1"}, b""
        if h.path.startswith("/away"):
            return 302, {"Location": other.url + "/there"}, b""
        return 200, {}, b'{"at": "new"}'

    server = serve(moved)
    s = ApiSession("litellm", server.url, SECRET, retries=0)
    assert s.get_json("/old") == {"at": "new"}
    assert [p for _, p, _ in server.hits] == ["/old", "/new?x=1"]
    kept = server.hits[1][2].get("Authorization") == f"Bearer {SECRET}"
    assert kept  # (compared apart, so that a failure does not print the key)
    assert s.get_json("/away") == {"at": "other"}
    assert "Authorization" not in other.hits[0][2]  # another host never gets the master key
    assert s.total_requests == 2  # logical requests: a redirect is part of its request


def test_body_that_is_not_json_is_refused_before_sending() -> None:
    with responses.RequestsMock() as rsps:  # nothing registered: any request would fail the test
        s = session()
        with pytest.raises(ApiError, match=r"litellm POST /user/update: request body is not JSON"):
            s.post_json("/user/update", {"max_budget": math.nan})
        assert len(rsps.calls) == 0 and s.total_requests == 0  # nothing was sent, nothing counted


def test_live_requests_share_one_keep_alive_connection() -> None:
    ports: list[int] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _do(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ports.append(self.client_address[1])
            status = 404 if len(ports) % 5 == 0 else 200
            body = b'{"detail": "' + b"x" * 30000 + b'"}'  # bigger than one read
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _do

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    s = ApiSession("litellm", f"http://127.0.0.1:{httpd.server_address[1]}", SECRET, retries=0)
    calls = [lambda: s.get_json("/user/list"), lambda: s.post_json("/user/update", {"user_id": "a"})] * 10
    try:
        for call in calls:
            try:
                call()
            except ApiError as exc:
                assert exc.status == 404
    finally:
        s.close()
        httpd.shutdown()
        httpd.server_close()
    assert (len(ports), len(set(ports))) == (20, 1)  # every body read to the end, error bodies too


def test_live_body_cut_short_is_a_transport_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[1, 2"
        )
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    s = ApiSession("litellm", f"http://127.0.0.1:{listener.getsockname()[1]}", SECRET, retries=0)
    try:
        with pytest.raises(TransportError) as info:
            s.get_json("/user/list")
    finally:
        listener.close()
    assert str(info.value).startswith("litellm GET /user/list: connection closed before the response was")


def test_live_read_timeout_is_transport_error(serve: Callable[[Handler], _Server]) -> None:
    def slow(_: BaseHTTPRequestHandler, __: int) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.5)
        return 200, {}, b"{}"

    server = serve(slow)
    s = ApiSession("litellm", server.url, SECRET, timeout=0.1, retries=0)
    with pytest.raises(TransportError) as info:
        s.get_json("/user/list")
    port = server.url.rsplit(":", 1)[1]
    assert info.value.status is None
    assert str(info.value) == f"litellm GET /user/list: read timeout after 0.1s (127.0.0.1:{port})"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_connection_refused_is_transport_error_and_retried(method: str) -> None:
    lines = _json_logs()
    port = _closed_port()
    s = ApiSession("backstage", f"http://127.0.0.1:{port}", SECRET, retries=1, backoff_factor=0)
    with pytest.raises(TransportError) as info:
        if method == "GET":
            s.get_json("/entities/by-query", [("filter", "kind=user")])
        else:
            s.post_json("/entities/by-refs", {"entityRefs": []})
    assert (
        str(info.value) == f"backstage {method} {info.value.endpoint}: connection refused (127.0.0.1:{port})"
    )
    assert info.value.__suppress_context__  # the wrapped urllib3 frames (and their headers) stay out
    retrying = [(r["attempt"], r["reason"]) for r in lines() if r["event"] == "retrying"]
    assert retrying == [("2/2", "connection refused")]  # refused before sending: POST is retried too


def test_dns_failure_is_transport_error() -> None:
    s = ApiSession("litellm", "http://no-such-host.invalid:4000", SECRET, retries=0)
    with pytest.raises(TransportError) as info:
        s.get_json("/user/list")
    assert info.value.message in (
        "DNS lookup failed (no-such-host.invalid:4000)",
        "cannot connect (no-such-host.invalid:4000)",
    )


# --- URL encoding ---------------------------------------------------------------------------------


@responses.activate
def test_awkward_ids_are_percent_encoded() -> None:
    responses.get(f"{BASE}/user/info", json={})
    s = session()
    s.get_json("/user/info", [("user_id", "a+b c/d%e@ü")])
    url = responses.calls[0].request.url
    assert url is not None
    query = urlsplit(url).query
    # '+' is encoded and a space is %20, never '+': the real proxy reads a raw '+' as a plus (tests/quirks.py)
    assert "%2B" in query and "%20" in query and "+" not in query
    assert "%2F" in query and "%25" in query and "%C3%BC" in query
    assert parse_qsl(query) == [("user_id", "a+b c/d%e@ü")]


@responses.activate
def test_repeated_params_keep_order() -> None:
    responses.get(f"{BASE}/x", json={})
    session().get_json("/x", [("filter", "kind=user"), ("filter", "kind=group"), ("limit", 5)])
    url = responses.calls[0].request.url
    assert url is not None
    assert parse_qsl(urlsplit(url).query) == [
        ("filter", "kind=user"),
        ("filter", "kind=group"),
        ("limit", "5"),
    ]


@settings(max_examples=60, deadline=None)
@given(value=st.text(min_size=1, max_size=20))
def test_any_value_round_trips(value: str) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BASE}/user/info", json={})
        session().get_json("/user/info", [("user_id", value)])
        url = rsps.calls[0].request.url
        assert url is not None
        assert parse_qsl(urlsplit(url).query, keep_blank_values=True) == [("user_id", value)]


# --- secrets --------------------------------------------------------------------------------------


def test_secret_not_in_repr() -> None:
    s = session()
    assert SECRET not in repr(s)
    assert SECRET not in repr(s._session.auth)


@responses.activate
def test_secret_echoed_by_server_is_scrubbed() -> None:
    responses.get(
        f"{BASE}/user/info", json={"error": {"message": f"bad key {SECRET}", "type": "auth"}}, status=401
    )
    responses.get(f"{BASE}/user/list", body=f"<html>{SECRET}</html>", content_type="text/html")
    s = session()
    for path in ("/user/info", "/user/list"):
        with pytest.raises(ApiError) as info:
            s.get_json(path)
        assert SECRET not in str(info.value) and SECRET not in info.value.message
        assert SECRET not in repr(info.value)
        assert "<redacted>" in info.value.message


def test_secret_not_in_transport_error() -> None:
    s = ApiSession("litellm", f"http://127.0.0.1:{_closed_port()}", SECRET, retries=0)
    with pytest.raises(TransportError) as info:
        s.get_json("/user/list")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


# --- counters -------------------------------------------------------------------------------------


@responses.activate
def test_request_counter_is_thread_safe() -> None:
    responses.get(f"{BASE}/user/info", json={})
    responses.post(f"{BASE}/user/update", json={})
    s = session()

    def work() -> None:
        for _ in range(25):
            s.get_json("/user/info", [("user_id", "x")])
            s.post_json("/user/update", {"user_id": "x"})

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.requests == {"GET /user/info": 150, "POST /user/update": 150}
    assert s.total_requests == 300


@responses.activate
def test_failed_requests_are_counted() -> None:
    responses.get(f"{BASE}/user/info", json={"detail": "x"}, status=404)
    s = session()
    with pytest.raises(ApiError):
        s.get_json("/user/info", [("user_id", "x")])
    assert s.requests["GET /user/info"] == 1


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        ApiSession("litellm", "litellm.test:4000", SECRET)


class _Proxy:
    """A forward proxy that answers every request itself, recording the request line it got."""

    def __init__(self) -> None:
        seen = self.seen = []

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                body = b'{"via": "proxy"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_proxies_from_the_environment_are_honoured_and_no_proxy_too(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _Proxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        s = ApiSession("litellm", "http://gateway.invalid:4000", SECRET, retries=0)
        assert s.get_json("/user/list", [("page", 1)]) == {"via": "proxy"}
        assert proxy.seen == ["http://gateway.invalid:4000/user/list?page=1"]  # a proxy's absolute form
        monkeypatch.setenv("NO_PROXY", "gateway.invalid")
        direct = ApiSession("litellm", "http://gateway.invalid:4000", SECRET, retries=0)
        with pytest.raises(TransportError):  # straight to the (unresolvable) host, not via the proxy
            direct.get_json("/user/list")
        assert len(proxy.seen) == 1
    finally:
        proxy.httpd.shutdown()


# --- the `retrying` line --------------------------------------------------------------------------


def _json_logs() -> Any:
    import io

    from catalog_sync.logs import configure

    out = io.StringIO()
    configure("json", "info", stream=out)
    return lambda: [json.loads(line) for line in out.getvalue().splitlines()]


@responses.activate(registry=OrderedRegistry)
def test_every_retry_logs_one_retrying_line_with_endpoint_attempt_wait_and_reason() -> None:
    lines = _json_logs()
    responses.get(f"{BASE}/user/info", json={"detail": "busy"}, status=503)
    responses.get(f"{BASE}/user/info", json={"detail": "slow down"}, status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/user/info", json={"detail": "busy"}, status=502)
    responses.get(f"{BASE}/user/info", json={"user_id": "bob"}, status=200)
    s = session(retries=3, backoff_factor=0.5)
    assert s.get_json("/user/info", [("user_id", "bob@example.com")]) == {"user_id": "bob"}
    assert len(responses.calls) == 4  # the three faults were hit
    retrying = [line for line in lines() if line["event"] == "retrying"]
    assert [(r["attempt"], r["reason"]) for r in retrying] == [
        ("2/4", "HTTP 503"),
        ("3/4", "HTTP 429"),
        ("4/4", "HTTP 502"),
    ]
    assert all(r["endpoint"] == "/user/info" and r["service"] == "litellm" for r in retrying)
    assert "bob@example.com" not in json.dumps(retrying)  # no query string
    assert retrying[1]["wait"] == 7  # Retry-After
    assert retrying[0]["wait"] == 0 and 2 <= retrying[2]["wait"] <= 2.5  # backoff 0.5 * 2**2, jitter 0.5


def test_live_the_retrying_line_says_what_is_then_slept(
    serve: Callable[[Handler], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)  # the backoff has jitter
    lines = _json_logs()
    server = serve(lambda _, n: (503, {}, b'{"detail": "busy"}') if n < 4 else (200, {}, b"{}"))
    s = ApiSession("litellm", server.url, SECRET, retries=3, backoff_factor=0.5)
    assert s.get_json("/user/list") == {}
    assert len(server.hits) == 4  # three 503s were hit
    waits = [line["wait"] for line in lines() if line["event"] == "retrying"]
    assert len(waits) == 3 and waits[1:] == [round(w, 2) for w in slept]


def test_a_refused_connection_logs_retrying_with_the_reason() -> None:
    lines = _json_logs()
    port = _closed_port()
    s = ApiSession("backstage", f"http://127.0.0.1:{port}", SECRET, retries=2, backoff_factor=0)
    with pytest.raises(TransportError):
        s.get_json("/entities/by-query", [("filter", "kind=user")])
    retrying = [line for line in lines() if line["event"] == "retrying"]
    assert [(r["attempt"], r["reason"], r["endpoint"]) for r in retrying] == [
        ("2/3", "connection refused", "/entities/by-query"),
        ("3/3", "connection refused", "/entities/by-query"),
    ]
