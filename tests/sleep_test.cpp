// tests/sleep_test.cpp - sleep, sleep_until, yield_now and the timer heap.
//
// Timing checks are one-sided: a sleep must never end early, but how late it
// ends depends on the machine, so the only upper bound is a generous 5 s.
// Ordering tests use sleep_until with deadlines fixed up front, so their
// outcome does not depend on how fast the tasks start.
#include "support/support.hpp"

#include <coio/detail/timer.hpp>
#include <coio/detail/wait_queue.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

using coio::task;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;
using coio::detail::timer_node;
constexpr auto long_sleep = 10s;
constexpr auto generous = 5s;

coio::event_loop& loop() {
    return coio::event_loop::running();
}

task<> set_flag(bool* flag) {
    *flag = true;
    co_return;
}

task<> sleep_for(std::chrono::milliseconds d) {
    co_await coio::sleep(d);
}

// Sleeps until `deadline`, then appends `id` to `order` and counts an early wake.
task<> wake_at(clock_type::time_point deadline, int id, std::vector<int>* order, int* early) {
    co_await coio::sleep_until(deadline);
    if (clock_type::now() < deadline) {
        ++*early;
    }
    order->push_back(id);
}

// ---------------------------------------------------------------------------
// Never early

TEST_CASE("sleep never returns before the requested duration", "[sleep]") {
    run_clean([]() -> task<> {
        using us = std::chrono::microseconds;
        for (us d : {us(1), us(100), us(500), us(1000), us(2000), us(5000), us(10'000), us(20'000),
                     us(30'000)}) {
            const auto t0 = clock_type::now();
            co_await coio::sleep(d);
            const auto elapsed = clock_type::now() - t0;
            INFO("requested " << d.count() << " us, slept "
                              << std::chrono::duration_cast<us>(elapsed).count() << " us");
            CHECK(elapsed >= d);
            CHECK(elapsed < generous);
        }
    }());
}

TEST_CASE("sleep_until never returns before the deadline", "[sleep]") {
    run_clean([]() -> task<> {
        for (int ms : {1, 3, 7}) {
            const auto deadline = clock_type::now() + std::chrono::milliseconds(ms);
            co_await coio::sleep_until(deadline);
            CHECK(clock_type::now() >= deadline);
        }
    }());
}

TEST_CASE("concurrent sleeps each last at least their own duration", "[sleep]") {
    run_clean([]() -> task<> {
        auto timed = [](std::chrono::milliseconds d, int* early) -> task<> {
            const auto t0 = clock_type::now();
            co_await coio::sleep(d);
            if (clock_type::now() - t0 < d) {
                ++*early;
            }
        };
        int early = 0;
        const auto t0 = clock_type::now();
        co_await coio::gather(timed(30ms, &early), timed(1ms, &early), timed(20ms, &early),
                              timed(5ms, &early), timed(10ms, &early), timed(2ms, &early));
        CHECK(early == 0);
        CHECK(clock_type::now() - t0 >= 30ms);
        CHECK(clock_type::now() - t0 < generous);
    }());
}

TEST_CASE("sub-millisecond sleeps do not spin the loop", "[sleep]") {
    run_clean([]() -> task<> {
        const auto before = loop().stats().iterations;
        for (int i = 0; i < 20; ++i) {
            co_await coio::sleep(300us);
        }
        const auto spent = loop().stats().iterations - before;
        // About two passes per sleep when the backend waits for the timer; a
        // timeout truncated to 0 ms would poll hundreds of times per sleep.
        INFO("iterations for 20 sleeps of 300 us: " << spent);
        CHECK(spent < 200);
    }());
}

// ---------------------------------------------------------------------------
// Order

TEST_CASE("timers fire in deadline order, not in the order they were set", "[sleep]") {
    run_clean([]() -> task<> {
        const auto base = clock_type::now() + 2ms;
        const int offsets_ms[] = {30, 1, 20, 5, 10, 2, 15, 0};
        std::vector<int> order;
        int early = 0;
        std::vector<task<>> sleepers;
        for (int i = 0; i < 8; ++i) {
            sleepers.push_back(
                wake_at(base + std::chrono::milliseconds(offsets_ms[i]), i, &order, &early));
        }
        co_await coio::gather(std::move(sleepers));
        // By offset: 0 ms (7), 1 (1), 2 (5), 5 (3), 10 (4), 15 (6), 20 (2), 30 (0).
        CHECK(order == std::vector<int>({7, 1, 5, 3, 4, 6, 2, 0}));
        CHECK(early == 0);
    }());
}

TEST_CASE("timers with equal deadlines fire in the order they were set", "[sleep]") {
    run_clean([]() -> task<> {
        const auto deadline = clock_type::now() + 3ms;
        std::vector<int> order;
        int early = 0;
        std::vector<task<>> sleepers;
        for (int i = 0; i < 50; ++i) {
            sleepers.push_back(wake_at(deadline, i, &order, &early));
        }
        co_await coio::gather(std::move(sleepers));
        std::vector<int> expected(50);
        std::iota(expected.begin(), expected.end(), 0);
        CHECK(order == expected);
        CHECK(early == 0);
    }());
}

TEST_CASE("10,000 sleeping tasks wake in deadline order", "[sleep]") {
    run_clean([]() -> task<> {
        constexpr int n = 10'000;
        std::mt19937 rng(20240611);
        std::uniform_int_distribution<int> spread_us(0, 20'000);
        const auto base = clock_type::now() + 5ms;
        std::vector<clock_type::time_point> deadlines;
        std::vector<task<>> sleepers;
        std::vector<int> order;
        order.reserve(n);
        int early = 0;
        for (int i = 0; i < n; ++i) {
            deadlines.push_back(base + std::chrono::microseconds(spread_us(rng)));
            sleepers.push_back(wake_at(deadlines.back(), i, &order, &early));
        }
        co_await coio::gather(std::move(sleepers));
        // Equal deadlines keep the order they were set in, which is index order.
        std::vector<int> expected(n);
        std::iota(expected.begin(), expected.end(), 0);
        std::stable_sort(expected.begin(), expected.end(),
                         [&](int a, int b) { return deadlines[a] < deadlines[b]; });
        REQUIRE(order.size() == expected.size());
        std::size_t misplaced = 0;
        for (std::size_t i = 0; i < order.size(); ++i) {
            misplaced += order[i] != expected[i] ? 1 : 0;
        }
        CHECK(misplaced == 0);
        CHECK(early == 0);
        CHECK(loop().stats().timers == 0);
    }());
}

// ---------------------------------------------------------------------------
// Yielding

TEST_CASE("sleep(0), a negative sleep and a past deadline still let other ready tasks run",
          "[sleep]") {
    run_clean([]() -> task<> {
        bool a = false;
        bool b = false;
        bool c = false;
        auto ha = coio::create_task(set_flag(&a));
        co_await coio::sleep(0ms);
        CHECK(a);
        auto hb = coio::create_task(set_flag(&b));
        co_await coio::sleep(-5ms);
        CHECK(b);
        auto hc = coio::create_task(set_flag(&c));
        co_await coio::sleep_until(clock_type::now() - 1h);
        CHECK(c);
        CHECK(loop().stats().timers == 0);
    }());
}

TEST_CASE("yield_now lets every other ready task run once, then continues", "[sleep]") {
    run_clean([]() -> task<> {
        std::vector<int> trace;
        auto step_twice = [](std::vector<int>* t, int id) -> task<> {
            t->push_back(id);
            co_await coio::yield_now();
            t->push_back(id + 10);
        };
        auto h1 = coio::create_task(step_twice(&trace, 1));
        auto h2 = coio::create_task(step_twice(&trace, 2));
        auto h3 = coio::create_task(step_twice(&trace, 3));
        CHECK(trace.empty());
        co_await coio::yield_now();
        CHECK(trace == std::vector<int>({1, 2, 3}));
        co_await coio::yield_now();
        CHECK(trace == std::vector<int>({1, 2, 3, 11, 12, 13}));
        co_await h1;
        co_await h2;
        co_await h3;
    }());
}

// ---------------------------------------------------------------------------
// The timer heap with 1,000,000 entries, driven through add_timer/remove_timer

void never_fires(timer_node& t) noexcept {
    *static_cast<bool*>(t.m_ctx) = true;
}

TEST_CASE("the loop holds 1,000,000 pending timers and removes them in any order", "[sleep]") {
    constexpr std::size_t n = 1'000'000;
    coio::event_loop l;
    std::vector<timer_node> nodes(n);
    bool fired = false;
    std::mt19937_64 rng(12345);
    const auto base = clock_type::now() + 1h;
    for (timer_node& t : nodes) {
        t.m_deadline = base + std::chrono::microseconds(rng() % 1'000'000'000);
        t.m_fire = &never_fires;
        t.m_ctx = &fired;
        coio::detail::core_of(l).add_timer(t);
    }
    CHECK(l.stats().timers == n);
    std::size_t not_queued = static_cast<std::size_t>(
        std::count_if(nodes.begin(), nodes.end(), [](const timer_node& t) { return !t.queued(); }));
    CHECK(not_queued == 0);

    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::shuffle(idx.begin(), idx.end(), rng);
    for (std::size_t i = 0; i < n / 2; ++i) {
        coio::detail::core_of(l).remove_timer(nodes[idx[i]]);
    }
    CHECK(l.stats().timers == n / 2);
    not_queued = static_cast<std::size_t>(
        std::count_if(nodes.begin(), nodes.end(), [](const timer_node& t) { return !t.queued(); }));
    CHECK(not_queued == n / 2);
    coio::detail::core_of(l).remove_timer(
        nodes[idx[0]]); // removing a timer that is not queued is a no-op
    CHECK(l.stats().timers == n / 2);
    for (std::size_t i = n / 2; i < n; ++i) {
        coio::detail::core_of(l).remove_timer(nodes[idx[i]]);
    }
    CHECK(l.stats().timers == 0);
    CHECK_FALSE(fired);
    coio::test::require_clean(l);
}

struct fire_log {
    std::vector<const timer_node*> fired;
};

void log_fire(timer_node& t) noexcept {
    static_cast<fire_log*>(t.m_ctx)->fired.push_back(&t);
}

TEST_CASE("due timers among 300,000 fire once each, in deadline order", "[sleep]") {
    // Smaller than the test above: it covers firing, not size, and a debug
    // ASan build must stay well inside the meson timeout on a loaded machine.
    constexpr std::size_t n = 300'000;
    coio::event_loop l;
    std::vector<timer_node> nodes(n);
    fire_log log;
    log.fired.reserve(n);
    std::mt19937_64 rng(777);
    const auto now = clock_type::now();
    // Even nodes are due (up to 100 ms ago), odd ones are an hour away.
    // Deadlines have microsecond granularity, so many are equal: those must fire in the
    // order they were added, which is index order.
    for (std::size_t i = 0; i < n; ++i) {
        const auto jitter = std::chrono::microseconds(rng() % 100'000);
        nodes[i].m_deadline = i % 2 == 0 ? now - jitter : now + 1h + jitter;
        nodes[i].m_fire = &log_fire;
        nodes[i].m_ctx = &log;
        coio::detail::core_of(l).add_timer(nodes[i]);
    }
    // Take out a random third first, so the heap has been reshuffled by removals.
    std::vector<bool> removed(n, false);
    for (std::size_t k = 0; k < n / 3; ++k) {
        const std::size_t i = static_cast<std::size_t>(rng() % n);
        if (!removed[i]) {
            removed[i] = true;
            coio::detail::core_of(l).remove_timer(nodes[i]);
        }
    }
    std::size_t due = 0;
    std::size_t future = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!removed[i]) {
            (i % 2 == 0 ? due : future) += 1;
        }
    }
    CHECK(l.stats().timers == due + future);

    l.run_until_complete([]() -> task<> { co_await coio::yield_now(); }());

    CHECK(log.fired.size() == due);
    std::size_t wrong = 0;
    for (std::size_t k = 0; k < log.fired.size(); ++k) {
        const timer_node* t = log.fired[k];
        const auto i = static_cast<std::size_t>(t - nodes.data());
        wrong += (i % 2 != 0 || removed[i] || t->queued()) ? 1 : 0;
        if (k > 0) {
            const timer_node* p = log.fired[k - 1];
            const bool in_order =
                p->m_deadline < t->m_deadline || (p->m_deadline == t->m_deadline && p < t);
            wrong += in_order ? 0 : 1;
        }
    }
    CHECK(wrong == 0);
    CHECK(l.stats().timers == future);
    for (std::size_t i = 1; i < n; i += 2) {
        coio::detail::core_of(l).remove_timer(nodes[i]);
    }
    CHECK(l.stats().timers == 0);
    coio::test::require_clean(l);
}

// ---------------------------------------------------------------------------
// Cancellation

TEST_CASE("cancelling a sleep removes its timer at once", "[sleep]") {
    run_clean([]() -> task<> {
        std::vector<int> order;
        int early = 0;
        const auto base = clock_type::now() + 2ms;
        auto first = coio::create_task(wake_at(base, 1, &order, &early));
        auto victim = coio::create_task(sleep_for(long_sleep));
        auto last = coio::create_task(wake_at(base + 1ms, 3, &order, &early));
        co_await coio::yield_now();
        REQUIRE(loop().stats().timers == 3);
        const auto t0 = clock_type::now();
        CHECK(victim.cancel());
        CHECK(loop().stats().timers == 2); // before the task even resumes
        bool threw = false;
        try {
            co_await victim;
        } catch (const coio::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(clock_type::now() - t0 < generous);
        co_await first;
        co_await last;
        CHECK(order == std::vector<int>({1, 3}));
        CHECK(early == 0);
    }());
}

TEST_CASE("sleep in a task with a cancel pending throws without suspending", "[sleep]") {
    run_clean([]() -> task<> {
        struct seen {
            bool threw = false;
            std::uint64_t iterations_before = 0;
            std::uint64_t iterations_after = 0;
            std::size_t timers_after = 0;
        } s;
        auto h = coio::create_task([](seen* out) -> task<> {
            out->iterations_before = loop().stats().iterations;
            try {
                co_await coio::sleep(long_sleep);
            } catch (const coio::cancelled_error&) {
                out->threw = true;
            }
            out->iterations_after = loop().stats().iterations;
            out->timers_after = loop().stats().timers;
        }(&s));
        CHECK(h.cancel()); // before it starts
        co_await h;
        CHECK(s.threw);
        CHECK(s.iterations_after == s.iterations_before); // did not suspend
        CHECK(s.timers_after == 0);
    }());
}

TEST_CASE("yield_now is a cancellation point", "[sleep]") {
    run_clean([]() -> task<> {
        long steps = 0;
        auto h = coio::create_task([](long* n) -> task<> {
            for (int i = 0; i < 1000; ++i) {
                ++*n;
                co_await coio::yield_now();
            }
        }(&steps));
        for (int i = 0; i < 3; ++i) {
            co_await coio::yield_now();
        }
        CHECK(h.cancel());
        bool threw = false;
        try {
            co_await h;
        } catch (const coio::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(h.cancelled());
        CHECK(steps >= 3);
        CHECK(steps <= 5);
    }());
}

// Regression (every backend): sleep_awaiter kept its cancel hook attached after
// the timer fired, so a cancel arriving between the fire and the resume posted
// the task a second time. The task then ran ahead from whatever it awaited next.
TEST_CASE("a cancel that arrives after the timer fired resumes the sleeper exactly once",
          "[sleep]") {
    run_clean([]() -> task<> {
        struct outcome {
            bool slept = false;
            bool cancelled_in_sleep = false;
            bool woke_without_notify = false;
            bool cancelled_in_wait = false;
        } o;
        coio::detail::wait_queue q;
        auto h = coio::create_task([](coio::detail::wait_queue* wq, outcome* out) -> task<> {
            try {
                co_await coio::sleep_until(clock_type::now() - 1s); // due at the next pass
                out->slept = true;
            } catch (const coio::cancelled_error&) {
                out->cancelled_in_sleep = true;
            }
            try {
                co_await wq->wait(); // nobody notifies
                out->woke_without_notify = true;
            } catch (const coio::cancelled_error&) {
                out->cancelled_in_wait = true;
            }
        }(&q, &o));
        co_await coio::yield_now(); // h has set its timer
        REQUIRE(loop().stats().timers == 1);
        // The next pass fires the timer (posting h), then runs callbacks before
        // any task: the cancel lands after the fire and before the resume.
        loop().call_soon([hh = h]() mutable { hh.cancel(); });
        co_await h;
        CHECK_FALSE(o.woke_without_notify);
        // The sleep had finished: it returns normally and the request stays
        // pending for the next await (cancel_slot.hpp protocol, step 3).
        CHECK(o.slept);
        CHECK_FALSE(o.cancelled_in_sleep);
        CHECK(o.cancelled_in_wait);
        CHECK(q.empty());
    }());
}

} // namespace
