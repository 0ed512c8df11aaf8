// tests/task_test.cpp - task<T>: laziness, values and references, exceptions,
// ownership, frame lifetime, and the depth guard that keeps long chains of
// symmetric transfers off the stack (cppcoro test/task_tests.cpp).
//
// The [depth] tests are the ones STYLE §3 asks to run by hand under both
// compilers at -O0 and -O2; they also record how far the stack grew, so a
// guard that is too lax fails here before it overflows somewhere else.
#include "support/support.hpp"

#include <coio/detail/loop_core.hpp>
#include <coio/detail/promise.hpp>
#include <coio/detail/wait_queue.hpp>

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using coio::task;
using coio::test::counted;
using coio::test::run_clean;

namespace {

// ---------------------------------------------------------------------------
// Helpers

task<> set_flag(bool* flag) {
    *flag = true;
    co_return;
}

task<int> value_of(int v) {
    co_return v;
}

task<int> counted_body(counted, int v) {
    counted local;
    co_await coio::yield_now();
    co_return v;
}

task<int> throw_runtime(std::string what) {
    throw std::runtime_error(what);
    co_return 0;
}

// Lowest and highest stack address seen; the span is how deep the stack grew
// between the outermost and innermost sample.
struct stack_probe {
    std::uintptr_t lo = UINTPTR_MAX;
    std::uintptr_t hi = 0;

    // Not inlined, so the sample is this call's own frame, wherever it is used.
    [[gnu::noinline]] void sample() noexcept {
        const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
        lo = std::min(lo, here);
        hi = std::max(hi, here);
    }
    [[nodiscard]] std::size_t span() const noexcept { return hi > lo ? hi - lo : 0; }
};

// The deepest the depth guard (64 transfers) should ever let the stack grow,
// with lots of slack for -O0 and sanitizer frames. Without the guard, g++ -O0
// and clang -O2 grow the stack by the whole chain (tens of MiB and more).
constexpr std::size_t stack_budget = 1024 * 1024;

// ---------------------------------------------------------------------------
// Laziness

TEST_CASE("task doesn't start until awaited", "[task]") {
    bool started = false;
    run_clean([](bool* s) -> task<> {
        task<> t = set_flag(s);
        CHECK_FALSE(*s);
        co_await coio::yield_now(); // the loop running other work doesn't start it either
        CHECK_FALSE(*s);
        co_await std::move(t);
        CHECK(*s);
    }(&started));
    CHECK(started);
}

TEST_CASE("task that is never awaited never runs and destroys its frame", "[task]") {
    counted::reset();
    bool started = false;
    {
        task<int> t = [](counted, bool* s) -> task<int> {
            *s = true;
            co_return 1;
        }(counted{}, &started);
        CHECK(t.valid());
        CHECK_FALSE(t.done());
        CHECK(counted::alive == 1); // the parameter copy lives in the frame
    }
    CHECK_FALSE(started);
    CHECK(counted::alive == 0);
    CHECK(counted::constructed >= 2);
}

// ---------------------------------------------------------------------------
// Values, references and void

TEST_CASE("task returns a value to its awaiter", "[task]") {
    CHECK(run_clean(value_of(42)) == 42);
    CHECK(run_clean([]() -> task<std::string> {
              std::string s = co_await []() -> task<std::string> {
                  co_return std::string(100, 'x'); // longer than any small-string buffer
              }();
              co_return s + "!";
          }()) == std::string(100, 'x') + "!");
}

TEST_CASE("task returns a move-only value", "[task]") {
    auto p = run_clean([]() -> task<std::unique_ptr<int>> {
        std::unique_ptr<int> v =
            co_await []() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); }();
        co_return v;
    }());
    REQUIRE(p != nullptr);
    CHECK(*p == 7);
}

TEST_CASE("task<T&> returns a reference to the same object, not a copy", "[task]") {
    int x = 1;
    run_clean([](int* px) -> task<> {
        int& r = co_await [](int* p) -> task<int&> { co_return *p; }(px);
        CHECK(&r == px);
        r = 5;
        const std::string s = "abc";
        const std::string& cr =
            co_await [](const std::string* p) -> task<const std::string&> { co_return *p; }(&s);
        CHECK(&cr == &s);
    }(&x));
    CHECK(x == 5);
}

