// tests/net/server_addresses_test.cpp - start_server with host names, host
// lists and "" (every interface), one port on every socket (issue 11.4).
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

using coio::test::run_clean;

namespace {

// Whether this machine can bind IPv6 loopback (a container may have no IPv6).
bool have_ipv6_loopback() {
    try {
        coio::socket s = coio::socket::open_tcp(coio::address::family::ipv6);
        s.bind(coio::address::loopback_v6(0));
        return true;
    } catch (const coio::net_error&) {
        return false;
    }
}

coio::task<std::string> echo_via(coio::address to, std::string text) {
    coio::socket c = co_await coio::connect(to);
    co_return co_await coio::test::round_trip(&c, text);
}

// The address a client uses to reach a listening address: loopback for a
// wildcard one.
coio::address reachable(const coio::address& a) {
    if (a.host() == "0.0.0.0") {
        return coio::address::loopback_v4(a.port());
    }
    if (a.host() == "::") {
        return coio::address::loopback_v6(a.port());
    }
    return a;
}

coio::task<std::vector<coio::address>> serve_and_check(std::vector<std::string> hosts) {
    coio::server srv = co_await coio::start_server(coio::test::echo_handler, hosts, 0);
    std::vector<coio::address> addrs = srv.addresses();
    REQUIRE_FALSE(addrs.empty());
    CHECK(srv.local_address() == addrs.front());
    for (const coio::address& a : addrs) {
        CHECK(a.port() == srv.port());
        CHECK(a.port() != 0);
        std::string back = co_await echo_via(reachable(a), "via " + a.to_string());
        CHECK(back == "via " + a.to_string());
    }
    CHECK(srv.stats().accepted == addrs.size());
    srv.close();
    co_await srv.wait_closed();
    co_return addrs;
}

bool contains(const std::vector<coio::address>& v, const std::string& host) {
    return std::any_of(v.begin(), v.end(),
                       [&](const coio::address& a) { return a.host() == host; });
}

} // namespace

TEST_CASE("a server on \"localhost\" listens on every address the name resolves to, on one port",
          "[net][server]") {
    auto expected = []() -> coio::task<std::vector<coio::address>> {
        co_return co_await coio::resolve("localhost", 0);
    };
    const std::vector<coio::address> want = run_clean(expected());
    const std::vector<coio::address> got = run_clean(serve_and_check({"localhost"}));
    REQUIRE(got.size() == want.size());
    for (const coio::address& a : want) {
        CHECK(contains(got, a.host()));
    }
}

TEST_CASE("a server on a list of hosts listens on each, on one port, binding a repeated address "
          "once",
          "[net][server]") {
    std::vector<std::string> hosts{"127.0.0.1", "127.0.0.1"};
    if (have_ipv6_loopback()) {
        hosts.emplace_back("::1");
    }
    const std::vector<coio::address> got = run_clean(serve_and_check(hosts));
    CHECK(got.size() == hosts.size() - 1);
    CHECK(got.front().host() == "127.0.0.1");
    if (hosts.size() == 3) {
        CHECK(got.back().host() == "::1");
    }
}

TEST_CASE("a server on \"\" listens on 0.0.0.0 and :: on one port and is reachable on both "
          "loopbacks",
          "[net][server]") {
    const std::vector<coio::address> got = run_clean(serve_and_check({""}));
    CHECK(got.front().host() == "0.0.0.0");
    if (have_ipv6_loopback()) {
        REQUIRE(got.size() == 2);
        CHECK(got.back().host() == "::");
    }
}

TEST_CASE("start_server takes a braced list of hosts", "[net][server]") {
    auto body = []() -> coio::task<> {
        // g++ 12 rejects a braced list in a co_await's statement ("array used
        // as initializer"): the task is made first (server.hpp).
        coio::task<coio::server> start =
            coio::start_server(coio::test::echo_handler, {"127.0.0.1", "127.0.0.1"}, 0);
        coio::server srv = co_await std::move(start);
        CHECK(srv.addresses().size() == 1);
    };
    run_clean(body());
}

TEST_CASE("a port taken on one of the addresses fails start_server naming that address and "
          "leaves nothing open",
          "[net][server]") {
    auto body = []() -> coio::task<> {
        coio::socket holder = coio::socket::open_tcp(coio::address::family::ipv4);
        holder.bind(coio::address::loopback_v4(0));
        holder.listen();
        const std::uint16_t port = holder.local_address().port();
        std::vector<std::string> hosts{"127.0.0.1"};
        if (have_ipv6_loopback()) {
            hosts.insert(hosts.begin(), "::1"); // bound first, then closed again
        }
        try {
            coio::server srv = co_await coio::start_server(coio::test::echo_handler, hosts, port);
            FAIL("start_server succeeded on a taken port");
        } catch (const coio::net_error& e) {
            CHECK(e.code() == std::error_code(EADDRINUSE, std::system_category()));
            CHECK(std::string(e.what()).find("bind 127.0.0.1:" + std::to_string(port)) == 0);
        }
    };
    run_clean(body()); // checks no fd is left open
}

TEST_CASE("an address that is not local fails start_server naming it", "[net][server]") {
    auto body = []() -> coio::task<> {
        try {
            // 192.0.2.0/24 is TEST-NET-1: never assigned to this machine.
            coio::server srv =
                co_await coio::start_server(coio::test::echo_handler, "192.0.2.1", 0);
            FAIL("start_server succeeded on a foreign address");
        } catch (const coio::net_error& e) {
            CHECK(e.code() == std::error_code(EADDRNOTAVAIL, std::system_category()));
            CHECK(std::string(e.what()).find("bind 192.0.2.1:0") == 0);
        }
    };
    run_clean(body());
}

namespace {

coio::task<> two_servers_one_port() {
    coio::server_options opts;
    opts.reuse_port = true;
    coio::server a = co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", 0, opts);
    coio::server b =
        co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", a.port(), opts);
    CHECK(b.port() == a.port());
    for (int i = 0; i < 20; ++i) {
        std::string back = co_await echo_via(a.local_address(), "x");
        CHECK(back == "x");
    }
    CHECK(a.stats().accepted + b.stats().accepted == 20);
    opts.reuse_port = false;
    bool refused = false;
    try {
        coio::server c =
            co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", a.port(), opts);
    } catch (const coio::net_error& e) {
        refused = e.code() == std::error_code(EADDRINUSE, std::system_category());
    }
    CHECK(refused);
}

} // namespace

TEST_CASE("server_options::reuse_port lets two servers listen on one port", "[net][server]") {
    run_clean(two_servers_one_port());
}
