// tests/asyncio/race_test.cpp - race and race_all_results.
//
// Children that must lose sleep for 10 s and are cancelled; children that
// must win only yield. So no outcome depends on the machine's speed.
#include "asyncio/outcome.hpp"
#include "support/support.hpp"

#include <coio/race.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

using coio::task;
using coio::test::outcome;
using coio::test::run_clean;
using namespace std::chrono_literals;
using log_t = std::vector<std::string>;

namespace {

constexpr auto long_sleep = 10s;

task<int> quick(int v, log_t* log) {
    co_await coio::yield_now();
    log->push_back("quick " + std::to_string(v));
    co_return v;
}

// Sleeps 10 s unless cancelled; notes the cancel in *log.
task<int> sleeper(int v, log_t* log) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        log->push_back("cancelled " + std::to_string(v));
        throw;
    }
    co_return v;
}

// Winds down for a few ms after the cancel, then lets it go on.
// Its wind-down takes `wind_down`: a short one ends by itself, a long one only
// when a second cancel reaches it.
task<std::string> slow_to_stop(log_t* log, coio::event* stopping,
                               std::chrono::milliseconds wind_down) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
        log->push_back("cleanup begins");
        stopping->set();
    }
    co_await coio::sleep(wind_down);
    log->push_back("cleanup done");
    throw coio::cancelled_error{};
}

// Catches the cancel and returns a value anyway (an operation that completed
// before the cancel reached it looks the same to race).
task<int> stubborn(int v) {
    try {
        co_await coio::sleep(long_sleep);
    } catch (const coio::cancelled_error&) {
    }
    co_return v;
}

task<int> fail_soon() {
    co_await coio::yield_now();
    throw std::runtime_error("boom");
}

template <class V>
std::string describe(const V& v) {
    return std::visit(
        [&v](const auto& x) -> std::string {
            using X = std::decay_t<decltype(x)>;
            std::string s = "#" + std::to_string(v.index()) + " ";
            if constexpr (std::is_same_v<X, std::monostate>) {
                return s + "done";
            } else if constexpr (std::is_arithmetic_v<X>) {
                return s + std::to_string(x);
            } else {
                return s + std::string(x);
            }
        },
        v);
}

template <class T>
std::string describe(const coio::race_result<T>& r) {
    return "#" + std::to_string(r.index) + " " + std::to_string(r.value);
}

// How awaiting a race ended, as text.
template <class A>
task<std::string> attempt(A a) {
    try {
        auto r = co_await std::move(a);
        co_return describe(r);
    } catch (const coio::timeout_error&) {
        co_return "timeout_error";
    } catch (const coio::cancelled_error&) {
        co_return "cancelled_error";
    } catch (const std::exception& e) {
        co_return std::string("exception: ") + e.what();
    }
}

} // namespace

TEST_CASE("race returns the first awaitable to finish and its position", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        auto r = co_await coio::race(sleeper(1, &log), quick(2, &log), sleeper(3, &log));
        CHECK(describe(r) == "#1 2");
        // Both losers were cancelled and had finished before race returned.
        CHECK(log == log_t{"quick 2", "cancelled 1", "cancelled 3"});
        CHECK(coio::event_loop::running().stats().timers == 0);
    }());
}

TEST_CASE("race of void awaitables gives std::monostate", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::event e;
        e.set();
        auto r = co_await coio::race(coio::sleep(long_sleep), e.wait());
        CHECK(describe(r) == "#1 done");
        auto r2 = co_await coio::race(sleeper(1, &log), coio::sleep(1ms));
        CHECK(describe(r2) == "#1 done");
        CHECK(log == log_t{"cancelled 1"});
    }());
}

TEST_CASE("race waits for a loser that winds down slowly", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        coio::event stopping;
        auto r = co_await coio::race(slow_to_stop(&log, &stopping, 3ms), quick(7, &log));
        CHECK(describe(r) == "#1 7");
        CHECK(log == log_t{"quick 7", "cleanup begins", "cleanup done"});
    }());
}

TEST_CASE("race rethrows the winner's exception after the losers finished", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        auto r = co_await attempt(coio::race(sleeper(1, &log), fail_soon()));
        CHECK(r == "exception: boom");
        CHECK(log == log_t{"cancelled 1"});
    }());
}

TEST_CASE("race drops a loser's exception", "[race]") {
    run_clean([]() -> task<> {
        auto raise_on_cancel = []() -> task<int> {
            try {
                co_await coio::sleep(long_sleep);
            } catch (const coio::cancelled_error&) {
                throw std::runtime_error("raised on cancel");
            }
            co_return 0;
        };
        log_t log;
        auto r = co_await coio::race(raise_on_cancel(), quick(4, &log));
        CHECK(describe(r) == "#1 4");
    }());
}

TEST_CASE("the range form returns the winner's index and value", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        std::vector<task<int>> v;
        v.push_back(sleeper(0, &log));
        v.push_back(sleeper(1, &log));
        v.push_back(quick(2, &log));
        coio::race_result<int> r = co_await coio::race(std::move(v));
        CHECK(r.index == 2);
        CHECK(r.value == 2);
        CHECK(log == log_t{"quick 2", "cancelled 0", "cancelled 1"});

        std::vector<coio::detail::sleep_awaiter> sleeps;
        sleeps.push_back(coio::sleep(long_sleep));
        sleeps.push_back(coio::sleep(1ms));
        auto r2 = co_await coio::race(std::move(sleeps));
        CHECK(r2.index == 1);
    }());
}

TEST_CASE("racing nothing throws std::invalid_argument", "[race]") {
    run_clean([]() -> task<> {
        std::vector<task<int>> none;
        auto r = co_await attempt(coio::race(std::move(none)));
        CHECK(r == "exception: coio::race: no awaitables to race");
    }());
}

