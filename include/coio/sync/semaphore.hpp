// coio/sync/semaphore.hpp - semaphore and bounded_semaphore
// (asyncio.Semaphore, asyncio.BoundedSemaphore).
//
//   coio::semaphore slots(4);
//   auto permit = co_await slots.scoped();   // asyncio: async with slots:
//   co_await slots.acquire(); ...; slots.release();
//
// FIFO: release() hands the permit straight to the longest waiter, so
// try_acquire() and new acquirers cannot overtake waiting tasks.
// Cancellation works as for coio::lock (lock.hpp): cancelled_error from
// acquire() always means no permit was taken - a permit handed to a waiter
// whose cancel arrived before it ran goes to the next waiter or back to the
// count. One loop only; the semaphore must outlive the awaits on it.
#pragma once

#include <coio/detail/waiter_list.hpp>
#include <coio/sync/lock_guard.hpp>

#include <coroutine>
#include <cstddef>
#include <limits>

namespace coio {

class semaphore {
public:
    explicit semaphore(std::size_t value = 1) noexcept : semaphore(value, unbounded) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    class acquire_awaiter {
    public:
        explicit acquire_awaiter(semaphore& s) noexcept : m_sem(&s) {}
        [[nodiscard]] bool await_ready() noexcept { return m_sem->try_acquire(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return m_sem->m_waiters.park<&detail::sync_phrase::semaphore_acquire>(m_waiter, h);
        }
        // Throws cancelled_error (no permit taken) if cancelled.
        void await_resume();

    protected:
        semaphore* m_sem;
        detail::sync_waiter m_waiter;
    };

    class scoped_awaiter : public acquire_awaiter {
    public:
        using acquire_awaiter::acquire_awaiter;
        lock_guard<semaphore> await_resume() {
            acquire_awaiter::await_resume();
            return lock_guard<semaphore>(*m_sem);
        }
    };

    // Take a permit, suspending while none is free (or others wait first).
    [[nodiscard]] acquire_awaiter acquire() noexcept { return acquire_awaiter(*this); }
    // The same, returning a guard that releases the permit.
    [[nodiscard]] scoped_awaiter scoped() noexcept { return scoped_awaiter(*this); }
    // Take a permit if one is free and nobody waits; never suspends.
    bool try_acquire() noexcept {
        if (m_value == 0 || !m_waiters.empty()) {
            return false;
        }
        --m_value;
        return true;
    }
    // Give a permit back: to the longest waiter, or to the count. A
    // bounded_semaphore throws std::logic_error if that would exceed its
    // initial value (asyncio raises ValueError).
    void release();
    // No permit free (acquire would suspend).
    [[nodiscard]] bool locked() const noexcept { return m_value == 0; }
    // Free permits.
    [[nodiscard]] std::size_t value() const noexcept { return m_value; }

protected:
    static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();
    semaphore(std::size_t value, std::size_t bound) noexcept : m_value(value), m_bound(bound) {}

private:
    void give() noexcept; // release without the bound check

    detail::waiter_list m_waiters;
    std::size_t m_value;
    std::size_t m_handed = 0; // permits handed to waiters that have not run yet
    std::size_t m_bound;
};

// A semaphore whose release() refuses to go above the initial value.
class bounded_semaphore : public semaphore {
public:
    explicit bounded_semaphore(std::size_t value = 1) noexcept : semaphore(value, value) {}
};

} // namespace coio
