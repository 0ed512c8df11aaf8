#!/bin/sh
# tests/netns/in_netns.sh - run a test in a private network namespace
# (RELIABILITY 3.6): `unshare --net` re-executes this script in a new
# namespace, which brings loopback up and creates an empty nftables table
# `inet coio_test` for the test's rules, then executes the test there. The
# namespace - loopback, rules and all - vanishes when the test exits, so a
# rule can never touch the machine's own network.
#
#   in_netns.sh TEST [ARGS...]
#
# Exits 77 (meson: SKIP) with the reason when namespaces, ip or nft are not
# available (no root / CAP_SYS_ADMIN, a container that forbids unshare, ...).
# Inside, COIO_IN_NETNS=1 tells the test where it is (netns_support.hpp,
# netns.py).
set -u
if [ "${COIO_IN_NETNS:-}" != 1 ]; then
    for tool in unshare ip nft; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "SKIP: '$tool' not found (packages util-linux, iproute2, nftables)"
            exit 77
        fi
    done
    if ! why=$(unshare --net true 2>&1); then
        echo "SKIP: cannot create a network namespace: unshare --net: $why"
        exit 77
    fi
    COIO_IN_NETNS=1 exec unshare --net -- "$0" "$@"
fi
if ! why=$(ip link set lo up 2>&1); then
    echo "SKIP: cannot bring loopback up in the namespace: $why"
    exit 77
fi
if ! why=$(nft add table inet coio_test 2>&1); then
    echo "SKIP: nftables is not usable in the namespace: $why"
    exit 77
fi
export COIO_IN_NETNS
exec "$@"
