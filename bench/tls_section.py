"""bench/tls_section.py - the `tls` section of bench/run.py (issue 12, item 8): coio's TLS
echo server on each backend against Boost.Asio's ssl::stream with C++20 coroutines, over
the same OpenSSL, and how bench/report.py judges them.

    ./scripts/bench --only tls            (--quick: 1 run per point, 2,000 idle connections)

What it measures (TLS 1.3, TLS_AES_128_GCM_SHA256 pinned on both sides: the servers'
--tls-version / --tls-ciphersuites and loadgen's; an EC P-256 certificate made at run time
by `openssl req` in a temporary directory, never kept; loadgen verifies it):
  points     100 connections x depth 1 / 16 x 64 B / 4 KiB: server CPU per request from
             /proc over loadgen's measured window (harness.load_run, as the plain points),
             RUNS interleaved rounds, servers in rotated order; every echoed byte checked;
  idle       server RSS per idle TLS connection at 10,000 connections: loadgen --idle --tls
             completes the handshake and one verified round trip on each before the RSS is
             read (run.py's idle_run);
  handshake  (extra) 16 connections each cycling connect + full TLS 1.3 handshake (no
             session resumption: loadgen offers no session) + one 64 B echo + close:
             handshakes per second and server CPU per handshake.
Targets (ratios of medians from the same run): coio's CPU per request <= 1.00x asio-tls's
at every point on each backend, and coio's idle bytes per TLS connection < asio-tls's.
No perf runs here (syscall counters are the plain section's business).
"""

import subprocess
import tempfile
from pathlib import Path

import targets
from harness import TLS_MODELS, log
from targets import Runs, fmt, point_name, times, verdict

POINTS = [(100, 1, 64), (100, 16, 64), (100, 1, 4096), (100, 16, 4096)]
HANDSHAKE_POINT = (16, 1, 64)
VERSION = "1.3"
CIPHERSUITE = "TLS_AES_128_GCM_SHA256"
REFERENCE = "asio-tls"
COIO_MODELS = ["coio-tls-epoll", "coio-tls-io_uring"]
CPU_LIMIT = 1.00   # coio / asio CPU per request, at most
IDLE_LIMIT = 1.00  # coio / asio idle bytes per connection, below


def make_certificate(directory):
    """A throwaway EC P-256 certificate for 127.0.0.1 / localhost: (cert, key) paths."""
    d = Path(directory)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    return cert, key


def available(build, wanted, backends):
    """The TLS models built here, whose backend runs here, and `wanted` (empty: all)."""
    out = []
    for name, (binary, env, _) in TLS_MODELS.items():
        if wanted and name not in wanted:
            continue
        if not (build / binary).exists():
            log(f"{name}: {binary} not built, skipped")
        elif env.get("COIO_BACKEND") and env["COIO_BACKEND"] not in backends:
            log(f"{name}: backend not available here, skipped")
        else:
            out.append(name)
    return out


def section(build, models, quick, repeats, duration, warmup, run_cells, idle_run):
    """Runs the section; run_cells and idle_run are bench/run.py's."""
    out = {"models": models, "version": VERSION, "ciphersuite": CIPHERSUITE,
           "runs": [], "handshake": [], "idle": []}
    if not models:
        log("tls: no TLS server to run (none selected by --models, or none built: coio "
            "without OpenSSL 3, no Boost for asio-tls)")
        return out
    with tempfile.TemporaryDirectory(prefix="coio-tls-bench-") as tmp:
        cert, key = make_certificate(tmp)
        server = ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-version", VERSION,
                  "--tls-ciphersuites", CIPHERSUITE]
        client = ["--tls", "--tls-ca", str(cert), "--tls-version", VERSION,
                  "--tls-ciphersuites", CIPHERSUITE]
        runs = 1 if quick else repeats
        cells = {p: {m: runs for m in models} for p in POINTS}
        out["runs"] = run_cells(build, cells, duration, warmup, False, "tls",
                                lambda m: {"server_args": server, "loadgen_args": client})
        cells = {HANDSHAKE_POINT: {m: runs for m in models}}
        out["handshake"] = run_cells(
            build, cells, duration, warmup, False, "tls handshakes",
            lambda m: {"server_args": server, "loadgen_args": client + ["--reconnect"]})
        n = 2000 if quick else targets.IDLE_CONNECTIONS
        for model in models:
            log(f"tls idle: {model} x {n}")
            # 10,000 full handshakes take a while on a busy 2-core machine: allow 2 minutes.
            out["idle"].append(idle_run(build, model, n, server_args=server,
                                        loadgen_args=client + ["--setup-timeout", "120"],
                                        ready_s=130.0))
    return out


# --- the report ------------------------------------------------------------------------------