TEST_CASE("task<void> runs its body to the end", "[task]") {
    int steps = 0;
    run_clean([](int* n) -> task<> {
        co_await [](int* m) -> task<> {
            ++*m;
            co_await coio::yield_now();
            ++*m;
        }(n);
        ++*n;
    }(&steps));
    CHECK(steps == 3);
}

TEST_CASE("task's done() turns true only after the body finished", "[task]") {
    run_clean([]() -> task<> {
        task<int> t = value_of(3);
        CHECK(t.valid());
        CHECK_FALSE(t.done());
        int v = co_await t;
        CHECK(v == 3);
        CHECK(t.done());
        CHECK(t.valid()); // awaiting does not give up ownership
    }());
}

// ---------------------------------------------------------------------------
// Exceptions

TEST_CASE("exception thrown by a task is rethrown by co_await", "[task]") {
    run_clean([]() -> task<> {
        bool caught = false;
        try {
            (void)co_await throw_runtime("boom");
        } catch (const std::runtime_error& e) {
            caught = std::string(e.what()) == "boom";
        }
        CHECK(caught);
    }());
}

TEST_CASE("exception propagates through every level of a chain", "[task]") {
    counted::reset();
    auto level = [](auto self, int depth, counted) -> task<int> {
        counted local;
        if (depth == 0) {
            co_await coio::yield_now(); // throw after a real suspension
            throw std::out_of_range("bottom");
        }
        co_return 1 + co_await self(self, depth - 1, counted{});
    };
    CHECK_THROWS_WITH(run_clean(level(level, 10, counted{})), "bottom");
    CHECK(counted::alive == 0);
    CHECK(counted::constructed >= 22);
}

TEST_CASE("exception escaping main is rethrown by run_until_complete", "[task]") {
    CHECK_THROWS_AS(run_clean(throw_runtime("main")), std::runtime_error);
}

TEST_CASE("task can catch an awaited exception and go on", "[task]") {
    CHECK(run_clean([]() -> task<int> {
              int got = 0;
              try {
                  got = co_await throw_runtime("x");
              } catch (const std::runtime_error&) {
                  got = -1;
              }
              co_return got + co_await value_of(10);
          }()) == 9);
}

// ---------------------------------------------------------------------------
// Ownership

TEST_CASE("task is move-only", "[task]") {
    static_assert(!std::is_copy_constructible_v<task<int>>);
    static_assert(!std::is_copy_assignable_v<task<int>>);
    static_assert(!std::is_copy_constructible_v<task<>>);
    static_assert(std::is_nothrow_move_constructible_v<task<int>>);
    static_assert(std::is_nothrow_move_assignable_v<task<int>>);

    counted::reset();
    task<int> a = counted_body(counted{}, 1);
    task<int> b = counted_body(counted{}, 2);
    CHECK(counted::alive == 2);
    a = std::move(b); // destroys a's old frame
    CHECK(counted::alive == 1);
    CHECK_FALSE(b.valid()); // NOLINT(bugprone-use-after-move): checking the moved-from state
    task<int> c(std::move(a));
    CHECK_FALSE(a.valid()); // NOLINT(bugprone-use-after-move)
    CHECK(c.valid());
    CHECK(run_clean(std::move(c)) == 2);
    CHECK(counted::alive == 0);
}

TEST_CASE("awaiting a task twice throws std::logic_error", "[task]") {
    run_clean([]() -> task<> {
        task<int> t = value_of(1);
        const int first = co_await t;
        CHECK(first == 1);
        bool threw = false;
        try {
            (void)co_await t;
        } catch (const std::logic_error&) {
            threw = true;
        }
        CHECK(threw);
    }());
}

