"""Memory stays bounded with a source that sends an endless line: 64 MiB
without a newline (then one, and a short line). The collector writes pieces
of --max-line bytes as they fill and never holds the line; its VmRSS
(/proc/PID/status), sampled all along, must stay within a few MiB of what it
was before the flood."""
import asyncio
import os

from lcsupport import Test, check, collector_summary, vm_rss_kib

TOTAL = 64 << 20
BOUND_KIB = 24 << 10  # growth allowed over the baseline


async def body(t):
    sent = 0
    started = asyncio.Event()
    finished = asyncio.Event()
    acks = []

    async def handle(reader, writer):
        nonlocal sent
        writer.write(b"hello\n")
        await writer.drain()
        acks.append(await reader.readline())
        started.set()
        block = b"m" * (256 << 10)
        while sent < TOTAL:
            writer.write(block)
            sent += len(block)
            await writer.drain()
        writer.write(b"\nbye\n")
        await writer.drain()
        acks.append(await reader.readline())
        acks.append(await reader.readline())
        finished.set()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = dict(os.environ)
    # Under AddressSanitizer, freed memory sits in a quarantine (256 MiB by
    # default) and would count as growth: keep it small for this test.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1").lstrip(":")
    c = t.collector("-o", os.devnull, f"127.0.0.1:{port}", env=env)
    await asyncio.wait_for(started.wait(), 15)
    await asyncio.sleep(0.2)
    base = vm_rss_kib(c.pid)
    peak = base
    samples = 0
    while not finished.is_set():
        check(c.running(), f"collector exited:\n{c.err()}")
        peak = max(peak, vm_rss_kib(c.pid))
        samples += 1
        try:
            await asyncio.wait_for(finished.wait(), 0.02)
        except asyncio.TimeoutError:
            pass
        check(samples < 3000, "the flood takes too long")
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    server.close()
    print(f"sent {sent >> 20} MiB without a newline; VmRSS {base} KiB before, peak {peak} KiB "
          f"({samples} samples)")
    check(peak - base <= BOUND_KIB, f"VmRSS grew by {peak - base} KiB (bound {BOUND_KIB} KiB)")
    check(acks == [b"ACK\n"] * 3, f"ACKs: {acks}")
    row = collector_summary(c.err())[f"127.0.0.1:{port}"]
    check(row["lines"] == 3 and row["bytes"] == TOTAL + len(b"hello\n\nbye\n"), f"row {row}")
    check(f"({TOTAL // 65536} over-long-line pieces)" in c.err(), "piece count:\n" + c.err())


Test("memory").run(body, 120)
