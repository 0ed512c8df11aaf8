// tests/asyncio/call_later_test.cpp - call_later, call_at and timer_handle.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <coio/call_later.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using coio::task;
using coio::test::run_clean;
using namespace std::chrono_literals;
using log_t = std::vector<std::string>;
using clock_type = std::chrono::steady_clock;

namespace {

// Appends its name to *log when called; counts its live copies.
struct note {
    log_t* log;
    std::string name;
    std::shared_ptr<int> alive = std::make_shared<int>(0);
    void operator()() const { log->push_back(name); }
};

} // namespace

TEST_CASE("call_later runs the callback once, not before its time", "[call_later]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::event done;
        const auto start = clock_type::now();
        clock_type::time_point ran{};
        auto h = coio::call_later(5ms, [&ran, &done] {
            ran = clock_type::now();
            done.set();
        });
        CHECK(h.when() >= start + 5ms);
        CHECK(coio::event_loop::running().stats().timers == 1);
        co_await done.wait();
        CHECK(ran >= h.when());
        CHECK_FALSE(h.cancelled());
        co_await coio::sleep(2ms); // it does not run again
        CHECK(coio::event_loop::running().stats().timers == 0);
    }());
}

TEST_CASE("call_at and call_later on the loop run in deadline order", "[call_later]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::event_loop& loop = coio::event_loop::running();
        // Paused time: call_later(2ms) below counts from its own now(); a
        // stall of 1 ms after `now` was read would put it after "third".
        loop.pause_time();
        const auto now = coio::now();
        auto a = loop.call_at(now + 3ms, note{&log, "third"});
        auto b = coio::call_at(now + 1ms, note{&log, "first"});
        auto c = loop.call_later(2ms, note{&log, "second"});
        auto d = coio::call_at(now - 1s, note{&log, "past"}); // next iteration
        co_await coio::sleep(10ms);
        CHECK(log == log_t{"past", "first", "second", "third"});
    }());
}

TEST_CASE("a cancelled call never runs and its callable is released", "[call_later]") {
    run_clean([]() -> task<> {
        log_t log;
        note n{&log, "cancelled"};
        std::weak_ptr<int> alive = n.alive;
        auto h = coio::call_later(1ms, std::move(n));
        CHECK_FALSE(alive.expired());
        h.cancel();
        CHECK(h.cancelled());
        CHECK(alive.expired()); // the callable is released at once (asyncio too)
        co_await coio::sleep(5ms);
        CHECK(log.empty());
        h.cancel(); // again: nothing happens
    }());
}

TEST_CASE("a call cancelled after its timer fired, before it ran, does not run", "[call_later]") {
    run_clean([]() -> task<> {
        log_t log;
        const auto when = clock_type::now() + 1ms;
        coio::timer_handle second;
        // Both fire in the same iteration; the first runs first and cancels the second.
        auto first = coio::call_at(when, [&log, &second] {
            log.push_back("first");
            second.cancel();
        });
        second = coio::call_at(when, note{&log, "second"});
        co_await coio::sleep(5ms);
        CHECK(log == log_t{"first"});
        CHECK(second.cancelled());
    }());
}

TEST_CASE("dropping the handle does not cancel; cancelling after the call changes nothing",
          "[call_later]") {
    run_clean([]() -> task<> {
        log_t log;
        (void)coio::call_later(1ms, note{&log, "dropped handle"});
        auto h = coio::call_later(1ms, note{&log, "kept"});
        co_await coio::sleep(5ms);
        h.cancel();
        CHECK_FALSE(h.cancelled());
        CHECK(log == log_t{"dropped handle", "kept"});
    }());
}

TEST_CASE("a callback's exception goes to the exception handler", "[call_later]") {
    std::vector<std::string> reports;
    {
        coio::event_loop loop;
        loop.set_exception_handler(
            [&reports](const coio::exception_context& c) { reports.emplace_back(c.message); });
        loop.run_until_complete([]() -> task<> {
            (void)coio::call_later(1ms, [] { throw std::runtime_error("late failure"); });
            co_await coio::sleep(5ms);
        }());
        coio::test::require_clean(loop);
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "callback raised: late failure");
}

TEST_CASE("calls not due when run ends are dropped; their handles outlive the loop",
          "[call_later]") {
    log_t log;
    coio::timer_handle h;
    std::weak_ptr<int> alive;
    {
        coio::event_loop loop;
        loop.run_until_complete(
            [](coio::timer_handle* out, log_t* l, std::weak_ptr<int>* a) -> task<> {
                note n{l, "never"};
                *a = n.alive;
                *out = coio::call_later(1h, std::move(n));
                co_return;
            }(&h, &log, &alive));
        coio::test::require_clean(loop); // no timer left
        CHECK(h.cancelled());
        CHECK(alive.expired()); // the callable was released with the call
        // Called before running again: nothing is scheduled any more.
        auto later = loop.call_later(1h, note{&log, "never either"});
        CHECK(loop.stats().timers == 1);
    } // the loop's destructor drops that one too
    CHECK(h.cancelled());
    h.cancel(); // the loop is gone: no effect, no crash
    CHECK(log.empty());
}

TEST_CASE("call_later without a running loop throws std::logic_error", "[call_later]") {
    CHECK_THROWS_AS(coio::call_later(1ms, [] {}), std::logic_error);
}

TEST_CASE("a callback can schedule another and start a task", "[call_later]") {
    run_clean([]() -> task<> {
        coio::event done;
        auto h = coio::call_later(1ms, [&done] {
            (void)coio::call_later(1ms, [&done] {
                (void)coio::create_task([](coio::event* d) -> task<> {
                    co_await coio::yield_now();
                    d->set();
                }(&done));
            });
        });
        co_await done.wait();
        CHECK_FALSE(h.cancelled());
    }());
}
