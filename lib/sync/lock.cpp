// lib/sync/lock.cpp
#include <coio/sync/lock.hpp>

#include <stdexcept>

namespace coio {

void lock::release() {
    if (m_state != state::locked) {
        throw std::logic_error("coio::lock: release() of a lock that is not held");
    }
    if (detail::sync_waiter* w = m_waiters.front()) {
        m_state = state::handed;
        m_waiters.grant(*w);
    } else {
        m_state = state::unlocked;
    }
}

void lock::acquire_awaiter::await_resume() {
    switch (m_waiter.outcome()) {
    case detail::wake::granted:
        m_lock->m_state = state::locked; // from handed, or already locked (fast path)
        return;
    case detail::wake::revoked:
        m_lock->m_state = state::locked;
        m_lock->release(); // to the next waiter, or unlocked
        m_waiter.throw_cancelled();
    case detail::wake::cancelled:
        m_waiter.throw_cancelled();
    }
}

} // namespace coio
