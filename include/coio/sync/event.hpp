// coio/sync/event.hpp - event (asyncio.Event).
//
//   coio::event ready;
//   ... co_await ready.wait();      // elsewhere: ready.set();
//
// One loop only: an event is not thread-safe (use call_soon_threadsafe to set
// it from another thread). Waiting is a cancellation point: a cancelled
// waiter throws cancelled_error, also when its cancel arrives after set()
// woke it but before it ran (asyncio does the same). wait() on a set event
// returns without suspending and without looking at pending cancels.
// The event must outlive the awaits on it.
#pragma once

#include <coio/detail/waiter_list.hpp>

#include <coroutine>

namespace coio {

class event {
public:
    event() = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    // Set the flag and wake every waiter (they run on a later pass).
    void set() noexcept;
    // Reset the flag; later waits suspend again.
    void clear() noexcept { m_set = false; }
    [[nodiscard]] bool is_set() const noexcept { return m_set; }

    class awaiter {
    public:
        explicit awaiter(event& e) noexcept : m_event(&e) {}
        [[nodiscard]] bool await_ready() const noexcept { return m_event->m_set; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return m_event->m_waiters.park<&detail::sync_phrase::event_wait>(m_waiter, h);
        }
        void await_resume() const {
            if (m_waiter.outcome() != detail::wake::granted) {
                m_waiter.throw_cancelled();
            }
        }

    private:
        event* m_event;
        detail::sync_waiter m_waiter;
    };

    // Suspend until the flag is set (at once if it is).
    [[nodiscard]] awaiter wait() noexcept { return awaiter(*this); }

private:
    detail::waiter_list m_waiters;
    bool m_set = false;
};

} // namespace coio
