"""examples/subprocess_demo: a command's output printed line by line as it
comes (the timestamps show lines arriving apart, not all at the end), stderr
joined to stdout, the command's exit code passed on, a timeout that ends the
command with SIGTERM (exit 124), one that ignores SIGTERM killed after the
grace second, and a missing program (exit 127, its name in the message)."""
import argparse
import asyncio
import re
import time

from exsupport import Example, check, run


async def finish(ex, timeout=20):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while ex.p.poll() is None:
        if loop.time() > end:
            ex.kill()
            raise AssertionError(f"{ex.name} did not exit within {timeout} s")
        await asyncio.sleep(0.02)
    return ex.p.returncode


def stamps(out):
    """(seconds, text) for each '[  1.23 s] text' line."""
    return [(float(m.group(1)), m.group(2))
            for m in re.finditer(r"^\[\s*([0-9.]+) s\] (.*)$", out, re.M)]


async def body(workdir):
    ap = argparse.ArgumentParser()
    ap.add_argument("--subprocess-demo", required=True)
    demo = ap.parse_args().subprocess_demo

    # Lines as they come: b is printed about 0.3 s after a.
    ex = Example([demo, "sh", "-c", "echo a; sleep 0.3; echo b >&2; exit 3"], workdir, "lines")
    rc = await finish(ex)
    lines = stamps(ex.out())
    texts = [t for _, t in lines]
    check(rc == 3, f"exit code {rc}, not 3:\n{ex.out()}{ex.err()}")
    check("a" in texts and "b" in texts, f"lines missing:\n{ex.out()}")
    ta = next(s for s, t in lines if t == "a")
    tb = next(s for s, t in lines if t == "b")
    check(tb - ta >= 0.25, f"b came {tb - ta:.2f} s after a: not streamed\n{ex.out()}")
    check(any("exit code 3" in t for t in texts), f"no status line:\n{ex.out()}")

    # A timeout: SIGTERM ends the command, exit 124, well before its sleep ends.
    started = time.monotonic()
    ex = Example([demo, "--timeout", "0.3", "sh", "-c", "echo start; exec sleep 30"], workdir,
                 "timeout")
    rc = await finish(ex)
    check(rc == 124, f"exit code {rc}, not 124:\n{ex.out()}{ex.err()}")
    check(time.monotonic() - started < 10, "the timeout did not stop the command")
    out = ex.out()
    check("start" in out and "timed out: SIGTERM" in out, f"no timeout lines:\n{out}")
    check("killed by signal 15" in out, f"not ended by SIGTERM:\n{out}")

    # A command that ignores SIGTERM is killed after the grace second.
    ex = Example([demo, "--timeout", "0.3", "sh", "-c", "trap '' TERM; echo stubborn; sleep 30"],
                 workdir, "stubborn")
    rc = await finish(ex)
    out = ex.out()
    check(rc == 124, f"exit code {rc}, not 124:\n{out}{ex.err()}")
    check("SIGKILL" in out and "killed by signal 9" in out, f"not killed:\n{out}")

    # A program that does not exist.
    ex = Example([demo, "coio-no-such-program"], workdir, "missing")
    rc = await finish(ex)
    check(rc == 127, f"exit code {rc}, not 127")
    check("'coio-no-such-program'" in ex.err() and "No such file" in ex.err(),
          f"message does not name the program:\n{ex.err()}")


run(body, 60)
