// tests/multiloop_test.cpp - run_loops and hand-offs between loops
// (include/coio/loops.hpp), on the backend named by COIO_BACKEND. Runs under
// TSan in scripts/test (tsan_targets).
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/loops.hpp>

#include <catch2/catch.hpp>

#include <sys/utsname.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Catch2's CHECK is not thread-safe: loops other than 0 record what they saw
// here and the test checks it after run_loops.
struct seen_threads {
    std::mutex m;
    std::set<std::thread::id> ids;
    std::atomic<int> ran{0};
    std::atomic<int> wrong{0}; // loops that saw the wrong index or loop list
};

coio::task<> note_thread(seen_threads* s, std::size_t i) {
    {
        std::lock_guard lock(s->m);
        s->ids.insert(std::this_thread::get_id());
    }
    const coio::loop_ref me = coio::loop_ref::running();
    const std::vector<coio::loop_ref> all = coio::loop_ref::all();
    if (me.index() != i || i >= all.size() || !(all[i] == me) || !me.is_current()) {
        s->wrong.fetch_add(1);
    }
    co_await coio::sleep(1ms); // a timer on each loop
    s->ran.fetch_add(1);
}

coio::task<int> twice_here(int v, std::thread::id* where) {
    *where = std::this_thread::get_id();
    co_await coio::yield_now();
    co_return 2 * v;
}

coio::task<int> fails_there() {
    co_await coio::yield_now();
    throw std::runtime_error("remote failure");
}

// Loop 0 hands work to every loop (itself included) and checks values,
// exceptions and that it resumes on its own thread.
coio::task<> spawn_everywhere(std::size_t i, std::atomic<int>* checks) {
    if (i != 0) {
        co_return; // the other loops only serve
    }
    const std::thread::id home = std::this_thread::get_id();
    std::vector<coio::loop_ref> loops = coio::loop_ref::all();
    for (const coio::loop_ref& to : loops) {
        std::thread::id there;
        int v = co_await to.spawn(twice_here(21, &there));
        CHECK(v == 42);
        CHECK(std::this_thread::get_id() == home);
        CHECK((there == home) == (to.index() == 0));
        bool threw = false;
        try {
            co_await to.spawn(fails_there());
        } catch (const std::runtime_error& e) {
            threw = std::string(e.what()) == "remote failure";
        }
        CHECK(threw);
        auto plain = [] { return std::string("value"); };
        std::string s = co_await coio::submit_to(to, plain);
        CHECK(s == "value");
        auto as_task = []() -> coio::task<int> {
            co_await coio::yield_now();
            co_return 7;
        };
        int t = co_await coio::submit_to(to, as_task);
        CHECK(t == 7);
        checks->fetch_add(1);
    }
}

struct cancel_probe {
    std::atomic<bool> remote_started{false};
    std::atomic<bool> remote_cancelled{false};
    std::atomic<bool> waiter_timed_out{false};
    coio::event started; // on the waiter's loop
};

coio::task<> sleeps_long(cancel_probe* p, coio::loop_ref waiter) {
    p->remote_started = true;
    waiter.loop().call_soon_threadsafe([p] { p->started.set(); });
    try {
        co_await coio::sleep(60s);
    } catch (const coio::cancelled_error&) {
        p->remote_cancelled = true;
        throw;
    }
}

coio::task<> cancel_across(std::size_t i, cancel_probe* p) {
    if (i != 0) {
        co_return;
    }
    coio::loop_ref other = coio::loop_ref::all().back();
    // The 50 ms start once the remote task runs: cancelled before it started,
    // it would never run (no remote_started, no remote_cancelled), and a
    // loaded machine can take that long to schedule the other loop's thread.
    coio::task_handle<> remote =
        coio::create_task(other.spawn(sleeps_long(p, coio::loop_ref::running())));
    co_await coio::wait_for(p->started.wait(), 60s);
    try {
        co_await coio::wait_for(remote, 50ms);
    } catch (const coio::timeout_error&) {
        p->waiter_timed_out = true;
    }
    // The remote task has finished by now: the waiter waited for it.
    CHECK(p->remote_cancelled.load());
}

struct failure_probe {
    std::atomic<int> started{0};
    std::atomic<int> cancelled{0};
};

coio::task<> fail_or_wait(std::size_t i, failure_probe* p) {
    if (i == 1) {
        co_await coio::sleep(1ms);
        throw std::runtime_error("loop one broke");
    }
    p->started.fetch_add(1);
    try {
        co_await coio::sleep(60s);
    } catch (const coio::cancelled_error&) {
        p->cancelled.fetch_add(1);
        throw;
    }
}

// Whether one io_uring loop should wake another by IORING_OP_MSG_RING here:
// Linux 5.18 or later, and not turned off (COIO_URING_MSG_RING=0).
bool msg_ring_expected() {
    if (coio::backend_name() != "io_uring") {
        return false;
    }
    if (const char* knob = std::getenv("COIO_URING_MSG_RING");
        knob != nullptr && std::string(knob) == "0") {
        return false;
    }
    utsname u{};
    int major = 0;
    int minor = 0;
    return ::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
           (major > 5 || (major == 5 && minor >= 18));
}

struct wake_report {
    coio::loop_stats stats;
    std::chrono::nanoseconds busy_poll{0};
};

