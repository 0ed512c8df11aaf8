// tests/backend/uring_test.cpp - backend semantics that a completion backend
// (io_uring) makes easy to get wrong: cancellation that must wait for the
// kernel, closes racing in-flight operations, fd numbers reused while the old
// operation is still in the kernel, cross-thread wake-ups, many operations in
// flight at once.
//
// Every test runs on the backend named by COIO_BACKEND (meson runs this binary
// once per backend); the ones tagged [io_uring] build an io_uring loop
// explicitly when this machine has one.
#include "backend/pair_support.hpp"
#include "support/support.hpp"

#include <coio/coio.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using coio::test::require_clean;
using coio::test::run_clean;

using coio::test::connected_pair;
using coio::test::connected_pairs;
using coio::test::listen_on_loopback;
using coio::test::message_for;
using coio::test::sock_pair;

// Reads once; the socket lives in the awaiting frame (see each caller).
coio::task<coio::io_result> read_once(coio::socket* s, std::string* into) {
    std::array<char, 256> buf{};
    coio::io_result r = co_await s->read_some(std::span(buf));
    into->assign(buf.data(), r.bytes);
    co_return r;
}

coio::task<std::string> read_exactly(coio::socket* s, std::size_t n) {
    std::string out;
    std::array<char, 256> buf{};
    while (out.size() < n) {
        const std::size_t want = std::min(n - out.size(), buf.size());
        coio::io_result r = co_await s->read_some(std::span(buf.data(), want));
        REQUIRE(r.ok());
        out.append(buf.data(), r.bytes);
    }
    co_return out;
}

// Never co_await inside a Catch2 assertion: with g++ the expression is also
// expanded inside __builtin_constant_p (CATCH_INTERNAL_IGNORE_BUT_WARN), and
// the co_await then runs more than once (seen: three writes of one message).
coio::task<> send_all(coio::socket* s, std::string data) {
    coio::io_result r = co_await s->write_all(data);
    REQUIRE(r.ok());
}

std::size_t in_flight() {
    return coio::event_loop::running().stats().io_in_flight;
}

// An io_op submitted by hand, for tests that must place submissions and
// closes inside one loop iteration (an awaiter submits only when awaited).
// A completion counts *left down and posts *waiter at zero.
struct raw_recv : coio::detail::io_op {
    int* left = nullptr;
    coio::test::completion_hook hook;
    std::array<char, 64> buf{};

    raw_recv(int fd, int* l, std::coroutine_handle<>* w)
        : left(l), hook(coio::test::count_completions(l, w)) {
        m_code = coio::detail::op_code::recv;
        m_fd = fd;
        m_arg.buf = coio::detail::io_buffer{buf.data(), buf.size()};
        m_waiter = hook.handle();
    }
    raw_recv(const raw_recv&) = delete;
    raw_recv& operator=(const raw_recv&) = delete;
    ~raw_recv() {
        if (m_pending) { // only if the test failed half-way
            coio::detail::running_loop_core().forget(*this);
        }
    }
    // Submits; counts the op in *left unless it finished inline (epoll).
    // Returns whether it was counted.
    bool start() {
        if (coio::detail::running_loop_core().submit(*this)) {
            return false;
        }
        ++*left;
        return true;
    }
    [[nodiscard]] std::string text() const {
        return m_result > 0 ? std::string(buf.data(), static_cast<std::size_t>(m_result)) : "";
    }
};

