"""A source that vanishes behind a firewall (in a private network namespace
this test makes; SKIP where that is not permitted or nft is missing): every
packet to and from its port is dropped by nftables, and the source forgets
its connection (its RST is dropped too). The collector must notice - TCP
keepalive probes go unanswered - report the connection as timed out, and
keep trying to connect (each SYN is dropped: --connect-timeout gives up);
once the rule is gone it connects again and the lines the source sent since
are written and acknowledged.

Regression (both backends): without keepalive the collector kept the dead
connection "connected" for ever and never saw the source's new lines."""
import asyncio
import re
import shutil
import socket
import struct
import sys

from lcsupport import SKIP, Test, check, records, run_in_namespace, sh, wait_until


class Source:
    """Sends lines[acked:] on each new connection; counts ACKs."""

    def __init__(self, lines):
        self.lines = lines
        self.acked = 0
        self.connections = 0
        self.writer = None

    async def handle(self, reader, writer):
        self.connections += 1
        self.writer = writer
        sent = len(self.lines)
        writer.write(b"".join(x + b"\n" for x in self.lines[self.acked:]))
        try:
            while (line := await reader.readline()) == b"ACK\n" and self.acked < sent:
                self.acked += 1
        except ConnectionError:
            pass

    def vanish(self):
        """Drop the connection without a word reaching the collector."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


async def body(t):
    sh("ip", "link", "set", "lo", "up")
    src = Source([f"before {i}".encode() for i in range(10)])
    server = await asyncio.start_server(src.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = t.dir / "out.txt"
    c = t.collector("-o", out, "--keepalive", 1, "--ack-timeout", 2, "--connect-timeout", 1,
                    "--backoff-min", 50, "--backoff-max", 300, "--stats-interval", 0.2,
                    f"127.0.0.1:{port}")
    await wait_until(lambda: src.acked == 10, 15, "the first 10 ACKs")
    ss = sh("ss", "-tno", "state", "established", f"( dport = :{port} )")
    check("keepalive" in ss, f"no keepalive timer on the collector's connection:\n{ss}")

    sh("nft", "add", "table", "inet", "blackhole")
    sh("nft", "add chain inet blackhole out { type filter hook output priority 0; policy accept; }")
    for direction in ("dport", "sport"):
        sh("nft", "add", "rule", "inet", "blackhole", "out", "tcp", direction, str(port), "drop")
    src.vanish()
    src.lines += [f"after {i}".encode() for i in range(10)]
    await c.wait_text(rf"source 127\.0\.0\.1:{port}: .*Connection timed out; reconnecting", 20,
                      stream="err")
    # Connects time out meanwhile (one message per failure streak: count them).
    def errors():
        return max([0] + [int(n) for n in re.findall(r"\| (\d+) errors", c.err())])
    await wait_until(lambda: errors() >= 3, 15, "connects timing out (errors in the stats)")
    sh("nft", "delete", "table", "inet", "blackhole")

    await wait_until(lambda: src.acked == 20, 20, "the 10 lines sent after the blackhole")
    check(f"source 127.0.0.1:{port}: connected" in c.err(), "the recovery is not reported")
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    server.close()
    got = [text for _, _, text in records(out)]
    check(got == [x.decode() for x in src.lines], f"output: {got}")


if shutil.which("nft") is None or shutil.which("ip") is None or shutil.which("ss") is None:
    print("SKIP: needs nft (nftables), ip and ss (iproute2)")
    sys.exit(SKIP)
run_in_namespace("net")
Test("blackhole").run(body, 60)
