// coio/net/socket.hpp - a non-blocking TCP socket with awaitable operations.
//
//   coio::socket s = co_await coio::connect("127.0.0.1", port);
//   co_await s.write_all("hello\n");
//   std::array<char, 1024> buf;
//   auto [st, n, err] = co_await s.read_some(buf);   // st == io_status::eof at end
//   coio::chunk_result c = co_await s.read_chunk();   // the loop lends the buffer
//
// Every socket is created non-blocking and close-on-exec, and writes never
// raise SIGPIPE (MSG_NOSIGNAL). Operations must be awaited on the loop thread;
// at most one read-side (read_some, read_chunk, accept) and one write-side (write_some,
// write_all, connect) operation may be in flight per socket at a time (a
// second one completes with an error status, EBUSY).
//
// Buffers passed to an operation must stay valid until the co_await finishes;
// awaiting in the same full-expression (the usual `co_await s.read_some(buf)`)
// guarantees it.
//
// close() (and the destructor) closes the fd at once; operations in flight on it
// complete with io_status::cancelled. abort() does the same with a reset (RST)
// instead of an orderly FIN.
//
// Setup and option calls throw net_error naming the call (and the address):
// "setsockopt(SO_KEEPALIVE): Bad file descriptor". They do not suspend.
#pragma once

#include <coio/detail/io_awaiter.hpp>
#include <coio/detail/promise.hpp>
#include <coio/net/address.hpp>
#include <coio/net/buffer_lease.hpp>
#include <coio/net/error.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <span>
#include <string_view>
#include <utility>

namespace coio {

class socket;

struct accept_result;
struct chunk_result;

namespace detail {
// After a connect that succeeded: -ECONNREFUSED if the socket connected to
// itself, else 0. A TCP connect to a local port nobody listens on can pick
// that very port as its own and connect to itself (simultaneous open): the
// "connection" then echoes what is written, and the port stays taken, so a
// server restarting on it cannot bind. A client that retries connecting to a
// server that is down meets this sooner or later; it is refused as the
// connect would have been with a different local port; closing the socket
// then frees the port at once (a reset, no TIME_WAIT).
int refuse_self_connect(int fd, const address& to) noexcept;
} // namespace detail

enum class shutdown_how : unsigned char { read, write, both };
// read_chunk's buffers: adaptive (4 KiB, 64 KiB while reads fill them) or
// small (4 KiB only: what a reader holds beyond its request stays small).
enum class chunk_size : unsigned char { adaptive, small };

class socket {
public:
    socket() noexcept = default;
    // Adopt an fd (it should be non-blocking; the socket closes it).
    explicit socket(int fd) noexcept : m_fd(fd) {}
    socket(socket&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    socket& operator=(socket&& o) noexcept {
        if (this != &o) {
            close();
            m_fd = std::exchange(o.m_fd, -1);
        }
        return *this;
    }
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;
    ~socket() { close(); }

    // A new TCP socket for the address family. Throws net_error.
    static socket open_tcp(address::family family);

    [[nodiscard]] int native_handle() const noexcept { return m_fd; }
    [[nodiscard]] bool is_open() const noexcept { return m_fd >= 0; }
    // Give up ownership of the fd.
    [[nodiscard]] int release() noexcept { return std::exchange(m_fd, -1); }

    // Setup; each throws net_error naming the operation and address.
    void set_reuse_address(bool on);
    // SO_REUSEPORT: several sockets may bind the same address and port (the
    // kernel spreads connections over the listeners, e.g. one per thread).
    void set_reuse_port(bool on);
    void set_nodelay(bool on);
    // TCP keepalive: after `idle` without traffic the kernel sends a probe
    // every `interval`; after `count` unanswered probes the connection is
    // dropped and the next operation fails (io_status::timed_out). A zero
    // keeps that parameter's system default (Linux: 7200 s, 75 s, 9).
    // set_keepalive(false) turns it off.
    void set_keepalive(bool on);
    void set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int count);
    // SO_SNDBUF / SO_RCVBUF. Setting one turns off the kernel's autotuning;
    // Linux doubles the value asked for and reports the doubled size.
    void set_send_buffer_size(int bytes);
    void set_receive_buffer_size(int bytes);
    [[nodiscard]] int send_buffer_size() const;
    [[nodiscard]] int receive_buffer_size() const;
    // Any integer option: setsockopt / getsockopt(fd, level, name) with the
    // OS's constants (e.g. IPPROTO_TCP, TCP_USER_TIMEOUT from <netinet/tcp.h>).
    void set_option(int level, int name, int value);
    [[nodiscard]] int get_option(int level, int name) const;
    void bind(const address& a);
    void listen(int backlog = 1024);
    [[nodiscard]] address local_address() const;
    [[nodiscard]] address peer_address() const;
    // Half-close; returns the error (none on success).
    std::error_code shutdown(shutdown_how how) noexcept;
    // Close now; in-flight operations complete with io_status::cancelled.
    void close() noexcept;
    // Close now with a reset (SO_LINGER 0): unsent data is dropped and the
    // peer's next operation fails with ECONNRESET (io_status::reset) instead
    // of seeing an orderly EOF. In-flight operations complete with
    // io_status::cancelled. For TCP; on other sockets the same as close().
    void abort() noexcept;

