// tests/paused_clock_test.cpp - paused time (event_loop::pause_time,
// coio::now(); RELIABILITY 37): time-based code runs in no real time, in a
// fixed order, and the same every run.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

// Real time a test may take: far below what its timers add up to.
constexpr auto real_budget = 2s;

coio::task<> sleeper(std::chrono::milliseconds d, int id, std::vector<int>* order) {
    co_await coio::sleep(d);
    order->push_back(id);
}

coio::task<> hour_long_sleep(steady::duration* virtual_took) {
    coio::event_loop::running().pause_time();
    CHECK(coio::event_loop::running().time_paused());
    const steady::time_point t0 = coio::now();
    co_await coio::sleep(1h);
    *virtual_took = coio::now() - t0;
}

coio::task<> timer_order(std::vector<int>* order) {
    coio::event_loop::running().pause_time();
    std::vector<coio::task_handle<>> hs;
    // Equal deadlines fire in start order; the rest by deadline.
    hs.push_back(coio::create_task(sleeper(300s, 1, order)));
    hs.push_back(coio::create_task(sleeper(100s, 2, order)));
    hs.push_back(coio::create_task(sleeper(100s, 3, order)));
    hs.push_back(coio::create_task(sleeper(200s, 4, order)));
    hs.push_back(coio::create_task(sleeper(0s, 5, order)));
    for (coio::task_handle<>& h : hs) {
        co_await h;
    }
}

coio::task<> never_done() {
    coio::event never;
    co_await never.wait();
}

coio::task<> wait_for_times_out(bool* timed_out, steady::duration* virtual_took) {
    coio::event_loop::running().pause_time();
    const steady::time_point t0 = coio::now();
    try {
        co_await coio::wait_for(never_done(), 30s);
    } catch (const coio::timeout_error&) {
        *timed_out = true;
    }
    *virtual_took = coio::now() - t0;
}

coio::task<> thousand_ticks(std::vector<steady::duration>* ticks) {
    coio::event_loop::running().pause_time();
    const steady::time_point t0 = coio::now();
    coio::interval every(1s);
    for (int i = 0; i < 1000; ++i) {
        const steady::time_point due = co_await every.tick();
        ticks->push_back(due - t0);
    }
}

coio::task<> advance_and_resume(std::vector<std::string>* log) {
    coio::event_loop& loop = coio::event_loop::running();
    loop.pause_time();
    const steady::time_point t0 = coio::now();
    coio::timer_handle call = coio::call_later(10s, [log] { log->push_back("call_later"); });
    loop.advance_time(10s); // due now: fires on the next iteration
    CHECK(coio::now() - t0 == 10s);
    co_await coio::yield_now();
    log->push_back("after yield");
    loop.resume_time(); // runs again, from where it was paused
    CHECK_FALSE(loop.time_paused());
    const steady::duration since = coio::now() - t0;
    CHECK(since >= 10s);
    CHECK(since < 10s + real_budget);
    co_await coio::sleep(1ms); // real time again
    (void)call;
}

coio::task<> sleep_an_hour() {
    co_await coio::sleep(1h);
}

int slow_job() {
    std::this_thread::sleep_for(50ms);
    return 7;
}

// Work outside the loop (a thread-pool job) is waited for in real time:
// the clock does not jump past it to the hour-long timer.
coio::task<> outside_work(int* value, steady::duration* virtual_took) {
    coio::event_loop::running().pause_time();
    const steady::time_point t0 = coio::now();
    coio::task_handle<> hour = coio::create_task(sleep_an_hour());
    *value = co_await coio::to_thread(slow_job);
    *virtual_took = coio::now() - t0;
    hour.cancel();
    try {
        co_await hour;
    } catch (const coio::cancelled_error&) {
    }
}

// A stream's read_timeout against a silent peer: I/O is polled, the peer
// (a socket nobody writes to) has nothing, so time jumps to the timeout.
coio::task<> silent_peer(std::string* error, steady::duration* virtual_took) {
    coio::event_loop::running().pause_time();
    coio::test::socket_pair sp = coio::test::unix_pair(); // sp.client never writes
    coio::stream_options o;
    o.read_timeout = 45s;
    coio::stream_pair s = coio::make_streams(std::move(sp.accepted), o);
    const steady::time_point t0 = coio::now();
    try {
        std::string line = co_await s.reader.readline();
        (void)line;
    } catch (const coio::net_error& e) {
        *error = e.what();
    }
    *virtual_took = coio::now() - t0;
    s.writer.close();
}

coio::task<> produce_later(coio::channel_sender<int> tx) {
    co_await coio::sleep(10s);
    const bool sent = co_await tx.send(42);
    CHECK(sent);
}

