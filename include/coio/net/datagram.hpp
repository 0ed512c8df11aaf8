// coio/net/datagram.hpp - UDP sockets (asyncio's create_datagram_endpoint).
//
//   coio::datagram_socket s = co_await coio::open_datagram_endpoint("127.0.0.1", 0);
//   std::array<char, 1500> buf;
//   coio::datagram_result r = co_await s.receive_from(buf);   // r.peer: the sender
//   if (r && !r.truncated) {
//       co_await s.send_to(std::string_view(buf.data(), r.bytes), r.peer);
//   }
//
// A datagram_socket is the transport and the protocol of asyncio's datagram
// endpoint in one object: instead of datagram_received() callbacks a task
// awaits receive_from() in a loop. Each receive returns one whole datagram (or
// its first buf.size() bytes, with `truncated` set: the rest is discarded by
// the kernel, as recvfrom does), never parts of two.
//
// Expected outcomes are a status, never an exception (STYLE P7): a connected
// socket whose peer answered with ICMP "port unreachable" gets
// io_status::refused from its next send or receive; close() makes operations
// in flight complete with io_status::cancelled. Setup (open, bind, connect,
// options) throws net_error naming the operation and the address.
//
// Every socket is non-blocking and close-on-exec; sends never raise SIGPIPE.
// At most one receive and one send may be in flight per socket at a time.
// Buffers passed to an operation must stay valid until its co_await finishes
// (awaiting in the same full-expression guarantees it). Cancelling the
// awaiting task (handle.cancel()) cancels the operation in the backend, waits
// for the kernel to let go of the buffer, then throws cancelled_error.
#pragma once

#include <coio/detail/io_awaiter.hpp>
#include <coio/net/address.hpp>
#include <coio/net/error.hpp>
#include <coio/task.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace coio {

// The outcome of one send or receive of a datagram.
struct datagram_result {
    io_status status = io_status::ok;
    std::size_t bytes = 0;  // received into the buffer (a datagram may be empty) or sent
    address peer;           // receive: the sender; send: empty
    bool truncated = false; // receive: the datagram was longer than the buffer (MSG_TRUNC)
    std::error_code error;  // set for every status but ok

    [[nodiscard]] bool ok() const noexcept { return status == io_status::ok; }
    explicit operator bool() const noexcept { return ok(); }
};

namespace detail {

// The status of a finished datagram op: bytes for r >= 0, else the error.
inline datagram_result datagram_outcome(int r) {
    datagram_result out;
    if (r < 0) {
        set_failure(out, r);
    } else {
        out.bytes = static_cast<std::size_t>(r);
    }
    return out;
}

// Room for a struct msghdr and its one iovec, filled by lib/net/datagram.cpp
// (public headers include no OS header; the sizes are static_asserted there).
// It lives in the awaiter, so it stays put until the backend is done with it.
struct msg_storage {
    alignas(alignof(void*)) unsigned char msg[7 * sizeof(void*)];
    alignas(alignof(void*)) unsigned char iov[2 * sizeof(void*)];
};

// Point the msghdr at one buffer and at `name` (nullptr: no address; for a
// receive, `name_len` is the room there, for a send the address's size).
void prepare_msg(msg_storage& m, const void* buf, std::size_t len, void* name,
                 std::uint32_t name_len) noexcept;
// After a recvmsg: the length of the sender's address and MSG_TRUNC.
[[nodiscard]] std::uint32_t msg_name_len(const msg_storage& m) noexcept;
[[nodiscard]] bool msg_truncated(const msg_storage& m) noexcept;

} // namespace detail

class datagram_socket {
public:
    datagram_socket() noexcept = default;
    // Adopt a non-blocking datagram fd (the socket closes it).
    explicit datagram_socket(int fd) noexcept : m_fd(fd) {}
    datagram_socket(datagram_socket&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    datagram_socket& operator=(datagram_socket&& o) noexcept {
        if (this != &o) {
            close();
            m_fd = std::exchange(o.m_fd, -1);
        }
        return *this;
    }
    datagram_socket(const datagram_socket&) = delete;
    datagram_socket& operator=(const datagram_socket&) = delete;
    ~datagram_socket() { close(); }

    // A new UDP socket for the address family. Throws net_error.
    static datagram_socket open_udp(address::family family);

    [[nodiscard]] int native_handle() const noexcept { return m_fd; }
    [[nodiscard]] bool is_open() const noexcept { return m_fd >= 0; }
    [[nodiscard]] int release() noexcept { return std::exchange(m_fd, -1); }

    // Setup; each throws net_error naming the operation and address.
    void set_reuse_address(bool on);
    void set_broadcast(bool on); // asyncio's allow_broadcast
    void bind(const address& a);
    // Fix the peer: send()/receive() then talk to it only, datagrams from
    // others are dropped by the kernel, and ICMP errors are reported (refused).
    // Does not suspend (a UDP connect sends nothing).
    void connect(const address& to);
    [[nodiscard]] address local_address() const;
    [[nodiscard]] address peer_address() const;
    // Close now; in-flight operations complete with io_status::cancelled.
    void close() noexcept;

    class receive_awaiter;
    class send_awaiter;

    // Wait for one datagram; bytes == min(its size, buf.size()), peer is the
    // sender, truncated says some of it did not fit.
    [[nodiscard]] receive_awaiter receive_from(std::span<std::byte> buf) noexcept;
    [[nodiscard]] receive_awaiter receive_from(std::span<char> buf) noexcept;
    // Send one datagram to `to` (an empty one is allowed). Waits only while
    // the socket's send buffer is full.
    [[nodiscard]] send_awaiter send_to(std::span<const std::byte> buf, const address& to) noexcept;
    [[nodiscard]] send_awaiter send_to(std::string_view buf, const address& to) noexcept;
    // The same on a connected socket (connect()); receive() fills peer too.
    [[nodiscard]] receive_awaiter receive(std::span<std::byte> buf) noexcept;
    [[nodiscard]] receive_awaiter receive(std::span<char> buf) noexcept;
    [[nodiscard]] send_awaiter send(std::span<const std::byte> buf) noexcept;
    [[nodiscard]] send_awaiter send(std::string_view buf) noexcept;

private:
    int m_fd = -1;
};

// The msghdr points at the caller's buffer and at an address inside the
// awaiter, so a move builds it again for the new place.
class datagram_socket::receive_awaiter : public detail::io_awaiter_base {
public:
    receive_awaiter(int fd, void* buf, std::size_t len) noexcept : m_buf(buf), m_len(len) {
        m_op.m_code = detail::op_code::recvmsg;
        m_op.m_fd = fd;
        prepare();
    }
    receive_awaiter(receive_awaiter&& o) noexcept
        : io_awaiter_base(std::move(o)), m_buf(o.m_buf), m_len(o.m_len) {
        prepare();
    }
    datagram_result await_resume() {
        const int r = take_result();
        datagram_result out = detail::datagram_outcome(r);
        if (r < 0) {
            return out;
        }
        out.truncated = detail::msg_truncated(m_msg);
        const std::uint32_t n = detail::msg_name_len(m_msg);
        m_peer.set_size(n < address::capacity() ? n : address::capacity());
        out.peer = m_peer;
        return out;
    }

private:
    void prepare() noexcept {
        detail::prepare_msg(m_msg, m_buf, m_len, m_peer.data(), address::capacity());
        m_op.m_arg.msg = m_msg.msg;
    }

