// tests/loop_test.cpp - event_loop: create_task and task handles, detached
// tasks and the exception handler, cancellation, run()'s shutdown, call_soon,
// call_soon_threadsafe, nesting and fairness.
//
// Everything is ordered by the loop's FIFO ready queue, so the tests count
// yields rather than sleep; the only sleeps are long ones that a cancel or a
// wake-up must cut short (checked with a generous elapsed-time bound).
#include "support/support.hpp"

#include <coio/detail/wait_queue.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using coio::task;
using coio::task_handle;
using coio::test::counted;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto long_sleep = 10s; // must be cut short; every bound below is half of it
constexpr auto generous = 5s;

coio::event_loop& loop() {
    return coio::event_loop::running();
}

// ---------------------------------------------------------------------------
// Helpers

task<> set_flag(bool* flag) {
    *flag = true;
    co_return;
}

task<int> value_of(int v) {
    co_return v;
}

task<> record(std::vector<int>* out, int v) {
    out->push_back(v);
    co_return;
}

task<int> fail_now(std::string what) {
    throw std::runtime_error(what);
    co_return 0;
}

task<int> fail_soon(std::string what) {
    co_await coio::yield_now();
    co_await coio::yield_now();
    throw std::runtime_error(what);
    co_return 0;
}

task<> sleep_for(std::chrono::milliseconds d) {
    co_await coio::sleep(d);
}

task<int> await_handle(task_handle<int> h) {
    co_return co_await h;
}

task<int> wait_then_return(coio::detail::wait_queue* q, int v) {
    co_await q->wait();
    co_return v;
}

// Yield up to `n` times, stopping early once `done` is true: a bounded wait
// for something the loop's FIFO order makes happen within a few passes.
template <class Pred>
task<> yield_until(Pred done, int n = 16) {
    for (int i = 0; i < n && !done(); ++i) {
        co_await coio::yield_now();
    }
}

// What the exception handler was told.
struct reports {
    std::vector<std::string> messages;
    std::vector<std::string> names;
    std::vector<std::exception_ptr> errors;

    void install(coio::event_loop& l) {
        l.set_exception_handler([this](const coio::exception_context& c) {
            messages.emplace_back(c.message);
            names.emplace_back(c.task_name);
            errors.push_back(c.exception);
        });
    }
};

std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "?";
    }
}

bool contains(const std::string& hay, const std::string& needle) {
    return hay.find(needle) != std::string::npos;
}

// Redirects fd 2 to a pipe for its lifetime; finish() restores it and returns
// what was written. Non-blocking, so a chatty test cannot deadlock on a full
// pipe.
class stderr_capture {
public:
    stderr_capture() {
        REQUIRE(::pipe2(m_pipe, O_CLOEXEC | O_NONBLOCK) == 0);
        std::fflush(stderr);
        m_saved = ::dup(2);
        REQUIRE(m_saved >= 0);
        REQUIRE(::dup2(m_pipe[1], 2) == 2);
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;
    ~stderr_capture() { restore(); }

    // Everything written so far, without restoring stderr.
    std::string peek() {
        std::fflush(stderr);
        char buf[4096];
        for (;;) {
            const ssize_t n = ::read(m_pipe[0], buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            m_text.append(buf, static_cast<std::size_t>(n));
        }
        return m_text;
    }
    std::string finish() {
        std::string out = peek();
        restore();
        return out;
    }

private:
    void restore() {
        if (m_saved >= 0) {
            std::fflush(stderr);
            ::dup2(m_saved, 2);
            ::close(m_saved);
            ::close(m_pipe[0]);
            ::close(m_pipe[1]);
            m_saved = -1;
        }
    }

    int m_pipe[2] = {-1, -1};
    int m_saved = -1;
    std::string m_text;
};

// A value that says how many times it was copied, and whose payload a move
// takes away.
struct tracked {
    std::string payload;
    int copies = 0;

    explicit tracked(std::string p) : payload(std::move(p)) {}
    tracked(const tracked& o) : payload(o.payload), copies(o.copies + 1) {}
    tracked(tracked&& o) noexcept : payload(std::exchange(o.payload, {})), copies(o.copies) {}
    tracked& operator=(const tracked&) = delete;
    tracked& operator=(tracked&&) = delete;
    ~tracked() = default;
};

// ---------------------------------------------------------------------------
// create_task and handles

TEST_CASE("create_task starts the task on the next iteration, not inline", "[loop]") {
    run_clean([]() -> task<> {
        std::vector<int> order;
        auto h = coio::create_task(record(&order, 1));
        order.push_back(0);
        CHECK(order == std::vector<int>({0}));
        CHECK(loop().stats().ready == 1);
        const auto before = loop().stats().iterations;
        co_await coio::yield_now();
        CHECK(order == std::vector<int>({0, 1}));
        CHECK(loop().stats().iterations == before + 1);
        co_await h;
    }());
}

// Regression: task_handle<T> did not compile for a move-only T (its copying
// branch was always instantiated).
TEST_CASE("a task handle of a move-only value hands the value over", "[loop]") {
    run_clean([]() -> task<> {
        auto h = coio::create_task(
            [](int v) -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(v); }(7));
        std::unique_ptr<int> got = co_await h; // lvalue handle: moved out all the same
        REQUIRE(got != nullptr);
        CHECK(*got == 7);
        auto h2 = coio::create_task(
            [](int v) -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(v); }(8));
        std::unique_ptr<int> got2 = co_await std::move(h2);
        REQUIRE(got2 != nullptr);
        CHECK(*got2 == 8);
        std::unique_ptr<int> again = h2.result(); // the value was moved out before
        CHECK(again == nullptr);
    }());
}

