// coio/sync/condition.hpp - condition (asyncio.Condition).
//
//   coio::condition cv;                        // owns its lock, or shares one:
//   coio::condition cv2(some_lock);            //   coio::condition(coio::lock&)
//   {
//       auto g = co_await cv.scoped();         // hold the lock
//       co_await cv.wait_for([&] { return !items.empty(); });
//       ...
//   }
//   { auto g = co_await cv.scoped(); items.push_back(x); cv.notify(); }
//
// wait() must be called with the lock held: it releases the lock, suspends
// until notified, and re-acquires the lock before it returns or throws - also
// when it is cancelled (the lock is re-acquired ignoring further cancels, as
// asyncio does), so a guard around it stays valid.
//
// Cancellation: a wait cancelled while parked throws cancelled_error (after
// re-acquiring). A notification that reaches a waiter whose cancel arrives
// before it runs is passed on to the next waiter (notify(1)) and the waiter
// throws cancelled_error: a notify is never lost (asyncio >= 3.12.x,
// gh-112202; 3.11 loses it). Spurious wake-ups are possible then, as with
// every condition variable: re-check the predicate (wait_for does).
//
// wait() and wait_for() return task<>: the condition (and its lock) must
// outlive the await, which awaiting in the same expression guarantees.
#pragma once

#include <coio/detail/waiter_list.hpp>
#include <coio/sync/lock.hpp>
#include <coio/task.hpp>

#include <coroutine>
#include <cstddef>
#include <type_traits>

namespace coio {

class condition {
public:
    condition() noexcept : m_lock(&m_own_lock) {}
    // Use `l` (which must outlive the condition) as the lock.
    explicit condition(coio::lock& l) noexcept : m_lock(&l) {}
    condition(const condition&) = delete;
    condition& operator=(const condition&) = delete;

    // The lock (lock.hpp has the details).
    [[nodiscard]] lock::acquire_awaiter acquire() noexcept { return m_lock->acquire(); }
    [[nodiscard]] lock::scoped_awaiter scoped() noexcept { return m_lock->scoped(); }
    bool try_acquire() noexcept { return m_lock->try_acquire(); }
    void release() { m_lock->release(); }
    [[nodiscard]] bool locked() const noexcept { return m_lock->locked(); }

    // Release the lock, wait for a notify, re-acquire. Throws
    // std::logic_error if the lock is not held, cancelled_error (with the
    // lock held again) if cancelled.
    task<> wait();

    // Wait until pred() is true (checked first, then after each wake-up,
    // always with the lock held); returns its last value (asyncio.wait_for).
    template <class Pred>
    task<std::decay_t<std::invoke_result_t<Pred&>>> wait_for(Pred pred) {
        auto r = pred();
        while (!r) {
            co_await wait();
            r = pred();
        }
        co_return r;
    }

    // Wake up to n waiters (they re-acquire the lock in turn). Throws
    // std::logic_error if the lock is not held.
    void notify(std::size_t n = 1);
    void notify_all() { notify(m_waiters.size()); }

private:
    class notified_awaiter;

    lock m_own_lock;
    lock* m_lock;
    detail::waiter_list m_waiters;
};

} // namespace coio