    class accept_awaiter;
    class connect_awaiter;
    class recv_awaiter;
    class chunk_awaiter;
    class send_awaiter;

    // Wait for and accept one connection (non-blocking, close-on-exec).
    [[nodiscard]] accept_awaiter accept() noexcept;
    // Connect to `to`. status refused / timed_out / error on failure.
    [[nodiscard]] connect_awaiter connect(const address& to) noexcept;
    // Read what is available, up to buf.size() bytes; waits if nothing is.
    // bytes == 0 with io_status::eof when the peer has closed. An empty
    // buffer completes at once: ok, 0 bytes.
    [[nodiscard]] recv_awaiter read_some(std::span<std::byte> buf) noexcept;
    [[nodiscard]] recv_awaiter read_some(std::span<char> buf) noexcept;
    // Read what is available into a buffer lent by the loop's pool; waits if
    // nothing is. The socket holds no buffer while it waits: the backend takes
    // one only when data is there (see buffer_lease.hpp for the lease's rules).
    // Buffers are 4 KiB; a socket whose read filled one reads into 64 KiB
    // ones until its reads get short again (chunk_size::adaptive), or never
    // (chunk_size::small: one chunk holds at most 4 KiB). ok with the data,
    // or eof / reset / cancelled / error with an empty lease. Stream sockets
    // only. On io_uring the first read_chunk arms a multishot receive that
    // stays armed: data arriving while nobody reads is queued in pool
    // buffers for the next read_chunk, so don't mix read_chunk and read_some
    // on one socket there (read_some then completes with EBUSY).
    [[nodiscard]] chunk_awaiter read_chunk(chunk_size size = chunk_size::adaptive) noexcept;
    // Write what the kernel takes now, at least one byte; waits if it takes none.
    [[nodiscard]] send_awaiter write_some(std::span<const std::byte> buf) noexcept;
    [[nodiscard]] send_awaiter write_some(std::string_view buf) noexcept;
    // Write everything, across partial writes. bytes says how much went out
    // if the status is not ok.
    [[nodiscard]] task<io_result> write_all(std::span<const std::byte> buf);
    [[nodiscard]] task<io_result> write_all(std::string_view buf);
    // Write a lent buffer (read_chunk's data) back out, giving the buffer back
    // as soon as possible: what the socket takes at once goes straight from
    // the loop's buffer; if it would have to wait for room (a peer that does
    // not read), the rest is copied and the buffer returned before waiting,
    // so a stalled peer cannot hold the loop's read buffers (an echo or a
    // proxy written with it stays safe against peers that never read).
    [[nodiscard]] task<io_result> write_all(buffer_lease data);
    // One send that never waits for room: what the socket takes now (at least
    // one byte), or io_status::error with EAGAIN if it takes nothing.
    [[nodiscard]] send_awaiter write_some_now(std::string_view buf) noexcept;

private:
    int m_fd = -1;
};

struct accept_result {
    io_status status = io_status::ok;
    socket sock;
    address peer;
    std::error_code error;
    [[nodiscard]] bool ok() const noexcept { return status == io_status::ok; }
};

class socket::recv_awaiter : public detail::io_awaiter_base {
public:
    recv_awaiter(int fd, void* buf, std::size_t len) noexcept {
        m_op.m_code = detail::op_code::recv;
        m_op.m_fd = fd;
        m_op.m_arg.buf = detail::io_buffer{buf, len};
    }
    // A read of 0 bytes is done at once (ok, 0 bytes) without a syscall: a
    // recv of 0 on a socket with nothing queued says EAGAIN, so it would wait
    // for data it cannot take. A pending cancel still throws.
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        if (m_op.m_arg.buf.size == 0) {
            const detail::cancel_slot* slot = detail::slot_of(h);
            if (slot == nullptr || !slot->requested()) {
                m_op.m_result = 0;
                return false;
            }
        }
        return io_awaiter_base::await_suspend(h);
    }
    io_result await_resume() {
        int r = take_result();
        if (r == 0 && m_op.m_arg.buf.size != 0) {
            return io_result{io_status::eof, 0, {}};
        }
        return detail::make_io_result(r, r > 0 ? static_cast<std::size_t>(r) : 0);
    }
};

// The outcome of read_chunk(): the data (ok) or why there is none.
struct chunk_result {
    io_status status = io_status::ok;
    buffer_lease data;
    std::error_code error;
    [[nodiscard]] bool ok() const noexcept { return status == io_status::ok; }
    explicit operator bool() const noexcept { return ok(); }
};

