// tests/gather_test.cpp - gather: result order, void children, the range and
// return_exceptions forms, task handles, the wait-for-all error policy,
// cancellation, size and nesting.
//
// Children that must finish in a given order sleep until deadlines fixed
// before gather starts them, or yield a given number of times; either way the
// order does not depend on how fast the machine is.
#include "support/support.hpp"

#include <chrono>
#include <cstddef>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

using coio::task;
using coio::test::counted;
using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;
constexpr auto long_sleep = 10s;
constexpr auto generous = 5s;

coio::event_loop& loop() {
    return coio::event_loop::running();
}

task<int> value_of(int v) {
    co_return v;
}

task<std::string> text_of(std::string s) {
    co_await coio::yield_now();
    co_return s;
}

// Sleeps until `deadline`, notes `v` in `finished`, returns it.
task<int> value_at(clock_type::time_point deadline, int v, std::vector<int>* finished) {
    co_await coio::sleep_until(deadline);
    finished->push_back(v);
    co_return v;
}

task<int> fail_at(clock_type::time_point deadline, std::string what) {
    co_await coio::sleep_until(deadline);
    throw std::runtime_error(what);
    co_return 0;
}

task<int> fail_now(std::string what) {
    throw std::runtime_error(what);
    co_return 0;
}

task<> set_flag_at(clock_type::time_point deadline, bool* flag, counted) {
    counted local;
    co_await coio::sleep_until(deadline);
    *flag = true;
}

task<> set_flag(bool* flag) {
    *flag = true;
    co_return;
}

task<> yielder(std::vector<int>* trace, int id, int n) {
    for (int i = 0; i < n; ++i) {
        trace->push_back(id);
        co_await coio::yield_now();
    }
}

std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "?";
    }
}

// ---------------------------------------------------------------------------
// Results

TEST_CASE("gather returns results in argument order whatever order children finish in",
          "[gather]") {
    run_clean([]() -> task<> {
        std::vector<int> finished;
        const auto base = clock_type::now() + 2ms;
        auto [a, b, c] =
            co_await coio::gather(value_at(base + 20ms, 1, &finished), value_at(base, 2, &finished),
                                  value_at(base + 10ms, 3, &finished));
        CHECK(a == 1);
        CHECK(b == 2);
        CHECK(c == 3);
        CHECK(finished == std::vector<int>({2, 3, 1}));
        CHECK(clock_type::now() >= base + 20ms);
    }());
}

TEST_CASE("gather keeps each child's type", "[gather]") {
    run_clean([]() -> task<> {
        auto r = co_await coio::gather(value_of(4), text_of("four"),
                                       []() -> task<double> { co_return 4.5; }());
        static_assert(std::is_same_v<decltype(r), std::tuple<int, std::string, double>>);
        CHECK(std::get<0>(r) == 4);
        CHECK(std::get<1>(r) == "four");
        CHECK(std::get<2>(r) == 4.5);
    }());
}

TEST_CASE("a void child contributes std::monostate", "[gather]") {
    run_clean([]() -> task<> {
        bool ran = false;
        auto r = co_await coio::gather(set_flag(&ran), value_of(1));
        static_assert(std::is_same_v<decltype(r), std::tuple<std::monostate, int>>);
        CHECK(ran);
        CHECK(std::get<1>(r) == 1);
    }());
}

TEST_CASE("a child returning a reference yields that reference", "[gather]") {
    int x = 0;
    run_clean([](int* px) -> task<> {
        auto r = co_await coio::gather([](int* p) -> task<int&> { co_return *p; }(px));
        static_assert(std::is_same_v<decltype(r), std::tuple<int&>>);
        CHECK(&std::get<0>(r) == px);
        std::get<0>(r) = 9;
    }(&x));
    CHECK(x == 9);
}

