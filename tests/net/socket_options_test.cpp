// tests/net/socket_options_test.cpp - socket control (issue 14.5): abort()
// with a reset, keepalive, SO_REUSEPORT, buffer sizes, set_option /
// get_option, and their errors.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <string>

using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

coio::task<coio::io_result> read_after_abort(bool unsent) {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    if (unsent) {
        coio::io_result w = co_await p.accepted.write_all("never read by the client\n");
        REQUIRE(w.ok());
    }
    p.accepted.abort();
    CHECK_FALSE(p.accepted.is_open());
    std::array<char, 64> buf{};
    coio::io_result r = co_await p.client.read_some(std::span(buf));
    if (unsent && r.ok()) { // the data may arrive before the reset
        r = co_await p.client.read_some(std::span(buf));
    }
    co_return r;
}

coio::task<coio::io_result> read_after_close() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    p.accepted.close();
    std::array<char, 64> buf{};
    co_return co_await p.client.read_some(std::span(buf));
}

} // namespace

TEST_CASE("abort() resets the connection: the peer reads ECONNRESET, not EOF", "[net][socket]") {
    coio::io_result r = run_clean(read_after_abort(false));
    CHECK(r.status == coio::io_status::reset);
    CHECK(r.error == std::error_code(ECONNRESET, std::system_category()));
    coio::io_result unsent = run_clean(read_after_abort(true));
    CHECK(unsent.status == coio::io_status::reset);
    coio::io_result closed = run_clean(read_after_close());
    CHECK(closed.status == coio::io_status::eof);
}

namespace {

coio::task<> aborted_read_in_flight() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    auto reader = [](coio::socket* s) -> coio::task<coio::io_result> {
        std::array<char, 16> buf{};
        co_return co_await s->read_some(std::span(buf));
    };
    coio::task_handle<coio::io_result> h = coio::create_task(reader(&p.accepted));
    co_await coio::yield_now(); // the read is waiting
    co_await coio::yield_now();
    p.accepted.abort();
    coio::io_result r = co_await h;
    CHECK(r.status == coio::io_status::cancelled);
}

} // namespace

TEST_CASE("abort() completes a read in flight on the socket as cancelled", "[net][socket]") {
    run_clean(aborted_read_in_flight());
}

namespace {

coio::task<> keepalive_options() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::socket& s = p.client;
    CHECK(s.get_option(SOL_SOCKET, SO_KEEPALIVE) == 0);
    s.set_keepalive(true);
    CHECK(s.get_option(SOL_SOCKET, SO_KEEPALIVE) == 1);
    s.set_keepalive(false);
    CHECK(s.get_option(SOL_SOCKET, SO_KEEPALIVE) == 0);

    const int default_interval = s.get_option(IPPROTO_TCP, TCP_KEEPINTVL);
    s.set_keepalive(30s, 0s, 4); // interval 0: keep the system's
    CHECK(s.get_option(SOL_SOCKET, SO_KEEPALIVE) == 1);
    CHECK(s.get_option(IPPROTO_TCP, TCP_KEEPIDLE) == 30);
    CHECK(s.get_option(IPPROTO_TCP, TCP_KEEPINTVL) == default_interval);
    CHECK(s.get_option(IPPROTO_TCP, TCP_KEEPCNT) == 4);
    s.set_keepalive(10s, 3s, 0);
    CHECK(s.get_option(IPPROTO_TCP, TCP_KEEPIDLE) == 10);
    CHECK(s.get_option(IPPROTO_TCP, TCP_KEEPINTVL) == 3);
    CHECK(s.get_option(IPPROTO_TCP, TCP_KEEPCNT) == 4);
    CHECK_THROWS_AS(s.set_keepalive(-1s, 1s, 1), std::invalid_argument);
}

} // namespace

TEST_CASE("set_keepalive turns keepalive on with idle, interval and count, zero keeping the "
          "system's value",
          "[net][socket]") {
    run_clean(keepalive_options());
}

TEST_CASE("set_reuse_port lets two sockets listen on one port; without it bind fails naming the "
          "address",
          "[net][socket]") {
    auto body = []() -> coio::task<> {
        coio::socket a = coio::socket::open_tcp(coio::address::family::ipv4);
        a.set_reuse_port(true);
        a.bind(coio::address::loopback_v4(0));
        a.listen();
        CHECK(a.get_option(SOL_SOCKET, SO_REUSEPORT) == 1);
        const coio::address at = a.local_address();

        coio::socket b = coio::socket::open_tcp(coio::address::family::ipv4);
        b.set_reuse_port(true);
        b.bind(at);
        b.listen();
        coio::socket c = co_await coio::connect(at); // one of the two accepts it
        CHECK(c.is_open());

        coio::socket d = coio::socket::open_tcp(coio::address::family::ipv4);
        try {
            d.bind(at);
            FAIL("bind without SO_REUSEPORT succeeded");
        } catch (const coio::net_error& e) {
            CHECK(e.code() == std::error_code(EADDRINUSE, std::system_category()));
            CHECK(std::string(e.what()).find("bind " + at.to_string()) != std::string::npos);
        }
    };
    run_clean(body());
}

TEST_CASE("send and receive buffer sizes can be set and read back", "[net][socket]") {
    auto body = []() -> coio::task<> {
        coio::test::socket_pair p = co_await coio::test::connected_pair();
        p.client.set_send_buffer_size(16 * 1024);
        p.client.set_receive_buffer_size(32 * 1024);
        // Linux doubles the size asked for (room for its bookkeeping).
        CHECK(p.client.send_buffer_size() >= 16 * 1024);
        CHECK(p.client.send_buffer_size() <= 2 * 16 * 1024);
        CHECK(p.client.receive_buffer_size() >= 32 * 1024);
        CHECK(p.client.receive_buffer_size() <= 2 * 32 * 1024);
        p.client.set_option(IPPROTO_TCP, TCP_NODELAY, 0);
        CHECK(p.client.get_option(IPPROTO_TCP, TCP_NODELAY) == 0);
        p.client.set_nodelay(true);
        CHECK(p.client.get_option(IPPROTO_TCP, TCP_NODELAY) != 0);
    };
    run_clean(body());
}

TEST_CASE("option calls on a closed socket throw net_error naming the call", "[net][socket]") {
    coio::socket s = coio::socket::open_tcp(coio::address::family::ipv4);
    s.close();
    try {
        (void)s.get_option(SOL_SOCKET, SO_KEEPALIVE);
        FAIL("no exception");
    } catch (const coio::net_error& e) {
        CHECK(e.code() == std::error_code(EBADF, std::system_category()));
        CHECK(std::string(e.what()).find("getsockopt(") == 0);
    }
    try {
        s.set_keepalive(true);
        FAIL("no exception");
    } catch (const coio::net_error& e) {
        CHECK(std::string(e.what()).find("setsockopt(SO_KEEPALIVE)") == 0);
    }
    CHECK_THROWS_AS(s.set_send_buffer_size(4096), coio::net_error);
    CHECK_THROWS_AS(s.set_reuse_port(true), coio::net_error);
}
