// tests/net/close_clients_test.cpp - server.close_clients() and
// abort_clients() (asyncio 3.13, issue 11.5): every connection the server
// accepted is closed (flushed first) or reset, and its handler cancelled;
// for stream and raw-socket handlers, TCP and Unix servers.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <unistd.h>

#include <array>
#include <string>

using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

// More than the kernel's buffers hold (the server's send buffer grows to
// 4 MiB on Linux; the client's is kept small), so most of it is still in the
// stream writer's buffer when the clients are closed.
constexpr std::size_t payload_size = 8 * 1024 * 1024;

struct handler_log {
    coio::event ready;
    int started = 0;
    int cancelled = 0;
    int finished = 0;
};

coio::task<> wait_ready(handler_log* log) {
    co_await log->ready.wait();
}

// Queues a large payload the client does not read yet (most of it stays in
// the writer's buffer), then waits in readline until it is cancelled.
struct flooding_handler {
    handler_log* log;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) {
        ++log->started;
        std::vector<char> payload = coio::test::make_pattern(1, payload_size);
        w.write(std::string_view(payload.data(), payload.size()));
        log->ready.set();
        try {
            std::string line = co_await r.readline();
            (void)line;
        } catch (const coio::cancelled_error&) {
            ++log->cancelled;
            throw;
        }
        ++log->finished;
    }
};

// A raw-socket handler that waits for data until it is cancelled.
struct raw_handler {
    handler_log* log;
    coio::task<> operator()(coio::socket s) {
        ++log->started;
        log->ready.set();
        std::array<char, 64> buf{};
        try {
            coio::io_result got = co_await s.read_some(std::span(buf));
            (void)got;
        } catch (const coio::cancelled_error&) {
            ++log->cancelled;
            throw;
        }
        ++log->finished;
    }
};

struct drained {
    std::size_t bytes = 0;
    std::size_t mismatch = std::string::npos;
    coio::io_status end = coio::io_status::ok;
};

// Reads until the connection ends; checks the bytes against the pattern.
coio::task<drained> drain_all(coio::socket* c) {
    drained out;
    std::vector<char> buf(64 * 1024);
    for (;;) {
        coio::io_result r = co_await c->read_some(std::span(buf));
        if (!r) {
            out.end = r.status;
            co_return out;
        }
        if (out.mismatch == std::string::npos) {
            out.mismatch = coio::test::first_mismatch(1, out.bytes,
                                                      std::span<const char>(buf.data(), r.bytes));
        }
        out.bytes += r.bytes;
    }
}

// A client with a small receive buffer, set before connecting (shrinking it
// on an established connection makes the kernel drop segments and back off).
coio::task<coio::socket> small_window_client(coio::address to) {
    coio::socket c = coio::socket::open_tcp(to.family_kind());
    c.set_receive_buffer_size(4096);
    coio::io_result r = co_await c.connect(to);
    REQUIRE(r.ok());
    co_return c;
}

coio::task<> tcp_streams(bool abort) {
    handler_log log;
    flooding_handler h{&log}; // named: see "g++ 12 and temporaries" in docs/design.md
    coio::server srv = co_await coio::start_server(h, "127.0.0.1", 0);
    coio::socket c = co_await small_window_client(srv.local_address());
    co_await coio::wait_for(wait_ready(&log), 5s);
    srv.close();
    if (abort) {
        srv.abort_clients();
    } else {
        srv.close_clients();
    }
    drained d = co_await coio::wait_for(drain_all(&c), 20s);
    co_await coio::wait_for(srv.wait_closed(), 5s);
    CHECK(log.started == 1);
    CHECK(log.cancelled == 1);
    CHECK(log.finished == 0);
    CHECK(d.mismatch == std::string::npos);
    if (abort) {
        CHECK(d.end == coio::io_status::reset);
        CHECK(d.bytes < payload_size); // the buffered rest was dropped
    } else {
        CHECK(d.end == coio::io_status::eof);
        CHECK(d.bytes == payload_size); // flushed, then closed
    }
    CHECK(srv.stats().active == 0);
}

} // namespace

TEST_CASE("close_clients flushes what a stream connection buffered, closes it and cancels its "
          "handler",
          "[net][server]") {
    run_clean(tcp_streams(false));
}

