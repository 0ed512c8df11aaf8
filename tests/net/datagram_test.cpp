// tests/net/datagram_test.cpp - UDP: whole datagrams with the sender's
// address, truncation, empty datagrams, connected sockets and ICMP errors as
// a status, cancellation, open_datagram_endpoint, and python3's asyncio as a
// peer. Every socket is on 127.0.0.1 with a port the kernel picks.
#include "net/net_support.hpp"

#include <coio/net/datagram.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

coio::datagram_socket bound_udp() {
    coio::datagram_socket s = coio::datagram_socket::open_udp(coio::address::family::ipv4);
    s.bind(coio::address::loopback_v4(0));
    return s;
}

std::string text(const std::span<const char> buf, const coio::datagram_result& r) {
    return std::string(buf.data(), r.bytes);
}

coio::task<> until_in_flight(std::size_t n) {
    for (int i = 0; i < 100 && coio::event_loop::running().stats().io_in_flight != n; ++i) {
        co_await coio::yield_now();
    }
    REQUIRE(coio::event_loop::running().stats().io_in_flight == n);
}

struct received {
    coio::datagram_result result;
    std::string data;
};

// One receive_from into a buffer of `size` bytes (the socket outlives the
// task: the caller awaits it).
coio::task<received> receive_one(coio::datagram_socket* s, std::size_t size) {
    std::vector<char> buf(size);
    coio::datagram_result r = co_await s->receive_from(std::span(buf));
    received out;
    out.data.assign(buf.data(), r.bytes);
    out.result = r;
    co_return out;
}

// --- round trips ------------------------------------------------------------------------

coio::task<> round_trip() {
    coio::datagram_socket a = bound_udp();
    coio::datagram_socket b = bound_udp();
    CHECK(coio::test::is_nonblocking(a.native_handle()));
    CHECK(coio::test::is_cloexec(a.native_handle()));
    const coio::address a_addr = a.local_address();
    const coio::address b_addr = b.local_address();
    CHECK(b_addr.port() != 0);

    // b waits first (the receive suspends), then a sends.
    coio::task_handle<received> waiting = coio::create_task(receive_one(&b, 64));
    co_await until_in_flight(1);
    coio::datagram_result s = co_await a.send_to("hello", b_addr);
    CHECK(s.ok());
    CHECK(s.bytes == 5);
    received got = co_await waiting;
    CHECK(got.result.ok());
    CHECK(got.data == "hello");
    CHECK(got.result.peer == a_addr);
    CHECK(got.result.peer.to_string() == a_addr.to_string());
    CHECK_FALSE(got.result.truncated);

    // And back to the sender's address as reported.
    coio::datagram_result back = co_await b.send_to("world", got.result.peer);
    CHECK(back.ok());
    std::array<char, 64> buf{};
    coio::datagram_result r = co_await a.receive_from(buf);
    CHECK(r.ok());
    CHECK(text(buf, r) == "world");
    CHECK(r.peer == b_addr);
}

TEST_CASE("a datagram sent with send_to arrives whole at receive_from with the sender's address",
          "[net][udp]") {
    run_clean(round_trip());
}

coio::task<> round_trip_v6() {
    coio::datagram_socket a = coio::datagram_socket::open_udp(coio::address::family::ipv6);
    coio::datagram_socket b = coio::datagram_socket::open_udp(coio::address::family::ipv6);
    a.bind(coio::address::loopback_v6(0));
    b.bind(coio::address::loopback_v6(0));
    coio::datagram_result s = co_await a.send_to("six", b.local_address());
    REQUIRE(s.ok());
    std::array<char, 16> buf{};
    coio::datagram_result r = co_await b.receive_from(buf);
    CHECK(r.ok());
    CHECK(text(buf, r) == "six");
    // A sockaddr_in6 fills coio::address exactly (28 bytes).
    CHECK(r.peer.size() == coio::address::capacity());
    CHECK(r.peer == a.local_address());
    CHECK(r.peer.to_string() == "[::1]:" + std::to_string(a.local_address().port()));
}

TEST_CASE("IPv6 datagrams carry the sender's whole address", "[net][udp]") {
    try {
        coio::datagram_socket probe = coio::datagram_socket::open_udp(coio::address::family::ipv6);
        probe.bind(coio::address::loopback_v6(0));
    } catch (const coio::net_error& e) {
        WARN("no IPv6 loopback here, test skipped: " << e.what());
        return;
    }
    run_clean(round_trip_v6());
}

