#!/usr/bin/env python3
"""Run a command with the fault shim (faultshim.so) preloaded, then check
what the shim injected.

    run_faults.py --shim build/tests/faults/libfaultshim.so --seed 1 --pct 20 \\
        --kinds eagain,short,abort --expect eagain,short_read,short_write -- CMD...

The shim goes into the command's environment (LD_PRELOAD), or, with --wrap
PATH, only into the processes started from PATH: each argument equal to PATH
is replaced by a wrapper script that execs PATH with the shim, so a Python
driver (tests/logcollect) runs unfaulted while the programs it starts are
faulted. With ASan built as a shared library (g++), libasan must come first
in LD_PRELOAD; that is done when the program links it.

The counters of every faulted process are summed (FAULT_REPORT_DIR); the run
fails if the command fails, or if a kind named by --expect was injected 0
times (then nothing was exercised; a+b: both together). The seed and a command to replay the run
are printed either way.
"""
import argparse
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HEADER_BYTES = 256


def libasan_of(path):
    """The shared libasan the program links (g++ ASan), or None."""
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if "libasan.so" in line and "=>" in line:
            return line.split("=>")[1].split("(")[0].strip()
    return None


def preload_for(program, shim):
    asan = libasan_of(program)
    return f"{asan}:{shim}" if asan else shim


def read_counters(report_dir):
    totals = {}
    processes = 0
    for name in sorted(os.listdir(report_dir)):
        if not name.startswith("shim."):
            continue
        data = open(os.path.join(report_dir, name), "rb").read()
        names = data[:HEADER_BYTES].split(b"\n")[0].decode().split()[1:]
        if not names:
            continue  # the process died before it mapped its counters
        processes += 1
        body = data[HEADER_BYTES:HEADER_BYTES + 8 * len(names)]
        for i, n in enumerate(names):
            totals[n] = totals.get(n, 0) + int.from_bytes(body[8 * i:8 * i + 8], "little")
    return totals, processes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shim", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--pct", default="20")
    ap.add_argument("--kinds", default="eagain,short,abort")
    ap.add_argument("--expect", default="",
                    help="counters that must be > 0 (a+b: their sum must be)")
    ap.add_argument("--wrap", action="append", default=[],
                    help="fault only the processes started from this program")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        ap.error("no command")
    shim = os.path.abspath(args.shim)

    work = tempfile.mkdtemp(prefix="coio-faults-")
    report_dir = os.path.join(work, "reports")
    os.mkdir(report_dir)
    fault_env = {
        "FAULT_SEED": str(args.seed),
        "FAULT_PCT": str(args.pct),
        "FAULT_KINDS": args.kinds,
        "FAULT_REPORT_DIR": report_dir,
    }
    env = dict(os.environ)
    env.setdefault("COIO_BACKEND", "epoll")
    if args.wrap:
        for path in args.wrap:
            real = os.path.abspath(path)
            wrapper = os.path.join(work, "faulty-" + os.path.basename(real))
            exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in fault_env.items())
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\n" + exports +
                        f"export LD_PRELOAD={shlex.quote(preload_for(real, shim))}\n"
                        f"exec {shlex.quote(real)} \"$@\"\n")
            os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
            cmd = [wrapper if a == path else a for a in cmd]
    else:
        env.update(fault_env)
        env["LD_PRELOAD"] = preload_for(cmd[0], shim)

    replay = " ".join([f"{k}={shlex.quote(v)}" for k, v in fault_env.items()
                       if k != "FAULT_REPORT_DIR"] +
                      [f"COIO_BACKEND={env['COIO_BACKEND']}"])
    print(f"faults: seed {args.seed}, {args.pct}% of eligible calls, kinds {args.kinds}",
          flush=True)
    start = time.monotonic()
    try:
        rc = subprocess.run(cmd, env=env, timeout=args.timeout).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    elapsed = time.monotonic() - start
    totals, processes = read_counters(report_dir)
    shown = " ".join(f"{k}={v}" for k, v in totals.items())
    print(f"faults: {processes} faulted process(es), {shown} ({elapsed:.1f} s)")
    failed = rc != 0
    if failed:
        print(f"faults: FAILED with seed {args.seed}: exit {rc}", file=sys.stderr)
    for kind in filter(None, args.expect.split(",")):
        if sum(totals.get(k, 0) for k in kind.split("+")) == 0:
            print(f"faults: FAILED: 0 injections of '{kind}' - nothing was exercised "
                  f"(seed {args.seed})", file=sys.stderr)
            failed = True
    if failed:
        wraps = "".join(f" --wrap {shlex.quote(w)}" for w in args.wrap)
        print(f"replay: {sys.argv[0]} --shim {shlex.quote(shim)} --seed {args.seed} "
              f"--pct {args.pct} --kinds {args.kinds}{wraps} -- "
              f"{' '.join(shlex.quote(a) for a in args.cmd if a != '--')}\n"
              f"   (the shim's settings: {replay})", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