    detail::msg_storage m_msg;
    address m_peer;
    void* m_buf;
    std::size_t m_len;
};

class datagram_socket::send_awaiter : public detail::io_awaiter_base {
public:
    // `to` may be empty (a connected socket's send).
    send_awaiter(int fd, const void* buf, std::size_t len, const address& to) noexcept
        : m_to(to), m_buf(buf), m_len(len) {
        m_op.m_code = detail::op_code::sendmsg;
        m_op.m_fd = fd;
        prepare();
    }
    send_awaiter(send_awaiter&& o) noexcept
        : io_awaiter_base(std::move(o)), m_to(o.m_to), m_buf(o.m_buf), m_len(o.m_len) {
        prepare();
    }
    datagram_result await_resume() { return detail::datagram_outcome(take_result()); }

private:
    void prepare() noexcept {
        detail::prepare_msg(m_msg, m_buf, m_len, m_to.empty() ? nullptr : m_to.data(), m_to.size());
        m_op.m_arg.msg = m_msg.msg;
    }

    detail::msg_storage m_msg;
    address m_to;
    const void* m_buf;
    std::size_t m_len;
};

inline datagram_socket::receive_awaiter
datagram_socket::receive_from(std::span<std::byte> buf) noexcept {
    return receive_awaiter(m_fd, buf.data(), buf.size());
}
inline datagram_socket::receive_awaiter
datagram_socket::receive_from(std::span<char> buf) noexcept {
    return receive_awaiter(m_fd, buf.data(), buf.size());
}
inline datagram_socket::send_awaiter datagram_socket::send_to(std::span<const std::byte> buf,
                                                              const address& to) noexcept {
    return send_awaiter(m_fd, buf.data(), buf.size(), to);
}
inline datagram_socket::send_awaiter datagram_socket::send_to(std::string_view buf,
                                                              const address& to) noexcept {
    return send_awaiter(m_fd, buf.data(), buf.size(), to);
}
inline datagram_socket::receive_awaiter
datagram_socket::receive(std::span<std::byte> buf) noexcept {
    return receive_awaiter(m_fd, buf.data(), buf.size());
}
inline datagram_socket::receive_awaiter datagram_socket::receive(std::span<char> buf) noexcept {
    return receive_awaiter(m_fd, buf.data(), buf.size());
}
inline datagram_socket::send_awaiter
datagram_socket::send(std::span<const std::byte> buf) noexcept {
    return send_awaiter(m_fd, buf.data(), buf.size(), address{});
}
inline datagram_socket::send_awaiter datagram_socket::send(std::string_view buf) noexcept {
    return send_awaiter(m_fd, buf.data(), buf.size(), address{});
}

// Options of open_datagram_endpoint (asyncio's keyword arguments).
struct datagram_options {
    bool reuse_address = false;   // SO_REUSEADDR before bind
    bool allow_broadcast = false; // SO_BROADCAST
};

// asyncio.create_datagram_endpoint(local_addr=(host, port)): a UDP socket
// bound to host:port (port 0: the kernel picks one, see local_address()),
// not connected - use send_to/receive_from. A name is resolved off the loop
// thread (resolve.hpp) and its first address is used. Throws net_error naming
// the host or address ("bind 127.0.0.1:53: Permission denied").
task<datagram_socket> open_datagram_endpoint(std::string local_host, std::uint16_t local_port,
                                             datagram_options opts = {});
// asyncio.create_datagram_endpoint(local_addr=..., remote_addr=(host, port)):
// also connected to the remote address - use send/receive. An empty
// local_host leaves the local side to the kernel (asyncio's local_addr=None).
// With both given, the first remote address of the local address's family is
// used. Throws as above ("connect to ...").
task<datagram_socket> open_datagram_endpoint(std::string local_host, std::uint16_t local_port,
                                             std::string remote_host, std::uint16_t remote_port,
                                             datagram_options opts = {});

} // namespace coio
