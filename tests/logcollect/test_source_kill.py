"""A source killed and restarted mid-run, and a source's peer that sends
ACKs it should not.

1. log_source (--state) is killed with SIGKILL once the collector has
   written a third of its lines, and restarted on the same port from its
   state file. The collector reconnects; in the end every line 1..N is in
   the output, and the only repeats are the restarted source's resend: the
   numbers rise, fall back once (to no more than one past where they were)
   and rise to N. Nothing is lost, the restarted source sees every line
   acknowledged, and no ACK was out of place.
2. A peer of log_source (this test, playing the collector) sends more ACKs
   than lines it was sent, a word that is not ACK and an over-long line:
   log_source counts each as a bad ACK, acknowledges no line that was not
   sent, and goes on to send and complete the rest. (ACKs carry no number:
   one per line, in order, on the line's connection, so an ACK cannot be
   out of order, and one for a connection that is gone cannot arrive.)"""
import asyncio
import signal

from lcsupport import Test, check, records, summary_json, wait_port_free

N = 3000
KILL_AT = N // 3


async def killed_and_restarted(t):
    state = t.dir / "src.state"
    argv = ["--name", "k", "--lines", N, "--line-bytes", 40, "--rate", 2000, "--state", state]
    src, (port,) = await t.log_source(*argv, name="src-1")
    out = t.dir / "out.txt"
    c = t.collector("-o", out, "--backoff-min", 20, "--backoff-max", 100, f"127.0.0.1:{port}")
    for _ in range(1500):  # bounded: 30 s
        if len(records(out, growing=True)) >= KILL_AT:
            break
        check(c.running(), f"collector exited:\n{c.err()[-3000:]}")
        await asyncio.sleep(0.02)
    else:
        check(False, f"fewer than {KILL_AT} lines written in 30 s")
    src.send(signal.SIGKILL)  # the state file is whatever was saved last
    await src.wait_exit(10)
    await wait_port_free(port, 10)  # io_uring: the killed ring still holds the listener
    again = t.spawn([t.a.log_source, "--port", port, *argv], "src-2")
    await again.wait_text(r"^listening on 127\.0\.0\.1:\d+$", 15)
    await again.wait_text(r'"event":"all_acked"', 60)
    check(await c.stop() == 0, f"collector failed:\n{c.err()[-3000:]}")
    check(await again.stop() == 0, "log_source exit status")
    s = summary_json(again.out())
    check(s["acked"] == N and s["bad_acks"] == 0, f"restarted log_source summary {s}")

    seqs = []
    for source, flag, text in records(out):
        check(source == f"127.0.0.1:{port}", f"record from {source!r}")
        if flag == "!":
            continue  # a line cut by the kill, written as aborted: resent whole
        check(flag == "", f"unexpected flag {flag!r}: {text[:60]!r}")
        seqs.append(int(text.split(" ", 2)[1]))
    drops = [i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]]
    check(len(drops) <= 1, f"the numbers fall back {len(drops)} times: at {drops[:5]}")
    if drops:
        i = drops[0]
        check(seqs[:i] == list(range(1, i + 1)) and seqs[i:] == list(range(seqs[i], N + 1)),
              "the lines are not 1..m then a resend from k <= m + 1 up to N")
        print(f"killed after line {seqs[i - 1]}; the restarted source resent from {seqs[i]} "
              f"({seqs[i - 1] - seqs[i] + 1} duplicates)")
    else:
        check(seqs == list(range(1, N + 1)), "lines missing or out of order")
        print("no line was resent")


async def bad_acks(t):
    src, (port,) = await t.log_source("--name", "b", "--lines", 10, "--window", 5,
                                      "--line-bytes", 8, name="src-acks")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    first = [await asyncio.wait_for(reader.readline(), 10) for _ in range(5)]
    check([int(x.split()[1]) for x in first] == [1, 2, 3, 4, 5], f"first lines {first}")
    # 5 ACKs for the 5 lines, 2 for lines not sent yet (the window holds
    # line 6 back until an ACK is read), "NAK", 100 bytes of no ACK: one
    # write, so log_source reads it at once, before it sends line 6.
    writer.write(b"ACK\n" * 7 + b"NAK\n" + b"x" * 100 + b"\n")
    await writer.drain()
    rest = [await asyncio.wait_for(reader.readline(), 10) for _ in range(5)]
    check([int(x.split()[1]) for x in rest] == [6, 7, 8, 9, 10], f"the other lines {rest}")
    writer.write(b"ACK\n" * 5)
    await writer.drain()
    await src.wait_text(r'"event":"all_acked"', 10)
    writer.close()
    await writer.wait_closed()
    check(await src.stop() == 0, "log_source exit status")
    s = summary_json(src.out())
    check(s["sent"] == 10 and s["acked"] == 10 and s["resent"] == 0 and s["bad_acks"] == 4,
          f"log_source summary {s} (want sent 10, acked 10, resent 0, bad_acks 4)")


async def body(t):
    await killed_and_restarted(t)
    await bad_acks(t)


Test("source_kill").run(body, 120)
