"""Run both simulators in the foreground, for exploring the APIs by hand.

    python -m catalog_sync.sim --users 1000 --groups 50 [--latency-ms 20] [--demo]

Prints the URLs and credentials (also as one `KEY=value ...` line, like the real start scripts) and
serves until interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from .backstage import DEFAULT_TOKEN, BackstageSim
from .litellm import DEFAULT_MASTER_KEY, LiteLLMSim
from .org import demo_org, generated_org, load_entities
from .server import SimServer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m catalog_sync.sim", description="Run the Backstage and LiteLLM simulators."
    )
    ap.add_argument("--users", type=int, default=1000, help="users in the generated org (default 1000)")
    ap.add_argument("--groups", type=int, default=50, help="groups in the generated org (default 50)")
    ap.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    ap.add_argument("--demo", action="store_true", help="serve the small demo organisation instead")
    ap.add_argument("--catalog-file", help="serve the entities of this YAML file instead")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    ap.add_argument("--backstage-port", type=int, default=0, help="default: an ephemeral port")
    ap.add_argument("--litellm-port", type=int, default=0, help="default: an ephemeral port")
    ap.add_argument("--backstage-token", default=DEFAULT_TOKEN)
    ap.add_argument("--master-key", default=DEFAULT_MASTER_KEY)
    ap.add_argument("--litellm-version", choices=("new", "old"), default="new")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    if args.catalog_file:
        entities = load_entities(args.catalog_file)
    elif args.demo:
        entities = demo_org()
    else:
        entities = generated_org(args.users, args.groups, seed=args.seed)
    backstage = BackstageSim(token=args.backstage_token)
    backstage.set_entities(entities)
    litellm = LiteLLMSim(master_key=args.master_key, version=args.litellm_version)
    for app in (backstage, litellm):
        app.latency = args.latency_ms / 1000.0
    bs_server = SimServer(backstage, port=args.backstage_port)
    ll_server = SimServer(litellm, port=args.litellm_port)
    bs_url = bs_server.start()
    ll_url = ll_server.start()
    for r in backstage.rejected:
        print(f"rejected (not served, as the real catalog would): {r.ref}: {r.reason}", file=sys.stderr)
    print(
        f"Backstage catalog sim: {bs_url}/api/catalog  token: {args.backstage_token}  "
        f"({backstage.entity_count} entities, loaded in {time.monotonic() - t0:.1f}s)",
        file=sys.stderr,
    )
    print(
        f"LiteLLM proxy sim:     {ll_url}  master key: {args.master_key}  (version {args.litellm_version})",
        file=sys.stderr,
    )
    print("Ctrl-C to stop.", file=sys.stderr)
    print(
        f"BACKSTAGE_URL={bs_url} BACKSTAGE_TOKEN={args.backstage_token} "
        f"LITELLM_URL={ll_url} LITELLM_MASTER_KEY={args.master_key}",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        bs_server.stop()
        ll_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
