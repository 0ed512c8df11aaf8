"""5,000 slowloris connections on --listen: each sends the start of a syslog
message and then one more byte every 2 s, never finishing it. While they are
held, a pull source that comes up then must have its 20,000 lines written
and acknowledged within 20 s, a well-behaved push sender's 100 messages must
be written within 10 s, and the collector's RSS must stay within 16 MiB of
what it was before the flood (a trickling connection holds no read buffer:
about 2.6 KiB each, measured). Then --message-timeout 15 closes all 5,000,
since none ever finishes its message.

Regression (both backends): nothing timed out, so such connections were held
for ever, and each idle push connection kept a 1 KiB read buffer (13.1, 13.9)."""
import asyncio
import os
import re
import time

from lcsupport import (Test, check, raise_fd_limit, records, refusing_port, sanitized, vm_rss_kib,
                       wait_until)
from pyserver import LogServer

SLOW = 5000
BUDGET_KIB = 16 << 10


async def body(t):
    raise_fd_limit()
    asan = sanitized(t.a.collector)
    pull_sock, pull_port = refusing_port()  # refused until the flood is in
    out = t.dir / "out.txt"
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1").lstrip(":")
    c = t.collector("--listen", 0, "-o", out, "--max-connections", SLOW + 100,
                    "--message-timeout", 15, "--backoff-min", 50, "--backoff-max", 200,
                    f"127.0.0.1:{pull_port}", env=env)
    port = int((await c.wait_text(r"push: listening on 127\.0\.0\.1:(\d+)", 10, stream="err"))[0])
    await asyncio.sleep(0.3)
    base = vm_rss_kib(c.pid)

    flood_started = time.monotonic()
    writers = []
    for _ in range(SLOW):
        _, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"<13>1 slow ")
        writers.append(w)
    stop_trickle = asyncio.Event()

    async def trickle():
        while not stop_trickle.is_set():
            for w in writers:
                if not w.is_closing():
                    w.write(b"x")
            await asyncio.sleep(2)

    trickling = asyncio.create_task(trickle())
    try:
        # The pull source comes up while the flood is held.
        lines = [f"normal {i} ".encode() + b"n" * (i % 40) for i in range(20000)]
        started = time.monotonic()
        src = await LogServer(lines, write_size=4096).start(sock=pull_sock)
        await asyncio.wait_for(src.all_acked.wait(), 20)
        pull_took = time.monotonic() - started

        started = time.monotonic()
        _, normal = await asyncio.open_connection("127.0.0.1", port)
        for i in range(100):
            normal.write(f"<13>1 normal push {i}\n".encode())
        await normal.drain()
        await wait_until(
            lambda: sum(1 for r in records(out, growing=True) if "normal push" in r[2]) == 100,
            10, "the normal push sender's 100 messages")
        push_took = time.monotonic() - started
        normal.close()
        held = vm_rss_kib(c.pid)
        check(time.monotonic() - flood_started < 15,
              "the checks took longer than --message-timeout: the connections were not all held")
    finally:
        stop_trickle.set()
        await trickling
    print(f"{SLOW} slowloris connections held: VmRSS {base} KiB before, {held} KiB with them; "
          f"20,000 pull lines written and acknowledged in {pull_took:.2f} s, 100 push messages "
          f"in {push_took:.2f} s")
    bound = BUDGET_KIB * (3 if asan else 1)
    check(held - base <= bound, f"VmRSS grew by {held - base} KiB (bound {bound} KiB)")
    check(src.bad == 0 and src.connections == 1, f"pull source: {src.bad} bad, {src.connections}")

    # --message-timeout closes every one of them.
    def closed():
        return sum(int(n) for n in re.findall(
            r"push: closed (\d+) connection\(s\) whose message stayed unfinished", c.err()))
    await wait_until(lambda: closed() >= SLOW, 30, f"{SLOW} connections closed by --message-timeout")
    check(await c.stop() == 0, f"collector failed:\n{c.err()[-3000:]}")
    for w in writers:
        w.close()
    src.close()


Test("slowloris").run(body, 120)
