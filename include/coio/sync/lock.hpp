// coio/sync/lock.hpp - lock (asyncio.Lock), a mutex for tasks of one loop.
//
//   coio::lock l;
//   {
//       auto g = co_await l.scoped();   // asyncio: async with l:
//       ...                             // released when g goes
//   }
//   co_await l.acquire(); ...; l.release();   // the explicit form
//
// Names: asyncio's acquire/release/locked. (The class cannot also have a
// member named lock(): in C++ that would declare a constructor.)
//
// Fairness: FIFO. release() hands the lock straight to the longest waiter,
// so a task arriving meanwhile cannot barge in; try_acquire() fails while
// anyone waits or holds it.
//
// Cancellation: acquire() is a cancellation point. A waiter cancelled while
// parked throws cancelled_error. A waiter whose cancel arrives after the lock
// was handed to it but before it ran does NOT end up owning the lock: it
// passes the lock on to the next waiter (or unlocks it) and throws
// cancelled_error - what asyncio does. So cancelled_error from acquire()
// always means "not acquired". Acquiring a free lock does not suspend and
// does not look at pending cancels (asyncio neither).
//
// The lock does not track its owner: release() by a task that does not hold
// it is not detected, except when nobody holds it (std::logic_error, as
// asyncio raises RuntimeError). The lock must outlive the awaits on it.
#pragma once

#include <coio/detail/waiter_list.hpp>
#include <coio/sync/lock_guard.hpp>

#include <coroutine>
#include <cstdint>

namespace coio {

class lock {
public:
    lock() = default;
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;

    class acquire_awaiter {
    public:
        explicit acquire_awaiter(lock& l, bool cancellable = true) noexcept
            : m_lock(&l), m_cancellable(cancellable) {}
        [[nodiscard]] bool await_ready() noexcept { return m_lock->try_acquire(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return m_lock->m_waiters.park<&detail::sync_phrase::lock_acquire>(m_waiter, h,
                                                                              m_cancellable);
        }
        // Throws cancelled_error (not acquired) if cancelled.
        void await_resume();

    protected:
        lock* m_lock;
        detail::sync_waiter m_waiter;
        bool m_cancellable;
    };

    class scoped_awaiter : public acquire_awaiter {
    public:
        using acquire_awaiter::acquire_awaiter;
        lock_guard<lock> await_resume() {
            acquire_awaiter::await_resume();
            return lock_guard<lock>(*m_lock);
        }
    };

    // Suspend until this task owns the lock (at once if it is free).
    [[nodiscard]] acquire_awaiter acquire() noexcept { return acquire_awaiter(*this); }
    // The same, returning a guard that releases it.
    [[nodiscard]] scoped_awaiter scoped() noexcept { return scoped_awaiter(*this); }
    // Take the lock if it is free and nobody waits; never suspends.
    bool try_acquire() noexcept {
        if (m_state != state::unlocked) {
            return false;
        }
        m_state = state::locked;
        return true;
    }
    // Hand the lock to the longest waiter, or unlock it. Throws
    // std::logic_error if it is not held.
    void release();
    // Held, or handed to a waiter that has not run yet.
    [[nodiscard]] bool locked() const noexcept { return m_state != state::unlocked; }

    // (detail) For condition: acquire ignoring cancellation (the lock must be
    // re-acquired even when the wait is cancelled, as asyncio does).
    [[nodiscard]] acquire_awaiter acquire_uncancellable() noexcept {
        return acquire_awaiter(*this, false);
    }

private:
    // handed: released to a waiter that has not run yet; a release() then is
    // a bug (nobody holds the lock) and is refused.
    enum class state : std::uint8_t { unlocked, locked, handed };

    detail::waiter_list m_waiters;
    state m_state = state::unlocked;
};

} // namespace coio
