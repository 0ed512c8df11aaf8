// tests/asyncio/as_completed_test.cpp - as_completed (asyncio.as_completed).
//
// Tasks finish when the test sets their event, so the completion order is
// the test's, not the machine's.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <coio/as_completed.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using coio::task;
using coio::task_handle;
using coio::test::outcome;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

task<int> when_set(coio::event* e, int v) {
    co_await e->wait();
    co_return v;
}

task<int> after_yields(int n, int v) {
    for (int i = 0; i < n; ++i) {
        co_await coio::yield_now();
    }
    co_return v;
}

// The value of the next task handed out, -1 for nullopt, or what was thrown.
task<std::string> next_of(coio::as_completed<int>* ac) {
    try {
        std::optional<task_handle<int>> h = co_await ac->next();
        if (!h) {
            co_return "none";
        }
        CHECK(h->done());
        int v = co_await *h;
        co_return std::to_string(v);
    } catch (const coio::timeout_error&) {
        co_return "timeout_error";
    } catch (const coio::cancelled_error&) {
        co_return "cancelled_error";
    } catch (const std::exception& e) {
        co_return std::string("exception: ") + e.what();
    }
}

} // namespace

TEST_CASE("as_completed hands out tasks in the order they finish", "[as_completed]") {
    run_clean([]() -> task<> {
        coio::event e[3];
        std::vector<task_handle<int>> ts;
        for (int i = 0; i < 3; ++i) {
            ts.push_back(coio::create_task(when_set(&e[i], i)));
        }
        coio::as_completed ac(ts);
        CHECK(ac.remaining() == 3);
        e[2].set();
        auto a = co_await next_of(&ac);
        e[0].set();
        auto b = co_await next_of(&ac);
        e[1].set();
        auto c = co_await next_of(&ac);
        auto d = co_await next_of(&ac);
        CHECK(a == "2");
        CHECK(b == "0");
        CHECK(c == "1");
        CHECK(d == "none");
        CHECK(ac.remaining() == 0);
    }());
}

TEST_CASE("tasks finished before as_completed come first, in input order", "[as_completed]") {
    run_clean([]() -> task<> {
        coio::event later;
        std::vector<task_handle<int>> ts;
        ts.push_back(coio::create_task(when_set(&later, 0)));
        ts.push_back(coio::create_task(after_yields(0, 1)));
        ts.push_back(coio::create_task(after_yields(0, 2)));
        co_await coio::yield_now();
        co_await coio::yield_now();
        coio::as_completed ac(ts);
        later.set();
        std::vector<std::string> got;
        for (int i = 0; i < 4; ++i) {
            got.push_back(co_await next_of(&ac));
        }
        CHECK(got == std::vector<std::string>{"1", "2", "0", "none"});
    }());
}

TEST_CASE("as_completed of tasks starts them and finishes them all", "[as_completed]") {
    run_clean([]() -> task<> {
        std::vector<task<int>> ts;
        ts.push_back(after_yields(5, 5));
        ts.push_back(after_yields(1, 1));
        ts.push_back(after_yields(3, 3));
        coio::as_completed ac(std::move(ts));
        std::vector<std::string> got;
        for (int i = 0; i < 3; ++i) {
            got.push_back(co_await next_of(&ac));
        }
        CHECK(got == std::vector<std::string>{"1", "3", "5"});
    }());
}

TEST_CASE("as_completed with a timeout hands out what finished, then throws timeout_error",
          "[as_completed]") {
    run_clean([]() -> task<> {
        // Paused time: the 5 ms must not pass in real time before task 1
        // finishes (a stall of 5 ms before it runs made its finish "after the
        // deadline"); with the clock paused it passes only when the loop is idle.
        coio::event_loop::running().pause_time();
        coio::event e[3];
        std::vector<task_handle<int>> ts;
        for (int i = 0; i < 3; ++i) {
            ts.push_back(coio::create_task(when_set(&e[i], i)));
        }
        coio::as_completed ac(ts, 5ms);
        e[1].set();
        auto a = co_await next_of(&ac);
        auto b = co_await next_of(&ac); // nothing more before the deadline
        e[0].set();                     // finishes after the deadline
        co_await coio::yield_now();
        co_await coio::yield_now();
        auto c = co_await next_of(&ac);
        CHECK(a == "1");
        CHECK(b == "timeout_error");
        CHECK(c == "timeout_error");
        CHECK(ac.remaining() == 2);
        // The tasks were not cancelled: the caller decides.
        CHECK(ac.tasks()[0].done());
        CHECK_FALSE(ac.tasks()[2].done());
        task_handle<int> last = ac.tasks()[2];
        last.cancel();
        auto r = co_await outcome(last);
        CHECK(r == "cancelled_error");
    }());
}

TEST_CASE("a cancelled next() loses no task", "[as_completed]") {
    run_clean([]() -> task<> {
        coio::event e[2];
        std::vector<task_handle<int>> ts;
        for (int i = 0; i < 2; ++i) {
            ts.push_back(coio::create_task(when_set(&e[i], i)));
        }
        coio::as_completed ac(ts);
        auto waiter = coio::create_task(next_of(&ac));
        co_await coio::yield_now();
        waiter.cancel();
        auto a = co_await waiter;
        CHECK(a == "cancelled_error");
        CHECK(ac.remaining() == 2);
        e[0].set();
        e[1].set();
        auto b = co_await next_of(&ac);
        auto c = co_await next_of(&ac);
        CHECK(b == "0");
        CHECK(c == "1");
        CHECK_FALSE(ts[0].cancelled());
    }());
}

TEST_CASE("two next() at once is an error", "[as_completed]") {
    run_clean([]() -> task<> {
        coio::event e;
        std::vector<task_handle<int>> ts;
        ts.push_back(coio::create_task(when_set(&e, 7)));
        coio::as_completed ac(ts);
        auto first = coio::create_task(next_of(&ac));
        co_await coio::yield_now();
        auto second = co_await next_of(&ac);
        CHECK(second == "exception: coio::as_completed: next() is already being awaited");
        e.set();
        auto a = co_await first;
        CHECK(a == "7");
    }());
}

TEST_CASE("as_completed can move while next() is awaited and go before its tasks",
          "[as_completed]") {
    run_clean([]() -> task<> {
        coio::event e[2];
        std::vector<task_handle<int>> ts;
        for (int i = 0; i < 2; ++i) {
            ts.push_back(coio::create_task(when_set(&e[i], i)));
        }
        {
            coio::as_completed ac(ts);
            auto waiter = coio::create_task(next_of(&ac));
            co_await coio::yield_now();
            coio::as_completed moved(std::move(ac));
            e[1].set();
            auto a = co_await waiter;
            CHECK(a == "1");
        } // destroyed with task 0 still running: its watch goes away
        e[0].set();
        auto r = co_await outcome(ts[0]);
        CHECK(r == "value 0");
    }());
}
