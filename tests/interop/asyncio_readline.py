#!/usr/bin/env python3
"""Print what asyncio's StreamReader does on the cases tests/net/stream_test.cpp
checks coio against: over-long lines with a small limit, EOF mid-line,
readexactly at EOF. One result per line: "line <repr>", "overrun <message>",
"incomplete <partial repr> <expected>", "at_eof <bool>"."""
import asyncio
import sys

PAYLOAD = b"x" * 100 + b"\nshort\n" + b"y" * 30


async def main():
    async def handle(reader, writer):
        writer.write(PAYLOAD)
        await writer.drain()
        writer.write_eof()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=16)
    for _ in range(4):
        try:
            print("line", repr(await reader.readline()))
        except ValueError as e:  # asyncio turns LimitOverrunError into ValueError here
            print("overrun", e)
    print("at_eof", reader.at_eof())
    writer.close()

    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=16)
    try:
        await reader.readexactly(200)
    except asyncio.IncompleteReadError as e:
        print("incomplete", len(e.partial), e.expected)
    writer.close()
    srv.close()
    await srv.wait_closed()


asyncio.run(main())
sys.stdout.flush()
