// lib/backend/backend.hpp - the private interface every I/O backend implements.
//
// Required semantics, one line per operation (details next to the code that
// keeps them: readiness.hpp for epoll/kqueue, uring_backend.hpp for io_uring,
// buffer_pool.hpp for recv_pooled's buffers):
//  - name()           the backend's name, for messages and stats.
//  - submit(op)       start op (io_op.hpp says what each code carries). true: it
//                     finished inline, op.m_result is set and nothing else
//                     happens. false: exactly one completion follows - either
//                     sink.complete(op), or sink.schedule(op) followed (when the
//                     loop reaches it) by run_ready(op) returning true. What op
//                     points to stays valid until then (it lives in a
//                     suspended frame).
//  - run_ready(op)    retry a scheduled op now. true: finished, result set;
//                     false: it waits on (and is scheduled again later).
//  - cancel(op)       ask an in-flight op to finish early; its completion
//                     still comes, with -ECANCELED or, if the op won the race,
//                     its real result. It never resumes anything itself.
//  - forget(op)       like cancel, then block until neither the backend nor the
//                     kernel touches op; nothing is delivered. Only for frames
//                     destroyed mid-await (loop teardown).
//  - close(fd)        ops in flight on fd complete with -ECANCELED, its
//                     registration goes, the fd is closed; a later fd with the
//                     same number never sees a completion or event of the old.
//  - wait(timeout)    block until something is delivered, wake() is called or
//                     timeout passes (< 0: no limit, 0: poll); sub-millisecond
//                     timeouts are never rounded down to a busy loop.
//  - wake()           any thread: makes a concurrent or the next wait() return.
//  - registrations()  fds the backend tracks (0 once every socket is closed).
//  - buffers_out()    pool buffers lent or queued for a socket (0 once every
//                     socket is closed and every buffer_lease has ended).
//  - buffer_bytes()   read buffers kept for reuse, in bytes (buffer_pool.hpp).
//  - release_buffer(id) (buffer_pool)  a lent buffer comes back; loop thread.
// The sink only posts: a completion never resumes a coroutine from inside
// the backend.
// Fds: every fd an op names is non-blocking (O_NONBLOCK) - sockets as coio
// makes them, pipes/FIFOs/ttys (read, write, read_pooled) and exit watches
// (wait_readable) as lib/net/pipe.cpp and lib/process set them up - because
// the readiness backends try the syscall first. No op ever completes with
// -EAGAIN because of that (op_nowait sends aside): the readiness backends park
// it, io_uring polls (IORING_OP_POLL_ADD) and submits it again. A write to a
// pipe whose reader is gone raises SIGPIPE in the thread that runs it (the
// loop's, on every backend); lib/net/sigpipe.hpp keeps it from killing us.
#pragma once

#include <coio/detail/io_op.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace coio::detail {

// The loop, as the backends see it.
class completion_sink {
public:
    // op finished (m_result set): post its waiter.
    virtual void complete(io_op& op) noexcept = 0;
    // op's fd is ready: queue op; the loop calls run_ready(op) at its turn.
    virtual void schedule(io_op& op) noexcept = 0;
    // Take a scheduled op out of the queue (it is being forgotten).
    virtual void unschedule(io_op& op) noexcept = 0;

protected:
    ~completion_sink() = default;
};

class backend : public buffer_pool {
public:
    virtual ~backend() = default;
    [[nodiscard]] virtual std::string_view name() const noexcept = 0;
    virtual bool submit(io_op& op) = 0;
    virtual bool run_ready(io_op& op) noexcept = 0;
    virtual void cancel(io_op& op) noexcept = 0;
    virtual void forget(io_op& op) noexcept = 0;
    virtual void close(int fd) noexcept = 0;
    virtual void wait(std::chrono::nanoseconds timeout) = 0;
    // The poll of an iteration that has work ready (event_loop::run_once):
    // wait(0) unless the backend has a cheaper way to pick up what is ready
    // now without entering the kernel on every turn (io_uring).
    virtual void poll_ready() { wait(std::chrono::nanoseconds{0}); }
    virtual void wake() noexcept = 0;
    // Wake `target` (another loop's backend) from this loop's thread through
    // this backend, where it has a cheaper way than target.wake() (io_uring:
    // IORING_OP_MSG_RING between two rings). False if not: the caller then
    // calls target.wake(). Called with the target's remote lock held.
    virtual bool wake_other(backend& target) noexcept {
        (void)target;
        return false;
    }
    [[nodiscard]] virtual std::size_t registrations() const noexcept = 0;
    [[nodiscard]] virtual std::size_t buffers_out() const noexcept = 0;
    [[nodiscard]] virtual std::size_t buffer_bytes() const noexcept = 0;
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
