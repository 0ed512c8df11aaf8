"""Syslog over TLS (RFC 5425) into --listen-tls from a real sender nobody here
wrote: Debian's rsyslogd with its OpenSSL network stream driver
(rsyslog-openssl), run unprivileged in the foreground with its own config in
the test's temporary directory. The test sends plain syslog lines to an
rsyslog imtcp input on 127.0.0.1; rsyslog forwards them with omfwd over TLS
(octet-counted framing, as RFC 5425 has it), verifying the collector's
certificate against the test CA and its name "localhost" (x509/name). Every
line must arrive once, intact and in order, octet-framed, with the source
"push tls 127.0.0.1:PORT"; rsyslogd is stopped by its PID."""
import asyncio
import glob
import json
import os
import shutil
import socket
import sys
import time

from lcsupport import SKIP, Failure, Test, check, payload
from tlscerts import make_certs, skip_unless_openssl

LINES = 400


def find_rsyslogd():
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    exe = shutil.which("rsyslogd", path=path)
    if exe is None:
        print("SKIP: rsyslogd (Debian package rsyslog) is not installed")
        sys.exit(SKIP)
    if not (glob.glob("/usr/lib/*/rsyslog/lmnsd_ossl.so") or
            glob.glob("/usr/lib/rsyslog/lmnsd_ossl.so")):
        print("SKIP: rsyslog's OpenSSL driver lmnsd_ossl (Debian package rsyslog-openssl) "
              "is not installed")
        sys.exit(SKIP)
    return exe


def free_port():
    """A port that was free a moment ago (rsyslog's imtcp input binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rsyslog_conf(d, certs, in_port, out_port):
    # The internal messages (rsyslogd's own: start, TLS errors) go to a file
    # the test prints when it fails; only the imtcp input is forwarded.
    return f"""
global(workDirectory="{d}" defaultNetstreamDriverCAFile="{certs['ca']}"
       processInternalMessages="on")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{in_port}" ruleset="forward")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="{out_port}" protocol="tcp"
         StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}}
*.* action(type="omfile" file="{d}/rsyslog-internal.log")
"""


def body_of(seq):
    return f"lctls-{seq:05d} {payload(5425, seq, 20 + (seq * 37) % 1500)}"


async def connect_retry(port, timeout):
    """rsyslogd listens once it has read its config: retry until it does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise Failure(f"rsyslogd's imtcp input on 127.0.0.1:{port} did not come up "
                              f"within {timeout} s")
            await asyncio.sleep(0.05)


async def body(t):
    certs = make_certs(t.dir)
    out = t.dir / "out.json"
    c = t.collector("--listen-tls", "0", "--tls-cert", certs["cert"], "--tls-key", certs["key"],
                    "-o", out, "--format", "json", "--stats-interval", "0")
    found = await c.wait_text(r"push: listening on tls 127\.0\.0\.1:(\d+)", 10, stream="err")
    port = int(found[0])

    in_port = free_port()
    conf = t.dir / "rsyslog.conf"
    conf.write_text(rsyslog_conf(t.dir, certs, in_port, port))
    rs = t.spawn([RSYSLOGD, "-n", "-f", conf, "-i", t.dir / "rsyslogd.pid"], "rsyslogd")

    def diagnostics():
        internal = t.dir / "rsyslog-internal.log"
        return (f"\nrsyslogd stderr:\n{rs.err()[-2000:]}\nrsyslogd internal log:\n"
                f"{internal.read_text()[-2000:] if internal.exists() else '(none)'}\n"
                f"collector stderr:\n{c.err()[-2000:]}")

    _, writer = await connect_retry(in_port, 15)
    for seq in range(1, LINES + 1):
        writer.write(f"<13>Dec  7 02:00:00 testhost lctest: {body_of(seq)}\n".encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    def recs():
        try:
            return [json.loads(x) for x in out.read_text().splitlines()]
        except (OSError, ValueError):
            return []

    wait = 30
    deadline = time.monotonic() + wait
    while len(recs()) < LINES:
        check(rs.running(), f"rsyslogd exited ({rs.p.returncode})" + diagnostics())
        check(time.monotonic() < deadline,
              f"{len(recs())} of {LINES} lines arrived within {wait} s" + diagnostics())
        await asyncio.sleep(0.05)

    rc = await rs.stop()
    check(rc == 0, f"rsyslogd exited {rc} on SIGTERM" + diagnostics())
    check(await c.stop() == 0, "collector failed" + diagnostics())

    got = recs()
    check(len(got) == LINES, f"{len(got)} records, want {LINES}")
    for seq, r in enumerate(got, 1):
        want = body_of(seq)
        line = r["line"]
        check(r["source"].startswith("push tls 127.0.0.1:"), f"source {r['source']!r}")
        check(r.get("framing") == "octet", f"record {seq}: framing {r.get('framing')}")
        check(not r.get("more") and "part" not in r, f"record {seq} was split: {r}")
        # RFC 5424 as rsyslog's RSYSLOG_SyslogProtocol23Format writes it:
        # "<13>1 TIMESTAMP HOST TAG - - - MSG" (MSG keeps the space after "tag:").
        check(line.startswith("<13>1 ") and " testhost lctest " in line,
              f"record {seq}: not rsyslog's RFC 5424 header: {line[:100]!r}")
        check(line.endswith(" " + want),
              f"record {seq}: want ...{want[:40]!r}, got {line[:120]!r} (out of order, cut or "
              f"corrupted)")
    check(f"push tls 127.0.0.1:{port}" in c.err() and f"{LINES} lines" in c.err(),
          "summary:\n" + c.err())


skip_unless_openssl()
RSYSLOGD = find_rsyslogd()
Test("rsyslog-tls").run(body, 90)
