#!/usr/bin/python3
"""bench/tls_smoke.py - the TLS bench pieces work end to end (meson test bench-tls-*): a
throwaway certificate, then for the TLS echo server given (coio_tls_echo on $COIO_BACKEND,
or asio_tls_echo) loadgen --tls verifies every echoed byte at depth 4 x 4 KiB, cycles
--reconnect (full handshakes) and holds --idle connections; a client pinned to another
cipher suite is refused by both sides with a reason; SIGTERM ends the server with status
0 and nothing on its stderr. Figures are not looked at (they belong to scripts/bench).

    tls_smoke.py LOADGEN SERVER          exit 0 ok, 1 failed, 77 skipped
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def loadgen(exe, port, cert, *args, expect=0):
    cmd = [exe, "--port", str(port), "--tls", "--tls-ca", str(cert), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if r.returncode != expect:
        fail(f"{' '.join(cmd[3:])}: exit {r.returncode} (wanted {expect}): {r.stderr[-400:]}")
    return r


def main():
    if len(sys.argv) != 3:
        fail("usage: tls_smoke.py LOADGEN SERVER")
    lg_exe, server_exe = sys.argv[1:]
    if shutil.which("openssl") is None:
        print("SKIP: no openssl command")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="coio-tls-smoke-") as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=30)
        err_path = Path(tmp) / "server.err"
        with open(err_path, "w") as err:
            srv = subprocess.Popen([server_exe, "--port", "0", "--tls-cert", str(cert),
                                    "--tls-key", str(key)], stdout=subprocess.PIPE,
                                   stderr=err, stdin=subprocess.DEVNULL, text=True)
        try:
            line = srv.stdout.readline()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if not m:
                srv.wait(timeout=10)
                why = err_path.read_text()[-300:]
                if os.environ.get("COIO_BACKEND") == "io_uring" and "io_uring" in why:
                    print(f"SKIP: io_uring cannot run here: {why}")
                    sys.exit(77)
                fail(f"no 'listening on' line: {line!r}; stderr: {why}")
            port = int(m.group(1))
            run = loadgen(lg_exe, port, cert, "--connections", "8", "--depth", "4", "--size",
                          "4096", "--duration", "0.3", "--warmup", "0.1")
            res = json.loads(run.stdout.splitlines()[-1])
            if res["requests"] <= 0 or res["errors"] != 0:
                fail(f"load over TLS: {res}")
            run = loadgen(lg_exe, port, cert, "--connections", "4", "--reconnect",
                          "--duration", "0.3", "--warmup", "0.1")
            res = json.loads(run.stdout.splitlines()[-1])
            if res["requests"] <= 0 or res["errors"] != 0:
                fail(f"--reconnect: {res}")
            run = loadgen(lg_exe, port, cert, "--idle", "--connections", "20", "--hold", "0")
            if not run.stdout.startswith("ready 20"):
                fail(f"--idle: {run.stdout!r}")
            run = loadgen(lg_exe, port, cert, "--connections", "1", "--duration", "0.1",
                          "--tls-ciphersuites", "TLS_AES_256_GCM_SHA384", expect=1)
            if "TLS handshake" not in run.stderr:
                fail(f"a refused cipher suite gave no handshake error: {run.stderr!r}")
            srv.send_signal(signal.SIGTERM)
            if srv.wait(timeout=10) != 0:
                fail(f"server exit {srv.returncode} after SIGTERM")
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait(timeout=5)
            srv.stdout.close()
        # The refused client is the only one a server may report (its failed handshake).
        lines = [l for l in err_path.read_text().splitlines() if "no shared cipher" not in l]
        if lines:
            fail(f"the server logged: {lines[:3]}")
    print("ok")


if __name__ == "__main__":
    main()
