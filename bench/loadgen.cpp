// loadgen — echo load generator for the coio benchmarks. Opens N TCP connections to an echo
// server on loopback, keeps D pipelined requests of S bytes in flight on each, checks every
// echoed byte, and prints one JSON line:
//   {"mode":"load","connections":100,"size":64,"depth":1,...,"requests":..,"rps":..,
//    "p50_us":..,"p99_us":..,"p999_us":..,"max_us":..,"mean_us":..,"errors":0,
//    "window_from_ns":..,"window_to_ns":..}   (the measured window, CLOCK_MONOTONIC)
// Once every connection is open, and before the warm-up starts, it also prints (flushed)
//   {"mode":"window","from_ns":..,"to_ns":..}
// so that a harness can read the server's counters (page faults, perf) at the window's
// edges while the run is still going.
//
// Run:   loadgen --port P [--host 127.0.0.1] [--connections N] [--size BYTES] [--depth D]
//                [--duration S] [--warmup S] [--threads T] [--cpu C[,C...]]
//                [--setup-timeout S (30)] [--drain-timeout S (5)]
//        loadgen --port P --idle --hold S --connections N
//        ... [--reconnect] [--tls [--tls-ca FILE] [--tls-version 1.2|1.3]
//                                 [--tls-ciphersuites S] [--tls-ciphers S] [--tls-resume]]
// --idle opens N connections, does one verified round trip on each, prints "ready N", then
// holds them until --hold seconds pass or stdin (a pipe, socket or terminal) closes, and
// prints a JSON line: for measuring a server's memory per idle connection.
// --tls speaks TLS on every connection (loadgen_tls.hpp: OpenSSL, the version pinned,
// TLS 1.3 with TLS_AES_128_GCM_SHA256 by default; the certificate verified against
// --tls-ca's file and 127.0.0.1, not at all without it); the handshake is part of the
// setup, so the measured window holds only application data. Echoes are checked as usual.
// --reconnect makes each connection cycle connect (+ TLS handshake) + one echo + close
// (a close_notify, then RST); "requests" and "rps" then count cycles (handshakes per
// second with --tls, full handshakes unless --tls-resume offers the last session), and a
// cycle's latency runs from its connect().
//
// Rules: only 127.0.0.0/8, ::1 or localhost are accepted as targets. Every byte the server
// returns must match the deterministic pattern sent on that connection, and every byte sent
// must come back: after the run loadgen stops sending and waits for the outstanding echoes,
// failing if none arrive for --drain-timeout seconds (the drain is capped at 60 s). A
// wrong, extra or missing byte exits 1 naming the connection and offset. Connect errors
// name the address and errno text. The run ends by itself after setup (capped by
// --setup-timeout) + warmup + duration + drain, or after the hold. Latencies are per
// request, from handing its first byte to send() to receiving its last echoed byte.
//
// Scale: the soft RLIMIT_NOFILE is raised to the hard one. When N needs more fds than one
// process may open (hard limit minus a 100-fd margin), loadgen forks children that each run
// a share with --threads threads; they report over pipes, the parent merges their
// histograms and prints the single line. Once all are connected the parent picks the
// measured window and sends it to every child, so all measure exactly the same window.
#include "loadgen_options.hpp"
#include "loadgen_worker.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace {

using bench::loadgen_options;
using bench::worker_result;

constexpr std::uint64_t k_fd_margin = 100;
constexpr std::uint32_t k_spread_sources_above = 10000; // see loadgen_worker::open_socket

struct window {
    std::int64_t from_ns = 0; // CLOCK_MONOTONIC: warm-up ends, measurement starts
    std::int64_t to_ns = 0;   // measurement (and load) ends
};

// What a share (this process, or one child) reports to whoever coordinates it.
struct share_hooks {
    std::function<void()> ready; // every connection is open (and echoed once, if idle)
    // Load: blocks until all shares may start, returns the measured window. Idle: blocks
    // until the hold ends.
    std::function<window()> wait_go;
};

// The coordinator picks the window (warm-up from now, then the measured time) and prints
// it at once, so a harness knows it before it starts.
window announce_window(const loadgen_options& o) {
    window w;
    w.from_ns = bench::now_ns() + static_cast<std::int64_t>(o.warmup_s * 1e9);
    w.to_ns = w.from_ns + static_cast<std::int64_t>(o.duration_s * 1e9);
    std::printf("{\"mode\":\"window\",\"from_ns\":%lld,\"to_ns\":%lld}\n",
                static_cast<long long>(w.from_ns), static_cast<long long>(w.to_ns));
    std::fflush(stdout);
    return w;
}

