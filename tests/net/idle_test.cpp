// tests/net/idle_test.cpp - an idle server costs no CPU (RELIABILITY 5): a
// level-triggered busy loop or a zero-timeout wait would show here.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <sys/resource.h>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using coio::test::run_clean;

namespace {

// CPU time (user + system) of the calling thread: the loop's.
std::chrono::microseconds thread_cpu() {
    rusage ru{};
    ::getrusage(RUSAGE_THREAD, &ru);
    return std::chrono::seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           std::chrono::microseconds(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

coio::task<> sleeper() {
    co_await coio::sleep(10s);
}

coio::task<std::chrono::microseconds> idle_cpu() {
    coio::server srv = co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", 0);
    std::vector<coio::socket> clients;
    for (int i = 0; i < 100; ++i) {
        clients.push_back(co_await coio::connect(srv.local_address()));
        co_await coio::test::expect_echo(&clients.back(), "hi\n"); // handler running
    }
    coio::task_handle<> timer = coio::create_task(sleeper()); // a pending 10 s timer
    co_await coio::yield_now();
    const auto before = thread_cpu();
    co_await coio::sleep(2s); // everything idle
    const auto used = thread_cpu() - before;
    timer.cancel();
    clients.clear();
    srv.close();
    co_await srv.wait_closed();
    co_return used;
}

} // namespace

TEST_CASE("a server with 100 idle connections and a pending timer uses no CPU while idle",
          "[net][idle]") {
    const std::chrono::microseconds used = run_clean(idle_cpu());
    INFO("loop thread CPU over 2 s idle: " << used.count() << " us");
    CHECK(used < 100ms); // RELIABILITY 5: 0.1 s over 5 s; here over 2 s
}
