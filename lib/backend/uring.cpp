// lib/backend/uring.cpp - the io_uring completion backend for Linux: submit,
// cancel, forget, close, the SQEs and what a CQE does. The discipline is
// described in uring_backend.hpp; setup in uring_setup.cpp; the wait and the
// CQE loop in uring_wait.cpp; recv_pooled (provided-buffer ring, multishot
// recv) in uring_buffers.cpp.
#include "backend/uring_backend.hpp"
#include "backend/valgrind_marks.hpp"

#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace coio::detail {

namespace {
// Ops on non-socket fds, which may complete with -EAGAIN (uring_backend.hpp).
bool is_rw(op_code c) noexcept {
    return c == op_code::read || c == op_code::write || c == op_code::read_pooled;
}
// Ops that read into a buffer of the single-shot pool.
bool uses_single(op_code c) noexcept {
    return c == op_code::recv_pooled || c == op_code::read_pooled;
}
} // namespace

bool uring_backend::submit(io_op& op) {
    op.m_state = 0;
    if (const int r = start(); r < 0) {
        enter_failed(r);
    }
    if (op.m_fd < 0) {
        op.m_result = -EBADF;
        return true;
    }
    if (op.m_code == op_code::connect &&
        (op.m_arg.peer.addr == nullptr || op.m_arg.peer.len == nullptr)) {
        op.m_result = -EINVAL;
        return true;
    }
    const auto fd = static_cast<std::size_t>(op.m_fd);
    if (fd >= m_table.size()) {
        m_table.resize(fd + 1); // geometric capacity; entries past the highest fd untouched
    }
    // Room for the completions finish() defers (in close and cancel:
    // noexcept code, where the vector could not grow), reserved at the first
    // submit, where running out of memory reaches the awaiting coroutine:
    // 8 KiB per loop, not per connection. Past that many deferred between
    // two waits the vector grows (and only there can running out abort).
    if (m_deferred.capacity() < deferred_reserve) {
        m_deferred.reserve(deferred_reserve);
    }
    const bool writes = is_write_side(op.m_code);
    {
        entry& e = m_table[fd];
        if ((writes ? e.writer : e.reader) != nullptr) {
            op.m_result = -EBUSY; // another op of the same direction is in flight
            return true;
        }
        if (!writes && (e.armed || e.head != no_buf || e.end != no_end)) {
            // A multishot recv owns the socket's incoming data: only
            // recv_pooled may read it (socket.hpp, read_chunk).
            if (op.m_code != op_code::recv_pooled) {
                op.m_result = -EBUSY;
                return true;
            }
        }
        if (uses_single(op.m_code)) {
            if (op.m_code == op_code::recv_pooled) {
                const pool_mode pm = pooled_mode();
                if (pm == pool_mode::ring) {
                    return submit_pooled(op, e);
                }
                if (pm == pool_mode::unknown) {
                    op.m_result = -ENOMEM; // no memory to set the ring up; the next read retries
                    return true;
                }
            }
            const std::int64_t id = m_single.take();
            if (id < 0) {
                // None lent: no memory for a first slab, and none to wait for.
                op.m_result = m_single.out() > 0 ? -ENOBUFS : -ENOMEM;
                return true;
            }
            const auto bid = static_cast<std::uint32_t>(id);
            op.m_arg.lent = io_lent{m_single.data(bid), nullptr, bid | single_bit};
        }
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        if (uses_single(op.m_code)) {
            m_single.give_back(op.m_arg.lent.id & ~single_bit);
        }
        throw std::runtime_error("io_uring: the submission queue is full and the kernel "
                                 "refuses to take it");
    }
    prep(sqe, op);
    io_uring_sqe_set_data64(sqe, op_data(op));
    entry& e = m_table[fd]; // get_sqe() may have reaped, never resized
    const bool was = active(e);
    (writes ? e.writer : e.reader) = &op;
    settle(e, was);
    op.m_state = st_in_flight;
    ++m_in_flight;
    return false;
}

// Queued for the next wait(); the op's own CQE reports the outcome. A parked
// recv_pooled is not in the kernel: it ends at once (delivered by wait()).
void uring_backend::cancel(io_op& op) noexcept {
    if ((op.m_state & st_parked) != 0) {
        unpark(op);
        op.m_result = -ECANCELED;
        finish(op, mode::defer);
        return;
    }
    if ((op.m_state & st_in_flight) != 0) {
        send_cancel(op);
    }
}

