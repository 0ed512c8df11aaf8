"""SIGTERM and SIGINT stop the collector cleanly while lines stream in: it
stops reading, writes what is complete, acknowledges exactly what it wrote,
closes, prints the summary and exits 0. So the output is exactly lines 1..K
in order and the source received exactly K ACKs - none lost, none extra."""
import asyncio
import signal

from lcsupport import Test, check, records


class Firehose:
    """Streams numbered lines as fast as the collector takes them (at most
    20,000 unacknowledged), cut into odd-sized writes so that a line is
    usually half-sent when the signal comes; counts ACKs until EOF."""

    def __init__(self):
        self.acks = 0
        self.sent = 0
        self.bad = 0
        self.done = asyncio.Event()

    async def handle(self, reader, writer):
        async def acks():
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line == b"ACK\n" and self.acks < self.sent:
                    self.acks += 1
                else:
                    self.bad += 1

        task = asyncio.create_task(acks())
        try:
            await self.pump(task, writer)
        except ConnectionError:
            pass
        try:
            await task
        except ConnectionError:
            pass
        writer.close()
        self.done.set()

    async def pump(self, task, writer):
        """Send until the collector half-closes (the ACK reader sees EOF)."""
        buf = b""
        while not task.done():
            if self.sent - self.acks > 20000:
                await asyncio.sleep(0.001)
                continue
            while len(buf) < 5000:
                self.sent += 1
                buf += f"line {self.sent} {'x' * (self.sent % 97)}\n".encode()
            writer.write(buf[:3331])
            buf = buf[3331:]
            await writer.drain()


async def run(t, sig):
    # With --loops N: N sources, one per loop (source i runs on loop i % N),
    # every one checked as the single one is.
    n = t.a.loops or 1
    hoses = [Firehose() for _ in range(n)]
    servers = [await asyncio.start_server(h.handle, "127.0.0.1", 0) for h in hoses]
    addrs = [f"127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in servers]
    out = t.dir / f"out.{sig.name}"
    c = t.collector("-o", out, *addrs, name=f"collector-{sig.name}")
    while min(h.acks for h in hoses) < 30000 // n:
        check(c.running(), f"collector exited:\n{c.err()}")
        await asyncio.sleep(0.01)
    rc = await c.stop(sig)
    check(rc == 0, f"exit status {rc} after {sig.name}:\n{c.err()}")
    for hose, server in zip(hoses, servers):
        await asyncio.wait_for(hose.done.wait(), 10)
        server.close()
    by = {a: [] for a in addrs}
    for source, _, text in records(out):
        by[source].append(text)
    total = 0
    for hose, addr in zip(hoses, addrs):
        got = by[addr]
        k = len(got)
        total += k
        check(k > 0 and hose.acks == k,
              f"{sig.name} {addr}: {k} lines written but {hose.acks} acknowledged")
        for i, text in enumerate(got):
            check(text == f"line {i + 1} {'x' * ((i + 1) % 97)}",
                  f"{addr} record {i}: {text[:40]!r}")
        check(hose.bad == 0, f"{hose.bad} unexpected messages")
    err = c.err()
    check(f"stopping on {sig.name}" in err and f"{total} lines" in err,
          "no stop message or summary:\n" + err)
    check("Sanitizer" not in err and "runtime error" not in err, "a sanitizer report:\n" + err)
    print(f"{sig.name}: {total} lines written and acknowledged, "
          f"{sum(h.sent for h in hoses)} generated")


async def body(t):
    await run(t, signal.SIGTERM)
    await run(t, signal.SIGINT)


if __name__ == "__main__":
    Test("sigterm").run(body, 60)
