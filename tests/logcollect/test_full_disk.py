"""A real full disk: the output is on a 1 MiB tmpfs (mounted in a private
mount namespace this test makes; SKIP where that is not permitted) that a
filler file has mostly used up. The collector must fail with "No space left
on device" (exit 1) leaving the output in whole records - tmpfs accepts the
write that crosses the limit in part, so without care the file ends in a torn
record - and acknowledge only what was written. Restarted once there is room,
it goes on without gluing anything onto the old records, and every line ends
up in the output exactly as sent. Then a torn record left by a collector
killed inside a write (made by hand) gets a newline and a torn-record marker
before the next record.

Regression (both backends): on ENOSPC the output ended in a torn record
("...\\n1") and the next run glued its first record onto it."""
import asyncio
import subprocess

from lcsupport import Test, check, records, run_in_namespace
from pyserver import LogServer

N = 5000  # lines of ~100 bytes: about 500 KB in plain records


def mount_tmpfs(path, size):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"mount tmpfs: {r.stderr.strip()}")


async def body(t):
    disk = t.dir / "disk"
    mount_tmpfs(disk, "1m")
    try:
        await full_disk(t, disk)
    finally:
        subprocess.run(["umount", str(disk)], timeout=30)


async def full_disk(t, disk):
    filler = disk / "filler"
    filler.write_bytes(b"f" * (700 << 10))
    out = disk / "out.txt"
    lines = [f"disk {i} ".encode() + b"d" * (80 + i % 17) for i in range(N)]
    srv = await LogServer(lines, write_size=3000).start()
    source = f"127.0.0.1:{srv.port}"

    # 1. The disk fills up: exit 1, whole records, nothing unwritten ACKed.
    c = t.collector("-o", out, source, name="collector-full")
    rc = await c.wait_exit(30)
    check(rc == 1, f"exit status {rc} on a full disk:\n{c.err()}")
    check("write to " + str(out) + ": No space left on device" in c.err(), c.err())
    data = out.read_bytes()
    check(data.endswith(b"\n"), f"the output ends in a torn record: ...{data[-60:]!r}")
    got = [text for _, _, text in records(out)]
    check(got == [x.decode() for x in lines[:len(got)]], "the records are not the lines in order")
    check(srv.acked <= len(got), f"{srv.acked} lines acknowledged, {len(got)} written")
    check(0 < len(got) < N, f"{len(got)} of {N} lines written: the disk did not fill up")
    print(f"full disk: {len(got)} lines written, {srv.acked} acknowledged, "
          f"{len(data)} bytes in whole records")

    # 2. Room again: the restarted collector writes the rest.
    filler.unlink()
    c = t.collector("-o", out, source, name="collector-room")
    await asyncio.wait_for(srv.all_acked.wait(), 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    got = [text for _, _, text in records(out)]
    check(set(got) == {x.decode() for x in lines}, "lines missing after the restart")
    check(got[-1] == lines[-1].decode(), "the last line is not last")

    # 3. A record torn by a collector killed inside a write: the next run
    # writes a newline and a marker first, and its records stay whole.
    with open(out, "ab") as f:
        f.write(f"{source}\tdisk 12 dd".encode())
    late = await LogServer([b"after the torn record"]).start()
    c = t.collector("-o", out, f"127.0.0.1:{late.port}", name="collector-torn")
    await asyncio.wait_for(late.all_acked.wait(), 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    check("ends inside a record (" in c.err(), "no message about the torn record:\n" + c.err())
    recs = records(out, torn_ok=True)
    check(recs[-1] == (f"127.0.0.1:{late.port}", "", "after the torn record"),
          f"the record after the torn one: {recs[-1]}")
    tail = out.read_bytes().splitlines()[-3:]
    check(tail[0] == f"{source}\tdisk 12 dd".encode() and tail[1].startswith(b"coio-logcollect!\t"),
          f"torn record and marker: {tail}")
    srv.close()
    late.close()


run_in_namespace("mount")
Test("full-disk").run(body, 60)
