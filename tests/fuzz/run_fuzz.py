#!/usr/bin/env python3
"""Run one libFuzzer target for a bounded time and report its executions.

Used by the meson suite "fuzz" (a short pass) and by scripts/fuzz (long runs).
New inputs go to a scratch corpus under --work, seeded from the in-tree corpus
(tests/fuzz/corpus/NAME), which is only read. A crash, an invariant failure or
a sanitizer report makes libFuzzer exit non-zero and write the input to
WORK/artifacts/; this script then prints the log's end and the reproducer.
"""
import argparse
import os
import re
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--corpus", required=True, help="in-tree seed corpus (read only)")
    ap.add_argument("--work", required=True, help="scratch dir: corpus, artifacts, log")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--max-len", type=int, default=4096)
    ap.add_argument("--unit-timeout", type=int, default=10,
                    help="seconds one input may take (libFuzzer -timeout); raise it on a "
                         "loaded machine, where a starved process looks hung")
    ap.add_argument("--extra", default="", help="more libFuzzer flags, space-separated")
    args = ap.parse_args()

    work_corpus = os.path.join(args.work, "corpus")
    artifacts = os.path.join(args.work, "artifacts")
    os.makedirs(work_corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [args.target,
           f"-max_total_time={args.seconds}", f"-max_len={args.max_len}",
           f"-timeout={args.unit_timeout}", "-rss_limit_mb=2560", "-print_final_stats=1",
           f"-artifact_prefix={artifacts}/"]
    dictionary = os.path.join(here, args.name + ".dict")
    if os.path.exists(dictionary):
        cmd.append(f"-dict={dictionary}")
    cmd += args.extra.split()
    cmd += [work_corpus, args.corpus]
    env = dict(os.environ)
    # Every throw makes ASan collect the whole fake stack (the one that
    # catches stack-use-after-return) at the next call; at its default size
    # (2^20 bytes per frame size class) that took 45-50% of the stream reader
    # fuzzer's time (perf: __asan::FakeStack::GC), which throws on most
    # inputs. 2^16 is plenty for these shallow stacks (coroutine frames are
    # on the heap) and ran it 2.5 times as fast.
    env.setdefault("ASAN_OPTIONS", "detect_stack_use_after_return=1:abort_on_error=1:"
                   "max_uar_stack_size_log=16")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    log_path = os.path.join(args.work, "log.txt")
    start = time.monotonic()
    with open(log_path, "w") as log:
        # libFuzzer's own bound is max_total_time; this one catches a hang
        # outside an input (it has -timeout for those).
        try:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                timeout=args.seconds + 120).returncode
        except subprocess.TimeoutExpired:
            rc = -1
            print(f"fuzz {args.name}: did not stop within {args.seconds + 120} s", file=sys.stderr)
    elapsed = time.monotonic() - start
    text = open(log_path, errors="replace").read()
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    runs = int(m.group(1)) if m else 0
    if not m:
        m = re.search(r"Done (\d+) runs", text)
        runs = int(m.group(1)) if m else 0
    files = len(os.listdir(work_corpus))
    print(f"fuzz {args.name}: {runs} executions in {elapsed:.0f} s "
          f"({runs / max(elapsed, 1e-9):.0f}/s), corpus {files} inputs, rc {rc}")
    if rc != 0:
        print("".join(text.splitlines(keepends=True)[-60:]), file=sys.stderr)
        crashes = sorted(os.listdir(artifacts))
        for c in crashes:
            print(f"reproduce: {args.target} {' '.join(args.extra.split())} "
                  f"{os.path.join(artifacts, c)}", file=sys.stderr)
        return 1
    if runs == 0:
        print(f"fuzz {args.name}: no executions counted (see {log_path})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
