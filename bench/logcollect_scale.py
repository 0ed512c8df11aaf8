#!/usr/bin/env python3
"""bench/logcollect_scale.py - coio-logcollect with 10,000 sources on one loop (or --loops N).

Starts --processes log_source processes with --ports (sources / processes)
each - so 10,000 TCP sources - and one coio-logcollect reading all of them
from a --sources file, for every backend it can run (or --backend). Each
source sends --lines lines of --line-bytes payload as fast as the collector
acknowledges them. Reports per backend:

  connect_s      time until all sources were connected (from the stats lines)
  lines_per_s    lines written and acknowledged / time from start to the last ACK
  cpu_us_per_line  collector CPU (utime+stime from /proc/PID/stat) / lines
  kib_per_source (collector VmRSS with all sources connected - VmRSS of an
                 idle collector with no source) / sources
  peak_rss_mib   the collector's VmHWM

--loops N is passed to coio-logcollect (its sources spread over N loops;
cpu_us_per_line then counts every thread's CPU); the rows say which.

Not part of the test suite (it needs ~20,000 fds and a quiet machine).
Run:  python3 bench/logcollect_scale.py --build build/gcc [--sources 10000] [--loops 2]
Prints a table, then one JSON line per backend.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def run_backend(a, backend, work):
    env = dict(os.environ, COIO_BACKEND=backend)
    per = a.sources // a.processes
    procs = []
    try:
        # Idle collector: the baseline for memory per source.
        idle = subprocess.Popen([a.collector, "--loops", str(a.loops), "--listen", "0", "-o",
                                 os.devnull, "--stats-interval", "0"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(idle)
        time.sleep(0.5)
        base_kib = rss_kib(idle.pid)
        idle.send_signal(signal.SIGTERM)
        idle.wait(10)

        ports = []
        outs = []
        for i in range(a.processes):
            out = work / f"src{i}.out"
            outs.append(out)
            p = subprocess.Popen([a.log_source, "--port", "0", "--ports", str(per), "--name",
                                  f"s{i}", "--lines", str(a.lines), "--line-bytes",
                                  str(a.line_bytes), "--seed", str(i)], env=env,
                                 stdout=open(out, "w"), stderr=subprocess.DEVNULL)
            procs.append(p)
        for out in outs:
            wait_for(lambda: out.read_text().count("listening on") == per, 60, f"{out} ports")
            ports += re.findall(r"^listening on 127\.0\.0\.1:(\d+)$", out.read_text(), re.M)
        srcfile = work / "sources.txt"
        srcfile.write_text("".join(f"127.0.0.1:{p}\n" for p in ports))
        err = work / f"collector-{backend}.err"
        output = a.output or str(work / f"collected-{backend}.txt")
        t0 = time.monotonic()
        c = subprocess.Popen([a.collector, "--loops", str(a.loops), "--sources", str(srcfile),
                              "-o", output, "--stats-interval", "0.2"], env=env,
                             stdout=subprocess.DEVNULL, stderr=open(err, "w"))
        procs.append(c)
        connected_at = None
        total = a.sources * a.lines
        while True:
            if connected_at is None and f"{a.sources}/{a.sources} connected" in err.read_text():
                connected_at = time.monotonic() - t0
                conn_kib = rss_kib(c.pid)
            if all('"all_acked"' in o.read_text() for o in outs):
                break
            if c.poll() is not None:
                raise SystemExit(f"collector exited:\n{err.read_text()[-2000:]}")
            if time.monotonic() - t0 > a.timeout:
                raise SystemExit("timed out")
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(c.pid)
        rss_end = rss_kib(c.pid)
        hwm = rss_kib(c.pid, "VmHWM")
        if connected_at is None:  # finished before a stats line saw them all
            connected_at, conn_kib = float("nan"), rss_end
        c.send_signal(signal.SIGTERM)
        c.wait(60)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        mem_kib = max(conn_kib, rss_end)
        return dict(backend=backend, loops=a.loops, sources=a.sources, lines=total, seconds=round(elapsed, 2),
                    connect_s=round(connected_at, 2), lines_per_s=round(total / elapsed),
                    cpu_s=round(cpu, 2), cpu_us_per_line=round(cpu / total * 1e6, 2),
                    base_rss_kib=base_kib, rss_kib=mem_kib,
                    kib_per_source=round((mem_kib - base_kib) / a.sources, 2),
                    peak_rss_mib=round(hwm / 1024, 1))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/gcc", help="meson build directory")
    ap.add_argument("--sources", type=int, default=10000)
    ap.add_argument("--processes", type=int, default=10, help="log_source processes")
    ap.add_argument("--lines", type=int, default=100, help="lines per source")
    ap.add_argument("--line-bytes", type=int, default=64)
    ap.add_argument("--backend", help="only this backend")
    ap.add_argument("--output", help="collector output (default: a temporary file)")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--loops", type=int, default=1, help="coio-logcollect --loops N")
    a = ap.parse_args()
    a.collector = str(Path(a.build) / "examples" / "coio-logcollect")
    a.log_source = str(Path(a.build) / "examples" / "log_source")
    if a.sources % a.processes:
        ap.error("--sources must be a multiple of --processes")
    backends = [a.backend] if a.backend else subprocess.run(
        [a.collector, "--list-backends"], capture_output=True, text=True, check=True).stdout.split()
    rows = []
    with tempfile.TemporaryDirectory(prefix="coio-lc-scale-") as d:
        for b in backends:
            rows.append(run_backend(a, b, Path(d)))
    cols = ["backend", "loops", "sources", "lines", "seconds", "connect_s", "lines_per_s",
            "cpu_us_per_line", "kib_per_source", "peak_rss_mib"]
    print(" ".join(f"{c:>15}" for c in cols))
    for r in rows:
        print(" ".join(f"{r[c]!s:>15}" for c in cols))
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    sys.exit(main())