class socket::chunk_awaiter : public detail::io_awaiter_base {
public:
    // (detail) `code` read_pooled reads a pipe the same way (net/pipe.hpp).
    explicit chunk_awaiter(int fd, detail::op_code code = detail::op_code::recv_pooled,
                           std::uint8_t flags = 0) noexcept {
        m_op.m_code = code;
        m_op.m_flags = flags;
        m_op.m_fd = fd;
        m_op.m_arg.lent = detail::io_lent{nullptr, nullptr, 0};
    }
    chunk_awaiter(chunk_awaiter&&) noexcept = default;
    // A buffer delivered to a frame destroyed before it resumed goes back.
    ~chunk_awaiter() {
        const detail::io_lent& lent = m_op.m_arg.lent;
        if (!m_op.m_pending && !m_taken && m_op.m_result > 0 && lent.pool != nullptr) {
            lent.pool->release_buffer(lent.id);
        }
    }
    chunk_result await_resume() {
        m_taken = true;
        int r = take_result();
        chunk_result out;
        if (r > 0) {
            const detail::io_lent& lent = m_op.m_arg.lent;
            out.data = buffer_lease(lent.pool, lent.id, lent.data, static_cast<std::size_t>(r));
            return out;
        }
        if (r == 0) {
            out.status = io_status::eof;
            return out;
        }
        detail::set_failure(out, r);
        return out;
    }

private:
    bool m_taken = false;
};

class socket::send_awaiter : public detail::io_awaiter_base {
public:
    // (detail) `code` write writes to a pipe the same way (net/pipe.hpp).
    send_awaiter(int fd, const void* buf, std::size_t len, std::uint8_t flags = 0,
                 detail::op_code code = detail::op_code::send) noexcept {
        m_op.m_code = code;
        m_op.m_flags = flags;
        m_op.m_fd = fd;
        m_op.m_arg.buf = detail::io_buffer{const_cast<void*>(buf), len}; // only read for send
    }
    io_result await_resume() {
        int r = take_result();
        return detail::make_io_result(r, r > 0 ? static_cast<std::size_t>(r) : 0);
    }
};

class socket::connect_awaiter : public detail::io_awaiter_base {
public:
    connect_awaiter(int fd, const address& to) noexcept : m_to(to), m_len(m_to.size()) {
        m_op.m_code = detail::op_code::connect;
        m_op.m_fd = fd;
        point();
    }
    connect_awaiter(connect_awaiter&& o) noexcept
        : io_awaiter_base(std::move(o)), m_to(o.m_to), m_len(o.m_len) {
        point();
    }
    io_result await_resume() {
        int r = take_result();
        if (r == 0) {
            r = detail::refuse_self_connect(m_op.m_fd, m_to);
        }
        return detail::make_io_result(r, 0);
    }

private:
    void point() noexcept { m_op.m_arg.peer = detail::io_sockaddr{m_to.data(), &m_len}; }

    address m_to;
    std::uint32_t m_len = 0;
};

class socket::accept_awaiter : public detail::io_awaiter_base {
public:
    explicit accept_awaiter(int fd) noexcept {
        m_op.m_code = detail::op_code::accept;
        m_op.m_fd = fd;
        point();
    }
    accept_awaiter(accept_awaiter&& o) noexcept : io_awaiter_base(std::move(o)) { point(); }
    accept_result await_resume() {
        int r = take_result();
        accept_result out;
        if (r >= 0) {
            out.sock = socket(r);
            m_peer.set_size(m_len);
            out.peer = m_peer;
            return out;
        }
        detail::set_failure(out, r);
        return out;
    }

private:
    void point() noexcept { m_op.m_arg.peer = detail::io_sockaddr{m_peer.data(), &m_len}; }

    address m_peer;
    std::uint32_t m_len = address::capacity();
};

inline socket::accept_awaiter socket::accept() noexcept {
    return accept_awaiter(m_fd);
}
inline socket::connect_awaiter socket::connect(const address& to) noexcept {
    return connect_awaiter(m_fd, to);
}
inline socket::recv_awaiter socket::read_some(std::span<std::byte> buf) noexcept {
    return recv_awaiter(m_fd, buf.data(), buf.size());
}
inline socket::recv_awaiter socket::read_some(std::span<char> buf) noexcept {
    return recv_awaiter(m_fd, buf.data(), buf.size());
}
inline socket::chunk_awaiter socket::read_chunk(chunk_size size) noexcept {
    return chunk_awaiter(m_fd, detail::op_code::recv_pooled,
                         size == chunk_size::small ? detail::op_small : std::uint8_t{0});
}
inline socket::send_awaiter socket::write_some(std::span<const std::byte> buf) noexcept {
    return send_awaiter(m_fd, buf.data(), buf.size());
}
inline socket::send_awaiter socket::write_some(std::string_view buf) noexcept {
    return send_awaiter(m_fd, buf.data(), buf.size());
}
inline socket::send_awaiter socket::write_some_now(std::string_view buf) noexcept {
    return send_awaiter(m_fd, buf.data(), buf.size(), detail::op_nowait);
}

} // namespace coio
