// tests/net/split_test.cpp - coio::split: a read half and a write half used
// by two tasks at once, the fd's lifetime, half-close on drop, abort.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <fcntl.h>

#include <array>
#include <string>

using coio::test::run_clean;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t volume = 4 * 1024 * 1024;

coio::task<std::size_t> send_pattern_half(coio::write_half w, std::uint64_t seed) {
    std::vector<char> data = coio::test::make_pattern(seed, volume);
    coio::io_result r = co_await w.write_all(std::string_view(data.data(), data.size()));
    CHECK_FALSE(w.shutdown()); // half-close: the peer reads EOF
    co_return r.bytes;
}

coio::task<std::size_t> receive_pattern_half(coio::read_half rd, std::uint64_t seed) {
    std::size_t got = 0;
    for (;;) {
        coio::chunk_result c = co_await rd.read_chunk();
        if (!c) {
            co_return got;
        }
        CHECK(coio::test::first_mismatch(seed, got, c.data.view()) == std::string::npos);
        got += c.data.size();
    }
}

coio::task<std::size_t> send_pattern(coio::socket* s, std::uint64_t seed) {
    std::vector<char> data = coio::test::make_pattern(seed, volume);
    coio::io_result r = co_await s->write_all(std::string_view(data.data(), data.size()));
    (void)s->shutdown(coio::shutdown_how::write);
    co_return r.bytes;
}

coio::task<std::size_t> receive_pattern(coio::socket* s, std::uint64_t seed) {
    std::vector<char> buf(64 * 1024);
    std::size_t got = 0;
    for (;;) {
        coio::io_result r = co_await s->read_some(std::span(buf));
        if (!r) {
            co_return got;
        }
        CHECK(coio::test::first_mismatch(seed, got, std::span<const char>(buf.data(), r.bytes)) ==
              std::string::npos);
        got += r.bytes;
    }
}

// A connected pair with small kernel buffers, set before the connection is
// made (shrinking them on an established one makes the kernel drop segments).
coio::task<coio::test::socket_pair> small_pair() {
    coio::socket listener = coio::socket::open_tcp(coio::address::family::ipv4);
    listener.set_receive_buffer_size(8192); // inherited by the accepted socket
    listener.set_send_buffer_size(8192);
    listener.bind(coio::address::loopback_v4(0));
    listener.listen(4);
    coio::test::socket_pair p;
    p.client = coio::socket::open_tcp(coio::address::family::ipv4);
    p.client.set_receive_buffer_size(8192);
    p.client.set_send_buffer_size(8192);
    coio::io_result c = co_await p.client.connect(listener.local_address());
    REQUIRE(c.ok());
    coio::accept_result a = co_await listener.accept();
    REQUIRE(a.ok());
    p.accepted = std::move(a.sock);
    co_return p;
}

coio::task<> full_duplex() {
    coio::test::socket_pair p = co_await small_pair();
    auto [rd, wr] = coio::split(std::move(p.accepted));
    CHECK_FALSE(p.accepted.is_open());
    // Both directions at once with small kernel buffers: neither side could
    // finish its sending before the other reads.
    auto [sent, received, peer_sent, peer_received] = co_await coio::wait_for(
        coio::gather(send_pattern_half(std::move(wr), 1), receive_pattern_half(std::move(rd), 2),
                     send_pattern(&p.client, 2), receive_pattern(&p.client, 1)),
        30s);
    CHECK(sent == volume);
    CHECK(received == volume);
    CHECK(peer_sent == volume);
    CHECK(peer_received == volume); // then EOF from the half-close
}

} // namespace

TEST_CASE("a split socket's halves read and write at once in two tasks", "[net][split]") {
    run_clean(full_duplex());
}

namespace {

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

coio::task<> lifetime() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    const int fd = p.accepted.native_handle();
    coio::split_halves h = coio::split(std::move(p.accepted));
    CHECK(h.reader.native_handle() == fd);
    CHECK(h.writer.native_handle() == fd);

    // Dropping the write half first: the peer reads EOF, the read half goes on.
    { coio::write_half gone = std::move(h.writer); }
    CHECK(fd_open(fd));
    std::array<char, 16> buf{};
    coio::io_result eof =
        co_await coio::wait_for(coio::test::read_once(&p.client, std::span(buf)), 5s);
    CHECK(eof.status == coio::io_status::eof);
    co_await p.client.write_all("after\n");
    coio::chunk_result c = co_await coio::wait_for(coio::test::chunk_once(&h.reader), 5s);
    REQUIRE(c.ok());
    CHECK(c.data.view() == "after\n");
    c.data.reset();

    // The last half gone closes the fd.
    { coio::read_half gone = std::move(h.reader); }
    CHECK_FALSE(fd_open(fd));
}

} // namespace

TEST_CASE("dropping the write half sends EOF and the read half keeps reading; the fd closes "
          "with the last half",
          "[net][split]") {
    run_clean(lifetime());
}

namespace {

coio::task<coio::io_status> pending_read(coio::read_half* rd) {
    coio::chunk_result c = co_await rd->read_chunk();
    co_return c.status;
}

coio::task<> abort_both() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    auto [rd, wr] = coio::split(std::move(p.accepted));
    coio::task_handle<coio::io_status> reading = coio::create_task(pending_read(&rd));
    co_await coio::yield_now();
    co_await coio::yield_now();
    wr.abort();
    coio::io_status st = co_await coio::wait_for(reading, 5s);
    CHECK(st == coio::io_status::cancelled);
    CHECK_FALSE(rd.is_open());
    std::array<char, 16> buf{};
    coio::io_result r =
        co_await coio::wait_for(coio::test::read_once(&p.client, std::span(buf)), 5s);
    CHECK(r.status == coio::io_status::reset);
}

} // namespace

TEST_CASE("write_half::abort resets the connection and ends the read half's pending read",
          "[net][split]") {
    run_clean(abort_both());
}