TEST_CASE("gather of a range returns a vector in input order", "[gather]") {
    run_clean([]() -> task<> {
        std::vector<int> finished;
        const auto base = clock_type::now() + 2ms;
        std::vector<task<int>> children;
        for (int i = 0; i < 20; ++i) {
            // Later children finish first.
            children.push_back(
                value_at(base + std::chrono::microseconds(500 * (20 - i)), i * i, &finished));
        }
        std::vector<int> v = co_await coio::gather(std::move(children));
        REQUIRE(v.size() == 20);
        for (int i = 0; i < 20; ++i) {
            CHECK(v[static_cast<std::size_t>(i)] == i * i);
        }
        CHECK(finished.front() == 19 * 19);
        CHECK(finished.back() == 0);
    }());
}

TEST_CASE("gather of an empty range or of nothing returns at once", "[gather]") {
    run_clean([]() -> task<> {
        const auto before = loop().stats().iterations;
        std::vector<task<int>> none;
        std::vector<int> v = co_await coio::gather(std::move(none));
        CHECK(v.empty());
        std::vector<task<int>> none_either;
        auto rs = co_await coio::gather(coio::return_exceptions, std::move(none_either));
        CHECK(rs.empty());
        auto t = co_await coio::gather();
        static_assert(std::is_same_v<decltype(t), std::tuple<>>);
        CHECK(loop().stats().iterations == before); // never went back to the loop
    }());
}

TEST_CASE("gather children run concurrently, starting in argument order", "[gather]") {
    run_clean([]() -> task<> {
        std::vector<int> trace;
        co_await coio::gather(yielder(&trace, 0, 3), yielder(&trace, 1, 3), yielder(&trace, 2, 3));
        CHECK(trace == std::vector<int>({0, 1, 2, 0, 1, 2, 0, 1, 2}));
    }());
}

TEST_CASE("gather destroys every child's frame before the caller resumes", "[gather]") {
    counted::reset();
    run_clean([]() -> task<> {
        bool a = false;
        bool b = false;
        const auto base = clock_type::now() + 1ms;
        co_await coio::gather(set_flag_at(base, &a, counted{}),
                              set_flag_at(base + 1ms, &b, counted{}));
        CHECK(a);
        CHECK(b);
        CHECK(counted::alive == 0);
    }());
    CHECK(counted::constructed >= 4);
}

// ---------------------------------------------------------------------------
// Errors

TEST_CASE("gather waits for every child, then rethrows the first exception to happen", "[gather]") {
    counted::reset();
    run_clean([]() -> task<> {
        bool slow_finished = false;
        const auto base = clock_type::now() + 2ms;
        std::string caught;
        try {
            // Argument order differs from completion order on purpose.
            co_await coio::gather(fail_at(base + 10ms, "second"), fail_at(base + 1ms, "first"),
                                  set_flag_at(base + 30ms, &slow_finished, counted{}));
        } catch (const std::runtime_error& e) {
            caught = e.what();
        }
        CHECK(caught == "first");
        CHECK(slow_finished); // the sibling was not abandoned or cancelled
        CHECK(clock_type::now() >= base + 30ms);
        CHECK(counted::alive == 0);
    }());
}

TEST_CASE("gather of a range rethrows the first exception after all children finish", "[gather]") {
    run_clean([]() -> task<> {
        std::vector<int> finished;
        const auto base = clock_type::now() + 2ms;
        std::vector<task<int>> children;
        children.push_back(value_at(base + 20ms, 0, &finished));
        children.push_back(fail_at(base + 5ms, "range"));
        children.push_back(value_at(base, 2, &finished));
        std::string caught;
        try {
            (void)co_await coio::gather(std::move(children));
        } catch (const std::runtime_error& e) {
            caught = e.what();
        }
        CHECK(caught == "range");
        CHECK(finished == std::vector<int>({2, 0}));
    }());
}