TEST_CASE("task handle reports done() only once the task has finished", "[loop]") {
    run_clean([]() -> task<> {
        coio::detail::wait_queue q;
        auto h = coio::create_task(wait_then_return(&q, 5), "five");
        CHECK(h.valid());
        CHECK(h.name() == "five");
        CHECK_FALSE(h.done());
        co_await coio::yield_now();
        CHECK_FALSE(h.done()); // started, parked on q
        bool threw = false;
        try {
            (void)h.result();
        } catch (const std::logic_error&) {
            threw = true;
        }
        CHECK(threw);
        q.notify_one();
        const int v = co_await h;
        CHECK(v == 5);
        CHECK(h.done());
        CHECK(h.result() == 5);
        CHECK(h.exception() == nullptr);
        CHECK_FALSE(h.cancelled());
    }());
}

TEST_CASE("unnamed tasks are called task-<id>", "[loop]") {
    run_clean([]() -> task<> {
        auto a = coio::create_task(value_of(1));
        auto b = coio::create_task(value_of(2));
        CHECK(a.id() != b.id());
        CHECK(a.name() == "task-" + std::to_string(a.id()));
        CHECK(b.name() == "task-" + std::to_string(b.id()));
        co_await a;
        co_await b;
    }());
}

TEST_CASE("awaiting an lvalue handle copies the value and an rvalue handle moves it", "[loop]") {
    run_clean([]() -> task<> {
        auto h = coio::create_task([]() -> task<tracked> { co_return tracked("payload"); }());
        tracked copy = co_await h;
        CHECK(copy.payload == "payload");
        CHECK(copy.copies == 1);
        tracked again = co_await h; // an lvalue handle can be awaited any number of times
        CHECK(again.payload == "payload");

        tracked moved = co_await std::move(h);
        CHECK(moved.payload == "payload");
        CHECK(moved.copies == 0);
        // The handle still refers to the task, whose value was moved out.
        CHECK(h.done()); // NOLINT(bugprone-use-after-move): co_await did not move h
        CHECK(h.result().payload.empty());
    }());
}

TEST_CASE("several tasks awaiting one handle all get its value", "[loop]") {
    run_clean([]() -> task<> {
        coio::detail::wait_queue q;
        auto h = coio::create_task(wait_then_return(&q, 7));
        std::vector<task_handle<int>> waiters;
        for (int i = 0; i < 3; ++i) {
            waiters.push_back(coio::create_task(await_handle(h)));
        }
        co_await coio::yield_now(); // all four started; h parked on q, the others on h
        for (auto& w : waiters) {
            CHECK_FALSE(w.done());
        }
        q.notify_one();
        const int own = co_await h; // main is a fourth awaiter
        CHECK(own == 7);
        int sum = 0;
        for (auto& w : waiters) {
            sum += co_await w;
        }
        CHECK(sum == 21);
    }());
}