void uring_backend::forget(io_op& op) noexcept {
    if ((op.m_state & st_deferred) != 0) {
        std::replace(m_deferred.begin(), m_deferred.end(), &op, static_cast<io_op*>(nullptr));
        discard(op, op.m_result);
        op.m_state = 0;
        return;
    }
    if ((op.m_state & st_parked) != 0) {
        unpark(op);
        op.m_state = 0;
        return;
    }
    if ((op.m_state & st_in_flight) == 0) {
        return;
    }
    op.m_state |= st_forgotten;
    send_cancel(op);
    while ((op.m_state & st_in_flight) != 0) {
        int r = start();
        if (r == 0) {
            r = io_uring_submit_and_wait(&m_ring, 1);
        }
        if (r < 0 && !transient(r)) {
            // Returning would let the frame go while the kernel may still
            // write into its buffer.
            std::fprintf(stderr,
                         "coio: io_uring: cannot wait for a cancelled operation to release "
                         "its buffer (%s)\n",
                         std::strerror(-r));
            std::abort();
        }
        reap(mode::deliver); // other ops complete normally meanwhile
    }
}

void uring_backend::close(int fd) noexcept {
    if (fd < 0) {
        return;
    }
    if (static_cast<std::size_t>(fd) < m_table.size()) {
        entry& e = m_table[static_cast<std::size_t>(fd)];
        if (active(e)) {
            detach_and_cancel(fd, e);
        }
    }
    ::close(fd);
}

