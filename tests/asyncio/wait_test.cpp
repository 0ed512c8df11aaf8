// tests/asyncio/wait_test.cpp - wait (asyncio.wait).
//
// Tasks finish when the test sets their event, so the order of events is
// the test's, not the machine's.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <coio/wait.hpp>

#include <chrono>
#include <memory>
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

task<int> fail_when_set(coio::event* e) {
    co_await e->wait();
    throw std::runtime_error("failed");
}

task<int> after_yields(int n, int v) {
    for (int i = 0; i < n; ++i) {
        co_await coio::yield_now();
    }
    co_return v;
}

std::vector<int> ids(const std::vector<task_handle<int>>& hs) {
    std::vector<int> out;
    for (const auto& h : hs) {
        out.push_back(static_cast<int>(h.id()));
    }
    return out;
}

struct three {
    coio::event e[3];
    std::vector<task_handle<int>> tasks;
    three() {
        for (int i = 0; i < 3; ++i) {
            tasks.push_back(coio::create_task(when_set(&e[i], i)));
        }
    }
    std::vector<int> id(std::initializer_list<int> which) const {
        std::vector<int> out;
        for (int i : which) {
            out.push_back(static_cast<int>(tasks[static_cast<std::size_t>(i)].id()));
        }
        return out;
    }
    task<> finish_all() {
        for (auto& ev : e) {
            ev.set();
        }
        for (auto& h : tasks) {
            co_await outcome(h);
        }
    }
};

// "ok", or how the await failed.
template <class A>
task<std::string> status_of(A a) {
    try {
        co_await std::move(a);
        co_return "ok";
    } catch (const coio::cancelled_error&) {
        co_return "cancelled_error";
    } catch (const std::exception& e) {
        co_return std::string("exception: ") + e.what();
    }
}

} // namespace

TEST_CASE("wait(ALL_COMPLETED) returns once every task has finished", "[wait]") {
    run_clean([]() -> task<> {
        auto s = std::make_unique<three>();
        s->e[1].set();
        s->e[2].set();
        s->e[0].set();
        auto r = co_await coio::wait(s->tasks);
        CHECK(ids(r.done) == s->id({0, 1, 2})); // input order
        CHECK(r.pending.empty());
        CHECK(r.done[2].result() == 2);
    }());
}

TEST_CASE("wait(FIRST_COMPLETED) returns at the first finish and cancels nothing", "[wait]") {
    run_clean([]() -> task<> {
        auto s = std::make_unique<three>();
        auto w = coio::create_task(coio::wait(s->tasks, coio::return_when::first_completed));
        co_await coio::yield_now();
        CHECK_FALSE(w.done());
        s->e[1].set();
        auto r = co_await w;
        CHECK(ids(r.done) == s->id({1}));
        CHECK(ids(r.pending) == s->id({0, 2}));
        CHECK_FALSE(r.pending[0].done()); // still running, not cancelled
        co_await s->finish_all();
        CHECK_FALSE(s->tasks[0].cancelled());
    }());
}

TEST_CASE("wait(FIRST_EXCEPTION) returns at the first failure; a cancel is not one", "[wait]") {
    run_clean([]() -> task<> {
        coio::event go, fail;
        std::vector<task_handle<int>> ts;
        ts.push_back(coio::create_task(when_set(&go, 0)));
        ts.push_back(coio::create_task(fail_when_set(&fail)));
        ts.push_back(coio::create_task(when_set(&go, 2)));
        auto w = coio::create_task(coio::wait(ts, coio::return_when::first_exception));
        co_await coio::yield_now();
        ts[2].cancel(); // finished, but cancelled: not an exception for wait
        co_await coio::yield_now();
        co_await coio::yield_now();
        CHECK_FALSE(w.done());
        fail.set();
        auto r = co_await w;
        CHECK(ids(r.done) == ids({ts[1], ts[2]}));
        CHECK(ids(r.pending) == ids({ts[0]}));
        auto e = co_await outcome(ts[1]); // retrieve it
        CHECK(e == "exception: failed");

        // No failure at all: the same as ALL_COMPLETED.
        std::vector<task_handle<int>> ok;
        ok.push_back(coio::create_task(after_yields(1, 1)));
        ok.push_back(coio::create_task(after_yields(3, 2)));
        auto r2 = co_await coio::wait(ok, coio::return_when::first_exception);
        CHECK(r2.done.size() == 2);
        go.set();
        co_await outcome(ts[0]);
    }());
}

