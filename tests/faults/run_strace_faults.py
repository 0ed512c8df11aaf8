#!/usr/bin/env python3
"""Run a test program on the io_uring backend with io_uring_enter failing now
and then (RELIABILITY 33): strace injects the error, so the real kernel call
is skipped and the backend sees -ERRNO from io_uring_submit / _and_wait, with
its SQEs still in the ring.

    run_strace_faults.py --errno EINTR --when 2+3 -- CMD...

The LD_PRELOAD shim cannot do this (liburing enters the kernel by a raw
syscall). strace stops only at io_uring_enter (--seccomp-bpf), follows
threads (-f) and writes what it injected to a log; the run fails if the
command fails or if nothing was injected (then nothing was exercised). The
replay command is printed either way. Exit 77 (skip) where ptrace is refused.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--errno", required=True, help="EINTR, EAGAIN, EBUSY, ...")
    ap.add_argument("--when", default="2+3", help="strace's when= (2+3: the 2nd call, every 3rd after)")
    ap.add_argument("--timeout", type=float, default=170)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    strace = shutil.which("strace")
    if not strace:
        print("SKIP: strace is not installed")
        return SKIP
    probe = subprocess.run([strace, "-qq", "-o", os.devnull, "true"], capture_output=True,
                           text=True, timeout=30)
    if probe.returncode != 0:
        print(f"SKIP: strace cannot trace here: {probe.stderr.strip()}")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="coio-strace-") as tmp:
        log = os.path.join(tmp, "strace.log")
        full = [strace, "-f", "--seccomp-bpf", "-qq", "-o", log, "-e", "trace=io_uring_enter",
                "-e", f"inject=io_uring_enter:error={a.errno}:when={a.when}"] + cmd
        replay = "COIO_BACKEND=io_uring " + shlex.join(full)
        env = dict(os.environ, COIO_BACKEND="io_uring")
        # LeakSanitizer cannot run under ptrace (it stops the process with
        # ptrace itself): a sanitized build runs with its leak check off here;
        # the same tests run without strace, leak check on, elsewhere.
        asan = env.get("ASAN_OPTIONS", "")
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "detect_leaks=0"
        try:
            r = subprocess.run(full, env=env, timeout=a.timeout)
            status = r.returncode
        except subprocess.TimeoutExpired:
            status = "timeout"
        injected = calls = 0
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                for line in f:
                    if "io_uring_enter(" in line:
                        calls += 1
                        injected += "(INJECTED)" in line
        print(f"io_uring_enter: {calls} calls, {injected} failed with {a.errno} (injected)")
        print(f"replay: {replay}")
        if status == SKIP:
            print("SKIP: the program skipped itself (no io_uring here?)")
            return SKIP
        if status != 0:
            print(f"FAIL: the program exited with {status} under injected {a.errno}")
            return 1
        if injected == 0:
            print("FAIL: nothing was injected (the program made no io_uring_enter call?)")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
