// tests/shuffle_test.cpp - seeded order (event_loop::set_shuffle_seed;
// RELIABILITY 37): time-based scenarios on paused time, each run under 10
// seeds. For every seed they must pass; the same seed must give the same
// trace; the seeds must not all give the FIFO order (the shuffle works);
// seed 0 is FIFO.
//
// The scenario: 24 tasks sleep until one of four deadlines (ties on
// purpose), each woken task records its id and checks it woke at its own
// deadline; a wait_for times out at exactly 5 s; a stream's read_timeout
// fires at exactly 45 s against a silent peer; a task_group's children
// finish in some order and the group ends when the last one does.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

struct trace {
    std::vector<int> woke;            // sleeper ids, in wake order
    int late = 0;                     // sleepers that did not wake at their deadline
    steady::duration wait_for_took{}; // the wait_for's timeout, on the loop's clock
    bool wait_for_timed_out = false;
    steady::duration read_took{};
    bool read_timed_out = false;
    std::vector<int> group_done; // task_group children, in finish order
};

coio::task<> sleeper(steady::time_point until, int id, trace* t) {
    co_await coio::sleep_until(until);
    if (coio::now() != until) {
        ++t->late;
    }
    t->woke.push_back(id);
}

coio::task<> forever() {
    coio::event never;
    co_await never.wait();
}

coio::task<> child(int id, trace* t) {
    co_await coio::sleep(std::chrono::milliseconds(id % 3));
    co_await coio::yield_now();
    t->group_done.push_back(id);
}

coio::task<> scenario(std::uint64_t seed, trace* t) {
    coio::event_loop& loop = coio::event_loop::running();
    loop.set_shuffle_seed(seed);
    CHECK(loop.shuffle_seed() == seed);
    loop.pause_time();
    const steady::time_point t0 = coio::now();
    std::vector<coio::task_handle<>> sleepers;
    for (int i = 0; i < 24; ++i) {
        sleepers.push_back(coio::create_task(sleeper(t0 + (1 + i % 4) * 1s, i, t)));
    }
    // A timeout, while the sleepers wait.
    const steady::time_point w0 = coio::now();
    try {
        co_await coio::wait_for(forever(), 5s);
    } catch (const coio::timeout_error&) {
        t->wait_for_timed_out = true;
    }
    t->wait_for_took = coio::now() - w0;
    for (coio::task_handle<>& h : sleepers) {
        co_await h;
    }
    // A stream's read timeout against a silent peer.
    coio::test::socket_pair sp = coio::test::unix_pair(); // sp.client never writes
    coio::stream_options o;
    o.read_timeout = 45s;
    coio::stream_pair s = coio::make_streams(std::move(sp.accepted), o);
    const steady::time_point r0 = coio::now();
    try {
        (void)co_await s.reader.readline();
    } catch (const coio::net_error&) {
        t->read_timed_out = true;
    }
    t->read_took = coio::now() - r0;
    s.writer.close();
    // A task group: it ends when its last child does, whatever the order.
    {
        coio::task_group g;
        for (int i = 0; i < 12; ++i) {
            g.create_task(child(i, t));
        }
        co_await g.wait();
    }
    loop.set_shuffle_seed(0);
}

trace run_seed(std::uint64_t seed) {
    trace t;
    coio::test::run_clean(scenario(seed, &t));
    return t;
}

// What must hold for every seed.
void check_invariants(const trace& t, std::uint64_t seed) {
    INFO("seed " << seed);
    CHECK(t.late == 0);
    REQUIRE(t.woke.size() == 24);
    CHECK(std::set<int>(t.woke.begin(), t.woke.end()).size() == 24);
    for (std::size_t i = 1; i < t.woke.size(); ++i) {
        CHECK(t.woke[i - 1] % 4 <= t.woke[i] % 4); // deadline order; ties in any order
    }
    CHECK(t.wait_for_timed_out);
    CHECK(t.wait_for_took == 5s);
    CHECK(t.read_timed_out);
    CHECK(t.read_took == 45s);
    CHECK(t.group_done.size() == 12);
    CHECK(std::set<int>(t.group_done.begin(), t.group_done.end()).size() == 12);
}

} // namespace

TEST_CASE("seed 0 is FIFO: sleepers with one deadline wake in the order they started",
          "[shuffle]") {
    const trace t = run_seed(0);
    check_invariants(t, 0);
    std::vector<int> fifo;
    for (int d = 0; d < 4; ++d) {
        for (int i = d; i < 24; i += 4) {
            fifo.push_back(i);
        }
    }
    CHECK(t.woke == fifo);
}

TEST_CASE("10 seeds: the time-based scenario passes for each, the same seed gives the same "
          "trace, and the seeds change the order",
          "[shuffle]") {
    std::set<std::vector<int>> orders;
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
        const trace a = run_seed(seed);
        check_invariants(a, seed);
        const trace b = run_seed(seed);
        INFO("seed " << seed);
        CHECK(a.woke == b.woke);
        CHECK(a.group_done == b.group_done);
        orders.insert(a.woke);
    }
    CHECK(orders.size() > 1);
    CHECK(orders.count(run_seed(0).woke) == 0); // no seed gave the FIFO order by chance here
}