TEST_CASE("wait with a timeout returns what finished and cancels nothing", "[wait]") {
    run_clean([]() -> task<> {
        auto s = std::make_unique<three>();
        s->e[0].set();
        const auto start = std::chrono::steady_clock::now();
        auto r = co_await coio::wait(s->tasks, 5ms);
        CHECK(std::chrono::steady_clock::now() - start >= 5ms);
        CHECK(ids(r.done) == s->id({0}));
        CHECK(ids(r.pending) == s->id({1, 2}));
        CHECK(coio::event_loop::running().stats().timers == 0);
        // A huge timeout is no timeout.
        s->e[1].set();
        s->e[2].set();
        auto r2 = co_await coio::wait(s->tasks, std::chrono::hours::max());
        CHECK(r2.done.size() == 3);
    }());
}

TEST_CASE("wait on tasks that already finished does not suspend", "[wait]") {
    run_clean([]() -> task<> {
        std::vector<task_handle<int>> ts;
        ts.push_back(coio::create_task(after_yields(0, 1)));
        co_await coio::yield_now();
        co_await coio::yield_now();
        REQUIRE(ts[0].done());
        const auto before = coio::event_loop::running().stats().iterations;
        auto r = co_await coio::wait(ts, coio::return_when::first_completed);
        CHECK(coio::event_loop::running().stats().iterations == before);
        CHECK(r.done.size() == 1);
    }());
}

TEST_CASE("cancelling the waiting task throws and leaves the tasks running", "[wait]") {
    run_clean([]() -> task<> {
        auto s = std::make_unique<three>();
        auto w = coio::create_task(coio::wait(s->tasks));
        co_await coio::yield_now();
        w.cancel();
        auto r = co_await status_of(w);
        CHECK(r == "cancelled_error");
        for (auto& h : s->tasks) {
            CHECK_FALSE(h.done());
        }
        auto w2 = coio::create_task(coio::wait(s->tasks));
        w2.cancel(); // pending before wait: nothing is watched
        auto r2 = co_await status_of(w2);
        CHECK(r2 == "cancelled_error");
        co_await s->finish_all();
    }());
}

TEST_CASE("wait rejects an empty vector", "[wait]") {
    run_clean([]() -> task<> {
        std::vector<task_handle<int>> none;
        auto r = co_await status_of(coio::wait(none));
        CHECK(r == "exception: coio::wait: no tasks to wait for");
    }());
}

TEST_CASE("wait retrieves no exception: one nobody reads is reported", "[wait]") {
    std::vector<std::string> reports;
    {
        coio::event_loop loop;
        loop.set_exception_handler(
            [&reports](const coio::exception_context& c) { reports.emplace_back(c.message); });
        loop.run_until_complete([]() -> task<> {
            coio::event fail;
            fail.set();
            std::vector<task_handle<int>> ts;
            ts.push_back(coio::create_task(fail_when_set(&fail), "doomed"));
            auto r = co_await coio::wait(ts);
            CHECK(r.done.size() == 1);
        }());
        coio::test::require_clean(loop);
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0] == "task 'doomed' raised an exception nobody retrieved: failed");
}

TEST_CASE("a task finishing as wait returns leaves nothing queued behind", "[wait]") {
    // The second task finishes after the first's watch woke the waiter but
    // before the waiter ran: it is done when wait returns, while its watch is
    // still queued - and main returns at once. run_clean checks that the loop
    // ran that watch before run() returned (nothing queued, nothing leaked).
    run_clean([]() -> task<> {
        std::vector<task_handle<int>> ts;
        ts.push_back(coio::create_task(after_yields(1, 1)));
        ts.push_back(coio::create_task(after_yields(2, 2)));
        auto r = co_await coio::wait(ts, coio::return_when::first_completed);
        CHECK(r.done.size() == 2);
    }());
}

TEST_CASE("many waits leave no watch, timer or frame behind", "[wait]") {
    run_clean([]() -> task<> {
        std::size_t done = 0;
        for (int i = 0; i < 500; ++i) {
            std::vector<task_handle<int>> ts;
            ts.push_back(coio::create_task(after_yields(1, 1)));
            ts.push_back(coio::create_task(after_yields(3, 2)));
            auto r = co_await coio::wait(ts, 10s, coio::return_when::first_completed);
            done += r.done.size();
            auto r2 = co_await coio::wait(ts);
            CHECK(r2.done.size() == 2);
        }
        CHECK(done == 500);
        CHECK(coio::event_loop::running().stats().timers == 0);
    }());
}
