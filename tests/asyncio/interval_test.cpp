// tests/asyncio/interval_test.cpp - interval and its missed-tick behaviours.
//
// The rules are checked on advance() with made-up times (exact, no clock);
// the real-time cases only check relations that hold however slow the
// machine is.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <coio/interval.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using coio::task;
using coio::test::run_clean;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// advance() from a tick due at t0 + due, delivered at t0 + at; returns the
// next tick relative to t0, in ms.
long next_after(coio::missed_tick b, std::chrono::milliseconds due, std::chrono::milliseconds at) {
    const auto t0 = clock_type::time_point{} + 1h;
    coio::interval iv(t0, 10ms, b);
    iv.advance(t0 + due, t0 + at);
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(iv.next() - t0).count());
}

} // namespace

TEST_CASE("a tick that is a little late keeps the schedule in every behaviour", "[interval]") {
    for (auto b : {coio::missed_tick::skip, coio::missed_tick::burst, coio::missed_tick::delay}) {
        CHECK(next_after(b, 10ms, 10ms) == 20);
        CHECK(next_after(b, 10ms, 19ms) == 20);
    }
}

TEST_CASE("missed ticks: skip keeps the phase, burst catches up, delay restarts", "[interval]") {
    // Due at 10, delivered at 45: the ticks at 20, 30 and 40 were missed.
    CHECK(next_after(coio::missed_tick::skip, 10ms, 45ms) == 50);
    CHECK(next_after(coio::missed_tick::burst, 10ms, 45ms) == 20);
    CHECK(next_after(coio::missed_tick::delay, 10ms, 45ms) == 55);
    // Exactly on a later point of the schedule counts as missing the ones before.
    CHECK(next_after(coio::missed_tick::skip, 10ms, 30ms) == 40);
    // burst from 20 (delivered at 45 too) goes on one period at a time.
    CHECK(next_after(coio::missed_tick::burst, 20ms, 45ms) == 30);
    CHECK(next_after(coio::missed_tick::burst, 40ms, 45ms) == 50);
}

TEST_CASE("ticks come on a fixed schedule and return the time they were due", "[interval]") {
    run_clean([]() -> task<> {
        const auto start = clock_type::now();
        // burst: the due times hold even if this busy machine is late.
        coio::interval every(start + 2ms, 3ms, coio::missed_tick::burst);
        std::vector<clock_type::time_point> due;
        for (int i = 0; i < 4; ++i) {
            auto t = co_await every.tick();
            CHECK(clock_type::now() >= t); // never early
            due.push_back(t);
        }
        for (std::size_t i = 0; i < due.size(); ++i) {
            CHECK(due[i] == start + 2ms + static_cast<int>(i) * 3ms);
        }
        CHECK(every.period() == 3ms);
        CHECK(coio::event_loop::running().stats().timers == 0);
    }());
}

TEST_CASE("after a stall, skip fires once at once and then stays on the schedule", "[interval]") {
    run_clean([]() -> task<> {
        const auto start = clock_type::now();
        coio::interval every(start + 5ms, 5ms); // skip by default
        CHECK(every.behaviour() == coio::missed_tick::skip);
        auto t1 = co_await every.tick();
        const auto due = every.next();     // t1 + 5ms, unless this machine was slow already
        std::this_thread::sleep_for(18ms); // blocks the loop: 3 ticks missed
        const auto back = clock_type::now();
        auto t2 = co_await every.tick(); // the late one, at once
        CHECK(t2 == due);
        auto t3 = co_await every.tick(); // the next point of the schedule after now
        CHECK(t3 > back);
        CHECK((t3 - start) % 5ms == 0ms);
        CHECK(t3 - t2 >= 15ms); // the missed ticks were dropped, not delivered
        CHECK(t2 > t1);
    }());
}

TEST_CASE("after a stall, burst fires every missed tick back to back", "[interval]") {
    run_clean([]() -> task<> {
        const auto start = clock_type::now();
        coio::interval every(start + 5ms, 5ms, coio::missed_tick::burst);
        auto t1 = co_await every.tick();
        std::this_thread::sleep_for(18ms);
        const auto back = clock_type::now();
        int late = 0;
        auto t = t1;
        for (;;) {
            t = co_await every.tick();
            if (t > back) {
                break;
            }
            ++late;
        }
        CHECK(late >= 3);                  // 3 or more missed ticks, each delivered
        CHECK(t == t1 + (late + 1) * 5ms); // none skipped
    }());
}

TEST_CASE("a cancelled tick is not consumed", "[interval]") {
    run_clean([]() -> task<> {
        // Paused time: a stall of 19 ms before the wait_for starts would let
        // the tick come first and be delivered.
        coio::event_loop::running().pause_time();
        const auto start = coio::now();
        coio::interval every(start + 20ms, 20ms);
        bool timed_out = false;
        try {
            co_await coio::wait_for(every.tick(), 1ms);
        } catch (const coio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        auto t = co_await every.tick();
        CHECK(t == start + 20ms);
        every.reset();
        CHECK(every.next() > t);
    }());
}

TEST_CASE("an interval needs a positive period", "[interval]") {
    CHECK_THROWS_AS(coio::interval(0ms), std::invalid_argument);
    CHECK_THROWS_AS(coio::interval(-1s), std::invalid_argument);
}