coio::task<> many_peers() {
    coio::datagram_socket server = bound_udp();
    const coio::address to = server.local_address();
    std::vector<coio::datagram_socket> clients;
    for (int i = 0; i < 5; ++i) {
        clients.push_back(bound_udp());
    }
    for (std::size_t i = 0; i < clients.size(); ++i) {
        std::string msg = "client " + std::to_string(i);
        coio::datagram_result s = co_await clients[i].send_to(msg, to);
        REQUIRE(s.ok());
    }
    // The server answers each datagram to its sender, upper-cased.
    for (std::size_t i = 0; i < clients.size(); ++i) {
        std::array<char, 64> buf{};
        coio::datagram_result r = co_await server.receive_from(buf);
        REQUIRE(r.ok());
        std::string reply = text(buf, r);
        reply[0] = 'C';
        coio::datagram_result s = co_await server.send_to(reply, r.peer);
        REQUIRE(s.ok());
    }
    for (std::size_t i = 0; i < clients.size(); ++i) {
        std::array<char, 64> buf{};
        coio::datagram_result r = co_await clients[i].receive_from(buf);
        REQUIRE(r.ok());
        CHECK(text(buf, r) == "Client " + std::to_string(i));
        CHECK(r.peer == to);
    }
}

TEST_CASE("one socket serves several peers: each reply reaches the datagram's sender",
          "[net][udp]") {
    run_clean(many_peers());
}

coio::task<> truncation() {
    coio::datagram_socket a = bound_udp();
    coio::datagram_socket b = bound_udp();
    const std::vector<char> big = coio::test::make_pattern(1, 1000);
    coio::datagram_result s1 =
        co_await a.send_to(std::string_view(big.data(), big.size()), b.local_address());
    REQUIRE(s1.ok());
    CHECK(s1.bytes == 1000);
    coio::datagram_result s2 = co_await a.send_to("next", b.local_address());
    REQUIRE(s2.ok());

    std::array<char, 10> small{};
    coio::datagram_result r = co_await b.receive_from(small);
    CHECK(r.ok());
    CHECK(r.bytes == 10);
    CHECK(r.truncated);
    CHECK(std::memcmp(small.data(), big.data(), 10) == 0);
    CHECK(r.peer == a.local_address());
    // The rest of the long datagram is gone: the next receive is the next datagram.
    std::array<char, 64> buf{};
    coio::datagram_result r2 = co_await b.receive_from(buf);
    CHECK(r2.ok());
    CHECK(text(buf, r2) == "next");
    CHECK_FALSE(r2.truncated);
}

TEST_CASE("a datagram longer than the buffer is truncated, flagged, and its rest discarded",
          "[net][udp]") {
    run_clean(truncation());
}

coio::task<> empty_datagram() {
    coio::datagram_socket a = bound_udp();
    coio::datagram_socket b = bound_udp();
    coio::datagram_result s = co_await a.send_to(std::string_view(), b.local_address());
    CHECK(s.ok());
    CHECK(s.bytes == 0);
    coio::datagram_result s2 = co_await a.send_to("x", b.local_address());
    REQUIRE(s2.ok());
    std::array<char, 16> buf{};
    coio::datagram_result r = co_await b.receive_from(buf);
    CHECK(r.status == coio::io_status::ok); // not eof: UDP has no end
    CHECK(r.bytes == 0);
    CHECK_FALSE(r.truncated);
    CHECK(r.peer == a.local_address());
    coio::datagram_result r2 = co_await b.receive_from(buf);
    CHECK(r2.ok());
    CHECK(text(buf, r2) == "x");
}

TEST_CASE("an empty datagram is received as ok with zero bytes, not as eof", "[net][udp]") {
    run_clean(empty_datagram());
}

// --- connected sockets ----------------------------------------------------------------

coio::task<> connected() {
    coio::datagram_socket a = bound_udp();
    coio::datagram_socket b = bound_udp();
    coio::datagram_socket stranger = bound_udp();
    a.connect(b.local_address());
    b.connect(a.local_address());
    CHECK(a.peer_address() == b.local_address());

    // a is connected to b: the kernel drops the stranger's datagram for a.
    coio::datagram_result s0 = co_await stranger.send_to("stranger", a.local_address());
    REQUIRE(s0.ok());
    coio::datagram_result s1 = co_await b.send("from b");
    REQUIRE(s1.ok());
    CHECK(s1.bytes == 6);
    std::array<char, 64> buf{};
    coio::datagram_result r = co_await a.receive(buf);
    CHECK(r.ok());
    CHECK(text(buf, r) == "from b");
    CHECK(r.peer == b.local_address());

    coio::datagram_result s2 = co_await a.send("from a");
    REQUIRE(s2.ok());
    coio::datagram_result r2 = co_await b.receive(buf);
    CHECK(r2.ok());
    CHECK(text(buf, r2) == "from a");
}

