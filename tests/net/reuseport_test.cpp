// tests/net/reuseport_test.cpp - a server on every loop (run_loops) with
// server_options::reuse_port: the kernel spreads connections over the loops;
// with steer_to_cpu and pinned loops, each loop gets the connections its CPU
// receives.
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/loops.hpp>

#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <netinet/in.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t max_loops = 4;
// Connections tried before giving up on a loop that never gets one: with n
// loops each connection lands on a given loop with probability about 1/n.
constexpr int max_attempts = 2000;

std::array<std::atomic<int>, max_loops> g_accepted{};

// Tells the client which loop accepted it.
coio::task<> say_loop(coio::socket s) {
    const std::size_t i = coio::loop_ref::running().index();
    g_accepted[i].fetch_add(1);
    const char byte = static_cast<char>('0' + i);
    co_await s.write_all(std::string_view(&byte, 1));
}

coio::server_options reuse_port() {
    coio::server_options o;
    o.reuse_port = true;
    return o;
}

// Listens on `port` on the loop this runs on; the server stays in `slot`
// (touched on that loop only) and accepts until close_here.
coio::task<> open_here(std::uint16_t port, coio::server* slot) {
    *slot = co_await coio::start_server(say_loop, "127.0.0.1", port, reuse_port());
}

coio::task<> close_here(coio::server* slot) {
    coio::server srv = std::move(*slot); // closed here, on its own loop
    srv.close();
    co_await srv.wait_closed();
}

// Loop 0: listens, has every other loop listen on the same port, then
// connects until every loop has answered at least once.
coio::task<> drive(std::size_t i, std::size_t n, int* attempts) {
    if (i != 0) {
        co_return;
    }
    std::array<coio::server, max_loops> servers;
    servers[0] = co_await coio::start_server(say_loop, "127.0.0.1", 0, reuse_port());
    const std::uint16_t port = servers[0].port();
    std::vector<coio::loop_ref> loops = coio::loop_ref::all();
    for (std::size_t j = 1; j < loops.size(); ++j) {
        co_await loops[j].spawn(open_here(port, &servers[j]));
    }
    std::array<bool, max_loops> answered{};
    std::size_t missing = n;
    int tries = 0;
    while (missing > 0 && tries < max_attempts) {
        ++tries;
        coio::socket c = co_await coio::connect("127.0.0.1", port);
        char byte = 0;
        coio::io_result r = co_await c.read_some(std::span<char>(&byte, 1));
        if (r.bytes == 1) {
            const auto k = static_cast<std::size_t>(byte - '0');
            REQUIRE(k < n);
            if (!answered[k]) {
                answered[k] = true;
                --missing;
            }
        }
    }
    *attempts = tries;
    for (std::size_t j = 0; j < loops.size(); ++j) {
        co_await loops[j].spawn(close_here(&servers[j]));
    }
    CHECK(missing == 0);
}

} // namespace

TEST_CASE("with reuse_port a server on every loop shares one port and every loop accepts "
          "connections",
          "[loops][net]") {
    for (std::size_t n : {1U, 2U, 4U}) {
        for (auto& a : g_accepted) {
            a = 0;
        }
        const std::string fds_before = coio::test::open_fd_list();
        int attempts = 0;
        auto main = [n, &attempts](std::size_t i) { return drive(i, n, &attempts); };
        coio::run_loops(n, main);
        INFO("loops " << n << ", connections " << attempts << ", accepted " << g_accepted[0] << " "
                      << g_accepted[1] << " " << g_accepted[2] << " " << g_accepted[3]);
        for (std::size_t i = 0; i < n; ++i) {
            CHECK(g_accepted[i].load() > 0);
        }
        CHECK(coio::test::open_fd_list() == fds_before);
    }
}

namespace {

constexpr int steered_connections = 20;

coio::server_options steered() {
    coio::server_options o;
    o.reuse_port = true;
    o.steer_to_cpu = true;
    return o;
}

coio::task<> open_steered(std::uint16_t port, coio::server* slot) {
    *slot = co_await coio::start_server(say_loop, "127.0.0.1", port, steered());
}

// From a thread pinned to `cpu`: blocking connects to 127.0.0.1:port, each
// reading the accepting loop's index. On loopback the SYN is processed on
// the sender's CPU. Returns the indexes ('?' for a failure).
std::string connect_from_cpu(int cpu, std::uint16_t port) {
    std::string seen;
    std::thread t([cpu, port, &seen] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            seen = "pin failed";
            return;
        }
        for (int i = 0; i < steered_connections; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            char byte = '?';
            const timeval bound{10, 0}; // a regression fails here, not at meson's timeout
            if (fd >= 0) {
                (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
                (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
            }
            if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
                if (::recv(fd, &byte, 1, 0) != 1) {
                    byte = '?';
                }
            }
            if (fd >= 0) {
                ::close(fd);
            }
            seen.push_back(byte);
        }
    });
    t.join();
    return seen;
}

// Loop 0: every loop listens with steer_to_cpu; then, from a thread pinned
// to each loop's CPU in turn, connections must all land on that loop.
coio::task<> drive_steered(std::size_t i, std::vector<int> cpus, std::vector<std::string>* seen) {
    if (i != 0) {
        co_return;
    }
    std::vector<coio::loop_ref> loops = coio::loop_ref::all();
    std::array<coio::server, max_loops> servers;
    servers[0] = co_await coio::start_server(say_loop, "127.0.0.1", 0, steered());
    const std::uint16_t port = servers[0].port();
    for (std::size_t j = 1; j < loops.size(); ++j) {
        co_await loops[j].spawn(open_steered(port, &servers[j]));
    }
    for (std::size_t j = 0; j < loops.size(); ++j) {
        std::string s = co_await coio::to_thread(connect_from_cpu, cpus[j], port);
        seen->push_back(std::move(s));
    }
    for (std::size_t j = 0; j < loops.size(); ++j) {
        co_await loops[j].spawn(close_here(&servers[j]));
    }
}

// SO_INCOMING_CPU steers within a SO_REUSEPORT group since Linux 6.2.
bool kernel_steers() {
    utsname u{};
    int major = 0;
    int minor = 0;
    return ::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
           (major > 6 || (major == 6 && minor >= 2));
}

std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> out;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &set)) {
                out.push_back(c);
            }
        }
    }
    return out;
}

} // namespace

TEST_CASE("with steer_to_cpu and pinned loops, a connection is served by the loop on the CPU "
          "that received it",
          "[loops][net]") {
    const std::vector<int> cpus = allowed_cpus();
    if (cpus.size() < 2 || !kernel_steers()) {
        WARN("needs 2 CPUs and Linux 6.2 or later; not checked here");
        return;
    }
    const std::size_t n = 2;
    for (auto& a : g_accepted) {
        a = 0;
    }
    const std::string fds_before = coio::test::open_fd_list();
    std::vector<std::string> seen;
    auto main = [&cpus, &seen](std::size_t i) { return drive_steered(i, cpus, &seen); };
    coio::run_loops_options opts;
    opts.pin = true; // loop i on the i-th allowed CPU
    coio::run_loops(n, main, opts);
    REQUIRE(seen.size() == n);
    for (std::size_t j = 0; j < n; ++j) {
        INFO("connections from CPU " << cpus[j] << " were accepted by loops " << seen[j]);
        CHECK(seen[j] == std::string(steered_connections, static_cast<char>('0' + j)));
    }
    CHECK(coio::test::open_fd_list() == fds_before);
}
