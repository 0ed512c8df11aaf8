// tests/timer_semantics_test.cpp - timer edge cases of RELIABILITY 36 that
// sleep_test.cpp does not cover: durations too large to add to now(), and
// many timers with half of them cancelled while pending.
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

using coio::task;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

// Sleeps for `d` and says whether it woke up (it must not: the test's
// wait_for cancels it first).
template <class Rep, class Period>
task<bool> sleep_and_report(std::chrono::duration<Rep, Period> d) {
    co_await coio::sleep(d);
    co_return true;
}

task<bool> sleep_until_and_report(clock_type::time_point when) {
    co_await coio::sleep_until(when);
    co_return true;
}

// True if the sleep was still pending after 50 ms (wait_for cancelled it).
template <class T>
task<bool> still_asleep_after_50ms(task<T> t) {
    try {
        co_await coio::wait_for(std::move(t), 50ms);
    } catch (const coio::timeout_error&) {
        co_return true;
    }
    co_return false;
}

task<> huge_durations_never_fire() {
    // Each of these, added to now() naively, overflows the clock's int64
    // nanoseconds and becomes a deadline in the past: "fire now".
    bool ns = co_await still_asleep_after_50ms(sleep_and_report(std::chrono::nanoseconds::max()));
    CHECK(ns);
    bool ms = co_await still_asleep_after_50ms(sleep_and_report(std::chrono::milliseconds::max()));
    CHECK(ms);
    bool h = co_await still_asleep_after_50ms(sleep_and_report(std::chrono::hours::max()));
    CHECK(h);
    bool dmax = co_await still_asleep_after_50ms(sleep_and_report(clock_type::duration::max()));
    CHECK(dmax);
    bool year = co_await still_asleep_after_50ms(sleep_and_report(std::chrono::years(1000)));
    CHECK(year);
    bool until =
        co_await still_asleep_after_50ms(sleep_until_and_report(clock_type::time_point::max()));
    CHECK(until);
    CHECK(coio::event_loop::running().stats().timers == 0);
}

// 100,000 sleepers with deadlines spread over 0-500 ms; every other one is
// cancelled while it waits. The others wake in deadline order (ties: in the
// order they were set); no cancelled one wakes.
struct wake_log {
    std::vector<std::uint32_t> order;
    std::vector<bool> cancelled;
    std::uint32_t woke_cancelled = 0;
};

task<> sleeper(clock_type::time_point when, std::uint32_t id, wake_log* log) {
    try {
        co_await coio::sleep_until(when);
    } catch (const coio::cancelled_error&) {
        throw;
    }
    if (log->cancelled[id]) {
        ++log->woke_cancelled;
    }
    log->order.push_back(id);
}

task<> many_timers_half_cancelled() {
    constexpr std::uint32_t n = 100'000;
    std::mt19937 rng(36);
    std::uniform_int_distribution<int> spread_us(0, 500'000);
    wake_log log;
    log.cancelled.assign(n, false);
    const auto base = clock_type::now() + 20ms;
    std::vector<clock_type::time_point> when(n);
    std::vector<coio::task_handle<>> handles;
    handles.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        when[i] = base + std::chrono::microseconds(spread_us(rng));
        handles.push_back(coio::create_task(sleeper(when[i], i, &log)));
    }
    co_await coio::yield_now(); // every sleeper has set its timer
    CHECK(coio::event_loop::running().stats().timers == n);
    for (std::uint32_t i = 0; i < n; i += 2) {
        log.cancelled[i] = true;
        handles[i].cancel();
    }
    std::uint32_t cancelled = 0;
    for (coio::task_handle<>& h : handles) {
        try {
            co_await h;
        } catch (const coio::cancelled_error&) {
            ++cancelled;
        }
    }
    CHECK(cancelled == n / 2);
    CHECK(log.woke_cancelled == 0);
    REQUIRE(log.order.size() == n / 2);
    std::size_t out_of_order = 0;
    for (std::size_t i = 1; i < log.order.size(); ++i) {
        const std::uint32_t a = log.order[i - 1];
        const std::uint32_t b = log.order[i];
        if (when[b] < when[a] || (when[b] == when[a] && b < a)) {
            ++out_of_order;
        }
    }
    CHECK(out_of_order == 0);
    CHECK(coio::event_loop::running().stats().timers == 0);
}

} // namespace

// Regression (both backends): sleep(d) computed now() + d without saturating,
// so nanoseconds::max(), milliseconds::max() and hours::max() overflowed into a
// deadline in the past and fired at once, and duration::max() hung the loop
// (wait_for's own 50 ms timer never fired). wait_for/timeout saturated already.
TEST_CASE("sleeps too long to add to now() - duration::max(), hours::max(), time_point::max() - "
          "never fire",
          "[timer]") {
    run_clean(huge_durations_never_fire());
}

TEST_CASE("100,000 timers, half cancelled while pending: no cancelled one fires, the rest fire in "
          "deadline order",
          "[timer]") {
    run_clean(many_timers_half_cancelled());
}

namespace {

task<std::chrono::milliseconds> sleep_until_the_start_of_time() {
    // Something else wakes the loop after 2 s, so the test ends either way.
    coio::event_loop& loop = coio::event_loop::running();
    std::thread waker([&loop] {
        std::this_thread::sleep_for(2s);
        loop.call_soon_threadsafe([] {});
    });
    const auto t0 = clock_type::now();
    co_await coio::sleep_until(clock_type::time_point::min());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
    waker.join();
    co_return took;
}

} // namespace

// Regression (both backends, lib/event_loop.cpp run_once phase 1): the wait
// was `t->m_deadline - clock::now()`, which overflows (undefined behaviour)
// for a deadline near time_point::min() into a wait of ~292 years; io_uring
// then slept until something else woke the loop (the waker, 2 s here).
TEST_CASE("a deadline at time_point::min() has passed: the sleep ends at once", "[timer]") {
    const std::chrono::milliseconds took = run_clean(sleep_until_the_start_of_time());
    INFO("sleep_until(time_point::min()) took " << took.count() << " ms");
    CHECK(took < 1s);
}
