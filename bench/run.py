#!/usr/bin/python3
"""bench/run.py - runs coio's benchmark suite and writes bench/results/.

Driven by scripts/bench (which installs packages and builds build/bench first); it can be
run on its own against an existing build:

    /usr/bin/python3 bench/run.py [--build build/bench] [--quick] [--only micro,idle,...]

Sections (each writes raw data to bench/results/raw/, gitignored):
  micro   Google Benchmark micro-benchmarks (coio ones once per backend) and frame_size
  demo    gather_demo (two 2 s workers gathered) and wait_cost (select/poll/epoll)
  idle    RSS per idle connection, 10,000 connections per server; 19,000 on one coio loop
  syscalls  syscalls per request per server (perf tracepoint; skipped without perf)
  load    throughput, latency and server CPU per request over the connection matrix
Then bench/results/latest.md and the PNG plots are written from what was measured.

Rules kept here: servers bind 127.0.0.1 only and are started and stopped by PID (SIGTERM,
then SIGKILL after a grace period, never by name); every child process has a timeout;
the server is pinned to core 0 and the load generator to core 1.
"""

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
LOADGEN_CPU = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")

# name -> (binary in build/bench/bench, extra environment, raw reference it is compared to)
MODELS = {
    "coio-epoll": ("coio_echo_server", {"COIO_BACKEND": "epoll"}, "raw-epoll"),
    "coio-io_uring": ("coio_echo_server", {"COIO_BACKEND": "io_uring"}, "raw-io_uring"),
    "raw-epoll": ("raw_epoll_echo", {}, None),
    "raw-io_uring": ("raw_uring_echo", {}, None),
    "asio": ("asio_echo", {}, "raw-epoll"),
    "selectors": ("selectors_echo", {}, "raw-epoll"),
    "threads": ("thread_echo_server", {}, "raw-epoll"),
}

# The load matrix: (connections, depth, size). The full cross product (4 x 2 x 2 points x
# 7 servers x 3 repeats) would take ~25 minutes on 2 cores; this keeps the connection sweep
# at 64 B depth 1 (the throughput-vs-connections plot) and probes depth 16 and 4 KiB at 100
# connections, where the loop is saturated and CPU per request is steady.
MATRIX = [
    (1, 1, 64),
    (100, 1, 64),
    (1000, 1, 64),
    (10000, 1, 64),
    (100, 16, 64),
    (100, 1, 4096),
    (100, 16, 4096),
]
QUICK_MATRIX = [(1, 1, 64), (100, 1, 64), (100, 16, 64)]

STARTED = []  # Popen objects of servers still running, for cleanup on any exit
LOG_DIR = [ROOT / "bench" / "results" / "raw"]  # servers' stderr goes to LOG_DIR/<model>.log


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------------


class Server:
    """One echo server process: started pinned to SERVER_CPU, stopped by PID."""

    def __init__(self, build, model):
        binary, env, _ = MODELS[model]
        self.model = model
        path = build / "bench" / binary
        full_env = dict(os.environ, **env)
        with open(LOG_DIR[0] / f"server-{model}.log", "a") as err:
            self.proc = subprocess.Popen(
                [str(path), "--port", "0", "--cpu", str(SERVER_CPU)],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                env=full_env, text=True)
        STARTED.append(self.proc)
        line = read_line(self.proc.stdout, 10.0)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line or "")
        if not m:
            self.stop()
            raise RuntimeError(f"{model}: no 'listening on' line (got {line!r})")
        self.port = int(m.group(1))
        self.pid = self.proc.pid
        # Thread-per-connection's threads come and go: schedstat of the live threads would
        # lose the time of those that ended, /proc/PID/stat keeps it.
        self.precise = model != "threads"

    def cpu_ns(self):
        """CPU time of the whole process (all threads) in ns.

        Single-threaded servers: the sum of /proc/PID/task/*/schedstat (ns resolution; a
        server pinned to a loaded core may get only ~0.1 s of CPU in a run, which clock ticks
        would resolve to 10%). Thread-per-connection: utime + stime from /proc/PID/stat, in
        clock ticks, which counts threads that already ended and costs one read per sample.
        """
        tasks = os.listdir(f"/proc/{self.pid}/task") if self.precise else []
        if self.precise and len(tasks) <= 16:
            total = 0
            for t in tasks:
                try:
                    with open(f"/proc/{self.pid}/task/{t}/schedstat") as f:
                        total += int(f.read().split()[0])
                except FileNotFoundError:
                    pass  # a thread that just ended
            return total
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK  # utime, stime

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
        return 0

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.proc in STARTED:
            STARTED.remove(self.proc)
        self.proc.stdout.close()