TEST_CASE("return_exceptions gives one result per child and never throws a child's exception",
          "[gather]") {
    run_clean([]() -> task<> {
        bool ran = false;
        auto [a, b, c, d] =
            co_await coio::gather(coio::return_exceptions, value_of(1), fail_now("bad"),
                                  set_flag(&ran), fail_at(clock_type::now() + 1ms, "worse"));
        static_assert(std::is_same_v<decltype(a), coio::result<int>>);
        static_assert(std::is_same_v<decltype(c), coio::result<void>>);
        CHECK(a.has_value());
        CHECK_FALSE(a.has_exception());
        CHECK(a.value() == 1);
        CHECK(b.has_exception());
        CHECK_FALSE(b.has_value());
        CHECK(what_of(b.exception()) == "bad");
        CHECK_THROWS_WITH(b.value(), "bad");
        CHECK(c.has_value());
        CHECK(ran);
        CHECK(d.has_exception());
        CHECK(what_of(d.exception()) == "worse");

        std::vector<task<int>> children;
        for (int i = 0; i < 6; ++i) {
            children.push_back(i % 2 == 0 ? value_of(i) : fail_now("odd " + std::to_string(i)));
        }
        std::vector<coio::result<int>> rs =
            co_await coio::gather(coio::return_exceptions, std::move(children));
        REQUIRE(rs.size() == 6);
        for (int i = 0; i < 6; ++i) {
            const coio::result<int>& r = rs[static_cast<std::size_t>(i)];
            if (i % 2 == 0) {
                CHECK(r.has_value());
            } else {
                CHECK(r.has_exception());
                CHECK(what_of(r.exception()) == "odd " + std::to_string(i));
            }
        }
    }());
}

// ---------------------------------------------------------------------------
// Task handles

TEST_CASE("gather accepts task handles, alone, mixed with tasks and as a range", "[gather]") {
    run_clean([]() -> task<> {
        std::vector<int> finished;
        const auto base = clock_type::now() + 2ms;
        auto slow = coio::create_task(value_at(base + 5ms, 10, &finished));
        auto quick = coio::create_task(value_of(2));
        auto [x, y] = co_await coio::gather(slow, quick);
        CHECK(x == 10);
        CHECK(y == 2);
        CHECK(slow.done()); // gather copied the handles; ours still work
        CHECK(quick.result() == 2);

        auto [p, q] = co_await coio::gather(quick, value_of(3)); // quick already finished
        CHECK(p == 2);
        CHECK(q == 3);

        std::vector<coio::task_handle<int>> handles;
        for (int i = 0; i < 5; ++i) {
            handles.push_back(coio::create_task(value_of(i)));
        }
        std::vector<int> v = co_await coio::gather(std::move(handles));
        CHECK(v == std::vector<int>({0, 1, 2, 3, 4}));
    }());
}

TEST_CASE("gather of a failing task handle rethrows and counts as retrieved", "[gather]") {
    std::vector<std::string> reported;
    run_clean([](std::vector<std::string>* rep) -> task<> {
        loop().set_exception_handler(
            [rep](const coio::exception_context& c) { rep->emplace_back(c.message); });
        std::string caught;
        try {
            (void)co_await coio::gather(coio::create_task(fail_now("handle")), value_of(1));
        } catch (const std::runtime_error& e) {
            caught = e.what();
        }
        CHECK(caught == "handle");
        for (int i = 0; i < 4; ++i) {
            co_await coio::yield_now();
        }
    }(&reported));
    CHECK(reported.empty());
}

// ---------------------------------------------------------------------------
// Cancellation

task<int> cancellable_child(int* cancelled, counted) {
    counted local;
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        ++*cancelled;
        throw;
    }
    co_return 1;
}

task<int> gather_three(int* cancelled) {
    auto [a, b, c] = co_await coio::gather(cancellable_child(cancelled, counted{}),
                                           cancellable_child(cancelled, counted{}),
                                           cancellable_child(cancelled, counted{}));
    co_return a + b + c;
}

