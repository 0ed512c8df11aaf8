"""examples/tcp_proxy in front of a Python echo server: data both ways
intact, a half-close passed on (the backend sees EOF and the client still
gets the echo and then EOF), a backend reset reaching the client as a reset,
the idle timeout resetting a silent pair, and SIGINT closing the rest and
exiting 0."""
import argparse
import asyncio
import os
import signal
import socket
import struct

from exsupport import Example, check, run


async def backend_handler(reader, writer):
    """Echoes until EOF, then closes; resets the connection on 'reset\\n'."""
    while True:
        try:
            data = await reader.read(65536)
        except ConnectionResetError:
            return  # the proxy's idle timeout resets both sides
        if not data:
            break
        if data == b"reset\n":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        writer.write(data)
        await writer.drain()
    writer.close()


async def read_all(reader):
    chunks = []
    while True:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


async def body(workdir):
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp-proxy", required=True)
    args = ap.parse_args()
    backend = await asyncio.start_server(backend_handler, "127.0.0.1", 0)
    target = backend.sockets[0].getsockname()[1]
    proxy = Example([args.tcp_proxy, "--listen", "0", "--target", f"127.0.0.1:{target}",
                     "--idle-timeout", "1"], workdir, "tcp_proxy")
    try:
        port = await proxy.port()

        # Data both ways, then a half-close: the echo still comes back.
        payload = os.urandom(3 * 1024 * 1024)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(payload)
        await w.drain()
        w.write_eof()
        echoed = await read_all(r)
        check(echoed == payload, f"echo of {len(payload)} bytes came back as {len(echoed)}")
        w.close()

        # A reset from the backend reaches the client as a reset.
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"reset\n")
        await w.drain()
        try:
            data = await asyncio.wait_for(r.read(100), 5)
            check(False, f"read {data!r} instead of a reset")
        except ConnectionResetError:
            pass
        w.close()

        # A silent pair is reset after the idle timeout (1 s).
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"ping\n")
        check(await asyncio.wait_for(r.readexactly(5), 5) == b"ping\n", "no echo")
        start = asyncio.get_running_loop().time()
        try:
            data = await asyncio.wait_for(r.read(100), 5)
            check(False, f"read {data!r} instead of a reset")
        except ConnectionResetError:
            pass
        waited = asyncio.get_running_loop().time() - start
        check(0.5 < waited < 4, f"reset after {waited:.2f} s, idle timeout is 1 s")
        w.close()

        # SIGINT closes a connection in flight and exits 0.
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"last\n")
        check(await asyncio.wait_for(r.readexactly(5), 5) == b"last\n", "no echo")
        rc = await proxy.stop(signal.SIGINT)
        check(rc == 0, f"exit status {rc}:\n{proxy.err()}")
        check(await asyncio.wait_for(r.read(100), 5) == b"", "no EOF after SIGINT")
        w.close()
        out = proxy.out()
        check(f"{len(payload)} bytes up, {len(payload)} down\n" in out, out)
        check(", reset\n" in out and ", idle timeout\n" in out and "bye\n" in out, out)
        check(proxy.err() == "", f"stderr:\n{proxy.err()}")
        print(out)
    finally:
        proxy.kill()
        backend.close()


if __name__ == "__main__":
    run(body, 60)