TEST_CASE("awaiting the handle of a finished task does not suspend", "[loop]") {
    run_clean([]() -> task<> {
        auto h = coio::create_task(value_of(1));
        co_await coio::yield_now();
        REQUIRE(h.done());
        bool other_ran = false;
        auto other = coio::create_task(set_flag(&other_ran)); // would run if we suspended
        const int v = co_await h;
        CHECK(v == 1);
        CHECK_FALSE(other_ran);
        co_await other;
        CHECK(other_ran);
    }());
}

TEST_CASE("loop stats count tasks, frames, ready handles and timers", "[loop]") {
    run_clean([]() -> task<> {
        coio::loop_stats s = loop().stats();
        CHECK(s.tasks == 1); // main
        CHECK(s.task_frames == 1);
        CHECK(s.ready == 0);
        CHECK(s.timers == 0);
        auto a = coio::create_task(sleep_for(1ms));
        auto b = coio::create_task(value_of(2));
        s = loop().stats();
        CHECK(s.tasks == 3);
        CHECK(s.task_frames == 3);
        CHECK(s.ready == 2);
        co_await coio::yield_now(); // a sleeps, b finishes
        s = loop().stats();
        CHECK(s.tasks == 2);
        CHECK(s.task_frames == 3); // b's handle keeps its frame
        CHECK(s.timers == 1);
        CHECK(s.ready == 0);
        co_await a;
        s = loop().stats();
        CHECK(s.tasks == 1);
        CHECK(s.timers == 0);
        a.reset();
        b.reset();
        CHECK(loop().stats().task_frames == 1);
    }());
}

// ---------------------------------------------------------------------------
// Detached tasks and the exception handler

TEST_CASE("a detached task keeps running to completion", "[loop]") {
    counted::reset();
    bool finished = false;
    run_clean([](bool* fin) -> task<> {
        coio::detail::wait_queue q;
        auto h = coio::create_task([](coio::detail::wait_queue* wq, bool* f, counted) -> task<> {
            counted local;
            co_await coio::sleep(1ms);
            for (int i = 0; i < 3; ++i) {
                co_await coio::yield_now();
            }
            *f = true;
            wq->notify_one();
        }(&q, fin, counted{}));
        co_await coio::yield_now(); // it starts and goes to sleep
        CHECK(loop().stats().timers == 1);
        h.reset(); // detach mid-sleep
        CHECK(loop().stats().tasks == 2);
        co_await q.wait();
        CHECK(*fin);
        // It finished in the pass that woke us and was reaped at the end of it.
        CHECK(loop().stats().tasks == 1);
        CHECK(loop().stats().task_frames == 1);
        CHECK(counted::alive == 0);
    }(&finished));
    CHECK(finished);
    CHECK(counted::alive == 0);
    CHECK(counted::constructed >= 3);
}

TEST_CASE("a detached task's exception goes to the exception handler, naming the task", "[loop]") {
    reports r;
    run_clean([](reports* rp) -> task<> {
        rp->install(loop());
        coio::create_task(fail_soon("kaboom"), "my-worker").reset();
        auto unnamed = coio::create_task(fail_now("anonymous"));
        const std::string unnamed_name(unnamed.name());
        unnamed.reset();
        co_await yield_until([rp] { return rp->messages.size() >= 2; });
        REQUIRE(rp->messages.size() == 2);
        // fail_now threw first
        CHECK(rp->names[0] == unnamed_name);
        CHECK(contains(rp->messages[0], unnamed_name));
        CHECK(contains(rp->messages[0], "anonymous"));
        CHECK(rp->names[1] == "my-worker");
        CHECK(contains(rp->messages[1], "'my-worker'"));
        CHECK(contains(rp->messages[1], "kaboom"));
        CHECK(what_of(rp->errors[1]) == "kaboom");
        CHECK(rp->messages[1].find('\n') == std::string::npos);
        for (int i = 0; i < 4; ++i) {
            co_await coio::yield_now();
        }
        CHECK(rp->messages.size() == 2); // once each
    }(&r));
    CHECK(r.messages.size() == 2);
}

