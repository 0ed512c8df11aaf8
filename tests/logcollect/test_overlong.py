"""Over-long lines: a line longer than --max-line is written as pieces of at
most --max-line bytes, never cutting a UTF-8 character, marked as
continuations (plain: SOURCE+, json: "more":true), and acknowledged ONCE,
after its last piece is written. A line of exactly --max-line bytes is one
record. A connection that breaks inside a split line gets an "aborted"
record, and the line comes again whole on the next connection."""
import asyncio

from lcsupport import Test, check, joined_lines, records
from pyserver import LogServer

MAX = 1000


async def run_format(t, fmt):
    euro = "€".encode()  # 3 bytes
    # Put a 3-byte character across the first cut (bytes 998..1000).
    straddle = b"s" * 998 + euro + b"t" * 2500
    lines = [
        b"short one",
        straddle,
        b"x" * MAX,  # exactly max: one record
        b"y" * (MAX + 1),  # one byte over: two pieces
        b"last",
    ]
    long_partial = b"L" * 2600  # the connection breaks inside this line
    lines.append(long_partial + b" and its end")
    lines.append(b"after")
    # Connection 0: everything up to `long_partial`, acknowledged; then 2600
    # bytes of the long line (two pieces go out) and RST. Connection 1: rest.
    plans = {0: dict(lines=5, partial=len(long_partial), how="rst", pause=0.5)}
    srv = await LogServer(lines, plans=plans, write_size=333).start()
    out = t.dir / f"out.{fmt}"
    c = t.collector("-o", out, "--format", fmt, "--max-line", MAX, "--backoff-min", 20,
                    "--backoff-max", 50, f"127.0.0.1:{srv.port}", name=f"collector-{fmt}")
    await asyncio.wait_for(srv.all_acked.wait(), 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    srv.close()

    source = f"127.0.0.1:{srv.port}"
    recs = records(out)
    for s, flag, text in recs:
        check(len(text.encode()) <= MAX, f"a record of {len(text.encode())} bytes > {MAX}")
        check("\ufffd" not in text, "a piece boundary split a UTF-8 character")
    got, aborted = joined_lines(recs, source)
    want = [line.decode() for line in lines]
    check(got == want, f"reassembled lines differ:\n{[g[:30] for g in got]}\n"
                       f"{[w[:30] for w in want]}")
    check(aborted == 1, f"{aborted} aborted records, want 1")
    # Piece layout: the straddling line is cut before the euro sign.
    flags = [(f, len(x.encode())) for s, f, x in recs]
    i = next(k for k, r in enumerate(recs) if r[2].startswith("sss"))
    check(flags[i] == ("+", 998), f"first piece of the straddling line: {flags[i]}")
    check(recs[i + 1][2].startswith("€t"), "second piece does not start with the character")
    # exactly MAX: one whole record; MAX + 1: a piece of MAX and a last of 1
    j = next(k for k, r in enumerate(recs) if r[2].startswith("x"))
    check(flags[j] == ("", MAX), f"a line of exactly --max-line: {flags[j]}")
    check(flags[j + 1] == ("+", MAX) and flags[j + 2] == ("", 1),
          f"a line of --max-line + 1: {flags[j + 1:j + 3]}")
    # One ACK per line, pieces or not; the aborted attempt got none.
    check(srv.acks == len(lines), f"{srv.acks} ACKs for {len(lines)} lines")
    check(srv.bad == 0, f"{srv.bad} unexpected messages at the server")
    check(srv.connections == 2, f"{srv.connections} connections, want 2")
    if fmt == "plain":
        check(any(s.endswith("") and f == "!" for s, f, _ in recs), "no SOURCE! record")
        raw = out.read_text()
        check(f"{source}+\t" in raw and f"{source}!\t" in raw, "plain markers missing")
    else:
        raw = out.read_text()
        check('"more":true' in raw and '"more":false' in raw and '"aborted":true' in raw,
              "json piece fields missing")


async def ack_only_after_last_piece(t):
    """While a split line is unfinished, its pieces may be written but the line
    is not acknowledged; the ACK comes when its '\n' arrived and it is written."""
    done = asyncio.Event()
    problems = []

    async def handle(reader, writer):  # a hand-driven source for this one
        try:
            writer.write(b"first\n" + b"Z" * 4000)
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 10)
            if line != b"ACK\n":
                problems.append(f"expected the ACK of 'first', got {line!r}")
            # 4000 bytes of the long line are there: pieces, but no ACK yet.
            try:
                extra = await asyncio.wait_for(reader.readline(), 0.7)
                problems.append(f"ACK before the end of the long line: {extra!r}")
            except asyncio.TimeoutError:
                pass
            writer.write(b"Z" * 1000 + b"\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 10)
            if line != b"ACK\n":
                problems.append(f"expected the long line's ACK, got {line!r}")
        except Exception as e:  # reported by the test, not by asyncio's logger
            problems.append(repr(e))
        finally:
            done.set()
        await reader.read()  # until the collector closes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = t.dir / "out.gate"
    c = t.collector("-o", out, "--max-line", MAX, f"127.0.0.1:{port}", name="collector-gate")
    await asyncio.wait_for(done.wait(), 20)
    check(not problems, "; ".join(problems))
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    server.close()
    recs = records(out)
    got, _ = joined_lines(recs, f"127.0.0.1:{port}")
    check(got == ["first", "Z" * 5000], "gate output differs")
    check([f for _, f, _ in recs] == ["", "+", "+", "+", "+", ""], f"pieces: {recs}")


async def body(t):
    await run_format(t, "plain")
    await run_format(t, "json")
    await ack_only_after_last_piece(t)


Test("overlong").run(body, 90)
