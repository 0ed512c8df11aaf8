// tests/net/busy_server_test.cpp - a server under a connection burst and
// next to a fast sender (RELIABILITY 19 and 28), on every backend. These are
// bounded checks, not timing targets: every client is served or fails
// cleanly, a 10 ms timer keeps firing, and other clients keep being answered;
// the bounds are loose enough for a loaded machine and sanitizer builds.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio::test::run_clean;

namespace {

// How late a timer or a round trip may be while the server is loaded: the
// checklist's 50 ms, loosened for a loaded machine, and more under the
// sanitizers (a 1.20 s lateness was seen under clang's ASan with four test
// runs on two cores). Still below the 2 s flood of the second test, which a
// starved loop would add in full.
constexpr auto lateness_bound = coio::test::asan_build ? 1500ms : 1000ms;

using clock_type = std::chrono::steady_clock;

double ms(clock_type::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

// A 10 ms periodic timer: how often it fired and how late it was at worst.
struct ticker_stats {
    int ticks = 0;
    clock_type::duration worst = {};
};

// Ticks until *stop.
coio::task<> ticker(ticker_stats* t, const bool* stop) {
    clock_type::time_point due = clock_type::now();
    while (!*stop) {
        due += 10ms;
        co_await coio::sleep_until(due);
        t->worst = std::max(t->worst, clock_type::now() - due);
        ++t->ticks;
        due = std::max(due, clock_type::now() - 10ms); // no burst of catch-up ticks
    }
}

// --- 19. a backlog burst ------------------------------------------------------------------

struct burst_tally {
    int served = 0;
    int timed_out = 0;
    int failed = 0;
};

coio::task<> one_exchange(coio::address at, int i) {
    coio::socket c = co_await coio::connect(at);
    const std::string msg = "client " + std::to_string(i) + "\n";
    co_await coio::test::expect_echo(&c, msg);
}

coio::task<> bounded_client(coio::address at, int i, burst_tally* t) {
    try {
        co_await coio::wait_for(one_exchange(at, i), 8s);
        ++t->served;
    } catch (const coio::timeout_error&) {
        // A clean timeout: the kernel dropped its SYN while the accept queue
        // was full, and the retransmission (1 s, 3 s, 7 s later: all clients
        // at once again) found it full again.
        ++t->timed_out;
    } catch (const coio::net_error&) {
        ++t->failed; // a clean connect error
    }
}

// Clients this process can hold with their accepted ends (2 fds each).
int burst_clients(int wanted) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
    ::getrlimit(RLIMIT_NOFILE, &rl);
    const auto room = static_cast<int>((rl.rlim_cur - 100) / 2);
    return std::min(wanted, room);
}

coio::task<> backlog_burst(int clients) {
    coio::server_options so;
    so.backlog = 16;
    coio::server srv = co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", 0, so);
    ticker_stats ts;
    bool stop = false;
    coio::task_handle<> tick = coio::create_task(ticker(&ts, &stop));
    burst_tally t;
    std::vector<coio::task<>> all;
    for (int i = 0; i < clients; ++i) {
        all.push_back(bounded_client(srv.local_address(), i, &t));
    }
    const auto t0 = clock_type::now();
    co_await coio::gather(std::move(all)); // they all start in the same loop pass
    const auto took = clock_type::now() - t0;
    stop = true;
    co_await tick;
    INFO(clients << " clients: " << t.served << " served, " << t.timed_out << " timed out, "
                 << t.failed << " failed, in " << ms(took) << " ms; timer worst lateness "
                 << ms(ts.worst) << " ms");
    INFO("server: accepted " << srv.stats().accepted << ", accept errors "
                             << srv.stats().accept_errors << ", pauses "
                             << srv.stats().accept_pauses);
    CHECK(t.served + t.timed_out + t.failed == clients);
    CHECK(t.served > 0);
    CHECK(took < 30s); // 8 s per client at most, all at once
    // The accept loop takes a bounded batch per pass: the timer keeps firing.
    CHECK(ts.worst < lateness_bound);
    // A client that timed out may leave an accepted connection the kernel
    // completed after the client had gone (its FIN or RST was dropped while
    // the handshake was not finished): nothing will ever arrive on it, and
    // wait_closed() waits for its handler. The server closes such ones.
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
}

// --- 28. a fast sender next to request/reply clients ----------------------------------------

coio::task<> discard_handler(coio::socket s) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
        coio::io_result r = co_await s.read_some(std::span(buf));
        if (!r) {
            co_return;
        }
    }
}

coio::task<> flood(coio::address at, const bool* stop, std::size_t* sent) {
    coio::socket c = co_await coio::connect(at);
    const std::string block(64 * 1024, 'f');
    while (!*stop) {
        coio::io_result w = co_await c.write_all(block);
        if (!w) {
            break;
        }
        *sent += w.bytes;
    }
}

struct client_stats {
    int round_trips = 0;
    clock_type::duration worst = {};
};

coio::task<> request_reply(coio::address at, const bool* stop, client_stats* cs) {
    coio::socket c = co_await coio::connect(at);
    while (!*stop) {
        const auto t0 = clock_type::now();
        co_await coio::test::expect_echo(&c, "request\n");
        cs->worst = std::max(cs->worst, clock_type::now() - t0);
        ++cs->round_trips;
    }
}

coio::task<> stop_after(bool* stop, clock_type::duration d) {
    co_await coio::sleep(d);
    *stop = true;
}

coio::task<> fast_sender_fairness() {
    coio::server sink = co_await coio::start_server(discard_handler, "127.0.0.1", 0);
    coio::server echo = co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", 0);
    bool stop = false;
    std::size_t flooded = 0;
    ticker_stats ts;
    std::vector<client_stats> clients(10);
    std::vector<coio::task<>> work;
    work.push_back(flood(sink.local_address(), &stop, &flooded));
    work.push_back(ticker(&ts, &stop));
    for (client_stats& cs : clients) {
        work.push_back(request_reply(echo.local_address(), &stop, &cs));
    }
    work.push_back(stop_after(&stop, 2s));
    co_await coio::gather(std::move(work));
    INFO("flooded " << flooded / (1024 * 1024) << " MiB; timer: " << ts.ticks << " ticks, worst "
                    << ms(ts.worst) << " ms");
    CHECK(flooded > 0);
    CHECK(ts.ticks >= 50); // of about 200
    CHECK(ts.worst < lateness_bound);
    for (std::size_t i = 0; i < clients.size(); ++i) {
        INFO("client " << i << ": " << clients[i].round_trips << " round trips, worst "
                       << ms(clients[i].worst) << " ms");
        CHECK(clients[i].round_trips >= 10);
        CHECK(clients[i].worst < lateness_bound);
    }
    sink.close();
    echo.close();
    co_await sink.wait_closed();
    co_await echo.wait_closed();
}

} // namespace

TEST_CASE("2,000 clients at once against a backlog of 16 are each served or fail cleanly, and "
          "timers keep firing",
          "[net][busy]") {
    const int clients = burst_clients(2000);
    INFO("fd limit allows " << clients << " clients");
    REQUIRE(clients >= 200);
    run_clean(backlog_burst(clients));
}

TEST_CASE("a client sending as fast as it can does not starve a 10 ms timer or 10 request/reply "
          "clients",
          "[net][busy]") {
    run_clean(fast_sender_fairness());
}