std::uint64_t raise_nofile_limit() {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            std::perror("loadgen: setrlimit(RLIMIT_NOFILE)");
            getrlimit(RLIMIT_NOFILE, &lim);
        }
    }
    return lim.rlim_cur;
}

void pin(const std::vector<int>& cpus) {
    if (cpus.empty()) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : cpus) {
        CPU_SET(static_cast<unsigned>(cpu), &set);
    }
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        std::perror("loadgen: sched_setaffinity");
        std::exit(1);
    }
}

// Runs `count` connections with ids from `first` on this process's threads.
worker_result run_share(const loadgen_options& o, std::uint64_t first, std::uint32_t count,
                        bool spread, const share_hooks& hooks) {
    static const bench::echo_pattern pattern;
    const std::uint32_t nthreads = std::min(o.threads, count);
    std::vector<std::unique_ptr<bench::loadgen_worker>> workers;
    for (std::uint32_t t = 0; t < nthreads; ++t) {
        std::uint32_t lo = static_cast<std::uint32_t>(std::uint64_t{count} * t / nthreads);
        std::uint32_t hi = static_cast<std::uint32_t>(std::uint64_t{count} * (t + 1) / nthreads);
        workers.push_back(
            std::make_unique<bench::loadgen_worker>(o, pattern, first + lo, hi - lo, spread));
    }
    auto on_all = [&](auto&& fn) {
        std::vector<std::thread> threads;
        for (auto& w : workers) {
            threads.emplace_back([&fn, &w] { fn(*w); });
        }
        for (auto& t : threads) {
            t.join();
        }
    };
    on_all([&](bench::loadgen_worker& w) { w.setup(o.idle); });
    hooks.ready();
    const window win = hooks.wait_go();
    worker_result total;
    if (!o.idle) {
        on_all([&](bench::loadgen_worker& w) { w.run(win.from_ns, win.to_ns); });
        total.window_from_ns = win.from_ns;
        total.window_to_ns = win.to_ns;
    }
    for (auto& w : workers) {
        total.latency.merge(w->result().latency);
        total.requests += w->result().requests;
        total.errors += w->result().errors;
    }
    return total; // workers close their sockets here
}

// Idle mode: wait for the hold time, or for stdin to close when stdin is something that
// can close (a pipe, socket or terminal; /dev/null would end the hold at once). Returns the
// seconds actually held.
double hold(double seconds) {
    struct stat st {};
    bool watch = fstat(STDIN_FILENO, &st) == 0 &&
                 (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO));
    const std::int64_t start = bench::now_ns();
    const std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
    for (std::int64_t now = start; now < end; now = bench::now_ns()) {
        pollfd p{STDIN_FILENO, POLLIN, 0};
        int ms = static_cast<int>((end - now + 999'999) / 1'000'000);
        if (poll(&p, watch ? 1 : 0, ms) > 0) {
            char buf[256];
            if (read(STDIN_FILENO, buf, sizeof buf) <= 0) {
                break; // closed
            }
        }
    }
    return static_cast<double>(bench::now_ns() - start) / 1e9;
}

bool write_all(int fd, const void* data, std::size_t len) {
    const auto* p = static_cast<const char*>(data);
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

bool read_all(int fd, void* data, std::size_t len) {
    auto* p = static_cast<char*>(data);
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= static_cast<std::size_t>(n);
    }
    return true;
}

struct child {
    pid_t pid = -1;
    int up = -1;   // child -> parent: 'r' when ready, then the worker_result bytes
    int down = -1; // parent -> child: the window to start; EOF ends an idle hold
};

// Something went wrong in one share: stop the rest (our own children, by pid) and fail.
[[noreturn]] void abort_children(const std::vector<child>& kids, const char* why) {
    std::fprintf(stderr, "loadgen: %s\n", why);
    for (const child& k : kids) {
        kill(k.pid, SIGTERM);
    }
    for (const child& k : kids) {
        waitpid(k.pid, nullptr, 0);
    }
    std::exit(1);
}

worker_result run_forked(const loadgen_options& o, std::uint32_t processes, bool spread,
                         double& total_held_s) {
    std::vector<child> kids;
    for (std::uint32_t p = 0; p < processes; ++p) {
        std::uint32_t lo = static_cast<std::uint32_t>(std::uint64_t{o.connections} * p / processes);
        std::uint32_t hi =
            static_cast<std::uint32_t>(std::uint64_t{o.connections} * (p + 1) / processes);
        int up[2];
        int down[2];
        if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) {
            abort_children(kids, "pipe2 failed");
        }
        std::fflush(nullptr);
        pid_t pid = fork();
        if (pid < 0) {
            abort_children(kids, "fork failed");
        }
        if (pid == 0) {
            for (const child& k : kids) { // siblings' pipes are not ours
                close(k.up);
                close(k.down);
            }
            close(up[0]);
            close(down[1]);
            share_hooks hooks{[&] { write_all(up[1], "r", 1); },
                              [&] {
                                  window w;
                                  if (!read_all(down[0], &w, sizeof w) && !o.idle) {
                                      std::_Exit(
                                          1); // parent gone before the start: nothing to report to
                                  }
                                  return w;
                              }};
            worker_result r = run_share(o, lo, hi - lo, spread, hooks);
            std::_Exit(write_all(up[1], &r, sizeof r) ? 0 : 1);
        }
        close(up[1]);
        close(down[0]);
        kids.push_back({pid, up[0], down[1]});
    }
    for (const child& k : kids) {
        char c = 0;
        if (!read_all(k.up, &c, 1)) {
            abort_children(kids, "a child process failed while connecting");
        }
    }
    if (o.idle) {
        std::printf("ready %u\n", o.connections);
        std::fflush(stdout);
        total_held_s = hold(o.hold_s);
    } else {
        const window w = announce_window(o);
        for (const child& k : kids) {
            write_all(k.down, &w, sizeof w);
        }
    }
    for (const child& k : kids) {
        close(k.down); // ends the children's idle hold; harmless after the window
    }
    worker_result total;
    bool ok = true;
    for (const child& k : kids) {
        worker_result r;
        ok = read_all(k.up, &r, sizeof r) && ok;
        total.window_from_ns = r.window_from_ns; // the same window in every child
        total.window_to_ns = r.window_to_ns;
        total.latency.merge(r.latency);
        total.requests += r.requests;
        total.errors += r.errors;
    }
    for (const child& k : kids) {
        int status = 0;
        waitpid(k.pid, &status, 0);
        ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        close(k.up);
    }
    if (!ok) {
        abort_children({}, "a child process failed during the run");
    }
    return total;
}

