"""The output is rotated and removed while lines stream in. Rotation as
logrotate does it: rename the file, then SIGHUP - the collector reopens the
path, and the lines acknowledged after the reopen are in the new file.
Removal without a word: the collector notices that the file it writes has no
name left (st_nlink == 0), creates it again and writes there every line it
acknowledges - none disappears into the removed file's invisible inode.

Regression (both backends): SIGHUP killed the collector (no handler), and
after a removal acknowledged lines went into the removed inode."""
import asyncio
import signal

from lcsupport import Test, check, records

PHASE = 200


class Source:
    """A source driven by the test: send(lines) writes them on the current
    connection; acks counts the ACKs received."""

    def __init__(self):
        self.writer = None
        self.acks = 0
        self.connected = asyncio.Event()

    async def handle(self, reader, writer):
        self.writer = writer
        self.connected.set()
        while (line := await reader.readline()) == b"ACK\n":
            self.acks += 1
        writer.close()

    async def send(self, lines, timeout=15):
        want = self.acks + len(lines)
        for line in lines:  # one write each: many loop iterations, many flushes
            self.writer.write(line + b"\n")
            await self.writer.drain()
            await asyncio.sleep(0)
        deadline = asyncio.get_running_loop().time() + timeout
        while self.acks < want:
            check(asyncio.get_running_loop().time() < deadline,
                  f"{self.acks} ACKs, want {want}")
            await asyncio.sleep(0.01)


def phase(n):
    return [f"rotate {n} {i}".encode() for i in range(PHASE)]


def texts(path):
    return [text for _, _, text in records(path)]


async def body(t):
    src = Source()
    server = await asyncio.start_server(src.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = t.dir / "out.txt"
    c = t.collector("-o", out, f"127.0.0.1:{port}")
    await asyncio.wait_for(src.connected.wait(), 15)

    await src.send(phase(1))
    out.rename(t.dir / "out.txt.1")  # logrotate: rename, then SIGHUP
    c.send(signal.SIGHUP)
    await c.wait_text(r"reopened output", 10, stream="err")
    await src.send(phase(2))
    check(texts(t.dir / "out.txt.1") == [x.decode() for x in phase(1)], "the rotated file")
    check(texts(out) == [x.decode() for x in phase(2)], "the file opened on SIGHUP")

    out.unlink()  # removed without a word
    await src.send(phase(3))
    check(out.exists(), "the removed output was not created again:\n" + c.err())
    check(texts(out) == [x.decode() for x in phase(3)],
          f"lines acknowledged after the removal are not all in the output:\n{c.err()}")
    check("was removed: creating it again" in c.err(), c.err())
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    server.close()


Test("rotate").run(body, 60)
