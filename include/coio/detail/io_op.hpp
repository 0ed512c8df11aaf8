// coio/detail/io_op.hpp - one I/O operation as the backends see it.
//
// An io_op lives in the awaiter of the coroutine that waits for it, so what it
// points to (buffer, sockaddr, msghdr) and the op itself stay put until the
// backend has delivered the completion (lib/backend/backend.hpp has the
// contract). No OS types here: a sockaddr or msghdr is an opaque byte area
// owned by the awaiter.
//
// What an op carries depends on its code, so the arguments are a union with a
// member per kind, each named for what it holds:
//
//   code               argument     result (>= 0, or -errno)
//   recv, send         m_arg.buf    bytes moved; recv: 0 at EOF
//   recvmsg, sendmsg   m_arg.msg    bytes moved (the msghdr carries the peer)
//   accept             m_arg.peer   the new fd (peer address written there)
//   connect            m_arg.peer   0 (the address to connect to)
//   recv_pooled        m_arg.lent   bytes received into a buffer the backend
//                                   chose and lends (see buffer_pool); 0 at EOF
//   read, write        m_arg.buf    bytes moved; read: 0 at EOF. Any pollable
//                                   fd (pipe, FIFO, tty), which must be
//                                   non-blocking (O_NONBLOCK)
//   read_pooled        m_arg.lent   as recv_pooled, for such an fd
//   wait_readable      -            0 once the fd is readable (a pidfd: the
//                                   process has exited); nothing is read
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace coio::detail {

enum class op_code : std::uint8_t {
    accept,
    connect,
    recv,
    send,
    recvmsg,
    sendmsg,
    // Stream sockets only: the backend supplies the buffer (lib/backend/
    // buffer_pool.hpp has the rules), so a socket waiting for data holds none.
    recv_pooled,
    // Non-socket fds (pipes, FIFOs, ttys): read(2) / write(2), never recv/send.
    read,
    write,
    read_pooled,
    wait_readable,
};

// The direction an op waits in: send, sendmsg, connect and write wait for
// room (writable); everything else for data (readable).
[[nodiscard]] constexpr bool is_write_side(op_code c) noexcept {
    return c == op_code::send || c == op_code::sendmsg || c == op_code::connect ||
           c == op_code::write;
}

// Takes back buffers lent by recv_pooled (implemented by the backends). Called
// on the loop's thread only, before the loop is destroyed.
class buffer_pool {
public:
    virtual void release_buffer(std::uint32_t id) noexcept = 0;

protected:
    buffer_pool() = default;
    buffer_pool(const buffer_pool&) = default;
    buffer_pool& operator=(const buffer_pool&) = default;
    ~buffer_pool() = default;
};

// A caller's buffer: recv and read fill it, send and write read it.
struct io_buffer {
    void* data;
    std::size_t size;
};

// A socket address area: accept writes the peer there (len in: capacity,
// out: size), connect reads the target from it.
struct io_sockaddr {
    void* addr;
    std::uint32_t* len;
};

// recv_pooled's result: the data, and the buffer to give back (pool, id) once
// the receiver is done with it.
struct io_lent {
    char* data;
    buffer_pool* pool;
    std::uint32_t id;
};

union io_arg {
    io_buffer buf;
    void* msg; // a msghdr prepared by lib/net (recvmsg, sendmsg)
    io_sockaddr peer;
    io_lent lent;
};

// io_op::m_flags. nowait: a send that moves what the socket takes now and
// never waits for room (-EAGAIN if it takes nothing), as MSG_DONTWAIT.
inline constexpr std::uint8_t op_nowait = 1;
// small: a pooled read (recv_pooled, read_pooled) that takes small (4 KiB)
// pool buffers only, never the big ones reads otherwise grow into.
inline constexpr std::uint8_t op_small = 2;

struct io_op {
    std::coroutine_handle<> m_waiter; // resumed once the op has completed
    io_arg m_arg{};
    int m_fd = -1;
    int m_result = 0; // as in the table above
    op_code m_code = op_code::recv;
    std::uint8_t m_flags = 0; // op_nowait
    std::uint8_t m_state = 0; // backend-private
    bool m_pending = false;   // submitted and not yet completed (kept by the loop)
};

} // namespace coio::detail
