"""1,000 sources on one collector loop: one log_source process listens on
1,000 ports (--ports 1000, one independent source each); the collector reads
them from a --sources file (with comments and blank lines). Every line of
every source must arrive exactly once and be acknowledged."""
import asyncio

from lcsupport import Test, check, collector_summary, records, summary_json

SOURCES = 1000
LINES = 20


async def body(t):
    src, ports = await t.log_source("--ports", SOURCES, "--name", "m", "--lines", LINES,
                                    "--line-bytes", 16, ports=SOURCES)
    check(len(set(ports)) == SOURCES, "log_source did not print 1,000 distinct ports")
    sources = t.dir / "sources.txt"
    text = "# 1,000 log sources\n\n"
    text += "".join(f"127.0.0.1:{p}  # m-{i}\n" for i, p in enumerate(ports))
    sources.write_text(text)
    out = t.dir / "out.txt"
    c = t.collector("--sources", sources, "-o", out, "--stats-interval", "1")
    await src.wait_text(r'"event":"all_acked"', 30)
    check(await c.stop() == 0, f"collector failed:\n{c.err()[-3000:]}")
    check(await src.stop() == 0, "log_source exit status")
    s = summary_json(src.out())
    check(s["acked"] == SOURCES * LINES and s["sent"] == SOURCES * LINES and s["resent"] == 0,
          f"log_source summary {s}")
    recs = records(out)
    seen = {}
    for source, flag, text in recs:
        name, seq, _ = text.split(" ", 2)
        key = (name, int(seq))
        check(key not in seen, f"duplicate {key}")
        seen[key] = source
    check(len(seen) == SOURCES * LINES, f"{len(seen)} distinct lines, want {SOURCES * LINES}")
    for i, p in enumerate(ports):  # each source's lines come from its own address
        check(seen[(f"m-{i}", 1)] == f"127.0.0.1:{p}", f"m-{i} came from the wrong address")
    rows = collector_summary(c.err())
    check("(936 more sources not shown" in c.err(), "summary table not capped")
    check(rows["total"]["lines"] == SOURCES * LINES, f"total row {rows['total']}")


Test("many-sources").run(body, 60)
