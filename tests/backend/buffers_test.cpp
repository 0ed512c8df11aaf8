// tests/backend/buffers_test.cpp - the loop's lent read buffers under load
// and abuse, on every backend: peers that never read cannot freeze a server,
// reads size themselves, memory follows demand (lib/backend/buffer_pool.hpp).
#include "backend/pair_support.hpp"
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using coio::test::connected_pairs;
using coio::test::run_clean;
using coio::test::sock_pair;

namespace {

using namespace std::chrono_literals;

coio::event_loop& loop() {
    return coio::event_loop::running();
}

// Sets an environment knob for the loops a test creates, and takes it away.
class env_knob {
public:
    env_knob(const char* name, const char* value) : m_name(name) { ::setenv(name, value, 1); }
    env_knob(const env_knob&) = delete;
    env_knob& operator=(const env_knob&) = delete;
    ~env_knob() { ::unsetenv(m_name); }

private:
    const char* m_name;
};

// Makes one direction of a connection tight, so an echo blocks quickly
// while its peer can still push plenty into the server.
void small_buffer(const coio::socket& s, int option) {
    const int bytes = 4096;
    REQUIRE(::setsockopt(s.native_handle(), SOL_SOCKET, option, &bytes, sizeof bytes) == 0);
}

// The example echo handler, in its two forms: write_all(lease) gives the
// buffer back before it waits for room; write_all(view) holds it.
coio::task<> echo_giving_back(coio::socket s) {
    small_buffer(s, SO_SNDBUF);
    for (;;) {
        coio::chunk_result r = co_await s.read_chunk();
        if (!r) {
            co_return;
        }
        coio::io_result w = co_await s.write_all(std::move(r.data));
        if (!w) {
            co_return;
        }
    }
}

coio::task<> echo_holding(coio::socket s) {
    small_buffer(s, SO_SNDBUF);
    for (;;) {
        coio::chunk_result r = co_await s.read_chunk();
        if (!r) {
            co_return;
        }
        coio::io_result w = co_await s.write_all(r.data.view());
        if (!w) {
            co_return;
        }
    }
}

// Fills `c` with data until the kernel takes no more (non-blocking sends).
// Returns how many bytes went out.
std::size_t send_until_full(const coio::socket& c) {
    static const std::string chunk(16 * 1024, 'w');
    std::size_t sent = 0;
    for (;;) {
        const ssize_t n = ::send(c.native_handle(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return sent;
        }
        sent += static_cast<std::size_t>(n);
    }
}

// `writers` clients write and never read, until the server's handlers are
// stuck in their writes and nothing more goes in; then a new client must
// still be served, and the writers' closes must end their handlers.
template <class Handler>
coio::task<> writers_never_reading(Handler handler, int writers) {
    coio::server srv = co_await coio::start_server(handler, "127.0.0.1", 0);
    std::vector<coio::socket> stuck;
    for (int i = 0; i < writers; ++i) {
        coio::socket c = co_await coio::connect(srv.local_address());
        small_buffer(c, SO_RCVBUF);
        stuck.push_back(std::move(c));
    }
    // Until three loop passes in a row let no writer send anything more: the
    // handlers are blocked writing to peers that do not read (bounded).
    int quiet = 0;
    for (int round = 0; round < 20'000 && quiet < 3; ++round) {
        std::size_t moved = 0;
        for (const coio::socket& c : stuck) {
            moved += send_until_full(c);
        }
        quiet = moved == 0 ? quiet + 1 : 0;
        co_await coio::yield_now();
    }
    REQUIRE(quiet == 3);
    coio::socket fresh = co_await coio::connect(srv.local_address());
    std::string echoed = co_await coio::wait_for(coio::test::round_trip(&fresh, "hello\n"), 10s);
    CHECK(echoed == "hello\n");
    fresh.close();
    stuck.clear(); // their handlers' writes fail, their reads see the end
    srv.close();
    co_await coio::wait_for(srv.wait_closed(), 10s);
}

} // namespace

// The scenario (issue #10, io_uring): an echo server with 16 clients
// that write but never read did not answer a new client within 10 s in 3
// runs of 5 (each stuck handler held its lease while its socket queued up to
// 16 ring buffers, and the ring ran dry).
TEST_CASE("clients that write and never read cannot freeze a server holding its leases",
          "[backend][buffers]") {
    env_knob pool("COIO_POOL_BUFFERS", "64");
    run_clean(writers_never_reading(echo_holding, 16));
}

// More stuck writers than the pool has buffers (64): with write_all(lease)
// the handlers give their buffers back before they wait, so nothing is held.
TEST_CASE("a handler that writes its lease back holds no buffer while its peer does not read",
          "[backend][buffers]") {
    env_knob pool("COIO_POOL_BUFFERS", "64");
    run_clean(writers_never_reading(echo_giving_back, 100));
}

namespace {

coio::task<coio::chunk_result> read_one(coio::socket* s) {
    co_return co_await s->read_chunk();
}

// More sockets than the ring has buffers (64) each got data queued while
// nobody read them; a reader that then waits must be served, and the queued
// data must come out whole and in order afterwards.
coio::task<> queued_sockets_do_not_starve_a_reader() {
    constexpr std::size_t quiet_sockets = 80;
    constexpr std::size_t readers = 8;
    std::vector<sock_pair> pairs = co_await connected_pairs(quiet_sockets + readers);
    std::vector<std::string> sent(quiet_sockets);
    for (std::size_t i = 0; i < quiet_sockets; ++i) {
        sock_pair& p = pairs[i];
        // One read first: on io_uring that arms the socket's multishot recv,
        // which goes on receiving (and queueing) while nobody reads.
        REQUIRE(::send(p.b.native_handle(), "+", 1, MSG_NOSIGNAL) == 1);
        coio::chunk_result r = co_await p.a.read_chunk();
        REQUIRE(r.ok());
        sent[i] = std::string(6000, static_cast<char>('a' + i % 26)) + std::to_string(i);
        REQUIRE(::send(p.b.native_handle(), sent[i].data(), sent[i].size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(sent[i].size()));
    }
    // Until the loop has taken what it will (bounded): on io_uring the queues
    // hold every ring buffer now.
    std::size_t last = ~std::size_t{0};
    for (int round = 0, same = 0; round < 10'000 && same < 3; ++round) {
        co_await coio::yield_now();
        const std::size_t out = loop().stats().buffers_out;
        same = out == last ? same + 1 : 0;
        last = out;
    }
    // Several readers wait at once and keep what they get until all have
    // it: at most a buffer or two is left in the ring, so without reclaiming
    // the queued ones all but the first would starve.
    std::vector<coio::task<coio::chunk_result>> fresh;
    for (std::size_t i = quiet_sockets; i < pairs.size(); ++i) {
        REQUIRE(::send(pairs[i].b.native_handle(), "hello", 5, MSG_NOSIGNAL) == 5);
        fresh.push_back(coio::wait_for(read_one(&pairs[i].a), 10s));
    }
    std::vector<coio::chunk_result> got = co_await coio::gather(std::move(fresh));
    for (const coio::chunk_result& g : got) {
        REQUIRE(g.ok());
        CHECK(g.data.view() == "hello");
    }
    got.clear();
    for (std::size_t i = 0; i < quiet_sockets; ++i) {
        std::string back;
        while (back.size() < sent[i].size()) {
            coio::chunk_result r = co_await coio::wait_for(pairs[i].a.read_chunk(), 10s);
            REQUIRE(r.ok());
            back.append(r.data.view());
        }
        CHECK(back == sent[i]);
    }
    CHECK(loop().stats().buffers_out == 0);
}

} // namespace

// Regression (issue #10, io_uring): what sockets nobody read had queued took
// every ring buffer, and a reader that then waited was never served (the ring
// grew only after 256 starved waits, or when nothing was in flight). Now the
// queued buffers of sockets nobody reads are copied out when readers starve.
TEST_CASE("data queued on sockets nobody reads does not starve a waiting reader",
          "[backend][buffers]") {
    env_knob pool("COIO_POOL_BUFFERS", "64");
    run_clean(queued_sockets_do_not_starve_a_reader());
}

namespace {

// 4 MiB in one direction: once the reads fill small buffers they get big ones.
coio::task<> bulk_reads_grow() {
    std::vector<sock_pair> pairs = co_await connected_pairs(1);
    sock_pair& p = pairs[0];
    std::string data(4 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>('a' + i * 7 % 26);
    }
    auto sender = coio::create_task(p.b.write_all(data), "sender");
    std::string back;
    std::size_t largest = 0;
    std::size_t chunks = 0;
    while (back.size() < data.size()) {
        coio::chunk_result r = co_await p.a.read_chunk();
        REQUIRE(r.ok());
        largest = std::max(largest, r.data.size());
        ++chunks;
        back.append(r.data.view());
    }
    coio::io_result s = co_await sender;
    CHECK(s.ok());
    CHECK(back == data);
    INFO("chunks: " << chunks << ", largest " << largest);
    CHECK(largest > 4096);              // big buffers were used
    CHECK(chunks < data.size() / 4096); // fewer reads than with small ones only
    // A small message afterwards still arrives whole.
    REQUIRE(::send(p.b.native_handle(), "small", 5, MSG_NOSIGNAL) == 5);
    coio::chunk_result r = co_await p.a.read_chunk();
    REQUIRE(r.ok());
    CHECK(r.data.view() == "small");
    r.data.reset();
    CHECK(loop().stats().buffers_out == 0);
}

} // namespace

TEST_CASE("a bulk transfer is read in chunks bigger than a small buffer", "[backend][buffers]") {
    run_clean(bulk_reads_grow());
}

namespace {

std::string pattern(std::size_t n) {
    std::string data(n, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>('a' + i * 7 % 26);
    }
    return data;
}

// 4 MiB read with chunk_size::small: never more than 4 KiB a chunk, from the
// first read on and after adaptive reads had grown (the io_uring multishot
// armed into big buffers is re-armed into small ones).
coio::task<> small_reads_stay_small() {
    std::vector<sock_pair> pairs = co_await connected_pairs(1);
    sock_pair& p = pairs[0];
    const std::string data = pattern(4 * 1024 * 1024);
    auto sender = coio::create_task(p.b.write_all(data), "sender");
    std::string back;
    std::size_t largest_adaptive = 0;
    std::size_t largest_small_late = 0; // after the switch had taken effect
    std::size_t small_chunks = 0;
    while (back.size() < data.size()) {
        // The first MiB adaptive, then small only.
        const bool small = back.size() >= 1024 * 1024;
        coio::chunk_result r =
            co_await p.a.read_chunk(small ? coio::chunk_size::small : coio::chunk_size::adaptive);
        REQUIRE(r.ok());
        if (!small) {
            largest_adaptive = std::max(largest_adaptive, r.data.size());
        } else if (++small_chunks > 64) { // what a multishot had queued is read first
            largest_small_late = std::max(largest_small_late, r.data.size());
        }
        back.append(r.data.view());
    }
    coio::io_result s = co_await sender;
    CHECK(s.ok());
    CHECK(back == data);
    INFO("largest adaptive chunk " << largest_adaptive << ", largest small one "
                                   << largest_small_late << " of " << small_chunks);
    CHECK(largest_adaptive > 4096); // the reads had grown
    CHECK(largest_small_late > 0);
    CHECK(largest_small_late <= 4096);
    CHECK(loop().stats().buffers_out == 0);
}

// A stream with small_reads: a reader that asks for 100 bytes at a time
// holds at most one small chunk beyond it; the default one grows.
coio::task<> stream_small_reads(bool small) {
    std::vector<sock_pair> pairs = co_await connected_pairs(1);
    sock_pair& p = pairs[0];
    const std::string data = pattern(2 * 1024 * 1024);
    auto sender = coio::create_task(p.b.write_all(data), "sender");
    coio::stream_options o;
    o.small_reads = small;
    coio::stream_pair sp = coio::make_streams(std::move(p.a), o);
    std::string back;
    std::size_t most_buffered = 0;
    while (back.size() < data.size()) {
        std::string piece = co_await sp.reader.read(100);
        REQUIRE_FALSE(piece.empty());
        back += piece;
        most_buffered = std::max(most_buffered, sp.reader.buffered());
    }
    coio::io_result s = co_await sender;
    CHECK(s.ok());
    CHECK(back == data);
    INFO("small_reads " << small << ": at most " << most_buffered << " bytes buffered");
    if (small) {
        CHECK(most_buffered < 4096);
    } else {
        CHECK(most_buffered >= 4096); // big chunks: the rest waits in the reader
    }
    sp.writer.close();
}

} // namespace

TEST_CASE("read_chunk(chunk_size::small) never reads more than a small buffer",
          "[backend][buffers]") {
    run_clean(small_reads_stay_small());
}

TEST_CASE("a stream with small_reads holds at most a small chunk beyond what its reader asked",
          "[backend][buffers]") {
    run_clean(stream_small_reads(true));
    run_clean(stream_small_reads(false));
}

namespace {

// Many leases held at once make the loop keep many buffers; once they are
// given back and some trim periods pass with the loop idle, the memory goes
// back (COIO_POOL_TRIM_MS makes the period 20 ms here instead of 1 s).
coio::task<> memory_follows_demand() {
    constexpr std::size_t n = 400;
    std::vector<sock_pair> pairs = co_await connected_pairs(n);
    const std::size_t base = loop().stats().buffer_bytes;
    for (sock_pair& p : pairs) {
        REQUIRE(::send(p.b.native_handle(), "x", 1, MSG_NOSIGNAL) == 1);
    }
    std::vector<coio::buffer_lease> held;
    for (sock_pair& p : pairs) {
        coio::chunk_result r = co_await p.a.read_chunk();
        REQUIRE(r.ok());
        held.push_back(std::move(r.data));
    }
    const std::size_t peak = loop().stats().buffer_bytes;
    INFO("buffer bytes: before " << base << ", with " << n << " leases " << peak);
    CHECK(peak >= n * 4096);
    held.clear();
    // The loop is idle now; the trims happen on their own (bounded wait).
    std::size_t now = peak;
    for (int i = 0; i < 100 && now > peak / 4; ++i) {
        co_await coio::sleep(20ms);
        now = loop().stats().buffer_bytes;
    }
    INFO("after the leases ended: " << now);
    CHECK(now <= peak / 4);
}

} // namespace

TEST_CASE("memory for read buffers goes back when the load falls", "[backend][buffers]") {
    env_knob trim("COIO_POOL_TRIM_MS", "20");
    run_clean(memory_follows_demand());
}