coio::task<int> plus_one(int v) {
    co_return v + 1;
}

coio::task<wake_report> report_here() {
    co_return wake_report{coio::event_loop::running().stats(),
                          coio::event_loop::running().busy_poll()};
}

// Loop 0 makes `rounds` round trips to loop 1, which has nothing else to
// do: it goes back to sleep after each one, and each hand-off must wake it.
// Then loop 1 reports its counters (read on its own thread).
coio::task<> round_trips(std::size_t i, int rounds, wake_report* out) {
    if (i != 0) {
        co_return;
    }
    const coio::loop_ref there = coio::loop_ref::all().at(1);
    int v = 0;
    for (int k = 0; k < rounds; ++k) {
        v = co_await there.spawn(plus_one(v));
    }
    CHECK(v == rounds);
    *out = co_await there.spawn(report_here());
}

} // namespace

TEST_CASE("hand-offs wake an idle loop; io_uring loops wake each other with MSG_RING", "[loops]") {
    wake_report r;
    auto main = [&r](std::size_t i) { return round_trips(i, 200, &r); };
    coio::run_loops(2, main);
    // Loop 1 sleeps between the round trips (200 of them, each one waiting
    // for loop 0 to resume its task and hand over the next): it was woken.
    CHECK(r.stats.wakeups > 0);
    CHECK(r.stats.wakeups <= 210); // one per hand-off at most (and run_loops' own)
    CHECK(r.stats.ring_wakeups <= r.stats.wakeups);
    if (msg_ring_expected()) {
        CHECK(r.stats.ring_wakeups > 0);
    } else {
        CHECK(r.stats.ring_wakeups == 0);
    }
    CHECK(r.busy_poll == 0ns);
}

TEST_CASE("run_loops_options::busy_poll sets every loop spinning; hand-offs still work",
          "[loops]") {
    wake_report r;
    auto main = [&r](std::size_t i) { return round_trips(i, 200, &r); };
    coio::run_loops_options opts;
    opts.busy_poll = 200us;
    coio::run_loops(2, main, opts);
    CHECK(r.busy_poll == 200us);
    CHECK(r.stats.wakeups <= 210);
}

TEST_CASE("run_loops runs main(i) on n loops, each on its own thread, loop 0 on the caller's",
          "[loops]") {
    for (std::size_t n : {1U, 2U, 4U}) {
        const std::string fds_before = coio::test::open_fd_list();
        seen_threads s;
        auto main = [&s](std::size_t i) { return note_thread(&s, i); };
        coio::run_loops(n, main);
        CHECK(s.ran.load() == static_cast<int>(n));
        CHECK(s.wrong.load() == 0);
        CHECK(s.ids.size() == n);
        CHECK(s.ids.count(std::this_thread::get_id()) == 1);
        CHECK(coio::test::open_fd_list() == fds_before); // every loop's backend closed
    }
}

TEST_CASE("run_loops with n = 0 starts one loop per allowed CPU, and pinning works", "[loops]") {
    seen_threads s;
    auto main = [&s](std::size_t i) { return note_thread(&s, i); };
    coio::run_loops_options opts;
    opts.pin = true;
    coio::run_loops(0, main, opts);
    CHECK(s.ran.load() == static_cast<int>(coio::available_cores()));
}

TEST_CASE("spawn and submit_to run work on another loop and resume the caller on its own loop "
          "with the value or the exception",
          "[loops]") {
    for (std::size_t n : {1U, 2U, 4U}) {
        std::atomic<int> checks{0};
        auto main = [&checks](std::size_t i) { return spawn_everywhere(i, &checks); };
        coio::run_loops(n, main);
        CHECK(checks.load() == static_cast<int>(n));
    }
}

TEST_CASE("cancelling a task that waits for work on another loop cancels that work and waits "
          "for it to end",
          "[loops]") {
    for (std::size_t n : {2U, 4U}) {
        cancel_probe p;
        auto main = [&p](std::size_t i) { return cancel_across(i, &p); };
        coio::run_loops(n, main);
        CHECK(p.remote_started.load());
        CHECK(p.remote_cancelled.load());
        CHECK(p.waiter_timed_out.load());
    }
}

TEST_CASE("an exception in one loop cancels the others and is rethrown with its loop index",
          "[loops]") {
    for (std::size_t n : {2U, 4U}) {
        failure_probe p;
        auto main = [&p](std::size_t i) { return fail_or_wait(i, &p); };
        bool caught = false;
        try {
            coio::run_loops(n, main);
        } catch (const coio::loop_error& e) {
            caught = true;
            CHECK(e.index() == 1);
            CHECK(std::string(e.what()) == "coio::run_loops: loop 1: loop one broke");
            CHECK_THROWS_WITH(e.rethrow_cause(), "loop one broke");
        }
        CHECK(caught);
        // A main task cancelled before it started never runs; the others
        // were sleeping for a minute and ended with cancelled_error.
        CHECK(p.cancelled.load() == p.started.load());
    }
}

TEST_CASE("run_loops refuses to start on a thread that runs a loop", "[loops]") {
    auto inner = []() -> coio::task<> {
        auto main = [](std::size_t) -> coio::task<> { co_return; };
        CHECK_THROWS_AS(coio::run_loops(2, main), std::logic_error);
        co_return;
    };
    coio::test::run_clean(inner());
}
