// lib/loop_wait.cpp - phase 2 of an iteration (docs/design.md): the wait for
// I/O, the next timer or work from another thread, the wake-up that ends it
// (event_loop::call_soon_threadsafe, which every hand-off between threads and
// loops goes through), and the busy poll (event_loop::set_busy_poll).
//
// Waking a loop costs the waker a syscall (the eventfd write) and the loop a
// pass through the kernel; it is only needed while the loop sleeps. The loop
// says it is about to sleep (m_parked) and then looks at the remote queue; a
// waker queues its callback and then looks at m_parked. Both in seq_cst
// order, so at least one sees the other's write: either the loop does not
// sleep, or the waker writes the eventfd. A loop that is running, or that
// another waker already woke, is not woken again.
#include "loop_impl.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <utility>

namespace coio {

namespace {

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Clears m_parked when the wait ends, also by an exception.
class park_guard {
public:
    explicit park_guard(std::atomic<bool>& parked) noexcept : m_parked(parked) {
        m_parked.store(true, std::memory_order_seq_cst);
    }
    park_guard(const park_guard&) = delete;
    park_guard& operator=(const park_guard&) = delete;
    ~park_guard() { m_parked.store(false, std::memory_order_relaxed); }

private:
    std::atomic<bool>& m_parked;
};

} // namespace

namespace detail {

void loop_impl::wait_for_work(std::chrono::nanoseconds timeout) {
    if (timeout.count() != 0 && m_busy_poll.count() > 0) {
        timeout = busy_poll(timeout);
        if (timeout.count() == 0) {
            return; // work came, or the timer is due: I/O was polled just now
        }
    }
    if (timeout.count() == 0) {
        m_backend->wait(timeout);
        return;
    }
    park_guard parked(m_parked);
    if (m_remote_pending.load(std::memory_order_seq_cst)) {
        timeout = std::chrono::nanoseconds{0}; // queued before m_parked was seen
    }
    m_backend->wait(timeout);
}

std::chrono::nanoseconds loop_impl::busy_poll(std::chrono::nanoseconds timeout) {
    using std::chrono::steady_clock;
    const steady_clock::time_point start = steady_clock::now();
    const std::chrono::nanoseconds limit =
        timeout.count() > 0 && timeout < m_busy_poll ? timeout : m_busy_poll;
    // The remote queue's flag is looked at on every turn; I/O is polled and
    // the clock read once every 64 turns. An epoll_wait is a syscall, during
    // which a hand-off waits: polled every 8th turn, it took most of the spin
    // and a round trip between two epoll loops cost 990 ns against 740 now
    // (bench/loop_handoff); a VM's vDSO clock costs more than a turn too.
    for (unsigned n = 0;; ++n) {
        if (m_remote_pending.load(std::memory_order_acquire)) {
            return std::chrono::nanoseconds{0};
        }
        if (n % 64 == 31) {
            m_backend->wait(std::chrono::nanoseconds{0}); // completions go to the ready queue
            if (!m_core.m_ready.empty()) {
                return std::chrono::nanoseconds{0};
            }
        }
        if (n % 64 == 63) {
            const std::chrono::nanoseconds spent = steady_clock::now() - start;
            if (spent >= limit) {
                if (timeout.count() < 0) {
                    return timeout;
                }
                return timeout > spent ? timeout - spent : std::chrono::nanoseconds{0};
            }
        }
        cpu_relax();
    }
}

} // namespace detail

void event_loop::call_soon_threadsafe(std::function<void()> f) {
    detail::loop_impl& im = *m_impl;
    // wake() runs under the lock: the loop takes the same lock before it can
    // run `f`, so it cannot run it, finish and destroy the backend (closing
    // the eventfd, whose number another socket may then get) while this thread
    // is still inside wake(). Found by the TSan configuration on io_uring.
    std::lock_guard lock(im.m_remote_mutex);
    im.m_remote.push_back(std::move(f));
    // Already pending: whoever queued first woke the loop or saw it awake
    // (and it looks at the queue before it sleeps); it takes this one too.
    if (!im.m_remote_pending.exchange(true, std::memory_order_seq_cst) &&
        im.m_parked.load(std::memory_order_seq_cst)) {
        // From another io_uring loop: a message between the rings.
        event_loop* from = current();
        if (from != nullptr && from != this && from->m_impl->m_backend->wake_other(*im.m_backend)) {
            im.m_ring_wakeups.fetch_add(1, std::memory_order_relaxed);
        } else {
            im.m_backend->wake();
        }
        im.m_wakeups.fetch_add(1, std::memory_order_relaxed);
    }
}

void event_loop::set_busy_poll(std::chrono::nanoseconds d) noexcept {
    m_impl->m_busy_poll = d.count() > 0 ? d : std::chrono::nanoseconds{0};
}

std::chrono::nanoseconds event_loop::busy_poll() const noexcept {
    return m_impl->m_busy_poll;
}

} // namespace coio
