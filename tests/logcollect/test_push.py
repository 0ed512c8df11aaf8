"""Push mode (--listen): syslog over TCP per RFC 6587, from a real sender
nobody here wrote - util-linux logger, with non-transparent (LF) framing
(`logger --tcp`) and octet counting (`logger --tcp --octet-count`) - plus a
hand-made stream that mixes both framings per frame, splits frames across
writes, packs several into one write, and puts an LF inside an octet-counted
message. No ACKs are sent in push mode."""
import asyncio
import json
import shutil
import subprocess
import sys

from lcsupport import SKIP, Test, check


async def logger(port, *args, stdin=None):
    proc = await asyncio.create_subprocess_exec(
        "logger", "-n", "127.0.0.1", "-P", str(port), "--tcp", "-t", "lctest", *args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
    await asyncio.wait_for(proc.communicate(stdin), 15)
    check(proc.returncode == 0, f"logger {' '.join(args)} exited {proc.returncode}")


async def body(t):
    out = t.dir / "out.json"
    c = t.collector("--listen", "0", "-o", out, "--format", "json", "--max-line", 100)
    found = await c.wait_text(r"push: listening on 127\.0\.0\.1:(\d+)", 10, stream="err")
    port = int(found[0])

    await logger(port, "lf framed message")
    await logger(port, "--octet-count", "octet counted message")
    await logger(port, stdin=b"stdin line one\nstdin line two\n")
    await logger(port, "--octet-count", stdin=b"octet stdin one\noctet stdin two\n")

    # Hand-made frames.
    octet_body = b"<14>1 - - mixed - - - has an LF\ninside"
    frames = [
        b"11 <13>1 octet",  # octet counted, 11 bytes
        b"<13>1 plain lf frame\n",  # LF framed
        b"123abc starts with digits, no space: LF framed\n",
        str(len(octet_body)).encode() + b" " + octet_body,
        b"\n",  # an empty LF frame: skipped
        b"<13>1 " + b"L" * 250 + b"\n",  # longer than --max-line 100: pieces
        b"<13>1 unterminated at close",  # LF framed, cut by the close
    ]
    stream = b"".join(frames)
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(0, len(stream), 7):  # 7-byte writes split every frame
        writer.write(stream[i:i + 7])
        await writer.drain()
    writer.close()
    await writer.wait_closed()

    def texts():
        try:
            return [json.loads(x) for x in out.read_text().splitlines()]
        except (OSError, ValueError):
            return []

    # Records are written within a loop iteration; wait for all 12 to be out.
    deadline = asyncio.get_running_loop().time() + 15
    while len([r for r in texts() if not r.get("more")]) < 12:
        check(asyncio.get_running_loop().time() < deadline,
              f"push records missing: {[r['line'] for r in texts()]}\n{c.err()}")
        await asyncio.sleep(0.05)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")

    recs = texts()
    check(all(r["source"].startswith("push 127.0.0.1:") for r in recs), "push source names")
    # A long line's pieces are contiguous within their source only: records
    # of other connections may come between them (the fault-injection run
    # delays reads, and the loggers' connections are then read alongside
    # the hand-made one), so pieces are put together per source.
    whole = []
    cur = {}
    for r in recs:
        text = cur.pop(r["source"], "") + r["line"]
        if r.get("more"):
            cur[r["source"]] = text
        else:
            whole.append((text, r.get("framing")))
    check(not cur, f"pieces without their last record: {cur}")

    def one(suffix, framing):
        hits = [w for w in whole if w[0].endswith(suffix)]
        check(len(hits) == 1, f"{suffix!r}: {len(hits)} records: {whole}")
        check(hits[0][1] == framing, f"{suffix!r}: framing {hits[0][1]}, want {framing}")
        return hits[0][0]

    m = one("lf framed message", "lf")
    check(m.startswith("<13>1 ") and " lctest " in m, f"logger's RFC 5424 header: {m!r}")
    one("octet counted message", "octet")
    one("stdin line one", "lf")
    one("stdin line two", "lf")
    one("octet stdin one", "octet")
    one("octet stdin two", "octet")
    one("<13>1 octet", "octet")
    one("plain lf frame", "lf")
    one("123abc starts with digits, no space: LF framed", "lf")
    one("has an LF\ninside", "octet")
    long_line = one("L" * 250, "lf")
    check(len(long_line) == 256, "the long frame was not reassembled whole")
    one("unterminated at close", "lf")
    check(len(whole) == 12, f"{len(whole)} messages, want 12: {whole}")
    check("push 127.0.0.1" in c.err() and "12 lines" in c.err(), "summary:\n" + c.err())


if shutil.which("logger") is None:
    print("SKIP: logger (util-linux, Debian package bsdutils) is not installed")
    sys.exit(SKIP)
Test("push").run(body, 60)
