// tests/asyncio/threadsafe_test.cpp - run_coroutine_threadsafe and
// concurrent_future. Built into thread_test, so scripts/test also runs it
// under ThreadSanitizer. Catch2's macros are not thread-safe: other threads
// only record what happened; the test's thread checks it.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <coio/threadsafe.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using coio::task;
using coio::test::outcome;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

task<int> add_later(int a, int b) {
    co_await coio::sleep(1ms);
    co_return a + b;
}

task<int> fail_later() {
    co_await coio::yield_now();
    throw std::runtime_error("failed on the loop");
}

task<std::thread::id> loop_thread_id() {
    co_await coio::yield_now();
    co_return std::this_thread::get_id();
}

// Sleeps until cancelled; notes the cancel.
task<int> sleep_until_cancelled(std::atomic<bool>* started, std::atomic<bool>* saw_cancel) {
    started->store(true);
    try {
        co_await coio::sleep(30s);
    } catch (const coio::cancelled_error&) {
        saw_cancel->store(true);
        throw;
    }
    co_return 0;
}

// What a plain thread saw, for the test's thread to check.
struct client_report {
    int value = 0;
    std::string error;
    std::thread::id ran_on;
};

client_report plain_client(coio::event_loop* loop) {
    client_report r;
    auto f = coio::run_coroutine_threadsafe(*loop, add_later(40, 2));
    r.value = f.get();
    auto g = coio::run_coroutine_threadsafe(*loop, fail_later());
    try {
        (void)g.get();
    } catch (const std::runtime_error& e) {
        r.error = e.what();
    }
    r.ran_on = coio::run_coroutine_threadsafe(*loop, loop_thread_id()).get();
    return r;
}

} // namespace

TEST_CASE("a plain thread runs a coroutine on a loop and blocks for its value", "[threadsafe]") {
    run_clean([]() -> task<> {
        coio::event_loop* loop = &coio::event_loop::running();
        client_report r = co_await coio::to_thread(plain_client, loop);
        CHECK(r.value == 42);
        CHECK(r.error == "failed on the loop");
        CHECK(r.ran_on == std::this_thread::get_id()); // on the loop, not the caller
    }());
}

namespace {

// Loop B (in a pool thread) awaits a task it sent to loop A.
struct b_report {
    int value = 0;
    bool b_thread_resumed = false;
    std::string cancelled;
};

task<b_report> b_main(coio::event_loop* a) {
    b_report r;
    const auto me = std::this_thread::get_id();
    auto f = coio::run_coroutine_threadsafe(*a, add_later(20, 22));
    r.value = co_await f;
    r.b_thread_resumed = std::this_thread::get_id() == me;
    // Cancelling the awaiting task does not cancel the future's task.
    std::atomic<bool> started{false};
    std::atomic<bool> saw{false};
    auto slow = coio::run_coroutine_threadsafe(*a, sleep_until_cancelled(&started, &saw));
    auto waiter = [](coio::concurrent_future<int> fut) -> task<int> { co_return co_await fut; };
    auto h = coio::create_task(waiter(slow));
    co_await coio::sleep(2ms);
    h.cancel();
    r.cancelled = co_await outcome(h);
    r.cancelled += slow.done() ? " done" : " running";
    slow.cancel(); // now stop it, from loop B's thread
    auto last = co_await outcome(slow);
    r.cancelled += " then " + last;
    co_return r;
}

b_report run_loop_b(coio::event_loop* a) {
    return coio::run(b_main(a));
}

} // namespace

TEST_CASE("a task of another loop awaits the future and resumes on its own loop", "[threadsafe]") {
    run_clean([]() -> task<> {
        coio::event_loop* a = &coio::event_loop::running();
        b_report r = co_await coio::to_thread(run_loop_b, a);
        CHECK(r.value == 42);
        CHECK(r.b_thread_resumed);
        CHECK(r.cancelled == "cancelled_error running then cancelled_error");
    }());
}

TEST_CASE("cancel() from another thread cancels the task on its loop", "[threadsafe]") {
    std::atomic<bool> started{false};
    std::atomic<bool> saw_cancel{false};
    std::string got;
    bool cancelled = false;
    bool cancel_again = true;
    run_clean([](std::atomic<bool>* st, std::atomic<bool>* saw, std::string* g, bool* c,
                 bool* again) -> task<> {
        coio::event_loop* loop = &coio::event_loop::running();
        auto other = [](coio::event_loop* l, std::atomic<bool>* s, std::atomic<bool>* w,
                        std::string* out, bool* was_cancelled, bool* again2) {
            auto f = coio::run_coroutine_threadsafe(*l, sleep_until_cancelled(s, w));
            while (!s->load()) {
                std::this_thread::yield(); // until the task sleeps on its loop
            }
            f.cancel();
            try {
                (void)f.get();
            } catch (const coio::cancelled_error&) {
                *out = "cancelled_error";
            }
            *was_cancelled = f.cancelled();
            *again2 = f.cancel(); // finished: false
        };
        co_await coio::to_thread(other, loop, st, saw, g, c, again);
    }(&started, &saw_cancel, &got, &cancelled, &cancel_again));
    CHECK(saw_cancel.load());
    CHECK(got == "cancelled_error");
    CHECK(cancelled);
    CHECK_FALSE(cancel_again);
}

TEST_CASE("a future cancelled before its loop started the task never runs it", "[threadsafe]") {
    std::atomic<bool> started{false};
    std::atomic<bool> saw{false};
    coio::event_loop loop;
    auto f = coio::run_coroutine_threadsafe(loop, sleep_until_cancelled(&started, &saw));
    CHECK(f.cancel());
    loop.run_until_complete([]() -> task<> {
        co_await coio::yield_now();
        co_await coio::yield_now();
    }());
    coio::test::require_clean(loop);
    CHECK(f.done());
    CHECK(f.cancelled());
    CHECK_FALSE(started.load());
}

TEST_CASE("a loop destroyed before starting the task leaves an error, not a hang", "[threadsafe]") {
    std::atomic<bool> started{false};
    std::atomic<bool> saw{false};
    coio::concurrent_future<int> f;
    {
        coio::event_loop loop;
        f = coio::run_coroutine_threadsafe(loop, sleep_until_cancelled(&started, &saw));
    }
    CHECK(f.done());
    CHECK_FALSE(started.load());
    CHECK_THROWS_WITH(f.get(), "coio::run_coroutine_threadsafe: the loop was destroyed before "
                               "the coroutine started");
}

TEST_CASE("blocking on the future from its own loop's thread is refused", "[threadsafe]") {
    run_clean([]() -> task<> {
        auto f = coio::run_coroutine_threadsafe(coio::event_loop::running(), add_later(1, 2));
        CHECK_THROWS_AS(f.get(), std::logic_error);
        CHECK_FALSE(f.wait_for(0ms));
        int v = co_await f; // awaiting on the same loop is fine
        CHECK(v == 3);
        CHECK(f.get() == 3); // done: get() no longer blocks
        CHECK(f.wait_for(0ms));
    }());
}

TEST_CASE("a move-only value is moved out of the future", "[threadsafe]") {
    run_clean([]() -> task<> {
        auto make = []() -> task<std::unique_ptr<int>> {
            co_await coio::yield_now();
            co_return std::make_unique<int>(7);
        };
        auto f = coio::run_coroutine_threadsafe(coio::event_loop::running(), make());
        std::unique_ptr<int> p = co_await f;
        REQUIRE(p);
        CHECK(*p == 7);
    }());
}
