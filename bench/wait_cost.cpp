// wait_cost — puts a number on the seeds' claim that select() and poll() get slower with
// every watched fd while epoll does not: with K idle fds and ONE ready fd, how long does one
// select / poll / epoll_wait call take to report that single ready fd?
//
// Each call watches K idle fds plus the ready one (an fd whose readiness is never consumed,
// so every call returns at once with exactly one ready fd). Per (mechanism, K): `repeats`
// timed batches of many calls; the median batch gives ns per call. One JSON line each:
//   {"mechanism":"epoll","idle_fds":1000,"ns_per_call":312.4,"calls":...,"repeats":11,...}
// select() cannot watch fd numbers >= FD_SETSIZE (1024): those lines say "n/a".
//
// Run:   ./wait_cost [--idle 10,100,1000,10000] [--repeats 11] [--kind eventfd|pipe|socketpair]
//                    [--cpu C]
// --kind eventfd (default) costs one fd per idle source, so K = 10000 fits under a 20,000 fd
// limit; pipe and socketpair cost two, and K values that do not fit are reported as skipped.
// Raises the soft RLIMIT_NOFILE to the hard limit first.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct options {
    std::vector<int> idle_counts{10, 100, 1000, 10000};
    int repeats = 11;
    std::string kind = "eventfd";
    int cpu = -1;
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "wait_cost: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

[[noreturn]] void usage(std::string_view problem) {
    std::fprintf(stderr,
                 "wait_cost: %.*s\nusage: wait_cost [--idle 10,100,1000,10000] [--repeats N] "
                 "[--kind eventfd|pipe|socketpair] [--cpu C]\n",
                 static_cast<int>(problem.size()), problem.data());
    std::exit(2);
}

int to_int(std::string_view s, int lo, int hi) {
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi) {
        usage("bad number");
    }
    return v;
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (i + 1 >= argc) {
            usage("missing value or unknown option");
        }
        std::string_view v = argv[++i];
        if (arg == "--idle") {
            o.idle_counts.clear();
            while (!v.empty()) {
                std::size_t comma = v.find(',');
                o.idle_counts.push_back(to_int(v.substr(0, comma), 0, 1'000'000));
                v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
            }
        } else if (arg == "--repeats") {
            o.repeats = to_int(v, 1, 1001);
        } else if (arg == "--kind" && (v == "eventfd" || v == "pipe" || v == "socketpair")) {
            o.kind = std::string(v);
        } else if (arg == "--cpu") {
            o.cpu = to_int(v, -1, CPU_SETSIZE - 1);
        } else {
            usage("unknown option");
        }
    }
    return o;
}

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// K idle fds to watch, one ready fd, and everything to close afterwards.
struct fd_set_up {
    std::vector<int> watched; // idle ones first, the ready one last
    std::vector<int> all;
    ~fd_set_up() {
        for (int fd : all) {
            close(fd);
        }
    }
};

// Makes one source; returns the fd to watch. `ready` makes it readable for good.
int make_source(const std::string& kind, bool ready, std::vector<int>& all) {
    int fds[2] = {-1, -1};
    if (kind == "eventfd") {
        fds[0] = eventfd(ready ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fds[0] < 0) {
            die("eventfd");
        }
        all.push_back(fds[0]);
        return fds[0];
    }
    int rc = kind == "pipe" ? pipe2(fds, O_CLOEXEC | O_NONBLOCK)
                            : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
    if (rc != 0) {
        die(kind.c_str());
    }
    all.push_back(fds[0]);
    all.push_back(fds[1]); // the write end stays open: a closed one would read as EOF = ready
    if (ready && write(fds[1], "x", 1) != 1) {
        die("write");
    }
    return fds[0];
}

// Times `calls` invocations of `one_call` per repeat; returns the median ns per call.
template <typename F>
double median_ns_per_call(int repeats, int calls, F&& one_call) {
    for (int i = 0; i < calls / 10 + 1; ++i) {
        one_call(); // warm caches and the kernel's paths
    }
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) {
        std::int64_t start = now_ns();
        for (int i = 0; i < calls; ++i) {
            one_call();
        }
        samples.push_back(static_cast<double>(now_ns() - start) / calls);
    }
    std::nth_element(samples.begin(), samples.begin() + repeats / 2, samples.end());
    return samples[static_cast<std::size_t>(repeats / 2)];
}

