// tests/net/oom_test.cpp - allocation failure anywhere in a connection's life
// and in the combinators (RELIABILITY 3): the k-th allocation of a cycle
// fails, for every k (tests/support/oom_sweep.hpp says what must hold). The
// cycles: a loop is made, a stream server starts, a client connects, sends a
// line, reads the server's ACK (through wait_for), closes, the server closes;
// gather, a task group, wait_for, race, a channel, a cancel, call_later; a
// UDP round trip and the same exchange over a Unix stream server.
#include "support/oom_sweep.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <unistd.h>

#include <array>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

namespace {

// The server's side: one ACK per line until EOF.
coio::task<> ack_lines(coio::stream_reader r, coio::stream_writer w) {
    for (;;) {
        std::string line = co_await r.readline();
        if (line.empty()) {
            break;
        }
        w.write("ACK " + line);
        co_await w.drain();
    }
    w.close();
    co_await w.wait_closed();
}

// One cycle; returns normally only if the client got its ACK.
coio::task<> cycle() {
    coio::server srv = co_await coio::start_server(ack_lines, "127.0.0.1", 0);
    co_await coio::test::client_exchange(
        coio::open_connection(coio::address::loopback_v4(srv.port())), "ACK hello\n");
    srv.close();
    co_await srv.wait_closed();
}

coio::task<int> value_after(int v, std::chrono::milliseconds d) {
    co_await coio::sleep(d);
    co_return v;
}

coio::task<> sleep_an_hour() {
    co_await coio::sleep(std::chrono::hours(1));
}

coio::task<> send_three(coio::channel_sender<std::string> tx) {
    for (int i = 0; i < 3; ++i) {
        if (!co_await tx.send(std::string(40, static_cast<char>('a' + i)))) { // past SSO
            throw std::runtime_error("channel closed");
        }
    }
}

// The second cycle: the combinators and the loop's own structures - gather,
// a task group, a wait_for that times out, race, a channel between two
// tasks, a cancelled task, call_later.
coio::task<> combinators() {
    using namespace std::chrono_literals;
    auto [a, b] = co_await coio::gather(value_after(1, 0ms), value_after(2, 1ms));
    {
        coio::task_group g;
        coio::task_handle<int> c = g.create_task(value_after(3, 1ms));
        coio::task_handle<int> d = g.create_task(value_after(4, 0ms));
        co_await g.wait();
        a += c.result() + d.result();
    }
    bool timed_out = false;
    try {
        co_await coio::wait_for(coio::sleep(1h), 1ms);
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    auto won = co_await coio::race(value_after(5, 0ms), coio::sleep(1h));
    a += std::get<0>(won);
    auto [tx, rx] = coio::channel<std::string>(1);
    coio::task_handle<> producer = coio::create_task(send_three(std::move(tx)));
    while (std::optional<std::string> v = co_await rx.recv()) {
        b += static_cast<int>(v->size());
    }
    co_await producer;
    coio::task_handle<> sleeper = coio::create_task(sleep_an_hour(), "sleeper");
    sleeper.cancel();
    try {
        co_await sleeper;
    } catch (const coio::cancelled_error&) {
        b += 1;
    }
    coio::event fired;
    coio::event_loop::running().call_later(1ms, [&fired]() noexcept { fired.set(); });
    co_await fired.wait();
    if (a != 13 || b != 123 || !timed_out) {
        throw std::runtime_error("combinators: wrong results");
    }
}

// A datagram operation's status (not an exception, by design) as one.
void check_datagram(coio::io_status st, std::error_code ec, const char* what) {
    if (st == coio::io_status::ok) {
        return;
    }
    if (ec == std::errc::not_enough_memory) {
        throw coio::net_error(ec, what); // a receive found no memory for a buffer
    }
    throw std::runtime_error(std::string(what) + " failed: " + ec.message());
}

// The third cycle: a UDP round trip between two endpoints, then the first
// cycle's exchange over a Unix stream server (an abstract name per process).
coio::task<> datagram_and_unix() {
    coio::datagram_socket a = co_await coio::open_datagram_endpoint("127.0.0.1", 0);
    coio::datagram_socket b = co_await coio::open_datagram_endpoint("127.0.0.1", 0);
    const coio::datagram_result sent =
        co_await a.send_to(std::string_view("ping"), b.local_address());
    check_datagram(sent.status, sent.error, "send_to");
    std::array<char, 64> buf{};
    const coio::datagram_result got = co_await b.receive_from(std::span<char>(buf));
    check_datagram(got.status, got.error, "receive_from");
    if (got.bytes != 4 || got.peer != a.local_address()) {
        throw std::runtime_error("datagram: wrong bytes or peer");
    }
    // An abstract name (no file to leave behind), one per process.
    const std::string path = std::string(1, '\0') + "coio-oom-" + std::to_string(::getpid());
    coio::unix_server srv = co_await coio::start_unix_server(ack_lines, path);
    co_await coio::test::client_exchange(coio::open_unix_connection(path), "ACK hello\n");
    srv.close();
    co_await srv.wait_closed();
}

} // namespace

TEST_CASE("an allocation failure anywhere in a connect, send, ACK and close cycle reaches the "
          "awaiting coroutine, leaks nothing and leaves the process working") {
    coio::test::sweep_allocations(cycle);
}

TEST_CASE("an allocation failure anywhere in gather, a task group, wait_for, race, a channel, "
          "a cancel or call_later reaches the awaiting coroutine and leaks nothing") {
    coio::test::sweep_allocations(combinators);
}

TEST_CASE("an allocation failure anywhere in a UDP round trip and a Unix stream server's cycle "
          "reaches the awaiting coroutine and leaks nothing") {
    coio::test::sweep_allocations(datagram_and_unix);
}
