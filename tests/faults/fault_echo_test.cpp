// tests/faults/fault_echo_test.cpp - echo clients and a server in one process
// under the fault shim (run by tests/faults/run_faults.py, epoll backend).
//
// Faults that end a connection (ECONNRESET, EPIPE, ENOMEM/ENOBUFS) must end
// only the connection they hit, cleanly: that client sees a status (reset,
// eof, error, cancelled) with every byte it got before it correct, the others
// get all their bytes back, nothing hangs, nothing leaks. Faults on accept
// (ECONNABORTED, out of fds or memory) must cost no client at all. The shim's
// own counters (faultshim_counters) say how many faults there were: a run
// with none fails, and no more connections may fail than faults were made.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <dlfcn.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio::test::run_clean;

namespace {

// The shim's counters by name (empty when the shim is not loaded).
std::map<std::string, std::uint64_t> shim_counters() {
    using counters_fn = const std::uint64_t* (*)();
    using names_fn = const char* (*)();
    auto counters = reinterpret_cast<counters_fn>(::dlsym(RTLD_DEFAULT, "faultshim_counters"));
    auto names = reinterpret_cast<names_fn>(::dlsym(RTLD_DEFAULT, "faultshim_counter_names"));
    std::map<std::string, std::uint64_t> out;
    if (counters == nullptr || names == nullptr) {
        return out;
    }
    std::istringstream in(names());
    std::string word;
    in >> word; // "faultshim"
    const std::uint64_t* c = counters();
    for (std::size_t i = 0; in >> word; ++i) {
        out[word] = c[i];
    }
    return out;
}

std::uint64_t delta(const std::map<std::string, std::uint64_t>& before,
                    const std::map<std::string, std::uint64_t>& after, const std::string& name) {
    return after.at(name) - before.at(name);
}

// One client's outcome.
struct outcome {
    coio::io_status status = coio::io_status::ok; // how its echo ended
    std::size_t echoed = 0;                       // correct bytes received
    std::size_t wrong_at = std::string::npos;     // offset of a wrong byte
};

// Sends `size` bytes of pattern `seed` in pieces of varying size while
// reading the echo and checking every byte; on the first failure either way
// the socket is closed, which ends the other direction (cancelled).
coio::task<> send_side(coio::socket* s, std::uint64_t seed, std::size_t size, outcome* out) {
    const std::vector<char> data = coio::test::make_pattern(seed, size);
    std::size_t off = 0;
    for (std::size_t piece = 1 + seed % 97; off < size; piece = piece * 7 % 4093 + 1) {
        const std::size_t n = std::min(piece, size - off);
        coio::io_result w = co_await s->write_all(std::string_view(data.data() + off, n));
        if (!w) {
            if (out->status == coio::io_status::ok) {
                out->status = w.status;
            }
            s->close();
            co_return;
        }
        off += n;
    }
}

coio::task<> receive_side(coio::socket* s, std::uint64_t seed, std::size_t size, outcome* out) {
    std::array<char, 8192> buf{};
    while (out->echoed < size) {
        coio::io_result r = co_await s->read_some(std::span(buf));
        if (!r) {
            if (out->status == coio::io_status::ok) {
                out->status = r.status;
            }
            s->close();
            co_return;
        }
        const std::span<const char> got(buf.data(), r.bytes);
        if (out->wrong_at == std::string::npos) {
            out->wrong_at = coio::test::first_mismatch(seed, out->echoed, got);
        }
        out->echoed += r.bytes;
    }
}

coio::task<> one_client(coio::address at, std::uint64_t seed, std::size_t size, outcome* out) {
    coio::socket s = coio::socket::open_tcp(coio::address::family::ipv4);
    coio::io_result c = co_await s.connect(at);
    if (!c) {
        out->status = c.status;
        co_return;
    }
    co_await coio::gather(send_side(&s, seed, size, out), receive_side(&s, seed, size, out));
}

struct run_summary {
    std::vector<outcome> outcomes;
    coio::server_stats server;
};

// `clients` echo clients at once against one server, each bounded in time.
coio::task<run_summary> echo_clients(int clients, std::size_t size) {
    coio::server srv = co_await coio::start_server(coio::test::echo_handler, "127.0.0.1", 0);
    run_summary sum;
    sum.outcomes.resize(static_cast<std::size_t>(clients));
    std::vector<coio::task<>> tasks;
    for (int i = 0; i < clients; ++i) {
        tasks.push_back(
            coio::wait_for(one_client(srv.local_address(), static_cast<std::uint64_t>(i) + 1, size,
                                      &sum.outcomes[static_cast<std::size_t>(i)]),
                           20s));
    }
    co_await coio::gather(std::move(tasks)); // a timeout_error (a hang) fails the test
    srv.close();
    co_await srv.wait_closed();
    sum.server = srv.stats();
    co_return sum;
}

} // namespace

