// tests/net/close_cancel_test.cpp - closing and cancelling around completions
// (RELIABILITY 12-15) through the public API, on every backend: a socket
// closed and its owner destroyed from inside a completion, fd numbers reused
// at once, zero-length I/O, and cancels racing completions.
#include "net/net_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coio::test::run_clean;

namespace {

// --- 12. close from inside a completion --------------------------------------------------

// What an application keeps per connection; destroyed from a completion.
struct connection {
    coio::socket sock;
};
using owner_ptr = std::unique_ptr<connection>;

bool send_buffer_full(int fd) {
    pollfd pfd{fd, POLLOUT, 0};
    return ::poll(&pfd, 1, 0) == 0;
}

// Writes until the kernel takes no more and the write waits for room; then
// records how that waiting write ended. After it resumes it touches nothing
// of the connection (the owner may be gone).
coio::task<> blocked_writer(connection* c, int* resumed, coio::io_status* status) {
    const std::string chunk(64 * 1024, 'w');
    for (;;) {
        coio::io_result r = co_await c->sock.write_some(chunk);
        if (!r) {
            ++*resumed;
            *status = r.status;
            co_return;
        }
    }
}

// Ways to close and destroy the connection from inside something the loop runs.
enum class closer { read_completion, timer, call_soon, gather_child };

coio::task<> close_on_read(owner_ptr* owner) {
    std::array<char, 16> buf{};
    coio::io_result r = co_await (*owner)->sock.read_some(std::span(buf));
    CHECK(r.ok());
    owner->reset(); // close and destroy, in the coroutine the completion resumed
}

coio::task<> close_after_sleep(owner_ptr* owner) {
    co_await coio::sleep(1ms);
    owner->reset(); // resumed by a timer
}

coio::task<> close_in_gather(owner_ptr* owner) {
    auto noop = []() -> coio::task<> { co_return; };
    co_await coio::gather(noop(), close_on_read(owner), noop());
}

coio::task<> close_from_inside(closer how) {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    coio::test::shrink_buffers(p.client, 16 * 1024);
    coio::test::shrink_buffers(p.accepted, 16 * 1024);
    auto owner = std::make_unique<connection>(connection{std::move(p.client)});
    const int fd = owner->sock.native_handle();
    int resumed = 0;
    coio::io_status status = coio::io_status::ok;
    coio::task_handle<> writer = coio::create_task(blocked_writer(owner.get(), &resumed, &status));
    for (int i = 0; i < 1000 && !send_buffer_full(fd); ++i) {
        co_await coio::yield_now();
    }
    co_await coio::yield_now(); // the writer now waits for room
    REQUIRE(resumed == 0);
    switch (how) {
    case closer::read_completion: {
        coio::task_handle<> reader = coio::create_task(close_on_read(&owner));
        coio::io_result w = co_await p.accepted.write_all("x"); // completes the read
        REQUIRE(w.ok());
        co_await reader;
        break;
    }
    case closer::timer:
        co_await close_after_sleep(&owner);
        break;
    case closer::call_soon: {
        coio::event e;
        coio::event_loop::running().call_soon([&owner, &e] {
            owner.reset();
            e.set();
        });
        co_await e.wait();
        break;
    }
    case closer::gather_child: {
        coio::task_handle<> g = coio::create_task(close_in_gather(&owner));
        coio::io_result w = co_await p.accepted.write_all("x");
        REQUIRE(w.ok());
        co_await g;
        break;
    }
    }
    CHECK(owner == nullptr);
    co_await coio::wait_for(writer, 10s);
    CHECK(resumed == 1);
    CHECK(status == coio::io_status::cancelled);
}

// --- 13. an fd number reused at once ---------------------------------------------------------

coio::task<coio::io_result> read_into(coio::socket* s, std::string* got) {
    std::array<char, 64> buf{};
    coio::io_result r = co_await s->read_some(std::span(buf));
    got->assign(buf.data(), r.bytes);
    co_return r;
}

// B has a read pending; the handler of A's data closes B and connects C at
// once, which gets B's fd number. Nothing meant for B reaches C, B's read ends
// cancelled, C reads its own bytes.
coio::task<bool> fd_reuse_once(coio::socket* listener) {
    coio::socket a = co_await coio::connect(listener->local_address());
    coio::accept_result a_peer = co_await listener->accept();
    auto b = std::make_unique<coio::socket>(co_await coio::connect(listener->local_address()));
    coio::accept_result b_peer = co_await listener->accept();
    REQUIRE((a_peer.ok() && b_peer.ok()));
    std::string b_got;
    coio::task_handle<coio::io_result> b_read = coio::create_task(read_into(b.get(), &b_got));
    co_await coio::yield_now(); // B's read is in flight
    const int b_fd = b->native_handle();

    // A's data arrives; its handler closes B and opens C straight away.
    coio::io_result w = co_await a_peer.sock.write_all("for A");
    REQUIRE(w.ok());
    std::string a_got;
    coio::io_result ra = co_await read_into(&a, &a_got);
    REQUIRE(ra.ok());
    b->close();
    coio::socket c = coio::socket::open_tcp(coio::address::family::ipv4);
    const bool reused = c.native_handle() == b_fd;
    coio::io_result rc_conn = co_await c.connect(listener->local_address());
    REQUIRE(rc_conn.ok());
    coio::accept_result c_peer = co_await listener->accept();
    REQUIRE(c_peer.ok());
    // Data for the old B (its peer still writes) and for C.
    w = co_await b_peer.sock.write_all("for B");
    REQUIRE(w.ok());
    w = co_await c_peer.sock.write_all("for C");
    REQUIRE(w.ok());
    coio::io_result rb = co_await b_read;
    CHECK(rb.status == coio::io_status::cancelled);
    CHECK(b_got.empty());
    std::string c_got;
    coio::io_result rcv = co_await read_into(&c, &c_got);
    CHECK(rcv.ok());
    CHECK(c_got == "for C");
    co_return reused;
}

coio::task<> fd_reuse() {
    coio::socket listener = coio::socket::open_tcp(coio::address::family::ipv4);
    listener.bind(coio::address::loopback_v4(0));
    listener.listen(16);
    int reused = 0;
    for (int i = 0; i < 20 && reused < 3; ++i) {
        const bool r = co_await fd_reuse_once(&listener);
        reused += r ? 1 : 0;
    }
    CHECK(reused > 0); // else the race was never exercised
}

// --- 14. zero-length I/O ---------------------------------------------------------------------

coio::task<coio::io_result> read_nothing(coio::socket* s) {
    co_return co_await s->read_some(std::span<char>());
}

coio::task<> zero_length_io() {
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    // Nothing to read, and nothing asked for: done at once (asio does the
    // same; a read of 0 that waited for data would hang an idle connection).
    coio::io_result r = co_await coio::wait_for(read_nothing(&p.client), 5s);
    CHECK(r.ok());
    CHECK(r.bytes == 0);
    coio::io_result w = co_await p.client.write_some(std::string_view());
    CHECK(w.ok());
    CHECK(w.bytes == 0);
    w = co_await p.client.write_all(std::string_view());
    CHECK(w.ok());
    CHECK(w.bytes == 0);
    // A null buffer with a length is the kernel's EFAULT as an error status:
    // coio's read_some/write_some take what they are given (no invalid_argument,
    // unlike the checklist's wording); no crash, and the socket still works.
    // Not under valgrind, which reports the bad pointer handed to send().
    if (!coio::test::under_valgrind()) {
        const std::span<const std::byte> bad(static_cast<const std::byte*>(nullptr), 16);
        w = co_await p.client.write_some(bad);
        CHECK(w.status == coio::io_status::error);
        CHECK(w.error == std::errc::bad_address);
    }
    w = co_await p.client.write_all("still fine");
    CHECK(w.ok());
    std::array<char, 10> got{};
    r = co_await coio::test::read_exact(&p.accepted, got);
    CHECK(r.ok());
    CHECK(std::string(got.data(), got.size()) == "still fine");
}

// --- 15. cancels racing completions ------------------------------------------------------

struct race_tally {
    std::size_t sent = 0;
    std::size_t received = 0;
    int data = 0;      // reads that returned bytes
    int cancelled = 0; // reads that threw cancelled_error
};

coio::task<> read_one(coio::socket* s, bool chunked, race_tally* t) {
    if (chunked) {
        coio::chunk_result r = co_await s->read_chunk();
        REQUIRE(r.ok());
        t->received += r.data.size();
    } else {
        std::array<char, 64> buf{};
        coio::io_result r = co_await s->read_some(std::span(buf));
        REQUIRE(r.ok());
        t->received += r.bytes;
    }
}

coio::task<> send_after(coio::socket* s, int passes, race_tally* t) {
    for (int i = 0; i < passes; ++i) {
        co_await coio::yield_now();
    }
    coio::io_result w = co_await s->write_all("z");
    REQUIRE(w.ok());
    t->sent += w.bytes;
}

// Rounds of "start a read; the peer sends a byte after 0-3 loop passes;
// cancel the read after 0-3 passes": whichever wins, the read ends once, and
// no byte is lost when the cancel loses the race.
coio::task<> cancel_races(bool chunked) {
    constexpr int rounds = 2000;
    coio::test::socket_pair p = co_await coio::test::connected_pair();
    std::mt19937 rng(chunked ? 1515 : 15);
    race_tally t;
    for (int round = 0; round < rounds; ++round) {
        const int send_at = static_cast<int>(rng() % 4);
        const int cancel_at = static_cast<int>(rng() % 4);
        coio::task_handle<> reader = coio::create_task(read_one(&p.accepted, chunked, &t));
        coio::task_handle<> sender = coio::create_task(send_after(&p.client, send_at, &t));
        for (int i = 0; i < cancel_at; ++i) {
            co_await coio::yield_now();
        }
        reader.cancel();
        try {
            co_await reader;
            ++t.data;
        } catch (const coio::cancelled_error&) {
            ++t.cancelled;
        }
        co_await sender;
    }
    CHECK(t.data + t.cancelled == rounds);
    CHECK(t.data > 0);
    CHECK(t.cancelled > 0);
    // What the cancelled reads left is still there to read.
    while (t.received < t.sent) {
        coio::task_handle<> rest = coio::create_task(read_one(&p.accepted, chunked, &t));
        co_await coio::wait_for(rest, 5s);
    }
    CHECK(t.received == t.sent);
    INFO(t.data << " reads got data, " << t.cancelled << " were cancelled");
    CHECK(t.sent == static_cast<std::size_t>(rounds));
}

} // namespace