TEST_CASE("awaiting a moved-from or empty task throws std::logic_error", "[task]") {
    run_clean([]() -> task<> {
        task<int> t = value_of(1);
        task<int> u = std::move(t);
        int threw = 0;
        try {
            (void)co_await t; // NOLINT(bugprone-use-after-move): that is the point
        } catch (const std::logic_error&) {
            ++threw;
        }
        task<> empty;
        try {
            co_await empty;
        } catch (const std::logic_error&) {
            ++threw;
        }
        CHECK(threw == 2);
        const int v = co_await u;
        CHECK(v == 1); // the task itself was not disturbed
    }());
}

TEST_CASE("awaiting a task another coroutine is awaiting throws std::logic_error", "[task]") {
    run_clean([]() -> task<> {
        coio::detail::wait_queue q;
        task<int> shared = [](coio::detail::wait_queue* wq) -> task<int> {
            co_await wq->wait();
            co_return 8;
        }(&q);
        auto first =
            coio::create_task([](task<int>* t) -> task<int> { co_return co_await *t; }(&shared));
        co_await coio::yield_now(); // `first` starts and parks inside `shared`
        REQUIRE_FALSE(first.done());
        bool threw = false;
        try {
            (void)co_await shared;
        } catch (const std::logic_error&) {
            threw = true;
        }
        CHECK(threw);
        q.notify_one();
        const int v = co_await first;
        CHECK(v == 8);
    }());
}

// ---------------------------------------------------------------------------
// Frame lifetime

TEST_CASE("task frames, parameters and locals are all destroyed after run", "[task]") {
    counted::reset();
    int sum = run_clean([](counted) -> task<int> {
        counted local;
        int s = 0;
        for (int i = 0; i < 5; ++i) {
            s += co_await counted_body(counted{}, i);
        }
        co_return s;
    }(counted{}));
    CHECK(sum == 10);
    CHECK(counted::constructed >= 12);
    CHECK(counted::alive == 0);
}

TEST_CASE("awaited task's frame is destroyed when its task object goes away", "[task]") {
    counted::reset();
    run_clean([]() -> task<> {
        {
            task<int> t = counted_body(counted{}, 1);
            const int v = co_await t;
            CHECK(v == 1);
            CHECK(counted::alive == 1); // finished, but the parameter lives until the frame dies
        }
        CHECK(counted::alive == 0);
    }());
}

// ---------------------------------------------------------------------------
// Depth guard ([depth]): STYLE §3 "Stack overflow".

// cppcoro: "lots of synchronous completions doesn't result in stack-overflow".
// Every await completes without suspending, so each one is a pair of symmetric
// transfers; g++ 12 at -O0..-O1 compiles them as plain calls.
TEST_CASE("a chain of 1,000,000 awaits that complete synchronously does not overflow the stack",
          "[task][depth]") {
    stack_probe probe;
    const long sum = run_clean([](stack_probe* sp) -> task<long> {
        auto completes_at_once = [](stack_probe* p, int i) -> task<int> {
            p->sample();
            co_return i & 1;
        };
        sp->sample();
        long s = 0;
        for (int i = 0; i < 1'000'000; ++i) {
            s += co_await completes_at_once(sp, i);
        }
        co_return s;
    }(&probe));
    CHECK(sum == 500'000);
    INFO("stack span " << probe.span() << " bytes");
    CHECK(probe.span() < stack_budget);
}

// Two coroutines handing control to each other directly: clang 14 at -Og and
// above overflows on exactly this (llvm/llvm-project#49888).
struct ping_pong {
    coio::detail::loop_core* loop = nullptr;
    std::coroutine_handle<> parked; // the player waiting for its turn
    long switches = 0;
    long wrong_turns = 0;
    int last = -1;
    stack_probe probe;
};

class switch_to_partner {
public:
    explicit switch_to_partner(ping_pong* s) noexcept : m_s(s) {}
    static bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> me) noexcept {
        m_s->probe.sample();
        std::coroutine_handle<> partner = std::exchange(m_s->parked, me);
        if (!partner) {
            return std::noop_coroutine(); // first to arrive waits for the other
        }
        return coio::detail::transfer(coio::detail::loop_of(me), partner);
    }
    static void await_resume() noexcept {}

private:
    ping_pong* m_s;
};

