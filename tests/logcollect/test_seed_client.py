"""The seeds' Python client against log_source: stream_logs (seed 003) -
asyncio.open_connection, reader.read(1024), split lines, decode with
errors="replace", write(b"ACK\n") + drain() per line - must receive every line
log_source generates, and log_source must count every ACK. Then the same
client, reconnecting, against a log_source that drops connections in the
middle of lines: at-least-once, every line still arrives and is acknowledged."""
import asyncio

from lcsupport import Test, check, expected_line, summary_json

N = 3000
LINE_BYTES = 100


async def stream_logs(host, port, received, expected):
    """Seed 003's stream_logs, stopping once `expected` distinct lines arrived
    (the seed's loop runs until the server closes)."""
    reader, writer = await asyncio.open_connection(host, port)
    buffer = b""
    try:
        while len(set(received)) < expected:
            chunk = await reader.read(1024)  # up to 1024 bytes when any is ready
            if not chunk:  # empty: remote closed
                break
            buffer += chunk
            while b"\n" in buffer:  # split off each complete line
                line, buffer = buffer.split(b"\n", 1)
                text = line.decode("utf-8", errors="replace")
                received.append(text)  # process_log_line
                writer.write(b"ACK\n")  # send an ACK back for this line
                await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def body(t):
    # 1. One connection, no failures: every line exactly once.
    src, (port,) = await t.log_source("--name", "seed", "--lines", N, "--line-bytes", LINE_BYTES,
                                      "--seed", 7)
    received = []
    await stream_logs("127.0.0.1", port, received, N)
    want = [expected_line("seed", 7, q, LINE_BYTES) for q in range(1, N + 1)]
    check(received == want, "the seed client did not receive exactly lines 1..N in order")
    await src.wait_text(r'"event":"all_acked"', 10)
    check(await src.stop() == 0, f"log_source exit status {src.p.returncode}")
    s = summary_json(src.out())
    check(s["sent"] == N and s["acked"] == N and s["resent"] == 0 and s["bad_acks"] == 0,
          f"log_source summary {s}")

    # 2. log_source drops connections mid-line; the client reconnects as the
    # seed would be wrapped in a retry loop: every line arrives at least once.
    src, (port,) = await t.log_source("--name", "drop", "--lines", N, "--line-bytes", LINE_BYTES,
                                      "--seed", 8, "--drop-probability", "0.01",
                                      name="log_source_drop")
    received = []
    connections = 0
    while len(set(received)) < N:
        check(connections < 2000, "too many reconnects")
        connections += 1
        try:
            await stream_logs("127.0.0.1", port, received, N)
        except ConnectionError:
            pass
    want = {expected_line("drop", 8, q, LINE_BYTES) for q in range(1, N + 1)}
    check(set(received) == want, "lines missing or corrupt after reconnects")
    await src.wait_text(r'"event":"all_acked"', 10)
    check(await src.stop() == 0, "log_source exit status")
    s = summary_json(src.out())
    check(s["acked"] == N and s["sent"] == N and s["drops"] > 0 and s["bad_acks"] == 0,
          f"log_source summary {s}")
    check(len(received) - N <= s["resent"],
          f"{len(received) - N} duplicates but only {s['resent']} lines resent")
    print(f"drops {s['drops']}, connections {connections}, resent {s['resent']}, "
          f"duplicates {len(received) - N}")


Test("seed-client").run(body, 90)