TEST_CASE("a connection hit by a reset, a broken pipe, ENOMEM or ENOBUFS fails cleanly; the "
          "others stay intact",
          "[faults][destructive]") {
    const auto before = shim_counters();
    REQUIRE_FALSE(before.empty()); // run by tests/faults/run_faults.py with the shim
    const std::size_t size = 256 * 1024;
    run_summary sum = run_clean(echo_clients(48, size));
    const auto after = shim_counters();
    const std::uint64_t faults = delta(before, after, "reset") + delta(before, after, "epipe") +
                                 delta(before, after, "nomem") + delta(before, after, "nobufs");

    std::size_t failed = 0;
    for (std::size_t i = 0; i < sum.outcomes.size(); ++i) {
        const outcome& o = sum.outcomes[i];
        INFO("client " << i << ": " << to_string(o.status) << " after " << o.echoed << " bytes");
        CHECK(o.wrong_at == std::string::npos); // what arrived is right, failed or not
        if (o.status == coio::io_status::ok) {
            CHECK(o.echoed == size);
        } else {
            ++failed;
            CHECK((o.status == coio::io_status::reset || o.status == coio::io_status::eof ||
                   o.status == coio::io_status::error || o.status == coio::io_status::cancelled));
        }
    }
    INFO(failed << " of " << sum.outcomes.size() << " connections failed, " << faults
                << " faults that end a connection were injected");
    CHECK(failed <= faults); // no connection fails without a fault of its own
    CHECK(failed < sum.outcomes.size());
}

TEST_CASE("ECONNABORTED and out-of-fds or memory errors on accept cost no client",
          "[faults][accept]") {
    const auto before = shim_counters();
    REQUIRE_FALSE(before.empty());
    const std::size_t size = 16 * 1024;
    const int clients = 200;
    run_summary sum = run_clean(echo_clients(clients, size));
    const auto after = shim_counters();
    for (std::size_t i = 0; i < sum.outcomes.size(); ++i) {
        const outcome& o = sum.outcomes[i];
        INFO("client " << i << ": " << to_string(o.status) << " after " << o.echoed << " bytes");
        CHECK(o.status == coio::io_status::ok);
        CHECK(o.echoed == size);
        CHECK(o.wrong_at == std::string::npos);
    }
    CHECK(sum.server.accepted == static_cast<std::uint64_t>(clients));
    // Every failed accept was one the shim made fail. Not every fault shows
    // as an error: one on the last accept, after close(), is not counted.
    const std::uint64_t injected =
        delta(before, after, "abort") + delta(before, after, "accept_nomem");
    CHECK(sum.server.accept_errors <= injected);
    CHECK(sum.server.accept_errors > 0);
}

namespace {

// Reads and drops everything until EOF.
coio::task<> discard_handler(coio::socket s) {
    std::array<char, 16384> buf{};
    for (;;) {
        coio::io_result r = co_await s.read_some(std::span(buf));
        if (!r) {
            co_return;
        }
    }
}

// One client sends 4 MiB and reads nothing: its socket raises no read edge,
// so a send left waiting for a write edge that never comes would hang.
coio::task<coio::io_status> send_only() {
    coio::server srv = co_await coio::start_server(discard_handler, "127.0.0.1", 0);
    coio::socket s = co_await coio::connect(srv.local_address());
    coio::test::shrink_buffers(s, 16 * 1024); // many sends, each a chance for a fault
    const std::vector<char> data = coio::test::make_pattern(7, 4 * 1024 * 1024);
    coio::io_status st = coio::io_status::ok;
    try {
        coio::io_result w =
            co_await coio::wait_for(s.write_all(std::string_view(data.data(), data.size())), 5s);
        st = w.status;
    } catch (const coio::timeout_error&) {
        FAIL_CHECK("write_all hung after an injected fault (5 s; it takes milliseconds)");
    }
    s.close();
    srv.close();
    co_await srv.wait_closed();
    co_return st;
}

} // namespace

// Regression (epoll backend, lib/backend/readiness.hpp submit/run_ready): it
// took any -ENOBUFS for "the loop's buffer pool is empty" (recv_pooled) and
// parked the operation until a pool buffer came back; a send that got ENOBUFS
// from the kernel then waited for a write edge that nothing raised (a hang).
// Expected: the write fails with io_status::error (or goes on).
TEST_CASE("a send that gets ENOBUFS fails or goes on; it does not hang", "[faults][nomem]") {
    const auto before = shim_counters();
    REQUIRE_FALSE(before.empty());
    const coio::io_status st = run_clean(send_only());
    CHECK((st == coio::io_status::ok || st == coio::io_status::error));
    CHECK(delta(before, shim_counters(), "nobufs") > 0);
}
