"""bench/report_common.py - small helpers shared by bench/report.py and report_plots.py."""

import statistics
from collections import defaultdict

COLORS = {
    "coio-epoll": "#1f77b4", "coio-io_uring": "#17becf", "raw-epoll": "#2ca02c",
    "raw-io_uring": "#98df8a", "asio": "#9467bd", "selectors": "#ff7f0e",
    "threads": "#d62728", "tokio": "#8c564b",
}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1, unit=""):
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}f}{unit}"


def spread(xs, digits=1):
    """'median (min–max)' of the values that exist."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(statistics.median(xs), digits)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})"


def ok(flag):
    return "**met**" if flag else "**missed**"


# --- aggregation -----------------------------------------------------------------------------


def load_groups(results):
    """(model, connections, depth, size) -> the timed runs (perf runs left out)."""
    groups = defaultdict(list)
    for r in results.get("load", {}).get("runs", []):
        if not r.get("perf"):
            groups[(r["model"], r["connections"], r["depth"], r["size"])].append(r)
    return groups


def perf_groups(results):
    """(model, connections, depth, size) -> the perf runs (syscall counters)."""
    groups = defaultdict(list)
    load = results.get("load", {})
    for r in load.get("runs", []) + load.get("big", []):
        if r.get("perf") and "error" not in r:
            groups[(r["model"], r["connections"], r["depth"], r["size"])].append(r)
    return groups


def micro_index(results):
    """(binary, backend, name) -> ns per item."""
    idx = {}
    for r in results.get("micro", {}).get("google", []):
        idx[(r["binary"], r["backend"], r["name"])] = r
    return idx


def micro_ns(idx, binary, backend, name):
    r = idx.get((binary, backend, name))
    return r["ns_per_item"] if r else None


def cpu_ratio(groups, model, ref, point):
    a = med([r.get("cpu_us_per_req") for r in groups.get((model, *point), [])])
    b = med([r.get("cpu_us_per_req") for r in groups.get((ref, *point), [])])
    return a / b if a and b else None


def rps_med(groups, model, point):
    return med([r.get("rps") for r in groups.get((model, *point), [])])
