// tests/thread_test.cpp - to_thread, call_soon_threadsafe and DNS on the pool.
// Also run under ThreadSanitizer by scripts/test.
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/net/pipe.hpp>
#include <coio/net/resolve.hpp>
#include <coio/to_thread.hpp>

#include <netdb.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using coio::test::run_clean;

namespace {

int add(int a, int b) {
    return a + b;
}

coio::task<> value_and_exception() {
    int v = co_await coio::to_thread(add, 2, 40);
    CHECK(v == 42);
    auto throws = [] { throw std::runtime_error("from the pool"); };
    bool caught = false;
    try {
        co_await coio::to_thread(throws);
    } catch (const std::runtime_error& e) {
        caught = std::string(e.what()) == "from the pool";
    }
    CHECK(caught);
    // Move-only arguments are moved into the job.
    auto size = [](std::unique_ptr<std::string> s) { return s->size(); };
    std::size_t n = co_await coio::to_thread(size, std::make_unique<std::string>("four"));
    CHECK(n == 4);
    // The work really runs on another thread.
    auto id = [] { return std::this_thread::get_id(); };
    std::thread::id worker = co_await coio::to_thread(id);
    CHECK(worker != std::this_thread::get_id());
}

// Spins until `flag` is set or a generous deadline passes; returns whether set.
bool wait_flag(const std::atomic<bool>* flag) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!flag->load()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::yield();
    }
    return true;
}

coio::task<> ticker(std::atomic<bool>* flag, int* ticks) {
    for (*ticks = 0; *ticks < 50; ++*ticks) {
        co_await coio::yield_now();
    }
    flag->store(true); // only reachable if the loop kept running during the job
}

coio::task<> loop_stays_responsive() {
    std::atomic<bool> flag{false};
    int ticks = 0;
    auto [ok, none] =
        co_await coio::gather(coio::to_thread(wait_flag, &flag), ticker(&flag, &ticks));
    (void)none;
    CHECK(ok);
    CHECK(ticks == 50);
}

bool meet(std::atomic<int>* arrived, int expect) {
    arrived->fetch_add(1);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (arrived->load() < expect) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::yield();
    }
    return true;
}

coio::task<> jobs_run_in_parallel() {
    // Two jobs that each wait for the other: only a pool that runs them at the
    // same time lets both return true.
    std::atomic<int> arrived{0};
    auto [a, b] = co_await coio::gather(coio::to_thread(meet, &arrived, 2),
                                        coio::to_thread(meet, &arrived, 2));
    CHECK(a);
    CHECK(b);
    CHECK(coio::thread_pool_size() >= 2);
}

bool wait_shared_flag(std::shared_ptr<std::atomic<bool>> flag) {
    return wait_flag(flag.get());
}

coio::task<> cancel_while_running() {
    // The job outlives this coroutine's frame (destroyed when it finishes), so
    // the flag it reads is shared with it, not a local of this frame.
    auto release = std::make_shared<std::atomic<bool>>(false);
    auto h = coio::create_task(coio::to_thread(wait_shared_flag, release));
    co_await coio::yield_now();
    h.cancel();
    bool cancelled = false;
    try {
        co_await h;
    } catch (const coio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);     // at once, while the job still runs
    release->store(true); // run_clean then waits for the job to come back
}

int forty_two() {
    return 42;
}

// Cancels *target in the loop iteration that posts target's to_thread waiter
// with the job's result. Only this task and the waiter are runnable, and the
// job's completion callback runs before the ready handles of its iteration
// (loop phase 4), so a non-empty ready queue when this task runs means the
// waiter was just posted, behind this task.
coio::task<> cancel_once_posted(coio::task_handle<int>* target, bool* hit) {
    for (int i = 0; i < 10'000'000; ++i) {
        if (coio::event_loop::running().stats().ready > 0) {
            target->cancel();
            *hit = true;
            co_return;
        }
        co_await coio::yield_now();
    }
}

