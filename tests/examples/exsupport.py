"""Shared by the example tests (tests/examples/test_*.py): start an example
program, read the address it prints, stop it by its own PID, and run the
test body under a deadline. Run by meson once per backend (COIO_BACKEND is
passed on); a backend that cannot run here makes the test exit 77 (SKIP)."""
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

SKIP = 77


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Example:
    """An example program with stdout and stderr in files; ended by its PID."""

    def __init__(self, argv, workdir, name):
        self.name = name
        self.out_path = Path(workdir) / f"{name}.out"
        self.err_path = Path(workdir) / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err,
                                      stdin=subprocess.DEVNULL)

    def out(self):
        return self.out_path.read_text(errors="replace")

    def err(self):
        return self.err_path.read_text(errors="replace")

    async def port(self, timeout=10):
        """The port from the 'listening on 127.0.0.1:PORT' line."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.out())
            if m:
                return int(m.group(1))
            if self.p.poll() is not None:
                err = self.err()
                if "backend" in err and os.environ.get("COIO_BACKEND"):
                    print(f"SKIP: {err.strip()}")
                    sys.exit(SKIP)
                raise Failure(f"{self.name} exited with {self.p.returncode}:\n{err}")
            await asyncio.sleep(0.02)
        raise Failure(f"{self.name} printed no address:\n{self.out()}\n{self.err()}")

    async def stop(self, sig=signal.SIGINT, timeout=10):
        """Send `sig` and wait for the exit status (killed after `timeout`)."""
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.p.poll() is None and loop.time() < end:
            await asyncio.sleep(0.02)
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
            raise Failure(f"{self.name} did not exit within {timeout} s of {sig.name}")
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()


def run(body, deadline):
    """Runs `body(workdir)` with a deadline; prints the failure and exits 1."""
    with tempfile.TemporaryDirectory(prefix="coio-example-") as workdir:
        try:
            asyncio.run(asyncio.wait_for(body(workdir), deadline))
        except Failure as e:
            print(f"FAIL: {e}")
            sys.exit(1)
        except Exception:
            traceback.print_exc()
            sys.exit(1)
    print("ok")
