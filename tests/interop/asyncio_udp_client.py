#!/usr/bin/env python3
"""asyncio datagram client for tests/net/datagram_test.cpp: sends 20 datagrams
of 1 to 8,000 bytes (asyncio 3.11's transport.sendto silently drops an empty
one) one at a time to the coio echo server on 127.0.0.1:PORT, checks that each
comes back unchanged from the server's address, and prints "ok 20" - or the
first problem, exiting 1. Each echo waits at most 20 s (the machine may be
loaded)."""
import asyncio
import sys

COUNT = 20


class Client(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait((data, addr))

    def error_received(self, exc):
        self.queue.put_nowait((exc, None))


async def main(port):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        Client, remote_addr=("127.0.0.1", port))
    try:
        for i in range(COUNT):
            size = 1 if i == 0 else (i * 421) % 8001
            payload = bytes((i * 7 + k) % 256 for k in range(size))
            transport.sendto(payload)
            data, addr = await asyncio.wait_for(proto.queue.get(), 20)
            if isinstance(data, Exception):
                print(f"error at datagram {i}: {data!r}")
                return 1
            if data != payload:
                print(f"datagram {i}: sent {len(payload)} bytes, got {len(data)} different")
                return 1
            if addr != ("127.0.0.1", port):
                print(f"datagram {i}: echo from {addr}")
                return 1
    except asyncio.TimeoutError:
        print("no echo within 20 s")
        return 1
    finally:
        transport.close()
    print(f"ok {COUNT}")
    return 0


sys.exit(asyncio.run(main(int(sys.argv[1]))))
