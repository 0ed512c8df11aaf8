// tests/asyncio/timeout_test.cpp - wait_for, timeout, timeout_at, deadline.
//
// Children that must outlast a deadline sleep for 10 s and are cancelled after
// a few milliseconds; children that must beat one only yield and have 10 s.
// So the outcome never depends on how fast the machine is. The tricky cases
// were checked against CPython 3.11's asyncio.timeout (3.12's wait_for is
// built on it).
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using coio::task;
using coio::test::outcome;
using coio::test::run_clean;
using namespace std::chrono_literals;
using log_t = std::vector<std::string>;

namespace {

constexpr auto long_sleep = 10s;
constexpr auto short_deadline = 2ms;

coio::event_loop& loop() {
    return coio::event_loop::running();
}

task<int> quick(int v) {
    co_await coio::yield_now();
    co_return v;
}

// Sleeps 10 s unless cancelled; notes the cancel in *log.
task<int> sleeper(int v, log_t* log) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        log->push_back("cancelled");
        throw;
    }
    co_return v;
}

// Catches the cancel, winds down for a while, then returns a value anyway.
task<int> stubborn(log_t* log) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        log->push_back("caught");
    }
    co_await coio::sleep(1ms);
    log->push_back("returning");
    co_return 42;
}

// Winds down after the cancel (the request is consumed, so it can still
// await), tells `started`, then lets the cancel go on. The wind-down takes
// `wind_down`: a short one ends by itself, a long one only when a second
// cancel reaches it.
task<> slow_to_stop(log_t* log, coio::event* started, std::chrono::milliseconds wind_down = 2ms) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        log->push_back("cleanup begins");
        started->set();
    }
    co_await coio::sleep(wind_down);
    log->push_back("cleanup done");
    throw coio::cancelled_error{};
}

task<> raise_on_cancel() {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        throw std::out_of_range("raised on cancel");
    }
}

} // namespace

TEST_CASE("wait_for returns the value of an awaitable that finishes first", "[timeout]") {
    run_clean([]() -> task<> {
        auto a = co_await outcome(coio::wait_for(quick(7), long_sleep));
        CHECK(a == "value 7");
        auto b = co_await outcome(coio::wait_for(coio::yield_now(), long_sleep)); // any awaitable
        CHECK(b == "done");
        auto h = coio::create_task(quick(8));
        auto c = co_await outcome(coio::wait_for(h, long_sleep));
        CHECK(c == "value 8");
        auto d = co_await outcome(coio::timeout(long_sleep, quick(9)));
        CHECK(d == "value 9");
        auto e = co_await outcome(
            coio::timeout_at(coio::deadline::clock::now() + long_sleep, quick(10)));
        CHECK(e == "value 10");
        CHECK(loop().stats().timers == 0); // every timer was removed
    }());
}

TEST_CASE("wait_for throws timeout_error once the child is really cancelled", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        const auto start = coio::deadline::clock::now();
        auto r = co_await outcome(coio::wait_for(sleeper(1, &log), short_deadline));
        CHECK(r == "timeout_error");
        CHECK(coio::deadline::clock::now() - start >= short_deadline);
        CHECK(log == log_t{"cancelled"});
        CHECK(loop().stats().timers == 0); // the child's sleep timer is gone too
    }());
}

TEST_CASE("wait_for waits until a child that winds down slowly has finished", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::event started;
        auto r = co_await outcome(coio::wait_for(slow_to_stop(&log, &started), short_deadline));
        CHECK(r == "timeout_error");
        CHECK(log == log_t{"cleanup begins", "cleanup done"});
    }());
}

TEST_CASE("a child that catches the timeout's cancel and returns a value wins", "[timeout]") {
    // asyncio 3.12: wait_for/timeout return the value; Timeout.expired() is True.
    run_clean([]() -> task<> {
        log_t log;
        coio::deadline d(short_deadline);
        auto r = co_await outcome(coio::timeout(d, stubborn(&log)));
        CHECK(r == "value 42");
        CHECK(d.expired());
        CHECK(log == log_t{"caught", "returning"});
        auto r2 = co_await outcome(coio::wait_for(stubborn(&log), short_deadline));
        CHECK(r2 == "value 42");
    }());
}