void uring_backend::prep(io_uring_sqe* sqe, io_op& op) const noexcept {
    if ((op.m_state & st_polling) != 0) {
        io_uring_prep_poll_add(sqe, op.m_fd, is_write_side(op.m_code) ? POLLOUT : POLLIN);
        return;
    }
    constexpr auto current_position = static_cast<__u64>(-1); // pipes have none
    switch (op.m_code) {
    case op_code::recv:
    case op_code::send: {
        const io_buffer& b = op.m_arg.buf;
        const auto len = static_cast<unsigned>(std::min<std::size_t>(b.size, INT_MAX));
        if (op.m_code == op_code::recv) {
            io_uring_prep_recv(sqe, op.m_fd, b.data, len, 0);
        } else {
            const int nowait = (op.m_flags & op_nowait) != 0 ? MSG_DONTWAIT : 0;
            io_uring_prep_send(sqe, op.m_fd, b.data, len, MSG_NOSIGNAL | nowait);
        }
        break;
    }
    case op_code::recv_pooled: // the single-shot fallback: a pool buffer of its own
        io_uring_prep_recv(sqe, op.m_fd, op.m_arg.lent.data, small_buffer_size, 0);
        break;
    case op_code::read:
    case op_code::write: {
        const io_buffer& b = op.m_arg.buf;
        const auto len = static_cast<unsigned>(std::min<std::size_t>(b.size, INT_MAX));
        if (op.m_code == op_code::read) {
            io_uring_prep_read(sqe, op.m_fd, b.data, len, current_position);
        } else {
            io_uring_prep_write(sqe, op.m_fd, b.data, len, current_position);
        }
        break;
    }
    case op_code::read_pooled:
        io_uring_prep_read(sqe, op.m_fd, op.m_arg.lent.data, small_buffer_size, current_position);
        break;
    case op_code::wait_readable:
        io_uring_prep_poll_add(sqe, op.m_fd, POLLIN);
        break;
    case op_code::recvmsg:
        io_uring_prep_recvmsg(sqe, op.m_fd, static_cast<msghdr*>(op.m_arg.msg), 0);
        break;
    case op_code::sendmsg:
        io_uring_prep_sendmsg(sqe, op.m_fd, static_cast<const msghdr*>(op.m_arg.msg), MSG_NOSIGNAL);
        break;
    case op_code::accept:
        io_uring_prep_accept(sqe, op.m_fd, static_cast<sockaddr*>(op.m_arg.peer.addr),
                             op.m_arg.peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case op_code::connect:
        io_uring_prep_connect(sqe, op.m_fd, static_cast<const sockaddr*>(op.m_arg.peer.addr),
                              *op.m_arg.peer.len);
        break;
    }
    const bool nowait_pooled =
        op.m_code == op_code::read_pooled && (op.m_state & st_plain_read) == 0;
    if (nowait_pooled || (m_rw_nowait && is_rw(op.m_code))) {
        sqe->rw_flags = RWF_NOWAIT;
    }
}

// A free SQE, pushing the queued ones to the kernel if the SQ is full. Null
// only if the kernel refuses them for good.
io_uring_sqe* uring_backend::get_sqe() noexcept {
    for (int tries = 0; tries < 16; ++tries) {
        if (io_uring_sqe* sqe = io_uring_get_sqe(&m_ring)) {
            return sqe;
        }
        if (flush() < 0) {
            return nullptr;
        }
    }
    return nullptr;
}

// Hands every queued SQE to the kernel now. Returns 0 or -errno. With
// `settle`, the kernel also runs the completions that are pending as task
// work (IORING_ENTER_GETEVENTS), so a cancelled op has dropped its reference
// to its file when this returns (see detach_and_cancel); the CQEs stay in the
// ring for the next wait().
int uring_backend::flush(bool settle) noexcept {
    if (const int r = start(); r < 0) {
        return r;
    }
    for (int tries = 0; settle || io_uring_sq_ready(&m_ring) > 0; ++tries) {
        const int r = settle ? io_uring_submit_and_get_events(&m_ring) : io_uring_submit(&m_ring);
        if (r >= 0 || r == -EINTR) {
            settle = settle && io_uring_sq_ready(&m_ring) > 0;
            continue;
        }
        if (!transient(r) || tries > 1000) {
            return r;
        }
        // Pre-5.19 kernels refuse SQEs (EBUSY) while CQEs wait in the
        // overflow list: make room in the CQ ring. The completions found are
        // delivered by the next wait(), never from inside submit().
        reap(mode::defer);
    }
    return 0;
}

void uring_backend::send_cancel(io_op& op) noexcept {
    if ((op.m_state & st_cancel_sent) != 0) {
        return;
    }
    cancel_data(op_data(op));
    op.m_state |= st_cancel_sent;
}

// Queues a cancel request for the SQE carrying `data`.
void uring_backend::cancel_data(std::uint64_t data) noexcept {
    if (io_uring_sqe* sqe = get_sqe()) {
        io_uring_prep_cancel64(sqe, data, 0);
        io_uring_sqe_set_data64(sqe, tag_cancel);
    }
}

// close(fd) with ops in flight. They are unlinked from fd (a new socket may
// get the number at once), each is cancelled by its user_data, and they end
// with -ECANCELED whatever the kernel reports. Not IORING_ASYNC_CANCEL_FD: it
// matches the *file*, so it would also cancel ops on a dup of this socket
// that stays open; the ops on fd are known here anyway (at most a reader, a
// writer and a multishot recv), and cancel64 works on every kernel this
// backend accepts. The fd's generation moves on, so CQEs of the multishot
// recv (and the buffers they carry, which go back to the ring) are recognised
// as stale. A parked recv_pooled ends -ECANCELED through the next wait().
// Then the SQEs go to the kernel before ::close(fd), for two reasons:
//  - an op SQE still in the SQ names the fd by number: after ::close() and a
//    reuse of the number it would act on the new socket;
//  - an in-flight op holds a reference to the file, so ::close() alone would
//    not close the socket (a listener would still complete handshakes).
//    flush(settle) runs the cancellations to the end, which with
//    DEFER_TASKRUN happens only inside io_uring_enter(GETEVENTS).
void uring_backend::detach_and_cancel(int fd, entry& e) noexcept {
    if (e.reader != nullptr && (e.reader->m_state & st_parked) != 0) {
        io_op& op = *std::exchange(e.reader, nullptr);
        --m_parked;
        op.m_result = -ECANCELED;
        finish(op, mode::defer);
    }
    for (io_op* op : {e.reader, e.writer}) {
        if (op != nullptr) {
            op->m_state |= st_detached;
            send_cancel(*op);
        }
    }
    const bool multishot = e.armed;
    if (multishot) {
        cancel_data(recv_data(fd, e.gen, e.armed_big));
    }
    drop_queue(e);
    const std::uint32_t gen = e.gen + 1;
    e = entry{};
    e.gen = gen;
    --m_registered;
    if (const int r = flush(true); r < 0) {
        std::fprintf(stderr, "coio: io_uring: cannot submit the cancellation of fd %d: %s\n", fd,
                     std::strerror(-r));
    }
    if (multishot) {
        // The multishot's last CQE is normally there now: reap it, so that
        // its buffers are back and nothing of this socket is left in flight
        // (a loop handed to another thread needs that). Op completions
        // found on the way are delivered by the next wait().
        reap(mode::defer);
    }
}

void uring_backend::handle(std::uint64_t data, int res, unsigned flags, mode how) noexcept {
    if (data == tag_wake) {
        m_wake_armed = false; // re-armed by the next wait()
        return;
    }
    if (data == tag_msg) {
        return; // a wake-up from another loop, or one this ring failed to send
    }
    if (is_recv_data(data)) {
        on_recv_cqe(data, res, flags, how);
        return;
    }
    io_op* p = op_from(data);
    if (p == nullptr) {
        return; // a cancel request's own CQE, or liburing's timeout
    }
    io_op& op = *p;
    --m_in_flight;
    if (uses_single(op.m_code) && (op.m_state & st_polling) == 0) {
        if (res > 0) {
            op.m_arg.lent.pool = this;
        } else {
            m_single.give_back(op.m_arg.lent.id & ~single_bit);
        }
    }
    if (op.m_code == op_code::wait_readable && res > 0) {
        res = 0; // POLL_ADD's revents
    }
    if (is_rw(op.m_code) && how != mode::drop && retry(op, res)) {
        return; // submitted again: a poll, or the read/write after it
    }
    if ((op.m_state & st_detached) != 0) {
        discard(op, res); // close() promised -ECANCELED, even if the op won
        res = -ECANCELED;
    } else {
        untrack(op);
        if (res == -EINTR && (op.m_state & st_cancel_sent) != 0) {
            res = -ECANCELED; // cancelled while running in an io-wq worker
        }
    }
    if ((op.m_state & st_forgotten) != 0 || how == mode::drop) {
        discard(op, res);
        op.m_state = 0;
        return;
    }
    mark_kernel_writes(op, res);
    op.m_result = res;
    finish(op, how);
}

// A read, write or read_pooled CQE (uring_backend.hpp): -EAGAIN turns the op
// into a poll, a poll that fired into the op again. True if the op was
// submitted again; false if `res` (possibly changed) is its outcome. A
// cancelled, closed or forgotten op is never submitted again: it ends
// -ECANCELED, having moved nothing.
bool uring_backend::retry(io_op& op, int& res) noexcept {
    const bool polled = (op.m_state & st_polling) != 0;
    if (!polled && res == -EOPNOTSUPP && op.m_code == op_code::read_pooled &&
        (op.m_state & st_plain_read) == 0) {
        op.m_state |= st_plain_read; // no RWF_NOWAIT here: poll first, then read
        res = -EAGAIN;
    }
    if (!polled && res != -EAGAIN) {
        return false;
    }
    if ((op.m_state & (st_cancel_sent | st_detached | st_forgotten)) != 0) {
        if (polled || res == -EAGAIN) {
            res = -ECANCELED;
        }
        op.m_state &= static_cast<std::uint8_t>(~st_polling);
        return false;
    }
    if (polled && res < 0) {
        op.m_state &= static_cast<std::uint8_t>(~st_polling);
        return false; // the poll itself failed
    }
    op.m_state ^= st_polling; // read/write -> poll, poll -> read/write
    if (!resubmit(op)) {
        op.m_state &= static_cast<std::uint8_t>(~st_polling);
        res = -ENOBUFS;
        return false;
    }
    return true;
}

// Queues op's SQE again (same user_data); it stays tracked on its fd.
bool uring_backend::resubmit(io_op& op) noexcept {
    if (op.m_code == op_code::read_pooled && (op.m_state & st_polling) == 0) {
        const std::int64_t id = m_single.take();
        if (id < 0) {
            return false;
        }
        const auto bid = static_cast<std::uint32_t>(id);
        op.m_arg.lent = io_lent{m_single.data(bid), nullptr, bid | single_bit};
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        if (op.m_code == op_code::read_pooled && (op.m_state & st_polling) == 0) {
            m_single.give_back(op.m_arg.lent.id & ~single_bit);
        }
        return false;
    }
    prep(sqe, op);
    io_uring_sqe_set_data64(sqe, op_data(op));
    ++m_in_flight;
    return true;
}

// Hands a finished op to the sink now, or to the next wait() (defer).
void uring_backend::finish(io_op& op, mode how) noexcept {
    if (how == mode::deliver) {
        op.m_state = 0;
        m_sink.complete(op);
        return;
    }
    op.m_state = st_deferred;
    try {
        m_deferred.push_back(&op);
    } catch (...) {
        std::fprintf(stderr, "coio: io_uring: out of memory deferring a completion\n");
        std::abort();
    }
}

// Delivers ops finished outside wait(); true if there were any.
bool uring_backend::deliver_deferred() noexcept {
    if (m_deferred.empty()) {
        return false;
    }
    // By index: a completion may forget() a later entry (nulled) or defer
    // more (appended).
    for (std::size_t i = 0; i < m_deferred.size(); ++i) {
        if (io_op* op = std::exchange(m_deferred[i], nullptr)) {
            op->m_state = 0;
            m_sink.complete(*op);
        }
    }
    m_deferred.clear();
    return true;
}

// A result nobody will see: an accepted connection must not leak, a lent
// buffer goes back.
void uring_backend::discard(io_op& op, int res) noexcept {
    if (op.m_code == op_code::accept && res >= 0) {
        ::close(res);
    }
    if (uses_single(op.m_code) && res > 0) {
        release_buffer(op.m_arg.lent.id);
    }
}

void uring_backend::untrack(io_op& op) noexcept {
    entry& e = m_table[static_cast<std::size_t>(op.m_fd)];
    const bool was = active(e);
    (e.reader == &op ? e.reader : e.writer) = nullptr;
    settle(e, was);
}

} // namespace coio::detail
