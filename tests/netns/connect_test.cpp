// tests/netns/connect_test.cpp - connects that never complete (RELIABILITY 6)
// and a connection that goes silent (the harness for 29), in a network
// namespace of the test's own (run by in_netns.sh; meson suite netns).
//
// SYNs dropped by nftables leave a connect in SYN_SENT: only a timeout, a
// cancel or a close ends it, and each must end it exactly once, at once, with
// the fd closed and nothing left in the loop (run_clean checks both).
#include "netns/netns_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <array>
#include <chrono>

using namespace std::chrono_literals;
using coio::test::run_clean;
namespace netns = coio::test::netns;

namespace {

using clock_type = std::chrono::steady_clock;

// A listener whose port drops SYNs: connects to it never complete.
struct syn_sink {
    coio::socket listener;
    coio::address at;
};

syn_sink make_syn_sink() {
    syn_sink s{coio::socket::open_tcp(coio::address::family::ipv4), {}};
    s.listener.bind(coio::address::loopback_v4(0));
    s.listener.listen(16);
    s.at = s.listener.local_address();
    netns::drop_syn_to(s.at.port());
    return s;
}

coio::task<> connect_times_out() {
    syn_sink sink = make_syn_sink();
    const auto t0 = clock_type::now();
    bool timed_out = false;
    try {
        coio::socket s = co_await coio::wait_for(coio::connect(sink.at), 200ms);
        FAIL("connected to a port that drops SYNs");
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    const auto took = clock_type::now() - t0;
    CHECK(timed_out);
    CHECK(took >= 200ms);
    // RELIABILITY 6 says 200-400 ms; the bound is looser for loaded machines
    // and sanitizer builds: it is about "ends", not about speed.
    CHECK(took < 2s);
    netns::flush();
}

coio::task<> open_connection_times_out() {
    syn_sink sink = make_syn_sink();
    coio::deadline d(200ms);
    bool timed_out = false;
    try {
        coio::stream_pair p = co_await coio::timeout(d, coio::open_connection(sink.at));
        FAIL("connected to a port that drops SYNs");
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    CHECK(d.expired());
    // The same port answers once the rule is gone: nothing was left behind.
    netns::flush();
    coio::socket s = co_await coio::wait_for(coio::connect(sink.at), 5s);
    coio::accept_result a = co_await sink.listener.accept();
    CHECK(a.ok());
}

coio::task<> cancel_while_connecting() {
    syn_sink sink = make_syn_sink();
    const auto t0 = clock_type::now();
    coio::task_handle<coio::socket> h = coio::create_task(coio::connect(sink.at));
    co_await coio::sleep(50ms);
    CHECK(!h.done());
    CHECK(h.cancel());
    int cancelled = 0;
    try {
        coio::socket s = co_await h;
        FAIL("the cancelled connect returned a socket");
    } catch (const coio::cancelled_error&) {
        ++cancelled;
    }
    CHECK(cancelled == 1);
    CHECK(h.cancelled());
    CHECK(clock_type::now() - t0 < 5s); // a 10 s guard would never have fired
    netns::flush();
}

// Connects `s` and records how the connect ended, and how often.
coio::task<> connect_once(coio::socket* s, coio::address to, int* resumed,
                          coio::io_status* status) {
    coio::io_result r = co_await s->connect(to);
    ++*resumed;
    *status = r.status;
}

coio::task<> close_while_connecting() {
    syn_sink sink = make_syn_sink();
    coio::socket s = coio::socket::open_tcp(coio::address::family::ipv4);
    int resumed = 0;
    coio::io_status status = coio::io_status::ok;
    coio::task_handle<> h = coio::create_task(connect_once(&s, sink.at, &resumed, &status));
    co_await coio::sleep(50ms);
    CHECK(resumed == 0);
    s.close();
    co_await coio::wait_for(h, 5s);
    CHECK(resumed == 1);
    CHECK(status == coio::io_status::cancelled);
    netns::flush();
}

// One read (socket awaiters cannot be moved into wait_for; a task can).
coio::task<coio::io_result> read_once(coio::socket* s, std::span<char> buf) {
    co_return co_await s->read_some(buf);
}

// The harness for RELIABILITY 29 (a peer that goes silent): once blackholed,
// an established connection delivers nothing either way, and only a timeout
// ends a read. The idle/keepalive and collector ACK-timeout tests build on it.
coio::task<> blackholed_connection_is_silent() {
    coio::socket listener = coio::socket::open_tcp(coio::address::family::ipv4);
    listener.bind(coio::address::loopback_v4(0));
    listener.listen(4);
    coio::socket client = co_await coio::connect(listener.local_address());
    coio::accept_result a = co_await listener.accept();
    REQUIRE(a.ok());
    netns::blackhole(listener.local_address().port());
    coio::io_result w = co_await a.sock.write_all("never arrives\n");
    CHECK(w.ok()); // queued in the kernel; retransmitted into the void
    std::array<char, 64> buf{};
    bool timed_out = false;
    try {
        coio::io_result r = co_await coio::wait_for(read_once(&client, std::span(buf)), 300ms);
        FAIL("read " << r.bytes << " bytes through a blackhole");
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    netns::flush();
}

} // namespace

TEST_CASE("a connect to a port that drops SYNs ends with timeout_error and leaves nothing behind",
          "[netns]") {
    run_clean(connect_times_out());
}

TEST_CASE("open_connection under a deadline times out, and the port works once the drop is gone",
          "[netns]") {
    run_clean(open_connection_times_out());
}

TEST_CASE("cancelling a task that is connecting throws cancelled_error once, at once", "[netns]") {
    run_clean(cancel_while_connecting());
}

TEST_CASE("closing a socket that is connecting completes the connect once, as cancelled",
          "[netns]") {
    run_clean(close_while_connecting());
}

TEST_CASE("a blackholed connection delivers nothing and only a timeout ends the read", "[netns]") {
    run_clean(blackholed_connection_is_silent());
}
