// lib/backend/uring_wait.cpp - the io_uring backend's wait: submitting what
// is queued and waiting for completions (wait, poll_ready), the wake-up from
// other threads (wake, arm_wake), and taking the CQEs (reap; each is handled
// in uring.cpp). The discipline is described in uring_backend.hpp.
#include "backend/uring_backend.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

namespace coio::detail {

void uring_backend::wait(std::chrono::nanoseconds timeout) {
    if (const int r = start(); r < 0) {
        enter_failed(r);
    }
    arm_wake();
    // Ring slabs beyond recent demand go back within pool_trim_period, also
    // when the loop has nothing else to wake it up for.
    if (const std::chrono::nanoseconds trim = maintain_rings();
        trim.count() >= 0 && (timeout.count() < 0 || trim < timeout)) {
        timeout = trim;
    }
    rearm_starved(timeout.count() < 0);
    if (deliver_deferred()) {
        timeout = std::chrono::nanoseconds{0};
    }
    int r = 0;
    if (!m_lazy_poll) {
        m_lazy_polls = 0;
    }
    if (timeout.count() == 0) {
        // Enter only to submit; reap() itself enters when the kernel flags
        // pending task work (IORING_SQ_TASKRUN) or a CQ overflow - except in
        // a lazy poll, which leaves the task work for later.
        if (io_uring_sq_ready(&m_ring) > 0) {
            r = m_lazy_poll ? io_uring_submit(&m_ring) : io_uring_submit_and_get_events(&m_ring);
        }
    } else if (timeout.count() < 0) {
        r = io_uring_submit_and_wait(&m_ring, 1);
    } else {
        // One io_uring_enter with IORING_ENTER_EXT_ARG (5.11); older kernels
        // get a timeout SQE from liburing, whose CQE reap() ignores.
        __kernel_timespec ts{};
        ts.tv_sec = static_cast<long long>(timeout.count() / 1'000'000'000);
        ts.tv_nsec = static_cast<long long>(timeout.count() % 1'000'000'000);
        io_uring_cqe* cqe = nullptr;
        r = io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, &ts, nullptr);
    }
    if (r < 0 && !transient(r)) {
        enter_failed(r);
    }
    if (timeout.count() != 0 && !m_lazy_poll) {
        // The enter that waited ran the task work there was; completions
        // that came in since wait for the next turn, as in the raw loop
        // (reap's peek entering again for them was most of the loop's
        // io_uring_enter calls under load: see poll_ready).
        m_lazy_poll = true;
        reap(mode::deliver);
        m_lazy_poll = false;
        return;
    }
    reap(mode::deliver);
}

// With DEFER_TASKRUN, completions arriving while the loop runs wait as task
// work that only an io_uring_enter(GETEVENTS) runs; the kernel flags it
// (IORING_SQ_TASKRUN) and reap()'s peek enters for it. A loop that polls
// with work ready on every turn then entered the kernel several times for
// each time it slept: 4,000 enters where the raw io_uring loop made 1,000,
// at 100 connections x depth 1. A poll with work ready takes what is in the
// CQ ring and submits what is queued; the task work runs when the loop next
// waits, or at every 16th such poll in a row, so that a loop that always
// has work ready still sees new I/O.
void uring_backend::poll_ready() {
    constexpr unsigned lazy_limit = 16;
    m_lazy_poll = ++m_lazy_polls < lazy_limit;
    struct reset {
        bool& lazy;
        ~reset() { lazy = false; }
    } guard{m_lazy_poll};
    wait(std::chrono::nanoseconds{0});
}

void uring_backend::wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(m_wake.get(), &one, sizeof one);
}

void uring_backend::enter_failed(int r) {
    if (r == -EEXIST) {
        throw std::logic_error("coio: an io_uring event loop was driven from a second "
                               "thread; one thread must run it (the first that did)");
    }
    throw std::runtime_error(sys::errno_message("io_uring_enter", -r));
}

void uring_backend::arm_wake() {
    if (m_wake_armed) {
        return;
    }
    if (io_uring_sqe* sqe = get_sqe()) {
        io_uring_prep_read(sqe, m_wake.get(), &m_wake_count, sizeof m_wake_count, 0);
        io_uring_sqe_set_data64(sqe, tag_wake);
        m_wake_armed = true;
    }
}

// Takes every CQE there is, one at a time: each is copied out and consumed
// before it is handled, because handling may re-enter the backend (a
// completion callback that submits, or forgets an op whose CQE is next in the
// ring: that forget() must still find it there).
void uring_backend::reap(mode how) noexcept {
    // Bounded, so completions racing in cannot keep this from returning.
    for (std::size_t n = 0; n <= m_cq_entries; ++n) {
        // Enters the kernel itself when the CQ ring is empty and
        // IORING_SQ_TASKRUN or IORING_SQ_CQ_OVERFLOW is set; skips liburing's
        // own timeout CQEs.
        io_uring_cqe* cqe = nullptr;
        if (m_lazy_poll && io_uring_cq_ready(&m_ring) == 0) {
            break; // peek would enter for the task work: poll_ready()
        }
        if (io_uring_peek_cqe(&m_ring, &cqe) != 0 || cqe == nullptr) {
            break;
        }
        const std::uint64_t data = cqe->user_data;
        const int res = cqe->res;
        const unsigned flags = cqe->flags;
        io_uring_cqe_seen(&m_ring, cqe);
        handle(data, res, flags, how);
    }
}

} // namespace coio::detail
