#!/usr/bin/python3
"""bench/run.py - runs coio's benchmark suite and writes bench/results/.

Driven by scripts/bench (which installs packages and builds build/bench first); it can be
run on its own against an existing build:

    /usr/bin/python3 bench/run.py [--build build/bench] [--quick] [--only targets,...]

Sections (raw data goes to bench/results/raw/, gitignored):
  targets  exactly issue 10's target points: coio-epoll, coio-io_uring and the two raw
           loops at 100 / 1,000 connections x depth 1 / 16 x 64 B and 100 x 16 x 4 KiB
           (3 interleaved runs), 9 interleaved runs of coio-io_uring and raw-io_uring at
           1,000 busy connections (tail latency), memory per idle connection at 10,000,
           and 19,000 connections under load (coio-epoll against raw-epoll)
  micro    Google Benchmark micro-benchmarks (coio ones once per backend) and frame_size
  demo     gather_demo (two 2 s workers gathered) and wait_cost (select/poll/epoll)
  idle     RSS per idle connection, 10,000 connections per server; 19,000 on one coio loop
  load     every server over the connection matrix (the target points included)
  tls      coio's TLS echo server (epoll, io_uring) against Asio's ssl::stream: 100
           connections x depth 1 / 16 x 64 B / 4 KiB, TLS 1.3 AES-128-GCM, memory per idle
           TLS connection at 10,000, and a handshake rate (bench/tls_section.py; about 3
           minutes, --quick under 1): ./scripts/bench --only tls [--quick]
  loops    issue 15: echo_server on 1 and 2 loops, unpinned (bench/loops_section.py;
           about 1 minute): ./scripts/bench --only loops
Every load point also gets one run per server with perf attached (syscalls, mmap and
munmap per request), kept out of the timed runs; see bench/harness.py for what each run
measures. Then bench/results/latest.md and the PNG plots are written from the results.

Rules kept here: servers bind 127.0.0.1 only and are started and stopped by PID (SIGTERM,
then SIGKILL after a grace period, never by name); every child process has a timeout;
the server is pinned to core 0 and the load generator to core 1.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402  bench/harness.py
import loops_section  # noqa: E402  bench/loops_section.py
import targets  # noqa: E402  bench/targets.py
import tls_section  # noqa: E402  bench/tls_section.py
from harness import (LOADGEN_CPU, MODELS, SERVER_CPU, Server, cleanup, load_run,  # noqa: E402
                     log, perf_usable, read_line)

ROOT = Path(__file__).resolve().parent.parent

# The load section: every server at issue 10's target points (bench/targets.py) plus a
# connection sweep at 64 B, depth 1 (the throughput-vs-connections plot).
MATRIX = [(1, 1, 64), (100, 1, 64), (1000, 1, 64), (10000, 1, 64), (100, 16, 64),
          (1000, 16, 64), targets.BULK_POINT]
QUICK_MATRIX = [(100, 1, 64), (1000, 1, 64), (100, 16, 64)]


def run_json_lines(cmd, timeout, env=None):
    """Runs a command to completion (bounded) and returns its stdout's JSON lines."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {r.returncode}: {r.stderr.strip()[-400:]}")
    return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]


# --- sections --------------------------------------------------------------------------------


def section_micro(build, raw, quick):
    out = {"google": [], "frames": []}
    min_time = "0.05" if quick else "0.1"
    reps = "1" if quick else "3"
    coio_micro = ["task_await", "yield_switch", "create_task", "gather_fanout", "timer_churn",
                  "loop_handoff"]
    for backend in backends(build):
        for name in coio_micro:
            out["google"] += google_bench(build, name, raw, min_time, reps, backend)
        out["frames"] += run_json_lines([str(build / "bench" / "frame_size")], 60,
                                        {"COIO_BACKEND": backend})
    out["google"] += google_bench(build, "thread_switch", raw, min_time, reps, None)
    return out


def google_bench(build, name, raw, min_time, reps, backend):
    path = build / "bench" / name
    if not path.exists():
        log(f"micro: {name} not built (libbenchmark-dev missing?), skipped")
        return []
    tag = f"{name}-{backend}" if backend else name
    out_file = raw / f"micro-{tag}.json"
    env = {"COIO_BACKEND": backend} if backend else {}
    log(f"micro: {tag}")
    subprocess.run([str(path), f"--benchmark_min_time={min_time}",
                    f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true",
                    f"--benchmark_out={out_file}", "--benchmark_out_format=json"],
                   capture_output=True, timeout=180, env=dict(os.environ, **env), check=True,
                   stdin=subprocess.DEVNULL)
    data = json.loads(out_file.read_text())
    rows = []
    for b in data["benchmarks"]:
        if b.get("aggregate_name", "median") != "median" or "items_per_second" not in b:
            continue
        rows.append({
            "binary": name, "backend": backend or "-", "name": b["run_name"],
            "label": b.get("label", ""),
            # items_per_second is per CPU second (per wall second with UseRealTime).
            "ns_per_item": 1e9 / b["items_per_second"],
            "real_ns_per_iter": b["real_time"], "cpu_ns_per_iter": b["cpu_time"],
            "cpu_ns_per_switch": b.get("process_cpu_ns_per_switch"),  # thread_switch only
        })
    return rows