TEST_CASE("a connected socket sends and receives with its peer only", "[net][udp]") {
    run_clean(connected());
}

coio::task<> refused() {
    // A port that refuses us and that nobody else can take meanwhile: it stays
    // bound, by a socket connected to another peer, so the kernel finds no
    // socket for our datagrams and answers with ICMP port unreachable.
    coio::datagram_socket other = bound_udp();
    coio::datagram_socket reserved = bound_udp();
    reserved.connect(other.local_address());
    const coio::address gone = reserved.local_address();
    coio::datagram_socket a = bound_udp();
    a.connect(gone);
    coio::datagram_result s = co_await a.send("ping");
    CHECK(s.ok());
    // The ICMP port-unreachable comes back as the status of the next receive.
    std::array<char, 16> buf{};
    coio::datagram_result r = co_await a.receive(buf);
    CHECK(r.status == coio::io_status::refused);
    CHECK(r.error == std::errc::connection_refused);
    CHECK(r.bytes == 0);
    // Reported once: the socket goes on working (a later send is accepted).
    coio::datagram_result s2 = co_await a.send("again");
    CHECK(s2.ok());
}

TEST_CASE("ICMP port unreachable on a connected socket is the status refused, not an exception",
          "[net][udp]") {
    run_clean(refused());
}

// --- cancellation and close ----------------------------------------------------------------

coio::task<> blocked_receiver(coio::datagram_socket* s, std::string* outcome) {
    std::array<char, 16> buf{};
    try {
        coio::datagram_result r = co_await s->receive_from(buf);
        *outcome = "returned " + std::string(coio::to_string(r.status));
    } catch (const coio::cancelled_error&) {
        *outcome = "cancelled_error";
        throw;
    }
}

coio::task<> cancel_receive() {
    coio::datagram_socket a = bound_udp();
    coio::datagram_socket b = bound_udp();
    std::string outcome;
    coio::task_handle<> receiver = coio::create_task(blocked_receiver(&b, &outcome), "receiver");
    co_await until_in_flight(1);
    CHECK(receiver.cancel());
    bool threw = false;
    try {
        co_await receiver;
    } catch (const coio::cancelled_error&) {
        threw = true;
    }
    CHECK(threw);
    CHECK(outcome == "cancelled_error");
    CHECK(receiver.cancelled());
    CHECK(coio::event_loop::running().stats().io_in_flight == 0);

    // The cancelled receive took nothing: the next datagram is still there.
    coio::datagram_result s = co_await a.send_to("after", b.local_address());
    REQUIRE(s.ok());
    std::array<char, 16> buf{};
    coio::datagram_result r = co_await b.receive_from(buf);
    CHECK(r.ok());
    CHECK(text(buf, r) == "after");
}

TEST_CASE("cancelling a task blocked in receive_from throws cancelled_error and loses no datagram",
          "[net][udp]") {
    run_clean(cancel_receive());
}

coio::task<> close_receive() {
    coio::datagram_socket b = bound_udp();
    coio::task_handle<received> receiver = coio::create_task(receive_one(&b, 16));
    co_await until_in_flight(1);
    b.close();
    received got = co_await receiver;
    CHECK(got.result.status == coio::io_status::cancelled);
    CHECK(got.result.error == std::errc::operation_canceled);
}

TEST_CASE("closing a datagram socket completes a pending receive with cancelled", "[net][udp]") {
    run_clean(close_receive());
}

// Owns its socket: it is closed when the frame unwinds, on the loop.
coio::task<> owning_receiver(coio::datagram_socket s, std::string* outcome) {
    co_await blocked_receiver(&s, outcome);
}

