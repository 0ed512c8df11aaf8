// tests/net/reuseport_test.cpp - a server on every loop (run_loops) with
// server_options::reuse_port: the kernel spreads connections over the loops.
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/loops.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
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
