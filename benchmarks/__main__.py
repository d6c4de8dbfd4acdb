"""python -m benchmarks [--sizes 1000,10000,100000] [--latency-ms 5] [--drift 0.01] [--concurrency 4]
[--repeat 3] [--quick] [--real] [--out results.json]"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.bench import Case, as_json, bench_size
from benchmarks.writes import cpu_per_write


def table(cases: list[Case]) -> str:
    head = (
        f"{'case':<12} {'N':>7} {'requests':>8} {'minimum':>7} {'ratio':>5} {'wall s':>7} {'job s':>7} "
        f"{'bound s':>7} {'ratio':>5} {'floor s':>7} {'ratio':>5} {'sim CPU s':>9} {'RSS MB':>6} "
        f"{'ms/user':>7} {'baseline s':>10} {'speed-up':>8}"
    )
    lines = [head, "-" * len(head)]
    for c in cases:
        base = (
            f"{c.baseline_seconds:>9.1f}{'*' if c.baseline_extrapolated else ' '}"
            if c.baseline_seconds
            else ""
        )
        speed = f"{c.baseline_seconds / c.wall:>7.0f}x" if c.baseline_seconds else ""
        floor = f"{c.floor_seconds:>7.2f} {c.floor_ratio:>5.2f}" if c.floor_seconds and c.floor_ratio else ""
        lines.append(
            f"{c.name:<12} {c.users:>7} {c.made:>8} {c.minimum:>7} {c.request_ratio:>5.2f} {c.wall:>7.2f} "
            f"{c.job_seconds:>7.2f} {c.lower_bound:>7.2f} {c.wall_ratio:>5.2f} {floor:>13} "
            f"{c.sim_cpu_seconds:>9.2f} "
            f"{c.rss_mb:>6.0f} "
            f"{c.per_user_ms:>7.3f} {base:>10} {speed:>8}"
        )
    return "\n".join(lines)


def targets(cases: list[Case], latency_ms: float, drift: float) -> list[tuple[str, bool, str]]:
    out = []
    worst = max(cases, key=lambda c: c.request_ratio)
    out.append(
        (
            "requests <= 1.05 x minimum, every case",
            worst.request_ratio <= 1.05,
            f"worst {worst.request_ratio:.3f}",
        )
    )
    big = [c for c in cases if c.users >= 100_000]
    steady_run = next((c for c in big if c.name == "steady run"), None)
    steady_plan = next((c for c in big if c.name == "steady plan"), None)
    if steady_run and latency_ms == 5 and drift == 0.01:
        out.append(
            (
                "100k steady run within 1.5 x the lower bound",
                steady_run.wall_ratio <= 1.5,
                f"{steady_run.job_seconds:.2f}s vs {steady_run.lower_bound:.2f}s"
                f" = {steady_run.wall_ratio:.2f}",
            )
        )
        if steady_plan and steady_plan.baseline_seconds:
            ratio = steady_plan.baseline_seconds / steady_run.wall
            out.append(("100k steady run >= 20x faster than per-user", ratio >= 20, f"{ratio:.0f}x"))
    if big:
        peak = max(c.rss_mb for c in big)
        out.append(("100k peak RSS < 400 MB", peak < 400, f"{peak:.0f} MB"))
    # Linear cost: the job's time per user must not grow with N (25% slack for noise on a shared machine).
    by_name: dict[str, list[Case]] = {}
    for c in cases:
        by_name.setdefault(c.name, []).append(c)
    for name, series in by_name.items():
        series.sort(key=lambda c: c.users)
        if len(series) < 2:
            continue
        growth = max(b.per_user_ms / a.per_user_ms for a, b in itertools.pairwise(series))
        trend = " -> ".join(f"{c.per_user_ms:.3f}" for c in series)
        out.append((f"{name}: ms/user does not grow with N", growth <= 1.25, f"{trend} ms/user"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--latency-ms", type=float, default=5.0)
    ap.add_argument("--drift", type=float, default=0.01)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--baseline-sample", type=int, default=2000, help="per-user baseline users measured")
    ap.add_argument(
        "--repeat", type=int, default=3, help="steady-state repeats per N; the fastest is reported"
    )
    ap.add_argument("--quick", action="store_true", help="N=1000 only")
    ap.add_argument(
        "--real", action="store_true", help="also the real-server comparison (benchmarks/real.py)"
    )
    ap.add_argument("--out", type=Path, default=Path("benchmark-results.json"))
    args = ap.parse_args(argv)
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    cases: list[Case] = []
    for n in sizes:
        print(
            f"== N={n}, latency {args.latency_ms} ms, drift {args.drift:.1%}, concurrency {args.concurrency}",
            file=sys.stderr,
            flush=True,
        )
        cases += bench_size(
            n, args.latency_ms / 1000, args.drift, args.concurrency, args.baseline_sample, args.repeat
        )
    print(table(cases))
    print("(* baseline extrapolated linearly from", args.baseline_sample, "users)")
    print(f"(steady cases: the fastest of {args.repeat}; every repeat's job seconds are in the JSON)")
    print("(floor: the steady run's requests over http.client with nothing else done, fastest of the same")
    print(" number of rounds: what the simulators and this machine take however little a client does)")
    print("\nrequests by kind:")
    for c in cases:
        print(
            f"  {c.name:<12} N={c.users:<7} " + ", ".join(f"{k} {v}" for k, v in sorted(c.requests.items()))
        )
    results: dict[str, object] = {"cases": as_json(cases)}
    with tempfile.TemporaryDirectory(prefix="cs-bench-writes-") as tmp:
        writes = cpu_per_write(Path(tmp), concurrency=args.concurrency)
    results["cpu_per_write"] = writes
    print(
        f"\nclient CPU per /user/update (simulator, {writes['users']} users, fastest of "
        f"{len(writes['job_ms'])}): job {min(writes['job_ms']):.2f} ms, plain loop "
        f"{min(writes['loop_ms']):.2f} ms"
    )
    checks = targets(cases, args.latency_ms, args.drift)
    if args.real:
        from benchmarks.real import compare_with_plain_loop

        real = compare_with_plain_loop(users=2000, concurrency=args.concurrency)
        results["real"] = real
        for kind in ("create", "update"):
            r = real[kind]
            print(
                f"\nreal LiteLLM {kind}: job {r['job_per_s']:.1f}/s, plain loop {r['loop_per_s']:.1f}/s "
                f"(ratio {r['ratio']:.2f}); seconds per round, job "
                + " ".join(f"{x:.1f}" for x in r["job_round_seconds"])
                + ", loop "
                + " ".join(f"{x:.1f}" for x in r["loop_round_seconds"])
            )
            checks.append(
                (f"real {kind} throughput >= 0.9 x plain loop", r["ratio"] >= 0.9, f"{r['ratio']:.2f}")
            )
    print("\ntargets:")
    for name, ok, detail in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    results["targets"] = [{"target": n, "pass": ok, "detail": d} for n, ok, d in checks]
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {args.out}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
