"""coio-logcollect against a log server written with Python asyncio (the
seeds' side of the protocol, served instead of consumed): every line must be
in the output, in order, and acknowledged - exactly once here, since no
connection breaks - and nothing else may be received by the server."""
import asyncio
import random

from lcsupport import Test, check, records
from pyserver import LogServer

N = 3000


async def body(t):
    rng = random.Random(5)
    lines = []
    for i in range(N):
        n = rng.choice([0, 1, 10, 80, 300, 1023, 1024, 1025, 3000])
        lines.append(f"py {i} ".encode() + bytes(rng.choice(b"abcdefghij \t") for _ in range(n)))
    # Writes of 700 bytes: lines straddle the collector's 1024-byte reads.
    srv = await LogServer(lines, write_size=700).start()
    out = t.dir / "out.txt"
    c = t.collector("-o", out, "--chunk-size", "1024", f"127.0.0.1:{srv.port}")
    await asyncio.wait_for(srv.all_acked.wait(), 30)
    check(await c.stop() == 0, f"collector exit status {c.p.returncode}:\n{c.err()}")
    await asyncio.wait_for(srv.closed.wait(), 10)
    srv.close()
    recs = records(out)
    check(all(r[0] == f"127.0.0.1:{srv.port}" and r[1] == "" for r in recs),
          "unexpected source names or flags")
    got = [r[2] for r in recs]
    want = [line.decode() for line in lines]
    check(len(got) == N, f"{len(got)} records, want {N}")
    for i, (g, w) in enumerate(zip(got, want)):
        check(g == w, f"record {i} differs: {g[:60]!r} != {w[:60]!r}")
    check(srv.acks == N, f"server counted {srv.acks} ACKs, want {N}")
    check(srv.bad == 0, f"server received {srv.bad} unexpected messages")
    check(srv.connections == 1, f"{srv.connections} connections, want 1")
    check(f"{N} lines" in c.err(), "summary does not report the lines:\n" + c.err())


Test("python-server").run(body, 60)
