// coio/detail/io_op.hpp - one I/O operation as the backends see it.
//
// An io_op lives in the awaiter of the coroutine that waits for it, so its
// buffer, its sockaddr and the op itself stay put until the backend has
// delivered the completion (see backend.hpp for the contract). No OS types
// here: the sockaddr is an opaque byte area owned by coio::address.
//
// recv_pooled is the one operation whose buffer the backend supplies: it comes
// from the loop's pool (io_uring: a provided-buffer ring; epoll and kqueue: a
// pool taken from only once the socket is readable), so a socket waiting for
// data holds none. The receiver gets it as a coio::buffer_lease and gives it
// back through buffer_pool::release_buffer.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace coio::detail {

enum class op_code : std::uint8_t {
    accept,  // addr/addr_len receive the peer; result is the new fd
    connect, // addr/addr_len hold the target; result is 0
    recv,    // buf/len; result is the byte count, 0 at EOF
    send,    // buf/len; result is the byte count
    // buf points to a msghdr (prepared by lib/net, opaque here) whose iovecs,
    // name and control areas live as long as the op; result is the byte count.
    // Datagram sockets use these: the msghdr carries the peer address.
    recvmsg,
    sendmsg,
    // Stream sockets only. The backend picks the buffer; buf/len are ignored.
    // On completion with result > 0 (the byte count): m_buf is the data,
    // m_len the buffer's id and m_addr the buffer_pool it must be given back
    // to; the receiver owns the buffer until release_buffer(id). 0 at EOF.
    recv_pooled,
};

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

struct io_op {
    op_code m_code = op_code::recv;
    std::uint8_t m_state = 0; // backend-private
    int m_fd = -1;
    void* m_buf = nullptr;
    std::size_t m_len = 0;
    void* m_addr = nullptr; // sockaddr storage for accept and connect
    std::uint32_t* m_addr_len = nullptr;
    int m_result = 0;       // >= 0 as above, or -errno
    bool m_pending = false; // submitted and not yet completed (set by the loop)

    // Called once by the loop when the backend completes the op (never from
    // inside submit()). If null, the loop posts m_waiter to the ready queue.
    void (*m_complete)(io_op&) noexcept = nullptr;
    std::coroutine_handle<> m_waiter;

    std::uint64_t m_backend_data = 0; // backend-private
};

} // namespace coio::detail
