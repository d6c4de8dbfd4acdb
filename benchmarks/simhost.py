"""The simulators in a child process, so that the job's time and memory are measured alone.

The parent talks to the host over a pipe: start an org, add drift, read and reset request counts.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from catalog_sync.catalog import BY_QUERY, GROUP_FIELDS, USER_FIELDS
from catalog_sync.sim import BackstageSim, LiteLLMSim, SimServer, generated_org

TOKEN = "bench-backstage-token-0123456789"
KEY = "sk-bench-master-0123456789"
DRIFT_GROUP = "drift-group"


def catalog_queries(fetch: Callable[[list[tuple[str, str]]], bytes], page_size: int) -> None:
    """The job's two catalog queries, every cursor page in turn: `fetch(query)` answers one page."""
    for kind, fields in (("user", USER_FIELDS), ("group", GROUP_FIELDS)):
        query = [("filter", f"kind={kind}"), ("limit", str(page_size)), ("fields", fields)]
        while True:
            cursor = msgspec.json.decode(fetch(query))["pageInfo"].get("nextCursor")
            if cursor is None:
                break
            query = [("cursor", cursor), ("limit", str(page_size)), ("fields", fields)]


def _warm(backstage: BackstageSim) -> None:
    """Serves the job's two catalog queries once after a change. The simulator rebuilds its sorted listing
    and item encodings on the first request after a change; the real catalog does that work when it ingests
    (stitching), not when it is asked, so it is not charged to the next case."""
    headers = {"authorization": f"Bearer {TOKEN}"}
    catalog_queries(lambda q: backstage.handle("GET", "/api/catalog" + BY_QUERY, q, headers, b"").body, 1000)


def _serve(conn: Connection, users: int, groups: int, latency: float, seed: int) -> None:
    entities = generated_org(users, groups, seed=seed)
    entities.append(
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Group",
            "metadata": {"name": DRIFT_GROUP},
            "spec": {"type": "team", "children": []},
        }
    )
    backstage, litellm = BackstageSim(token=TOKEN), LiteLLMSim(master_key=KEY, seed=seed)
    backstage.set_entities(entities)
    _warm(backstage)
    for app in (backstage, litellm):
        app.latency = latency
        app.record_requests = False  # counts only: a 100k-user run would otherwise keep every request
    servers = [SimServer(backstage), SimServer(litellm)]
    conn.send({"backstage": servers[0].start(), "litellm": servers[1].start()})
    # The simulators hold a whole organisation: keep the cycle collector from re-scanning it while
    # they answer (their CPU is the other half of every case's wall time).
    gc.freeze()
    user_docs = [e for e in entities if e["kind"] == "User"]
    while True:
        msg = conn.recv()
        op = msg[0]
        if op == "stop":
            break
        if op == "counts":
            counts = {
                "backstage": dict(backstage.request_counts()),
                "litellm": dict(litellm.request_counts()),
                # CPU the simulators used (all threads): with both in one Python process, this much of
                # the wall time is theirs however fast the job is.
                "cpu_seconds": time.process_time(),
            }
            for app in (backstage, litellm):
                app.clear_requests()
            conn.send(counts)
        elif op == "drift":
            fraction, drift_seed = msg[1], msg[2]
            # Only people not moved before, so that every repeat changes exactly this many users.
            still = [d for d in user_docs if d["spec"].get("memberOf") != [DRIFT_GROUP]]
            picked = random.Random(drift_seed).sample(still, round(len(user_docs) * fraction))
            for doc in picked:
                doc["spec"] = {**doc["spec"], "memberOf": [DRIFT_GROUP]}
            backstage.set_entities(entities)
            _warm(backstage)
            gc.freeze()
            conn.send(len(picked))
        elif op == "latency":
            for app in (backstage, litellm):
                app.latency = msg[1]
            conn.send(True)
        elif op == "litellm_users":
            conn.send(len(litellm.users))
    for server in servers:
        server.stop()


@dataclass
class SimHost:
    users: int
    groups: int
    latency: float
    seed: int = 42

    def __enter__(self) -> SimHost:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_serve, args=(child, self.users, self.groups, self.latency, self.seed), daemon=True
        )
        self.proc.start()
        urls = self.conn.recv()
        self.backstage_url, self.litellm_url = urls["backstage"], urls["litellm"]
        return self

    def call(self, *msg: Any) -> Any:
        self.conn.send(msg)
        return self.conn.recv()

    def __exit__(self, *exc: object) -> None:
        self.conn.send(("stop",))
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.kill()