def _rows(results):
    """[(target, measured, verdict)] for what was measured."""
    tls = results.get("tls", {})
    runs = Runs({"load": {"runs": tls.get("runs", [])}})
    have = set(tls.get("models", []))
    rows = []
    if REFERENCE not in have:
        return rows
    for model in [m for m in COIO_MODELS if m in have]:
        for p in POINTS:
            a = runs.median(model, p, "cpu_us_per_req")
            b = runs.median(REFERENCE, p, "cpu_us_per_req")
            ratio = a / b if a and b else None
            rows.append((f"{model} CPU/request ≤ {CPU_LIMIT:.2f}× {REFERENCE}, {point_name(p)}",
                         f"{times(ratio)} ({fmt(a)} vs {fmt(b)} µs)", verdict(ratio, CPU_LIMIT)))
    idle = {r["model"]: r for r in tls.get("idle", [])}
    b = idle.get(REFERENCE, {}).get("bytes_per_connection")
    for model in [m for m in COIO_MODELS if m in idle]:
        a = idle[model].get("bytes_per_connection")
        ratio = a / b if a and b else None
        text = "**missed** (equal)" if ratio == IDLE_LIMIT else verdict(ratio, IDLE_LIMIT)
        rows.append((f"{model} memory per idle TLS connection < {REFERENCE}'s, "
                     f"{idle[model]['connections']:,} connections",
                     f"{times(ratio)} ({fmt(a, 0)} vs {fmt(b, 0)} B RSS)", text))
    return rows


def markdown(results):
    """The TLS section of latest.md: the targets, then every model's figures."""
    tls = results.get("tls")
    if not tls or not tls.get("models"):
        return []
    L = ["## TLS vs Asio (issue 12, item 8)\n",
         f"TLS {tls['version']}, {tls['ciphersuite']} pinned on server and client, EC P-256 "
         "certificate; coio's TLS echo server (`bench/coio_tls_echo`) against Boost.Asio's "
         "`ssl::stream` with C++20 coroutines (`bench/asio_tls_echo`, the same OpenSSL and the "
         "same SSL_CTX settings). Ratios of medians from the same interleaved run; re-run "
         "with `./scripts/bench --only tls`.\n",
         "| target | measured | verdict |", "| --- | --- | --- |"]
    L += [f"| {a} | {b} | {c} |" for a, b, c in _rows(results)]
    if REFERENCE not in tls["models"]:
        L.append(f"| every target | {REFERENCE} was not run (no Boost headers?) | not judged |")
    L.append("")
    runs = Runs({"load": {"runs": tls.get("runs", [])}})
    L += ["Every TLS point (median of the timed runs; server CPU per request from /proc):\n",
          "| point | server | requests/s | CPU µs/request | p50 µs | p99 µs | runs |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in POINTS:
        for m in tls["models"]:
            L.append(f"| {point_name(p)} | {m} | {fmt(runs.median(m, p, 'rps'), 0)} | "
                     f"{fmt(runs.median(m, p, 'cpu_us_per_req'))} | "
                     f"{fmt(runs.median(m, p, 'p50_us'), 0)} | "
                     f"{fmt(runs.median(m, p, 'p99_us'), 0)} | {len(runs.ok(m, p))} |")
    L.append("")
    errors = [r for r in tls.get("runs", []) + tls.get("handshake", []) if "error" in r]
    for r in errors:
        p = (r["connections"], r["depth"], r["size"])
        L.append(f"- FAILED run: {r['model']} {point_name(p)}: {r['error']}")
    hs = Runs({"load": {"runs": tls.get("handshake", [])}})
    if tls.get("handshake"):
        p = HANDSHAKE_POINT
        ref = hs.median(REFERENCE, p, "cpu_us_per_req")
        L += [("" if not errors else "\n") +
              f"Handshake rate: {p[0]} connections, each cycling connect + full TLS "
              f"{tls['version']} handshake (no resumption) + one {p[2]} B echo + close "
              "(loadgen --reconnect; latency is per cycle):\n",
              "| server | handshakes/s | server CPU µs/handshake | vs asio-tls | p50 µs | "
              "p99 µs |", "| --- | --- | --- | --- | --- | --- |"]
        for m in tls["models"]:
            cpu = hs.median(m, p, "cpu_us_per_req")
            L.append(f"| {m} | {fmt(hs.median(m, p, 'rps'), 0)} | {fmt(cpu)} | "
                     f"{times(cpu / ref if cpu and ref else None)} | "
                     f"{fmt(hs.median(m, p, 'p50_us'), 0)} | {fmt(hs.median(m, p, 'p99_us'), 0)} |")
        L.append("")
    if tls.get("idle"):
        L += ["Memory per idle TLS connection: server VmRSS after loadgen --idle --tls "
              "completed the handshake and one verified round trip on every connection, "
              "minus VmRSS before, ÷ connections:\n",
              "| server | connections | RSS bytes/conn | ok |", "| --- | --- | --- | --- |"]
        for r in tls["idle"]:
            L.append(f"| {r['model']} | {r['connections']:,} | "
                     f"{fmt(r.get('bytes_per_connection'), 0)} | "
                     f"{'yes' if r['ok'] else 'NO: ' + r.get('loadgen_err', '')[-120:]} |")
        L.append("")
    return L
