// server_common.hpp — the command line, pinning, listening socket and stop signal shared
// by the hand-written reference echo servers in bench/ (raw_epoll_echo, raw_uring_echo,
// selectors_echo). Plain C++20 and Linux; no coio here on purpose: these servers are the
// yardsticks coio is measured against, so they must not share its code.
//
// Contract every server keeps, so a harness can drive them all the same way:
//   --port P   bind 127.0.0.1:P only (default 0 = kernel picks); never another address.
//   --cpu C    pin to core C (-1, the default, = no pinning).
//   The soft RLIMIT_NOFILE is raised to the hard limit.
//   First stdout line is "listening on 127.0.0.1:PORT", flushed at once.
//   SIGINT/SIGTERM end the process with status 0.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string_view>

namespace bench {

// Prints "prog: what: strerror(errno)" and exits 1. For setup failures only.
[[noreturn]] inline void die_errno(const char* what) {
    std::fprintf(stderr, "%s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

[[noreturn]] inline void die_usage(const char* prog, std::string_view problem) {
    std::fprintf(stderr, "%s: %.*s\nusage: %s [--port P] [--cpu C]\n", prog,
                 static_cast<int>(problem.size()), problem.data(), prog);
    std::exit(2);
}

// Parses a whole decimal integer in [lo, hi]; false on junk or out of range.
inline bool parse_long(std::string_view text, long lo, long hi, long& out) {
    long v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v < lo || v > hi) {
        return false;
    }
    out = v;
    return true;
}

struct server_options {
    std::uint16_t port = 0;
    int cpu = -1;
};

// Parses --port and --cpu. Any other argument goes to `extra` (when given), which returns
// false if it does not know it either; unknown arguments end the program with usage.
inline server_options
parse_server_options(int argc, char** argv,
                     const std::function<bool(std::string_view)>& extra = {}) {
    server_options opts;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        long v = 0;
        if ((arg == "--port" || arg == "--cpu") && i + 1 >= argc) {
            die_usage(argv[0], "missing value after option");
        }
        if (arg == "--port") {
            if (!parse_long(argv[++i], 0, 65535, v)) {
                die_usage(argv[0], "bad --port");
            }
            opts.port = static_cast<std::uint16_t>(v);
        } else if (arg == "--cpu") {
            if (!parse_long(argv[++i], -1, CPU_SETSIZE - 1, v)) {
                die_usage(argv[0], "bad --cpu");
            }
            opts.cpu = static_cast<int>(v);
        } else if (!extra || !extra(arg)) {
            die_usage(argv[0], "unknown argument");
        }
    }
    return opts;
}

// Pins the calling thread (and threads it starts later) to one core, so server and load
// generator do not fight for the same CPU and runs are comparable.
inline void pin_to_cpu(int cpu) {
    if (cpu < 0) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<unsigned>(cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        die_errno("sched_setaffinity");
    }
}

// Nagle would hold back a small echo while an earlier one is unacknowledged; with the
// client's delayed ACK that costs ~40 ms stalls, which would measure TCP, not the server.
inline void set_nodelay(int fd) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// One fd per connection: lift the soft RLIMIT_NOFILE to the hard limit so the server can
// take as many connections as the machine allows, whatever the harness's shell set.
inline void raise_nofile_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &lim);
    }
}

// Listens on 127.0.0.1:port (loopback only, by design), prints the announce line and
// flushes it so a harness can read the kernel-chosen port.
inline int open_listener(std::uint16_t port, bool nonblocking) {
    int flags = SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
    int fd = socket(AF_INET, flags, 0);
    if (fd < 0) {
        die_errno("socket");
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
        die_errno("setsockopt(SO_REUSEADDR)");
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        die_errno("bind 127.0.0.1");
    }
    // The kernel caps the backlog at net.core.somaxconn; ask for plenty so a burst of
    // thousands of connects from the load generator is not dropped into SYN retries.
    if (listen(fd, 65535) != 0) {
        die_errno("listen");
    }
    socklen_t len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        die_errno("getsockname");
    }
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(ntohs(addr.sin_port)));
    std::fflush(stdout);
    return fd;
}

// Blocks SIGINT/SIGTERM and returns a non-blocking signalfd that becomes readable when one
// arrives. The event loop waits on it like any other fd, so there is no race between
// "check a flag" and "go to sleep". Call before starting threads: they inherit the mask.
inline int make_stop_fd() {
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) {
        die_errno("pthread_sigmask");
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        die_errno("signalfd");
    }
    return fd;
}

} // namespace bench