coio::task<> cancel_after_result_posted() {
    bool hit = false;
    coio::task_handle<int> job = coio::create_task(coio::to_thread(forty_two));
    coio::task_handle<> canceller = coio::create_task(cancel_once_posted(&job, &hit));
    co_await canceller;
    REQUIRE(hit);
    // The result had come back: it is delivered, once, and the cancel request
    // stays pending for a next await the job's task does not have.
    int v = 0;
    bool cancelled = false;
    try {
        v = co_await job;
    } catch (const coio::cancelled_error&) {
        cancelled = true;
    }
    CHECK_FALSE(cancelled);
    CHECK(v == 42);
}

coio::task<> threadsafe_callbacks() {
    std::atomic<int> ran{0};
    auto& loop = coio::event_loop::running();
    std::thread t([&] {
        for (int i = 0; i < 1000; ++i) {
            loop.call_soon_threadsafe([&ran] { ran.fetch_add(1); });
        }
    });
    while (ran.load() < 1000) {
        co_await coio::sleep(1ms);
    }
    t.join();
    CHECK(ran.load() == 1000);
}

// A thread and the loop take turns: the loop waits (asleep in the backend,
// or still about to sleep) each time the thread posts, so every post must
// wake it (lib/loop_wait.cpp). A lost wake-up leaves it asleep: the 10 s
// bound then ends the wait and the test fails. With busy_poll the loop is
// spinning when most posts come, and none may be missed either.
coio::task<> ping_pong_wakes(std::chrono::nanoseconds busy) {
    auto& loop = coio::event_loop::running();
    loop.set_busy_poll(busy);
    CHECK(loop.busy_poll() == busy);
    constexpr int turns = 5000;
    coio::event answered;
    std::atomic<int> turn{0};
    std::atomic<bool> stop{false};
    std::thread t([&] {
        for (int i = 1; i <= turns; ++i) {
            while (turn.load() != i) {
                if (stop.load()) {
                    return;
                }
                std::this_thread::yield();
            }
            loop.call_soon_threadsafe([&answered] { answered.set(); });
        }
    });
    int lost_at = 0;
    for (int i = 1; i <= turns && lost_at == 0; ++i) {
        answered.clear();
        turn.store(i);
        try {
            co_await coio::wait_for(answered.wait(), 10s);
        } catch (const coio::timeout_error&) {
            lost_at = i;
        }
    }
    stop.store(true);
    t.join();
    CHECK(lost_at == 0);
    CHECK(loop.stats().wakeups <= static_cast<std::uint64_t>(turns));
    loop.set_busy_poll(0ns);
}

// A loop that is running when another thread posts is not woken: the posts
// cost no eventfd write (lib/loop_wait.cpp), and still all run.
coio::task<> running_loop_not_woken() {
    auto& loop = coio::event_loop::running();
    constexpr int posts = 1000;
    std::atomic<int> ran{0};
    std::atomic<bool> go{false};
    std::atomic<bool> posted{false};
    std::thread t([&] {
        while (!go.load()) {
            std::this_thread::yield();
        }
        for (int i = 0; i < posts; ++i) {
            loop.call_soon_threadsafe([&ran] { ran.fetch_add(1); });
        }
        posted.store(true);
    });
    const std::uint64_t before = loop.stats().wakeups;
    go.store(true);
    CHECK(wait_flag(&posted)); // the loop runs this task all along: it never sleeps
    t.join();
    while (ran.load() < posts) {
        co_await coio::yield_now();
    }
    CHECK(loop.stats().wakeups == before);
}

