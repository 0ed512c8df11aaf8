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
Any failure ends with a traceback and exit status 1.
"""
import argparse
import asyncio
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "client"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--port", type=int)
    p.add_argument("--lines", type=int, default=3)
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--abort", action="store_true")
    args = p.parse_args()
    coro = server(args) if args.mode == "server" else client(args)
    asyncio.run(asyncio.wait_for(coro, 60))


if __name__ == "__main__":
    sys.exit(main())
