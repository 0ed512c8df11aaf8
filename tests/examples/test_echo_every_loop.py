"""examples/echo_server --loops N (a server on every loop, SO_REUSEPORT):
driven by a plain asyncio client, not coio. Many connections, each sending
messages of many sizes (1 B to 256 KiB, half-closed at the end); every byte
echoed must come back intact and in order. With 64 connections each loop
must have served some (the kernel's hash puts a connection on a given one of
n loops with probability 1/n: all 64 missing one of 2 loops is 2^-63), and
SIGTERM must end every loop cleanly: exit status 0, one "loop I served N
connections" line per loop, and nothing else on stderr (a sanitizer report
would be there)."""
import argparse
import asyncio
import random
import re
import signal

from exsupport import Example, check, run

CONNECTIONS = 64
SIZES = [1, 7, 64, 1000, 4096, 65536, 262144]


async def client(port, seed):
    rnd = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = bytearray()
    got = bytearray()

    async def receive():
        while True:
            data = await reader.read(65536)
            if not data:
                return
            got.extend(data)

    receiver = asyncio.create_task(receive())
    for _ in range(4):
        msg = rnd.randbytes(rnd.choice(SIZES))
        sent.extend(msg)
        writer.write(msg)
        await writer.drain()
    writer.write_eof()
    await receiver  # the server closes once it has echoed everything
    writer.close()
    check(got == sent, f"connection {seed}: sent {len(sent)} bytes, got {len(got)} back"
          + ("" if len(got) != len(sent) else " (different bytes)"))


async def body(workdir, exe, loops):
    srv = Example([exe, "--port", "0", "--loops", str(loops)], workdir, f"echo{loops}")
    try:
        port = await srv.port()
        await asyncio.gather(*(client(port, loops * 1000 + i) for i in range(CONNECTIONS)))
        status = await srv.stop(signal.SIGTERM)
    finally:
        srv.kill()
    err = srv.err()
    check(status == 0, f"--loops {loops}: exit status {status}, stderr:\n{err}")
    served = {int(i): int(n) for i, n in
              re.findall(r"^loop (\d+) served (\d+) connections$", err, re.M)}
    check(sorted(served) == list(range(loops)),
          f"--loops {loops}: expected a report from each loop, stderr:\n{err}")
    check(sum(served.values()) == CONNECTIONS,
          f"--loops {loops}: {sum(served.values())} connections served, {CONNECTIONS} made")
    check(all(n > 0 for n in served.values()), f"--loops {loops}: a loop served none: {served}")
    others = [line for line in err.splitlines() if not re.match(r"loop \d+ served", line)]
    check(not others, f"--loops {loops}: unexpected stderr:\n{err}")
    print(f"--loops {loops}: served per loop {served}")


async def main(workdir, exe):
    for loops in (2, 4):
        await body(workdir, exe, loops)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo-server", required=True)
    a = ap.parse_args()
    run(lambda workdir: main(workdir, a.echo_server), 60)