// Suspends until every raw_recv counted in *left has completed.
struct all_done {
    int* left;
    std::coroutine_handle<>* waiter;
    [[nodiscard]] bool await_ready() const noexcept { return *left == 0; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { *waiter = h; }
    static void await_resume() noexcept {}
};

bool uring_available() {
    auto b = coio::available_backends();
    return std::find(b.begin(), b.end(), "io_uring") != b.end();
}

// --- close and cancellation ----------------------------------------------------

coio::task<> close_with_read_in_flight() {
    sock_pair p = co_await connected_pair();
    std::string got;
    auto reader = coio::create_task(read_once(&p.a, &got), "reader");
    co_await coio::yield_now(); // the reader runs first: its read is in flight
    REQUIRE(in_flight() == 1);
    p.a.close();
    coio::io_result r = co_await reader;
    CHECK(r.status == coio::io_status::cancelled);
    CHECK(r.bytes == 0);
    CHECK(got.empty());
    // The socket really is closed: the peer sees EOF.
    std::string eof;
    coio::io_result e = co_await read_once(&p.b, &eof);
    CHECK(e.status == coio::io_status::eof);
}

TEST_CASE("closing a socket with a read in flight completes the read as cancelled", "[backend]") {
    run_clean(close_with_read_in_flight());
}

// The status, and whether a socket came with it (closed here if so).
coio::task<std::pair<coio::io_status, bool>> accept_once(coio::socket* listener) {
    coio::accept_result r = co_await listener->accept();
    co_return std::pair{r.status, r.sock.is_open()};
}

// Regression (io_uring): the accept in flight held a reference to the listening
// socket until its cancellation ran as deferred task work, one iteration after
// close(), so a connect in between still completed a handshake.
coio::task<> close_listener_with_accept_in_flight() {
    coio::socket listener = listen_on_loopback(16);
    const coio::address at = listener.local_address();
    auto acceptor = coio::create_task(accept_once(&listener), "acceptor");
    co_await coio::yield_now();
    REQUIRE(in_flight() == 1);
    listener.close();
    coio::socket late = coio::socket::open_tcp(coio::address::family::ipv4);
    coio::io_result c = co_await late.connect(at);
    CHECK(c.status == coio::io_status::refused);
    auto [status, got_socket] = co_await acceptor;
    CHECK(status == coio::io_status::cancelled);
    CHECK_FALSE(got_socket);
}

TEST_CASE("closing a listener with an accept in flight refuses connections at once", "[backend]") {
    run_clean(close_listener_with_accept_in_flight());
}

coio::task<> cancel_blocked_read() {
    sock_pair p = co_await connected_pair();
    std::string got;
    auto reader = coio::create_task(read_once(&p.a, &got), "reader");
    co_await coio::yield_now();
    REQUIRE(in_flight() == 1);
    CHECK(reader.cancel());
    bool threw = false;
    try {
        co_await reader;
    } catch (const coio::cancelled_error&) {
        threw = true;
    }
    CHECK(threw);
    CHECK(reader.cancelled());
    CHECK(in_flight() == 0);
    CHECK(got.empty());
    // The cancelled read took nothing: what the peer sends next reaches the
    // next read in full.
    co_await send_all(&p.b, "after cancel");
    std::string next = co_await read_exactly(&p.a, 12);
    CHECK(next == "after cancel");
}

TEST_CASE("cancelling a task blocked in a read throws cancelled_error and leaves the loop clean",
          "[backend]") {
    run_clean(cancel_blocked_read());
}

coio::task<> forget_in_flight_read() {
    sock_pair p = co_await connected_pair();
    sock_pair q = co_await connected_pair();
    coio::event_loop& loop = coio::event_loop::running();
    coio::detail::loop_core& core = coio::detail::core_of(loop);
    int left = 0;
    std::coroutine_handle<> waiter;
    std::optional<raw_recv> doomed(std::in_place, p.a.native_handle(), &left, &waiter);
    const bool doomed_counted = doomed->start();
    // Another op whose completion arrives while forget() waits for the kernel:
    // it is delivered normally.
    co_await send_all(&q.b, "other");
    raw_recv other(q.a.native_handle(), &left, &waiter);
    other.start();
    co_await coio::yield_now(); // both submitted
    core.forget(*doomed);
    CHECK_FALSE(doomed->m_pending);
    left -= doomed_counted ? 1 : 0; // a forgotten op never completes
    doomed.reset();                 // the buffer is gone; the kernel must not write to it
    REQUIRE(left <= 1);
    co_await all_done{&left, &waiter};
    CHECK(other.text() == "other");
    CHECK(loop.stats().io_in_flight == 0);
    co_await send_all(&p.b, "kept");
    std::string kept = co_await read_exactly(&p.a, 4);
    CHECK(kept == "kept");
}

TEST_CASE("forget() returns once the kernel let go of the op, and other ops still complete",
          "[backend]") {
    run_clean(forget_in_flight_read());
}

// --- fd number reuse ----------------------------------------------------------

// The old read, the close and the reuse of the fd number all happen inside
// one loop iteration. On io_uring the old read's SQE is still in the
// submission queue when close() runs; if it reached the kernel only after the
// number was reused, it would read the new socket's data.
coio::task<> reuse_within_one_iteration() {
    sock_pair old_pair = co_await connected_pair();
    sock_pair new_pair = co_await connected_pair();
    co_await send_all(&new_pair.b, "for the new socket");
    const int n = old_pair.a.native_handle();
    int left = 0;
    std::coroutine_handle<> waiter;
    raw_recv old_read(n, &left, &waiter);
    old_read.start();
    old_pair.a.close();                                  // fd n is free ...
    REQUIRE(::dup2(new_pair.a.native_handle(), n) == n); // ... and names the new socket
    coio::socket reused(n);
    new_pair.a.close();
    raw_recv new_read(n, &left, &waiter);
    new_read.start();
    co_await all_done{&left, &waiter};
    CHECK(old_read.m_result == -ECANCELED);
    CHECK(new_read.text() == "for the new socket");
}

TEST_CASE("a read queued before close never acts on the socket that reuses its fd number",
          "[backend]") {
    run_clean(reuse_within_one_iteration());
}

coio::task<> reuse_after_kernel_took_the_read() {
    sock_pair old_pair = co_await connected_pair();
    sock_pair new_pair = co_await connected_pair();
    const int n = old_pair.a.native_handle();
    std::string old_got;
    auto old_reader = coio::create_task(read_once(&old_pair.a, &old_got), "old reader");
    co_await coio::yield_now();
    co_await coio::yield_now(); // a full iteration: the read is in the kernel
    REQUIRE(in_flight() == 1);
    old_pair.a.close();
    REQUIRE(::dup2(new_pair.a.native_handle(), n) == n);
    coio::socket reused(n);
    new_pair.a.close();
    std::string new_got;
    auto new_reader = coio::create_task(read_once(&reused, &new_got), "new reader");
    co_await coio::yield_now();
    co_await send_all(&new_pair.b, "fresh");
    coio::io_result r = co_await new_reader;
    CHECK(r.ok());
    CHECK(new_got == "fresh");
    coio::io_result o = co_await old_reader;
    CHECK(o.status == coio::io_status::cancelled);
    CHECK(old_got.empty());
}

TEST_CASE("a closed socket's in-flight read never completes into the socket reusing its number",
          "[backend]") {
    run_clean(reuse_after_kernel_took_the_read());
}

// Cancelling by fd (IORING_ASYNC_CANCEL_FD) would match the file, and so
// also cancel the read on the other descriptor.
coio::task<> close_one_of_two_descriptors() {
    sock_pair p = co_await connected_pair();
    coio::socket dup(::dup(p.a.native_handle()));
    REQUIRE(dup.is_open());
    std::string got_a;
    std::string got_dup;
    auto on_a = coio::create_task(read_once(&p.a, &got_a), "read on a");
    co_await coio::yield_now();
    p.a.close();
    auto on_dup = coio::create_task(read_once(&dup, &got_dup), "read on dup");
    co_await coio::yield_now();
    co_await coio::yield_now();
    co_await send_all(&p.b, "still open");
    coio::io_result d = co_await on_dup;
    CHECK(d.ok());
    CHECK(got_dup == "still open");
    coio::io_result a = co_await on_a;
    CHECK(a.status == coio::io_status::cancelled);
}

TEST_CASE("closing one descriptor of a dup'ed socket leaves reads on the other running",
          "[backend]") {
    run_clean(close_one_of_two_descriptors());
}

// --- wake-ups from other threads -----------------------------------------------

struct wake_state {
    std::mutex m;
    std::condition_variable cv;
    int requested = 0;
    int ran = 0;
    bool stop = false;
    bool timed_out = false;
    bool wrong_thread = false;
};

// Per round: the loop blocks in a read; another thread posts a callback with
// call_soon_threadsafe; only that callback (run on the loop thread) writes the
// byte the read waits for. A lost wake-up leaves the loop blocked: the thread
// then writes the byte itself after 10 s and records the failure.
coio::task<> wake_rounds(int rounds) {
    sock_pair p = co_await connected_pair();
    coio::event_loop& loop = coio::event_loop::running();
    const std::thread::id loop_thread = std::this_thread::get_id();
    const int peer = p.b.native_handle();
    wake_state st;
    std::thread poster([&st, &loop, loop_thread, peer] {
        std::unique_lock lock(st.m);
        for (int i = 0;; ++i) {
            st.cv.wait(lock, [&] { return st.stop || st.requested > i; });
            if (st.stop) {
                return;
            }
            lock.unlock();
            loop.call_soon_threadsafe([&st, loop_thread, peer] {
                {
                    std::lock_guard g(st.m);
                    st.wrong_thread |= std::this_thread::get_id() != loop_thread;
                    ++st.ran;
                }
                st.cv.notify_all();
                const char c = 'x';
                (void)::send(peer, &c, 1, MSG_NOSIGNAL);
            });
            lock.lock();
            if (!st.cv.wait_for(lock, std::chrono::seconds(10), [&] { return st.ran > i; })) {
                st.timed_out = true;
                const char c = '!';
                (void)::send(peer, &c, 1, MSG_NOSIGNAL);
                return;
            }
        }
    });
    int got = 0;
    for (int i = 0; i < rounds && !st.timed_out; ++i) {
        {
            std::lock_guard g(st.m);
            ++st.requested;
        }
        st.cv.notify_all();
        std::array<char, 1> b{};
        coio::io_result r = co_await p.a.read_some(std::span(b));
        got += r.ok() && b[0] == 'x' ? 1 : 0;
    }
    {
        std::lock_guard g(st.m);
        st.stop = true;
    }
    st.cv.notify_all();
    poster.join();
    CHECK_FALSE(st.timed_out);
    CHECK_FALSE(st.wrong_thread);
    CHECK(got == rounds);
}

coio::task<bool> wake_rounds_result(int rounds) {
    co_await wake_rounds(rounds);
    co_return true;
}

TEST_CASE("call_soon_threadsafe wakes a loop blocked waiting for I/O", "[backend]") {
    run_clean(wake_rounds(200));
}

coio::task<int> echo_once() {
    sock_pair p = co_await connected_pair();
    co_await send_all(&p.a, "ping");
    std::string got = co_await read_exactly(&p.b, 4);
    co_return got == "ping" ? 1 : 0;
}

TEST_CASE("a loop built on one thread runs on another, then on a third", "[backend]") {
    const std::size_t fds_before = coio::test::open_fd_count();
    {
        coio::event_loop loop;
        int ok = 0;
        std::thread first([&] { ok += loop.run_until_complete(echo_once()); });
        first.join();
        std::thread second([&] { ok += loop.run_until_complete(echo_once()); });
        second.join();
        ok += loop.run_until_complete(echo_once()); // and on this thread
        CHECK(ok == 3);
        require_clean(loop);
    }
    CHECK(coio::test::open_fd_count() == fds_before);
}

// --- scale ---------------------------------------------------------------------

coio::task<std::string> read_and_echo(coio::socket* s, std::size_t n) {
    std::string got = co_await read_exactly(s, n);
    co_await send_all(s, got);
    co_return got;
}

coio::task<> many_reads_in_flight(std::size_t count) {
    std::vector<sock_pair> pairs = co_await connected_pairs(count);
    std::vector<coio::task_handle<std::string>> readers;
    readers.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        readers.push_back(coio::create_task(read_and_echo(&pairs[i].a, 16)));
    }
    co_await coio::yield_now();
    CHECK(in_flight() == count); // every read waits at once
    // All messages go out at once, without the loop running in between, so
    // that every read completes in one burst (which overflows a small CQ).
    // Reverse order, to mix things up.
    for (std::size_t i = count; i-- > 0;) {
        const std::string m = message_for(i);
        REQUIRE(::send(pairs[i].b.native_handle(), m.data(), m.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(m.size()));
    }
    std::vector<std::string> got = co_await coio::gather(std::move(readers));
    std::size_t right = 0;
    for (std::size_t i = 0; i < count; ++i) {
        right += got[i] == message_for(i) ? 1 : 0;
    }
    CHECK(right == count);
    std::size_t echoed = 0;
    for (std::size_t i = 0; i < count; ++i) {
        std::string back = co_await read_exactly(&pairs[i].b, 16);
        echoed += back == message_for(i) ? 1 : 0;
    }
    CHECK(echoed == count);
    CHECK(coio::event_loop::running().stats().registrations <= 2 * count);
}

TEST_CASE("2,000 connections with a read in flight on each all complete", "[backend]") {
    run_clean(many_reads_in_flight(2000));
}

// --- io_uring specifics ---------------------------------------------------------

// submit() never finishes inline on a completion backend, even when the data
// is there already: the SQE waits for the loop's next io_uring_enter.
coio::task<> submit_never_inline() {
    sock_pair p = co_await connected_pair();
    co_await send_all(&p.b, "ready");
    int left = 0;
    std::coroutine_handle<> waiter;
    raw_recv r(p.a.native_handle(), &left, &waiter);
    r.start();
    CHECK(left == 1);
    co_await all_done{&left, &waiter};
    CHECK(r.text() == "ready");
}

template <class T>
T run_on_uring(coio::task<T> t) {
    const std::size_t fds_before = coio::test::open_fd_count();
    std::optional<T> out;
    {
        coio::event_loop loop("io_uring");
        REQUIRE(loop.backend_name() == "io_uring");
        out.emplace(loop.run_until_complete(std::move(t)));
        require_clean(loop);
    }
    CHECK(coio::test::open_fd_count() == fds_before);
    return std::move(*out);
}

coio::task<bool> uring_scenarios() {
    co_await submit_never_inline();
    co_await close_with_read_in_flight();
    co_await close_listener_with_accept_in_flight();
    co_await cancel_blocked_read();
    co_await forget_in_flight_read();
    co_await reuse_within_one_iteration();
    co_await reuse_after_kernel_took_the_read();
    co_return true;
}

// Each setup tier the backend can fall back to (DEFER_TASKRUN on 6.1+,
// COOP_TASKRUN on 5.19+, plain), forced through COIO_URING_SETUP.
TEST_CASE("an explicit io_uring loop queues, cancels and closes like the contract says",
          "[backend][io_uring]") {
    if (!uring_available()) {
        WARN("io_uring is not available here; running on " << coio::backend_name());
        return;
    }
    for (const char* tier : {"defer", "coop", "plain"}) {
        INFO("COIO_URING_SETUP=" << tier);
        ::setenv("COIO_URING_SETUP", tier, 1);
        CHECK(run_on_uring(uring_scenarios()));
        CHECK(run_on_uring(wake_rounds_result(50)));
    }
    ::unsetenv("COIO_URING_SETUP");
}

coio::task<bool> many_reads_result(std::size_t count) {
    co_await many_reads_in_flight(count);
    co_return true;
}

// Rings of 16 entries: submit() finds the SQ full and flushes it, and 2,000
// completions overflow the CQ (IORING_FEAT_NODROP keeps them in the kernel
// until reap() flushes them). Nothing may be lost or delivered twice.
TEST_CASE("a full submission queue and an overflowing completion queue lose nothing",
          "[backend][io_uring]") {
    if (!uring_available()) {
        WARN("io_uring is not available here; running on " << coio::backend_name());
        return;
    }
    ::setenv("COIO_URING_ENTRIES", "16", 1);
    for (const char* tier : {"defer", "coop", "plain"}) {
        INFO("COIO_URING_SETUP=" << tier);
        ::setenv("COIO_URING_SETUP", tier, 1);
        CHECK(run_on_uring(many_reads_result(2000)));
        CHECK(run_on_uring(uring_scenarios()));
    }
    ::unsetenv("COIO_URING_SETUP");
    ::unsetenv("COIO_URING_ENTRIES");
}

} // namespace
