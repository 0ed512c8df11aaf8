#!/usr/bin/env python3
"""RELIABILITY 32 for a whole program, with io_uring denied by no_uring:

1. COIO_BACKEND unset: the program's loop picks epoll (its output names the
   backend) and serves an echo round trip.
2. COIO_BACKEND=io_uring: it fails at startup - an exit status, not a signal
   or a hang - with an error naming io_uring and why (EPERM).

    no_uring_check.py NO_URING BACKEND_PROBE
"""
import os
import subprocess
import sys


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, env):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        fail(f"{cmd} did not exit within 30 s")


def main():
    no_uring, probe = sys.argv[1], sys.argv[2]
    env = {k: v for k, v in os.environ.items() if k != "COIO_BACKEND"}

    r = run([no_uring, probe], env)
    if r.returncode != 0 or r.stdout.strip() != "backend epoll: echo ok":
        fail(f"automatic selection with io_uring denied: exit {r.returncode}, "
             f"stdout {r.stdout!r}, stderr {r.stderr!r}")
    print(f"ok: io_uring denied, automatic selection: {r.stdout.strip()}")

    env["COIO_BACKEND"] = "io_uring"
    r = run([probe], env)
    if r.returncode != 0:
        print(f"note: io_uring does not run here even without the filter ({r.stderr.strip()}); "
              "the explicit-request check is skipped")
        return 0
    r = run([no_uring, probe], env)
    if r.returncode <= 0:
        fail(f"COIO_BACKEND=io_uring with io_uring denied: exit status {r.returncode} "
             f"(want a failure status, not success or a signal); stderr {r.stderr!r}")
    if "io_uring" not in r.stderr or "Operation not permitted" not in r.stderr:
        fail(f"the error does not name io_uring and EPERM: {r.stderr!r}")
    print(f"ok: COIO_BACKEND=io_uring fails at startup: {r.stderr.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
