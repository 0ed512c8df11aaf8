// tests/net/copy_test.cpp - copy_bidirectional between two connections:
// data both ways, half-close passed on as half-close, reset as reset, the
// idle timeout, cancellation.
//
//   client <-> a [copy_bidirectional] b <-> backend
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <array>
#include <string>

using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

struct proxied {
    coio::socket client;
    coio::socket backend;
    coio::task_handle<coio::copy_result> copy;
};

coio::task<proxied> start_proxy(coio::copy_options opts) {
    coio::test::socket_pair front = co_await coio::test::connected_pair();
    coio::test::socket_pair back = co_await coio::test::connected_pair();
    proxied p;
    p.client = std::move(front.client);
    p.backend = std::move(back.accepted);
    p.copy = coio::create_task(
        coio::copy_bidirectional(std::move(front.accepted), std::move(back.client), opts));
    co_return p;
}

coio::task<std::size_t> send_then_shut(coio::socket* s, std::uint64_t seed, std::size_t n) {
    std::vector<char> data = coio::test::make_pattern(seed, n);
    coio::io_result r = co_await s->write_all(std::string_view(data.data(), data.size()));
    CHECK(r.ok());
    CHECK_FALSE(s->shutdown(coio::shutdown_how::write));
    co_return r.bytes;
}

struct received {
    std::size_t bytes = 0;
    coio::io_status end = coio::io_status::ok;
};

coio::task<received> receive(coio::socket* s, std::uint64_t seed) {
    received out;
    std::vector<char> buf(64 * 1024);
    for (;;) {
        coio::io_result r = co_await s->read_some(std::span(buf));
        if (!r) {
            out.end = r.status;
            co_return out;
        }
        CHECK(coio::test::first_mismatch(seed, out.bytes,
                                         std::span<const char>(buf.data(), r.bytes)) ==
              std::string::npos);
        out.bytes += r.bytes;
    }
}

coio::task<> both_ways_with_half_close() {
    const coio::copy_options opts;
    proxied p = co_await start_proxy(opts);
    constexpr std::size_t up = 1024 * 1024;
    constexpr std::size_t down = 512 * 1024 + 17;
    // The client half-closes after its upload; the backend still answers
    // after it read the client's EOF, then half-closes too.
    auto backend = [](coio::socket* s, std::size_t n) -> coio::task<received> {
        received in = co_await receive(s, 1);
        co_await send_then_shut(s, 2, n);
        co_return in;
    };
    auto [client_sent, at_backend, at_client] =
        co_await coio::wait_for(coio::gather(send_then_shut(&p.client, 1, up),
                                             backend(&p.backend, down), receive(&p.client, 2)),
                                30s);
    CHECK(client_sent == up);
    CHECK(at_backend.bytes == up);
    CHECK(at_backend.end == coio::io_status::eof);
    CHECK(at_client.bytes == down);
    CHECK(at_client.end == coio::io_status::eof);
    coio::copy_result r = co_await coio::wait_for(p.copy, 5s);
    CHECK(r.a_to_b == up);
    CHECK(r.b_to_a == down);
    CHECK_FALSE(r.reset);
    CHECK_FALSE(r.timed_out);
}

} // namespace

TEST_CASE("copy_bidirectional copies both ways and passes each half-close on as a half-close",
          "[net][copy]") {
    run_clean(both_ways_with_half_close());
}

namespace {

coio::task<> reset_passed_on(bool from_client) {
    const coio::copy_options opts;
    proxied p = co_await start_proxy(opts);
    coio::io_result w = co_await p.client.write_all("hello");
    REQUIRE(w.ok());
    std::array<char, 5> got{};
    coio::io_result r =
        co_await coio::wait_for(coio::test::read_exact(&p.backend, std::span(got)), 5s);
    REQUIRE(r.ok());
    coio::socket& resetting = from_client ? p.client : p.backend;
    coio::socket& other = from_client ? p.backend : p.client;
    resetting.abort();
    std::array<char, 16> buf{};
    coio::io_result end =
        co_await coio::wait_for(coio::test::read_once(&other, std::span(buf)), 5s);
    CHECK(end.status == coio::io_status::reset);
    coio::copy_result res = co_await coio::wait_for(p.copy, 5s);
    CHECK(res.reset);
    CHECK(res.a_to_b == 5);
}

} // namespace

TEST_CASE("copy_bidirectional passes a reset on as a reset, from either side", "[net][copy]") {
    run_clean(reset_passed_on(true));
    run_clean(reset_passed_on(false));
}

namespace {

coio::task<> idle_timeout() {
    // 1.5 s against a byte every 250 ms: a stall of up to 1.25 s (a loaded
    // sanitizer run) cannot pass for silence; 2 s of traffic outlasts it.
    const coio::copy_options opts{.idle_timeout = 1500ms};
    proxied p = co_await start_proxy(opts);
    // Traffic within the timeout keeps the pair alive.
    for (int i = 0; i < 8; ++i) {
        co_await coio::sleep(250ms);
        coio::io_result w = co_await p.client.write_all("x");
        REQUIRE(w.ok());
        std::array<char, 1> one{};
        coio::io_result r =
            co_await coio::wait_for(coio::test::read_once(&p.backend, std::span(one)), 5s);
        REQUIRE(r.ok());
    }
    // Then silence: both sides are reset.
    std::array<char, 16> buf{};
    coio::io_result c =
        co_await coio::wait_for(coio::test::read_once(&p.client, std::span(buf)), 5s);
    coio::io_result b =
        co_await coio::wait_for(coio::test::read_once(&p.backend, std::span(buf)), 5s);
    CHECK(c.status == coio::io_status::reset);
    CHECK(b.status == coio::io_status::reset);
    coio::copy_result res = co_await coio::wait_for(p.copy, 5s);
    CHECK(res.timed_out);
    CHECK_FALSE(res.reset);
    CHECK(res.a_to_b == 8);
}

coio::task<> cancelled_copy() {
    const coio::copy_options opts;
    proxied p = co_await start_proxy(opts);
    co_await coio::yield_now();
    p.copy.cancel();
    bool cancelled = false;
    try {
        coio::copy_result r = co_await coio::wait_for(p.copy, 5s);
        (void)r;
    } catch (const coio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    std::array<char, 16> buf{};
    coio::io_result c =
        co_await coio::wait_for(coio::test::read_once(&p.client, std::span(buf)), 5s);
    coio::io_result b =
        co_await coio::wait_for(coio::test::read_once(&p.backend, std::span(buf)), 5s);
    CHECK(c.status == coio::io_status::eof);
    CHECK(b.status == coio::io_status::eof);
}

} // namespace

TEST_CASE("copy_bidirectional's idle_timeout resets both sides after silence, not during traffic",
          "[net][copy]") {
    run_clean(idle_timeout());
}

TEST_CASE("cancelling copy_bidirectional closes both connections", "[net][copy]") {
    run_clean(cancelled_copy());
}
