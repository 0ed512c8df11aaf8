# scripts/lib.sh - shared by scripts/test, scripts/demo and scripts/bench.
# Installs what a fresh Debian 12 machine lacks, configures build directories.

COIO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build, the tests and the demo need.
# cmake: the find_package consumer (scripts/check-consumers); valgrind: its
# pass in scripts/test; libssl-dev and openssl: TLS and its tests; nftables,
# iproute2 and util-linux's unshare: the network-namespace tests (tests/netns);
# rsyslog, rsyslog-openssl: the real syslog-over-TLS sender of
# tests/logcollect/test_rsyslog_tls.py (run from the test with its own config;
# on a host with systemd the package also enables its service).
COIO_PACKAGES=(meson ninja-build pkg-config g++ clang libclang-rt-14-dev libtsan2
    liburing-dev catch2 libseccomp-dev libbenchmark-dev python3 bsdutils cmake valgrind
    libssl-dev openssl nftables iproute2 util-linux rsyslog rsyslog-openssl strace lld)

# log MESSAGE: the message, the seconds since the script started and the CPU
# seconds its finished children used so far (user+sys from /proc: on a
# machine shared with other work, the CPU figure is the one that compares).
log() {
    local cpu
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($16 + $17) / hz }' /proc/$$/stat 2>/dev/null)
    printf '== %s (at %ds, %ss CPU)\n' "$*" "$SECONDS" "${cpu:-?}" >&2
}

# Install any of the given packages that is missing (apt-get update once).
ensure_packages() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing missing packages: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "need root or sudo to install: ${missing[*]}" >&2; return 1; }
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure NAME COMPILER [meson args...]: build/NAME, reconfigured if it exists.
configure() {
    local name=$1 cxx=$2
    shift 2
    local dir="$COIO_ROOT/build/$name"
    mkdir -p "$COIO_ROOT/build"
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null || return 1
    else
        rm -rf "$dir"
        CXX=$cxx meson setup "$dir" "$COIO_ROOT" "$@" >"$COIO_ROOT/build/$name.setup.log" 2>&1 ||
            { cat "$COIO_ROOT/build/$name.setup.log" >&2; return 1; }
    fi
    echo "$dir"
}

# record_result NAME RESULT LOG OUT: append one result (OK, FAIL or SKIP) to
# OUT as a line of meson's testlog.json format, with LOG's text as its output,
# so that scripts/test counts it and scans it like a meson test.
record_result() {
    python3 - "$@" <<'PY'
import json, sys
name, result, log, out = sys.argv[1:]
try:
    text = open(log, errors="replace").read()
except OSError:
    text = ""
with open(out, "a") as f:
    f.write(json.dumps({"name": name, "result": result, "stdout": text}) + "\n")
PY
}