def section_demo(build, quick):
    log("demo: gather_demo, wait_cost")
    gather = run_json_lines([str(build / "bench" / "gather_demo"), "--seconds",
                             "0.5" if quick else "2"], 30)
    wait = run_json_lines([str(build / "bench" / "wait_cost"), "--cpu", str(SERVER_CPU),
                           "--repeats", "3" if quick else "7"], 120)
    return {"gather": gather, "wait_cost": wait}


def idle_run(build, model, connections, hold_s=60, server_args=(), loadgen_args=(),
             ready_s=60.0):
    """RSS delta of `model` holding `connections` idle connections (one round trip each;
    TLS: the handshake, then the round trip, before the RSS is read). ready_s bounds the
    setup (loadgen_args may raise loadgen's own --setup-timeout to match)."""
    srv = Server(build, model, server_args)
    try:
        time.sleep(0.2)
        rss0, vm0 = srv.status("VmRSS"), srv.status("VmSize")
        lg = subprocess.Popen(
            [str(build / "bench" / "loadgen"), "--port", str(srv.port), "--idle", "--hold",
             str(hold_s), "--connections", str(connections), "--cpu", str(LOADGEN_CPU),
             *loadgen_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(lg.stdout, ready_s)
            ok = line is not None and line.startswith(f"ready {connections}")
            time.sleep(0.5)  # let the server finish whatever the last round trips started
            alive = srv.proc.poll() is None
            rss1, vm1 = (srv.status("VmRSS"), srv.status("VmSize")) if alive else (0, 0)
            rest, err = lg.communicate(input="", timeout=60)  # closing stdin ends the hold
        finally:
            if lg.poll() is None:
                lg.kill()
                lg.wait(timeout=5)
        ok = ok and alive and lg.returncode == 0
        return {"model": model, "connections": connections, "ok": ok,
                "rss_before_kb": rss0, "rss_after_kb": rss1,
                "bytes_per_connection": (rss1 - rss0) * 1024 / connections if ok else None,
                "vm_bytes_per_connection": (vm1 - vm0) * 1024 / connections if ok else None,
                "loadgen": (line or "").strip() + " " + rest.strip()[-200:],
                "loadgen_err": err.strip()[-300:]}
    finally:
        srv.stop()


def section_idle(build, sections, models, quick):
    n = 2000 if quick else targets.IDLE_CONNECTIONS
    rows = []
    wanted = models if "idle" in sections else [m for m in models if m.startswith("coio-")]
    for model in wanted:
        log(f"idle: {model} x {n}")
        row = idle_run(build, model, n)
        if not row["ok"] and not quick:
            # Thread-per-connection may not bring up 10,000 threads within loadgen's setup
            # timeout on a loaded machine; measure it at a count it reaches rather than not at
            # all (the report names the count).
            log(f"idle: {model} failed at {n}; retrying with {n // 5}")
            rows.append(row)
            row = idle_run(build, model, n // 5)
        rows.append(row)
    big = []
    for model in ["coio-epoll", "coio-io_uring"]:
        if model in models and "idle" in sections and not quick:
            log(f"idle: {model} x 19000")
            big.append(idle_run(build, model, 19000))
    return {"idle": rows, "big": big}


def warmup_for(connections, warmup):
    """Fresh connections' first requests queue behind their accepts: many connections
    need a longer warm-up before the load is steady."""
    if connections >= targets.BIG_CONNECTIONS:
        return max(warmup, 3.0)
    if connections >= 5000:
        return max(warmup, 1.0)
    return warmup


def plan_load(sections, models, quick, repeats):
    """{point: {model: timed runs}} for the chosen sections (their union)."""
    cells = {}

    def want(point, model, runs):
        if model in models:
            cell = cells.setdefault(point, {})
            cell[model] = max(runs, cell.get(model, 0))

    if "targets" in sections:
        for point in targets.CPU_POINTS + [targets.BULK_POINT]:
            for model in targets.TARGET_MODELS:
                want(point, model, repeats)
        for model in targets.LATENCY_MODELS:
            want(targets.LATENCY_POINT, model, 3 if quick else targets.LATENCY_RUNS)
    if "load" in sections:
        for point in QUICK_MATRIX if quick else MATRIX:
            for model in models:
                want(point, model, repeats)
    return cells


def run_cells(build, cells, duration, warmup, with_counters, tag, extra=None):
    """Timed runs round by round (each round every point, servers in an order rotated per
    round, so drift in the machine's load hits every server), then one perf run per cell.
    extra(model) gives load_run's extra keyword arguments (the TLS section's options)."""
    rows = []
    rounds = max((n for cell in cells.values() for n in cell.values()), default=0)
    total = sum(n for cell in cells.values() for n in cell.values())
    total += sum(len(cell) for cell in cells.values()) if with_counters else 0
    done = 0

    def one(point, model, rep, with_perf):
        nonlocal done
        done += 1
        log(f"{tag} {done}/{total}: {model} conns={point[0]} depth={point[1]} "
            f"size={point[2]} " + ("perf" if with_perf else f"run={rep + 1}"))
        try:
            row = load_run(build, model, point, duration, warmup_for(point[0], warmup),
                           with_perf=with_perf, **(extra(model) if extra else {}))
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            row = {"model": model, "connections": point[0], "depth": point[1],
                   "size": point[2], "perf": with_perf, "error": str(e)[-300:]}
        row["rep"] = rep
        rows.append(row)
        if "error" in row:
            log(f"  FAILED: {row['error']}")

    for rep in range(rounds):
        for point, cell in cells.items():
            ms = [m for m in cell if cell[m] > rep]
            k = rep % len(ms) if ms else 0
            for model in ms[k:] + ms[:k]:
                one(point, model, rep, False)
    if with_counters:
        for point, cell in cells.items():
            for model in cell:
                one(point, model, -1, True)
    return rows


def section_load(build, sections, models, quick, repeats, duration, warmup):
    counters = perf_usable()
    if not counters:
        log("load: perf cannot count syscall tracepoints here; no syscall/mmap counters")
    rows = run_cells(build, plan_load(sections, models, quick, repeats), duration, warmup,
                     counters, "load")
    big = []
    if not quick:
        cells = {targets.BIG_POINT: {m: repeats for m in targets.BIG_MODELS if m in models}}
        big = run_cells(build, cells, 2 * duration, warmup, counters, "load 19,000")
    return {"runs": rows, "big": big, "perf": counters}


def backends(build):
    r = subprocess.run([str(build / "bench" / "coio_echo_server"), "--list-backends"],
                       capture_output=True, text=True, timeout=10)
    return [b for b in r.stdout.split() if b in ("epoll", "io_uring")]


def available_models(build):
    have = backends(build)
    out = []
    for name, (binary, env, _) in MODELS.items():
        if not (build / binary).exists():
            log(f"{name}: {binary} not built, skipped")
            continue
        if env.get("COIO_BACKEND") and env["COIO_BACKEND"] not in have:
            log(f"{name}: backend not available here, skipped")
            continue
        out.append(name)
    return out


def machine_info():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=10).stdout.splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu": cpu,
            "gxx": first(["g++", "--version"]), "clangxx": first(["clang++", "--version"]),
            "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build" / "bench"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 run per point, fewer points, shorter windows")
    ap.add_argument("--only", default="targets,micro,demo,idle,load,tls,loops",
                    help="comma-separated sections: targets, micro, demo, idle, load, tls, "
                    "loops")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--models", default="", help="comma-separated subset of " +
                    ",".join(harness.ALL_MODELS))
    args = ap.parse_args()
    build, out = Path(args.build), Path(args.out)
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    harness.LOG_DIR[0] = raw
    for old in raw.glob("server-*.log"):
        old.unlink()
    models = available_models(build)
    if args.models:
        models = [m for m in models if m in args.models.split(",")]
    sections = args.only.split(",")
    unknown = set(sections) - {"targets", "micro", "demo", "idle", "load", "tls", "loops"}
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    repeats = 1 if args.quick else args.repeats
    duration = min(args.duration, 0.5) if args.quick else args.duration
    tls_models = []
    if "tls" in sections:
        wanted = set(args.models.split(",")) if args.models else set()
        tls_models = tls_section.available(build, wanted, backends(build))
    results = {"machine": machine_info(), "models": models, "quick": args.quick,
               "sections": sections,
               "refs": {m: harness.ALL_MODELS[m][2] for m in models + tls_models},
               "duration_s": duration, "warmup_s": args.warmup, "repeats": repeats}
    t0 = time.monotonic()
    try:
        if "micro" in sections:
            results["micro"] = section_micro(build, raw, args.quick)
        if "demo" in sections:
            results["demo"] = section_demo(build, args.quick)
        if "idle" in sections or "targets" in sections:
            results["idle"] = section_idle(build, sections, models, args.quick)
        if "load" in sections or "targets" in sections:
            results["load"] = section_load(build, sections, models, args.quick, repeats,
                                           duration, args.warmup)
        if "tls" in sections:
            results["tls"] = tls_section.section(build, tls_models, args.quick, repeats,
                                                 duration, args.warmup, run_cells, idle_run)
        if "loops" in sections:
            results["loops"] = loops_section.section_loops(build, backends(build), args.quick,
                                                           repeats, duration, args.warmup,
                                                           run_cells)
    finally:
        cleanup()
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    results["elapsed_s"] = time.monotonic() - t0
    (raw / "results.json").write_text(json.dumps(results, indent=1))
    log(f"measured in {results['elapsed_s']:.0f} s; writing the report")
    import report  # bench/report.py
    report.write(results, out)
    log(f"wrote {out / 'latest.md'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
