"""A lossy, slow link (RELIABILITY 30), in a private network namespace this
test makes (SKIP where that is not permitted, or tc or nft is missing):
loopback at MTU 1500 behind a token bucket (`tc tbf`, 8 Mbit/s), and
nftables dropping 20 % of the packets to and from two log sources at random
(`numgen`). Each source sends 100,000 numbered lines; the collector pulls
from both. TCP recovers the losses, slowly, so:
  - every line is written, once and in order per source, and acknowledged
    exactly once, in order;
  - a reconnect (if a stall outlasts a timeout) may only repeat the lines
    sent after the last ACK before it: the resend window, nothing else.
The numbers of packets dropped and lines resent are printed. A run usually
takes 5 to 8 s; TCP's retransmission backoff after a few losses of the same
segment in a row stretched one to 44 s, hence the generous bounds."""
import asyncio
import re
import shutil
import sys

from lcsupport import SKIP, Test, check, records, run_in_namespace, sh, wait_until

LINES = 100_000


class Source:
    """Sends lines[acked:] on each connection and counts the ACKs, which must
    come one per line, in order, and never for a line not sent."""

    def __init__(self, tag):
        self.lines = [f"{tag} {i:06d}" for i in range(LINES)]
        self.acked = 0
        self.resent = 0        # lines sent again after a reconnect
        self.windows = []      # (first, end) of each resend window, by line index
        self.connections = 0
        self.extra_acks = 0    # ACKs beyond what this connection sent
        self.sent_before = 0   # how far the last connection had sent
        self.bad_line = None   # a line that was not an ACK (checked by the test:
                               # a failure raised in this handler would only be logged)

    async def handle(self, reader, writer):
        self.connections += 1
        if self.connections > 1:
            self.resent += self.sent_before - self.acked
            self.windows.append((self.acked, self.sent_before))
        start = self.acked
        self.sent_before = len(self.lines)
        writer.write(b"".join(x.encode() + b"\n" for x in self.lines[start:]))
        try:
            while (line := await reader.readline()) == b"ACK\n":
                if self.acked == len(self.lines):
                    self.extra_acks += 1
                else:
                    self.acked += 1
            if line != b"" and self.bad_line is None:
                self.bad_line = line
        except ConnectionError:
            pass
        finally:
            writer.close()


async def body(t):
    sh("ip", "link", "set", "lo", "mtu", "1500", "up")
    # Without MTU 1500, loopback's 64 KiB GSO packets exceed the bucket's
    # burst and stall for ever (RELIABILITY 3.6).
    sh("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "8mbit", "burst", "8kb",
       "latency", "100ms")
    sources = [Source("a"), Source("b")]
    servers = [await asyncio.start_server(s.handle, "127.0.0.1", 0) for s in sources]
    ports = [srv.sockets[0].getsockname()[1] for srv in servers]
    sh("nft", "add", "table", "inet", "lossy")
    sh("nft", "add chain inet lossy out { type filter hook output priority 0; policy accept; }")
    for port in ports:
        for direction in ("dport", "sport"):
            sh("nft", "add", "rule", "inet", "lossy", "out", "tcp", direction, str(port),
               "numgen", "random", "mod", "100", "<", "20", "counter", "drop")

    out = t.dir / "out.txt"
    c = t.collector("-o", out, "--stats-interval", 1, *[f"127.0.0.1:{p}" for p in ports])
    await wait_until(lambda: all(s.acked == LINES for s in sources), 100,
                     "every line acknowledged through the lossy link")
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    for srv in servers:
        srv.close()

    rules = sh("nft", "list", "table", "inet", "lossy")
    dropped = sum(int(n) for n in re.findall(r"counter packets (\d+)", rules))
    check(dropped > 0, "nftables dropped no packet: the link was not lossy")
    got = {}
    for source, flag, text in records(out):
        check(flag == "", f"{source}: a piece or an aborted record: {text!r}")
        got.setdefault(source, []).append(text)
    for s, port in zip(sources, ports):
        name = f"127.0.0.1:{port}"
        lines = next((v for k, v in got.items() if k.endswith(name)), [])
        check(s.extra_acks == 0, f"{name}: {s.extra_acks} ACKs for lines never sent")
        check(s.bad_line is None, f"{name}: not an ACK: {s.bad_line!r}")
        # In order, each once, except lines of a resend window written twice.
        seen = []
        for text in lines:
            if seen and text <= seen[-1]:
                i = int(text.split()[1])
                check(any(a <= i < b for a, b in s.windows),
                      f"{name}: {text!r} written again outside a resend window")
                continue
            seen.append(text)
        check(seen == s.lines, f"{name}: {len(seen)} distinct lines in order, want {LINES}")
        check(len(lines) - len(seen) <= s.resent,
              f"{name}: {len(lines) - len(seen)} duplicates, {s.resent} lines resent")
        print(f"{name}: {LINES} lines, {s.connections} connection(s), {s.resent} resent, "
              f"{len(lines) - len(seen)} written twice")
    print(f"nftables dropped {dropped} packets")


if any(shutil.which(x) is None for x in ("nft", "ip", "tc")):
    print("SKIP: needs nft (nftables), ip and tc (iproute2)")
    sys.exit(SKIP)
run_in_namespace("net")
Test("lossy").run(body, 120)
