// tests/net/stream_writer_test.cpp - stream_writer's buffer while its
// background flush has a send in flight.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <string>
#include <vector>

using coio::test::run_clean;

namespace {

constexpr std::uint64_t seed = 42;

// Writes the pattern in pieces of growing size with write() alone while the
// peer does not read, so the flush's send waits for room with part of the
// buffer in flight when the next write() appends; then the peer reads it all.
coio::task<> writes_while_a_send_waits() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::test::shrink_buffers(p.client, 16 * 1024);
    coio::test::shrink_buffers(p.accepted, 16 * 1024);
    coio::stream_pair s = coio::make_streams(std::move(p.client));
    const std::size_t total = 3 * 1024 * 1024;
    const std::vector<char> data = coio::test::make_pattern(seed, total);
    std::size_t off = 0;
    for (std::size_t piece = 1000; off < total; piece += 7919) {
        const std::size_t n = std::min(piece, total - off);
        s.writer.write(std::string_view(data.data() + off, n));
        off += n;
        // Let the flush run: it sends what fits, then waits for room.
        co_await coio::yield_now();
    }
    CHECK(s.writer.write_buffer_size() > 0); // the peer has not read yet

    std::vector<char> got(total);
    coio::io_result r = co_await coio::test::read_exact(&p.accepted, std::span(got));
    REQUIRE(r.message() == "ok");
    const std::size_t bad = coio::test::first_mismatch(seed, 0, got);
    INFO("first wrong byte at offset " << bad);
    CHECK(bad == std::string::npos);
    co_await s.writer.drain();
    s.writer.close();
    co_await s.writer.wait_closed();
}

} // namespace

// Regression (both backends; found by the fault shim's short writes, tests/faults):
// write() appended to the buffer the flush was sending from; when that moved
// the bytes to the front or to a bigger block, the send waiting for room went
// on from the old address - bytes repeated or lost on the wire, or a read of
// freed memory (on io_uring by the kernel).
TEST_CASE("write() while the flush waits for room keeps every byte in order", "[net][stream]") {
    run_clean(writes_while_a_send_waits());
}