void report(const char* mechanism, int idle, const options& o, double ns, int calls) {
    std::printf("{\"mechanism\":\"%s\",\"idle_fds\":%d,\"kind\":\"%s\",\"ns_per_call\":%.1f,"
                "\"calls\":%d,\"repeats\":%d}\n",
                mechanism, idle, o.kind.c_str(), ns, calls, o.repeats);
    std::fflush(stdout);
}

void report_na(const char* mechanism, int idle, const options& o, const std::string& why) {
    std::printf("{\"mechanism\":\"%s\",\"idle_fds\":%d,\"kind\":\"%s\",\"ns_per_call\":null,"
                "\"note\":\"n/a: %s\"}\n",
                mechanism, idle, o.kind.c_str(), why.c_str());
    std::fflush(stdout);
}

[[noreturn]] void wrong_result(const char* mechanism, int n) {
    std::fprintf(stderr, "wait_cost: %s reported %d ready fds, expected exactly 1\n", mechanism, n);
    std::exit(1);
}

void measure(int idle, const options& o, std::uint64_t fd_limit) {
    const std::uint64_t per_source = o.kind == "eventfd" ? 1 : 2;
    const std::uint64_t needed = (static_cast<std::uint64_t>(idle) + 1) * per_source + 16;
    if (needed > fd_limit) {
        std::string why = "needs " + std::to_string(needed) + " fds, limit " +
                          std::to_string(fd_limit) + "; try --kind eventfd";
        for (const char* m : {"select", "poll", "epoll"}) {
            report_na(m, idle, o, why);
        }
        return;
    }
    fd_set_up s;
    for (int i = 0; i < idle; ++i) {
        s.watched.push_back(make_source(o.kind, false, s.all));
    }
    const int ready_fd = make_source(o.kind, true, s.all);
    s.watched.push_back(ready_fd);
    // Aim for ~20 ms per batch: fewer calls when each one scans more fds.
    const int calls = std::clamp(20'000'000 / (100 * (idle + 1) + 2000), 20, 20'000);

    const int max_fd = *std::max_element(s.watched.begin(), s.watched.end());
    if (max_fd >= FD_SETSIZE) {
        report_na("select", idle, o,
                  "fd numbers reach " + std::to_string(max_fd) +
                      ", FD_SETSIZE=" + std::to_string(FD_SETSIZE));
    } else {
        fd_set all_fds;
        FD_ZERO(&all_fds);
        for (int fd : s.watched) {
            FD_SET(fd, &all_fds);
        }
        double ns = median_ns_per_call(o.repeats, calls, [&] {
            fd_set rd = all_fds; // select() overwrites its set: a fresh copy each call
            timeval tv{1, 0};
            int n = select(max_fd + 1, &rd, nullptr, nullptr, &tv);
            if (n != 1 || !FD_ISSET(ready_fd, &rd)) {
                wrong_result("select", n);
            }
        });
        report("select", idle, o, ns, calls);
    }

    std::vector<pollfd> pfds;
    for (int fd : s.watched) {
        pfds.push_back(pollfd{fd, POLLIN, 0});
    }
    double poll_ns = median_ns_per_call(o.repeats, calls, [&] {
        int n = poll(pfds.data(), pfds.size(), 1000);
        if (n != 1) {
            wrong_result("poll", n);
        }
    });
    report("poll", idle, o, poll_ns, calls);

    // The epoll fd is made last so it cannot push the select() fds past FD_SETSIZE.
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1");
    }
    s.all.push_back(ep);
    for (int fd : s.watched) {
        epoll_event ev{};
        ev.events = EPOLLIN; // level-triggered: the ready fd is reported on every call
        ev.data.fd = fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            die("epoll_ctl");
        }
    }
    double epoll_ns = median_ns_per_call(o.repeats, calls, [&] {
        epoll_event out[8];
        int n = epoll_wait(ep, out, 8, 1000);
        if (n != 1) {
            wrong_result("epoll", n);
        }
    });
    report("epoll", idle, o, epoll_ns, calls);
}

} // namespace

int main(int argc, char** argv) {
    options o = parse(argc, argv);
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<unsigned>(o.cpu), &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            die("sched_setaffinity");
        }
    }
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        die("setrlimit(RLIMIT_NOFILE)");
    }
    for (int idle : o.idle_counts) {
        measure(idle, o, lim.rlim_cur);
    }
    return 0;
}
