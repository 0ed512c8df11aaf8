"""Pulling from TLS sources: coio-logcollect --tls-ca against log_source
--tls-cert/--tls-key (certificates made at test time by the openssl command).
The source drops connections mid-line now and then (RST or FIN under the TLS
session), so the collector reconnects and does a new handshake each time;
check_output.py then checks at-least-once over TLS: every acknowledged line
is in the output, byte for byte, from the source's address. A second source
that speaks plaintext on its port fails every handshake: the collector says
so naming it and OpenSSL's reason, retries with backoff, writes nothing from
it, and the TLS source is not disturbed. Then tls://HOST:PORT: one TLS
source next to a plaintext one on one collector (--loops 2, the TLS source
on loop 1, which makes its own client context): both deliver every line."""
import subprocess
import sys

from lcsupport import ROOT, Test, check, summary_json
from tlscerts import make_certs, skip_unless_openssl

N = 3000
LINE_BYTES = 100


async def body(t):
    certs = make_certs(t.dir)
    src, (port,) = await t.log_source("--name", "tls", "--lines", N, "--line-bytes", LINE_BYTES,
                                      "--seed", 11, "--drop-probability", "0.004",
                                      "--tls-cert", certs["cert"], "--tls-key", certs["key"])
    plain, (plain_port,) = await t.log_source("--name", "plain", "--lines", 10,
                                              name="log_source_plain")
    out = t.dir / "out.txt"
    c = t.collector("--tls-ca", certs["ca"], "-o", out, "--backoff-min", 10, "--backoff-max", 50,
                    f"127.0.0.1:{port}", f"127.0.0.1:{plain_port}")
    await src.wait_text(r'"event":"all_acked"', 60)
    await c.wait_text(rf"source 127\.0\.0\.1:{plain_port}: TLS handshake with "
                      rf"127\.0\.0\.1:{plain_port}: .*; retrying", 10, stream="err")
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    check(await src.stop() == 0, f"log_source exit status {src.p.returncode}")
    check(await plain.stop() == 0, f"plain log_source exit status {plain.p.returncode}")

    s = summary_json(src.out())
    check(s["sent"] == N and s["acked"] == N and s["bad_acks"] == 0, f"log_source summary {s}")
    check(s["drops"] > 0 and s["connections"] > 1,
          f"no dropped connection, nothing tested about reconnects: {s}")
    r = subprocess.run([sys.executable, ROOT / "examples" / "log_collector" / "check_output.py",
                        out, "--line-bytes", str(LINE_BYTES),
                        "--source", f"tls=127.0.0.1:{port}",
                        f"tls:11:{src.out_path}"], capture_output=True, text=True, timeout=60)
    print(r.stdout)
    check(r.returncode == 0, f"check_output failed:\n{r.stdout}{r.stderr}")
    row = next(x.split() for x in r.stdout.splitlines() if x.startswith("tls "))
    check(row[1:6] == [str(N), str(N), str(N), row[4], "0"] and row[7] == "0",
          f"check_output row {row}: want sent = acked = received = {N}, lost 0, corrupt 0")
    check("plain " not in out.read_text(), "a record from the plaintext source")
    ps = summary_json(plain.out())
    check(ps["acked"] == 0, f"the plaintext source got ACKs: {ps}")
    print(f"drops {s['drops']}, connections {s['connections']}, resent {s['resent']}")
    await mixed(t, certs)


async def mixed(t, certs):
    tls, (tls_port,) = await t.log_source("--name", "t2", "--lines", 500, "--tls-cert",
                                          certs["cert"], "--tls-key", certs["key"],
                                          name="log_source_tls2")
    plain, (plain_port,) = await t.log_source("--name", "p2", "--lines", 500,
                                              name="log_source_plain2")
    out = t.dir / "mixed.txt"
    c = t.collector("--loops", 2, "--tls-ca", certs["ca"], "-o", out, f"127.0.0.1:{plain_port}",
                    f"tls://127.0.0.1:{tls_port}", name="collector-mixed")
    await tls.wait_text(r'"event":"all_acked"', 30)
    await plain.wait_text(r'"event":"all_acked"', 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()}")
    for p in (tls, plain):
        check(await p.stop() == 0, f"{p.name} exit status {p.p.returncode}")
        s = summary_json(p.out())
        check(s["acked"] == 500 and s["bad_acks"] == 0, f"{p.name} summary {s}")
    text = out.read_text()
    check(f"127.0.0.1:{tls_port}\tt2 " in text and f"127.0.0.1:{plain_port}\tp2 " in text,
          "the mixed run's records")


skip_unless_openssl()
Test("tls-pull").run(body, 90)
