"""bench/report.py - turns bench/run.py's results into bench/results/latest.md and PNG plots.

    /usr/bin/python3 bench/report.py [bench/results/raw/results.json]   re-renders a report

Every ratio in the report divides two numbers measured in the same run (e.g. coio-epoll's
server CPU per request by raw-epoll's), so load on the machine hits both sides alike.
"""

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

TARGET_CPU_RATIO = 1.05  # within 5% of the raw loop
TARGET_IDLE_BYTES = 1024
TARGET_SWITCH_NS = 5
TARGET_CREATE_NS = 100

COLORS = {
    "coio-epoll": "#1f77b4", "coio-io_uring": "#17becf", "raw-epoll": "#2ca02c",
    "raw-io_uring": "#98df8a", "asio": "#9467bd", "selectors": "#ff7f0e",
    "threads": "#d62728",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1, unit=""):
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}f}{unit}"


def spread(xs, digits=1):
    """'median (min–max)' of the values that exist."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(statistics.median(xs), digits)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})"


def ok(flag):
    return "**met**" if flag else "**missed**"


# --- aggregation -----------------------------------------------------------------------------


def load_groups(results):
    groups = defaultdict(list)
    for r in results.get("load", {}).get("load", []):
        groups[(r["model"], r["connections"], r["depth"], r["size"])].append(r)
    return groups


def micro_index(results):
    """(binary, backend, name) -> ns per item."""
    idx = {}
    for r in results.get("micro", {}).get("google", []):
        idx[(r["binary"], r["backend"], r["name"])] = r
    return idx


def micro_ns(idx, binary, backend, name):
    r = idx.get((binary, backend, name))
    return r["ns_per_item"] if r else None


def cpu_ratio(groups, model, ref, point):
    a = med([r.get("cpu_us_per_req") for r in groups.get((model, *point), [])])
    b = med([r.get("cpu_us_per_req") for r in groups.get((ref, *point), [])])
    return a / b if a and b else None


def rps_med(groups, model, point):
    return med([r.get("rps") for r in groups.get((model, *point), [])])


# --- plots -----------------------------------------------------------------------------------


def plots(results, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib missing (python3-matplotlib), no plots", file=sys.stderr)
        return []
    made = []
    groups = load_groups(results)
    models = results.get("models", [])

    # Throughput vs connections, 64 B depth 1.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in models:
        xs, ys, lo, hi = [], [], [], []
        for (model, c, d, s), rows in sorted(groups.items(), key=lambda kv: kv[0][1]):
            if model != m or d != 1 or s != 64:
                continue
            v = [r["rps"] for r in rows if r.get("rps")]
            if not v:
                continue
            xs.append(c)
            ys.append(statistics.median(v))
            lo.append(ys[-1] - min(v))
            hi.append(max(v) - ys[-1])
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=m,
                        color=COLORS.get(m))
    ax.set_xscale("log")
    ax.set_xlabel("connections (64-byte echo, depth 1)")
    ax.set_ylabel("requests / s (median, min–max of 3)")
    ax.set_title("Echo throughput vs connections (server on 1 core)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "throughput_vs_connections.png", dpi=110)
    plt.close(fig)
    made.append("throughput_vs_connections.png")

    # Memory per idle connection.
    idle = [r for r in results.get("idle", {}).get("idle", []) if r.get("ok")]
    if idle:
        fig, ax = plt.subplots(figsize=(7, 4))
        n0 = idle[0]["connections"]
        names = [r["model"] if r["connections"] == n0 else f"{r['model']}\n({r['connections']:,})"
                 for r in idle]
        vals = [r["bytes_per_connection"] for r in idle]
        bars = ax.bar(names, vals, color=[COLORS.get(r["model"], "gray") for r in idle])
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v, f"{v:,.0f}", ha="center", va="bottom",
                    fontsize=8)
        ax.axhline(TARGET_IDLE_BYTES, color="black", linestyle="--", linewidth=1)
        ax.text(len(names) - 0.5, TARGET_IDLE_BYTES, "1 KiB target", ha="right", va="bottom",
                fontsize=8)
        ax.set_ylabel("server RSS bytes per idle connection")
        ax.set_title(f"Memory per idle connection ({idle[0]['connections']:,} connections)")
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
        fig.tight_layout()
        fig.savefig(out / "memory_per_connection.png", dpi=110)
        plt.close(fig)
        made.append("memory_per_connection.png")

    # Switch cost, coroutine vs thread (log scale).
    idx = micro_index(results)
    def thread_cpu(name):
        r = idx.get(("thread_switch", "-", name))
        return r.get("cpu_ns_per_switch") if r else None

    bars = [
        ("coio symmetric-transfer switch",
         micro_ns(idx, "yield_switch", "epoll", "bm_transfer_switch")),
        ("coio yield_now switch", micro_ns(idx, "yield_switch", "epoll", "bm_yield_switch")),
        ("coio await ready child", micro_ns(idx, "task_await", "epoll", "bm_await_ready_child")),
        ("coio create_task+await",
         micro_ns(idx, "create_task", "epoll", "bm_create_task_await")),
        ("thread futex, same core", thread_cpu("bm_futex/0/real_time")),
        ("thread condvar, same core", thread_cpu("bm_condvar/0/real_time")),
        ("thread futex, cross core", thread_cpu("bm_futex/1/real_time")),
        ("thread condvar, cross core", thread_cpu("bm_condvar/1/real_time")),
    ]
    bars = [(n, v) for n, v in bars if v]
    if bars:
        fig, ax = plt.subplots(figsize=(7, 4))
        colors = ["#1f77b4" if n.startswith("coio") else "#d62728" for n, _ in bars]
        b = ax.barh([n for n, _ in bars], [v for _, v in bars], color=colors)
        for rect, (_, v) in zip(b, bars):
            ax.text(v, rect.get_y() + rect.get_height() / 2, f" {v:,.0f} ns", va="center",
                    fontsize=8)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("CPU ns per switch / operation (log scale)")
        ax.set_title("Coroutine switch vs thread hand-off (CPU time)")
        fig.tight_layout()
        fig.savefig(out / "switch_cost.png", dpi=110)
        plt.close(fig)
        made.append("switch_cost.png")
    return made


# --- markdown --------------------------------------------------------------------------------


def write(results, out):
    out = Path(out)
    made = plots(results, out)
    groups = load_groups(results)
    idx = micro_index(results)
    m = results["machine"]
    models = results.get("models", [])
    L = []
    L.append("# coio benchmark results (latest run)\n")
    L.append(f"Generated by `scripts/bench` (bench/run.py) on {m['date']}. Raw data: "
             "`bench/results/raw/` (not committed).\n")
    L.append(f"- Machine: {m['cpus']}-core VM, {m['cpu']}, Linux {m['kernel']}; "
             f"{m['gxx']}; {m['clangxx']}. Release build (`-Dbuildtype=release`, g++).")
    L.append(f"- Load average at start {' / '.join(m['loadavg_start'])}, at end "
             f"{' / '.join(m.get('loadavg_end', ['?']))} (1/5/15 min): "
             + ("**other work was running on the machine, or had just stopped**, so absolute "
                "numbers may be noisy and pessimistic; ratios between servers measured in the "
                "same run are the meaningful part. (The suite itself keeps both cores busy, so "
                "the load at the end says little.)"
                if float(m["loadavg_start"][0]) > 1.5 else "the machine was quiet."))
    L.append(f"- Suite time: {results['elapsed_s']:.0f} s of measurement. Server pinned to "
             f"core 0, loadgen to core 1; {results['duration_s']} s measured after "
             f"{results['warmup_s']} s warm-up; {results['repeats']} repeats per point, "
             "servers interleaved (rotated order each repeat); tables show median "
             "(min–max).\n")

    # Headline vs targets.
    L.append("## Headline: coio against its targets\n")
    L.append("| target | measured | verdict |")
    L.append("| --- | --- | --- |")
    sat = (100, 16, 64)
    scall = {r["model"]: r["syscalls_per_request"] for r in results.get("syscalls", [])
             if "syscalls_per_request" in r}
    for model, ref in [("coio-epoll", "raw-epoll"), ("coio-io_uring", "raw-io_uring")]:
        ratios = {p: cpu_ratio(groups, model, ref, p) for p in
                  sorted({k[1:] for k in groups})}
        r = ratios.get(sat)
        allr = [v for v in ratios.values() if v]
        if model in models:
            L.append(f"| server CPU/request of {model} within 5% of {ref} | "
                     f"{fmt(r, 2)}× at 100 conns depth 16 64 B; "
                     f"{fmt(min(allr), 2) if allr else '—'}–{fmt(max(allr), 2) if allr else '—'}"
                     f"× over all points"
                     + (f"; syscalls/request {scall[model]:.2f} vs {scall[ref]:.2f} "
                        f"({scall[model] / scall[ref]:.2f}×)" if model in scall and ref in scall
                        else "")
                     + f" | {ok(r is not None and r <= TARGET_CPU_RATIO)} |")
    if "threads" in models and "coio-epoll" in models:
        wins, pts = [], []
        for p in sorted({k[1:] for k in groups}):
            if p[0] < 100:
                continue
            a, b = rps_med(groups, "coio-epoll", p), rps_med(groups, "threads", p)
            if a and b:
                pts.append(f"{p[0]}c/d{p[1]}/{p[2]}B {a / b:.2f}×")
                wins.append(a > b)
            elif a and b == 0:
                pts.append(f"{p[0]}c/d{p[1]}/{p[2]}B threads completed no request")
                wins.append(True)
        L.append(f"| coio ahead of thread-per-connection from 100 connections up "
                 f"(throughput, coio-epoll ÷ threads) | {'; '.join(pts) or '—'} | "
                 f"{ok(bool(wins) and all(wins))} |")
    idle = {r["model"]: r for r in results.get("idle", {}).get("idle", [])}
    heap = {f["backend"]: f for f in results.get("micro", {}).get("frames", [])
            if f["scenario"] == "idle_connection"}
    for model in ["coio-epoll", "coio-io_uring"]:
        r = idle.get(model)
        if r:
            v = r.get("bytes_per_connection")
            h = heap.get(model.split("-", 1)[1])
            note = ""
            if h:
                note = (f" (live heap per connection: {h['live_bytes_per_connection']:,.0f} B - "
                        f"the echo handler's frame, the connection task and its root; the "
                        f"handler reads with read_chunk, so it holds no read buffer while idle)")
            L.append(f"| {model} memory per idle connection < 1 KiB | {fmt(v, 0)} B RSS{note} | "
                     f"{ok(v is not None and v < TARGET_IDLE_BYTES)} |")
    for r in results.get("idle", {}).get("big", []):
        L.append(f"| {r['connections']:,} concurrent connections on one loop ({r['model']}) | "
                 f"{'all connected and echoed once' if r['ok'] else 'FAILED'}, "
                 f"{fmt(r.get('bytes_per_connection'), 0)} B/conn | {ok(r['ok'])} |")
    for r in results.get("load", {}).get("big_load", []):
        good = "error" not in r and r.get("errors", 1) == 0 and r.get("requests", 0) > 0
        L.append(f"| {r['connections']:,} connections under load ({r['model']}, depth 1, 64 B) | "
                 f"{fmt(r.get('rps'), 0)} req/s, p99 {fmt(r.get('p99_us'), 0)} µs"
                 f"{'' if good else ' — ' + r.get('error', 'no request completed in the window' if r.get('requests') == 0 else 'errors')} | {ok(good)} |")
    tr = micro_ns(idx, "yield_switch", "epoll", "bm_transfer_switch")
    sw = micro_ns(idx, "yield_switch", "epoll", "bm_yield_switch")
    ct = micro_ns(idx, "create_task", "epoll", "bm_create_task_await")
    L.append(f"| coroutine switch < 5 ns: direct (symmetric transfer, the switch in every "
             f"co_await of a task) | {fmt(tr, 1)} ns (ping-pong, CPU time) | "
             f"{ok(tr is not None and tr < TARGET_SWITCH_NS)} |")
    L.append(f"| coroutine switch < 5 ns: through the scheduler (yield_now, one loop "
             f"iteration per 2 switches) | {fmt(sw, 1)} ns (ping-pong, CPU time) | "
             f"{ok(sw is not None and sw < TARGET_SWITCH_NS)} |")
    L.append(f"| create_task + await < 100 ns | {fmt(ct, 1)} ns | "
             f"{ok(ct is not None and ct < TARGET_CREATE_NS)} |")
    L.append("")

    # Plots.
    if made:
        L.append("## Plots\n")
        for p in made:
            L.append(f"![{p}]({p})")
        L.append("")

    # Load tables.
    if groups:
        L.append("## Echo throughput, latency and server CPU per request\n")
        L.append("CPU/request = CPU time of the server process over loadgen's measured "
                 "window ÷ requests completed in the window. The CPU time is sampled every "
                 "10 ms and interpolated at the window's ends: the sum of "
                 "/proc/PID/task/*/schedstat (ns) for the single-threaded servers, utime+stime "
                 "from /proc/PID/stat (10 ms ticks) for thread-per-connection. Ratio: CPU/request ÷ the raw loop of the same kind (raw-io_uring "
                 "for coio-io_uring, raw-epoll for the rest).\n")
        for p in sorted({k[1:] for k in groups}):
            L.append(f"### {p[0]:,} connections, depth {p[1]}, {p[2]} B\n")
            L.append("| server | requests/s | p50 µs | p99 µs | CPU µs/request | ÷ raw |")
            L.append("| --- | --- | --- | --- | --- | --- |")
            for model in models:
                rows = groups.get((model, *p), [])
                if not rows:
                    continue
                errs = [r["error"] for r in rows if "error" in r]
                ref = results.get("refs", {}).get(model)
                ratio = cpu_ratio(groups, model, ref, p) if ref else None
                L.append(f"| {model} | {spread([r.get('rps') for r in rows], 0)} | "
                         f"{spread([r.get('p50_us') for r in rows])} | "
                         f"{spread([r.get('p99_us') for r in rows])} | "
                         f"{spread([r.get('cpu_us_per_req') for r in rows], 2)} | "
                         f"{fmt(ratio, 2) + '×' if ratio else '—'}"
                         f"{' (' + str(len(errs)) + ' failed runs)' if errs else ''} |")
            for model in models:
                rows = groups.get((model, *p), [])
                none = [r for r in rows if "error" not in r and r.get("requests") == 0]
                if none:
                    L.append(f"\n{model}: no request completed inside the measured window in "
                             f"{len(none)} of {len(rows)} runs (the server was still accepting "
                             "and setting up connections when the window closed).")
            L.append("")

    # Syscalls per request.
    sc = [r for r in results.get("syscalls", []) if "syscalls_per_request" in r]
    if sc:
        by = {r["model"]: r["syscalls_per_request"] for r in sc}
        L.append("## Syscalls per request (100 connections, depth 1, 64 B)\n")
        L.append("perf stat -e raw_syscalls:sys_enter on the server PID over one loadgen run "
                 "(warm-up and the 100 connects included, so slightly above the steady "
                 "state). Unlike time, this count does not depend on how loaded the machine "
                 "is.\n")
        L.append("| server | syscalls/request | ÷ raw |")
        L.append("| --- | --- | --- |")
        for r in sc:
            ref = results.get("refs", {}).get(r["model"])
            ratio = r["syscalls_per_request"] / by[ref] if ref in by else None
            L.append(f"| {r['model']} | {r['syscalls_per_request']:.2f} | "
                     f"{fmt(ratio, 2) + '×' if ratio else '—'} |")
        L.append("")

    # Idle memory.
    if results.get("idle"):
        L.append("## Memory per idle connection\n")
        L.append("Server VmRSS after loadgen --idle opened the connections and did one "
                 "verified round trip on each, minus VmRSS before, ÷ connections. RSS is "
                 "user-space memory only: kernel socket buffers and (for threads) kernel "
                 "stacks and task structs are not in it. VM = VmSize delta (address space "
                 "reserved, e.g. each thread's 8 MiB stack).\n")
        L.append("| server | connections | RSS bytes/conn | VM bytes/conn | ok |")
        L.append("| --- | --- | --- | --- | --- |")
        for r in results["idle"]["idle"] + results["idle"]["big"]:
            L.append(f"| {r['model']} | {r['connections']:,} | "
                     f"{fmt(r.get('bytes_per_connection'), 0)} | "
                     f"{fmt(r.get('vm_bytes_per_connection'), 0)} | "
                     f"{'yes' if r['ok'] else 'NO: ' + r.get('loadgen_err', '')[-120:]} |")
        L.append("")

    # Micro.
    if results.get("micro"):
        L.append("## Micro-benchmarks\n")
        L.append("Google Benchmark, median of 3 repetitions. coio rows are CPU time per item "
                 "(one switch, one await, one child...), measured once per backend. Thread "
                 "rows: one hand-off = one thread switch; CPU is what both threads spent "
                 "(getrusage), wall includes waiting for a core on a loaded machine.\n")
        L.append("| benchmark | what one item is | " +
                 " | ".join(f"ns/item ({b})" for b in sorted(
                     {r["backend"] for r in results["micro"]["google"]} - {"-"})) + " |")
        bks = sorted({r["backend"] for r in results["micro"]["google"]} - {"-"})
        L.append("| --- | --- | " + " | ".join("---" for _ in bks) + " |")
        what = {
            "bm_await_ready_child": "co_await of a child task that completes at once",
            "bm_yield_switch": "one coroutine switch (yield_now ping-pong of 2 tasks)",
            "bm_transfer_switch": "one coroutine switch (symmetric-transfer ping-pong)",
            "bm_create_task_await": "create_task(child) + co_await handle",
            "bm_gather/10": "one child of a gather of 10",
            "bm_gather/1000": "one child of a gather of 1,000",
            "bm_timer_insert_cancel/0": "timer insert+cancel, 1M pending, random deadline",
            "bm_timer_insert_cancel/1": "timer insert+cancel, 1M pending, earliest deadline",
        }
        for name, desc in what.items():
            vals = []
            for b in bks:
                binary = next((r["binary"] for r in results["micro"]["google"]
                               if r["name"] == name), None)
                vals.append(fmt(micro_ns(idx, binary, b, name), 1))
            L.append(f"| {name} | {desc} | " + " | ".join(vals) + " |")
        L.append("")
        L.append("| thread baseline | CPU ns per switch (both threads) | wall ns per switch |")
        L.append("| --- | --- | --- |")
        for r in results["micro"]["google"]:
            if r["binary"] == "thread_switch":
                L.append(f"| {r['name'].split('/')[0][3:]} {r['label']} | "
                         f"{fmt(r.get('cpu_ns_per_switch'), 0)} | "
                         f"{fmt(r['ns_per_item'], 0)} |")
        L.append("")
        frames = results["micro"].get("frames", [])
        if frames:
            L.append("### What coio allocates (frame_size: global operator new counted)\n")
            L.append("| scenario | backend | allocations | bytes | sizes / per unit |")
            L.append("| --- | --- | --- | --- | --- |")
            for f in frames:
                extra = f["sizes"]
                if "live_bytes_per_connection" in f:
                    extra = f"{f['live_bytes_per_connection']:.0f} live heap bytes per connection"
                if "allocations_per_request" in f:
                    extra = (f"{f['allocations_per_request']:.3f} allocations, "
                             f"{f['bytes_per_request']:.0f} bytes per request")
                L.append(f"| {f['scenario']} | {f['backend']} | {f['allocations']} | "
                         f"{f['bytes']:,} | {extra} |")
            L.append("")

    # Demo.
    d = results.get("demo")
    if d:
        L.append("## The seeds' demos\n")
        L.append("| gather of two workers | worker time | elapsed |")
        L.append("| --- | --- | --- |")
        for g in d["gather"]:
            L.append(f"| {g['variant']} | 2 × {g['worker_s']:.1f} s | {g['elapsed_s']:.3f} s |")
        L.append("")
        L.append("select vs poll vs epoll (bench/wait_cost): µs per call that reports one ready "
                 "fd among K idle eventfds (median of batches; wall time).\n")
        ks = sorted({w["idle_fds"] for w in d["wait_cost"]})
        L.append("| mechanism | " + " | ".join(f"K = {k:,}" for k in ks) + " |")
        L.append("| --- | " + " | ".join("---" for _ in ks) + " |")
        for mech in ["select", "poll", "epoll"]:
            cells = []
            for k in ks:
                w = next((w for w in d["wait_cost"] if w["mechanism"] == mech and
                          w["idle_fds"] == k), None)
                v = w.get("ns_per_call") if w else None
                cells.append("n/a (FD_SETSIZE)" if v is None else fmt(v / 1000, 2))
            L.append(f"| {mech} | " + " | ".join(cells) + " |")
        L.append("")

    L.append("## What this run leaves out\n")
    L.append("- The load matrix is trimmed from 4 connection counts × 2 depths × 2 sizes "
             "(16 points × 7 servers × 3 repeats ≈ 25 min here) to the connection sweep at "
             "64 B depth 1 plus depth 16 and 4 KiB at 100 connections, to keep the suite "
             "under 10 minutes on 2 cores. Run `bench/run.py` with a larger MATRIX for more.")
    L.append("- Durations are short (see above). On a loaded machine the pinned server may "
             "get only a fraction of its core; CPU/request stays meaningful (ns-resolution "
             "schedstat) but requests/s and latency then measure the machine's load as much "
             "as the server.")
    (out / "latest.md").write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else
                Path(__file__).resolve().parent / "results" / "raw" / "results.json")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    write(json.loads(path.read_text()), path.parent.parent)
