// lib/sync/condition.cpp
#include <coio/cancel.hpp>
#include <coio/sync/condition.hpp>

#include <stdexcept>

namespace coio {

// Parks on the condition's waiter list and reports how the wait ended
// without throwing: wait() still has to re-acquire the lock first.
class condition::notified_awaiter {
public:
    explicit notified_awaiter(condition& c) noexcept : m_cond(&c) {}
    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return m_cond->m_waiters.park<&detail::sync_phrase::condition_wait>(m_waiter, h);
    }
    [[nodiscard]] detail::wake await_resume() const noexcept { return m_waiter.outcome(); }

private:
    condition* m_cond;
    detail::sync_waiter m_waiter;
};

task<> condition::wait() {
    if (!m_lock->locked()) {
        throw std::logic_error("coio::condition: wait() without holding the lock");
    }
    m_lock->release();
    const detail::wake how = co_await notified_awaiter(*this);
    co_await m_lock->acquire_uncancellable();
    detail::cancel_slot* slot = co_await detail::current_slot{};
    const bool cancel_pending = slot != nullptr && slot->requested();
    if (how == detail::wake::granted && !cancel_pending) {
        co_return;
    }
    if (how != detail::wake::cancelled) {
        notify(1); // we were notified but do not take it: pass it on
    }
    if (slot != nullptr) {
        slot->consume();
    }
    throw cancelled_error{};
}

void condition::notify(std::size_t n) {
    if (!m_lock->locked()) {
        throw std::logic_error("coio::condition: notify() without holding the lock");
    }
    for (; n > 0; --n) {
        detail::sync_waiter* w = m_waiters.front();
        if (w == nullptr) {
            break;
        }
        m_waiters.grant(*w);
    }
}

} // namespace coio
