// tests/debug_mode_test.cpp - the loop's debug mode (event_loop::set_debug,
// COIO_DEBUG): slow callbacks and task steps are reported with the task's
// name, fast ones are not; a task never awaited warns in debug mode only. On
// the backend named by COIO_BACKEND.
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct reports {
    std::vector<std::string> messages;
    std::vector<std::string> task_names;
    [[nodiscard]] int count(const std::string& part) const {
        int n = 0;
        for (const std::string& m : messages) {
            n += m.find(part) != std::string::npos ? 1 : 0;
        }
        return n;
    }
};

// A loop whose exception handler records what it is told.
void watch(coio::event_loop& loop, reports& out) {
    loop.set_exception_handler([&out](const coio::exception_context& ctx) {
        out.messages.emplace_back(ctx.message);
        out.task_names.emplace_back(ctx.task_name);
    });
}

// Holds the loop (a busy step, on purpose) for `d`.
void spin(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

coio::task<void> spin_step(int ms) {
    co_await coio::sleep(1ms);
    spin(std::chrono::milliseconds(ms)); // this step holds the loop
    co_await coio::sleep(1ms);
}

coio::task<void> hog(int ms) {
    co_await spin_step(ms);
}

coio::task<void> polite() {
    for (int i = 0; i < 3; ++i) {
        co_await coio::sleep(1ms);
    }
}

coio::task<int> forty_two() {
    co_return 42;
}

coio::task<void> drop_a_task() {
    coio::task<int> t = forty_two(); // made, never awaited
    co_return;
}

coio::task<void> run_hog_and_polite(int ms) {
    coio::task_handle<void> a = coio::create_task(hog(ms), "hog");
    coio::task_handle<void> b = coio::create_task(polite(), "polite");
    co_await a;
    co_await b;
}

} // namespace

TEST_CASE("in debug mode a task step that holds the loop too long is reported with the task's "
          "name and its innermost coroutine, a fast one is not") {
    reports got;
    {
        coio::event_loop loop;
        loop.set_debug(true);
        loop.set_slow_callback_duration(250ms);
        watch(loop, got);
        loop.run_until_complete(run_hog_and_polite(400));
        coio::test::require_clean(loop);
    }
    REQUIRE(got.count("Executing") == 1);
    CHECK(got.count("task #2 'hog' (in spin_step) took 0.") == 1);
    CHECK(got.task_names.at(0) == "hog");
    CHECK(got.count("polite") == 0);
}

TEST_CASE("without debug mode a slow step is not reported") {
    reports got;
    {
        coio::event_loop loop;
        REQUIRE_FALSE(loop.debug());
        loop.set_slow_callback_duration(250ms);
        watch(loop, got);
        loop.run_until_complete(run_hog_and_polite(400));
    }
    CHECK(got.messages.empty());
}

TEST_CASE("in debug mode a slow callback is reported and a fast one is not") {
    reports got;
    {
        coio::event_loop loop;
        loop.set_debug(true);
        loop.set_slow_callback_duration(250ms);
        watch(loop, got);
        loop.call_soon([] { spin(400ms); });
        loop.call_soon([] {});
        loop.run_until_complete(polite());
    }
    REQUIRE(got.messages.size() == 1);
    CHECK(got.count("Executing a callback took 0.") == 1);
}

TEST_CASE("a task never awaited warns in debug mode and not otherwise") {
    reports on;
    {
        coio::event_loop loop;
        loop.set_debug(true);
        watch(loop, on);
        loop.run_until_complete(drop_a_task());
    }
    REQUIRE(on.messages.size() == 1);
    CHECK(on.count("task of coroutine 'forty_two' was never awaited") == 1);

    reports off;
    {
        coio::event_loop loop;
        watch(loop, off);
        loop.run_until_complete(drop_a_task());
    }
    CHECK(off.messages.empty());
}

TEST_CASE("COIO_DEBUG=1 turns debug mode on for loops made afterwards; 0 leaves it off") {
    REQUIRE(::setenv("COIO_DEBUG", "1", 1) == 0);
    const bool on = coio::event_loop().debug();
    REQUIRE(::setenv("COIO_DEBUG", "0", 1) == 0);
    const bool zero = coio::event_loop().debug();
    REQUIRE(::unsetenv("COIO_DEBUG") == 0);
    CHECK(on);
    CHECK_FALSE(zero);
    CHECK(coio::event_loop().slow_callback_duration() == 100ms);
}
