"""Timeouts against peers that hold the collector without doing anything
wrong at the TCP level - each case hung for ever before (both backends):

- a source that never reads its ACKs: once they back up, --ack-timeout
  disconnects it and it is reconnected (with backoff) and served again;
- a source whose listen queue is full drops our SYN: --connect-timeout gives
  the connect up and retries until the source accepts;
- push senders on --listen: one that sends nothing is closed after
  --idle-timeout, one that trickles a byte now and then without ever
  finishing its message (slowloris) after --message-timeout, and one that
  sends whole messages at a steady pace is left alone."""
import asyncio
import socket

from lcsupport import Test, check, records, wait_until
from pyserver import LogServer


async def ack_timeout(t):
    """Connection 0 floods short lines and never reads; later ones behave."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted ones
    lsock.bind(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    state = {"connections": 0, "acks": 0, "flood_ended": asyncio.Event()}
    served = asyncio.Event()

    async def handle(reader, writer):
        index = state["connections"]
        state["connections"] += 1
        try:
            if index == 0:
                chunk = b"m\n" * 4096
                while True:  # lines until the collector gives up; ACKs never read
                    writer.write(chunk)
                    await writer.drain()
            else:
                writer.write(b"served again\n")
                await writer.drain()
                if await reader.readline() == b"ACK\n":
                    served.set()
                await reader.read()
        except ConnectionError:
            pass
        finally:
            if index == 0:
                state["flood_ended"].set()
            writer.close()

    server = await asyncio.start_server(handle, sock=lsock)
    out = t.dir / "ack.txt"
    c = t.collector("-o", out, "--ack-timeout", 1, "--backoff-min", 20, "--backoff-max", 100,
                    f"127.0.0.1:{port}", name="collector-ack")
    await asyncio.wait_for(served.wait(), 30)
    check(state["flood_ended"].is_set(), "the flooding connection is still open")
    err = c.err()
    check("no ACK progress for 1 s (--ack-timeout)" in err or "Connection timed out" in err,
          "the reason is not reported:\n" + err)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    server.close()
    check(records(out)[-1][2] == "served again", "the line of the second connection")


async def connect_timeout(t):
    """A listen queue of 0 with one connection in it: SYNs are dropped."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the queue
    c = t.collector("-o", t.dir / "connect.txt", "--connect-timeout", 0.5, "--backoff-min", 20,
                    "--backoff-max", 200, f"127.0.0.1:{port}", name="collector-connect")
    await c.wait_text(rf"source 127\.0\.0\.1:{port}: connect to 127\.0\.0\.1:{port} "
                      r"\(--connect-timeout\): Connection timed out; retrying", 10, stream="err")
    conn, _ = lsock.accept()  # room in the queue again
    conn.close()
    filler.close()
    srv = await LogServer([b"connected at last"]).start(sock=lsock)
    await asyncio.wait_for(srv.all_acked.wait(), 20)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    srv.close()


async def push_timeouts(t):
    out = t.dir / "push.txt"
    c = t.collector("--listen", 0, "-o", out, "--idle-timeout", 2, "--message-timeout", 2,
                    name="collector-push")
    port = int((await c.wait_text(r"push: listening on 127\.0\.0\.1:(\d+)", 10, stream="err"))[0])
    loop = asyncio.get_running_loop()

    async def closed_after(reader):
        started = loop.time()
        try:
            data = await asyncio.wait_for(reader.read(), 15)
        except ConnectionResetError:
            # Closed while a byte of ours was unread (the trickle sender's):
            # the kernel answers that with a reset, not a FIN.
            data = b""
        check(data == b"", f"the collector sent {data!r}")
        return loop.time() - started

    async def silent():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        took = await closed_after(reader)
        writer.close()
        return took

    async def trickle():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reading = asyncio.create_task(closed_after(reader))
        try:
            for b in b"<13>1 never finished " * 10:
                if reading.done():
                    break
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(0.25)
        except ConnectionError:
            pass
        took = await reading
        writer.close()
        return took

    async def steady():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(20):  # 5 s of a message every 0.25 s: neither limit applies
            writer.write(f"<13>1 steady {i}\n".encode())
            await writer.drain()
            await asyncio.sleep(0.25)
        check(not reader.at_eof(), "the steady sender was closed")
        writer.close()

    took_silent, took_trickle, _ = await asyncio.gather(silent(), trickle(), steady())
    # The collector's timer starts when it accepts, which can be a few ms
    # before open_connection returns here (seen: 1.996 s), hence 1.9.
    check(1.9 <= took_silent < 6, f"the silent connection was closed after {took_silent:.3f} s")
    check(1.9 <= took_trickle < 6,
          f"the trickling connection was closed after {took_trickle:.3f} s")
    await wait_until(lambda: sum(1 for r in records(out, growing=True) if "steady" in r[2]) == 20,
                     10, "the steady sender's 20 messages")
    err = c.err()
    check("sent nothing for 2 s (--idle-timeout)" in err, err)
    check("unfinished for 2 s (--message-timeout)" in err, err)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")


async def body(t):
    await ack_timeout(t)
    await connect_timeout(t)
    await push_timeouts(t)


Test("timeouts").run(body, 90)