TEST_CASE("an exception the child raises on the timeout's cancel propagates", "[timeout]") {
    run_clean([]() -> task<> {
        coio::deadline d(short_deadline);
        auto r = co_await outcome(coio::timeout(d, raise_on_cancel()));
        CHECK(r == "exception: raised on cancel");
        CHECK(d.expired());
    }());
}

TEST_CASE("cancelling the caller cancels the child and propagates cancelled_error", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        auto caller = [](log_t* l) -> task<int> {
            co_return co_await coio::wait_for(sleeper(1, l), long_sleep);
        };
        auto h = coio::create_task(caller(&log));
        co_await coio::yield_now(); // the caller is in wait_for
        co_await coio::yield_now(); // the child is asleep
        h.cancel();
        auto r = co_await outcome(h);
        CHECK(r == "cancelled_error");
        CHECK(h.cancelled());
        CHECK(log == log_t{"cancelled"});
    }());
}

TEST_CASE("a caller cancelled before wait_for never starts the child", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        auto caller = [](log_t* l) -> task<int> {
            l->push_back("caller runs");
            co_return co_await coio::wait_for(sleeper(1, l), long_sleep);
        };
        auto h = coio::create_task(caller(&log));
        h.cancel(); // pending before the caller's first await
        auto r = co_await outcome(h);
        CHECK(r == "cancelled_error");
        CHECK(log == log_t{"caller runs"});
    }());
}

TEST_CASE("the caller's cancel wins over a timeout that fired meanwhile", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::event started;
        auto caller = [](log_t* l, coio::event* s) -> task<> {
            // A 10 s wind-down: only the caller's cancel can end it.
            co_await coio::wait_for(slow_to_stop(l, s, long_sleep), short_deadline);
        };
        auto h = coio::create_task(caller(&log, &started));
        co_await started.wait(); // the timeout fired; the child is winding down
        h.cancel();              // cancels the wind-down sleep too
        auto r = co_await outcome(h);
        CHECK(r == "cancelled_error");
        CHECK(log == log_t{"cleanup begins"});
    }());
}

TEST_CASE("wait_for on a task handle cancels the task on timeout", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        auto h = coio::create_task(sleeper(1, &log));
        auto r = co_await outcome(coio::wait_for(h, short_deadline));
        CHECK(r == "timeout_error");
        CHECK(h.done());
        CHECK(h.cancelled());
    }());
}

TEST_CASE("a zero or negative timeout cancels the child at its first await", "[timeout]") {
    // Deliberate difference: asyncio.wait_for(c, 0) does not run c at all;
    // here (as with asyncio.timeout(0)) it runs up to its first await.
    run_clean([]() -> task<> {
        log_t log;
        auto body = [](log_t* l) -> task<int> {
            l->push_back("started");
            co_await coio::yield_now();
            l->push_back("past the first await");
            co_return 1;
        };
        auto r1 = co_await outcome(coio::wait_for(body(&log), 0ms));
        auto r2 = co_await outcome(coio::wait_for(body(&log), -5ms));
        CHECK(r1 == "timeout_error");
        CHECK(r2 == "timeout_error");
        CHECK(log == log_t{"started", "started"});
    }());
}

TEST_CASE("a deadline moved later from inside the body does not fire", "[timeout]") {
    run_clean([]() -> task<> {
        // Paused time: the 1 ms deadline must not pass in real time before
        // the body runs (under g++ ASan it did, and the test failed).
        coio::event_loop::running().pause_time();
        auto body = [](coio::deadline d) -> task<int> { // a copy: shares the state
            d.reschedule(long_sleep);
            co_await coio::sleep(5ms); // longer than the first deadline
            co_return 3;
        };
        coio::deadline d(1ms);
        auto r = co_await outcome(coio::timeout(d, body(d)));
        CHECK(r == "value 3");
        CHECK_FALSE(d.expired());
        CHECK_FALSE(d.active());
    }());
}

