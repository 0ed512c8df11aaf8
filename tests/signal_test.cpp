// tests/signal_test.cpp - signals delivered to the loop.
#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/signal.hpp>

#include <csignal>
#include <thread>

#include <sys/types.h>
#include <unistd.h>

using coio::test::run_clean;

namespace {

bool handler_is(int signo, void (*h)(int)) {
    struct sigaction cur {};
    ::sigaction(signo, nullptr, &cur);
    return cur.sa_handler == h;
}

coio::task<> wait_returns_the_signal() {
    coio::signal_set set{SIGUSR1, SIGUSR2};
    CHECK_FALSE(handler_is(SIGUSR1, SIG_DFL));
    ::kill(::getpid(), SIGUSR2);
    int first = co_await set.wait();
    CHECK(first == SIGUSR2);
    ::kill(::getpid(), SIGUSR1);
    ::kill(::getpid(), SIGUSR1);
    int second = co_await set.wait();
    CHECK(second == SIGUSR1);
    // Signals of the same number may merge in the kernel while pending, so
    // only check that no other number shows up.
    while (set.pending() > 0) {
        int more = co_await set.wait();
        CHECK(more == SIGUSR1);
    }
}

coio::task<> handler_runs_on_the_loop() {
    int calls = 0;
    const auto loop_thread = std::this_thread::get_id();
    bool on_loop_thread = true;
    coio::add_signal_handler(SIGUSR1, [&] {
        ++calls;
        on_loop_thread = on_loop_thread && std::this_thread::get_id() == loop_thread;
    });
    // A signal sent from another thread is handled on the loop thread.
    std::thread t([] { ::kill(::getpid(), SIGUSR1); });
    t.join();
    while (calls == 0) {
        co_await coio::yield_now();
    }
    CHECK(calls >= 1);
    CHECK(on_loop_thread);
    CHECK(coio::remove_signal_handler(SIGUSR1));
    CHECK_FALSE(coio::remove_signal_handler(SIGUSR1));
    CHECK(handler_is(SIGUSR1, SIG_DFL));
}

coio::task<> cancel_a_wait() {
    coio::signal_set set{SIGUSR2};
    auto h = coio::create_task(set.wait());
    co_await coio::yield_now();
    h.cancel();
    bool cancelled = false;
    try {
        co_await h;
    } catch (const coio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
}

} // namespace

TEST_CASE("signal_set::wait returns the signals that arrive", "[signal]") {
    run_clean(wait_returns_the_signal());
    // Dispositions are restored when the last catcher goes.
    CHECK(handler_is(SIGUSR1, SIG_DFL));
    CHECK(handler_is(SIGUSR2, SIG_DFL));
}

TEST_CASE("add_signal_handler runs the callback on the loop thread", "[signal]") {
    run_clean(handler_runs_on_the_loop());
}

TEST_CASE("a signal wait is a cancellation point", "[signal]") {
    run_clean(cancel_a_wait());
    CHECK(handler_is(SIGUSR2, SIG_DFL));
}

TEST_CASE("a handler left registered is removed when the loop ends", "[signal]") {
    auto leave_it = []() -> coio::task<> {
        coio::add_signal_handler(SIGUSR1, [] {});
        co_return;
    };
    run_clean(leave_it());
    CHECK(handler_is(SIGUSR1, SIG_DFL));
    CHECK_FALSE(coio::remove_signal_handler(SIGUSR1));
}
