"""bench/harness.py - the process side of bench/run.py: echo servers started and stopped by
PID, one loadgen run against a server with the server's counters read over exactly the
measured window, and perf attached to the server for that window.

What one load run measures about the server (all over loadgen's measured window):
  CPU time        sum of /proc/PID/task/*/schedstat (ns), sampled every 10 ms and
                  interpolated at the window's edges (threads: utime+stime, clock ticks);
  minor faults    /proc/PID/stat minflt (the whole process, ended threads included);
  context switches  voluntary / involuntary, summed over /proc/PID/task/*/status (for
                  thread-per-connection: the threads alive at the edges);
  with perf (a separate run: a tracepoint on every syscall costs the server 5-10% CPU,
  which must not reach the timed runs): syscalls (raw_syscalls:sys_enter) and mmap /
  munmap calls (syscalls:sys_enter_mmap / sys_enter_munmap), counted only between the
  window's edges through perf stat's control fifo.
loadgen announces the window ({"mode":"window",...}) before its warm-up starts, so the
edges are read while the run goes on.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
LOADGEN_CPU = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
PERF_EVENTS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_mmap", "syscalls:sys_enter_munmap"]

# name -> (binary relative to the build directory, extra environment, the raw reference
# loop it is compared with)
MODELS = {
    "coio-epoll": ("bench/coio_echo_server", {"COIO_BACKEND": "epoll"}, "raw-epoll"),
    "coio-io_uring": ("bench/coio_echo_server", {"COIO_BACKEND": "io_uring"}, "raw-io_uring"),
    "raw-epoll": ("bench/raw_epoll_echo", {}, None),
    "raw-io_uring": ("bench/raw_uring_echo", {}, None),
    "asio": ("bench/asio_echo", {}, "raw-epoll"),
    "tokio": ("tokio/release/tokio_echo", {}, "raw-epoll"),
    "selectors": ("bench/selectors_echo", {}, "raw-epoll"),
    "threads": ("bench/thread_echo_server", {}, "raw-epoll"),
}
# The TLS echo servers (bench/tls_section.py; issue 12 item 8), the same shape, kept apart:
# they need a certificate (Server's args) and loadgen --tls, so the plain sections never
# pick them. Their reference is Asio's ssl::stream.
TLS_MODELS = {
    "coio-tls-epoll": ("bench/coio_tls_echo", {"COIO_BACKEND": "epoll"}, "asio-tls"),
    "coio-tls-io_uring": ("bench/coio_tls_echo", {"COIO_BACKEND": "io_uring"}, "asio-tls"),
    "asio-tls": ("bench/asio_tls_echo", {}, None),
}
ALL_MODELS = {**MODELS, **TLS_MODELS}

# Extra server arguments, and the models that run unpinned - server and loadgen both free
# to use every core (bench/loops_section.py: a server on 2 loops on this 2-core machine).
SERVER_ARGS = {}
UNPINNED = set()

STARTED = []  # Popen objects still running (servers, loadgen, perf), killed on any exit
LOG_DIR = [ROOT / "bench" / "results" / "raw"]  # servers' stderr: LOG_DIR/server-<model>.log


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_line(stream, timeout):
    """Reads one line from a pipe, or None after `timeout` seconds."""
    result = []
    t = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else None


def stop_process(proc, grace=5):
    """SIGTERM (SIGINT for perf), then SIGKILL after `grace` seconds; by PID only."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc in STARTED:
        STARTED.remove(proc)


def cleanup():
    for p in list(STARTED):
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        STARTED.remove(p)


