// tests/net/net_support.hpp - helpers shared by the net tests: an echo
// handler, deterministic byte patterns, exact reads, connected socket pairs,
// fd flag checks and a counting semaphore built on detail::wait_queue.
//
// Coroutines here take sockets by pointer: the socket lives in the awaiting
// frame, which outlives the callee (it awaits it), so the pointer cannot
// dangle; sockets cannot be shared by value.
#pragma once

#include "support/support.hpp"

#include <coio/coio.hpp>
#include <coio/detail/wait_queue.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace coio::test {

// Byte `i` of stream `seed`: no short period, so a lost, duplicated or
// reordered chunk of any size changes the bytes seen at some offset.
inline char pattern_byte(std::uint64_t seed, std::uint64_t i) noexcept {
    std::uint64_t x = ((i + 1) * 0x9E3779B97F4A7C15ULL) ^ (seed * 0xBF58476D1CE4E5B9ULL);
    x ^= x >> 29;
    return static_cast<char>(x & 0xff);
}

inline std::vector<char> make_pattern(std::uint64_t seed, std::size_t n) {
    std::vector<char> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = pattern_byte(seed, i);
    }
    return v;
}

// Offset of the first byte of `got` that differs from stream `seed` starting
// at offset `at`, or npos.
inline std::size_t first_mismatch(std::uint64_t seed, std::uint64_t at, std::span<const char> got) {
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] != pattern_byte(seed, at + i)) {
            return at + i;
        }
    }
    return std::string::npos;
}

// Echo every byte back until EOF or an error, then close.
inline coio::task<> echo_handler(coio::socket s) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
        coio::io_result r = co_await s.read_some(std::span(buf));
        if (!r) {
            co_return;
        }
        coio::io_result w = co_await s.write_all(std::string_view(buf.data(), r.bytes));
        if (!w) {
            co_return;
        }
    }
}

// Read exactly buf.size() bytes unless a status other than ok comes first;
// bytes says how many arrived.
inline coio::task<coio::io_result> read_exact(coio::socket* s, std::span<char> buf) {
    std::size_t done = 0;
    while (done < buf.size()) {
        coio::io_result r = co_await s->read_some(buf.subspan(done));
        done += r.bytes;
        if (!r) {
            r.bytes = done;
            co_return r;
        }
    }
    co_return coio::io_result{coio::io_status::ok, done, {}};
}

// Write `text` and read the same number of bytes back.
inline coio::task<std::string> round_trip(coio::socket* s, std::string text) {
    coio::io_result w = co_await s->write_all(text);
    REQUIRE(w.ok());
    std::string back(text.size(), '\0');
    coio::io_result r = co_await read_exact(s, std::span(back));
    REQUIRE(r.message() == "ok");
    co_return back;
}

// Round trip that checks the echo matches.
inline coio::task<> expect_echo(coio::socket* s, std::string text) {
    std::string back = co_await round_trip(s, text);
    CHECK(back == text);
}

// A connected pair on loopback without a server: {client, accepted}.
struct socket_pair {
    coio::socket client;
    coio::socket accepted;
};

inline coio::task<socket_pair> connected_pair() {
    coio::socket listener = coio::socket::open_tcp(coio::address::family::ipv4);
    listener.bind(coio::address::loopback_v4(0));
    listener.listen(4);
    socket_pair p;
    p.client = co_await coio::connect(listener.local_address());
    coio::accept_result a = co_await listener.accept();
    REQUIRE(a.ok());
    p.accepted = std::move(a.sock);
    co_return p;
}

// A connected AF_UNIX stream pair from socketpair (non-blocking,
// close-on-exec), without a listener; the fields as connected_pair's.
inline socket_pair unix_pair() {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    return socket_pair{coio::socket(sv[0]), coio::socket(sv[1])};
}

inline bool is_nonblocking(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    return fl != -1 && (fl & O_NONBLOCK) != 0;
}

inline bool is_cloexec(int fd) {
    int fl = ::fcntl(fd, F_GETFD);
    return fl != -1 && (fl & FD_CLOEXEC) != 0;
}

// Make the kernel buffers small (setting them turns off autotuning), so a
// few hundred KiB fill a connection and writes go partial deterministically.
inline void shrink_buffers(const coio::socket& s, int bytes) {
    REQUIRE(::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) == 0);
    REQUIRE(::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == 0);
}

// Counting semaphore for tasks on one loop (FIFO wake-up).
class semaphore {
public:
    explicit semaphore(std::size_t n) noexcept : m_free(n) {}
    coio::task<> acquire() {
        while (m_free == 0) {
            co_await m_q.wait();
        }
        --m_free;
    }
    void release() noexcept {
        ++m_free;
        m_q.notify_one();
    }

private:
    std::size_t m_free;
    coio::detail::wait_queue m_q;
};

// Every task that calls arrive_and_wait() waits until `count` have arrived;
// it returns true in the last one to arrive.
class barrier {
public:
    explicit barrier(std::size_t count) noexcept : m_left(count) {}
    coio::task<bool> arrive_and_wait() {
        if (--m_left == 0) {
            m_q.notify_all();
            co_return true;
        }
        while (m_left != 0) {
            co_await m_q.wait();
        }
        co_return false;
    }

private:
    std::size_t m_left;
    coio::detail::wait_queue m_q;
};

} // namespace coio::test

namespace coio::test {

// One read_some / read_chunk as a task, so that wait_for can bound it (the
// raw I/O awaiters do not move into wait_for: issue 11.2).
inline coio::task<coio::io_result> read_once(coio::socket* s, std::span<char> buf) {
    co_return co_await s->read_some(buf);
}
template <class Source>
coio::task<coio::chunk_result> chunk_once(Source* s) {
    co_return co_await s->read_chunk();
}

} // namespace coio::test