task<> player(ping_pong* s, int id, long total) {
    while (s->switches < total) {
        if (s->last == id) {
            ++s->wrong_turns;
        }
        s->last = id;
        ++s->switches;
        co_await switch_to_partner(s);
    }
    // Let the partner see the end too.
    if (std::coroutine_handle<> p = std::exchange(s->parked, {})) {
        s->loop->post(p);
    }
}

TEST_CASE("a two-coroutine ping-pong of 1,000,000 switches does not overflow the stack",
          "[task][depth]") {
    ping_pong s;
    run_clean([](ping_pong* ps) -> task<> {
        ps->loop = &coio::detail::running_loop_core();
        constexpr long total = 1'000'000;
        co_await coio::gather(player(ps, 0, total), player(ps, 1, total));
        CHECK(ps->switches == total);
    }(&s));
    CHECK(s.wrong_turns == 0);
    CHECK_FALSE(s.parked);
    INFO("stack span " << s.probe.span() << " bytes");
    CHECK(s.probe.span() < stack_budget);
}

TEST_CASE("100,000 nested awaits unwind without overflowing the stack", "[task][depth]") {
    stack_probe probe;
    struct recurse {
        static task<long> down(stack_probe* p, long n) {
            p->sample();
            if (n == 0) {
                co_return 0;
            }
            co_return 1 + co_await down(p, n - 1);
        }
    };
    CHECK(run_clean(recurse::down(&probe, 100'000)) == 100'000);
    INFO("stack span " << probe.span() << " bytes");
    CHECK(probe.span() < stack_budget);
}

} // namespace

// ---------------------------------------------------------------------------
// Frame cache (coio/detail/frame_alloc.hpp)

[[gnu::noinline]] task<int> make_out_of_line(int v) {
    return value_of(v);
}

TEST_CASE("a finished task's frame is reused by the next frame of its size class", "[task]") {
    if (!COIO_FRAME_CACHE) {
        WARN("frame cache is off in this build (AddressSanitizer): nothing to check");
        return;
    }
    // The tasks are made out of line: inlined into this function, clang may
    // elide the allocation and put the frame on the stack (HALO).
    auto first = make_out_of_line(1).release();
    const void* first_frame = first.address();
    first.destroy();
    auto second = make_out_of_line(2).release();
    CHECK(second.address() == first_frame);
    second.destroy();
}

TEST_CASE("frame cache: sizes round up to a class, big frames bypass it, depth is bounded",
          "[task]") {
    using namespace coio::detail;
#if !COIO_FRAME_CACHE
    WARN("frame cache is off in this build (AddressSanitizer): nothing to check");
#else
    // Same class (97..112 bytes): the freed block comes back.
    void* a = frame_alloc(100);
    frame_free(a, 100);
    void* b = frame_alloc(110); // the same 16-byte class as 100
    CHECK(b == a);
    frame_free(b, 110);
    // A frame above the cache limit is never kept: the cache's lists do not
    // change when it is freed.
    const frame_cache before = t_frame_cache;
    void* big = frame_alloc(frame_cache_limit + 1);
    frame_free(big, frame_cache_limit + 1);
    for (std::size_t c = 0; c < frame_classes; ++c) {
        CHECK(t_frame_cache.m_head[c] == before.m_head[c]);
    }
    // Free more than frame_cache_depth frames of one class: the list stops
    // growing at the bound.
    const std::size_t cls = (200 - 1) / frame_granule;
    std::vector<void*> many(frame_cache_depth(cls) + 50);
    for (void*& p : many) {
        p = frame_alloc(200);
    }
    for (void* p : many) {
        frame_free(p, 200);
    }
    CHECK(t_frame_cache.m_count[cls] == frame_cache_depth(cls));
#endif
}

TEST_CASE("a loop on a short-lived thread runs, and the thread exits with frames cached",
          "[task]") {
    int got = 0;
    std::thread th([&got] { got = coio::run(value_of(41)) + 1; });
    th.join();
    CHECK(got == 42);
}
