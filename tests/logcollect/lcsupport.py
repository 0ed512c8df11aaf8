"""Shared helpers for the coio-logcollect tests (tests/logcollect/test_*.py).

Every test is a Python asyncio program run by meson once per backend (the
COIO_BACKEND environment variable is passed on to the programs it starts). It
  - exits 77 (meson: SKIP) when that backend cannot run here,
  - starts processes with their output in files of a temporary directory and
    ends them only by their own PIDs,
  - binds to 127.0.0.1 port 0 and reads the port back,
  - bounds every wait with a timeout, and the whole test with another.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

SKIP = 77
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "log_collector"))
import check_output  # noqa: E402  (log_source's payload generator, the output parser)
from check_output import payload  # noqa: E402


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collector", required=True)
    ap.add_argument("--log-source", required=True)
    ap.add_argument("--loops", type=int, default=None,
                    help="run every collector this test starts with --loops N")
    return ap.parse_args()


INSIDE_NAMESPACE = "COIO_LC_IN_NAMESPACE"


def run_in_namespace(kind):
    """Run this test again in a private namespace it makes itself - "mount"
    (unshare -m: mounts made in it vanish with it) or "net" (unshare -n: a
    private loopback for nft rules) - and exit with its status. Exits 77 with
    the reason when that is not permitted here. Returns at once inside it."""
    if os.environ.get(INSIDE_NAMESPACE) == kind:
        return
    flag = {"mount": "-m", "net": "-n"}[kind]
    argv = ["unshare", flag] if os.geteuid() == 0 else ["unshare", "-Ur", flag]
    if shutil.which("unshare") is None:
        print("SKIP: unshare (util-linux) is not installed")
        sys.exit(SKIP)
    probe = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        print(f"SKIP: cannot make a private {kind} namespace here: {probe.stderr.strip()}")
        sys.exit(SKIP)
    env = dict(os.environ, **{INSIDE_NAMESPACE: kind})
    sys.exit(subprocess.run([*argv, sys.executable, *sys.argv], env=env).returncode)


def skip_unless_backend(collector):
    want = os.environ.get("COIO_BACKEND", "")
    if want and want != "auto":
        out = subprocess.run([collector, "--list-backends"], capture_output=True, text=True,
                             timeout=30).stdout.split()
        name = "io_uring" if want == "uring" else want
        if name not in out:
            print(f"SKIP: backend {want} is not available here")
            sys.exit(SKIP)


async def wait_port_free(port, timeout):
    """Return once 127.0.0.1:port can be bound again (SO_REUSEADDR, as a
    server binds), within `timeout` seconds. A process killed with io_uring
    operations in flight on its listening socket has exited before the kernel
    drops them: the ring is torn down asynchronously after the exit (5-8 ms
    here), and until then the socket, and so its port, lives on. Nothing
    announces the moment it is freed, so this tries every 2 ms."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError as e:
                check(time.monotonic() < deadline, f"port {port} still taken after {timeout} s: {e}")
        await asyncio.sleep(0.002)


