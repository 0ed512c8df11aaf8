// tests/net/server_limit_test.cpp - server_options::max_connections (issue
// 13.2, RELIABILITY 18). coio's documented rule differs from RELIABILITY
// 18's "the extra ones are closed at once": at the limit the server stops
// accepting, so the extra clients wait in the listen backlog and are served,
// in turn, as earlier connections end.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <string>
#include <vector>

using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

coio::task<> echo_lines(coio::stream_reader r, coio::stream_writer w) {
    for (;;) {
        std::string line = co_await r.readline();
        if (line.empty()) {
            break;
        }
        w.write(line);
        co_await w.drain();
    }
    w.close();
}

// Sends one line and reads the echo back.
coio::task<std::string> ask(coio::stream_reader* r, coio::stream_writer* w, std::string line) {
    w->write(line);
    co_await w->drain();
    co_return co_await r->readline();
}

// Waits (bounded by the caller) until `pred` holds, one loop pass at a time.
template <class Pred>
coio::task<> until(Pred pred) {
    while (!pred()) {
        co_await coio::yield_now();
    }
}

coio::task<> limit_of_three() {
    constexpr std::size_t limit = 3;
    coio::server_options opts;
    opts.max_connections = limit;
    coio::server srv = co_await coio::start_server(echo_lines, "127.0.0.1", 0, opts);

    std::vector<coio::stream_pair> clients;
    for (std::size_t i = 0; i < limit + 5; ++i) {
        // Every connect completes: the kernel finishes the handshake of the
        // extra clients and keeps them in the backlog.
        coio::stream_pair c =
            co_await coio::wait_for(coio::open_connection("127.0.0.1", srv.port()), 5s);
        clients.push_back(std::move(c));
    }
    for (std::size_t i = 0; i < limit; ++i) {
        std::string back = co_await coio::wait_for(
            ask(&clients[i].reader, &clients[i].writer, "hi " + std::to_string(i) + "\n"), 5s);
        CHECK(back == "hi " + std::to_string(i) + "\n");
    }
    auto at_limit = [&srv] { return srv.stats().active == limit && srv.stats().limit_waits > 0; };
    co_await coio::wait_for(until(at_limit), 5s);
    CHECK(srv.stats().accepted == limit);

    // An extra client's line stays unanswered while the limit holds.
    coio::stream_pair& extra = clients[limit];
    extra.writer.write("waiting\n");
    co_await extra.writer.drain();
    bool answered = true;
    try {
        std::string got = co_await coio::wait_for(extra.reader.readline(), 200ms);
        (void)got;
    } catch (const coio::timeout_error&) {
        answered = false;
    }
    CHECK_FALSE(answered);
    CHECK(srv.stats().accepted == limit);

    // One connection ends: exactly one more is accepted, and it is served.
    clients[0].writer.close();
    auto one_more = [&srv] { return srv.stats().accepted == limit + 1; };
    co_await coio::wait_for(until(one_more), 5s);
    std::string line = co_await coio::wait_for(extra.reader.readline(), 5s);
    CHECK(line == "waiting\n");
    CHECK(srv.stats().active == limit);

    // The rest are served as the others leave; the count goes down to zero.
    for (std::size_t i = 1; i < clients.size(); ++i) {
        if (i != limit) {
            std::string back =
                co_await coio::wait_for(ask(&clients[i].reader, &clients[i].writer, "late\n"), 5s);
            CHECK(back == "late\n");
        }
        clients[i].writer.close();
    }
    auto none = [&srv] { return srv.stats().active == 0; };
    co_await coio::wait_for(until(none), 5s);
    CHECK(srv.stats().accepted == limit + 5);
    srv.close();
    co_await srv.wait_closed();
}

} // namespace

TEST_CASE("at max_connections the server stops accepting; the extra clients wait in the backlog "
          "and are served as connections end",
          "[net][server]") {
    run_clean(limit_of_three());
}

