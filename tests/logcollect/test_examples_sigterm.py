"""Every long-running example stops cleanly on SIGTERM (and SIGINT): it exits
0 within a few seconds - also with a client connected - so that a sanitizer
build runs its leak check at exit; and nothing in its stderr comes from a
sanitizer (AddressSanitizer, LeakSanitizer, UBSan "runtime error:").
The examples are echo_server, stream_echo_server, udp_echo,
thread_echo_server, coio-logcollect (--listen; and on 2 loops, --loops 2,
where the signal reaches loop 0 and every loop stops) and log_source; they are
found next to coio-logcollect (build/.../examples/).

Regression (both backends): echo_server had no signal handling - SIGTERM
killed it, so a sanitizer never ran its leak check on it."""
import asyncio
import re
import signal
import socket
from pathlib import Path

from lcsupport import Test, check

SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: \w+Sanitizer")


async def tcp_client(port, hello, expect):
    """A client that says something, reads the answer, and stays connected."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(hello)
    await writer.drain()
    if expect is not None:
        got = await asyncio.wait_for(reader.readexactly(len(expect)), 10)
        check(got == expect, f"answer {got!r}, want {expect!r}")
    return reader, writer


async def run_one(t, name, argv, ready, stream, sig, client):
    exe = Path(t.a.collector).parent / argv[0]
    check(exe.exists(), f"{exe} is not built")
    p = t.spawn([exe, *argv[1:]], f"{name}-{sig.name}")
    port = int((await p.wait_text(ready, 15, stream=stream))[0])
    conn = await client(port) if client else None
    rc = await p.stop(sig, timeout=15)
    if conn is not None:
        conn[1].close()
    err = p.err()
    check(rc == 0, f"{name}: exit status {rc} after {sig.name}:\n{err[-2000:]}")
    check(not SANITIZER.search(err), f"{name}: a sanitizer report:\n{err[-4000:]}")
    print(f"{name}: {sig.name} -> exit 0")


async def udp_client(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(10)
    s.sendto(b"ping", ("127.0.0.1", port))
    check(s.recvfrom(100)[0] == b"ping", "udp_echo did not echo")
    s.close()
    return None


async def stream_goodbye(t, sig):
    """stream_echo_server lets a connection finish: its next line gets a
    goodbye and the connection is closed; then the server exits 0."""
    exe = Path(t.a.collector).parent / "stream_echo_server"
    p = t.spawn([exe], f"stream_echo_server-{sig.name}")
    port = int((await p.wait_text(r"^listening on 127\.0\.0\.1:(\d+)", 15))[0])
    reader, writer = await tcp_client(port, b"hello\n", b"hello\n")
    p.send(sig)
    await p.wait_text(r"closing the listener, finishing 1 connection", 10)
    writer.write(b"one more\n")
    await writer.drain()
    rest = await asyncio.wait_for(reader.read(), 10)
    check(rest == b"server shutting down, bye\n", f"stream_echo_server said {rest!r}")
    writer.close()
    rc = await p.wait_exit(10)
    check(rc == 0 and not SANITIZER.search(p.err()), f"stream_echo_server: {rc}\n{p.err()}")
    print(f"stream_echo_server: {sig.name} -> goodbye, exit 0")


async def body(t):
    echo = lambda port: tcp_client(port, b"ping\n", b"ping\n")  # noqa: E731
    silent = lambda port: tcp_client(port, b"", None)  # noqa: E731
    examples = [
        ("echo_server", ["echo_server", "--port", "0"], r"listening on 127\.0\.0\.1:(\d+)", "out",
         echo),
        ("thread_echo_server", ["thread_echo_server", "--port", "0"],
         r"^listening on 127\.0\.0\.1:(\d+)", "out", echo),
        ("udp_echo", ["udp_echo"], r"udp echo on 127\.0\.0\.1:(\d+)", "out", udp_client),
        ("coio-logcollect", ["coio-logcollect", "--listen", "0", "-o", "/dev/null"],
         r"push: listening on 127\.0\.0\.1:(\d+)", "err",
         lambda port: tcp_client(port, b"<13>1 unfinished", None)),
        ("coio-logcollect-loops2",
         ["coio-logcollect", "--loops", "2", "--listen", "0", "-o", "/dev/null"],
         r"push: listening on 127\.0\.0\.1:(\d+)", "err",
         lambda port: tcp_client(port, b"<13>1 unfinished", None)),
        ("log_source", ["log_source", "--port", "0", "--lines", "5"],
         r"^listening on 127\.0\.0\.1:(\d+)", "out", silent),
    ]
    for sig in (signal.SIGTERM, signal.SIGINT):
        for name, argv, ready, stream, client in examples:
            await run_one(t, name, argv, ready, stream, sig, client)
        await stream_goodbye(t, sig)


Test("examples-sigterm").run(body, 90)
