// lib/sync/semaphore.cpp
#include <coio/sync/semaphore.hpp>

#include <stdexcept>

namespace coio {

void semaphore::release() {
    // Permits held by nobody: free ones plus those on their way to a waiter.
    if (m_bound != unbounded && m_value + m_handed >= m_bound) {
        throw std::logic_error("coio::bounded_semaphore: released too many times");
    }
    give();
}

void semaphore::give() noexcept {
    if (detail::sync_waiter* w = m_waiters.front()) {
        ++m_handed;
        m_waiters.grant(*w);
    } else {
        ++m_value;
    }
}

void semaphore::acquire_awaiter::await_resume() {
    const detail::wake how = m_waiter.outcome();
    if (m_waiter.handed()) {
        --m_sem->m_handed;
    }
    if (how == detail::wake::revoked) {
        m_sem->give(); // the permit goes on; we were cancelled
    }
    if (how != detail::wake::granted) {
        m_waiter.throw_cancelled();
    }
}

} // namespace coio