TEST_CASE("abort_clients resets a stream connection, dropping what it buffered, and cancels its "
          "handler",
          "[net][server]") {
    run_clean(tcp_streams(true));
}

namespace {

coio::task<> tcp_raw(bool abort) {
    handler_log log;
    raw_handler h{&log};
    coio::server srv = co_await coio::start_server(h, "127.0.0.1", 0);
    coio::socket c = co_await coio::connect(srv.local_address());
    co_await coio::wait_for(wait_ready(&log), 5s);
    if (abort) {
        srv.abort_clients();
    } else {
        srv.close_clients();
    }
    std::array<char, 16> buf{};
    coio::io_result r = co_await coio::wait_for(coio::test::read_once(&c, std::span(buf)), 5s);
    CHECK(r.status == (abort ? coio::io_status::reset : coio::io_status::eof));
    CHECK(log.cancelled == 1);
    CHECK(log.finished == 0);
    // The server still accepts (close() was not called): a new client is served.
    coio::socket c2 = co_await coio::connect(srv.local_address());
    auto two = [](handler_log* l) -> coio::task<> {
        while (l->started < 2) {
            co_await coio::yield_now();
        }
    };
    co_await coio::wait_for(two(&log), 5s);
    c2.close();
    srv.close();
    co_await coio::wait_for(srv.wait_closed(), 5s);
    CHECK(log.finished == 1); // the second handler saw its client's EOF
}

} // namespace

TEST_CASE("close_clients cancels a raw-socket handler and its socket closes with a FIN; the "
          "server goes on accepting",
          "[net][server]") {
    run_clean(tcp_raw(false));
}

TEST_CASE("abort_clients resets a raw-socket handler's connection", "[net][server]") {
    run_clean(tcp_raw(true));
}

namespace {

std::string temp_socket_path() {
    return "/tmp/coio-close-clients-" + std::to_string(::getpid()) + ".sock";
}

coio::task<> unix_streams(bool abort) {
    handler_log log;
    flooding_handler h{&log};
    coio::unix_server srv = co_await coio::start_unix_server(h, temp_socket_path());
    coio::socket c = co_await coio::connect_unix(temp_socket_path());
    coio::test::shrink_buffers(c, 4096);
    co_await coio::wait_for(wait_ready(&log), 5s);
    if (abort) {
        srv.abort_clients();
    } else {
        srv.close_clients();
    }
    drained d = co_await coio::wait_for(drain_all(&c), 10s);
    srv.close();
    co_await coio::wait_for(srv.wait_closed(), 5s);
    CHECK(log.cancelled == 1);
    CHECK(d.mismatch == std::string::npos);
    CHECK(d.end == coio::io_status::eof); // a Unix socket has no reset
    if (!abort) {
        CHECK(d.bytes == payload_size);
    }
}

} // namespace

TEST_CASE("a Unix server's close_clients flushes and closes; abort_clients closes without "
          "flushing",
          "[net][unix][server]") {
    run_clean(unix_streams(false));
    run_clean(unix_streams(true));
}

namespace {

coio::task<> many_clients() {
    handler_log log;
    raw_handler h{&log};
    coio::server srv = co_await coio::start_server(h, "127.0.0.1", 0);
    std::vector<coio::socket> clients;
    for (int i = 0; i < 50; ++i) {
        coio::socket c = co_await coio::connect(srv.local_address());
        clients.push_back(std::move(c));
    }
    auto all = [](handler_log* l) -> coio::task<> {
        while (l->started < 50) {
            co_await coio::yield_now();
        }
    };
    co_await coio::wait_for(all(&log), 5s);
    srv.close();
    srv.close_clients();
    co_await coio::wait_for(srv.wait_closed(), 5s);
    CHECK(log.cancelled == 50);
    for (coio::socket& c : clients) {
        std::array<char, 16> buf{};
        coio::io_result r = co_await coio::wait_for(coio::test::read_once(&c, std::span(buf)), 5s);
        CHECK(r.status == coio::io_status::eof);
    }
}

} // namespace

TEST_CASE("close() then close_clients() then wait_closed() shuts a server with 50 connections "
          "down",
          "[net][server]") {
    run_clean(many_clients());
}
