"""A log source written with Python asyncio, for testing coio-logcollect
against a server nobody here wrote in C++.

It serves a fixed list of lines (bytes without '\n'). Each connection starts
at the first line not acknowledged yet (one "ACK\n" per line, in order) and
sends the rest, so a collector that reconnects gets every unacknowledged line
again. A per-connection `plan` can cut a connection short: after sending
`lines` lines and waiting until they are acknowledged, send `partial` bytes of
the next line and close with RST or FIN - the case of a source that dies in
the middle of a line.
"""
import asyncio
import socket
import struct


class LogServer:
    def __init__(self, lines, plans=None, write_size=None, host="127.0.0.1", port=0):
        self.lines = lines
        self.plans = plans or {}  # connection index -> dict(lines=, partial=, how="rst"|"fin")
        self.write_size = write_size  # split writes into pieces of this size
        self.host, self.port = host, port
        self.acked = 0  # watermark: lines[0:acked] acknowledged
        self.acks = 0  # "ACK\n" received in total
        self.bad = 0  # anything else received, or an ACK for no line
        self.connections = 0
        self.all_acked = asyncio.Event()
        self.closed = asyncio.Event()  # set whenever a connection has ended
        self.server = None

    async def start(self, sock=None):
        """Listen on host:port, or on `sock` (bound, not yet listening)."""
        if sock is not None:
            self.server = await asyncio.start_server(self.handle, sock=sock)
        else:
            self.server = await asyncio.start_server(self.handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def close(self):
        if self.server:
            self.server.close()

    async def _send(self, writer, data):
        step = self.write_size or len(data) or 1
        for i in range(0, len(data), step):
            writer.write(data[i:i + step])
            await writer.drain()
            if self.write_size:
                await asyncio.sleep(0)

    async def _read_acks(self, reader, state):
        while True:
            line = await reader.readline()
            if not line:
                return
            if line == b"ACK\n" and self.acked < state["sent"]:
                self.acked += 1
                self.acks += 1
                if self.acked == len(self.lines):
                    self.all_acked.set()
            else:
                self.bad += 1

    async def handle(self, reader, writer):
        index = self.connections
        self.connections += 1
        plan = self.plans.get(index)
        state = {"sent": self.acked}
        acks = asyncio.create_task(self._read_acks(reader, state))
        try:
            start = self.acked
            end = len(self.lines) if plan is None else min(len(self.lines), start + plan["lines"])
            data = b"".join(line + b"\n" for line in self.lines[start:end])
            state["sent"] = end
            await self._send(writer, data)
            if plan is not None:
                while self.acked < end and not acks.done():
                    await asyncio.sleep(0.01)
                if end < len(self.lines):
                    writer.write(self.lines[end][:plan["partial"]])
                    await writer.drain()
                    await asyncio.sleep(plan.get("pause", 0.2))  # let the collector read it
                sock = writer.get_extra_info("socket")
                if plan.get("how", "rst") == "rst":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
                acks.cancel()
                return
            await acks  # until the collector closes
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if not acks.done():
                acks.cancel()
            writer.close()
            self.closed.set()
