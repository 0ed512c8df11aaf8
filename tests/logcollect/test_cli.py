"""The command line: --help documents the guarantee and the over-long-line
policy; usage errors exit 2; runtime failures exit 1 with a message naming
the file or address and the errno text; a refused source is retried (not a
failure); an output that cannot be written makes the collector exit 1 WITHOUT
acknowledging the line it could not write."""
import asyncio
import signal
import socket
import subprocess

from lcsupport import Test, check, collector_summary, refusing_port
from pyserver import LogServer


def run(t, *argv, timeout=20):
    p = subprocess.run([t.a.collector, *map(str, argv)], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


async def body(t):
    rc, out, err = run(t, "--help")
    check(rc == 0 and "Over-long lines" in out and "acknowledged only after" in out
          and "Exit status" in out and "Output integrity" in out and "--message-timeout" in out
          and "--loops N" in out and "tls://HOST:PORT" in out,
          f"--help: {rc}\n{out}")
    rc, out, _ = run(t, "--version")
    check(rc == 0 and out.startswith("coio-logcollect "), f"--version: {rc} {out!r}")
    rc, out, _ = run(t, "--list-backends")
    check(rc == 0 and out.split(), "--list-backends prints nothing")

    usage = [
        ([], "no sources"),
        (["localhost:514"], "numeric host"),
        (["127.0.0.1"], "expected HOST:PORT"),
        (["127.0.0.1:0"], "port 0"),
        (["127.0.0.1:9", "127.0.0.1:9"], "given twice"),
        (["--bogus", "127.0.0.1:9"], "unknown option --bogus"),
        (["--format", "xml", "127.0.0.1:9"], "bad value for --format"),
        (["--chunk-size", "0", "127.0.0.1:9"], "bad value for --chunk-size"),
        (["--max-line", "-5", "127.0.0.1:9"], "bad value for --max-line"),
        (["--backoff-min", "500", "--backoff-max", "100", "127.0.0.1:9"], "above --backoff-max"),
        (["--stats-interval", "soon", "127.0.0.1:9"], "bad value for --stats-interval"),
        (["--listen", "99999"], "bad value for --listen"),
        (["-o"], "needs a value"),
        (["--listen", "0", "--max-connections", "100000", "--push-memory", "64m"],
         "allows less than 1 KiB per connection"),
        (["--push-memory", "12x", "127.0.0.1:9"], "bad value for --push-memory"),
        (["--max-frame", "0", "127.0.0.1:9"], "bad value for --max-frame"),
        (["--keepalive", "1.5", "127.0.0.1:9"], "bad value for --keepalive"),
        (["--ack-timeout", "-1", "127.0.0.1:9"], "bad value for --ack-timeout"),
        (["--idle-timeout", "soon", "--listen", "0"], "bad value for --idle-timeout"),
        (["--listen-tls", "0"], "--listen-tls needs --tls-cert FILE and --tls-key FILE"),
        (["--listen-tls", "0", "--tls-cert", "c.pem"], "needs --tls-cert FILE and --tls-key"),
        (["--tls-key", "k.pem", "127.0.0.1:9"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "c", "--tls-key", "k", "127.0.0.1:9"],
         "--tls-cert and --tls-key are for --listen-tls or, with --tls-ca"),
        (["--tls-ca", "ca.pem", "--listen", "0"], "--tls-ca is for pull sources"),
        (["--listen-tls", "70000", "--tls-cert", "c", "--tls-key", "k"],
         "bad value for --listen-tls"),
        (["--loops", "257", "127.0.0.1:9"], "bad value for --loops: '257' (0 .. 256"),
        (["--loops", "two", "127.0.0.1:9"], "bad value for --loops: 'two'"),
        (["--loops", "-1", "127.0.0.1:9"], "bad value for --loops"),
        (["tls://127.0.0.1:9"], "tls://HOST:PORT sources need --tls-ca FILE"),
        (["tls://127.0.0.1:9", "127.0.0.1:9"], "given twice"),
    ]
    for argv, want in usage:
        rc, _, err = run(t, *argv)
        check(rc == 2 and want in err and "--help" in err, f"{argv}: exit {rc}, stderr {err!r}")
    bad_file = t.dir / "bad-sources.txt"
    bad_file.write_text("127.0.0.1:9\n# fine\nnot-an-address\n")
    rc, _, err = run(t, "--sources", bad_file)
    check(rc == 2 and f"{bad_file}:3:" in err, f"bad --sources line: {rc} {err!r}")

    rc, _, err = run(t, "--sources", t.dir / "missing.txt")
    check(rc == 1 and "missing.txt: No such file or directory" in err, f"missing: {rc} {err!r}")
    rc, _, err = run(t, "-o", "/nonexistent-dir/out.txt", "127.0.0.1:9")
    check(rc == 1 and "cannot open output /nonexistent-dir/out.txt: No such file or directory"
          in err, f"bad output: {rc} {err!r}")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    rc, _, err = run(t, "--listen", busy.getsockname()[1])
    busy.close()
    check(rc == 1 and "Address already in use" in err, f"busy --listen: {rc} {err!r}")
    # A certificate that cannot be loaded: exit 1 naming the file (or saying
    # that this coio has no TLS).
    rc, _, err = run(t, "--listen-tls", 0, "--tls-cert", t.dir / "missing.pem", "--tls-key",
                     t.dir / "missing.key")
    check(rc == 1 and "cannot listen for push senders over TLS" in err and
          (f"{t.dir}/missing.pem: No such file or directory" in err or "without TLS" in err),
          f"missing --tls-cert: {rc} {err!r}")
    rc, _, err = run(t, "--tls-ca", t.dir / "missing-ca.pem", "127.0.0.1:9")
    check(rc == 1 and "cannot use --tls-ca" in err and
          ("missing-ca.pem" in err or "without TLS" in err), f"missing --tls-ca: {rc} {err!r}")

    # A refused source is retried with backoff, not a failure.
    refusing, port = refusing_port()
    c = t.collector("-o", t.dir / "refused.txt", "--backoff-min", 10, "--backoff-max", 40,
                    f"127.0.0.1:{port}", name="collector-refused")
    await c.wait_text(rf"source 127\.0\.0\.1:{port}: connect to 127\.0\.0\.1:{port}: "
                      r"Connection refused; retrying", 10, stream="err")
    # 0.5 s is about a dozen 10-40 ms backoffs on an idle machine; a retry
    # (2 errors) is all the check needs, so a loaded run cannot miss it.
    await asyncio.sleep(0.5)
    check(await c.stop(signal.SIGINT) == 0, f"refused: exit {c.p.returncode}")
    row = collector_summary(c.err())[f"127.0.0.1:{port}"]
    check(row["errors"] >= 2 and row["lines"] == 0, f"refused source row {row}")
    check(c.err().count("Connection refused") == 1, "one message per failure streak")
    refusing.close()

    # A source that never reads its ACKs nor closes: the stop waits at most
    # ~2 s for it (and 5 s in all); a second signal exits at once with 1.
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen()
    mport = mute.getsockname()[1]
    loop = asyncio.get_running_loop()
    for twice in (False, True):
        c = t.collector("-o", t.dir / "mute.txt", f"127.0.0.1:{mport}",
                        name=f"collector-mute-{twice}")
        conn, _ = await loop.run_in_executor(None, mute.accept)
        conn.sendall(b"a line\n" * 100)
        await asyncio.sleep(0.3)
        started = loop.time()
        c.send(signal.SIGTERM)
        if twice:
            await c.wait_text(r"stopping on SIGTERM", 5, stream="err")
            c.send(signal.SIGTERM)
        rc = await c.wait_exit(10)
        took = loop.time() - started
        conn.close()
        if twice:
            check(rc == 1 and took < 1.5 and "second SIGTERM: exiting now" in c.err(),
                  f"second signal: exit {rc} after {took:.1f} s\n{c.err()}")
        else:
            check(rc == 0 and 1.5 < took < 5.5, f"mute source: exit {rc} after {took:.1f} s")
    mute.close()

    # /dev/full: the write fails; the line must not be acknowledged.
    srv = await LogServer([b"cannot be written"]).start()
    c = t.collector("-o", "/dev/full", f"127.0.0.1:{srv.port}", name="collector-full")
    rc = await c.wait_exit(15)
    srv.close()
    check(rc == 1, f"/dev/full: exit {rc}\n{c.err()}")
    check("write to /dev/full: No space left on device" in c.err(), c.err())
    check(srv.acks == 0, f"{srv.acks} ACKs for a line that was not written")


Test("cli").run(body, 60)