TEST_CASE("a receive still pending when main returns is cancelled by run and nothing is left",
          "[net][udp]") {
    const std::size_t fds_before = coio::test::open_fd_count();
    std::string outcome;
    {
        coio::event_loop loop;
        auto main_task = [](std::string* out) -> coio::task<> { // captureless
            coio::task_handle<> left =
                coio::create_task(owning_receiver(bound_udp(), out), "left behind");
            co_await until_in_flight(1);
        };
        loop.run_until_complete(main_task(&outcome));
        coio::test::require_clean(loop);
        CHECK(outcome == "cancelled_error");
    }
    CHECK(coio::test::open_fd_count() == fds_before);
}

// --- open_datagram_endpoint and errors ----------------------------------------------------

coio::task<> endpoint() {
    coio::datagram_socket server = co_await coio::open_datagram_endpoint("127.0.0.1", 0);
    const std::uint16_t port = server.local_address().port();
    REQUIRE(port != 0);
    // Remote only: the kernel picks the local side; "localhost" is resolved
    // and its IPv4 address is taken because the server is IPv4 here.
    coio::datagram_socket client =
        co_await coio::open_datagram_endpoint("127.0.0.1", 0, "localhost", port);
    CHECK(client.peer_address() == server.local_address());
    coio::datagram_socket client2 = co_await coio::open_datagram_endpoint("", 0, "127.0.0.1", port);
    CHECK(client2.peer_address() == server.local_address());

    coio::datagram_result s = co_await client.send("one");
    REQUIRE(s.ok());
    coio::datagram_result s2 = co_await client2.send("two");
    REQUIRE(s2.ok());
    for (int i = 0; i < 2; ++i) {
        std::array<char, 16> buf{};
        coio::datagram_result r = co_await server.receive_from(buf);
        REQUIRE(r.ok());
        coio::datagram_result e = co_await server.send_to(text(buf, r) + "!", r.peer);
        REQUIRE(e.ok());
    }
    std::array<char, 16> buf{};
    coio::datagram_result r1 = co_await client.receive(buf);
    CHECK(text(buf, r1) == "one!");
    coio::datagram_result r2 = co_await client2.receive(buf);
    CHECK(text(buf, r2) == "two!");
}

TEST_CASE("open_datagram_endpoint binds a local address, connects a remote one, resolves names",
          "[net][udp]") {
    run_clean(endpoint());
}

coio::task<> bind_in_use() {
    coio::datagram_socket a = bound_udp();
    const coio::address at = a.local_address();
    std::string what;
    try {
        coio::datagram_socket b = co_await coio::open_datagram_endpoint("127.0.0.1", at.port());
    } catch (const coio::net_error& e) {
        what = e.what();
        CHECK(e.code() == std::errc::address_in_use);
    }
    CHECK(what == "bind " + at.to_string() + ": " + std::strerror(EADDRINUSE));
}

TEST_CASE("binding a UDP port in use throws net_error naming the address", "[net][udp]") {
    run_clean(bind_in_use());
}

// --- python3 asyncio as the peer ----------------------------------------------------------

// Echo `count` datagrams back to their senders, with the sender's own bytes.
coio::task<int> echo_n(coio::datagram_socket* s, int count) {
    std::vector<char> buf(65536);
    int n = 0;
    while (n < count) {
        coio::datagram_result r = co_await s->receive_from(std::span(buf));
        REQUIRE(r.ok());
        coio::datagram_result e =
            co_await s->send_to(std::string_view(buf.data(), r.bytes), r.peer);
        REQUIRE(e.ok());
        ++n;
    }
    co_return n;
}

coio::task<> python_client() {
    coio::datagram_socket s = co_await coio::open_datagram_endpoint("127.0.0.1", 0);
    const std::string cmd = "python3 " COIO_TEST_SOURCE_DIR "/interop/asyncio_udp_client.py " +
                            std::to_string(s.local_address().port());
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    // The script sends 20 datagrams (1 to 8,000 bytes), one at a time, and
    // checks each echo; if it dies early the timeout ends this side.
    int echoed = 0;
    try {
        echoed = co_await coio::wait_for(echo_n(&s, 20), 60s);
    } catch (const coio::timeout_error&) {
        echoed = -1;
    }
    std::string out;
    char line[256];
    while (std::fgets(line, sizeof line, p) != nullptr) {
        out += line;
    }
    const int rc = ::pclose(p);
    CHECK(echoed == 20);
    CHECK(rc == 0);
    CHECK(out == "ok 20\n");
}

TEST_CASE("python3's asyncio datagram client gets every datagram echoed by coio", "[net][udp]") {
    run_clean(python_client());
}

} // namespace