namespace {

coio::task<> limit_on_two_sockets() {
    coio::server_options opts;
    opts.max_connections = 1;
    std::vector<std::string> hosts{"127.0.0.1", "127.0.0.2"};
    coio::server srv = co_await coio::start_server(echo_lines, hosts, 0, opts);
    REQUIRE(srv.addresses().size() == 2);
    coio::stream_pair a = co_await coio::wait_for(coio::open_connection(srv.addresses()[0]), 5s);
    coio::stream_pair b = co_await coio::wait_for(coio::open_connection(srv.addresses()[1]), 5s);
    // Both are accepted (each socket had an accept waiting), one is handled;
    // the other waits, accepted, for the place.
    auto one = [&srv] { return srv.stats().accepted == 2 && srv.stats().active == 1; };
    co_await coio::wait_for(until(one), 5s);
    a.writer.write("a\n");
    b.writer.write("b\n");
    co_await a.writer.drain();
    co_await b.writer.drain();
    // Whichever is handled answers; the other cannot until it ends, so the
    // race's loser has nothing to lose.
    auto r = co_await coio::wait_for(coio::race(a.reader.readline(), b.reader.readline()), 5s);
    const bool a_first = r.index() == 0;
    coio::stream_pair* first = a_first ? &a : &b;
    coio::stream_pair* second = a_first ? &b : &a;
    const std::string got = a_first ? std::get<0>(r) : std::get<1>(r);
    CHECK(got == (first == &a ? "a\n" : "b\n"));
    CHECK(srv.stats().active == 1);
    first->writer.close();
    std::string other = co_await coio::wait_for(second->reader.readline(), 5s);
    CHECK(other == (second == &a ? "a\n" : "b\n"));
    second->writer.close();
    srv.close();
    co_await srv.wait_closed();
    CHECK(srv.stats().accepted == 2);
}

} // namespace

TEST_CASE("max_connections bounds the handlers across a server's listening sockets, and a client "
          "accepted at the limit is served next",
          "[net][server]") {
    run_clean(limit_on_two_sockets());
}

namespace {

struct counting_echo {
    int* started;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) const {
        ++*started;
        return echo_lines(std::move(r), std::move(w));
    }
};

// A client accepted at the limit waits, accepted, for a place; close_clients
// then ends the handled connection, which frees the place, and the waiting
// one's task starts after close_clients: it closes that client unserved and
// still counts as ended (active back to 0, wait_closed returns).
coio::task<> close_clients_reaches_waiting() {
    coio::server_options opts;
    opts.max_connections = 1;
    std::vector<std::string> hosts{"127.0.0.1", "127.0.0.2"};
    int started = 0;
    coio::server srv = co_await coio::start_server(counting_echo{&started}, hosts, 0, opts);
    REQUIRE(srv.addresses().size() == 2);
    coio::stream_pair a = co_await coio::wait_for(coio::open_connection(srv.addresses()[0]), 5s);
    coio::stream_pair b = co_await coio::wait_for(coio::open_connection(srv.addresses()[1]), 5s);
    auto one = [&srv] { return srv.stats().accepted == 2 && srv.stats().active == 1; };
    co_await coio::wait_for(until(one), 5s);
    CHECK(started == 1);

    srv.close_clients();
    // Both clients see the end: the handled one closed by close_clients, the
    // waiting one by its task, which must not run the handler.
    std::string end_a = co_await coio::wait_for(a.reader.readline(), 5s);
    std::string end_b = co_await coio::wait_for(b.reader.readline(), 5s);
    CHECK(end_a.empty());
    CHECK(end_b.empty());
    auto none = [&srv] { return srv.stats().active == 0; };
    co_await coio::wait_for(until(none), 5s);
    CHECK(started == 1);
    srv.close();
    co_await coio::wait_for(srv.wait_closed(), 5s);
    CHECK(srv.stats().accepted == 2);
}

} // namespace

TEST_CASE("close_clients reaches a client accepted at the limit whose task has not started: it "
          "is closed unserved and counted as ended",
          "[net][server]") {
    run_clean(close_clients_reaches_waiting());
}