// With a long busy poll set, a timer and I/O from another thread still end
// the spin at once: neither waits for the 10 s the loop may spin.
coio::task<> busy_poll_serves_timers_and_io() {
    auto& loop = coio::event_loop::running();
    loop.set_busy_poll(10s);
    const auto t0 = std::chrono::steady_clock::now();
    co_await coio::sleep(20ms);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);

    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    coio::stream_reader in = coio::connect_read_pipe(fds[0]);
    std::atomic<bool> reading{false};
    std::atomic<long> wrote{0}; // checked after the join: Catch's CHECK is not thread-safe
    std::thread writer([&] {
        while (!reading.load()) {
            std::this_thread::yield();
        }
        wrote.store(::write(fds[1], "x\n", 2));
        ::close(fds[1]);
    });
    const auto t1 = std::chrono::steady_clock::now();
    reading.store(true);
    std::string line = co_await in.readline();
    writer.join();
    CHECK(wrote.load() == 2);
    CHECK(line == "x\n");
    CHECK(std::chrono::steady_clock::now() - t1 < 5s);
    co_await in.readline(); // EOF: the pipe reader is done
    loop.set_busy_poll(0ns);
}

coio::task<> localhost_resolves_and_connects() {
    std::vector<coio::address> addrs = co_await coio::resolve("localhost", 80);
    REQUIRE_FALSE(addrs.empty());
    bool loopback = false;
    for (const auto& a : addrs) {
        loopback = loopback || a.host() == "127.0.0.1" || a.host() == "::1";
        CHECK(a.port() == 80);
    }
    CHECK(loopback);
    // A server on 127.0.0.1 reached by name.
    auto echo_once = [](coio::stream_reader r, coio::stream_writer w) -> coio::task<> {
        std::string line = co_await r.readline();
        w.write(line);
        co_await w.drain();
        w.close();
    };
    coio::server srv = co_await coio::start_server(echo_once, "127.0.0.1", 0);
    std::vector<coio::address> v4 = co_await coio::resolve("127.0.0.1", srv.port());
    CHECK(v4.size() == 1);
    auto [r, w] = co_await coio::open_connection("localhost", srv.port());
    w.write("hello\n");
    std::string back = co_await r.readline();
    CHECK(back == "hello\n");
    w.close();
    srv.close();
    co_await srv.wait_closed();
}

} // namespace

TEST_CASE("to_thread returns the value or the exception of the call", "[thread]") {
    run_clean(value_and_exception());
}

TEST_CASE("the loop keeps running while to_thread works", "[thread]") {
    run_clean(loop_stays_responsive());
}

TEST_CASE("to_thread jobs run in parallel on the pool", "[thread]") {
    run_clean(jobs_run_in_parallel());
}

TEST_CASE("cancelling a to_thread await throws at once and run waits for the job", "[thread]") {
    run_clean(cancel_while_running());
}

TEST_CASE("a cancel that arrives after to_thread's result was posted resumes the task once",
          "[thread]") {
    run_clean(cancel_after_result_posted());
}

TEST_CASE("call_soon_threadsafe from another thread runs every callback", "[thread]") {
    run_clean(threadsafe_callbacks());
}

TEST_CASE("call_soon_threadsafe wakes the loop for every post of a ping-pong", "[thread]") {
    run_clean(ping_pong_wakes(0ns));
}

TEST_CASE("call_soon_threadsafe reaches a busy-polling loop for every post of a ping-pong",
          "[thread]") {
    run_clean(ping_pong_wakes(1ms));
}

TEST_CASE("call_soon_threadsafe does not wake a loop that is running", "[thread]") {
    run_clean(running_loop_not_woken());
}

TEST_CASE("a busy-polling loop still fires timers and completes I/O at once", "[thread]") {
    run_clean(busy_poll_serves_timers_and_io());
}

TEST_CASE("localhost resolves off the loop and open_connection tries its addresses",
          "[thread][dns]") {
    run_clean(localhost_resolves_and_connects());
}

TEST_CASE("DNS errors carry getaddrinfo's text", "[dns]") {
    std::error_code ec(EAI_NONAME, coio::dns_category());
    CHECK(std::string(coio::dns_category().name()) == "dns");
    CHECK(ec.message() == ::gai_strerror(EAI_NONAME));
    coio::net_error e(ec, "resolve nosuch.example:80");
    CHECK_THAT(std::string(e.what()),
               Catch::Contains("nosuch.example:80") && Catch::Contains(::gai_strerror(EAI_NONAME)));
}