def read_line(stream, timeout):
    """Reads one line from a pipe, or None after `timeout` seconds."""
    result = []
    t = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else None


def cleanup():
    for p in list(STARTED):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


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
    coio_micro = ["task_await", "yield_switch", "create_task", "gather_fanout", "timer_churn"]
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


def idle_run(build, model, connections, hold_s=60):
    """RSS delta of `model` holding `connections` idle connections (one round trip each)."""
    srv = Server(build, model)
    try:
        time.sleep(0.2)
        rss0, vm0 = srv.status("VmRSS"), srv.status("VmSize")
        lg = subprocess.Popen(
            [str(build / "bench" / "loadgen"), "--port", str(srv.port), "--idle", "--hold",
             str(hold_s), "--connections", str(connections), "--cpu", str(LOADGEN_CPU)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = read_line(lg.stdout, 60.0)
            ok = line is not None and line.startswith(f"ready {connections}")
            time.sleep(0.5)  # let the server finish whatever the last round trips started
            alive = srv.proc.poll() is None
            rss1, vm1 = (srv.status("VmRSS"), srv.status("VmSize")) if alive else (0, 0)
            rest, err = lg.communicate(input="", timeout=60)  # closing stdin ends the hold
        finally:
            if lg.poll() is None:
                os.kill(lg.pid, signal.SIGKILL)
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


def section_idle(build, models, quick):
    n = 2000 if quick else 10000
    rows = []
    for model in models:
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
        if model in models:
            log(f"idle: {model} x 19000")
            big.append(idle_run(build, model, 19000))
    return {"idle": rows, "big": big}


class CpuSampler:
    """Samples a server's CPU time every 10 ms, to cut out loadgen's measured window."""

    def __init__(self, srv):
        self.srv, self.samples, self.stop_flag = srv, [], False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def sample(self):
        try:
            self.samples.append((time.monotonic_ns(), self.srv.cpu_ns()))
            return True
        except (OSError, IndexError, ValueError):
            return False  # the server is gone

    def loop(self):
        while not self.stop_flag and self.sample():
            time.sleep(0.01)

    def finish(self):
        self.stop_flag = True
        self.t.join()
        self.sample()  # one after loadgen ended, so the window's end is always covered

    def at(self, t_ns):
        """CPU ns at time t_ns, interpolated between samples."""
        s = self.samples
        for (t0, c0), (t1, c1) in zip(s, s[1:]):
            if t0 <= t_ns <= t1:
                return c0 + (c1 - c0) * (t_ns - t0) / max(1, t1 - t0)
        return None


def load_run(build, model, conns, depth, size, duration, warmup):
    srv = Server(build, model)
    try:
        sampler = CpuSampler(srv)
        cmd = [str(build / "bench" / "loadgen"), "--port", str(srv.port),
               "--connections", str(conns), "--depth", str(depth), "--size", str(size),
               "--duration", str(duration), "--warmup", str(warmup), "--cpu", str(LOADGEN_CPU),
               "--setup-timeout", "30", "--drain-timeout", "5"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                               stdin=subprocess.DEVNULL)
        finally:
            sampler.finish()
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        row = {"model": model, "connections": conns, "depth": depth, "size": size}
        if r.returncode != 0 or not lines:
            row["error"] = (r.stderr.strip() or f"exit {r.returncode}")[-300:]
            return row
        res = json.loads(lines[-1])
        row.update({k: res[k] for k in ("rps", "requests", "p50_us", "p99_us", "p999_us",
                                        "errors")})
        c0, c1 = sampler.at(res["window_from_ns"]), sampler.at(res["window_to_ns"])
        if c0 is not None and c1 is not None and res["requests"] > 0:
            cpu_s = (c1 - c0) / 1e9
            row["server_cpu_s"] = cpu_s
            row["cpu_us_per_req"] = cpu_s / res["requests"] * 1e6
        return row
    finally:
        srv.stop()


def section_load(build, models, quick, repeats, duration, warmup):
    matrix = QUICK_MATRIX if quick else MATRIX
    rows = []
    total = len(matrix) * len(models) * repeats
    done = 0
    for rep in range(repeats):
        for point in matrix:
            # Rotate the order each repeat, so drift in the machine's load hits every model.
            order = models[rep % len(models):] + models[:rep % len(models)]
            for model in order:
                done += 1
                log(f"load {done}/{total}: {model} conns={point[0]} depth={point[1]} "
                    f"size={point[2]} rep={rep + 1}")
                row = load_run(build, model, *point, duration, warmup)
                row["rep"] = rep
                rows.append(row)
                if "error" in row:
                    log(f"  FAILED: {row['error']}")
    big = []
    for model in ["coio-epoll", "coio-io_uring"]:
        if model in models and not quick:
            # A longer warm-up: the first requests of 19,000 fresh connections queue behind
            # 19,000 accepts, which on a loaded core can outlast the usual warm-up.
            log(f"load: {model} x 19000 connections")
            big.append(load_run(build, model, 19000, 1, 64, duration, 3.0))
    return {"load": rows, "big_load": big}


def perf_usable():
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and "not supported" not in r.stderr and "sys_enter" in r.stderr


def section_syscalls(build, models, duration, warmup):
    """Syscalls per echoed request (perf's raw_syscalls:sys_enter tracepoint on the server
    PID) at 100 connections, depth 1, 64 B: where a server makes more kernel calls than the
    raw loop, this shows it without depending on how loaded the machine is."""
    if not perf_usable():
        log("syscalls: perf with the raw_syscalls tracepoint is not usable here, skipped")
        return []
    rows = []
    for model in models:
        if model == "threads":
            continue  # blocking recv/send: 2 per request by construction
        log(f"syscalls: {model}")
        srv = Server(build, model)
        out = LOG_DIR[0] / f"perf-{model}.csv"
        try:
            perf = subprocess.Popen(["perf", "stat", "-x,", "-o", str(out), "-e",
                                     "raw_syscalls:sys_enter", "-p", str(srv.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)  # perf attaches
            r = subprocess.run(
                [str(build / "bench" / "loadgen"), "--port", str(srv.port), "--connections",
                 "100", "--depth", "1", "--size", "64", "--duration", str(duration),
                 "--warmup", str(warmup), "--cpu", str(LOADGEN_CPU)],
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
            os.kill(perf.pid, signal.SIGINT)
            perf.wait(timeout=20)
        finally:
            if perf.poll() is None:
                os.kill(perf.pid, signal.SIGKILL)
                perf.wait(timeout=5)
            srv.stop()
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        count = None
        for line in out.read_text().splitlines():
            if "raw_syscalls:sys_enter" in line:
                count = int(line.split(",")[0])
        if r.returncode != 0 or not lines or count is None:
            rows.append({"model": model, "error": r.stderr.strip()[-200:] or "no count"})
            continue
        res = json.loads(lines[-1])
        # perf counted the whole run: warm-up and the 100 connects too. Requests over the
        # whole run are estimated from the measured rate; the connects add ~3 per connection.
        total_req = res["rps"] * (duration + warmup)
        rows.append({"model": model, "syscalls": count, "requests_est": total_req,
                     "syscalls_per_request": count / total_req})
    return rows


def backends(build):
    r = subprocess.run([str(build / "bench" / "coio_echo_server"), "--list-backends"],
                       capture_output=True, text=True, timeout=10)
    return [b for b in r.stdout.split() if b in ("epoll", "io_uring")]


def available_models(build):
    have = backends(build)
    out = []
    for name, (binary, env, _) in MODELS.items():
        if not (build / "bench" / binary).exists():
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
    ap.add_argument("--quick", action="store_true", help="small, fast smoke run")
    ap.add_argument("--only", default="micro,demo,idle,syscalls,load")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--models", default="", help="comma-separated subset of " +
                    ",".join(MODELS))
    args = ap.parse_args()
    build, out = Path(args.build), Path(args.out)
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    LOG_DIR[0] = raw
    for old in raw.glob("server-*.log"):
        old.unlink()
    models = available_models(build)
    if args.models:
        models = [m for m in models if m in args.models.split(",")]
    sections = args.only.split(",")
    results = {"machine": machine_info(), "models": models, "quick": args.quick,
               "refs": {m: MODELS[m][2] for m in models},
               "duration_s": args.duration, "warmup_s": args.warmup,
               "repeats": 1 if args.quick else args.repeats}
    t0 = time.monotonic()
    try:
        if "micro" in sections:
            results["micro"] = section_micro(build, raw, args.quick)
        if "demo" in sections:
            results["demo"] = section_demo(build, args.quick)
        if "idle" in sections:
            results["idle"] = section_idle(build, models, args.quick)
        if "syscalls" in sections:
            results["syscalls"] = section_syscalls(build, models, args.duration, args.warmup)
        if "load" in sections:
            results["load"] = section_load(build, models, args.quick, results["repeats"],
                                           args.duration, args.warmup)
    finally:
        cleanup()
    results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    results["elapsed_s"] = time.monotonic() - t0
    (raw / "results.json").write_text(json.dumps(results, indent=1))
    log(f"measured in {results['elapsed_s']:.0f} s; writing the report")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import report  # bench/report.py
    report.write(results, out)
    log(f"wrote {out / 'latest.md'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
