#!/usr/bin/env python3
"""Memory per idle TLS connection of examples/tls_echo_server (docs/tls.md).

Not a test (figures never are): a measurement to run by hand.

  tests/tls/idle_memory.py BUILD_DIR [--connections N] [--plain]

Starts BUILD_DIR/examples/tls_echo_server on a certificate made for the run
(EC P-256, TLS 1.3 as negotiated by Python's ssl defaults), opens N
connections with Python's ssl module, makes each do one verified line round
trip (the session tickets are read with it), and prints the server's VmRSS
growth divided by N, for the backend in COIO_BACKEND. --plain measures
stream_echo_server the same way without TLS, as the reference from the same
run. The client side is this process; raise `ulimit -n` above N + 100.
"""
import argparse
import os
import pathlib
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def vm_rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_for_port(path, proc):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = pathlib.Path(path).read_text()
        for line in text.splitlines():
            if line.startswith("listening on "):
                return int(line.split()[2].rsplit(":", 1)[1])
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + text)
        time.sleep(0.05)
    raise RuntimeError("server did not report its port")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build_dir")
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--plain", action="store_true")
    args = p.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="coio-idle-")
    cert, key, out = (os.path.join(tmp.name, n) for n in ("cert.pem", "key.pem", "out.txt"))
    if args.plain:
        cmd = [os.path.join(args.build_dir, "examples/stream_echo_server")]
        ctx = None
    else:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost"], check=True, capture_output=True)
        cmd = [os.path.join(args.build_dir, "examples/tls_echo_server"), "--cert", cert,
               "--key", key]
        ctx = ssl.create_default_context(cafile=cert)
    with open(out, "w") as f:
        server = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    conns = []
    try:
        port = wait_for_port(out, server)
        before = vm_rss(server.pid)
        for i in range(args.connections):
            s = socket.create_connection(("127.0.0.1", port))
            if ctx is not None:
                s = ctx.wrap_socket(s, server_hostname="localhost")
            s.sendall(b"x\n")
            got = b""
            while not got.endswith(b"\n"):
                chunk = s.recv(16)
                if not chunk:
                    raise RuntimeError(f"connection {i} closed")
                got += chunk
            assert got == b"x\n", got
            conns.append(s)
        after = vm_rss(server.pid)
        kind = "plain" if args.plain else "TLS"
        backend = os.environ.get("COIO_BACKEND", "auto")
        print(f"{kind} {backend}: {args.connections} idle connections, server VmRSS "
              f"{before / 1e6:.1f} MB -> {after / 1e6:.1f} MB: "
              f"{(after - before) / args.connections:.0f} B per connection")
    finally:
        for s in conns:
            s.close()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