// Regression (review of the first version, both backends): a task parked on
// a channel counted as outside work, so the loop waited in real time for
// ever instead of jumping to the producer's timer.
coio::task<> channel_consumer(int* got, steady::duration* virtual_took) {
    coio::event_loop::running().pause_time();
    const steady::time_point t0 = coio::now();
    auto [tx, rx] = coio::channel<int>(1);
    coio::task_handle<> producer = coio::create_task(produce_later(std::move(tx)));
    std::optional<int> v = co_await rx.recv();
    *got = v.value_or(-1);
    *virtual_took = coio::now() - t0;
    co_await producer;
}

coio::task<std::vector<int>> racing_timers(unsigned seed) {
    coio::event_loop::running().pause_time();
    std::vector<int> order;
    std::vector<coio::task_handle<>> hs;
    for (int i = 0; i < 200; ++i) {
        const auto d =
            std::chrono::milliseconds((seed * 7919U + static_cast<unsigned>(i) * 104729U) % 5000U);
        hs.push_back(coio::create_task(sleeper(d, i, &order)));
    }
    for (coio::task_handle<>& h : hs) {
        co_await h;
    }
    co_return order;
}

} // namespace

TEST_CASE("paused time: an hour-long sleep takes no real time and the clock moves by exactly an "
          "hour",
          "[clock]") {
    const steady::time_point start = steady::now();
    steady::duration took{};
    coio::test::run_clean(hour_long_sleep(&took));
    CHECK(took == 1h);
    CHECK(steady::now() - start < real_budget);
}

TEST_CASE("paused time: timers fire in deadline order, equal deadlines in start order", "[clock]") {
    std::vector<int> order;
    coio::test::run_clean(timer_order(&order));
    CHECK(order == std::vector<int>{5, 2, 3, 4, 1});
}

TEST_CASE("paused time: wait_for on something that never finishes times out at once in real "
          "time, after exactly its timeout on the loop's clock",
          "[clock]") {
    const steady::time_point start = steady::now();
    bool timed_out = false;
    steady::duration took{};
    coio::test::run_clean(wait_for_times_out(&timed_out, &took));
    CHECK(timed_out);
    CHECK(took == 30s);
    CHECK(steady::now() - start < real_budget);
}

TEST_CASE("paused time: an interval ticks 1,000 times, each exactly on its period", "[clock]") {
    const steady::time_point start = steady::now();
    std::vector<steady::duration> ticks;
    coio::test::run_clean(thousand_ticks(&ticks));
    REQUIRE(ticks.size() == 1000);
    for (std::size_t i = 0; i < ticks.size(); ++i) {
        REQUIRE(ticks[i] == std::chrono::seconds(i + 1));
    }
    CHECK(steady::now() - start < real_budget);
}

TEST_CASE("advance_time fires what became due on the next iteration; resume_time continues "
          "from the paused reading",
          "[clock]") {
    std::vector<std::string> log;
    coio::test::run_clean(advance_and_resume(&log));
    CHECK(log == std::vector<std::string>{"call_later", "after yield"});
}

TEST_CASE("paused time does not jump past work outside the loop (to_thread)", "[clock]") {
    int value = 0;
    steady::duration took{};
    coio::test::run_clean(outside_work(&value, &took));
    CHECK(value == 7);
    CHECK(took == 0s); // the hour-long timer was not jumped to while the job ran
}

TEST_CASE("paused time: a task waiting on a channel does not hold the clock; the producer's "
          "timer fires",
          "[clock]") {
    const steady::time_point start = steady::now();
    int got = 0;
    steady::duration took{};
    coio::test::run_clean(channel_consumer(&got, &took));
    CHECK(got == 42);
    CHECK(took == 10s);
    CHECK(steady::now() - start < real_budget);
}

TEST_CASE("paused time: a stream's read_timeout against a silent peer fires without waiting",
          "[clock][net]") {
    const steady::time_point start = steady::now();
    std::string error;
    steady::duration took{};
    coio::test::run_clean(silent_peer(&error, &took));
    CHECK_THAT(error, Catch::Contains("read_timeout"));
    CHECK(took == 45s);
    CHECK(steady::now() - start < real_budget);
}

TEST_CASE("paused time: 200 timers give the same order on every run, the order of their "
          "deadlines",
          "[clock]") {
    for (unsigned seed = 1; seed <= 10; ++seed) {
        const std::vector<int> a = coio::test::run_clean(racing_timers(seed));
        const std::vector<int> b = coio::test::run_clean(racing_timers(seed));
        REQUIRE(a.size() == 200);
        CHECK(a == b);
    }
}
