// lib/sync/event.cpp
#include <coio/sync/event.hpp>

namespace coio {

void event::set() noexcept {
    m_set = true;
    while (detail::sync_waiter* w = m_waiters.front()) {
        m_waiters.grant(*w);
    }
}

} // namespace coio