TEST_CASE("closing and destroying a connection from the completion of its read ends the other "
          "task's write once, as cancelled",
          "[net][close]") {
    run_clean(close_from_inside(closer::read_completion));
}

TEST_CASE("the same close from a task a timer resumed", "[net][close]") {
    run_clean(close_from_inside(closer::timer));
}

TEST_CASE("the same close from a call_soon callback", "[net][close]") {
    run_clean(close_from_inside(closer::call_soon));
}

TEST_CASE("the same close from a gather child", "[net][close]") {
    run_clean(close_from_inside(closer::gather_child));
}

TEST_CASE("a read pending on a closed socket never gets the data of the socket that took its fd "
          "number",
          "[net][close]") {
    run_clean(fd_reuse());
}

// Regression (both backends): read_some with an empty buffer submitted a recv
// of 0 bytes, which on a socket with nothing queued says EAGAIN, so the read
// waited for data it could not take (for ever on an idle connection).
TEST_CASE("a zero-length read or write completes at once; a null buffer is an error status",
          "[net][close]") {
    run_clean(zero_length_io());
}

TEST_CASE("2,000 cancels racing read_some completions: each read ends once, no byte is lost",
          "[net][close]") {
    run_clean(cancel_races(false));
}

TEST_CASE("2,000 cancels racing read_chunk completions: each read ends once, no byte is lost",
          "[net][close]") {
    run_clean(cancel_races(true));
}
