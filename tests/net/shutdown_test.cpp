// tests/net/shutdown_test.cpp - graceful shutdown with everything in flight
// (RELIABILITY 39), on every backend. coio's shutdown is asyncio.run's: when
// main returns, run() cancels every task left, waits for each to unwind and
// returns with nothing left (event_loop.hpp). Here main returns while 100
// connections have reads pending on both ends, some writes wait for room,
// timers are pending and detached tasks sleep; the request to stop comes
// from a call_soon callback, and is made twice.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio::test::run_clean;

namespace {

// Counts every coroutine that started and every one that ended: each must
// end exactly once - with cancelled_error (run() cancelled it), or with the
// status its socket gave when main closed it (cancelled; a server handler:
// eof, reset, or the bytes a writer had sent), never an error status.
struct ledger {
    int started = 0;
    int ended = 0;
    int cancelled = 0; // cancelled_error
    int errors = 0;    // io_status::error
};

void note(ledger* l, const coio::io_result& r) {
    l->errors += r.status == coio::io_status::error ? 1 : 0;
}

// Increments `ended` when the frame unwinds, however it unwinds.
struct end_guard {
    ledger* l;
    explicit end_guard(ledger* lg) : l(lg) { ++l->started; }
    end_guard(const end_guard&) = delete;
    end_guard& operator=(const end_guard&) = delete;
    ~end_guard() { ++l->ended; }
};

coio::task<> counted_read(coio::socket* s, ledger* l) {
    end_guard g(l);
    std::array<char, 64> buf{};
    try {
        note(l, co_await s->read_some(std::span(buf)));
    } catch (const coio::cancelled_error&) {
        ++l->cancelled;
        throw;
    }
}

coio::task<> counted_write(coio::socket* s, ledger* l) {
    end_guard g(l);
    const std::string big(4 * 1024 * 1024, 'w'); // more than the buffers hold
    try {
        note(l, co_await s->write_all(big));
    } catch (const coio::cancelled_error&) {
        ++l->cancelled;
        throw;
    }
}

coio::task<> counted_sleep(ledger* l) {
    end_guard g(l);
    try {
        co_await coio::sleep(1h);
    } catch (const coio::cancelled_error&) {
        ++l->cancelled;
        throw;
    }
}

// A server handler blocked in a read for ever (its client never writes).
struct blocked_handler {
    ledger* l;
    coio::task<> operator()(coio::socket s) const {
        end_guard g(l);
        std::array<char, 64> buf{};
        try {
            coio::io_result r = co_await s.read_some(std::span(buf));
            l->cancelled +=
                r.status == coio::io_status::cancelled || r.status == coio::io_status::eof ? 1 : 0;
        } catch (const coio::cancelled_error&) {
            ++l->cancelled;
            throw;
        }
    }
};

// main returns while its server and its 100 client sockets (locals: closed
// as main's frame unwinds, so the reads and writes on them end cancelled)
// and everything else is still running; run() then cancels the rest.
coio::task<> shut_down_busy(ledger* l, bool by_stop) {
    blocked_handler handler{l};
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0);
    std::vector<coio::socket> clients;
    clients.reserve(100);
    for (int i = 0; i < 100; ++i) {
        clients.push_back(co_await coio::connect(srv.local_address()));
    }
    for (int i = 0; i < 100; ++i) {
        coio::socket* c = &clients[static_cast<std::size_t>(i)];
        coio::test::shrink_buffers(*c, 16 * 1024);
        coio::create_task(counted_read(c, l)); // detached
        if (i % 10 == 0) {
            coio::create_task(counted_write(c, l)); // waits for room for ever
        }
    }
    for (int i = 0; i < 20; ++i) {
        coio::create_task(counted_sleep(l)); // detached timers
    }
    co_await coio::yield_now(); // the detached tasks start
    for (int i = 0; i < 1000 && srv.stats().active < 100; ++i) {
        co_await coio::yield_now();
    }
    CHECK(srv.stats().active == 100);
    CHECK(coio::event_loop::running().stats().timers >= 20);
    coio::event_loop& loop = coio::event_loop::running();
    if (by_stop) {
        // event_loop::stop() from a callback, twice, and once more from a
        // later one: main is cancelled where it waits, and the rest with it.
        loop.call_soon([&loop] {
            loop.stop();
            loop.stop();
            loop.call_soon([&loop] { loop.stop(); });
        });
        co_await coio::sleep(1h);
        FAIL("main went on after stop()");
    }
    // The request to stop comes from a callback, twice.
    coio::event stop;
    loop.call_soon([&stop] {
        stop.set();
        stop.set();
    });
    co_await stop.wait();
}

} // namespace

TEST_CASE("returning from main with 100 connections, pending reads and writes, timers and detached "
          "tasks ends each exactly once, at once, and leaves nothing",
          "[net][shutdown]") {
    ledger l;
    const auto t0 = std::chrono::steady_clock::now();
    run_clean(shut_down_busy(&l, false)); // the loop and fds are checked clean
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < 10s); // about a second; the bound is for loaded machines
    // 100 reads, 10 writes, 20 sleeps and 100 handlers.
    CHECK(l.started == 230);
    CHECK(l.ended == l.started);
    CHECK(l.cancelled >= 20); // at least the sleeps
    CHECK(l.errors == 0);
}

TEST_CASE("event_loop::stop() from a callback, repeated, cancels main and ends the run with "
          "cancelled_error, each of 100 connections, reads, writes, timers and detached tasks "
          "exactly once, and leaves nothing",
          "[net][shutdown]") {
    ledger l;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(run_clean(shut_down_busy(&l, true)), coio::cancelled_error);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK(l.started == 230);
    CHECK(l.ended == l.started);
    CHECK(l.cancelled >= 20);
    CHECK(l.errors == 0);
}

TEST_CASE("event_loop::stop() without a run in progress does nothing; a main that catches the "
          "cancellation returns its value",
          "[shutdown]") {
    coio::event_loop loop;
    loop.stop(); // nothing to stop: the next run is not affected
    const int v = loop.run_until_complete([]() -> coio::task<int> {
        coio::event_loop& self = coio::event_loop::running();
        self.call_soon([&self] { self.stop(); });
        try {
            co_await coio::sleep(1h);
        } catch (const coio::cancelled_error&) {
            co_return 7; // asyncio's rule: a task may refuse its cancellation
        }
        co_return 0;
    }());
    CHECK(v == 7);
    coio::test::require_clean(loop);
}
