"""--loops 2: the collector on two event loops (threads) with one output.
Pull: 4 sources (one log_source process on 4 ports) are spread over the
loops, 2 each (source i on loop i % 2); every line of every source arrives
exactly once, each source's lines in order, every line is acknowledged, and
the per-loop lines after the summary show both loops wrote lines. Push: 32
senders connect to --listen, which every loop accepts on (SO_REUSEPORT; the
kernel spreads connections by a hash, so with 32 the chance one loop gets
none is 2^-31); every message is written, each sender's in order, and both
loops accepted connections. Both end with SIGTERM: exit 0."""
import asyncio

from lcsupport import Test, check, collector_loops, collector_summary, records, summary_json

LOOPS = 2
SOURCES = 4
LINES = 3000
SENDERS = 32
MESSAGES = 300


async def pull(t):
    src, ports = await t.log_source("--ports", SOURCES, "--name", "m", "--lines", LINES,
                                    "--line-bytes", 40, ports=SOURCES)
    out = t.dir / "pull.txt"
    c = t.collector("--loops", LOOPS, "-o", out, *[f"127.0.0.1:{p}" for p in ports],
                    name="collector-pull")
    await src.wait_text(r'"event":"all_acked"', 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()[-3000:]}")
    check(await src.stop() == 0, "log_source exit status")
    s = summary_json(src.out())
    check(s["acked"] == SOURCES * LINES and s["resent"] == 0, f"log_source summary {s}")
    seqs = {}
    for source, flag, text in records(out):
        check(flag == "", f"unexpected flag {flag!r}")
        name, seq, _ = text.split(" ", 2)
        seqs.setdefault((source, name), []).append(int(seq))
    check(len(seqs) == SOURCES, f"sources in the output: {sorted(seqs)}")
    for i, p in enumerate(ports):
        got = seqs.get((f"127.0.0.1:{p}", f"m-{i}"), [])
        check(got == list(range(1, LINES + 1)),
              f"m-{i}: {len(got)} lines, not 1..{LINES} in order")
    err = c.err()
    check(collector_summary(err)["total"]["lines"] == SOURCES * LINES, "summary total")
    loops = collector_loops(err)
    check(sorted(loops) == list(range(LOOPS)), f"per-loop lines {loops}")
    for k, row in loops.items():
        check(row["sources"] == SOURCES // LOOPS and row["lines"] == LINES * SOURCES // LOOPS,
              f"loop {k}: {row}")


async def send(port, i):
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for j in range(0, MESSAGES, 50):
        writer.write(b"".join(f"<13>1 s{i} {k}\n".encode() for k in range(j, j + 50)))
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def push(t):
    out = t.dir / "push.txt"
    c = t.collector("--loops", LOOPS, "--listen", "0", "-o", out, name="collector-push")
    found = await c.wait_text(r"push: listening on 127\.0\.0\.1:(\d+)", 10, stream="err")
    port = int(found[0])
    await asyncio.gather(*(send(port, i) for i in range(SENDERS)))
    want = SENDERS * MESSAGES
    for _ in range(1500):  # written within a few loop iterations; bounded
        if len(records(out, growing=True)) >= want:
            break
        check(c.running(), f"collector exited:\n{c.err()[-3000:]}")
        await asyncio.sleep(0.02)
    check(await c.stop() == 0, f"collector failed:\n{c.err()[-3000:]}")
    by = {}
    for _, flag, text in records(out):
        check(flag == "", f"unexpected flag {flag!r}")
        _, sender, k = text.split(" ")
        by.setdefault(sender, []).append(int(k))
    check(len(by) == SENDERS, f"{len(by)} senders in the output, want {SENDERS}")
    for sender, ks in by.items():
        check(ks == list(range(MESSAGES)), f"{sender}: {len(ks)} messages, not in order")
    loops = collector_loops(c.err())
    check(sum(r["push"] for r in loops.values()) == SENDERS, f"per-loop connections {loops}")
    check(all(loops[k]["push"] > 0 for k in range(LOOPS)),
          f"a loop accepted no connection: {loops}")
    check(sum(r["lines"] for r in loops.values()) == want, f"per-loop lines {loops}")


async def body(t):
    await pull(t)
    await push(t)


Test("loops").run(body, 90)