class Server:
    """One echo server process: started pinned to SERVER_CPU (unless UNPINNED), stopped by
    PID; `args` are extra options (a TLS server's certificate), after SERVER_ARGS'."""

    def __init__(self, build, model, args=()):
        binary, env, _ = ALL_MODELS[model]
        self.model = model
        with open(LOG_DIR[0] / f"server-{model}.log", "a") as err:
            self.proc = subprocess.Popen(
                [str(build / binary), "--port", "0"]
                + ([] if model in UNPINNED else ["--cpu", str(SERVER_CPU)])
                + SERVER_ARGS.get(model, []) + list(args),
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                env=dict(os.environ, **env), text=True)
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
        """CPU time of the whole process (all threads) in ns: schedstat (ns resolution) for
        single-threaded servers, utime + stime (clock ticks, ended threads included) for
        thread-per-connection."""
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
        fields = self.stat_fields()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK

    def stat_fields(self):
        with open(f"/proc/{self.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()  # fields[0] is the state (field 3)

    def counters(self):
        """Minor faults and context switches so far, with the time they were read."""
        t = time.monotonic_ns()
        minflt = int(self.stat_fields()[7])
        vol = invol = 0
        for task in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            vol += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches:"):
                            invol += int(line.split()[1])
            except FileNotFoundError:
                pass
        return {"t_ns": t, "minflt": minflt, "csw_vol": vol, "csw_invol": invol}

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
        return 0

    def stop(self):
        stop_process(self.proc)
        self.proc.stdout.close()


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


def perf_usable():
    """True when perf can count the syscall tracepoints here (a VM may refuse them)."""
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(PERF_EVENTS), "--", "true"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return (r.returncode == 0 and "not supported" not in r.stderr
            and all(e in r.stderr for e in PERF_EVENTS))


class Perf:
    """perf stat on the server PID, started disabled and switched on and off at the
    window's edges through its control fifo (perf >= 5.10: -D -1 --control)."""

    def __init__(self, pid):
        self.dir = tempfile.TemporaryDirectory(prefix="coio-perf-")
        d = Path(self.dir.name)
        self.ctl, self.ack, self.out = d / "ctl", d / "ack", d / "out.csv"
        os.mkfifo(self.ctl)
        os.mkfifo(self.ack)
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x,", "-o", str(self.out), "-D", "-1", "--control",
             f"fifo:{self.ctl},{self.ack}", "-e", ",".join(PERF_EVENTS), "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        STARTED.append(self.proc)
        # perf opens both fifos itself; O_RDWR here never blocks on a fifo.
        self.ctl_fd = os.open(self.ctl, os.O_RDWR)
        self.ack_fd = os.open(self.ack, os.O_RDWR)

    def command(self, what):
        os.write(self.ctl_fd, f"{what}\n".encode())
        t = threading.Thread(target=lambda: os.read(self.ack_fd, 16), daemon=True)
        t.start()
        t.join(10)

    def finish(self):
        """Stops perf and returns {event: count} (None where perf counted nothing)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc in STARTED:
            STARTED.remove(self.proc)
        os.close(self.ctl_fd)
        os.close(self.ack_fd)
        counts = {}
        if self.out.exists():
            for line in self.out.read_text().splitlines():
                parts = line.split(",")
                if len(parts) > 2 and parts[2] in PERF_EVENTS:
                    counts[parts[2]] = int(parts[0]) if parts[0].isdigit() else None
        self.dir.cleanup()
        return counts


def sleep_until(t_ns):
    while True:
        left = t_ns - time.monotonic_ns()
        if left <= 0:
            return
        time.sleep(left / 1e9)


def read_edges(srv, perf, from_ns, to_ns):
    """The server's counters at the window's edges, perf counting only between them;
    [] if the server is gone."""
    try:
        sleep_until(from_ns)
        first = srv.counters()
        if perf:
            perf.command("enable")
        sleep_until(to_ns)
        if perf:
            perf.command("disable")
        return [first, srv.counters()]
    except (OSError, IndexError, ValueError):
        return []


def load_run(build, model, point, duration, warmup, with_perf=False, setup_timeout=30,
             server_args=(), loadgen_args=()):
    """One loadgen run against a fresh server: returns a row of results and counters.
    server_args / loadgen_args are extra options (TLS: certificate, --tls, --reconnect)."""
    conns, depth, size = point
    row = {"model": model, "connections": conns, "depth": depth, "size": size,
           "perf": with_perf}
    srv = Server(build, model, server_args)
    perf = None
    lg = None
    err = tempfile.TemporaryFile(mode="w+")
    try:
        if with_perf:
            perf = Perf(srv.pid)
        sampler = CpuSampler(srv)
        cmd = [str(build / "bench" / "loadgen"), "--port", str(srv.port),
               "--connections", str(conns), "--depth", str(depth), "--size", str(size),
               "--duration", str(duration), "--warmup", str(warmup),
               "--setup-timeout", str(setup_timeout), "--drain-timeout", "5", *loadgen_args]
        if model not in UNPINNED:
            cmd += ["--cpu", str(LOADGEN_CPU)]
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                              stdin=subprocess.DEVNULL)
        STARTED.append(lg)
        edges = []
        line = read_line(lg.stdout, setup_timeout + 10)
        if line and '"window"' in line:
            w = json.loads(line)
            edges = read_edges(srv, perf, w["from_ns"], w["to_ns"])
        try:
            rest, _ = lg.communicate(timeout=duration + warmup + 80)
        finally:
            sampler.finish()
            stop_process(lg)
        lines = [l for l in ((line or "") + rest).splitlines() if l.startswith('{"mode":"load"')]
        if lg.returncode != 0 or not lines:
            err.seek(0)
            row["error"] = (err.read().strip() or f"loadgen exit {lg.returncode}")[-300:]
            return row
        if len(edges) != 2:
            row["error"] = "the server's counters could not be read at the window's edges"
            return row
        res = json.loads(lines[-1])
        row.update({k: res[k] for k in ("rps", "requests", "p50_us", "p99_us", "p999_us",
                                        "max_us", "errors")})
        n = res["requests"]
        c0, c1 = sampler.at(res["window_from_ns"]), sampler.at(res["window_to_ns"])
        if c0 is not None and c1 is not None and n > 0:
            row["server_cpu_s"] = (c1 - c0) / 1e9
            row["cpu_us_per_req"] = (c1 - c0) / 1e3 / n
        if n > 0:
            a, b = edges
            for k in ("minflt", "csw_vol", "csw_invol"):
                row[f"{k}_per_req"] = (b[k] - a[k]) / n
            row["edge_skew_ms"] = max(a["t_ns"] - res["window_from_ns"],
                                      b["t_ns"] - res["window_to_ns"]) / 1e6
        if perf:
            counts = perf.finish()
            perf = None
            sc, mm, mu = (counts.get(e) for e in PERF_EVENTS)
            if n > 0 and None not in (sc, mm, mu):
                row["syscalls_per_req"] = sc / n
                row["mmap_per_req"] = mm / n
                row["munmap_per_req"] = mu / n
        return row
    finally:
        if perf:
            perf.finish()
        if lg is not None and lg.poll() is None:
            stop_process(lg)
        err.close()
        srv.stop()