TEST_CASE("an exception retrieved by co_await, result() or exception() is not reported", "[loop]") {
    reports r;
    run_clean([](reports* rp) -> task<> {
        rp->install(loop());
        int caught = 0;
        try {
            (void)co_await coio::create_task(fail_soon("awaited"));
        } catch (const std::runtime_error&) {
            ++caught;
        }
        auto by_result = coio::create_task(fail_now("by result"));
        auto by_exception = coio::create_task(fail_now("by exception"));
        co_await yield_until([&] { return by_result.done() && by_exception.done(); });
        REQUIRE(by_result.done());
        try {
            (void)by_result.result();
        } catch (const std::runtime_error&) {
            ++caught;
        }
        CHECK(what_of(by_exception.exception()) == "by exception");
        by_result.reset();
        by_exception.reset();
        for (int i = 0; i < 4; ++i) {
            co_await coio::yield_now();
        }
        CHECK(caught == 2);
    }(&r));
    CHECK(r.messages.empty());
}

TEST_CASE("an unretrieved exception is reported when the last handle is dropped", "[loop]") {
    reports r;
    run_clean([](reports* rp) -> task<> {
        rp->install(loop());
        auto h = coio::create_task(fail_now("late"), "held");
        co_await yield_until([&] { return h.done(); });
        REQUIRE(h.done());
        for (int i = 0; i < 4; ++i) {
            co_await coio::yield_now();
        }
        CHECK(rp->messages.empty()); // a handle could still retrieve it
        task_handle<int> copy = h;
        h.reset();
        CHECK(rp->messages.empty());
        copy.reset();
        REQUIRE(rp->messages.size() == 1); // reported synchronously by the last release
        CHECK(rp->names[0] == "held");
        CHECK(loop().stats().task_frames == 1);
    }(&r));
    CHECK(r.messages.size() == 1);
}

TEST_CASE("main's exception is rethrown by run_until_complete and not reported", "[loop]") {
    reports r;
    CHECK_THROWS_WITH(run_clean([](reports* rp) -> task<int> {
                          rp->install(loop());
                          co_await coio::yield_now();
                          throw std::runtime_error("from main");
                      }(&r)),
                      "from main");
    CHECK(r.messages.empty());
}

TEST_CASE("the default exception handler writes one line to stderr naming the task", "[loop]") {
    stderr_capture cap;
    run_clean([]() -> task<> {
        coio::create_task(fail_now("to stderr"), "noisy").reset();
        for (int i = 0; i < 4; ++i) {
            co_await coio::yield_now();
        }
    }());
    const std::string out = cap.finish();
    INFO("stderr: " << out);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    CHECK(out.rfind("coio: ", 0) == 0);
    CHECK(contains(out, "'noisy'"));
    CHECK(contains(out, "to stderr"));
    CHECK(out.back() == '\n');
}

TEST_CASE("a handle that outlives its loop still reports an unretrieved exception once", "[loop]") {
    stderr_capture cap;
    const std::size_t fds_before = coio::test::open_fd_count();
    task_handle<int> kept;
    {
        coio::event_loop l;
        l.run_until_complete([](task_handle<int>* out) -> task<> {
            *out = coio::create_task(fail_now("outlived"), "orphan");
            co_await coio::yield_now();
            CHECK(out->done());
        }(&kept));
        CHECK(l.stats().tasks == 0);
        CHECK(l.stats().task_frames == 1); // held by `kept`
    }
    CHECK(coio::test::open_fd_count() == fds_before);
    // The loop says at its close which finished tasks handles still hold.
    const std::string at_close = cap.peek();
    CHECK(contains(at_close, "still hold 1 finished task(s): 'orphan'"));
    CHECK(kept.done());
    CHECK(kept.name() == "orphan");
    kept.reset();
    const std::string out = cap.finish();
    INFO("stderr: " << out);
    CHECK(std::count(out.begin(), out.end(), '\n') == 2);
    CHECK(contains(out, "outlived"));
}

// ---------------------------------------------------------------------------
// Cancellation

TEST_CASE("cancel() throws cancelled_error into a sleeping task, which can catch it and go on",
          "[loop]") {
    run_clean([]() -> task<> {
        auto h = coio::create_task([]() -> task<int> {
            try {
                co_await coio::sleep(long_sleep);
                co_return -1;
            } catch (const coio::cancelled_error&) {
            }
            co_await coio::yield_now(); // still usable after catching
            co_return 42;
        }());
        co_await coio::yield_now();
        REQUIRE(loop().stats().timers == 1);
        const auto t0 = clock_type::now();
        CHECK(h.cancel());
        const int v = co_await h;
        CHECK(v == 42);
        CHECK(clock_type::now() - t0 < generous);
        CHECK_FALSE(h.cancelled()); // it returned normally
    }());
}