TEST_CASE("cancelling the task awaiting gather cancels every child and throws cancelled_error",
          "[gather]") {
    counted::reset();
    int cancelled = 0;
    run_clean([](int* cc) -> task<> {
        auto parent = coio::create_task(gather_three(cc));
        co_await coio::yield_now(); // parent starts and posts the children
        co_await coio::yield_now(); // the children start and sleep
        REQUIRE(loop().stats().timers == 3);
        // Per child: the parameter and the local in its frame, and the
        // temporary in gather_three, which lives until its full-expression
        // (the whole co_await) ends.
        CHECK(counted::alive == 9);
        const auto t0 = clock_type::now();
        CHECK(parent.cancel());
        CHECK(loop().stats().timers == 0); // every child's timer is gone at once
        bool threw = false;
        try {
            (void)co_await parent;
        } catch (const coio::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(parent.cancelled());
        CHECK(*cc == 3);
        CHECK(counted::alive == 0);
        CHECK(clock_type::now() - t0 < generous);
    }(&cancelled));
    CHECK(cancelled == 3);
    CHECK(counted::alive == 0);
}

TEST_CASE("gather in a task with a cancel pending throws without starting any child", "[gather]") {
    counted::reset();
    run_clean([]() -> task<> {
        bool a = false;
        bool b = false;
        auto parent = coio::create_task([](bool* pa, bool* pb) -> task<> {
            co_await coio::gather(set_flag(pa), set_flag_at(clock_type::now(), pb, counted{}));
        }(&a, &b));
        CHECK(parent.cancel()); // before it starts
        bool threw = false;
        try {
            co_await parent;
        } catch (const coio::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK_FALSE(a);
        CHECK_FALSE(b);
        CHECK(counted::alive == 0);
    }());
}

// ---------------------------------------------------------------------------
// Size and nesting

TEST_CASE("gather of 1,000 tasks returns every result in order", "[gather]") {
    run_clean([]() -> task<> {
        std::vector<task<int>> children;
        for (int i = 0; i < 1000; ++i) {
            children.push_back([](int v) -> task<int> {
                for (int k = 0; k < v % 7; ++k) {
                    co_await coio::yield_now();
                }
                co_return v;
            }(i));
        }
        std::vector<int> v = co_await coio::gather(std::move(children));
        std::vector<int> expected(1000);
        std::iota(expected.begin(), expected.end(), 0);
        CHECK(v == expected);
    }());
}

TEST_CASE("gathers nest", "[gather]") {
    run_clean([]() -> task<> {
        std::vector<int> finished;
        const auto base = clock_type::now() + 2ms;
        bool ran = false;
        auto [left, right] =
            co_await coio::gather(coio::gather(value_at(base + 3ms, 1, &finished), value_of(2)),
                                  coio::gather(value_at(base, 3, &finished), set_flag(&ran)));
        static_assert(std::is_same_v<decltype(left), std::tuple<int, int>>);
        static_assert(std::is_same_v<decltype(right), std::tuple<int, std::monostate>>);
        CHECK(left == std::tuple<int, int>(1, 2));
        CHECK(std::get<0>(right) == 3);
        CHECK(ran);
        CHECK(finished == std::vector<int>({3, 1}));

        std::vector<task<std::vector<int>>> groups;
        for (int g = 0; g < 4; ++g) {
            std::vector<task<int>> members;
            for (int m = 0; m < 3; ++m) {
                members.push_back(value_of(g * 10 + m));
            }
            groups.push_back(coio::gather(std::move(members)));
        }
        std::vector<std::vector<int>> all = co_await coio::gather(std::move(groups));
        REQUIRE(all.size() == 4);
        CHECK(all[3] == std::vector<int>({30, 31, 32}));

        std::string caught;
        bool sibling_done = false;
        try {
            co_await coio::gather(coio::gather(fail_now("inner"), value_of(1)),
                                  set_flag_at(clock_type::now() + 2ms, &sibling_done, counted{}));
        } catch (const std::runtime_error& e) {
            caught = e.what();
        }
        CHECK(caught == "inner");
        CHECK(sibling_done);
    }());
}

} // namespace