TEST_CASE("cancelling the caller cancels every child and throws after they finished", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        auto caller = [](log_t* l) -> task<> {
            auto r = co_await coio::race(sleeper(1, l), sleeper(2, l));
            l->push_back("not reached " + std::to_string(r.index()));
        };
        auto h = coio::create_task(caller(&log));
        co_await coio::yield_now(); // the caller is in race
        co_await coio::yield_now(); // the children are asleep
        h.cancel();
        auto r = co_await outcome(h);
        CHECK(r == "cancelled_error");
        CHECK(log == log_t{"cancelled 1", "cancelled 2"});

        auto h2 = coio::create_task(caller(&log));
        h2.cancel(); // pending before race: no child starts
        auto r2 = co_await outcome(h2);
        CHECK(r2 == "cancelled_error");
        CHECK(log.size() == 2);
    }());
}

TEST_CASE("a caller cancelled after the winner finished gets the value, then the cancel",
          "[race]") {
    // cancel_slot rule 3: the race ended with a real value, so it is returned
    // and the request waits for the caller's next await.
    run_clean([]() -> task<> {
        log_t log;
        coio::event stopping;
        auto caller = [](log_t* l, coio::event* s) -> task<> {
            // The loser's wind-down lasts 10 s: only the caller's cancel ends
            // it (a short one could end by itself before the cancel on a busy
            // machine, as it did once under ASan).
            auto r = co_await coio::race(slow_to_stop(l, s, long_sleep), quick(5, l));
            l->push_back("race returned " + describe(r));
            co_await coio::yield_now(); // throws the pending cancel
            l->push_back("not reached");
        };
        auto h = coio::create_task(caller(&log, &stopping));
        co_await stopping.wait(); // the winner finished, the loser is winding down
        h.cancel();
        auto r = co_await outcome(h);
        CHECK(r == "cancelled_error");
        // The caller's cancel reached the loser's wind-down too.
        CHECK(log == log_t{"quick 5", "cleanup begins", "race returned #1 5"});
    }());
}

TEST_CASE("race drops a value a loser produced anyway; race_all_results keeps it", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        auto r = co_await coio::race(stubborn(1), quick(2, &log));
        CHECK(describe(r) == "#1 2"); // stubborn's 1 was dropped

        auto all = co_await coio::race_all_results(stubborn(1), quick(2, &log), sleeper(3, &log));
        CHECK(all.winner == 1);
        CHECK(std::get<0>(all.results).value() == 1); // the loser's value is kept
        CHECK(std::get<1>(all.results).value() == 2);
        CHECK(coio::detail::ended_cancelled(std::get<2>(all.results)));

        std::vector<task<int>> v;
        v.push_back(stubborn(10));
        v.push_back(fail_soon());
        auto all2 = co_await coio::race_all_results(std::move(v));
        CHECK(all2.winner == 1);
        CHECK(all2.results[0].value() == 10);
        CHECK(all2.results[1].has_exception()); // not thrown
    }());
}

TEST_CASE("race_all_results of a cancelled caller returns values that came anyway", "[race]") {
    run_clean([]() -> task<> {
        auto caller = [](log_t* l) -> task<std::string> {
            auto all = co_await coio::race_all_results(stubborn(8), sleeper(9, l));
            co_return "winner " + std::to_string(all.winner) + " value " +
                std::to_string(std::get<0>(all.results).value());
        };
        log_t log;
        auto h = coio::create_task(caller(&log));
        co_await coio::yield_now();
        co_await coio::yield_now();
        h.cancel(); // both children are cancelled; stubborn returns 8 anyway
        auto r = co_await outcome(h);
        CHECK(r == "value winner 0 value 8");
        CHECK(h.cancelling() == 1); // the request is still pending
    }());
}

TEST_CASE("racing task handles cancels the losing task; shield keeps it running", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        auto a = coio::create_task(sleeper(1, &log));
        auto b = coio::create_task(quick(2, &log));
        auto r = co_await coio::race(a, b);
        CHECK(describe(r) == "#1 2");
        CHECK(a.cancelled());

        auto c = coio::create_task(sleeper(3, &log));
        auto r2 = co_await coio::race(coio::shield(c), coio::sleep(1ms));
        CHECK(describe(r2) == "#1 done");
        CHECK_FALSE(c.done()); // the shielded task was not cancelled
        c.cancel();
        auto rc = co_await outcome(c);
        CHECK(rc == "cancelled_error");
    }());
}

TEST_CASE("race inside wait_for and gather", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        auto r = co_await coio::wait_for(coio::race(sleeper(1, &log), quick(2, &log)), long_sleep);
        CHECK(describe(r) == "#1 2");
        auto t =
            co_await attempt(coio::wait_for(coio::race(sleeper(3, &log), sleeper(4, &log)), 2ms));
        CHECK(t == "timeout_error");
        auto [x, y] = co_await coio::gather(coio::race(quick(5, &log), sleeper(6, &log)),
                                            coio::race(sleeper(7, &log), quick(8, &log)));
        CHECK(describe(x) == "#0 5");
        CHECK(describe(y) == "#1 8");
    }());
}

TEST_CASE("many races in a row leave nothing behind", "[race]") {
    run_clean([]() -> task<> {
        log_t log;
        int sum = 0;
        for (int i = 0; i < 1000; ++i) {
            auto r = co_await coio::race(sleeper(0, &log), quick(1, &log));
            sum += std::get<1>(r);
        }
        CHECK(sum == 1000);
        CHECK(coio::event_loop::running().stats().timers == 0);
    }());
}
