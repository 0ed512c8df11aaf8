"""Reconnects: a source that resets (RST) or closes (FIN) in the middle of a
line is reconnected with backoff; the partial line is never written as a
complete line and never acknowledged, so the source sends it again whole. A
source that refuses connections is retried until it is up. Another source on
the same collector is not disturbed meanwhile. Every line arrives, and lines
acknowledged before a break are not repeated. Run with --loops 2 (meson's
-loops2 tests) the flaky source is on loop 1, so its records cross to the
writer loop and are acknowledged only after the writer wrote them."""
import asyncio

from lcsupport import Test, check, collector_summary, records, refusing_port
from pyserver import LogServer

N = 150


async def body(t):
    lines = [f"flaky line {i} ".encode() + b"p" * (i % 50) for i in range(N)]
    plans = {
        0: dict(lines=50, partial=9, how="rst"),  # "flaky lin" then RST
        1: dict(lines=50, partial=12, how="fin"),  # "flaky line 1" then FIN
    }
    flaky = await LogServer(lines, plans=plans).start()
    steady_lines = [f"steady {i}".encode() for i in range(20000)]
    steady = await LogServer(steady_lines, write_size=4096).start()
    late_sock, late_port = refusing_port()  # connections are refused until it listens

    out = t.dir / "out.txt"
    addrs = [f"127.0.0.1:{flaky.port}", f"127.0.0.1:{steady.port}", f"127.0.0.1:{late_port}"]
    if t.a.loops:  # --loops N: the flaky source on loop 1, not on the writer's loop 0
        addrs = [addrs[1], addrs[0], addrs[2]]
    c = t.collector("-o", out, "--backoff-min", 20, "--backoff-max", 100, *addrs)
    await c.wait_text(rf"127\.0\.0\.1:{late_port}: connect to .*Connection refused", 10,
                      stream="err")
    await asyncio.sleep(0.3)  # a few more refused attempts, with backoff
    late = await LogServer([b"late 1", b"late 2"]).start(sock=late_sock)

    for srv in (flaky, steady, late):
        await asyncio.wait_for(srv.all_acked.wait(), 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    for srv in (flaky, steady, late):
        srv.close()

    recs = records(out)
    by = {}
    for src, flag, text in recs:
        check(flag == "", f"unexpected flag {flag!r}")
        by.setdefault(src, []).append(text)
    got = by.get(f"127.0.0.1:{flaky.port}", [])
    want = [line.decode() for line in lines]
    # ACKs for lines 0..49 and 50..99 arrived before each break: no repeats.
    check(got == want, f"flaky source: {len(got)} records, want exactly the {N} lines in order")
    check("flaky lin" not in got and "flaky line 1" not in got,
          "a partial line was written as complete")
    check(by.get(f"127.0.0.1:{steady.port}") == [x.decode() for x in steady_lines],
          "the steady source lost or repeated lines")
    check(by.get(f"127.0.0.1:{late_port}") == ["late 1", "late 2"], "the late source's lines")
    check(flaky.connections == 3 and steady.connections == 1,
          f"connections: flaky {flaky.connections}, steady {steady.connections}")
    check(flaky.acks == N and flaky.bad == 0, f"flaky acks {flaky.acks}, bad {flaky.bad}")

    rows = collector_summary(c.err())
    f = rows[f"127.0.0.1:{flaky.port}"]
    check(f["reconnects"] == 2 and f["cut"] == 2 and f["lines"] == N, f"flaky row {f}")
    check(f["errors"] >= 1, f"the reset is not counted as an error: {f}")
    s = rows[f"127.0.0.1:{steady.port}"]
    check(s["reconnects"] == 0 and s["errors"] == 0, f"steady row {s}")
    late_row = rows[f"127.0.0.1:{late_port}"]
    check(late_row["errors"] >= 2 and late_row["reconnects"] == 0, f"late row {late_row}")
    err = c.err()
    check("dropped an unfinished line (9 bytes" in err and "(12 bytes" in err,
          "the partial lines are not reported:\n" + err)
    check("Connection reset by peer" in err and "closed by the source" in err,
          "the reasons are not reported:\n" + err)


Test("reconnect").run(body, 60)