TEST_CASE("a deadline moved earlier, or set from never, fires", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        auto earlier = [](coio::deadline d, log_t* l) -> task<int> {
            CHECK(d.active());
            d.reschedule(coio::deadline::clock::now() - 1s); // in the past: fires next pass
            co_return co_await sleeper(1, l);
        };
        coio::deadline d1(long_sleep);
        auto r1 = co_await outcome(coio::timeout(d1, earlier(d1, &log)));
        CHECK(r1 == "timeout_error");
        CHECK(d1.expired());

        coio::deadline d2; // asyncio.timeout(None)
        CHECK(d2.when() == coio::deadline::never);
        auto later = coio::create_task(sleeper(2, &log));
        auto guarded = [](coio::deadline d, coio::task_handle<int> h) -> task<int> {
            co_return co_await coio::timeout(d, h);
        };
        auto g = coio::create_task(guarded(d2, later));
        co_await coio::yield_now();
        CHECK(d2.active());
        d2.reschedule(1ms); // from outside, while it guards the await
        auto r2 = co_await outcome(g);
        CHECK(r2 == "timeout_error");
        CHECK(d2.expired());
        CHECK(later.cancelled());
        CHECK(log == log_t{"cancelled", "cancelled"});
    }());
}

TEST_CASE("a deadline moved to never while active stops the timer", "[timeout]") {
    run_clean([]() -> task<> {
        coio::event_loop::running().pause_time(); // as above: 1 ms must not pass first
        auto body = [](coio::deadline d) -> task<int> {
            d.reschedule(coio::deadline::never);
            co_await coio::sleep(5ms);
            co_return 4;
        };
        coio::deadline d(1ms);
        auto r = co_await outcome(coio::timeout(d, body(d)));
        CHECK(r == "value 4");
        CHECK_FALSE(d.expired());
    }());
}

TEST_CASE("one deadline is a budget for several awaits in turn, not at once", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::deadline budget(long_sleep);
        auto r1 = co_await outcome(coio::timeout(budget, quick(1)));
        auto r2 = co_await outcome(coio::timeout(budget, quick(2)));
        CHECK(r1 == "value 1");
        CHECK(r2 == "value 2");
        CHECK_FALSE(budget.expired());

        auto inner = [](coio::deadline d) -> task<int> {
            co_return co_await coio::timeout(d, quick(3));
        };
        auto r3 = co_await outcome(coio::timeout(budget, inner(budget)));
        CHECK(r3 == "exception: coio::timeout: this deadline already guards another await");

        budget.reschedule(short_deadline);
        auto r4 = co_await outcome(coio::timeout(budget, sleeper(0, &log)));
        CHECK(r4 == "timeout_error");
        CHECK(budget.expired());
        // Spent: the next step is cancelled at its first await.
        auto r5 = co_await outcome(coio::timeout(budget, sleeper(0, &log)));
        CHECK(r5 == "timeout_error");
        CHECK(log == log_t{"cancelled", "cancelled"});
    }());
}

TEST_CASE("nested timeouts: the one that fired is the one that reports", "[timeout]") {
    run_clean([]() -> task<> {
        log_t log;
        auto nest = [](coio::deadline d, log_t* l) -> task<int> {
            co_return co_await coio::timeout(d, sleeper(0, l));
        };
        // The outer fires first: the inner sees its caller cancelled.
        coio::deadline outer(short_deadline);
        coio::deadline inner(long_sleep);
        auto r1 = co_await outcome(coio::timeout(outer, nest(inner, &log)));
        CHECK(r1 == "timeout_error");
        CHECK(outer.expired());
        CHECK_FALSE(inner.expired());

        // The inner fires first: its timeout_error passes through the outer.
        coio::deadline outer2(long_sleep);
        coio::deadline inner2(short_deadline);
        auto r2 = co_await outcome(coio::timeout(outer2, nest(inner2, &log)));
        CHECK(r2 == "timeout_error");
        CHECK_FALSE(outer2.expired());
        CHECK(inner2.expired());
    }());
}

TEST_CASE("a huge duration means no deadline", "[timeout]") {
    run_clean([]() -> task<> {
        auto r = co_await outcome(coio::wait_for(quick(5), std::chrono::hours::max()));
        CHECK(r == "value 5");
        coio::deadline d(std::chrono::hours::max());
        CHECK(d.when() == coio::deadline::never);
    }());
}

TEST_CASE("timeout_error is a std::exception", "[timeout]") {
    const coio::timeout_error e;
    const std::exception& base = e;
    CHECK(std::string(base.what()).find("timed out") != std::string::npos);
}

TEST_CASE("many timeouts in a row leave no timer and no frame behind", "[timeout]") {
    run_clean([]() -> task<> {
        int sum = 0;
        for (int i = 0; i < 2000; ++i) {
            sum += co_await coio::wait_for(quick(1), long_sleep);
        }
        CHECK(sum == 2000);
        CHECK(loop().stats().timers == 0);
    }());
}