class Proc:
    """A child process; stdout and stderr go to files. Ended by its PID only."""

    def __init__(self, argv, workdir, name, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.out_path = workdir / f"{name}.out"
        self.err_path = workdir / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = subprocess.Popen(self.argv, stdout=out, stderr=err,
                                      stdin=subprocess.DEVNULL, env=env)
        self.pid = self.p.pid

    def out(self):
        return self.out_path.read_text(errors="replace")

    def err(self):
        return self.err_path.read_text(errors="replace")

    def running(self):
        return self.p.poll() is None

    def send(self, sig):
        if self.running():
            os.kill(self.pid, sig)

    async def wait_text(self, pattern, timeout, stream="out", count=1):
        """Wait until `pattern` (a regex) matches `count` times in stdout/stderr."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.out() if stream == "out" else self.err()
            found = rx.findall(text)
            if len(found) >= count:
                return found
            if not self.running() and len(rx.findall(self.out() if stream == "out" else self.err())) < count:
                raise Failure(f"{self.name} exited ({self.p.returncode}) before printing "
                              f"{pattern!r}; stderr:\n{self.err()[-3000:]}")
            if time.monotonic() > deadline:
                raise Failure(f"{self.name}: no {pattern!r} within {timeout} s; stderr:\n"
                              f"{self.err()[-3000:]}")
            await asyncio.sleep(0.02)

    async def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                raise Failure(f"{self.name} (pid {self.pid}) did not exit within {timeout} s")
            await asyncio.sleep(0.02)
        return self.p.returncode

    async def stop(self, sig=signal.SIGTERM, timeout=15):
        self.send(sig)
        return await self.wait_exit(timeout)


class Test:
    def __init__(self, name):
        self.name = name
        self.a = args()
        skip_unless_backend(self.a.collector)
        self.dir = Path(tempfile.mkdtemp(prefix=f"coio-lc-{name}-"))
        self.procs = []

    def spawn(self, argv, name, env=None):
        p = Proc(argv, self.dir, name, env)
        self.procs.append(p)
        return p

    async def log_source(self, *extra, name="log_source", ports=1):
        p = self.spawn([self.a.log_source, "--port", "0", *extra], name)
        found = await p.wait_text(r"^listening on 127\.0\.0\.1:(\d+)$", 15, count=ports)
        return p, [int(x) for x in found]

    def collector(self, *extra, name="collector", env=None):
        loops = [] if self.a.loops is None else ["--loops", self.a.loops]
        return self.spawn([self.a.collector, *loops, *extra], name, env)

    def cleanup(self, ok):
        for p in self.procs:
            if p.running():
                os.kill(p.pid, signal.SIGKILL)
                p.p.wait()
        if ok:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"(files kept in {self.dir})")

    def run(self, body, timeout):
        """Run `await body(self)` with an overall timeout; exit 0 / 1."""
        ok = False
        try:
            asyncio.run(asyncio.wait_for(body(self), timeout))
            ok = True
        except Failure as e:
            print(f"FAIL: {e}")
        except asyncio.TimeoutError:
            print(f"FAIL: test did not finish within {timeout} s")
        except Exception:  # a bug in the test or an unexpected error
            traceback.print_exc()
        finally:
            self.cleanup(ok)
        if ok:
            print(f"PASS: {self.name}")
        sys.exit(0 if ok else 1)


def records(path, torn_ok=False, growing=False):
    """The collector's output as (source, flag, text) tuples (check_output's
    parser: the same bytes, strict UTF-8, strict JSON); flag is '', '+'
    (piece, more follows) or '!' (aborted). A torn line (before a torn-record
    marker) fails the check unless torn_ok; a malformed line always does.
    growing: a running collector's output, read while it may be in the
    middle of appending a record - a last line without its newline is left
    out, not called torn - and that may not have created the file yet."""
    out = []
    if growing and not os.path.exists(path):
        return out
    for r in check_output.records(path, growing):
        check(r[0] != "malformed", f"a malformed line in the output: {r[-1][:80]!r}")
        check(r[0] != "torn" or torn_ok, f"a torn record in the output: {r[-1][:80]!r}")
        if r[0] == "record":
            out.append(r[1:])
    return out


def joined_lines(recs, source):
    """Reassemble lines of `source`: pieces are joined; an aborted record drops
    the pieces before it. Returns (complete lines, number of aborted records)."""
    lines, cur, aborted = [], [], 0
    for src, flag, text in recs:
        if src != source:
            continue
        if flag == "+":
            cur.append(text)
        elif flag == "!":
            cur, aborted = [], aborted + 1
        else:
            lines.append("".join(cur) + text)
            cur = []
    return lines, aborted


def summary_json(text):
    """The last JSON summary line log_source printed."""
    last = None
    for line in text.splitlines():
        if line.startswith("{") and '"sent"' in line:
            last = json.loads(line)
    check(last is not None, "log_source printed no summary")
    return last


def collector_loops(err_text):
    """The per-loop lines after the summary (--loops N > 1):
    {loop: {sources, lines, push}}."""
    rows = {}
    rx = re.compile(r"^loop (\d+): (\d+) pull sources, (\d+) lines, (\d+) push connections$",
                    re.M)
    for m in rx.finditer(err_text):
        rows[int(m.group(1))] = dict(sources=int(m.group(2)), lines=int(m.group(3)),
                                     push=int(m.group(4)))
    check(rows, "the collector printed no per-loop lines:\n" + err_text[-2000:])
    return rows


def collector_summary(err_text):
    """Rows of the collector's exit table: {source: {lines, bytes, reconnects, errors, cut}}."""
    rows, on = {}, False
    for line in err_text.splitlines():
        if line.startswith("source ") and "reconnects" in line:
            on = True
            continue
        if on:
            f = line.split()
            if len(f) == 6 and f[1].isdigit():
                rows[f[0]] = dict(zip(("lines", "bytes", "reconnects", "errors", "cut"),
                                      map(int, f[1:])))
    check(rows, "the collector printed no summary table:\n" + err_text[-2000:])
    return rows


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sanitized(exe):
    """True if `exe` was built with AddressSanitizer (its allocator keeps
    redzones, a quarantine and shadow memory: RSS bounds are looser)."""
    with open(exe, "rb") as f:
        return b"__asan_init" in f.read()


def raise_fd_limit():
    """Thousands of connections from one test: the soft fd limit up to the hard one."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def refusing_port():
    """(sock, port): a TCP socket bound to 127.0.0.1 but not listening, so
    connections to the port are refused - and, the port being taken, no
    outgoing connection can get it as its local port (a self-connect) and
    nobody else can listen there. listen() on the socket (or hand it to
    asyncio.start_server(sock=...)) to bring the source up."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def sh(*argv):
    """Runs a command (ip, nft, tc, ss) to completion; fails the test naming it
    and its stderr if it exits non-zero. Returns its stdout."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"{' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


async def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def expected_line(name, seed, seq, nbytes):
    return f"{name} {seq} {payload(seed, seq, nbytes)}"
