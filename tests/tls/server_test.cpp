// tests/tls/server_test.cpp - TLS servers with what plain servers have
// (server.hpp, docs/servers.md): max_connections, close_clients /
// abort_clients, host lists, and the stream timeouts of server_options.
#include "net/net_support.hpp"
#include "tls/tls_support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using coio::test::client_context;
using coio::test::run_clean;
using coio::test::server_context;

namespace {

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

coio::task<coio::stream_pair> tls_client(std::uint16_t port) {
    coio::stream_pair p =
        co_await coio::wait_for(coio::open_connection("localhost", port, client_context()), 10s);
    co_return p;
}

coio::task<> limit_of_one() {
    coio::test::reports seen;
    seen.install();
    coio::server_options opts;
    opts.max_connections = 1;
    coio::server srv =
        co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0, server_context(), opts);

    coio::stream_pair first = co_await tls_client(srv.port());
    std::string back = co_await coio::wait_for(ask(&first.reader, &first.writer, "one\n"), 10s);
    CHECK(back == "one\n");
    auto at_limit = [&srv] { return srv.stats().active == 1 && srv.stats().limit_waits > 0; };
    co_await coio::wait_for(until(at_limit), 5s);

    // A second client's handshake waits in the backlog while the limit holds.
    bool handshaken = true;
    try {
        coio::stream_pair second = co_await coio::wait_for(
            coio::open_connection("localhost", srv.port(), client_context()), 300ms);
        (void)second;
    } catch (const coio::timeout_error&) {
        handshaken = false;
    }
    CHECK_FALSE(handshaken);
    CHECK(srv.stats().accepted == 1);

    // Once the first ends, the server serves again (the abandoned second
    // client's handshake fails on its own: reported, not served).
    first.writer.close();
    co_await first.writer.wait_closed();
    coio::stream_pair third = co_await tls_client(srv.port());
    back = co_await coio::wait_for(ask(&third.reader, &third.writer, "three\n"), 10s);
    CHECK(back == "three\n");
    third.writer.close();
    co_await third.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    CHECK(srv.stats().accepted == 3);
}

// close_clients (abort = false) or abort_clients on a TLS server whose
// handler waits in readline; returns what the client's next read saw.
struct ended_by {
    std::string line;
    bool close_notify = false;
    bool truncated = false;
    std::error_code error;
};

coio::task<ended_by> end_clients(bool abort) {
    coio::server srv =
        co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0, server_context());
    coio::stream_pair c = co_await tls_client(srv.port());
    std::string back = co_await coio::wait_for(ask(&c.reader, &c.writer, "hi\n"), 10s);
    CHECK(back == "hi\n");
    if (abort) {
        srv.abort_clients();
    } else {
        srv.close_clients();
    }
    ended_by out;
    try {
        out.line = co_await coio::wait_for(c.reader.readline(), 10s);
    } catch (const coio::net_error& e) {
        out.error = e.code();
    }
    coio::tls_info info = c.writer.tls().value();
    out.close_notify = info.close_notify_received;
    out.truncated = info.truncated;
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await coio::wait_for(srv.wait_closed(), 10s);
    CHECK(srv.stats().active == 0);
    co_return out;
}

coio::task<std::size_t> listen_on_host_list() {
    std::vector<std::string> hosts{"127.0.0.1", "localhost"};
    coio::server srv =
        co_await coio::start_server(coio::test::echo_lines, hosts, 0, server_context());
    std::size_t served = 0;
    for (const coio::address& a : srv.addresses()) {
        CHECK(a.port() == srv.port());
        coio::tls_options o{.server_hostname = "localhost"};
        coio::stream_pair c =
            co_await coio::wait_for(coio::open_connection(a, client_context(), o), 10s);
        std::string back = co_await coio::wait_for(ask(&c.reader, &c.writer, "x\n"), 10s);
        CHECK(back == "x\n");
        served += back == "x\n" ? 1 : 0;
        c.writer.close();
        co_await c.writer.wait_closed();
    }
    srv.close();
    co_await srv.wait_closed();
    co_return served;
}

// Reads a line; on a read timeout says so over the same TLS session.
coio::task<> answer_timeout(coio::stream_reader r, coio::stream_writer w) {
    bool timed_out = false;
    try {
        std::string line = co_await r.readline();
        (void)line;
    } catch (const coio::net_error& e) {
        timed_out = e.code() == std::errc::timed_out;
    }
    w.write(timed_out ? "read timed out\n" : "no timeout\n");
    w.close();
    co_await w.wait_closed();
}

coio::task<std::string> silent_client_read_timeout() {
    coio::server_options opts;
    opts.stream.read_timeout = 300ms;
    coio::server srv =
        co_await coio::start_server(answer_timeout, "127.0.0.1", 0, server_context(), opts);
    coio::stream_pair c = co_await tls_client(srv.port());
    std::string got = co_await coio::wait_for(c.reader.readline(), 10s);
    std::string rest = co_await coio::wait_for(c.reader.read(), 10s);
    CHECK(rest.empty());
    CHECK(c.writer.tls().value().close_notify_received);
    c.writer.close();
    co_await c.writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
    co_return got;
}

} // namespace

TEST_CASE("a TLS server at max_connections handshakes with the next client once one ends",
          "[tls][server]") {
    run_clean(limit_of_one());
}

TEST_CASE("close_clients ends TLS connections with a close_notify", "[tls][server]") {
    ended_by e = run_clean(end_clients(false));
    CHECK(e.line.empty());
    CHECK_FALSE(e.error);
    CHECK(e.close_notify);
    CHECK_FALSE(e.truncated);
}

TEST_CASE("abort_clients resets TLS connections", "[tls][server]") {
    ended_by e = run_clean(end_clients(true));
    CHECK(e.line.empty());
    CHECK(e.error == std::errc::connection_reset);
    CHECK_FALSE(e.close_notify);
}

TEST_CASE("a TLS server listens on every address of a host list with one port", "[tls][server]") {
    CHECK(run_clean(listen_on_host_list()) >= 1);
}

TEST_CASE("server_options' read_timeout ends a silent TLS client's read, and the handler can "
          "still answer over TLS",
          "[tls][server]") {
    CHECK(run_clean(silent_client_read_timeout()) == "read timed out\n");
}
