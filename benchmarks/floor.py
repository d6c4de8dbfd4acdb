"""The least any client can take here for a steady run's requests: the transport floor.

The same requests as the job's steady run — every catalog cursor page one after another, every /user/list
page `concurrency` at a time beside them, then the writes `concurrency` at a time — sent with http.client on
one keep-alive connection per thread, with nothing done with a catalog page but finding its cursor and
nothing planned. The lower bound counts latency only; this counts what the simulators and this machine add
to it, so `job / floor` is the part of the time that is the job's own work.
"""

from __future__ import annotations

import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import msgspec

from benchmarks.simhost import KEY, TOKEN, catalog_queries
from catalog_sync.catalog import BY_QUERY


def _connect(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120), parts.path


def _get(conn: http.client.HTTPConnection, target: str, headers: dict[str, str]) -> bytes:
    conn.request("GET", target, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {target.split('?')[0]}: HTTP {resp.status}")
    return body


def _catalog(url: str, page_size: int) -> None:
    conn, root = _connect(url)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    catalog_queries(
        lambda query: _get(conn, f"{root}/api/catalog{BY_QUERY}?{urlencode(query)}", headers), page_size
    )
    conn.close()


def transport_floor(
    backstage_url: str, litellm_url: str, pages: int, writes: int, concurrency: int, page_size: int
) -> float:
    """Seconds for the requests of a steady run; the writes rewrite users' own metadata (no change)."""
    local = threading.local()
    headers = {"Authorization": f"Bearer {KEY}"}
    conns: list[http.client.HTTPConnection] = []

    def conn() -> tuple[http.client.HTTPConnection, str]:
        if getattr(local, "conn", None) is None:
            local.conn, local.root = _connect(litellm_url)
            conns.append(local.conn)
        return local.conn, local.root

    def page(n: int) -> bytes:
        c, root = conn()
        return _get(c, f"{root}/user/list?page={n}&page_size=100&sort_by=user_id&sort_order=asc", headers)

    # The bodies are worked out beforehand, from rows read before the clock starts: a write each.
    source_pages = range(1, writes // 100 + 2)
    rows = [row for n in source_pages for row in msgspec.json.decode(page(n))["users"]][:writes]
    bodies = [msgspec.json.encode({"user_id": r["user_id"], "metadata": r["metadata"]}) for r in rows]

    def write(body: bytes) -> None:
        c, root = conn()
        json_headers = {**headers, "Content-Type": "application/json"}
        c.request("POST", f"{root}/user/update", body=body, headers=json_headers)
        resp = c.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"POST /user/update: HTTP {resp.status}")

    started = time.monotonic()
    reader = threading.Thread(target=_catalog, args=(backstage_url, page_size))
    reader.start()
    page(1)
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(page, range(2, pages + 1)))
    main, root = conn()
    _get(main, f"{root}/team/list", headers)  # the job reads the teams after the pages
    reader.join()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(write, bodies))
    took = time.monotonic() - started
    for c in conns:
        c.close()
    return took
