"""bench/report_plots.py - the PNG plots of bench/results/ (python3-matplotlib), drawn
from bench/run.py's results by bench/report.py."""

import statistics
import sys

from report_common import COLORS, load_groups, micro_index, micro_ns
from targets import IDLE_LIMIT_BYTES


def plots(results, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib missing (python3-matplotlib), no plots", file=sys.stderr)
        return []
    made = []
    groups = load_groups(results)
    models = results.get("models", [])

    # Throughput vs connections, 64 B depth 1 (not drawn when the run had no plain load
    # points, e.g. --only tls).
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = False
    for m in models:
        xs, ys, lo, hi = [], [], [], []
        for (model, c, d, s), rows in sorted(groups.items(), key=lambda kv: kv[0][1]):
            if model != m or d != 1 or s != 64:
                continue
            v = [r["rps"] for r in rows if r.get("rps")]
            if not v:
                continue
            xs.append(c)
            ys.append(statistics.median(v))
            lo.append(ys[-1] - min(v))
            hi.append(max(v) - ys[-1])
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=m,
                        color=COLORS.get(m))
            drawn = True
    ax.set_xscale("log")
    ax.set_xlabel("connections (64-byte echo, depth 1)")
    ax.set_ylabel("requests / s (median, min–max of 3)")
    ax.set_title("Echo throughput vs connections (server on 1 core)")
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    fig.tight_layout()
    if drawn:
        fig.savefig(out / "throughput_vs_connections.png", dpi=110)
        made.append("throughput_vs_connections.png")
    plt.close(fig)

    # Memory per idle connection.
    idle = [r for r in results.get("idle", {}).get("idle", []) if r.get("ok")]
    if idle:
        fig, ax = plt.subplots(figsize=(7, 4))
        n0 = idle[0]["connections"]
        names = [r["model"] if r["connections"] == n0 else f"{r['model']}\n({r['connections']:,})"
                 for r in idle]
        vals = [r["bytes_per_connection"] for r in idle]
        bars = ax.bar(names, vals, color=[COLORS.get(r["model"], "gray") for r in idle])
        for b, v in zip(bars, vals):
            ax.text(b.get_x() + b.get_width() / 2, v, f"{v:,.0f}", ha="center", va="bottom",
                    fontsize=8)
        ax.axhline(IDLE_LIMIT_BYTES, color="black", linestyle="--", linewidth=1)
        ax.text(len(names) - 0.5, IDLE_LIMIT_BYTES, f"{IDLE_LIMIT_BYTES} B target (coio)",
                ha="right", va="bottom", fontsize=8)
        ax.set_ylabel("server RSS bytes per idle connection")
        ax.set_title(f"Memory per idle connection ({idle[0]['connections']:,} connections)")
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
        fig.tight_layout()
        fig.savefig(out / "memory_per_connection.png", dpi=110)
        plt.close(fig)
        made.append("memory_per_connection.png")

    # Switch cost, coroutine vs thread (log scale).
    idx = micro_index(results)
    def thread_cpu(name):
        r = idx.get(("thread_switch", "-", name))
        return r.get("cpu_ns_per_switch") if r else None

    bars = [
        ("coio symmetric-transfer switch",
         micro_ns(idx, "yield_switch", "epoll", "bm_transfer_switch")),
        ("coio yield_now switch", micro_ns(idx, "yield_switch", "epoll", "bm_yield_switch")),
        ("coio await ready child", micro_ns(idx, "task_await", "epoll", "bm_await_ready_child")),
        ("coio create_task+await",
         micro_ns(idx, "create_task", "epoll", "bm_create_task_await")),
        ("thread futex, same core", thread_cpu("bm_futex/0/real_time")),
        ("thread condvar, same core", thread_cpu("bm_condvar/0/real_time")),
        ("thread futex, cross core", thread_cpu("bm_futex/1/real_time")),
        ("thread condvar, cross core", thread_cpu("bm_condvar/1/real_time")),
    ]
    bars = [(n, v) for n, v in bars if v]
    if bars:
        fig, ax = plt.subplots(figsize=(7, 4))
        colors = ["#1f77b4" if n.startswith("coio") else "#d62728" for n, _ in bars]
        b = ax.barh([n for n, _ in bars], [v for _, v in bars], color=colors)
        for rect, (_, v) in zip(b, bars):
            ax.text(v, rect.get_y() + rect.get_height() / 2, f" {v:,.0f} ns", va="center",
                    fontsize=8)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("CPU ns per switch / operation (log scale)")
        ax.set_title("Coroutine switch vs thread hand-off (CPU time)")
        fig.tight_layout()
        fig.savefig(out / "switch_cost.png", dpi=110)
        plt.close(fig)
        made.append("switch_cost.png")
    return made
