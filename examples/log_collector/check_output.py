#!/usr/bin/env python3
"""Check coio-logcollect output against what log_source instances sent.

    check_output.py OUTPUT --line-bytes N [--source NAME=ADDR...] NAME:SEED:SUMMARY...

OUTPUT is the collector's output (plain or JSON records, detected per line).
For each source instance NAME (its lines are "NAME SEQ PAYLOAD"), SEED is its
--seed and SUMMARY a file holding the JSON summary line log_source printed at
exit ({"sent":..,"acked":..,"resent":..}). Every line is regenerated from
(SEED, SEQ) and compared byte for byte, and so is the source column: with
--source NAME=ADDR it must be ADDR ("127.0.0.1:9000"), else it must be a
well-formed address and the same in every record of NAME.

Prints one row per source: lines sent, acknowledged, received (distinct),
duplicates (received more than once: sent again after a reset), lost
(acknowledged but not in OUTPUT: must be 0), pending (sent, not acknowledged
and not in OUTPUT: the source still has them and sends them again), corrupt
(a record that is not a line the source sent, or not from its address: must
be 0). Then the lines that are no record at all: torn (the line before a
torn-record marker, or an unterminated last line - a collector stopped inside
a write; never acknowledged) and malformed (anything else: must be 0). Exits
1 if anything is lost, corrupt or malformed.
"""
import argparse
import json
import re
import sys
from collections import Counter

M = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def payload(seed: int, seq: int, n: int) -> str:
    """log_source's PAYLOAD of line seq (log_source_state.cpp, append_payload)."""
    x = (seed * GOLDEN + seq) & M
    out = []
    while len(out) < n:
        x = (x + GOLDEN) & M
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        z ^= z >> 31
        for k in range(8):
            if len(out) == n:
                break
            out.append(chr(97 + ((z >> (8 * k)) & 0xFF) % 26))
    return "".join(out)


MARKER_SOURCE = "coio-logcollect"  # the torn-record marker's source column
ADDRESS = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")


def parse(raw):
    """One output line: ("record", source, flag, text) with flag '' / '+' / '!',
    ("marker",) for a torn-record marker, or ("malformed", raw)."""
    try:
        line = raw.decode("utf-8")
        if line.startswith("{"):
            r = json.loads(line)
            if r.get("source") == MARKER_SOURCE and "torn" in r:
                return ("marker",)
            flag = "!" if r.get("aborted") else ("+" if r.get("more") else "")
            return ("record", r["source"], flag, r["line"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return ("malformed", raw)
    src, tab, text = line.partition("\t")
    if not tab or not src:
        return ("malformed", raw)
    flag = src[-1] if src[-1] in ("+", "!") else ""
    src = src[:-1] if flag else src
    if src == MARKER_SOURCE and flag == "!":
        return ("marker",)
    return ("record", src, flag, text)


def records(path, growing=False):
    """Every line of the output, parsed; the line before a torn-record marker,
    and a last line without its newline, become ("torn", raw). growing: the
    file is being written, so a last line without its newline is a record
    still being appended and is left out."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    unterminated = lines.pop()  # b"" when the output ends with a newline
    out = []
    raw_prev = b""
    for raw in lines:
        r = parse(raw)
        if r[0] == "marker":
            if out:
                out[-1] = ("torn", raw_prev)
            continue
        out.append(r)
        raw_prev = raw
    if unterminated and not growing:
        out.append(("torn", unterminated))
    return out


def summary(path):
    last = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{") and '"sent"' in line:
                last = json.loads(line)
    return last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output")
    ap.add_argument("--line-bytes", type=int, required=True)
    ap.add_argument("--source", action="append", default=[], metavar="NAME=ADDR",
                    help="the source column every record of NAME must have")
    ap.add_argument("sources", nargs="+", metavar="NAME:SEED:SUMMARY")
    a = ap.parse_intermixed_args()

    want = {}
    for spec in a.sources:
        name, seed, summ = spec.split(":", 2)
        want[name] = (int(seed), summary(summ))
    address = dict(s.split("=", 1) for s in a.source)
    seen = {name: Counter() for name in want}
    corrupt = Counter()
    lines = Counter()  # torn, malformed
    for r in records(a.output):
        if r[0] != "record":
            lines[r[0]] += 1
            continue
        _, src, flag, text = r
        parts = text.split(" ", 2)
        name = parts[0]
        if name not in want:
            continue
        # The source column: as given, else well-formed and always the same.
        if name not in address and ADDRESS.match(src):
            address[name] = src
        if src != address.get(name):
            corrupt[name] += 1
            continue
        if flag or len(parts) != 3 or not parts[1].isdigit():
            corrupt[name] += 1
            continue
        seq = int(parts[1])
        if parts[2] != payload(want[name][0], seq, a.line_bytes):
            corrupt[name] += 1
            continue
        seen[name][seq] += 1

    bad = False
    hdr = (f"{'source':<10} {'sent':>7} {'acked':>7} {'received':>9} {'duplicates':>10} "
           f"{'lost':>5} {'pending':>7} {'corrupt':>7}")
    print(hdr)
    print("-" * len(hdr))
    tot = Counter()
    cols = ("sent", "acked", "received", "dups", "lost", "pending", "corrupt")
    for name, (seed, s) in want.items():
        sent, acked = s.get("sent", 0), s.get("acked", 0)
        got = seen[name]
        row = dict(sent=sent, acked=acked, received=len(got),
                   dups=sum(got.values()) - len(got),
                   # acknowledged lines are 1..acked (in order): the source forgot them
                   lost=sum(1 for q in range(1, acked + 1) if q not in got),
                   pending=sum(1 for q in range(acked + 1, sent + 1) if q not in got),
                   corrupt=corrupt[name])
        tot.update(row)
        bad |= row["lost"] > 0 or row["corrupt"] > 0 or not s
        print(f"{name:<10} " + " ".join(f"{row[c]:>{w}}" for c, w in zip(cols, (7, 7, 9, 10, 5, 7, 7)))
              + ("" if s else "   (no summary from the source)"))
    print(f"{'total':<10} " + " ".join(f"{tot[c]:>{w}}" for c, w in zip(cols, (7, 7, 9, 10, 5, 7, 7))))
    print(f"lines that are no record: {lines['torn']} torn (the collector was stopped inside a "
          f"write; never acknowledged), {lines['malformed']} malformed")
    bad |= lines["malformed"] > 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