void print_result(const loadgen_options& o, std::uint32_t processes, const worker_result& r,
                  double held_s) {
    auto us = [&](double q) { return r.latency.quantile_ns(q) / 1000.0; };
    if (o.idle) {
        std::printf("{\"mode\":\"idle\",\"connections\":%u,\"size\":%zu,\"processes\":%u,"
                    "\"hold_s\":%.3f,\"held_s\":%.3f,\"errors\":%llu}\n",
                    o.connections, o.size, processes, o.hold_s, held_s,
                    static_cast<unsigned long long>(r.errors));
        return;
    }
    std::printf("{\"mode\":\"load\",\"connections\":%u,\"size\":%zu,\"depth\":%u,\"threads\":%u,"
                "\"processes\":%u,\"duration_s\":%.3f,\"requests\":%llu,\"rps\":%.1f,"
                "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,"
                "\"mean_us\":%.2f,\"errors\":%llu,\"window_from_ns\":%lld,\"window_to_ns\":%lld}\n",
                o.connections, o.size, o.depth, o.threads, processes, o.duration_s,
                static_cast<unsigned long long>(r.requests),
                static_cast<double>(r.requests) / o.duration_s, us(0.5), us(0.99), us(0.999),
                static_cast<double>(r.latency.max_ns()) / 1000.0, r.latency.mean_ns() / 1000.0,
                static_cast<unsigned long long>(r.errors), static_cast<long long>(r.window_from_ns),
                static_cast<long long>(r.window_to_ns));
}

} // namespace

int main(int argc, char** argv) {
    loadgen_options o = bench::parse_loadgen_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    pin(o.cpus); // before any fork or thread: all of them inherit it

    // Each process needs one fd per connection plus a few of its own (epoll sets, pipes,
    // stdio); the margin covers those.
    const std::uint64_t limit = raise_nofile_limit();
    if (limit <= k_fd_margin + 1) {
        std::fprintf(stderr, "loadgen: RLIMIT_NOFILE %llu is too small\n",
                     static_cast<unsigned long long>(limit));
        return 1;
    }
    const std::uint64_t per_process = limit - k_fd_margin;
    const auto processes =
        static_cast<std::uint32_t>((o.connections + per_process - 1) / per_process);
    const bool spread = o.connections > k_spread_sources_above;

    worker_result r;
    double held_s = 0;
    if (processes == 1) {
        share_hooks hooks{[&] {
                              if (o.idle) {
                                  std::printf("ready %u\n", o.connections);
                                  std::fflush(stdout);
                              }
                          },
                          [&] {
                              if (o.idle) {
                                  held_s = hold(o.hold_s);
                                  return window{};
                              }
                              return announce_window(o);
                          }};
        r = run_share(o, 0, o.connections, spread, hooks);
    } else {
        r = run_forked(o, processes, spread, held_s);
    }
    print_result(o, processes, r, held_s);
    return r.errors == 0 ? 0 : 1;
}
