#!/usr/bin/env python3
"""A TLS peer that nobody here wrote the TLS of: Python's ssl module under
asyncio, for tests/tls/interop_test.cpp.

  tls_peer.py server --cert C --key K [--starttls] [--abort]
      Listens on 127.0.0.1:0, prints "port N", serves one connection: echoes
      lines until EOF (--starttls: first "STARTTLS" in plaintext, answered
      "GO", then the TLS handshake; --abort: after the handshake sends
      "partial" and closes the TCP connection without a close_notify), then
      prints "done LINES VERSION" and exits.
  tls_peer.py client --port P --ca CA [--starttls] [--lines N] [--abort]
      Connects to 127.0.0.1:P (server name "localhost"), sends N lines and
      checks each echo (--abort: sends one line, then closes the TCP
      connection without a close_notify), prints "ok N VERSION".
  tls_peer.py corrupt --port P --ca CA
      With the blocking ssl module: one line echoed, then a forged
      application-data record (random bytes) written under the session;
      prints "closed ALERT" once the server has answered with an alert and
      closed, "closed" if it closed without one.
Any failure ends with a traceback and exit status 1.
"""
import argparse
import asyncio
import os
import socket
import ssl
import sys


def say(*words):
    print(*words, flush=True)


async def echo(reader, writer):
    lines = 0
    while True:
        line = await reader.readline()
        if not line:
            return lines
        writer.write(line)
        await writer.drain()
        lines += 1


async def server(args):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    done = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        try:
            if args.starttls:
                assert await reader.readline() == b"STARTTLS\n"
                writer.write(b"GO\n")
                await writer.drain()
                await writer.start_tls(ctx)
            version = writer.get_extra_info("ssl_object").version()
            if args.abort:
                writer.write(b"partial\n")
                await writer.drain()
                writer.transport.abort()  # no close_notify
                done.set_result((0, version))
                return
            lines = await echo(reader, writer)
            writer.close()
            await writer.wait_closed()
            done.set_result((lines, version))
        except Exception as e:  # reported by the main task
            done.set_exception(e)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0,
                                     ssl=None if args.starttls else ctx)
    say("port", srv.sockets[0].getsockname()[1])
    lines, version = await asyncio.wait_for(done, 30)
    srv.close()
    await srv.wait_closed()
    say("done", lines, version)


async def client(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.starttls:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(ctx, server_hostname="localhost")
    else:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", args.port, ssl=ctx, server_hostname="localhost")
    version = writer.get_extra_info("ssl_object").version()
    n = 1 if args.abort else args.lines
    for i in range(n):
        line = b"line %d from python\n" % i
        writer.write(line)
        await writer.drain()
        back = await reader.readline()
        assert back == line, (back, line)
    if args.abort:
        writer.transport.abort()  # no close_notify
    else:
        writer.close()
        await writer.wait_closed()
    say("ok", n, version)


def corrupt(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    with socket.create_connection(("127.0.0.1", args.port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"before\n")
            got = b""
            while not got.endswith(b"\n"):
                got += s.recv(100)
            assert got == b"before\n", got
            # Under the TLS session, straight onto the TCP connection.
            os.write(s.fileno(), b"\x17\x03\x03\x00\x40" + os.urandom(64))
            try:
                data = s.recv(100)
                say("closed" if not data else "data %r" % data)
            except ssl.SSLError as e:
                say("closed", e.reason)
            except OSError as e:  # a reset after the alert
                say("closed", type(e).__name__)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "client", "corrupt"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--port", type=int)
    p.add_argument("--lines", type=int, default=3)
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--abort", action="store_true")
    args = p.parse_args()
    if args.mode == "corrupt":
        return corrupt(args)
    coro = server(args) if args.mode == "server" else client(args)
    asyncio.run(asyncio.wait_for(coro, 60))


if __name__ == "__main__":
    sys.exit(main())
