"""tests/netns/netns.py - network faults for Python-driven tests (the log
collector's, tests/logcollect) run in a namespace of their own by
in_netns.sh: the same helpers as netns_support.hpp.

    # meson: test(..., in_netns, args: [python3, 'test_x.py', ...])
    import sys; sys.path.insert(0, ROOT / "tests" / "netns")
    import netns
    netns.require_inside()
    netns.blackhole(port)      # the source goes silent, both ways
    ...
    netns.flush()

Every helper refuses to run outside a private namespace, so a test started
by hand cannot add rules to the machine's firewall.
"""
import os
import subprocess

TABLE = ("inet", "coio_test")


def inside():
    if os.environ.get("COIO_IN_NETNS") != "1":
        return False
    try:
        return os.stat("/proc/self/ns/net").st_ino != os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return True  # init's namespace is not visible: trust the flag


def require_inside():
    if not inside():
        raise RuntimeError("network fault tests run only in their own namespace: "
                           "tests/netns/in_netns.sh TEST")


def nft(*args):
    require_inside()
    subprocess.run(["nft", *map(str, args)], check=True, timeout=30)


def _chain(hook):
    nft("add", "chain", *TABLE, hook,
        f"{{ type filter hook {hook} priority 0; policy accept; }}")


def drop_syn_to(port):
    """A connect to 127.0.0.1:port never completes (SYNs dropped)."""
    _chain("input")
    nft("add", "rule", *TABLE, "input", "tcp", "dport", port, "tcp", "flags", "&",
        "(syn|ack)", "==", "syn", "drop")


def blackhole(port):
    """Every packet to or from port is dropped: connections go silent."""
    _chain("input")
    nft("add", "rule", *TABLE, "input", "tcp", "dport", port, "drop")
    nft("add", "rule", *TABLE, "input", "tcp", "sport", port, "drop")


def flush():
    nft("flush", "table", *TABLE)
