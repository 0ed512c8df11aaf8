"""Push mode (--listen) against hostile senders: a connection cap, a framing
error that resynchronises, and a memory budget that holds during a flood and
is given back after it.

- --max-connections 3: accepting pauses at the cap (coio's
  server_options::max_connections, said once): a 4th sender waits in the
  listen backlog, unserved but not closed, and is served as soon as one of
  the 3 ends.
- An octet count above --max-frame (a 10-digit "9999999999 ") is a framing
  error: that frame is read up to LF instead, so the frames that follow are
  records of their own and the connection goes on.
- 2,000 connections each send 65,000 bytes of one unfinished message: with
  --push-memory 16m each holds at most 16 MiB / 2,000 bytes (the rest is
  written in pieces), so the collector's RSS grows by about 16 MiB plus a
  little per connection (22-25 MiB measured) - and once they close, malloc's
  free memory goes back to the system (malloc_trim), so RSS comes back down.

Regression (both backends): a 10-digit count swallowed every following frame
into one record; 5,000 such connections held 302 MiB RSS and 312 MiB after
they had all closed."""
import asyncio
import json
import os

from lcsupport import Test, check, raise_fd_limit, sanitized, vm_rss_kib, wait_until

FLOOD = 2000
PARTIAL = 65000
BUDGET_KIB = 16 << 10
# Frames, stream state, timers, the sender's name (4 KiB), and one read's
# bytes that the stream reader may hold in a buffer of its own between two
# reads: the push server's streams read 4 KiB at most (small_reads; it never
# keeps a lent buffer), so 2,000 connections hold 8 MiB of that either way.
PER_CONNECTION_KIB = 8
# The output buffer (about 1 MiB), the loop's read buffers and malloc's
# slack: 22-25 MiB of growth in all, on both backends, with or without two
# CPU hogs beside it. Regression: before the push server's streams read
# small, a connection's reads grew to 64 KiB and its reader held the rest of
# one between two reads - 23 to 136 MiB of growth, depending on how far the
# loop fell behind. Without the memory cap the flood would hold 2,000 x
# 65,000 B: 124 MiB.
OTHER_KIB = 8 << 10


def json_records(path):
    try:
        return [json.loads(x) for x in path.read_text().splitlines()]
    except (OSError, ValueError):
        return []


async def listen(t, *extra, name):
    out = t.dir / f"{name}.json"
    env = dict(os.environ)
    # ASan: a small quarantine, and its allocator gives free memory back to
    # the system every 500 ms (malloc_trim is glibc's, ASan has its own heap).
    asan = ":quarantine_size_mb=1:allocator_release_to_os_interval_ms=500"
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + asan).lstrip(":")
    c = t.collector("--listen", "0", "-o", out, "--format", "json", *extra, name=name, env=env)
    port = int((await c.wait_text(r"push: listening on 127\.0\.0\.1:(\d+)", 10, stream="err"))[0])
    return c, out, port


async def connection_cap(t):
    c, out, port = await listen(t, "--max-connections", 3, name="collector-cap")
    conns = []
    for i in range(3):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"<13>1 admitted {i}\n".encode())
        await w.drain()
        conns.append((r, w))
        await wait_until(lambda: len(json_records(out)) == i + 1, 10, f"message {i}")
    await c.wait_text(r"3 connections open \(--max-connections\): new senders wait", 5,
                      stream="err")
    r, w = await asyncio.open_connection("127.0.0.1", port)  # the kernel's backlog takes it
    w.write(b"<13>1 waited\n")
    await w.drain()
    try:
        data = await asyncio.wait_for(r.read(), 1)
        check(False, f"the 4th connection was ended ({data!r}) instead of waiting")
    except asyncio.TimeoutError:
        pass  # still open
    check(len(json_records(out)) == 3, "the 4th sender was served above the cap")
    conns[0][1].close()  # one ends: the waiting one is served
    await wait_until(lambda: any(x["line"] == "<13>1 waited" for x in json_records(out)), 10,
                     "the message of the waiting connection")
    w.close()
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    check(c.err().count("--max-connections") == 1, "the cap is reported once per streak")


async def framing_error(t):
    c, out, port = await listen(t, name="collector-frame")
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"9999999999 <13>1 a bogus count\n<13>1 next frame\n11 <13>1 octet<13>1 last\n")
    await w.drain()
    want = ["9999999999 <13>1 a bogus count", "<13>1 next frame", "<13>1 octet", "<13>1 last"]
    await wait_until(lambda: [x["line"] for x in json_records(out)] == want, 10,
                     f"four records {want}, not swallowed into one")
    check([x["framing"] for x in json_records(out)] == ["lf", "lf", "octet", "lf"], "framings")
    check("octet count above --max-frame 65536: framing error" in c.err(), c.err())
    w.close()
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")


async def flood(t):
    asan = sanitized(t.a.collector)
    c, out, port = await listen(t, "--max-connections", FLOOD, "--push-memory", "16m",
                                "--stats-interval", 0, name="collector-flood")
    await asyncio.sleep(0.3)
    base = vm_rss_kib(c.pid)
    share = min(65536, (16 << 20) // FLOOD)
    conns = []
    for _ in range(FLOOD):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"<13>1 " + b"f" * (PARTIAL - 6))
        conns.append(w)
    for w in conns:
        await w.drain()
    pieces = FLOOD * ((PARTIAL - 1) // share)

    def written():
        with open(out, "rb") as f:
            return f.read().count(b"\n")
    await wait_until(lambda: written() >= pieces, 60, f"{pieces} pieces written")
    await asyncio.sleep(0.5)
    peak = vm_rss_kib(c.pid)
    bound = BUDGET_KIB + FLOOD * PER_CONNECTION_KIB + OTHER_KIB
    print(f"{FLOOD} connections x {PARTIAL} bytes: VmRSS {base} KiB before, {peak} KiB with all "
          f"open (bound: +{bound} KiB{', not checked under ASan' if asan else ''})")
    if not asan:
        # Under ASan redzones, quarantine and shadow memory grow RSS by a
        # factor that differs between g++ and clang (2x to 5x here): the
        # budget is checked in the unsanitized builds.
        check(peak - base <= bound, f"VmRSS grew by {peak - base} KiB (bound {bound} KiB)")
    for w in conns:
        w.close()
    if asan:
        # ASan's allocator keeps freed chunks in quarantine and its shadow
        # pages mapped, and the collector's malloc_trim does not reach it:
        # whether memory goes back is checked in the unsanitized builds.
        print("memory return not checked under AddressSanitizer")
        check(await c.stop() == 0, f"collector failed:\n{c.err()}")
        return
    # Up to 4 MiB stay in the output buffer, up to 4 MiB free in malloc (the
    # trim slack), and 4 MiB of margin for what the allocator keeps of its
    # arenas when other tests load the machine (13 MiB came back instead of
    # 11.5 once under the full suite). The flood itself took 30+ MiB, so the
    # bound still shows it went back.
    back = base + (12 << 10)
    # The housekeeping task trims once a second.
    try:
        await wait_until(lambda: vm_rss_kib(c.pid) <= back, 20, "memory to come back")
    finally:
        print(f"after they closed: VmRSS {vm_rss_kib(c.pid)} KiB (bound {back} KiB)")
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")


async def body(t):
    raise_fd_limit()
    await connection_cap(t)
    await framing_error(t)
    await flood(t)


Test("push-limits").run(body, 120)
