"""Regression (review of --loops N, both backends): a SIGTERM during the setup
of the loops (here: every loop loading a large --tls-ca file) set the stop
before the collector had handed each loop its run; loop 0 then cancelled
the hand-offs before loops 1..N-1 had picked them up, so those runs never
ran: their --listen servers were never closed, kept accepting, and a push
sender that stayed connected kept the collector from exiting (until its
--idle-timeout, 5 min), its records lost in the meantime. Now every loop's
stop runs anyway: after SIGTERM during setup the collector on 2 loops closes
its listeners, writes every message of every connection it accepted and
exits 0 within a few seconds although the senders keep their connections
open. The window is found by waiting until the SIGTERM handler is installed
(SigCgt in /proc/PID/status); that the signal came during setup is checked
("stopping on SIGTERM" before "push: listening")."""
import asyncio
import os
import re
import time

from lcsupport import Test, check, records, refusing_port
from tlscerts import make_certs, skip_unless_openssl

COPIES = 1000  # of the CA certificate in --tls-ca: each loop parses ~0.6 MB
SIGTERM_BIT = 1 << 14


def handles_sigterm(pid):
    status = open(f"/proc/{pid}/status").read()
    m = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)
    return m is not None and int(m.group(1), 16) & SIGTERM_BIT != 0


def listening_port(pid):
    """The port of a TCP socket of process `pid` in LISTEN state, or None."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and f[9] in inodes:  # TCP_LISTEN
            return int(f[1].split(":")[1], 16)
    return None


async def sender(port, i, writers):
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"<13>1 s{i} hello\n".encode())
        await w.drain()
        writers.append(w)  # stays open
    except OSError:
        pass  # the listeners are closing


async def body(t):
    skip_unless_openssl()
    certs = make_certs(t.dir)
    big = t.dir / "big-ca.pem"
    big.write_text(certs["ca"].read_text() * COPIES)
    socks = [refusing_port() for _ in range(2)]
    out = t.dir / "out.txt"
    # source 0 on loop 0, source 1 (TLS) on loop 1: both loops load the CAs
    c = t.collector("--loops", 2, "--listen", 0, "--tls-ca", big, "-o", out,
                    f"tls://127.0.0.1:{socks[0][1]}", f"tls://127.0.0.1:{socks[1][1]}")
    deadline = time.monotonic() + 10
    while not handles_sigterm(c.pid):
        check(c.running() and time.monotonic() < deadline,
              f"no SIGTERM handler:\n{c.err()[-2000:]}")
        await asyncio.sleep(0.001)
    c.send(15)
    # Senders connect from loop 0's listener on (it listens during the other
    # loop's setup) until the collector exits, and stay connected.
    port = None
    deadline = time.monotonic() + 60  # sanitizer builds load the CAs slowly
    while port is None:
        check(c.running() and time.monotonic() < deadline,
              f"no listener:\n{c.err()[-2000:]}")
        port = listening_port(c.pid)
        await asyncio.sleep(0.001)
    writers = []
    i = 0
    start = time.monotonic()
    while c.running() and time.monotonic() - start < 20:
        await sender(port, i, writers)
        i += 1
        await asyncio.sleep(0.005)
    err = c.err()
    check(err.find("stopping on SIGTERM") < err.find("push: listening"),
          f"the SIGTERM came after the setup (test timing):\n{err[-2000:]}")
    took = time.monotonic() - start
    for w in writers:
        w.close()
    rc = await c.wait_exit(10)
    check(took < 15, f"the collector took {took:.1f} s to exit with senders connected "
                     f"(a loop's listeners were not closed):\n{c.err()[-2000:]}")
    check(rc == 0, f"collector exit status {rc}:\n{c.err()[-2000:]}")
    m = re.search(r"^push \S+ +(\d+) ", c.err(), re.M)
    check(m is not None, f"no push row in the summary:\n{c.err()[-2000:]}")
    received = int(m.group(1))
    recs = records(out)
    check(len(recs) == received, f"{len(recs)} records written, {received} messages received")
    for s, _ in socks:
        s.close()


Test("stop_in_setup").run(body, 90)
