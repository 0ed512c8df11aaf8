// lib/backend/backend.hpp - the private interface every I/O backend implements.
//
// Required semantics (each backend must provide all of them):
//  - submit(op): start `op`. Return true if it finished inline - op.m_result
//    is set and no completion will be delivered. Otherwise deliver exactly one
//    completion later, from inside wait(), by calling sink.complete(op) with
//    op.m_result set (>= 0, or -errno). Readiness backends (epoll, kqueue) try
//    the syscall first and only wait on EAGAIN; completion backends (io_uring)
//    queue the operation. The op, its buffer and its sockaddr stay valid until
//    the completion (the awaiter lives in a suspended frame).
//  - recv_pooled (io_op.hpp): the backend supplies the buffer, from a pool
//    it owns, and lends it with the completion (op.m_buf / m_len = id /
//    m_addr = this backend as a buffer_pool). A socket waiting for data holds
//    no buffer. Readiness backends take one only when the fd is readable;
//    io_uring keeps one multishot recv armed per socket on a provided-buffer
//    ring, queues what arrives while nobody waits (bounded by the ring) and
//    completes the next recv_pooled inline from that queue (the one case
//    where io_uring's submit() returns true); a recv_pooled waiting for data
//    is parked, not in the kernel, so cancel() and close() complete it
//    without a kernel round trip (through the next wait()); without ring
//    support it submits a single-shot recv into a pool buffer. The kernel
//    only ever writes into pool buffers, never into an awaiter.
//  - release_buffer(id) (from buffer_pool): a lent buffer comes back. Loop
//    thread only; every lease ends before the backend is destroyed.
//  - cancel(op): ask an in-flight op to finish early. Its completion still
//    comes through the sink, with -ECANCELED or, if the operation won the race,
//    its real result. Never calls the sink from inside cancel() itself... except
//    readiness backends, whose cancellation is immediate: they call the sink
//    synchronously, which only posts a handle, never resumes one.
//  - forget(op): like cancel, then block until the backend and the kernel no
//    longer touch op; no completion is delivered. Used only when a frame is
//    destroyed mid-await.
//  - close(fd): in-flight ops on fd complete with -ECANCELED, any registration
//    for fd is dropped, and fd is closed. A later fd with the same number never
//    receives a completion or readiness meant for the old one.
//  - wait(timeout): block until at least one completion is delivered, wake()
//    is called, or timeout passes (negative = no limit; 0 = just poll).
//    Sub-millisecond timeouts round up, never down to a busy loop.
//  - wake(): thread-safe; makes a concurrent or the next wait() return.
//  - registrations(): fds the backend tracks (0 when every socket is closed).
//  - buffers_out(): pool buffers lent or queued for a socket (0 when every
//    socket is closed and every buffer_lease has ended).
#pragma once

#include <coio/detail/io_op.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace coio::detail {

class completion_sink {
public:
    virtual void complete(io_op& op) noexcept = 0;

protected:
    ~completion_sink() = default;
};

class backend : public buffer_pool {
public:
    virtual ~backend() = default;
    [[nodiscard]] virtual std::string_view name() const noexcept = 0;
    virtual bool submit(io_op& op) = 0;
    virtual void cancel(io_op& op) noexcept = 0;
    virtual void forget(io_op& op) noexcept = 0;
    virtual void close(int fd) noexcept = 0;
    virtual void wait(std::chrono::nanoseconds timeout) = 0;
    virtual void wake() noexcept = 0;
    [[nodiscard]] virtual std::size_t registrations() const noexcept = 0;
    [[nodiscard]] virtual std::size_t buffers_out() const noexcept = 0;
};

// Backends compiled into this library, in order of preference.
std::vector<std::string> built_backends();
// Backends that can run here now (io_uring: a probe ring can be created).
std::vector<std::string> usable_backends();
// The backend named by `requested` ("epoll", "io_uring", "kqueue", "auto" or
// empty for auto). Throws std::runtime_error naming the backend and why.
std::unique_ptr<backend> make_backend(std::string_view requested, completion_sink& sink);

// Per-backend factories (defined only where built). Each throws
// std::runtime_error with the failing call and errno text.
std::unique_ptr<backend> make_epoll_backend(completion_sink& sink);
std::unique_ptr<backend> make_uring_backend(completion_sink& sink);
std::unique_ptr<backend> make_kqueue_backend(completion_sink& sink);
// Empty string if io_uring works here, else why not ("io_uring_queue_init: ...").
std::string uring_probe();

} // namespace coio::detail
