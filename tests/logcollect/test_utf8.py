"""Bytes that are not valid UTF-8 never crash the collector and come out as
U+FFFD - exactly as Python's bytes.decode("utf-8", errors="replace") does
(maximal subparts) - in both formats; JSON records are strict JSON with
every control character escaped; chunk boundaries inside a character change
nothing."""
import asyncio
import json

from lcsupport import Test, check, records
from pyserver import LogServer

SAMPLES = [
    b"plain ascii",
    "héllo wörld € 😀 日本語".encode(),
    b"\xff\xfe lone bytes",
    b"abc\xc3( bad continuation",
    b"truncated \xe2\x82",
    b"\xe2\x82 truncated at start",
    b"overlong \xc0\xaf and \xe0\x80\xaf",
    b"surrogate \xed\xa0\x80 \xed\xbf\xbf",
    b"too big \xf4\x90\x80\x80 \xf5\x80",
    b"controls \x01\x1b[31mred\x1b[0m \x7f",
    b'quotes " and \\ backslash \\" ',
    b"tab\tinside",
    b"nul \x00 byte",
    b"cr at the end\r",
    b"\xf0\x9f\x98",  # a 4-byte emoji cut short, alone
    b"\xf0\x9f\x98\x80\xf0\x9f",
    bytes(range(0x80, 0x100)),
    b"",
]


async def run(t, fmt, chunk):
    # One byte per write and a 3-byte chunk size: characters straddle reads.
    srv = await LogServer(SAMPLES, write_size=1).start()
    out = t.dir / f"out.{fmt}.{chunk}"
    c = t.collector("-o", out, "--format", fmt, "--chunk-size", chunk, f"127.0.0.1:{srv.port}",
                    name=f"collector-{fmt}-{chunk}")
    await asyncio.wait_for(srv.all_acked.wait(), 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    srv.close()
    recs = records(out)  # decodes strictly and parses strict JSON
    got = [r[2] for r in recs]
    want = [s.decode("utf-8", errors="replace") for s in SAMPLES]
    for g, w in zip(got, want):
        check(g == w, f"{fmt}: got {g!r}, want {w!r}")
    check(len(got) == len(want), f"{len(got)} records, want {len(want)}")
    if fmt == "json":
        for line in out.read_bytes().split(b"\n")[:-1]:
            check(all(b >= 0x20 for b in line), f"raw control byte in JSON: {line!r}")
            r = json.loads(line)
            check(isinstance(r["seq"], int) and r["time"].endswith("Z"), f"bad fields: {r}")


async def body(t):
    for fmt in ("plain", "json"):
        for chunk in ("3", "1024"):
            await run(t, fmt, chunk)


Test("utf8").run(body, 60)
