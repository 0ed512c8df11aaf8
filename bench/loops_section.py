"""bench/loops_section.py - issue 15's bench: the echo server on 1 and 2 loops
(`echo_server --loops N`, one SO_REUSEPORT listener per loop) on this 2-core machine.

Every model here runs unpinned - the server's loops and the load generator share both
cores, as they would on a real 2-core host - so throughput measures the whole machine and
server CPU per request (all the server's threads) says what a second loop costs. Target
(bench/targets.py LOOPS_CPU_LIMIT): server CPU per request on 2 loops within 1.10x of the
same server on 1 loop, unpinned, in the same interleaved run. Scaling beyond 2 cores is not
measured here (the load generator needs a core of its own).

The cross-loop hand-off cost is the loop_handoff micro-benchmark (section micro).
"""

import harness
import targets
from harness import MODELS

POINTS = [(100, 1, 64), (1000, 1, 64), (100, 16, 64)]
QUICK_POINTS = [(100, 16, 64)]


def loop_models(backends):
    """Registers the unpinned 1- and 2-loop models for the backends available here."""
    out = []
    for b in backends:
        for n in (1, 2):
            name = f"coio-{b}-loops{n}"
            MODELS[name] = ("bench/coio_echo_server", {"COIO_BACKEND": b}, f"coio-{b}-loops1")
            harness.ALL_MODELS[name] = MODELS[name]
            harness.SERVER_ARGS[name] = ["--loops", str(n)]
            harness.UNPINNED.add(name)
            out.append(name)
    return out


def section_loops(build, backends, quick, repeats, duration, warmup, run_cells):
    models = loop_models(backends)
    points = QUICK_POINTS if quick else POINTS
    cells = {p: {m: repeats for m in models} for p in points}
    return {"runs": run_cells(build, cells, duration, warmup, False, "loops"),
            "points": points, "models": models}


def markdown(results):
    sec = results.get("loops")
    if not sec:
        return []
    rows = [r for r in sec["runs"] if "error" not in r and not r.get("perf")]
    L = ["## A server on every loop (issue 15)\n",
         "`echo_server --loops N`: N loops, one thread and one SO_REUSEPORT listener each; "
         "server and loadgen unpinned, sharing both cores. Medians of the interleaved runs; "
         "CPU is the server's (all threads) per request. Target: 2 loops' CPU per request "
         f"≤ {targets.LOOPS_CPU_LIMIT:.2f}× 1 loop's in the same run. Scaling beyond 2 cores "
         "is not measured on this machine.\n",
         "| point | backend | 1 loop: req/s | 2 loops: req/s | 1 loop: CPU µs/req | "
         "2 loops: CPU µs/req | CPU ratio | verdict |",
         "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    failed = [r for r in sec["runs"] if "error" in r]
    for p in sec["points"]:
        p = tuple(p)
        for b in ("epoll", "io_uring"):
            one = [r for r in rows if r["model"] == f"coio-{b}-loops1"
                   and (r["connections"], r["depth"], r["size"]) == p]
            two = [r for r in rows if r["model"] == f"coio-{b}-loops2"
                   and (r["connections"], r["depth"], r["size"]) == p]
            if not one or not two:
                continue
            c1 = targets.med([r.get("cpu_us_per_req") for r in one])
            c2 = targets.med([r.get("cpu_us_per_req") for r in two])
            ratio = c2 / c1 if c1 and c2 else None
            verdict = "—" if ratio is None else (
                "**met**" if ratio <= targets.LOOPS_CPU_LIMIT else "**missed**")
            L.append(f"| {targets.point_name(p)} | {b} | "
                     f"{targets.fmt(targets.med([r.get('rps') for r in one]), 0)} | "
                     f"{targets.fmt(targets.med([r.get('rps') for r in two]), 0)} | "
                     f"{targets.fmt(c1)} | {targets.fmt(c2)} | {targets.times(ratio)} | "
                     f"{verdict} |")
    if failed:
        L.append(f"\n{len(failed)} run(s) failed: " +
                 "; ".join(f"{r['model']}: {r['error'][-100:]}" for r in failed[:3]))
    L.append("")
    L += handoff_markdown(results)
    return L


def handoff_markdown(results):
    """The hand-off round trip (loop_handoff, section micro) against its target, and the
    floor a cache line's round trip between the two cores sets."""
    rows = [r for r in (results.get("micro") or {}).get("google", [])
            if r["binary"] == "loop_handoff"]
    if not rows:
        return []

    def ns(backend, name):
        r = next((r for r in rows if r["backend"] == backend and r["name"] == name), None)
        return r["ns_per_item"] if r else None
    L = ["Hand-off round trip loop 0 → loop 1 → loop 0 (`co_await loops[1].spawn(t)`, loops "
         "pinned to CPUs 0 and 1; bench/loop_handoff.cpp, wall time), target "
         f"< {targets.HANDOFF_NS:,} ns:\n",
         "| backend | loop 1 asleep | both busy-polling | 64 in flight, each | "
         "cache line CPU 0 → 1 → 0 (floor) | verdict |",
         "| --- | --- | --- | --- | --- | --- |"]
    for b in sorted({r["backend"] for r in rows}):
        sleep = ns(b, "bm_spawn_round_trip/real_time")
        busy = ns(b, "bm_spawn_round_trip_busy_poll/real_time")
        piped = ns(b, "bm_spawn_pipelined_busy_poll/real_time")
        floor = ns(b, "bm_cache_line_round_trip/real_time")
        best = min(x for x in (sleep, busy) if x is not None) if (sleep or busy) else None
        verdict = "—" if best is None else (
            "**met**" if best < targets.HANDOFF_NS else
            f"**missed** ({targets.times(best / targets.HANDOFF_NS)} the target)")
        L.append(f"| {b} | {targets.fmt(sleep, 0)} ns | {targets.fmt(busy, 0)} ns | "
                 f"{targets.fmt(piped, 0)} ns | {targets.fmt(floor, 0)} ns | {verdict} |")
    L.append("")
    return L