TEST_CASE("a task that lets cancelled_error escape is cancelled() and rethrows it to awaiters",
          "[loop]") {
    reports r;
    run_clean([](reports* rp) -> task<> {
        rp->install(loop());
        auto h = coio::create_task(sleep_for(long_sleep));
        auto dropped = coio::create_task(sleep_for(long_sleep));
        co_await coio::yield_now();
        CHECK(h.cancel());
        CHECK(dropped.cancel());
        dropped.reset(); // never retrieved: still not reported
        bool threw = false;
        try {
            co_await h;
        } catch (const coio::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(h.done());
        CHECK(h.cancelled());
        CHECK(loop().stats().timers == 0);
        for (int i = 0; i < 4; ++i) {
            co_await coio::yield_now();
        }
    }(&r));
    CHECK(r.messages.empty());
}

TEST_CASE("a task cancelled before it starts throws cancelled_error at its first await", "[loop]") {
    run_clean([]() -> task<> {
        bool after_await = false;
        auto h = coio::create_task([](bool* after) -> task<> {
            co_await coio::yield_now();
            *after = true;
        }(&after_await));
        CHECK(h.cancel());
        bool threw = false;
        try {
            co_await h;
        } catch (const coio::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(h.cancelled());
        CHECK_FALSE(after_await);
    }());
}

TEST_CASE("cancelling a finished task returns false and changes nothing", "[loop]") {
    run_clean([]() -> task<> {
        auto h = coio::create_task(value_of(3));
        co_await h;
        CHECK_FALSE(h.cancel());
        CHECK_FALSE(h.cancelled());
        CHECK(h.cancelling() == 0);
        CHECK(h.result() == 3);
    }());
}

TEST_CASE("cancelling a task that awaits a handle cancels the awaited task too", "[loop]") {
    run_clean([]() -> task<> {
        auto inner = coio::create_task([]() -> task<int> {
            co_await coio::sleep(long_sleep);
            co_return 1;
        }());
        auto outer = coio::create_task(await_handle(inner));
        co_await coio::yield_now();
        CHECK(outer.cancel());
        bool threw = false;
        try {
            (void)co_await outer;
        } catch (const coio::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(inner.cancelled());
        CHECK(outer.cancelled());
    }());
}

// ---------------------------------------------------------------------------
// run()'s shutdown

TEST_CASE("run cancels the tasks left when main returns and waits for them to unwind", "[loop]") {
    counted::reset();
    bool unwound = false;
    bool finished = false;
    const auto t0 = clock_type::now();
    run_clean([](bool* u, bool* f) -> task<> {
        // Catches the cancellation and still needs two more passes to finish.
        coio::create_task([](bool* uw, bool* fin, counted) -> task<> {
            counted local;
            try {
                co_await coio::sleep(long_sleep);
            } catch (const coio::cancelled_error&) {
                *uw = true;
            }
            co_await coio::yield_now();
            co_await coio::yield_now();
            *fin = true;
        }(u, f, counted{}));
        // Lets the cancellation escape.
        coio::create_task([](counted) -> task<> { co_await coio::sleep(long_sleep); }(counted{}));
        // Parked on a queue nobody will notify.
        auto q = std::make_shared<coio::detail::wait_queue>();
        coio::create_task(
            [](std::shared_ptr<coio::detail::wait_queue> wq) -> task<> { co_await wq->wait(); }(q));
        co_await coio::yield_now();
        const coio::loop_stats s = loop().stats();
        CHECK(s.tasks == 4);
        CHECK(s.timers == 2);
        CHECK(counted::alive == 3);
    }(&unwound, &finished));
    CHECK(clock_type::now() - t0 < generous);
    CHECK(unwound);
    CHECK(finished);
    CHECK(counted::alive == 0);
}

TEST_CASE("callbacks scheduled just before main returns still run before run returns", "[loop]") {
    bool ran = false;
    run_clean([](bool* r) -> task<> {
        loop().call_soon([r] { *r = true; });
        co_return;
    }(&ran));
    CHECK(ran);
}

TEST_CASE("run_until_complete throws std::logic_error when main waits for something that "
          "can never happen",
          "[loop]") {
    counted::reset();
    coio::detail::wait_queue q; // outlives the loop: the teardown unlinks from it
    const std::size_t fds_before = coio::test::open_fd_count();
    const auto t0 = clock_type::now();
    {
        coio::event_loop l;
        task<> main_task = [](coio::detail::wait_queue* wq, counted) -> task<> {
            // Waits, through a helper task, for a queue nobody will notify.
            auto helper = coio::create_task(wait_then_return(wq, 1));
            const int v = co_await helper;
            (void)v;
        }(&q, counted{});
        CHECK_THROWS_AS(l.run_until_complete(std::move(main_task)), std::logic_error);
        CHECK(l.stats().tasks == 2);
        CHECK(counted::alive == 1);
    }
    CHECK(clock_type::now() - t0 < generous);
    CHECK(q.empty());
    CHECK(counted::alive == 0);
    CHECK(coio::test::open_fd_count() == fds_before);
}

// ---------------------------------------------------------------------------
// Callbacks

TEST_CASE("call_soon runs callbacks in FIFO order on a later iteration", "[loop]") {
    run_clean([]() -> task<> {
        std::vector<int> order;
        for (int i = 0; i < 5; ++i) {
            loop().call_soon([&order, i] {
                order.push_back(i);
                if (i == 0) {
                    // Scheduled by a callback: waits for the next iteration.
                    loop().call_soon([&order] { order.push_back(100); });
                }
            });
        }
        CHECK(order.empty());
        CHECK(loop().stats().ready == 5);
        co_await coio::yield_now();
        CHECK(order == std::vector<int>({0, 1, 2, 3, 4}));
        co_await coio::yield_now();
        CHECK(order == std::vector<int>({0, 1, 2, 3, 4, 100}));
    }());
}

TEST_CASE("an exception thrown by a callback goes to the exception handler", "[loop]") {
    reports r;
    run_clean([](reports* rp) -> task<> {
        rp->install(loop());
        bool after = false;
        loop().call_soon([] { throw std::runtime_error("callback failed"); });
        loop().call_soon([&after] { after = true; });
        co_await coio::yield_now();
        CHECK(after); // the next callback still ran
        REQUIRE(rp->messages.size() == 1);
        CHECK(rp->names[0].empty());
        CHECK(contains(rp->messages[0], "callback failed"));
        CHECK(what_of(rp->errors[0]) == "callback failed");
    }(&r));
    CHECK(r.messages.size() == 1);
}

TEST_CASE("call_soon_threadsafe from another thread wakes a blocked loop", "[loop]") {
    run_clean([]() -> task<> {
        coio::event_loop& l = loop();
        // Keeps the loop from deciding that nothing can ever happen. With
        // nothing else to do the loop blocks in the backend until this timer,
        // so a lost wake-up shows as the keeper having finished.
        auto keeper = coio::create_task(sleep_for(30s));
        coio::detail::wait_queue q;
        std::binary_semaphore go(0);
        constexpr int rounds = 50;
        bool stop = false;
        std::thread worker([&] {
            for (;;) {
                go.acquire();
                if (stop) {
                    return;
                }
                l.call_soon_threadsafe([&q] { q.notify_one(); });
            }
        });
        int woken = 0;
        for (int i = 0; i < rounds; ++i) {
            go.release(); // the worker races the loop going to sleep in wait()
            co_await q.wait();
            ++woken;
        }
        stop = true;
        go.release();
        worker.join();
        CHECK(woken == rounds);
        CHECK_FALSE(keeper.done());
        keeper.cancel();
        try {
            co_await keeper;
        } catch (const coio::cancelled_error&) {
        }
    }());
}

// ---------------------------------------------------------------------------
// Nesting and current()

TEST_CASE("event_loop::running() throws outside a loop and names the loop inside", "[loop]") {
    CHECK(coio::event_loop::current() == nullptr);
    CHECK_THROWS_AS(coio::event_loop::running(), std::logic_error);
    coio::event_loop l;
    CHECK(coio::event_loop::current() == nullptr); // constructing one does not make it current
    coio::event_loop* seen = nullptr;
    l.run_until_complete([](coio::event_loop** out) -> task<> {
        *out = coio::event_loop::current();
        co_return;
    }(&seen));
    CHECK(seen == &l);
    CHECK(coio::event_loop::current() == nullptr);
    coio::test::require_clean(l);
}

TEST_CASE("running a loop inside a running loop throws std::logic_error and starts nothing",
          "[loop]") {
    run_clean([]() -> task<> {
        coio::event_loop& outer = loop();
        bool started = false;
        int threw = 0;
        try {
            coio::event_loop inner;
            inner.run_until_complete(set_flag(&started));
        } catch (const std::logic_error&) {
            ++threw;
        }
        try {
            coio::run(set_flag(&started));
        } catch (const std::logic_error&) {
            ++threw;
        }
        try {
            outer.run_until_complete(set_flag(&started)); // re-entering the same loop
        } catch (const std::logic_error&) {
            ++threw;
        }
        CHECK(threw == 3);
        CHECK(coio::event_loop::current() == &outer);
        co_await coio::yield_now(); // the outer loop still works
        CHECK_FALSE(started);
        CHECK(outer.stats().tasks == 1);
    }());
}

// ---------------------------------------------------------------------------
// Fairness

task<> yielder(std::vector<int>* trace, int id, int n) {
    for (int i = 0; i < n; ++i) {
        trace->push_back(id);
        co_await coio::yield_now();
    }
}

TEST_CASE("tasks that yield repeatedly take turns in FIFO order", "[loop]") {
    run_clean([]() -> task<> {
        std::vector<int> trace;
        auto a = coio::create_task(yielder(&trace, 0, 100));
        auto b = coio::create_task(yielder(&trace, 1, 100));
        auto c = coio::create_task(yielder(&trace, 2, 100));
        co_await a;
        co_await b;
        co_await c;
        REQUIRE(trace.size() == 300);
        int out_of_turn = 0;
        for (std::size_t i = 0; i < trace.size(); ++i) {
            out_of_turn += trace[i] != static_cast<int>(i % 3) ? 1 : 0;
        }
        CHECK(out_of_turn == 0);
    }());
}

TEST_CASE("a task completing many awaits synchronously does not starve other tasks", "[loop]") {
    run_clean([]() -> task<> {
        long ticks = 0;
        bool chain_done = false;
        auto ticker = coio::create_task([](long* t, const bool* done) -> task<> {
            while (!*done) {
                ++*t;
                co_await coio::yield_now();
            }
        }(&ticks, &chain_done));
        auto chain = coio::create_task([](bool* done) -> task<long> {
            long s = 0;
            for (int i = 0; i < 100'000; ++i) {
                s += co_await value_of(1);
            }
            *done = true;
            co_return s;
        }(&chain_done));
        const long s = co_await chain;
        CHECK(s == 100'000);
        co_await ticker;
        // The chain went back through the ready queue now and then (the depth
        // guard), so the ticker ran many times while it was busy.
        CHECK(ticks >= 100);
    }());
}

} // namespace

// ---------------------------------------------------------------------------
// Finished tasks keep only their result

namespace {

coio::task<int> hold_counted(counted c) {
    (void)c;
    co_return 7;
}

// A task that keeps its own handle in the state it owns (a chat server's
// client object holding the client's task handle is the usual shape).
struct self_holding {
    task_handle<> self;
    counted c;
};

coio::task<> own_state(std::shared_ptr<self_holding> st) {
    co_await coio::yield_now();
    (void)st;
}

} // namespace

TEST_CASE("a finished task's parameters are destroyed while a handle still holds its result",
          "[loop]") {
    counted::reset();
    run_clean([]() -> task<> {
        task_handle<int> h = coio::create_task(hold_counted(counted{}));
        const int v = co_await h;
        CHECK(v == 7);
        CHECK(counted::alive == 0); // the parameter went with the task's frame
        CHECK(h.result() == 7);     // the result stays
    }());
    CHECK(counted::alive == 0);
}

// Regression (issue #11): a task_handle kept the whole finished frame, so a
// handle stored in an object the task's own parameters owned formed a cycle:
// 44 frames leaked in a chat server and nothing said so.
TEST_CASE("a handle stored in the task's own state does not keep the task alive", "[loop]") {
    counted::reset();
    run_clean([]() -> task<> {
        auto st = std::make_shared<self_holding>();
        st->self = coio::create_task(own_state(st));
        task_handle<> h = st->self;
        st.reset();
        co_await h;
        CHECK(counted::alive == 0);
    }()); // run_clean: no task frame left (task_frames == 0)
    CHECK(counted::alive == 0);
}
